/* SPDX-License-Identifier: GPL-2.0 */
/*
 * amberd's catalog: BACKUP_DIR/catalog, a text file with one line per backup
 * file (amberd.conf(5) describes it):
 *
 *	SET GROUP VOLUME KIND EPOCH PARENT BYTES CREATED DIGEST FILE [KEY SIGNER]
 *
 * KEY and SIGNER are the fingerprint of the data key an encrypted backup
 * was made with and the SHA-256 of the public key that signed it, in hex,
 * "-" for none; a line without them (an older catalog) has neither.
 * A set is what one group barrier produced: one backup per volume of the
 * group, all cut at the same instant. FILE and PARENT are relative to the
 * backup directory; PARENT is "-" for a full backup. The file is replaced
 * atomically (written aside, fsynced, renamed).
 */
#ifndef AMBERD_CATALOG_H
#define AMBERD_CATALOG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bkp.h"
#include "config.h"

#define CAT_FILE_MAX	(2 * CONF_NAME_MAX + 32)
#define CAT_NAME	"catalog"

struct cat_entry {
	uint64_t set;
	char group[CONF_NAME_MAX];
	char volume[CONF_NAME_MAX];
	enum bkp_kind kind;
	uint64_t epoch;
	char parent[CAT_FILE_MAX];	/* "-": a full backup */
	uint64_t bytes;			/* file size */
	int64_t created;		/* seconds since 1970, UTC */
	char digest[65];		/* the image digest, hex */
	char file[CAT_FILE_MAX];
	char key[65];			/* data key fingerprint, hex, or "-" */
	char signer[65];		/* signing key's SHA-256, hex, or "-" */
};

struct catalog {
	char dir[PATH_MAX];		/* the backup directory */
	struct cat_entry *e;
	size_t n, cap;
};

void catalog_init(struct catalog *cat, const char *dir);
void catalog_free(struct catalog *cat);
/* Read DIR/catalog; a missing file is an empty catalog. */
int catalog_load(struct catalog *cat);
/* Replace DIR/catalog atomically and durably. */
int catalog_save(const struct catalog *cat);
int catalog_add(struct catalog *cat, const struct cat_entry *e);
/* One catalog line, without the newline. */
void catalog_format(const struct cat_entry *e, char *line, size_t len);
int catalog_parse_line(const char *line, struct cat_entry *e);

/* The newest set of @group, 0 when there is none. */
uint64_t catalog_last_set(const struct catalog *cat, const char *group);
const struct cat_entry *catalog_find(const struct catalog *cat, const char *group,
				     uint64_t set, const char *volume);
const struct cat_entry *catalog_find_file(const struct catalog *cat, const char *file);
/* Every entry of the set is a full backup. */
bool catalog_set_is_full(const struct catalog *cat, const char *group, uint64_t set);
/*
 * Should the next set of @group be full? Yes when it has none, or when the
 * sets since its last full set and this one make @full_every.
 */
bool catalog_next_is_full(const struct catalog *cat, const char *group, uint64_t full_every);
/*
 * The chain that restores @e: its full backup first, @e last. Returns the
 * count (<= @max), or -1 when a parent is not in the catalog.
 */
int catalog_chain(const struct catalog *cat, const struct cat_entry *e,
		  const struct cat_entry **out, size_t max);
/*
 * Retention: mark in @drop (one flag per entry) the backups of @group older
 * than its @keep_fulls newest full sets (0: keep everything), except those a
 * kept incremental still needs. Returns how many are marked.
 */
size_t catalog_retention(const struct catalog *cat, const char *group, uint64_t keep_fulls,
			 bool *drop);
/* Remove the marked entries from memory. */
void catalog_remove(struct catalog *cat, const bool *drop);

#endif
