// SPDX-License-Identifier: GPL-2.0
/* amber status: the state of amber volumes, for people or as JSON. */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "error.h"
#include "kernel.h"
#include "report.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber status [NAME] [--json]\n"
"\n"
"Show NAME, or every amber volume: state, epoch, store use, counters, change\n"
"tracking. --json prints an object for NAME, an array without it.\n";

enum { OPT_JSON };

static const struct cli_option options[] = {
	[OPT_JSON] = CLI_FLAG("json", 'j'),
	{ },
};

struct status_listing {
	json_t *json;			/* --json: the array of volumes */
	unsigned int shown;
};

static void print_header(void)
{
	printf("%-20s %-8s %8s %17s %8s %10s %10s %8s %-10s %-8s %s\n", "NAME", "STATE",
	       "EPOCH", "STORE", "CHUNK", "COPIED", "RELEASED", "WAITED", "OVERFLOW",
	       "CBT", "REASON");
}

static void print_human(const char *name, const struct amber_status *st)
{
	char store[32], chunk[32];

	snprintf(store, sizeof(store), "%" PRIu64 "/%" PRIu64, st->used, st->total);
	printf("%-20s %-8s %8" PRIu64 " %17s %8s %10" PRIu64 " %10" PRIu64 " %8" PRIu64
	       " %-10s %-8s %s\n", name, vol_state_name(st->state), st->epoch, store,
	       format_size(st->chunk_sectors * 512ULL, chunk, sizeof(chunk)), st->copied,
	       st->released, st->waited, overflow_name(st->overflow), cbt_name(st->cbt),
	       reason_name(st->reason));
}

static int show_one(void *ctx, const char *name)
{
	struct status_listing *l = ctx;
	struct amber_status st;

	if (volume_status(name, &st))
		return -1;
	if (l->json) {
		if (!json_append(l->json, volume_json(name, &st)))
			return fail(AMBER_ESYS, "out of memory");
	} else {
		if (!l->shown)
			print_header();
		print_human(name, &st);
	}
	l->shown++;
	return 0;
}

int status_main(int argc, char **argv)
{
	struct cli c = { .command = "status", .usage = usage, .options = options };
	struct status_listing l = { 0 };
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 0, 1, ""))
		return -1;
	if (cli_flag(&c, OPT_JSON)) {
		l.json = json_array();
		if (!l.json)
			return fail(AMBER_ESYS, "out of memory");
	}
	if (c.nr_args)
		ret = show_one(&l, c.args[0]);
	else
		ret = dm_for_each(AMBER_TARGET, show_one, &l);
	if (!l.json) {
		if (!ret && !l.shown)
			printf("no amber volumes\n");
		return ret;
	}
	/* NAME: its object; without NAME: the array, also an empty one. */
	if (!ret)
		ret = print_json(json_incref(c.nr_args ? json_array_get(l.json, 0) : l.json));
	json_decref(l.json);
	return ret;
}
