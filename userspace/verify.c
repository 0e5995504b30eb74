// SPDX-License-Identifier: GPL-2.0
/* amber verify: read backups through, check everything, write nothing. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "digest.h"
#include "error.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber verify FILE|- [FILE...] [--digest D[,D...]]\n"
"\n"
"Read each backup to its end and check every header, record, checksum,\n"
"content digest, the index, the trailer and the image digest. Prints a\n"
"summary per backup; stops at the first bad one. Exit status 3 means a\n"
"backup is corrupt, truncated, not an amber backup, or not the one\n"
"expected.\n"
"\n"
"  --digest D[,D...]\n"
"               the image digest each FILE must have, one per FILE in the\n"
"               order given (from the catalog, or what amber backup\n"
"               printed): a backup whose checksums all hold but whose\n"
"               digest differs was not made by that backup. A seekable\n"
"               file is refused before it is read\n";

enum { OPT_DIGEST };

static const struct cli_option options[] = {
	[OPT_DIGEST]	= { "digest", true },
	{ NULL, false },
};

/* The trailer's digest, before the file is read through. */
static int check_peeked_digest(const char *path, int fd, const uint8_t *want)
{
	struct bkp_summary summary;
	struct bkp_info info;

	if (!want || !fd_is_regular(fd))
		return 0;
	if (bkp_peek(fd, &info, &summary) || check_expected_digest(summary.digest, want))
		return error_prefix("%s: ", path);
	return 0;
}

static int verify_stream(const char *path, int fd, const uint8_t *want)
{
	struct bkp_reader *r;
	struct bkp_record rec;
	int ret;

	if (check_peeked_digest(path, fd, want))
		return -1;
	r = bkp_reader_open(fd);
	if (!r)
		return error_prefix("%s: ", path);
	while ((ret = bkp_reader_next(r, &rec)) > 0)
		;
	if (!ret && want)
		ret = check_expected_digest(bkp_reader_summary(r)->digest, want);
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

static int verify_path(const char *path, const uint8_t *want)
{
	int fd, ret;

	if (!strcmp(path, "-"))
		return verify_stream("-", STDIN_FILENO, want);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	ret = verify_stream(path, fd, want);
	close(fd);
	return ret;
}

int verify_main(int argc, char **argv)
{
	struct cli c = { .command = "verify", .usage = usage, .options = options };
	uint8_t (*want)[32] = NULL;
	int i, ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, CLI_MAX_ARGS, "FILE"))
		return -1;
	if (c.value[OPT_DIGEST]) {
		want = calloc(c.nr_args, sizeof(*want));
		if (!want)
			return fail(AMBER_ESYS, "out of memory");
		if (parse_digests(c.value[OPT_DIGEST], c.nr_args, want)) {
			free(want);
			return -1;
		}
	}
	for (ret = 0, i = 0; i < c.nr_args && !ret; i++)
		ret = verify_path(c.args[i], want ? want[i] : NULL);
	free(want);
	return ret;
}
