// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: any bytes as amberd's configuration file, a request
 * line and a catalog line. Whatever parses must satisfy the invariants the
 * daemon relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "request.h"

static struct config conf;

static void check_config(void)
{
	unsigned int i, j;

	if (!conf.backup_dir[0] || conf.backup_dir[0] != '/' || !conf.nr_grps)
		abort();
	for (i = 0; i < conf.nr_vols; i++)
		if (!conf_name_ok(conf.vol[i].name) || conf.vol[i].origin[0] != '/' ||
		    conf.vol[i].store[0] != '/')
			abort();
	for (i = 0; i < conf.nr_grps; i++) {
		const struct conf_group *g = &conf.grp[i];

		if (!conf_name_ok(g->name) || !g->nr_vols || g->nr_vols > AMBER_MAX_GROUP ||
		    !g->full_every || (g->scheduled && !g->interval))
			abort();
		for (j = 0; j < g->nr_vols; j++)
			if (g->vols[j] >= conf.nr_vols)
				abort();
	}
}

/* GROUP/NAME: one level below the backup directory, never "." or "..". */
static int inside(const char *f)
{
	const char *slash = strchr(f, '/');

	return slash && slash != f && !strchr(slash + 1, '/') && f[0] != '.' &&
	       slash[1] && slash[1] != '.';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct cat_entry e;
	struct request r;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	if (!config_parse("fuzz.conf", text, &conf))
		check_config();
	if (!request_parse(text, &r) && ((r.cmd == REQ_SNAP && !conf_name_ok(r.group)) ||
					 (*r.group && !conf_name_ok(r.group))))
		abort();
	if (!catalog_parse_line(text, &e) &&
	    (!inside(e.file) || (strcmp(e.parent, "-") && !inside(e.parent)) ||
	     !conf_name_ok(e.group) || (e.kind == BKP_FULL) != !strcmp(e.parent, "-")))
		abort();
	free(text);
	return 0;
}
