/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One backup set of a group, run in a child process of amberd: the file
 * systems mounted from the group's volumes flushed (syncfs, unless the
 * group says flush = no), one commit barrier over every volume of the
 * group (AMBER_IOC_SNAP), then each
 * volume's frozen image streamed by 'amber backup --use-snapshot' (its
 * code, backup_main(), in a process per volume, all at once so that every
 * store drains), incrementally from the parent named in the plan when the
 * change maps still reach back to it, fully otherwise.
 *
 * The child reports to amberd on a pipe, one line each:
 *
 *	info TEXT                        progress worth a log line
 *	barrier EPOCH...                 the barrier is cut (group order)
 *	note TEXT                        something to warn about
 *	done VOLUME KIND EPOCH BYTES DIGEST SECONDS KEY SIGNER
 *	fail TEXT
 *
 * and exits 0 when every backup is in place under its final name, 1
 * otherwise (then no file of the set is left). It never leaves a snapshot
 * of its barrier behind.
 */
#ifndef AMBERD_JOB_H
#define AMBERD_JOB_H

#include <stdint.h>

#include "module/uapi/amber.h"
#include "catalog.h"
#include "config.h"

struct job_plan {
	char dir[PATH_MAX];		/* the backup directory */
	char group[CONF_NAME_MAX];
	uint64_t set;
	uint64_t level;
	bool flush;			/* syncfs their file systems first */
	const char *encrypt_key;	/* the group's, or NULL */
	const char *passphrase_file;
	const char *sign_key;		/* the group's, or NULL */
	unsigned int nr;
	struct job_plan_volume {
		char name[CONF_NAME_MAX];
		char parent[CAT_FILE_MAX];	/* "": a full backup */
	} v[AMBER_MAX_GROUP];
};

/* The backup file of a volume in a set, relative to the backup directory. */
void job_file_name(const char *group, uint64_t set, const char *volume, bool full,
		   char *out, size_t len);

/* In the child: run the plan, report on @out. Does not return. */
/*
 * May a set start, by backup_dir's free space? Fails (AMBER_ESYS) saying
 * how much is free and what min_free asks when less than @min_free bytes,
 * or @min_free percent of the file system with @percent, is left.
 */
int job_check_free_space(const char *dir, uint64_t min_free, bool percent);
void job_child(const struct job_plan *plan, int out) __attribute__((noreturn));

#endif
