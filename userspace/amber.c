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
	{ "mount",	 mount_main,	   "a backup chain as a read-only device" },
	{ "umount",	 umount_main,	   "end what amber mount started" },
	{ "verify",	 verify_main,	   "check every byte of backups" },
	{ "consolidate", consolidate_main, "merge a chain into a new full backup" },
	{ "list",	 list_main,	   "one line about each backup" },
	{ "info",	 info_main,	   "everything about one backup" },
	{ "daemon",	 daemon_main,	   "send a request to amberd" },
	{ "key",	 key_main,	   "make, show and recover keys" },
};

static void show_usage(FILE *out)
{
	const struct subcommand *s;

	fprintf(out, "Usage: amber COMMAND [ARGS...]\n\nCommands:\n");
	for (s = subcommands; s < subcommands + ARRAY_SIZE(subcommands); s++)
		fprintf(out, "  %-12s %s\n", s->name, s->summary);
	fprintf(out, "\n'amber help COMMAND' (or 'amber COMMAND --help') describes each; amber(8)\nhas it all.\n"
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

static const struct subcommand *find_subcommand(const char *name)
{
	const struct subcommand *s;

	for (s = subcommands; s < subcommands + ARRAY_SIZE(subcommands); s++)
		if (!strcmp(name, s->name))
			return s;
	fprintf(stderr, "amber: unknown command '%s'\n", name);
	show_usage(stderr);
	return NULL;
}

/* amber help [COMMAND]: the usage of amber, or of COMMAND. */
static int help(int argc, char **argv)
{
	char help_opt[] = "--help";
	const struct subcommand *s;

	if (argc < 3) {
		show_usage(stdout);
		return 0;
	}
	s = find_subcommand(argv[2]);
	if (!s)
		return AMBER_EUSAGE;
	return run(s, 2, (char *[]){ argv[2], help_opt, NULL });
}

int main(int argc, char **argv)
{
	const struct subcommand *s;

	if (argc < 2) {
		show_usage(stderr);
		return AMBER_EUSAGE;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return help(argc, argv);
	if (!strcmp(argv[1], "--version")) {
		printf("%s\n", tool_version());
		return 0;
	}
	s = find_subcommand(argv[1]);
	return s ? run(s, argc - 1, argv + 1) : AMBER_EUSAGE;
}
