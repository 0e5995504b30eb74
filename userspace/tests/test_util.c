// SPDX-License-Identifier: GPL-2.0
/* Sizes, numbers and the command line. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "harness.h"
#include "helpers.h"
#include "subcommands.h"
#include "util.h"

TEST(util_sizes)
{
	static const struct { const char *s; uint64_t bytes; } good[] = {
		{ "65536", 65536 }, { "64K", 65536 }, { "64k", 65536 }, { "64KiB", 65536 },
		{ "64KB", 65536 }, { "1M", 1 << 20 }, { "2G", 2ULL << 30 }, { "1T", 1ULL << 40 },
		{ "0", 0 }, { "512B", 512 },
	};
	static const char *const bad[] = { "", "K", "64X", "64 K", "-1", "64Ki", "1.5M",
					   "99999999999999T", "18446744073709551616" };
	uint64_t v;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		CHECK_OK(parse_size(good[i].s, &v));
		CHECK_EQ(v, good[i].bytes);
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK_FAILS(parse_size(bad[i], &v), AMBER_EUSAGE, "");
	CHECK_FAILS(parse_u64("12a", 0, 100, &v), AMBER_EUSAGE, "not a number");
	CHECK_FAILS(parse_u64("101", 0, 100, &v), AMBER_EUSAGE, "out of range 0..100");
	CHECK_OK(parse_u64("100", 0, 100, &v));
	CHECK_EQ(v, 100);
}

TEST(util_command_line_errors_name_the_option)
{
	CHECK_FAILS(run_cmd(backup_main, "backup", "db", "--to", "x", "--level", "abc", NULL),
		    AMBER_EUSAGE, "--level: 'abc' is not a number");
	CHECK_FAILS(run_cmd(backup_main, "backup", "db", "--to", "x", "--level", "99", NULL),
		    AMBER_EUSAGE, "--level: 99 is out of range");
	CHECK_FAILS(run_cmd(backup_main, "backup", "db", NULL), AMBER_EUSAGE, "--to is required");
	CHECK_FAILS(run_cmd(backup_main, "backup", "db", "--to", NULL), AMBER_EUSAGE,
		    "--to needs a value");
	CHECK_FAILS(run_cmd(backup_main, "backup", "db", "--to=a", "--to=b", NULL), AMBER_EUSAGE,
		    "--to given twice");
	CHECK_FAILS(run_cmd(backup_main, "backup", "db", "--to", "x", "--fast", NULL),
		    AMBER_EUSAGE, "unknown option --fast");
	CHECK_FAILS(run_cmd(backup_main, "backup", "db", "--to", "x", "-f", NULL),
		    AMBER_EUSAGE, "unknown option -f");
	CHECK_FAILS(run_cmd(backup_main, "backup", "--to", "x", NULL), AMBER_EUSAGE,
		    "missing NAME");
	CHECK_FAILS(run_cmd(backup_main, "backup", "a", "b", "--to", "x", NULL), AMBER_EUSAGE,
		    "unexpected argument 'b'");
	CHECK_FAILS(run_cmd(backup_main, "backup", "db", "--to", "x", "--level", "3",
			    "--no-compress", NULL), AMBER_EUSAGE, "exclude each other");
	CHECK_FAILS(run_cmd(create_main, "create", "db", "--origin", "o", "--store", "s",
			    "--overflow", "sometimes", NULL), AMBER_EUSAGE, "--overflow");
	CHECK_FAILS(run_cmd(create_main, "create", "a/b", "--origin", "o", "--store", "s",
			    NULL), AMBER_EUSAGE, "not a usable device name");
	CHECK_FAILS(run_cmd(snap_main, "snap", NULL), AMBER_EUSAGE, "missing NAME");
	CHECK_FAILS(run_cmd(status_main, "status", "--json=yes", NULL), AMBER_EUSAGE,
		    "--json takes no value");
	CHECK_FAILS(run_cmd(verify_main, "verify", NULL), AMBER_EUSAGE, "missing FILE");
}

/* Parse a NULL-terminated command line with the options of amber backup's
 * shape; returns cli_parse()'s result. */
