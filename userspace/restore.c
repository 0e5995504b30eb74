// SPDX-License-Identifier: GPL-2.0
/* amber restore: write a verified backup chain to a device. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "chain.h"
#include "cli.h"
#include "error.h"
#include "keys.h"
#include "restore.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber restore FULL|- [INCREMENTAL...] --to DEV [--digest D[,D...]] [--force]\n"
"                     [--key KEYFILE [--passphrase-file FILE]] [--pubkey FILE]\n"
"       amber restore --instant FULL [INCREMENTAL...] --to DEV --name NAME\n"
"                     [--metadata MDEV] [--resume] [...]\n"
"\n"
"Write the image of a backup chain to DEV: a full backup, then the\n"
"incrementals that follow it, oldest first ('-' reads one of them from\n"
"standard input). The chain is checked before anything is written; every\n"
"record is verified before it is written, and every backup's digest and\n"
"trailer at its end. The newest version of each chunk is written once:\n"
"backups are read newest first. On failure the target is incomplete.\n"
"\n"
"  -t, --to DEV   the target: a block device, or a regular file at least as\n"
"                 large as the volume\n"
"  -d, --digest D[,D...]\n"
"                 the image digest each backup must have, one per backup in\n"
"                 the order given (from the catalog, or what amber backup\n"
"                 printed): a backup with another digest, even one whose\n"
"                 checksums all hold, is refused. Seekable files are\n"
"                 checked before anything is written; a backup from\n"
"                 standard input at its end\n"
"  -f, --force    write even if DEV holds a filesystem\n"
"      --instant  return at once with /dev/mapper/NAME over DEV, readable and\n"
"                 writable: chunks not yet restored are read from the chain\n"
"                 (each verified alone), and a server restores the rest in\n"
"                 the background, then turns NAME into a plain device over\n"
"                 DEV. Needs seekable files (see amber(8), INSTANT RESTORE)\n"
"  -n, --name NAME\n"
"                 the device-mapper name of the restored volume\n"
"      --metadata MDEV\n"
"                 where the restore records its progress (a few MiB);\n"
"                 by default the end of DEV past the image\n"
"      --resume   continue an instant restore of NAME stopped by a crash,\n"
"                 a power cut or a killed server: nothing restored is\n"
"                 fetched again and nothing written is overwritten\n"
CLI_KEY_USAGE
CLI_PUBKEY_USAGE;

enum {
	OPT_TO, OPT_DIGEST, OPT_FORCE, OPT_KEY, OPT_PASSPHRASE_FILE, OPT_PUBKEY, OPT_INSTANT,
	OPT_NAME, OPT_METADATA, OPT_RESUME,
};

static const struct cli_option options[] = {
	[OPT_TO]	= CLI_VALUE("to", 't'),
	[OPT_DIGEST]	= CLI_VALUE("digest", 'd'),
	[OPT_FORCE]	= CLI_FLAG("force", 'f'),
	[OPT_KEY]	= CLI_VALUE("key", 'k'),
	[OPT_PASSPHRASE_FILE] = CLI_VALUE("passphrase-file", 0),
	[OPT_PUBKEY]	= CLI_VALUE("pubkey", 0),
	[OPT_INSTANT]	= CLI_FLAG("instant", 0),
	[OPT_NAME]	= CLI_VALUE("name", 'n'),
	[OPT_METADATA]	= CLI_VALUE("metadata", 0),
	[OPT_RESUME]	= CLI_FLAG("resume", 0),
	{ },
};

struct target {
	const char *path;
	int fd;
	uint32_t chunk_bytes;
	uint64_t chunks, bytes;
};

static int open_target(struct target *t, const struct bkp_info *info, bool force)
{
	uint64_t size;

	t->fd = open(t->path, O_RDWR | O_CLOEXEC);
	if (t->fd >= 0 && fd_is_block(t->fd)) {	/* exclusive: not mounted or in use */
		close(t->fd);
		t->fd = open(t->path, O_RDWR | O_EXCL | O_CLOEXEC);
	}
	if (t->fd < 0)
		return fail_errno(AMBER_ESYS, "%s", t->path);
	if (fd_size(t->fd, &size))
		return error_prefix("%s: ", t->path);
	if (size < info->geo.volume_bytes)
		return fail(AMBER_ESYS, "%s is %" PRIu64 " bytes, the image needs %" PRIu64,
			    t->path, size, info->geo.volume_bytes);
	t->chunk_bytes = info->geo.chunk_bytes;
	return refuse_signature(t->fd, t->path, force);
}

static int write_chunk(void *ctx, const struct chain_member *from, const struct bkp_record *rec)
{
	struct target *t = ctx;
	uint64_t offset = rec->chunk * t->chunk_bytes;
	int ret;

	(void)from;
	if (rec->flags & REC_ZERO)
		ret = zero_range(t->fd, offset, rec->length);
	else
		ret = pwrite_full(t->fd, rec->data, rec->length, offset);
	if (ret)
		return error_prefix("%s: chunk %" PRIu64 ": ", t->path, rec->chunk);
	t->chunks++;
	t->bytes += rec->length;
	return 0;
}

static void report(const struct chain *c, const struct target *t)
{
	const struct bkp_info *tip = chain_tip(c)->info;
	char uuid[37], size[32];

	printf("restored epoch %" PRIu64 " of volume %s to %s: %" PRIu64
	       " chunks, %s, from %zu backup%s\n", tip->epoch, format_uuid(tip->volume_uuid, uuid),
	       t->path, t->chunks, format_size(t->bytes, size, sizeof(size)), c->n,
	       c->n == 1 ? "" : "s");
}

static int restore(struct chain *c, struct target *t, bool force)
{
	if (open_target(t, c->m[0].info, force))
		return -1;
	catch_interrupts();
	if (chain_apply(c, write_chunk, t) || sync_medium(t->fd))
		return error_append("; %s is incomplete (%" PRIu64 " chunks written)",
				    t->path, t->chunks);
	report(c, t);
	return 0;
}

/* --instant's options, which a plain restore refuses. */
static int instant_options(const struct cli *c, struct instant *in)
{
	static const int only[] = { OPT_NAME, OPT_METADATA, OPT_RESUME };
	size_t i;

	if (!cli_flag(c, OPT_INSTANT)) {
		for (i = 0; i < sizeof(only) / sizeof(only[0]); i++)
			if (c->value[only[i]])
				return fail(AMBER_EUSAGE, "--%s goes with --instant",
					    c->options[only[i]].name);
		return 0;
	}
	in->enabled = true;
	in->metadata = c->value[OPT_METADATA];
	in->resume = cli_flag(c, OPT_RESUME);
	return cli_required(c, OPT_NAME, &in->name);
}

int restore_main(int argc, char **argv)
{
	static const struct cli_chain_options trust = {
		.key = OPT_KEY, .passphrase_file = OPT_PASSPHRASE_FILE, .pubkey = OPT_PUBKEY,
		.digest = OPT_DIGEST,
	};
	struct cli c = { .command = "restore", .usage = usage, .options = options };
	struct target t = { .fd = -1 };
	struct instant in = { 0 };
	struct chain chain;
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, INT_MAX, "BACKUP") || cli_required(&c, OPT_TO, &t.path) ||
	    instant_options(&c, &in) || cli_open_chain(&c, &trust, &chain))
		return -1;
	in.target = t.path;
	in.force = cli_flag(&c, OPT_FORCE);
	if (in.enabled)
		ret = restore_instant(&chain, &in);
	else
		ret = restore(&chain, &t, in.force);
	cli_close_chain(&chain);
	if (t.fd >= 0)
		close(t.fd);
	return ret;
}
