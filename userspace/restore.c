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
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber restore FULL|- [INCREMENTAL...] --to DEV [--digest D[,D...]] [--force]\n"
"                     [--key KEYFILE [--passphrase-file FILE]] [--pubkey FILE]\n"
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
CLI_KEY_USAGE
CLI_PUBKEY_USAGE;

enum { OPT_TO, OPT_DIGEST, OPT_FORCE, OPT_KEY, OPT_PASSPHRASE_FILE, OPT_PUBKEY };

static const struct cli_option options[] = {
	[OPT_TO]	= CLI_VALUE("to", 't'),
	[OPT_DIGEST]	= CLI_VALUE("digest", 'd'),
	[OPT_FORCE]	= CLI_FLAG("force", 'f'),
	[OPT_KEY]	= CLI_VALUE("key", 'k'),
	[OPT_PASSPHRASE_FILE] = CLI_VALUE("passphrase-file", 0),
	[OPT_PUBKEY]	= CLI_VALUE("pubkey", 0),
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

static int restore(struct chain *c, struct target *t, bool force, const struct data_key *key,
		   const struct asym_key *pub)
{
	if (chain_set_pubkey(c, pub) || chain_set_key(c, key) || chain_check(c) ||
	    open_target(t, c->m[0].info, force))
		return -1;
	catch_interrupts();
	if (chain_apply(c, write_chunk, t) || sync_medium(t->fd))
		return error_append("; %s is incomplete (%" PRIu64 " chunks written)",
				    t->path, t->chunks);
	report(c, t);
	return 0;
}

int restore_main(int argc, char **argv)
{
	struct cli c = { .command = "restore", .usage = usage, .options = options };
	struct target t = { .fd = -1 };
	struct asym_key *pub = NULL;
	struct data_key *key;
	struct chain chain;
	bool force;
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, INT_MAX, "BACKUP") || cli_required(&c, OPT_TO, &t.path) ||
	    cli_key(&c, OPT_KEY, OPT_PASSPHRASE_FILE, &key))
		return -1;
	if ((c.value[OPT_PUBKEY] && !(pub = asym_load_public(c.value[OPT_PUBKEY], true))) ||
	    chain_open(&chain, c.args, c.nr_args)) {
		data_key_free(key);
		asym_free(pub);
		return -1;
	}
	force = cli_flag(&c, OPT_FORCE);
	if (c.value[OPT_DIGEST] && chain_expect(&chain, c.value[OPT_DIGEST]))
		ret = -1;
	else
		ret = restore(&chain, &t, force, key, pub);
	chain_close(&chain);
	data_key_free(key);
	asym_free(pub);
	if (t.fd >= 0)
		close(t.fd);
	return ret;
}
