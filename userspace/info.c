// SPDX-License-Identifier: GPL-2.0
/* amber info: what a backup's header, trailer and index say. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber info FILE|-\n"
"\n"
"Print a backup's header and, for a seekable file, its trailer and index,\n"
"checking their checksums and structure (not the records: 'amber verify'\n"
"reads those). From standard input only the header is read.\n";

static const struct cli_option options[] = { { NULL, false } };

static int header_only(void)
{
	struct bkp_reader *r = bkp_reader_open(STDIN_FILENO);

	if (!r)
		return error_prefix("-: ");
	printf("-:\n");
	print_info(stdout, bkp_reader_info(r));
	bkp_reader_free(r);
	return 0;
}

static int seekable(const char *path)
{
	struct bkp_summary summary;
	struct bkp_index *index = NULL;
	struct bkp_info info;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	if (!bkp_peek(fd, &info, &summary))
		index = bkp_index_load(fd, &info, &summary);
	close(fd);
	if (!index)
		return error_prefix("%s: ", path);
	printf("%s:\n", path);
	print_info(stdout, &info);
	print_summary(stdout, &info, &summary);
	printf("  index     %zu extents at offset %" PRIu64 "\n", bkp_index_extents(index),
	       summary.index_offset);
	bkp_index_free(index);
	return 0;
}

int info_main(int argc, char **argv)
{
	struct cli c = { .command = "info", .usage = usage, .options = options };
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, 1, "FILE"))
		return -1;
	return strcmp(c.args[0], "-") ? seekable(c.args[0]) : header_only();
}
