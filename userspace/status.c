// SPDX-License-Identifier: GPL-2.0
/* amber status: the state of amber volumes, for people or as JSON. */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "export.h"
#include "kernel.h"
#include "report.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber status [NAME] [--json]\n"
"\n"
"Show NAME, or every amber volume: state, epoch, store use, counters, change\n"
"tracking; then every instant restore (progress, rate, time left, errors)\n"
"and mount. --json prints an object for NAME, an array without it.\n";

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

/* A server whose process is gone while it was not done has stopped. */
static const char *export_state(json_t *doc)
{
	const char *state = json_string_value(json_object_get(doc, "state"));
	json_int_t pid = json_integer_value(json_object_get(doc, "pid"));

	if (!state)
		return "unknown";
	if (strcmp(state, "restored") && (pid <= 0 || kill(pid, 0)))
		return "stopped: its server is not running (--resume continues)";
	return state;
}

static json_int_t field(json_t *doc, const char *key)
{
	return json_integer_value(json_object_get(doc, key));
}

static void print_export(const char *name, json_t *doc)
{
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	const char *error = json_string_value(json_object_get(doc, "last_error"));
	char region[32], rate[32];

	printf("%s: %s, %s", name, kind ? kind : "?", export_state(doc));
	if (json_object_get(doc, "total_regions"))
		printf(", %.1f %% (%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
		       " regions of %s) to %s, %s/s", json_number_value(json_object_get(doc,
		       "percent")), field(doc, "hydrated_regions"), field(doc, "total_regions"),
		       format_size(field(doc, "region_bytes"), region, sizeof(region)),
		       json_string_value(json_object_get(doc, "target")),
		       format_size(field(doc, "rate_bytes_per_s"), rate, sizeof(rate)));
	if (json_is_integer(json_object_get(doc, "eta_s")))
		printf(", %" JSON_INTEGER_FORMAT " s left", field(doc, "eta_s"));
	printf("; %" JSON_INTEGER_FORMAT " chunks verified, %" JSON_INTEGER_FORMAT
	       " read errors\n", field(doc, "chunks_verified"), field(doc, "read_errors"));
	if (error && *error)
		printf("%s: last error: %s\n", name, error);
}

/* The status a restore or mount server keeps for @name: shown, 1; 0 if none. */
static int show_export(struct status_listing *l, const char *name)
{
	json_t *doc = export_read_status(name);

	if (!doc)
		return 0;
	json_object_set_new(doc, "state", json_string(export_state(doc)));
	if (l->json) {
		if (!json_append(l->json, doc))
			return fail(AMBER_ESYS, "out of memory");
	} else {
		print_export(name, doc);
		json_decref(doc);
	}
	l->shown++;
	return 1;
}

/* Every instant restore and mount whose device is there. */
static int show_exports(struct status_listing *l)
{
	DIR *dir = opendir(EXPORT_LOG_DIR);
	struct dirent *e;
	char name[DM_NAME_MAX];
	size_t len;
	int ret = 0;

	if (!dir)
		return 0;
	while (!ret && (e = readdir(dir))) {
		len = strlen(e->d_name);
		if (len <= 5 || len - 5 >= sizeof(name) || strcmp(e->d_name + len - 5, ".json"))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 5), e->d_name);
		if (dm_exists(name) && !volume_is_amber(name))
			ret = show_export(l, name) < 0;
	}
	closedir(dir);
	return ret ? -1 : 0;
}

static int show_one(void *ctx, const char *name)
{
	struct status_listing *l = ctx;
	struct amber_status st;

	if (!dm_exists(name) || !volume_is_amber(name)) {
		int ret = show_export(l, name);

		if (ret)
			return ret < 0 ? -1 : 0;
	}
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
		ret = dm_for_each(AMBER_TARGET, show_one, &l) || show_exports(&l);
	if (!l.json) {
		if (!ret && !l.shown)
			printf("no amber volumes, restores or mounts\n");
		return ret;
	}
	/* NAME: its object; without NAME: the array, also an empty one. */
	if (!ret)
		ret = print_json(json_incref(c.nr_args ? json_array_get(l.json, 0) : l.json));
	json_decref(l.json);
	return ret;
}
