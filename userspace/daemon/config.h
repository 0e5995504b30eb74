/* SPDX-License-Identifier: GPL-2.0 */
/*
 * amberd's configuration file (amberd.conf(5)): INI-like sections
 *
 *	[daemon]            socket, backup_dir, retention, level, log
 *	[volume NAME]       origin, store, chunk, epochs, overflow, block_timeout
 *	[group NAME]        volumes, retention, full_every, flush, trigger_user,
 *	                    encrypt_key, passphrase_file, sign_key
 *	[schedule GROUP]    interval, full_every (the group's, given here or
 *	                    there)
 *
 * parsed strictly: an unknown section or key, a duplicate, a bad value or a
 * missing required key is an error (AMBER_EUSAGE) naming the file and line.
 */
#ifndef AMBERD_CONFIG_H
#define AMBERD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "module/uapi/amber.h"

#define CONF_DEFAULT_PATH	"/etc/amber/amberd.conf"
#define CONF_DEFAULT_SOCKET	"/run/amber/amberd.sock"
#define CONF_NAME_MAX		64	/* volume and group names, with the NUL */
#define CONF_MAX_VOLUMES	64
#define CONF_MAX_GROUPS		32
#define CONF_SOCKET_MAX		108	/* sun_path */
#define CONF_DEFAULT_FULL_EVERY	7
/* A trigger may ask for a set once a minute; backup_dir keeps 5% free. */
#define CONF_DEFAULT_MIN_INTERVAL	60
#define CONF_DEFAULT_MIN_FREE_PERCENT	5
#define CONF_MAX_FULL_EVERY	100	/* the longest chain: a full, 99 incrementals */

struct conf_volume {
	char name[CONF_NAME_MAX];
	char origin[PATH_MAX];
	char store[PATH_MAX];
	uint64_t chunk;			/* bytes, when the store is formatted */
	bool chunk_set;			/* given: the store must have it */
	uint64_t epochs;		/* change maps, when formatted */
	char overflow[16];		/* "" (kernel default), block, invalidate */
	uint64_t block_timeout;		/* ms, 0: kernel default */
	int line;
};

struct conf_group {
	char name[CONF_NAME_MAX];
	unsigned int vols[AMBER_MAX_GROUP];	/* indexes into config.vol */
	unsigned int nr_vols;
	uint64_t retention;		/* full backups kept, 0: all */
	bool flush;			/* syncfs their file systems first */
	char trigger_user[CONF_NAME_MAX];	/* "" : no trigger socket */
	uid_t trigger_uid;
	gid_t trigger_gid;
	bool scheduled;
	uint64_t interval;		/* seconds between scheduled backups */
	uint64_t full_every;		/* every Nth backup set is full */
	uint64_t min_interval;		/* seconds between sets asked on the trigger socket */
	char encrypt_key[PATH_MAX];	/* "": not encrypted; else a key file */
	char passphrase_file[PATH_MAX];	/* its passphrase, with encrypt_key */
	char sign_key[PATH_MAX];	/* "": not signed; else an Ed25519 PEM key */
	int line;
};

struct config {
	char path[PATH_MAX];
	char socket[CONF_SOCKET_MAX];
	char backup_dir[PATH_MAX];
	uint64_t retention;
	uint64_t level;
	uint64_t min_free;		/* no set starts with less free in backup_dir */
	bool min_free_percent;		/* min_free is a percentage of its size */
	bool syslog;
	struct conf_volume vol[CONF_MAX_VOLUMES];
	unsigned int nr_vols;
	struct conf_group grp[CONF_MAX_GROUPS];
	unsigned int nr_grps;
};

/* Parse the file at @path into @c. */
int config_load(const char *path, struct config *c);
/* Parse @text as if read from @path (for tests). */
int config_parse(const char *path, const char *text, struct config *c);

/* A volume or group name: [A-Za-z0-9_][A-Za-z0-9_.-]*, shorter than
 * CONF_NAME_MAX. */
bool conf_name_ok(const char *name);
/* "90", "90s", "15m", "2h", "1d" into seconds (1 .. 366 days). */
int conf_parse_interval(const char *s, uint64_t *seconds);

const struct conf_group *config_group(const struct config *c, const char *name);

#endif
