// SPDX-License-Identifier: GPL-2.0
/* amber verify: read backups through, check everything, write nothing. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber verify FILE|- [FILE...]\n"
"\n"
"Read each backup to its end and check every header, record, checksum,\n"
"content digest, the index, the trailer and the image digest. Prints a\n"
"summary per backup; stops at the first bad one. Exit status 3 means a\n"
"backup is corrupt, truncated or not an amber backup.\n";

static const struct cli_option options[] = { { NULL, false } };

static int verify_stream(const char *path, int fd)
{
	struct bkp_reader *r = bkp_reader_open(fd);
	struct bkp_record rec;
	int ret;

	if (!r)
		return error_prefix("%s: ", path);
	while ((ret = bkp_reader_next(r, &rec)) > 0)
		;
	if (!ret) {
		printf("%s: ok\n", path);
		print_info(stdout, bkp_reader_info(r));
		print_summary(stdout, bkp_reader_info(r), bkp_reader_summary(r));
	} else {
		error_prefix("%s: ", path);
	}
	bkp_reader_free(r);
	return ret;
}

static int verify_path(const char *path)
{
	int fd, ret;

	if (!strcmp(path, "-"))
		return verify_stream("-", STDIN_FILENO);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	ret = verify_stream(path, fd);
	close(fd);
	return ret;
}

int verify_main(int argc, char **argv)
{
	struct cli c = { .command = "verify", .usage = usage, .options = options };
	int i, ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, CLI_MAX_ARGS, "FILE"))
		return -1;
	for (i = 0; i < c.nr_args; i++)
		if (verify_path(c.args[i]))
			return -1;
	return 0;
}
