// SPDX-License-Identifier: GPL-2.0
/* amber verify: read backups through, check everything, write nothing. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "digest.h"
#include "error.h"
#include "keys.h"
#include "report.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber verify FILE|- [FILE...] [--digest D[,D...]] [--json]\n"
"                    [--key KEYFILE | --no-key] [--pubkey FILE]\n"
"       amber verify --chunk N FILE [--key KEYFILE] [--pubkey FILE]\n"
"\n"
"Read each backup to its end and check every header, record, checksum,\n"
"content digest, the index, the trailer and the image digest. Prints a\n"
"summary per backup; stops at the first bad one. Exit status 3 means a\n"
"backup is corrupt, truncated, not an amber backup, or not the one\n"
"expected. When an incremental follows a backup of its volume, its link to\n"
"it is checked too: a backup missing or out of order is named.\n"
"\n"
"  -d, --digest D[,D...]\n"
"               the image digest each FILE must have, one per FILE in the\n"
"               order given (from the catalog, or what amber backup\n"
"               printed): a backup whose checksums all hold but whose\n"
"               digest differs was not made by that backup. A seekable\n"
"               file is refused before it is read\n"
"  -j, --json   one JSON array, an object per backup verified and one for\n"
"               the backup that failed, if any (amber(8) has the keys)\n"
"      --chunk N\n"
"               verify chunk N alone, reading only the trailer, the block\n"
"               table, one index block and the chunk's record of a seekable\n"
"               format 2 FILE, each checked against the hash that commits to\n"
"               it; prints the chunk's SHA-256. A damaged file is named by\n"
"               chunk and offset\n"
CLI_KEY_USAGE
"               With the key, records are decrypted and every tag, leaf and\n"
"               the trailer's MAC are checked\n"
"      --no-key an encrypted backup without its key: every stored byte\n"
"               against its hash, the index, trailer and links; nothing is\n"
"               decrypted\n"
"      --pubkey FILE\n"
"               the backup must be signed by this Ed25519 public key (PEM):\n"
"               proves who wrote it; an unsigned backup is refused\n";

enum { OPT_DIGEST, OPT_JSON, OPT_CHUNK, OPT_KEY, OPT_PASSPHRASE_FILE, OPT_NO_KEY,
       OPT_PUBKEY };

static const struct cli_option options[] = {
	[OPT_DIGEST]	= CLI_VALUE("digest", 'd'),
	[OPT_JSON]	= CLI_FLAG("json", 'j'),
	[OPT_CHUNK]	= CLI_VALUE("chunk", 0),
	[OPT_KEY]	= CLI_VALUE("key", 'k'),
	[OPT_PASSPHRASE_FILE] = CLI_VALUE("passphrase-file", 0),
	[OPT_NO_KEY]	= CLI_FLAG("no-key", 0),
	[OPT_PUBKEY]	= CLI_VALUE("pubkey", 0),
	{ },
};

/* How files are verified, and the one before, for its link. */
struct verify {
	json_t *json;
	struct data_key *key;
	bool no_key;
	struct asym_key *pubkey;
	bool have_prev;
	const char *prev_path;
	struct bkp_info prev;
	uint8_t prev_link[32];
};

/* The summary of a backup read through: lines, or an object in @json. */
static int report(const struct verify *v, const char *path, struct bkp_reader *r)
{
	const struct bkp_info *info = bkp_reader_info(r);
	const struct bkp_summary *summary = bkp_reader_summary(r);

	if (v->json)
		return json_append(v->json, backup_json(path, info, summary, v->pubkey)) ? 0 :
		       fail(AMBER_ESYS, "out of memory");
	printf("%s: ok\n", path);
	print_info(stdout, info);
	print_summary(stdout, info, summary, v->pubkey);
	if (bkp_encrypted(info) && !v->key)
		printf("  checked   without the key: every stored byte against its hash, the"
		       " index, trailer and links; nothing decrypted, the MAC not checked\n");
	if (v->pubkey)
		printf("  signature verified with the public key given\n");
	return 0;
}

/* Before reading a seekable file through: the signature, then the digest. */
static int check_peeked(const struct verify *v, int fd, const uint8_t *want)
{
	struct bkp_summary summary;
	struct bkp_info info;

	if ((!want && !v->pubkey) || !fd_is_regular(fd))
		return 0;
	if (bkp_peek(fd, &info, &summary))
		return -1;
	if (v->pubkey && trailer_check_signature(v->pubkey, &summary))
		return -1;
	return want ? check_expected_digest(summary.digest, want) : 0;
}