static int parse_words(struct cli *c, ...)
{
	static const struct cli_option options[] = {
		CLI_VALUE("to", 't'), CLI_VALUE("level", 'l'), CLI_FLAG("progress", 'p'),
		CLI_FLAG("force", 'f'), CLI_FLAG("format", 0), { },
	};
	static char *argv[16];
	int argc = 0;
	va_list ap;

	memset(c, 0, sizeof(*c));
	c->command = "test";
	c->usage = "";
	c->options = options;
	argv[argc++] = "test";
	va_start(ap, c);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	return cli_parse(c, argc, argv);
}

TEST(util_options_follow_getopt_conventions)
{
	struct cli c;

	CHECK_OK(parse_words(&c, "-t", "x", "-l5", "-p", "NAME", NULL));
	CHECK(!strcmp(c.value[0], "x") && !strcmp(c.value[1], "5") && cli_flag(&c, 2));
	CHECK(c.nr_args == 1 && !strcmp(c.args[0], "NAME"));
	/* options after arguments, a unique prefix, clustered flags */
	CHECK_OK(parse_words(&c, "NAME", "--lev=7", "-pf", "-tFILE", NULL));
	CHECK(!strcmp(c.value[1], "7") && cli_flag(&c, 2) && cli_flag(&c, 3));
	CHECK(!strcmp(c.value[0], "FILE") && c.nr_args == 1);
	/* "--" ends the options; "-" is an argument */
	CHECK_OK(parse_words(&c, "-", "--", "-p", NULL));
	CHECK(!cli_flag(&c, 2) && c.nr_args == 2 && !strcmp(c.args[0], "-") &&
	      !strcmp(c.args[1], "-p"));
	CHECK_FAILS(parse_words(&c, "--fo", NULL), AMBER_EUSAGE, "ambiguous option --fo");
	CHECK_FAILS(parse_words(&c, "-x", NULL), AMBER_EUSAGE, "unknown option -x");
	CHECK_FAILS(parse_words(&c, "-t", NULL), AMBER_EUSAGE, "--to needs a value");
	CHECK_FAILS(parse_words(&c, "-t", "a", "--to=b", NULL), AMBER_EUSAGE,
		    "--to given twice");
	CHECK_FAILS(parse_words(&c, "--progress=1", NULL), AMBER_EUSAGE,
		    "--progress takes no value");
	CHECK_EQ(parse_words(&c, "NAME", "-h", NULL), 1);
	CHECK_FAILS(parse_words(&c, "--help=x", NULL), AMBER_EUSAGE, "--help takes no value");
	/* amberd runs "create NAME --origin ...": POSIXLY_CORRECT changes nothing */
	setenv("POSIXLY_CORRECT", "1", 1);
	CHECK_OK(parse_words(&c, "NAME", "--to", "x", "OTHER", "-p", NULL));
	unsetenv("POSIXLY_CORRECT");
	CHECK(!strcmp(c.value[0], "x") && cli_flag(&c, 2) && c.nr_args == 2);
	CHECK(!strcmp(c.args[0], "NAME") && !strcmp(c.args[1], "OTHER"));
}

/* A name that is not UTF-8: only its bad bytes become U+FFFD in JSON. */
TEST(util_json_text_keeps_what_is_utf8)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "caf\xc3\xa9-\xff.amb", "caf\xc3\xa9-\xef\xbf\xbd.amb" },
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },		/* overlong '/' */
		{ "\xed\xa0\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx" },	/* surrogate */
		{ "\xf0\x9f\x92\xbe\xe2\x82", "\xf0\x9f\x92\xbe\xef\xbf\xbd\xef\xbf\xbd" },
	};
	unsigned int i;
	json_t *v;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		v = json_text(cases[i].in);
		CHECK(v && !strcmp(json_string_value(v), cases[i].out));
		json_decref(v);
	}
}

