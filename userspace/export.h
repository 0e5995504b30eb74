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

#include "chain.h"

#define EXPORT_LOG_DIR	"/run/amber"

struct export_ops {
	/* In the server, once @nbd is up: build the devices on it. */
	int (*up)(void *ctx, const char *nbd);
	/*
	 * In the server, every second: 0 to go on, 1 when done (the devices
	 * above no longer use the NBD device), -1 with the error recorded,
	 * which is logged before going on.
	 */
	int (*watch)(void *ctx);
	void *ctx;
};

/*
 * Start a server for the checked chain @c in a process of its own, which
 * logs to EXPORT_LOG_DIR/<name>.log. Returns once ops->up() ran in it: 0,
 * or -1 with its error. The server ends when ops->watch() says done.
 */
int export_chain(const struct chain *c, const char *name, const struct export_ops *ops);

#endif
