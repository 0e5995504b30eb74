/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Serve the image of a backup chain as a read-only block device: the
 * kernel's NBD client (/dev/nbdN) over local socket pairs, one thread per
 * connection, every chunk read and verified alone (chain_reader). amber
 * mount puts a read-only device on it; amber restore --instant puts
 * dm-clone on it, which copies it to the target in the background.
 *
 * The server sits in the I/O path of the device above it: it runs with
 * PR_SET_IO_FLUSHER and all its memory locked, so that reclaim never waits
 * on the I/O it is to serve (docs/DESIGN.md, "Instant restore").
 */
#ifndef AMBER_EXPORT_H
#define AMBER_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "chain.h"

#define EXPORT_LOG_DIR	"/run/amber-restore"

/* What the server did, for its status file. */
struct export_stats {
	uint64_t chunks;		/* read from the chain and verified */
	uint64_t bytes;			/* served */
	uint64_t errors;		/* reads answered with an error */
	char last_error[256];		/* the latest, or "" */
};

struct export_ops {
	/* In the server, once @nbd is up: build the devices on it. */
	int (*up)(void *ctx, const char *nbd);
	/*
	 * In the server, every second: 0 to go on, 1 when done (the devices
	 * above no longer use the NBD device), -1 with the error recorded,
	 * which is logged before going on.
	 */
	int (*watch)(void *ctx, const struct export_stats *stats);
	void *ctx;
};

/*
 * A device-mapper name for a server: letters, digits, '.', '_', '-' and
 * '+', not starting with '.', and @suffix_room characters shorter than
 * device-mapper allows (it names files in EXPORT_LOG_DIR and devices).
 */
int export_check_name(const char *name, size_t suffix_room);

/*
 * Start a server for the checked chain @c in a process of its own, which
 * logs to EXPORT_LOG_DIR/<name>.log. Returns once ops->up() ran in it: 0,
 * or -1 with its error. The server ends when ops->watch() says done.
 */
int export_chain(const struct chain *c, const char *name, const struct export_ops *ops);

/*
 * In the server: replace EXPORT_LOG_DIR/<name>.json with @status (a
 * reference taken), which amber status shows.
 */
int export_write_status(const char *name, json_t *status);
/* The status document of the server of @name; NULL when there is none. */
json_t *export_read_status(const char *name);

#endif
