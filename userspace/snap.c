// SPDX-License-Identifier: GPL-2.0
/* amber snap: one atomic commit barrier over several volumes. */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "module/uapi/amber.h"
#include "cli.h"
#include "error.h"
#include "kernel.h"
#include "subcommands.h"

static const char usage[] =
"Usage: amber snap NAME [NAME...] [--timeout MS]\n"
"\n"
"Raise one commit barrier over all named amber volumes at once: a write\n"
"acknowledged before the call is in every snapshot, a write issued after the\n"
"gates closed is in none. Prints each volume's epoch. Either every volume\n"
"gets its snapshot or none does. At most 16 volumes.\n"
"\n"
"      --timeout MS  how long to wait for in-flight writes (volume default)\n";

enum { OPT_TIMEOUT };

static const struct cli_option options[] = {
	[OPT_TIMEOUT] = CLI_VALUE("timeout", 0),
	{ },
};

int snap_main(int argc, char **argv)
{
	struct cli c = { .command = "snap", .usage = usage, .options = options };
	struct amber_volume v[AMBER_MAX_GROUP];
	uint64_t epochs[AMBER_MAX_GROUP], timeout;
	uint32_t devs[AMBER_MAX_GROUP];
	int i, j, ctl, ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, AMBER_MAX_GROUP, "NAME") ||
	    cli_number(&c, OPT_TIMEOUT, 1, UINT32_MAX, 0, &timeout))
		return -1;
	for (i = 0; i < c.nr_args; i++) {
		if (volume_open(c.args[i], &v[i]))
			return -1;
		devs[i] = v[i].dev;
		for (j = 0; j < i; j++)
			if (devs[j] == devs[i])
				return fail(AMBER_EUSAGE, "%s and %s are the same volume",
					    c.args[j], c.args[i]);
	}
	ctl = control_open();
	if (ctl < 0)
		return -1;
	ret = control_snap(ctl, devs, c.nr_args, timeout, epochs);
	close(ctl);
	for (i = 0; !ret && i < c.nr_args; i++)
		printf("%s epoch %" PRIu64 "\n", v[i].name, epochs[i]);
	return ret;
}
