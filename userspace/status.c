// SPDX-License-Identifier: GPL-2.0
/* amber status: the state of amber volumes, for people or as JSON. */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "error.h"
#include "kernel.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber status [NAME] [--json]\n"
"\n"
"Show NAME, or every amber volume: state, epoch, store use, counters, change\n"
"tracking. --json prints an object for NAME, an array without it.\n";

enum { OPT_JSON };

static const struct cli_option options[] = {
	[OPT_JSON] = { "json", false },
	{ NULL, false },
};

struct status_listing {
	bool json;
	unsigned int shown;
};

static void print_json(const char *name, const struct amber_status *st)
{
	printf("{\"name\":");
	print_json_string(stdout, name);
	printf(",\"state\":\"%s\",\"epoch\":%" PRIu64 ",\"chunk_sectors\":%u,"
	       "\"store_used\":%" PRIu64 ",\"store_total\":%" PRIu64 ",\"copied\":%" PRIu64
	       ",\"released\":%" PRIu64 ",\"waited\":%" PRIu64 ",\"overflow\":\"%s\","
	       "\"cbt\":\"%s\",\"reason\":", vol_state_name(st->state), st->epoch,
	       st->chunk_sectors, st->used, st->total, st->copied, st->released, st->waited,
	       overflow_name(st->overflow), cbt_name(st->cbt));
	if (st->reason == REASON_NONE)
		printf("null}");
	else
		printf("\"%s\"}", reason_name(st->reason));
}

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
		printf("%s", l->shown ? "," : "");
		print_json(name, &st);
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
	l.json = cli_flag(&c, OPT_JSON);
	if (c.nr_args) {
		ret = show_one(&l, c.args[0]);
		if (!ret && l.json)
			printf("\n");
		return ret;
	}
	if (l.json)
		printf("[");
	ret = dm_for_each(AMBER_TARGET, show_one, &l);
	if (l.json)
		printf("]\n");
	else if (!ret && !l.shown)
		printf("no amber volumes\n");
	return ret;
}