/* The key an encrypted backup is read with, or keyless with --no-key. */
static int set_keys(const struct verify *v, struct bkp_reader *r)
{
	const struct bkp_info *info = bkp_reader_info(r);

	if (bkp_encrypted(info) && !v->key && !v->no_key &&
	    check_backup_key(info, NULL, false))
		return error_append(" or --no-key");
	return bkp_reader_set_pubkey(r, v->pubkey) || bkp_reader_set_key(r, v->key) ? -1 : 0;
}

/*
 * An incremental after a backup of its volume continues it: epoch and link
 * compared as stored (FORMAT-v2.md, "A deleted or reordered incremental").
 */
static int check_link(struct verify *v, const char *path, const struct bkp_info *info)
{
	const struct bkp_info *prev = &v->prev;
	char named[13], has[13];

	if (!v->have_prev || info->kind != BKP_INCREMENTAL ||
	    memcmp(info->volume_uuid, prev->volume_uuid, 16) ||
	    (info->parent_epoch == prev->epoch && !memcmp(info->parent_link, v->prev_link, 32)))
		return 0;
	return fail(AMBER_EDATA, "chain broken: %s continues epoch %" PRIu64 " (link %s...),"
		    " but %s before it is epoch %" PRIu64 " (link %s...): a backup is missing"
		    " or out of order", path, info->parent_epoch,
		    format_hex(info->parent_link, 6, named), v->prev_path, prev->epoch,
		    format_hex(v->prev_link, 6, has));
}

static int verify_stream(struct verify *v, const char *path, int fd, const uint8_t *want)
{
	struct bkp_reader *r;
	struct bkp_record rec;
	int ret = -1;

	if (check_peeked(v, fd, want))
		return error_prefix("%s: ", path);
	r = bkp_reader_open(fd);
	if (!r)
		return error_prefix("%s: ", path);
	if (!set_keys(v, r) && !check_link(v, path, bkp_reader_info(r))) {
		while ((ret = bkp_reader_next(r, &rec)) > 0)
			;
		if (!ret && want)
			ret = check_expected_digest(bkp_reader_summary(r)->digest, want);
	}
	if (!ret) {
		v->have_prev = true;
		v->prev_path = path;
		v->prev = *bkp_reader_info(r);
		memcpy(v->prev_link, bkp_reader_summary(r)->link, 32);
		ret = report(v, path, r);
	} else {
		error_prefix("%s: ", path);
	}
	bkp_reader_free(r);
	return ret;
}

static int verify_path(struct verify *v, const char *path, const uint8_t *want)
{
	int fd, ret;

	if (!strcmp(path, "-"))
		return verify_stream(v, "-", STDIN_FILENO, want);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	ret = verify_stream(v, path, fd, want);
	close(fd);
	return ret;
}

/* Verify each file until one fails; with JSON the failure is in it too. */
static int verify_all(const struct cli *c, uint8_t (*want)[32], struct verify *v)
{
	json_t *json = v->json;
	int i, ret = 0;

	for (i = 0; i < c->nr_args && !ret; i++) {
		ret = verify_path(v, c->args[i], want ? want[i] : NULL);
		if (ret && json && !json_append(json, failure_json(c->args[i])))
			return fail(AMBER_ESYS, "out of memory");
	}
	if (json) {
		struct error_state failed;

		/* The JSON is printed also when a backup failed: keep that error. */
		error_save(&failed);
		if (print_json(json_incref(json)))
			return -1;
		error_restore(&failed);
	}
	return ret;
}

/*
 * bkp_peek() failed. A damaged header or trailer proves nothing: say so and
 * stop; reading the file through is amber verify's work.
 */
static int unusable_ends(const char *path)
{
	if (error_status() != AMBER_EDATA)
		return error_prefix("%s: ", path);
	error_prefix("%s: no chunk can be proven without a usable header and trailer: ", path);
	return error_append(" (amber verify %s locates the damage)", path);
}

/* What bkp_peek() read: the header and the trailer. */
static uint64_t peeked_bytes(const struct bkp_info *info)
{
	return sizeof(struct disk_header) + (info->version == BKP_VERSION_1 ?
					     sizeof(struct disk_trailer) :
					     sizeof(struct disk_trailer_v2));
}

