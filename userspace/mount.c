// SPDX-License-Identifier: GPL-2.0
/*
 * amber mount: a backup chain's image as a read-only device, nothing
 * copied: /dev/mapper/<name> over the NBD device a server (export.c) feeds
 * from the chain, every chunk verified as it is read. amber umount ends it.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "chain.h"
#include "cli.h"
#include "error.h"
#include "kernel.h"
#include "export.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber mount FULL [INCREMENTAL...] --name NAME [--digest D[,D...]]\n"
"                   [--key KEYFILE [--passphrase-file FILE]] [--pubkey FILE]\n"
"\n"
"Expose the image of a backup chain as the read-only device\n"
"/dev/mapper/NAME without copying it: every read is served from the\n"
"backups (seekable files), each chunk verified alone, the newest version\n"
"of each. For restore drills and single-file recovery\n"
"(mount -o ro,noload /dev/mapper/NAME DIR). 'amber umount NAME' ends it.\n"
"\n"
"  -n, --name NAME  the device-mapper name\n"
"  -d, --digest D[,D...]\n"
"                   the image digest each backup must have, in order\n"
CLI_KEY_USAGE
CLI_PUBKEY_USAGE;

enum { OPT_NAME, OPT_DIGEST, OPT_KEY, OPT_PASSPHRASE_FILE, OPT_PUBKEY };

static const struct cli_option options[] = {
	[OPT_NAME]	= CLI_VALUE("name", 'n'),
	[OPT_DIGEST]	= CLI_VALUE("digest", 'd'),
	[OPT_KEY]	= CLI_VALUE("key", 'k'),
	[OPT_PASSPHRASE_FILE] = CLI_VALUE("passphrase-file", 0),
	[OPT_PUBKEY]	= CLI_VALUE("pubkey", 0),
	{ },
};

struct mounted {
	const char *name;
	uint64_t sectors;
};

static int mount_up(void *ctx, const char *nbd)
{
	const struct mounted *m = ctx;
	char params[64];

	snprintf(params, sizeof(params), "%s 0", nbd);
	return dm_create(m->name, "linear", m->sectors, params, true);
}

/* Done once amber umount removed the device. */
static int mount_watch(void *ctx, const struct export_stats *stats)
{
	const struct mounted *m = ctx;

	if (!dm_exists(m->name))
		return 1;
	return export_write_status(m->name, json_pack(
		"{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I}", "name", m->name, "kind", "mount",
		"state", "mounted", "chunks_verified", (json_int_t)stats->chunks,
		"bytes_served", (json_int_t)stats->bytes, "read_errors", (json_int_t)stats->errors,
		"last_error", stats->last_error, "pid", (json_int_t)getpid()));
}

int mount_main(int argc, char **argv)
{
	static const struct cli_chain_options trust = {
		.key = OPT_KEY, .passphrase_file = OPT_PASSPHRASE_FILE, .pubkey = OPT_PUBKEY,
		.digest = OPT_DIGEST,
	};
	struct cli c = { .command = "mount", .usage = usage, .options = options };
	struct mounted m;
	const struct export_ops ops = { .up = mount_up, .watch = mount_watch, .ctx = &m };
	const struct bkp_info *tip;
	struct chain chain;
	char uuid[37];
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, INT_MAX, "BACKUP") || cli_required(&c, OPT_NAME, &m.name) ||
	    export_check_name(m.name, 0))
		return -1;
	if (dm_exists(m.name))
		return fail(AMBER_EUSAGE, "%s exists", m.name);
	if (cli_open_chain(&c, &trust, &chain))
		return -1;
	tip = chain_tip(&chain)->info;
	m.sectors = tip->geo.volume_bytes / 512;
	ret = export_chain(&chain, m.name, &ops);
	if (!ret)
		printf("mounted epoch %" PRIu64 " of volume %s read-only as /dev/mapper/%s\n",
		       tip->epoch, format_uuid(tip->volume_uuid, uuid), m.name);
	cli_close_chain(&chain);
	return ret;
}
