// SPDX-License-Identifier: GPL-2.0
/* amber drop: end the snapshots of volumes. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "error.h"
#include "kernel.h"
#include "subcommands.h"

static const char usage[] =
"Usage: amber drop NAME [NAME...]\n"
"\n"
"End the snapshot of each named volume: its view reads fail from now on,\n"
"writes copy nothing and the store is empty again. For a snapshot that\n"
"'amber snap' took and no backup will use, or that a killed backup left.\n"
"A running backup of the volume fails. The origin is not touched.\n";

static const struct cli_option options[] = { { } };

/* Drop @name's snapshot; refuse a volume without one, by name. */
static int drop_one(const char *name)
{
	struct amber_volume v;
	struct amber_status st;

	if (volume_open(name, &v) || volume_status(v.name, &st))
		return -1;
	if (st.state == VOL_IDLE)
		return fail(AMBER_ESYS, "%s: no snapshot to drop", v.name);
	if (dm_message(v.name, "drop"))
		return -1;
	printf("%s dropped (epoch %" PRIu64 ")\n", v.name, st.epoch);
	return 0;
}

int drop_main(int argc, char **argv)
{
	struct cli c = { .command = "drop", .usage = usage, .options = options };
	int i, ret, failed = 0;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, INT_MAX, "NAME"))
		return -1;
	/* Each failure is said at once: the next one would overwrite it. */
	for (i = 0; i < c.nr_args; i++) {
		if (!drop_one(c.args[i]))
			continue;
		if (c.nr_args == 1)
			return -1;
		fprintf(stderr, "amber drop: %s\n", error_msg());
		failed++;
	}
	if (failed)
		return fail(error_status(), "%d of %d volumes not dropped", failed, c.nr_args);
	return 0;
}
