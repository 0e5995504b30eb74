// SPDX-License-Identifier: GPL-2.0
/* amber info: what a backup's header, trailer and index say. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "keys.h"
#include "report.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber info FILE|- [--json] [--key KEYFILE [--passphrase-file FILE]]\n"
"\n"
"Print a backup's header and, for a seekable file, its trailer and index,\n"
"checking their checksums and structure (not the records: 'amber verify'\n"
"reads those). From standard input only the header is read.\n"
"\n"
"  -j, --json   one JSON object (amber(8) has the keys)\n"
CLI_KEY_USAGE
"               With the key, the trailer's MAC is checked too\n";

enum { OPT_JSON, OPT_KEY, OPT_PASSPHRASE_FILE };

static const struct cli_option options[] = {
	[OPT_JSON] = CLI_FLAG("json", 'j'),
	[OPT_KEY] = CLI_VALUE("key", 'k'),
	[OPT_PASSPHRASE_FILE] = CLI_VALUE("passphrase-file", 0),
	{ },
};

/* The header from standard input: @key, if given, must be the backup's. */
static int header_only(bool json, const struct data_key *key)
{
	struct bkp_reader *r = bkp_reader_open(STDIN_FILENO);
	int ret = 0;

	if (!r || check_backup_key(bkp_reader_info(r), key, true)) {
		bkp_reader_free(r);
		return error_prefix("-: ");
	}
	if (json) {
		ret = print_json(backup_json("-", bkp_reader_info(r), NULL, false));
	} else {
		printf("-:\n");
		print_info(stdout, bkp_reader_info(r));
	}
	bkp_reader_free(r);
	return ret;
}

static json_t *seekable_json(const char *path, const struct bkp_info *info,
			     const struct bkp_summary *summary, const struct bkp_index *index)
{
	json_t *o = backup_json(path, info, summary, false);

	if (o && json_object_set_new(o, "index", json_pack("{s:I, s:I}",
				     "extents", (json_int_t)bkp_index_extents(index),
				     "offset", (json_int_t)(info->version == BKP_VERSION_1 ?
							    summary->index_offset :
							    summary->table_offset)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int seekable(const char *path, bool json, const struct data_key *key)
{
	struct bkp_summary summary;
	struct bkp_index *index = NULL;
	struct bkp_info info;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n;

	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	if (!bkp_peek(fd, &info, &summary))
		index = bkp_index_load(fd, &info, &summary);
	close(fd);
	if (index && key && bkp_index_set_key(index, key)) {
		bkp_index_free(index);
		index = NULL;
	}
	if (!index)
		return error_prefix("%s: ", path);
	if (json) {
		int ret = print_json(seekable_json(path, &info, &summary, index));

		bkp_index_free(index);
		return ret;
	}
	printf("%s:\n", path);
	print_info(stdout, &info);
	print_summary(stdout, &info, &summary, false);
	n = bkp_index_extents(index);
	if (info.version == BKP_VERSION_1)
		printf("  index     %zu extent%s at offset %" PRIu64 " (format 1)\n", n,
		       n == 1 ? "" : "s", summary.index_offset);
	else
		printf("  index     %zu block%s, block table at offset %" PRIu64 " (format 2)\n",
		       n, n == 1 ? "" : "s", summary.table_offset);
	bkp_index_free(index);
	return 0;
}

int info_main(int argc, char **argv)
{
	struct cli c = { .command = "info", .usage = usage, .options = options };
	struct data_key *key;
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, 1, "FILE") || cli_key(&c, OPT_KEY, OPT_PASSPHRASE_FILE, &key))
		return -1;
	if (!strcmp(c.args[0], "-"))
		ret = header_only(cli_flag(&c, OPT_JSON), key);
	else
		ret = seekable(c.args[0], cli_flag(&c, OPT_JSON), key);
	data_key_free(key);
	return ret;
}