/* A shell glob of backups: no limit on the number of arguments. */
TEST(util_any_number_of_arguments)
{
	static char *argv[1002];
	struct cli c = { .command = "list", .usage = "", .options = (struct cli_option[]){ { } } };
	int i;

	argv[0] = "list";
	for (i = 1; i < 1001; i++)
		argv[i] = "x.amb";
	argv[1001] = NULL;
	CHECK_OK(cli_parse(&c, 1001, argv));
	CHECK_EQ(c.nr_args, 1000);
	CHECK_OK(cli_args(&c, 1, INT_MAX, "FILE"));
}

TEST(util_every_subcommand_has_help)
{
	int (*const mains[])(int, char **) = {
		format_main, create_main, remove_main, status_main, snap_main, backup_main,
		restore_main, verify_main, consolidate_main, list_main, info_main,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(mains); i++)
		CHECK_OK(run_cmd(mains[i], "cmd", "--help", NULL));
}

/* The binary: exit statuses as amber(8) documents them. */
TEST(util_binary_exit_statuses)
{
	const char *bin = getenv("AMBER_BIN");
	char cmd[512];

	if (!bin)
		test_failed(__FILE__, __LINE__, "AMBER_BIN is not set");
	snprintf(cmd, sizeof(cmd), "%s --version | grep -q '^amber 1\\.'", bin);
	CHECK_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s frobnicate 2>/dev/null", bin);
	CHECK_EQ(WEXITSTATUS(system(cmd)), 2);
	snprintf(cmd, sizeof(cmd), "%s verify --bogus 2>err; grep -q 'amber verify: unknown "
		 "option --bogus' err", bin);
	CHECK_EQ(WEXITSTATUS(system(cmd)), 0);
	snprintf(cmd, sizeof(cmd), "%s verify --bogus 2>/dev/null", bin);
	CHECK_EQ(WEXITSTATUS(system(cmd)), 2);
	snprintf(cmd, sizeof(cmd), "head -c 1000 /dev/zero > z; %s verify z 2>/dev/null", bin);
	CHECK_EQ(WEXITSTATUS(system(cmd)), 3);
	snprintf(cmd, sizeof(cmd), "%s verify nonexistent 2>/dev/null", bin);
	CHECK_EQ(WEXITSTATUS(system(cmd)), 1);
	snprintf(cmd, sizeof(cmd), "%s backup --help | grep -q 'Usage: amber backup'", bin);
	CHECK_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s help backup | grep -q 'Usage: amber backup'", bin);
	CHECK_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s help | grep -q 'Usage: amber COMMAND'", bin);
	CHECK_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s help frobnicate 2>/dev/null", bin);
	CHECK_EQ(WEXITSTATUS(system(cmd)), 2);
}

/* A backup is a whole database: 0600 whatever the umask, never written
 * through a planted link, FIFO or file. */
