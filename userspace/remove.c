// SPDX-License-Identifier: GPL-2.0
/* amber remove: remove NAME-view and NAME. */
#include <stdio.h>

#include "cli.h"
#include "error.h"
#include "kernel.h"
#include "subcommands.h"

static const char usage[] =
"Usage: amber remove NAME\n"
"\n"
"Remove the amber volume NAME and its view NAME-view. The origin and the\n"
"store keep their contents; 'amber create' with the same devices brings the\n"
"volume back with its change maps.\n";

static const struct cli_option options[] = { { } };

int remove_main(int argc, char **argv)
{
	struct cli c = { .command = "remove", .usage = usage, .options = options };
	char view[DM_NAME_MAX + sizeof(VIEW_SUFFIX)];
	struct amber_volume v;
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, 1, "NAME") || volume_open(c.args[0], &v))
		return -1;
	snprintf(view, sizeof(view), "%s%s", v.name, VIEW_SUFFIX);
	if (dm_exists(view) && dm_remove(view))
		return -1;
	if (dm_remove(v.name))
		return -1;
	printf("removed %s\n", v.name);
	return 0;
}
