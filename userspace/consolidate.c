// SPDX-License-Identifier: GPL-2.0
/* amber consolidate: a synthetic full backup from a chain. */
#include <errno.h>
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
"Usage: amber consolidate FULL INCREMENTAL... --to NEWFULL|-\n"
"                         [--key KEYFILE [--passphrase-file FILE]] [--sign KEY]\n"
"                         [--pubkey FILE]\n"
"\n"
"Merge a backup chain, oldest first, into one full backup of the newest\n"
"epoch without touching the volume. Every record is verified on the way;\n"
"payloads are copied as stored, not recompressed. NEWFULL's image digest\n"
"is the digest a full backup of that epoch has, and incrementals taken\n"
"after the chain continue NEWFULL as they continue the chain. NEWFULL must\n"
"not exist; '-' writes to standard output. An encrypted chain makes an\n"
"encrypted NEWFULL, under the same key, with a backup id of its own; a\n"
"plain chain makes a plain NEWFULL, and --key is refused for it.\n"
"\n"
"  -t, --to NEWFULL|-  the new full backup\n"
CLI_KEY_USAGE
CLI_PUBKEY_USAGE
"      --sign KEY     sign NEWFULL's trailer with the Ed25519 private key KEY\n";

enum { OPT_TO, OPT_KEY, OPT_PASSPHRASE_FILE, OPT_SIGN, OPT_PUBKEY };

static const struct cli_option options[] = {
	[OPT_TO] = CLI_VALUE("to", 't'),
	[OPT_KEY] = CLI_VALUE("key", 'k'),
	[OPT_PASSPHRASE_FILE] = CLI_VALUE("passphrase-file", 0),
	[OPT_SIGN] = CLI_VALUE("sign", 0),
	[OPT_PUBKEY] = CLI_VALUE("pubkey", 0),
	{ },
};

struct output {
	const char *path;
	int fd;
	bool created;
	struct bkp_writer *w;
	struct data_key *key;
	struct asym_key *sign;
	struct asym_key *pubkey;	/* every member must be signed by it */
};

static int open_consolidated(struct output *o)
{
	o->fd = open_output(o->path, false, &o->created);
	return o->fd < 0 ? -1 : 0;
}

/* The newest image, as a full backup made by this tool. */
static void synthetic_info(const struct chain *c, struct bkp_info *info)
{
	*info = *chain_tip(c)->info;
	info->version = BKP_VERSION;	/* the writer draws a new backup_id */
	info->kind = BKP_FULL;
	info->flags = BKP_SYNTHETIC;
	memset(info->parent_uuid, 0, sizeof(info->parent_uuid));
	info->parent_epoch = 0;
	memset(info->parent_link, 0, sizeof(info->parent_link));
	snprintf(info->tool, sizeof(info->tool), "%s", tool_version());
}

/* Records of incrementals come before the full's sweep: they are early. */
static int put_record(void *ctx, const struct chain_member *from, const struct bkp_record *rec)
{
	struct output *o = ctx;
	struct bkp_record copy = *rec;

	if (from->info->kind == BKP_INCREMENTAL)
		copy.flags |= REC_EARLY;
	return bkp_writer_put(o->w, &copy) ? error_prefix("%s: ", o->path) : 0;
}

static int consolidate(struct chain *c, struct output *o)
{
	struct bkp_summary summary;
	struct bkp_info info;
	char digest[65];
	FILE *out = o->fd == STDOUT_FILENO ? stderr : stdout;

	struct bkp_keys keys = { .data = o->key, .sign = o->sign };	/* the chain's key */

	if (chain_set_pubkey(c, o->pubkey) || chain_set_key(c, o->key) || chain_check(c) ||
	    chain_check_extendable(c) || open_consolidated(o))
		return -1;
	catch_interrupts();
	synthetic_info(c, &info);
	o->w = bkp_writer_new(o->fd, &info, &keys);
	if (!o->w || chain_apply(c, put_record, o) ||
	    bkp_writer_finish(o->w, chain_tip(c)->summary.link, &summary) ||
	    sync_medium(o->fd))
		return -1;
	fprintf(out, "consolidated %zu backups into %s: epoch %" PRIu64 ", %" PRIu64
		" chunks\n", c->n, o->path, info.epoch, summary.records);
	fprintf(out, "%s: digest %s\n", o->path, format_hex(summary.digest, 32, digest));
	return 0;
}

int consolidate_main(int argc, char **argv)
{
	struct cli c = { .command = "consolidate", .usage = usage, .options = options };
	struct output o = { .fd = -1 };
	struct chain chain;
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, INT_MAX, "FULL") || cli_required(&c, OPT_TO, &o.path) ||
	    cli_key(&c, OPT_KEY, OPT_PASSPHRASE_FILE, &o.key))
		return -1;
	if ((c.value[OPT_SIGN] && !(o.sign = asym_load_private(c.value[OPT_SIGN], true))) ||
	    (c.value[OPT_PUBKEY] && !(o.pubkey = asym_load_public(c.value[OPT_PUBKEY], true))) ||
	    chain_open(&chain, c.args, c.nr_args)) {
		data_key_free(o.key);
		asym_free(o.sign);
		asym_free(o.pubkey);
		return -1;
	}
	ret = consolidate(&chain, &o);
	chain_close(&chain);
	bkp_writer_free(o.w);
	data_key_free(o.key);
	asym_free(o.sign);
	asym_free(o.pubkey);
	if (ret && o.created)
		unlink(o.path);
	if (o.fd > STDOUT_FILENO)
		close(o.fd);
	return ret;
}