/* Chunk @chunk proven: its SHA-256 and what was read for it. */
static int print_proof(const char *path, const struct bkp_index *x,
		       const struct bkp_info *info, const struct bkp_summary *summary,
		       uint64_t chunk, const uint8_t *content)
{
	uint32_t len = chunk_length(&info->geo, chunk);
	uint8_t leaf[32];
	char hex[65];

	if (sha256(content, len, leaf))
		return -1;
	printf("%s: chunk %" PRIu64 " verified: %u bytes, SHA-256 %s (read %" PRIu64
	       " of %" PRIu64 " bytes)\n", path, chunk, len, format_hex(leaf, 32, hex),
	       bkp_index_bytes_read(x) + peeked_bytes(info), summary->file_bytes);
	return 0;
}

static int prove_chunk(const struct verify *v, const char *path, int fd, uint64_t chunk)
{
	struct bkp_summary summary;
	struct bkp_index *x = NULL;
	struct bkp_info info;
	uint8_t *content = NULL;
	int ret = -1;

	if (bkp_peek(fd, &info, &summary))
		return unusable_ends(path);
	if (v->pubkey && trailer_check_signature(v->pubkey, &summary))
		return error_prefix("%s: ", path);
	if (chunk >= info.geo.nr_chunks)
		return fail(AMBER_EUSAGE, "--chunk %" PRIu64 ": the volume has %" PRIu64 " chunks",
			    chunk, info.geo.nr_chunks);
	x = bkp_index_load(fd, &info, &summary);
	content = malloc(info.geo.chunk_bytes);
	if (!x || !content) {
		if (x)
			fail(AMBER_ESYS, "out of memory");
		goto out;
	}
	ret = bkp_index_set_key(x, v->key);
	if (!ret)
		ret = bkp_index_read(x, chunk, content);
	if (ret > 0)
		ret = print_proof(path, x, &info, &summary, chunk, content);
	else if (!ret)
		ret = fail(AMBER_EDATA, "chunk %" PRIu64 ": not in this backup (an incremental"
			   " holds the chunks changed since its parent)", chunk);
out:
	if (ret)
		error_prefix("%s: ", path);
	bkp_index_free(x);
	free(content);
	return ret;
}

static int verify_chunk(const struct cli *c, const struct verify *v)
{
	uint64_t chunk;
	int fd, ret;

	if (cli_args(c, 1, 1, "FILE") ||
	    cli_number(c, OPT_CHUNK, 0, BKP_MAX_CHUNKS - 1, 0, &chunk))
		return -1;
	if (c->value[OPT_DIGEST] || cli_flag(c, OPT_JSON) || v->no_key)
		return fail(AMBER_EUSAGE, "--chunk goes without --digest, --json and --no-key");
	if (!strcmp(c->args[0], "-"))
		return fail(AMBER_EUSAGE, "--chunk needs a seekable file, not standard input");
	fd = open(c->args[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", c->args[0]);
	ret = prove_chunk(v, c->args[0], fd, chunk);
	close(fd);
	return ret;
}

static int verify_files(const struct cli *c, struct verify *v)
{
	uint8_t (*want)[32] = NULL;
	int ret;

	if (cli_args(c, 1, INT_MAX, "FILE"))
		return -1;
	if (c->value[OPT_DIGEST]) {
		want = calloc(c->nr_args, sizeof(*want));
		if (!want)
			return fail(AMBER_ESYS, "out of memory");
		if (parse_digests(c->value[OPT_DIGEST], c->nr_args, want)) {
			free(want);
			return -1;
		}
	}
	if (cli_flag(c, OPT_JSON) && !(v->json = json_array())) {
		free(want);
		return fail(AMBER_ESYS, "out of memory");
	}
	ret = verify_all(c, want, v);
	json_decref(v->json);
	free(want);
	return ret;
}

static int load_keys(const struct cli *c, struct verify *v)
{
	v->no_key = cli_flag(c, OPT_NO_KEY);
	if (v->no_key && c->value[OPT_KEY])
		return fail(AMBER_EUSAGE, "--key and --no-key exclude each other");
	if (cli_key(c, OPT_KEY, OPT_PASSPHRASE_FILE, &v->key))
		return -1;
	if (c->value[OPT_PUBKEY] && !(v->pubkey = asym_load_public(c->value[OPT_PUBKEY], true)))
		return -1;
	return 0;
}

int verify_main(int argc, char **argv)
{
	struct cli c = { .command = "verify", .usage = usage, .options = options };
	struct verify v = { 0 };
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	ret = load_keys(&c, &v);
	if (!ret)
		ret = c.value[OPT_CHUNK] ? verify_chunk(&c, &v) : verify_files(&c, &v);
	data_key_free(v.key);
	asym_free(v.pubkey);
	return ret;
}
