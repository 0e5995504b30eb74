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
	const struct data_key *key;	/* chain_set_key()'s, or NULL */
	const struct asym_key *pubkey;	/* chain_set_pubkey()'s, or NULL */
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

/*
 * Give every member @key (before chain_check()): a member encrypted with
 * another key, or encrypted when @key is NULL, is refused naming both
 * fingerprints, and one not encrypted when @key is given, before any
 * target is opened. chain_check() then checks the trailer MAC of every
 * seekable member.
 */
int chain_set_key(struct chain *c, const struct data_key *key);
/*
 * Every member must be signed by @pub (before chain_check()): chain_check()
 * checks the signature of seekable members, chain_apply() those read from a
 * pipe at their end.
 */
int chain_set_pubkey(struct chain *c, const struct asym_key *pub);
/*
 * A new incremental, encrypted with the key of @fingerprint (NULL: not
 * encrypted), may continue @parent (at @path): a chain has one key
 * (FORMAT-v2.md, "Chains").
 */
int chain_same_key(const char *path, const struct bkp_info *parent, const uint8_t *fingerprint);

/* Every member may be consolidated: no unknown read-only compatible feature. */
int chain_check_extendable(const struct chain *c);

typedef int (*chain_apply_fn)(void *ctx, const struct chain_member *from,
			      const struct bkp_record *rec);
/*
 * Read every member to its verified end, newest first, and hand @apply the
 * newest version of each chunk exactly once, each record only after it has
 * been verified. Fails at the first bad record or broken link.
 */
int chain_apply(struct chain *c, chain_apply_fn apply, void *ctx);
/* What a new incremental backup needs of the backup it continues. */
struct parent_want {
	const char *volume;		/* the volume's name, for messages */
	const uint8_t *uuid;		/* its store's volume uuid; NULL: not checked */
	uint64_t volume_bytes;
	uint64_t chunk_bytes;		/* 0: any */
	uint64_t epoch;			/* the new backup's; 0: not known yet */
};

/*
 * Read the header and trailer of @path, the parent of a new incremental
 * backup, and check it against @want: the same volume (uuid, size, chunk
 * size) and an earlier epoch. Fails naming what differs (AMBER_EDATA), or
 * why it cannot be read.
 */
int chain_read_parent(const char *path, const struct parent_want *want, struct bkp_info *info,
		      struct bkp_summary *summary);
/* A parent of epoch @parent_epoch is older than the new backup's @epoch. */
int chain_parent_before(const char *path, uint64_t parent_epoch, uint64_t epoch);

/* The newest member: its link is the chain's after chain_apply(). */
const struct chain_member *chain_tip(const struct chain *c);
void chain_close(struct chain *c);

/*
 * Random access to the image of a checked chain (chain_check()): the newest
 * version of a chunk, read and verified alone through each member's index
 * (bkp_index_read()). Every member must be a seekable file. A reader is
 * not shared between threads: each opens its own.
 */
struct chain_reader {
	const struct chain *chain;
	struct bkp_index **x;		/* per member, as the chain's */
	size_t n;
	const struct geometry *geo;
};

int chain_reader_open(const struct chain *c, struct chain_reader *r);
/* Chunk @chunk into @buf (chunk_length() bytes); a chain lacking it is corrupt. */
int chain_reader_read(struct chain_reader *r, uint64_t chunk, void *buf);
void chain_reader_close(struct chain_reader *r);

#endif
