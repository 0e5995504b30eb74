// SPDX-License-Identifier: GPL-2.0
/* amber drop: end the snapshots of volumes. */
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

static const struct cli_option options[] = { { NULL, false } };

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
	printf("%s dropped (epoch %llu)\n", v.name, (unsigned long long)st.epoch);
	return 0;
}

int drop_main(int argc, char **argv)
{
	struct cli c = { .command = "drop", .usage = usage, .options = options };
	int i, ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, INT_MAX, "NAME"))
		return -1;
	for (i = 0; i < c.nr_args; i++)
		if (drop_one(c.args[i]))
			ret = -1;
	return ret;
}
