// SPDX-License-Identifier: GPL-2.0
/* amber umount: end what amber mount started. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "export.h"
#include "kernel.h"
#include "subcommands.h"

static const char usage[] =
"Usage: amber umount NAME\n"
"\n"
"Remove the read-only device /dev/mapper/NAME that amber mount made; its\n"
"server ends within a second. Unmount its filesystem first.\n";

static const struct cli_option options[] = { { } };

/* Its server's status names it a mount. */
static bool made_by_mount(const char *name)
{
	json_t *doc = export_read_status(name);
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	bool mount = kind && !strcmp(kind, "mount");

	json_decref(doc);
	return mount;
}

/* The server sees its device gone within a second, then ends the NBD device. */
static int wait_server(int index)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (!nbd_index_running(index))
			return 0;
		usleep(100000);
	}
	return fail(AMBER_ESYS, "the server of /dev/nbd%d did not end within 10 s", index);
}

int umount_main(int argc, char **argv)
{
	struct cli c = { .command = "umount", .usage = usage, .options = options };
	unsigned int major, minor;
	int index;
	char table[256];
	uint64_t sectors;
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, 1, "NAME") ||
	    dm_target_table(c.args[0], "linear", &sectors, table, sizeof(table)))
		return -1;
	if (sscanf(table, "%u:%u", &major, &minor) != 2 || !nbd_is(major, minor, &index) ||
	    !made_by_mount(c.args[0]))
		return fail(AMBER_EUSAGE, "%s is not a device amber mount made", c.args[0]);
	if (dm_remove(c.args[0]))
		return -1;
	return wait_server(index);
}
