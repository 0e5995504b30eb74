// SPDX-License-Identifier: GPL-2.0
/* amber list: one line about each backup, from its header and trailer. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "report.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber list FILE... [--json]\n"
"\n"
"One line per backup from its header and trailer (nothing else is read or\n"
"verified): kind, epoch, parent epoch, creation time, chunks, content and\n"
"file size, and the first bytes of its link, which an incremental child\n"
"names as its parent. A file that cannot be read is named on standard error\n"
"and the next one listed; the exit status is then 3 when one of them is a\n"
"damaged backup, 1 otherwise.\n"
"\n"
"  -j, --json   one JSON array, an object per file (amber(8) has the keys)\n";

enum { OPT_JSON };

static const struct cli_option options[] = {
	[OPT_JSON] = CLI_FLAG("json", 'j'),
	{ },
};

static void print_row(const char *path, const struct bkp_info *info,
		      const struct bkp_summary *s)
{
	char when[32], parent[24] = "-", content[32], size[32], link[13];

	if (info->kind == BKP_INCREMENTAL)
		snprintf(parent, sizeof(parent), "%" PRIu64, info->parent_epoch);
	printf("%-24s %-12s %8" PRIu64 " %8s  %-20s %10" PRIu64 " %10s %10s  %s\n", path,
	       info->kind == BKP_FULL ? (info->flags & BKP_SYNTHETIC ? "full*" : "full") :
	       "incremental", info->epoch, parent, format_time(info->created, when, sizeof(when)),
	       s->records, format_size(s->logical_bytes, content, sizeof(content)),
	       format_size(s->file_bytes, size, sizeof(size)), format_hex(s->link, 6, link));
}

static void print_header(void)
{
	printf("%-24s %-12s %8s %8s  %-20s %10s %10s %10s  %s\n", "FILE", "KIND", "EPOCH",
	       "PARENT", "CREATED", "CHUNKS", "CONTENT", "SIZE", "LINK");
}

/* A row, or with @json an object appended to it (a failure's too). */
static int list_one(const char *path, json_t *json)
{
	struct bkp_summary summary;
	struct bkp_info info;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0) {
		ret = fail_errno(AMBER_ESYS, "%s", path);
	} else {
		ret = bkp_peek(fd, &info, &summary);
		close(fd);
		if (ret)
			error_prefix("%s: ", path);
	}
	if (!json) {
		if (!ret)
			print_row(path, &info, &summary);
		return ret;
	}
	if (!json_append(json, ret ? failure_json(path) : backup_json(path, &info, &summary, false)))
		return fail(AMBER_ESYS, "out of memory");
	return ret;
}

int list_main(int argc, char **argv)
{
	struct cli c = { .command = "list", .usage = usage, .options = options };
	int i, ret, bad = 0, worst = AMBER_ESYS;
	json_t *json = NULL;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, INT_MAX, "FILE"))
		return -1;
	if (cli_flag(&c, OPT_JSON) && !(json = json_array()))
		return fail(AMBER_ESYS, "out of memory");
	if (!json)
		print_header();
	/* A file that cannot be listed is named, and the next one listed. */
	for (i = 0; i < c.nr_args; i++) {
		if (!list_one(c.args[i], json))
			continue;
		fflush(stdout);
		fprintf(stderr, "amber list: %s\n", error_msg());
		worst = MAX(worst, error_status());
		bad++;
	}
	if (json && print_json(json))
		return -1;
	if (bad)
		return fail(worst, "%d of %d files could not be listed", bad, c.nr_args);
	return 0;
}