TEST(util_backup_outputs_are_private_and_never_followed)
{
	struct bkp_info info;
	struct image im;
	struct stat st;
	bool created;
	int fd;

	umask(022);
	fd = open_output("new.amb", true, &created);
	CHECK(fd >= 0 && created);
	CHECK(!fstat(fd, &st) && (st.st_mode & 07777) == 0600);
	close(fd);
	umask(0277);
	fd = open_output("owner.amb", false, &created);
	CHECK(fd >= 0 && created);
	CHECK(!fstat(fd, &st) && (st.st_mode & 07777) == 0600);
	close(fd);
	umask(022);

	CHECK(!symlink("victim", "dangling"));
	CHECK_FAILS(open_output("dangling", true, &created), AMBER_ESYS, "symbolic link");
	CHECK(access("victim", F_OK) && !created);
	fd = open("victim", O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0 && write(fd, "keep", 4) == 4);
	close(fd);
	CHECK(!symlink("victim", "link"));
	CHECK_FAILS(open_output("link", true, &created), AMBER_ESYS, "symbolic link");
	CHECK(!symlink("/dev/null", "devlink"));
	CHECK_FAILS(open_output("devlink", true, &created), AMBER_ESYS, "symbolic link");
	CHECK_FAILS(open_output("victim", true, &created), AMBER_ESYS, "refusing to overwrite");
	CHECK(!stat("victim", &st) && st.st_size == 4);
	CHECK(!mkfifo("fifo", 0600));
	CHECK_FAILS(open_output("fifo", true, &created), AMBER_ESYS, "");
	CHECK_FAILS(open_output("/dev/null", false, &created), AMBER_ESYS, "refusing to overwrite");
	fd = open_output("/dev/null", true, &created);
	CHECK(fd >= 0 && !created);
	close(fd);

	/* amber consolidate makes its file through the same door. */
	umask(0);
	image_make(&im, 16 * 4096, 4096, 1);
	info = test_info(&im, BKP_FULL, 1);
	write_all("full.amb", &info, &im, 3, NULL);
	CHECK_OK(run_cmd(consolidate_main, "consolidate", "full.amb", "--to", "syn.amb", NULL));
	CHECK(!stat("syn.amb", &st) && (st.st_mode & 07777) == 0600);
	image_free(&im);
}

/* Where amberd keeps backups: ours alone, and so is every directory above. */
TEST(util_backup_dir_must_be_trusted)
{
	char cwd[PATH_MAX], d[PATH_MAX + 32];

	CHECK(getcwd(cwd, sizeof(cwd)));
	CHECK(!chmod(cwd, 0700));
	CHECK(!mkdir("mine", 0700));
	snprintf(d, sizeof(d), "%s/mine", cwd);
	CHECK_OK(check_trusted_dir(d));
	snprintf(d, sizeof(d), "%s/mine//", cwd);
	CHECK_OK(check_trusted_dir(d));
	CHECK_FAILS(check_trusted_dir("mine"), AMBER_EUSAGE, "not an absolute path");

	CHECK(!chmod("mine", 0770));
	snprintf(d, sizeof(d), "%s/mine", cwd);
	CHECK_FAILS(check_trusted_dir(d), AMBER_ESYS, "mine is writable by its group or by "
		    "everyone (mode 0770)");
	CHECK(!chmod("mine", 01777));
	CHECK_FAILS(check_trusted_dir(d), AMBER_ESYS, "(mode 1777)");

	/* A parent anyone may write to could swap the directory for its own. */
	CHECK(!mkdir("mine/sub", 0700));
	CHECK(!chmod("mine", 0777));
	snprintf(d, sizeof(d), "%s/mine/sub", cwd);
	CHECK_FAILS(check_trusted_dir(d), AMBER_ESYS, "/mine is writable");
	CHECK(!chmod("mine", 01777));	/* like /tmp */
	CHECK_OK(check_trusted_dir(d));

	/* A link is followed, and where it leads is what is checked. */
	CHECK(!symlink("mine/sub", "link"));
	snprintf(d, sizeof(d), "%s/link", cwd);
	CHECK_OK(check_trusted_dir(d));
	CHECK(!chmod("mine", 0777));
	CHECK_FAILS(check_trusted_dir(d), AMBER_ESYS, "/mine is writable");
	CHECK(!chmod("mine", 01777));
	CHECK(!symlink("/nonexistent-amber-dir", "dangling"));
	snprintf(d, sizeof(d), "%s/dangling", cwd);
	CHECK_FAILS(check_trusted_dir(d), AMBER_ESYS, "No such file");

	if (geteuid() == 0) {
		CHECK(!chown("mine/sub", 65534, 65534));
		snprintf(d, sizeof(d), "%s/mine/sub", cwd);
		CHECK_FAILS(check_trusted_dir(d), AMBER_ESYS, "sub is owned by uid 65534");
	}
}
