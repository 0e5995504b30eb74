/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A chain of backups: one full, then incrementals, oldest first, each
 * naming the one before it by volume uuid, epoch and link. Restore and
 * consolidate read it newest first and keep the newest version of every
 * chunk: a chunk already taken from a newer backup is verified in the older
 * ones but never taken again (a bitmap of taken chunks).
 */
#ifndef AMBER_CHAIN_H
#define AMBER_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "bkp.h"

struct chain_member {
	const char *path;		/* "-" is standard input */
	int fd;
	struct bkp_reader *reader;
	const struct bkp_info *info;
	bool peeked;			/* trailer known before reading */
	struct bkp_summary summary;	/* peeked, then as verified */
	const uint8_t *expect;		/* the digest it must have, or NULL */
};

struct chain {
	struct chain_member *m;
	size_t n;
	uint64_t *taken;		/* chunks handed out */
	uint8_t (*expect)[32];		/* chain_expect()'s digests */
};

/*
 * Open @n paths ("-" at most once) and read their headers, and the
 * trailers of regular files. On failure everything opened is closed.
 */
int chain_open(struct chain *c, char *const *paths, size_t n);
/*
 * The members must have these digests (--digest: parse_digests()'s list).
 * chain_check() compares those of seekable files, before anything is
 * written; chain_apply() those read from a pipe, at their end.
 */
int chain_expect(struct chain *c, const char *list);
/*
 * Check that the members form a chain. Every link is checked here except
 * one pointing at a member read from a pipe, whose link is known only at
 * its end: chain_apply() checks that one then.
 */
int chain_check(const struct chain *c);

typedef int (*chain_apply_fn)(void *ctx, const struct chain_member *from,
			      const struct bkp_record *rec);
/*
 * Read every member to its verified end, newest first, and hand @apply the
 * newest version of each chunk exactly once, each record only after it has
 * been verified. Fails at the first bad record or broken link.
 */
int chain_apply(struct chain *c, chain_apply_fn apply, void *ctx);
/* The newest member: its link is the chain's after chain_apply(). */
const struct chain_member *chain_tip(const struct chain *c);
void chain_close(struct chain *c);

#endif
