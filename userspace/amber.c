// SPDX-License-Identifier: GPL-2.0
/* amber: crash-consistent snapshots of live volumes, streamed to backups. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "subcommands.h"
#include "util.h"

static const struct subcommand {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
} subcommands[] = {
	{ "format",	 format_main,	   "write a new store superblock" },
	{ "create",	 create_main,	   "create an amber volume and its view" },
	{ "remove",	 remove_main,	   "remove an amber volume and its view" },
	{ "status",	 status_main,	   "show amber volumes" },
	{ "snap",	 snap_main,	   "cut one atomic barrier over volumes" },
	{ "drop",	 drop_main,	   "end the snapshots of volumes" },
	{ "backup",	 backup_main,	   "stream a snapshot into a backup" },
	{ "restore",	 restore_main,	   "write a backup chain to a device" },
	{ "verify",	 verify_main,	   "check every byte of backups" },
	{ "consolidate", consolidate_main, "merge a chain into a new full backup" },
	{ "list",	 list_main,	   "one line about each backup" },
	{ "info",	 info_main,	   "everything about one backup" },
	{ "daemon",	 daemon_main,	   "send a request to amberd" },
};

static void show_usage(FILE *out)
{
	const struct subcommand *s;

	fprintf(out, "Usage: amber COMMAND [ARGS...]\n\nCommands:\n");
	for (s = subcommands; s < subcommands + ARRAY_SIZE(subcommands); s++)
		fprintf(out, "  %-12s %s\n", s->name, s->summary);
	fprintf(out, "\n'amber COMMAND --help' describes each; amber(8) has it all.\n"
		"Exit status: 0 ok, 1 error, 2 usage, 3 bad backup data.\n");
}

static int run(const struct subcommand *s, int argc, char **argv)
{
	if (!s->main(argc, argv))
		return 0;
	fprintf(stderr, "amber %s: %s\n", s->name, error_msg());
	if (error_status() == AMBER_EUSAGE)
		fprintf(stderr, "Try 'amber %s --help'.\n", s->name);
	return error_status() ? error_status() : AMBER_ESYS;
}

int main(int argc, char **argv)
{
	const struct subcommand *s;

	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		show_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? AMBER_EUSAGE : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("%s\n", tool_version());
		return 0;
	}
	for (s = subcommands; s < subcommands + ARRAY_SIZE(subcommands); s++)
		if (!strcmp(argv[1], s->name))
			return run(s, argc - 1, argv + 1);
	fprintf(stderr, "amber: unknown command '%s'\n", argv[1]);
	show_usage(stderr);
	return AMBER_EUSAGE;
}
