/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Streaming the frozen image of a volume into a backup writer.
 *
 * Order: chunks the store holds right now first (they drain the store),
 * flagged REC_EARLY, polled again every poll_interval seconds; the rest in
 * one ascending sweep with large reads, skipping chunks already sent. A
 * chunk is released only once its record is durable: after fdatasync() on
 * a file or block device, after write() on a pipe or tape.
 *
 * Threads: two readers plan jobs of up to @io_bytes and read them, so a
 * large sequential read is always in flight; @encoders threads encode them
 * (zero test, the leaf: SHA-256 or, encrypted, HMAC; zstd, XXH3); the
 * calling thread writes them in plan order (sealing them, encrypted) and
 * releases chunks.
 */
#ifndef AMBER_STREAM_H
#define AMBER_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "bkp.h"

struct stream_source {
	/*
	 * Chunks held in the store now, ascending from @start: up to @max in
	 * @out, the number in @count. NULL when there is no store to drain.
	 */
	int (*copied)(void *ctx, uint64_t start, uint64_t *out, size_t max,
		      size_t *count);
	/* Chunks [first, first + count) need no more copying. */
	int (*release)(void *ctx, uint64_t first, uint64_t count);
	void *ctx;
};

struct stream_progress {
	uint64_t done_bytes;		/* content bytes read and sent or skipped */
	uint64_t total_bytes;		/* content bytes to read */
	uint64_t records;
	uint64_t early_records;
	uint64_t backup_bytes;		/* backup written so far */
};

struct stream_config {
	int view_fd;			/* the frozen image */
	int out_fd;			/* the writer's medium */
	const struct geometry *geo;
	const uint64_t *wanted;		/* chunks to read; NULL: every chunk */
	/*
	 * The leaf of every chunk in the backup an incremental continues, when
	 * the chunks changed since are not known: a chunk read whose leaf is
	 * its base leaf is not sent. NULL: every chunk read is sent.
	 */
	const uint8_t (*base_leaves)[32];
	int level;			/* zstd level, 0: raw */
	const uint8_t *leaf_key;	/* encrypted: the identity key; NULL: SHA-256 */
	unsigned int encoders;		/* 0: one per CPU */
	size_t io_bytes;		/* per read, 0: 2 MiB */
	double poll_interval;		/* seconds, 0: 1 */
	const struct stream_source *src;
	void (*progress)(void *ctx, const struct stream_progress *p);
	void *progress_ctx;
};

/*
 * Send every wanted chunk (but the unchanged ones, with @base_leaves)
 * through @w (not finished here), release it once durable, and release
 * every unwanted chunk at the start. Stops with an "interrupted" error when
 * `interrupted` is set. @out, when not NULL, gets the final counts.
 */
int stream_backup(const struct stream_config *cfg, struct bkp_writer *w,
		  struct stream_progress *out);

#endif
