// SPDX-License-Identifier: GPL-2.0
/* amberd: its configuration file, catalog, retention, request lines and
 * clients. */
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog.h"
#include "client.h"
#include "config.h"
#include "daemon.h"
#include "harness.h"
#include "job.h"
#include "helpers.h"
#include "queue.h"
#include "request.h"
#include "serve.h"
#include "subcommands.h"
#include "util.h"

static const char good_conf[] =
"# a comment\n"
"[daemon]\n"
"socket = /run/amber/amberd.sock\n"
"backup_dir = /var/backups/amber\n"
"retention = 3\n"
"level = 1\n"
"min_free = 20G\n"
"\n"
"[volume pgdata]\n"
"origin = /dev/vdb\n"
"store = /dev/vdc\n"
"chunk = 128K\n"
"overflow = invalidate\n"
"  ; indented comment\n"
"[volume pgwal]\n"
"origin=/dev/vdd\n"
"store=/dev/vde\n"
"epochs = 32\n"
"block_timeout = 5000\n"
"\n"
"[group pg]\n"
"volumes = pgdata , pgwal\n"
"trigger_user = root\n"
"min_interval = 15m\n"
"\n"
"[group wal-only]\n"
"volumes = pgwal\n"
"flush = no\n"
"retention = 0\n"
"full_every = 2\n"
"min_interval = 0\n"
"\n"
"[schedule pg]\n"
"interval = 6h\n"
"full_every = 4\n";

TEST(daemon_config_parses_every_key)
{
	static struct config c;
	const struct conf_group *g;

	CHECK_OK(config_parse("t.conf", good_conf, &c));
	CHECK(!strcmp(c.socket, "/run/amber/amberd.sock"));
	CHECK(!strcmp(c.backup_dir, "/var/backups/amber"));
	CHECK_EQ(c.retention, 3);
	CHECK_EQ(c.level, 1);
	CHECK_EQ(c.nr_vols, 2);
	CHECK(!strcmp(c.vol[0].name, "pgdata") && !strcmp(c.vol[0].store, "/dev/vdc"));
	CHECK_EQ(c.vol[0].chunk, 128 * 1024);
	CHECK(c.vol[0].chunk_set && !c.vol[1].chunk_set);
	CHECK(!strcmp(c.vol[0].overflow, "invalidate"));
	CHECK_EQ(c.vol[1].epochs, 32);
	CHECK_EQ(c.vol[1].block_timeout, 5000);
	CHECK_EQ(c.vol[1].chunk, 64 * 1024);
	g = config_group(&c, "pg");
	CHECK(g);
	CHECK_EQ(g->nr_vols, 2);
	CHECK_EQ(g->vols[0], 0);
	CHECK_EQ(g->vols[1], 1);
	CHECK_EQ(g->retention, 3);		/* from [daemon] */
	CHECK(!strcmp(g->trigger_user, "root") && g->trigger_uid == 0);
	CHECK(g->scheduled);
	CHECK_EQ(g->interval, 6 * 3600);
	CHECK_EQ(g->full_every, 4);
	CHECK_EQ(g->min_interval, 15 * 60);
	CHECK(c.min_free == 20ULL << 30 && !c.min_free_percent);
	g = config_group(&c, "wal-only");
	CHECK(g && !g->scheduled && g->retention == 0 && !*g->trigger_user && !g->flush);
	CHECK_EQ(g->min_interval, 0);
	CHECK(config_group(&c, "pg")->flush);
	CHECK_EQ(g->full_every, 2);
	CHECK_OK(config_parse("t.conf", "[daemon]\nbackup_dir=/b\n[volume v]\norigin=/o\n"
			      "store=/s\n[group g]\nvolumes=v\n", &c));
	CHECK_EQ(c.grp[0].full_every, CONF_DEFAULT_FULL_EVERY);
	CHECK(!config_group(&c, "nope"));
}

TEST(daemon_config_group_keys)
{
	static const char *const conf = "[daemon]\nbackup_dir=/b\n[volume v]\norigin=/o\n"
		"store=/s\n[group g]\nvolumes=v\n";
	static struct config c;
	char text[512];

	snprintf(text, sizeof(text), "%sencrypt_key = /etc/amber/g.key\n"
		 "passphrase_file = /etc/amber/g.pass\nsign_key = /etc/amber/sign.pem\n", conf);
	CHECK_OK(config_parse("t.conf", text, &c));
	CHECK(!strcmp(c.grp[0].encrypt_key, "/etc/amber/g.key"));
	CHECK(!strcmp(c.grp[0].passphrase_file, "/etc/amber/g.pass"));
	CHECK(!strcmp(c.grp[0].sign_key, "/etc/amber/sign.pem"));
	CHECK_OK(config_parse("t.conf", conf, &c));
	CHECK(!*c.grp[0].encrypt_key && !*c.grp[0].sign_key);
	snprintf(text, sizeof(text), "%sencrypt_key = /etc/amber/g.key\n", conf);
	CHECK_FAILS(config_parse("t.conf", text, &c), AMBER_EUSAGE,
		    "t.conf:6: [group g]: encrypt_key and passphrase_file go together");
	snprintf(text, sizeof(text), "%ssign_key = sign.pem\n", conf);
	CHECK_FAILS(config_parse("t.conf", text, &c), AMBER_EUSAGE,
		    "t.conf:8: sign_key: 'sign.pem' is not an absolute path");
}

TEST(daemon_config_defaults)
{
	static struct config c;

	CHECK_OK(config_parse("t.conf", "[daemon]\nbackup_dir=/b\n[volume v]\norigin=/o\n"
			      "store=/s\n[group g]\nvolumes=v\n", &c));
	CHECK(!strcmp(c.socket, CONF_DEFAULT_SOCKET));
	CHECK_EQ(c.retention, 0);
	CHECK_EQ(c.level, 3);
	CHECK(!c.syslog);
	CHECK(c.min_free == CONF_DEFAULT_MIN_FREE_PERCENT && c.min_free_percent);
	CHECK_EQ(c.grp[0].min_interval, CONF_DEFAULT_MIN_INTERVAL);
	CHECK_OK(config_parse("t.conf", "[daemon]\nbackup_dir=/b\nmin_free=12%\n[volume v]\n"
			      "origin=/o\nstore=/s\n[group g]\nvolumes=v\n", &c));
	CHECK(c.min_free == 12 && c.min_free_percent);
}

/* No set starts with less free in backup_dir than min_free asks. */
TEST(daemon_free_space_floor)
{
	struct statvfs st;
	bool enough;

	CHECK_OK(job_check_free_space(".", 0, false));
	CHECK_OK(job_check_free_space(".", 0, true));
	CHECK_OK(job_check_free_space(".", 4096, false));
	CHECK_FAILS(job_check_free_space(".", UINT64_MAX / 2, false), AMBER_ESYS,
		    "free, under min_free = ");
	CHECK_FAILS(job_check_free_space("/nonexistent-amber", 0, false), AMBER_ESYS,
		    "statvfs /nonexistent-amber");
	CHECK(!statvfs(".", &st));
	enough = (uint64_t)st.f_bfree * st.f_frsize >= (uint64_t)st.f_blocks * st.f_frsize / 100 * 99;
	if (enough)
		CHECK_OK(job_check_free_space(".", 99, true));
	else
		CHECK_FAILS(job_check_free_space(".", 99, true), AMBER_ESYS, "under min_free = 99%");
}

#define BASE "[daemon]\nbackup_dir=/b\n[volume v]\norigin=/o\nstore=/s\n"

TEST(daemon_config_errors_name_file_line_and_problem)
{
	static const struct { const char *text, *msg; } bad[] = {
		{ BASE "[group g]\nvolumes=v\nbogus=1\n", "t.conf:8: unknown key 'bogus' in [group g]" },
		{ BASE "[group g]\nvolumes=v\n[frob x]\n", "t.conf:8: unknown section [frob]" },
		{ BASE "[group g]\nvolumes=v\nvolumes=v\n", "t.conf:8: volumes is given twice" },
		{ BASE "[group g]\nvolumes=v\n[group g]\nvolumes=v\n",
		  "t.conf:8: group g is defined twice (line 6)" },
		{ BASE "[volume v]\n", "t.conf:6: volume v is defined twice (line 3)" },
		{ "[volume v]\norigin=/o\nstore=/s\n[group g]\nvolumes=v\n",
		  "[daemon] needs backup_dir" },
		{ BASE, "no [group NAME]" },
		{ BASE "[group g]\n", "t.conf:6: [group g] needs volumes =" },
		{ BASE "[group g]\nvolumes=v,w\n", "t.conf:7: [group g]: no [volume w]" },
		{ BASE "[group g]\nvolumes=v,v\n", "t.conf:7: volumes: v is named twice" },
		{ BASE "[group g]\nvolumes=v\n[schedule h]\ninterval=1h\n",
		  "t.conf:8: [schedule h]: no [group h]" },
		{ BASE "[group g]\nvolumes=v\n[schedule g]\nfull_every=2\n",
		  "t.conf:8: [schedule g] needs interval =" },
		{ BASE "[group g]\nvolumes=v\n[schedule g]\ninterval=5x\n",
		  "t.conf:9: interval: '5x' is not an interval" },
		{ BASE "[group g]\nvolumes=v\n[schedule g]\ninterval=1h\nfull_every=0\n",
		  "t.conf:10: full_every: 0 is out of range" },
		{ BASE "[group g]\nvolumes=v\ntrigger_user=no-such-user-here\n",
		  "t.conf:8: trigger_user: no user 'no-such-user-here'" },
		{ "[daemon]\nbackup_dir=backups\n", "t.conf:2: backup_dir: 'backups' is not an"
		  " absolute path" },
		{ "backup_dir=/b\n", "t.conf:1: 'backup_dir' before any [section]" },
		{ "[daemon]\nbackup_dir\n", "t.conf:2: expected 'key = value'" },
		{ "[daemon]\nbackup_dir=\n", "t.conf:2: backup_dir: empty value" },
		{ BASE "[group g]\nvolumes=v\nflush=maybe\n", "t.conf:8: flush: 'maybe' is not yes or no" },
		{ "[daemon]\nlog=journal\n", "t.conf:2: log: 'journal' is not stderr or syslog" },
		{ "[daemon]\nlevel=20\n", "t.conf:2: level: 20 is out of range" },
		{ "[daemon]\nmin_free=100%\n", "t.conf:2: min_free: 100 is out of range" },
		{ "[daemon]\nmin_free=lots\n", "t.conf:2: min_free: " },
		{ BASE "[group g]\nvolumes=v\nmin_interval=soon\n",
		  "t.conf:8: min_interval: 'soon' is not an interval" },
		{ "[daemon]\n[daemon]\n", "t.conf:2: a second [daemon] section" },
		{ "[daemon x]\n", "t.conf:1: [daemon] takes no name" },
		{ "[volume]\n", "t.conf:1: [volume] needs a name" },
		{ "[volume a/b]\n", "t.conf:1: 'a/b' is not a usable name" },
		{ "[volume v\n", "t.conf:1: a section header is '[kind NAME]'" },
		{ BASE "chunk=3K\n", "t.conf:6: chunk:" },
		{ BASE "overflow=maybe\n", "t.conf:6: overflow: 'maybe' is not block or invalidate" },
		{ "[daemon]\nbackup_dir=/b\n[volume v]\norigin=/o\n[group g]\nvolumes=v\n",
		  "t.conf:3: [volume v] needs origin = and store =" },
		{ BASE "[volume w]\norigin=/s\nstore=/x\n[group g]\nvolumes=v\n",
		  "t.conf:6: [volume w] shares a device with [volume v]" },
		{ "[daemon]\nbackup_dir=/b\n[volume v]\norigin=/o\nstore=/o\n[group g]\nvolumes=v\n",
		  "t.conf:3: [volume v]: origin and store are the same device" },
		{ BASE "[group g]\nvolumes=v\nfull_every=2\n[schedule g]\ninterval=1h\n"
		  "full_every=3\n", "t.conf:11: full_every is given in [group g] too (line 8)" },
		{ BASE "[group g]\nvolumes=v,a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p\n",
		  "t.conf:7: volumes: more than 16 volumes" },
	};
	static struct config c;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (!config_parse("t.conf", bad[i].text, &c))
			test_failed(__FILE__, __LINE__, "case %u parsed", i);
		if (error_status() != AMBER_EUSAGE || !strstr(error_msg(), bad[i].msg))
			test_failed(__FILE__, __LINE__, "case %u: '%s', expected '%s'", i,
				    error_msg(), bad[i].msg);
	}
}

TEST(daemon_config_file_errors)
{
	static struct config c;

	CHECK_FAILS(config_load("missing.conf", &c), AMBER_EUSAGE, "missing.conf: No such file");
	file_put("nul.conf", "[daemon]\0x", 10);
	CHECK_FAILS(config_load("nul.conf", &c), AMBER_EUSAGE, "not a text file");
	file_put("ok.conf", good_conf, strlen(good_conf));
	CHECK_OK(config_load("ok.conf", &c));
	CHECK(!strcmp(c.path, "ok.conf"));
}

TEST(daemon_intervals)
{
	uint64_t s;

	CHECK_OK(conf_parse_interval("90", &s));
	CHECK_EQ(s, 90);
	CHECK_OK(conf_parse_interval("90s", &s));
	CHECK_EQ(s, 90);
	CHECK_OK(conf_parse_interval("15m", &s));
	CHECK_EQ(s, 900);
	CHECK_OK(conf_parse_interval("1d", &s));
	CHECK_EQ(s, 86400);
	CHECK_FAILS(conf_parse_interval("0", &s), AMBER_EUSAGE, "out of range");
	CHECK_FAILS(conf_parse_interval("367d", &s), AMBER_EUSAGE, "out of range");
	CHECK_FAILS(conf_parse_interval("h", &s), AMBER_EUSAGE, "not an interval");
	CHECK_FAILS(conf_parse_interval("1w", &s), AMBER_EUSAGE, "not an interval");
	CHECK_FAILS(conf_parse_interval("-1", &s), AMBER_EUSAGE, "not an interval");
}

TEST(daemon_names)
{
	CHECK(conf_name_ok("pg_data-1.x"));
	CHECK(!conf_name_ok(""));
	CHECK(!conf_name_ok("-x"));
	CHECK(!conf_name_ok(".x"));
	CHECK(!conf_name_ok("a b"));
	CHECK(!conf_name_ok("a/b"));
	CHECK(!conf_name_ok("0123456789012345678901234567890123456789012345678901234567890123"));
}

/* A set of @group: one entry per volume, full or incremental from set - 1. */
static void add_set(struct catalog *cat, const char *group, uint64_t set, bool full,
		    const char *const *vols)
{
	struct cat_entry e;

	for (; *vols; vols++) {
		memset(&e, 0, sizeof(e));
		e.set = set;
		strcpy(e.group, group);
		strcpy(e.volume, *vols);
		e.kind = full ? BKP_FULL : BKP_INCREMENTAL;
		e.epoch = set * 10;
		if (full)
			strcpy(e.parent, "-");
		else
			snprintf(e.parent, sizeof(e.parent), "%s/%06" PRIu64 "-%s.amb", group,
				 set - 1, *vols);
		e.bytes = set * 1000;
		e.created = 1700000000 + set;
		memset(e.digest, 'a', 64);
		snprintf(e.file, sizeof(e.file), "%s/%06" PRIu64 "-%s.amb", group, set, *vols);
		CHECK_OK(catalog_add(cat, &e));
	}
}

static const char *const two[] = { "data", "wal", NULL };

TEST(daemon_catalog_round_trip)
{
	struct catalog cat, back;
	const struct cat_entry *e;
	char line[1100];

	catalog_init(&cat, ".");
	add_set(&cat, "pg", 1, true, two);
	add_set(&cat, "pg", 2, false, two);
	CHECK_OK(catalog_save(&cat));
	catalog_init(&back, ".");
	CHECK_OK(catalog_load(&back));
	CHECK_EQ(back.n, 4);
	e = catalog_find(&back, "pg", 2, "wal");
	CHECK(e && e->kind == BKP_INCREMENTAL && e->epoch == 20 && e->bytes == 2000);
	CHECK(!strcmp(e->parent, "pg/000001-wal.amb") && e->created == 1700000002);
	catalog_format(e, line, sizeof(line));
	CHECK(!strcmp(line, "2 pg wal incremental 20 pg/000001-wal.amb 2000 "
		      "2023-11-14T22:13:22Z aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		      "aaaaaaaaa pg/000002-wal.amb"));
	CHECK(catalog_find_file(&back, "pg/000001-data.amb"));
	CHECK(!access("catalog", R_OK) && access("catalog.new", F_OK));
	catalog_free(&cat);
	catalog_free(&back);
}

TEST(daemon_catalog_records_key_and_signer)
{
	static const char line[] = "1 pg wal full 3 - 10 2023-11-14T22:13:22Z "
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f "
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb -";
	struct cat_entry e;
	char back[1100];

	CHECK_OK(catalog_parse_line(line, &e));
	CHECK(!strncmp(e.key, "bbbb", 4) && strlen(e.key) == 64 && !strcmp(e.signer, "-"));
	catalog_format(&e, back, sizeof(back));
	CHECK(!strcmp(back, line));
	/* a line of an older catalog: neither */
	CHECK_OK(catalog_parse_line("1 pg wal full 3 - 10 2023-11-14T22:13:22Z "
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f", &e));
	CHECK(!strcmp(e.key, "-") && !strcmp(e.signer, "-"));
	CHECK_FAILS(catalog_parse_line("1 pg wal full 3 - 10 2023-11-14T22:13:22Z "
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f "
		    "BBBB -", &e), AMBER_EDATA, "key: not 64 lower-case hex digits or -");
	CHECK_FAILS(catalog_parse_line("1 pg wal full 3 - 10 2023-11-14T22:13:22Z "
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f - ", &e),
		    AMBER_EDATA, "11 fields, not 10 or 12");
}

TEST(daemon_catalog_refuses_damage)
{
	static const struct { const char *line, *msg; } bad[] = {
		{ "1 pg wal full 3 - 10 2023-11-14T22:13:22Z", "8 fields, not 10" },
		{ "x pg wal full 3 - 10 2023-11-14T22:13:22Z "
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f", "set:" },
		{ "1 pg wal half 3 - 10 2023-11-14T22:13:22Z "
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f", "kind:" },
		{ "1 pg wal full 3 pg/x 10 2023-11-14T22:13:22Z "
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f", "parent:" },
		{ "1 pg wal incremental 3 ../x 10 2023-11-14T22:13:22Z "
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f", "parent:" },
		{ "1 pg wal full 3 - 10 yesterday "
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/f", "created:" },
		{ "1 pg wal full 3 - 10 2023-11-14T22:13:22Z AAAA pg/f", "digest:" },
		{ "1 pg wal full 3 - 10 2023-11-14T22:13:22Z "
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa /etc/passwd",
		  "file:" },
		{ "1 pg wal full 3 - 10 2023-11-14T22:13:22Z "
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pg/../../x",
		  "file:" },
	};
	struct cat_entry e;
	struct catalog cat;
	unsigned int i;
	char text[400];

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (!catalog_parse_line(bad[i].line, &e))
			test_failed(__FILE__, __LINE__, "case %u parsed", i);
		if (error_status() != AMBER_EDATA || !strstr(error_msg(), bad[i].msg))
			test_failed(__FILE__, __LINE__, "case %u: '%s'", i, error_msg());
	}
	snprintf(text, sizeof(text), "# header\n%s\n", bad[0].line);
	file_put("catalog", text, strlen(text));
	catalog_init(&cat, ".");
	CHECK_FAILS(catalog_load(&cat), AMBER_EDATA, "./catalog:2: 8 fields");
	catalog_free(&cat);
}

/* catalog_load() of the lines @a and @b under a header. */
static int load_two(const char *a, const char *b)
{
	struct catalog cat;
	char text[600];
	int ret;

	snprintf(text, sizeof(text), "# header\n%s\n%s\n", a, b);
	file_put("catalog", text, strlen(text));
	catalog_init(&cat, ".");
	ret = catalog_load(&cat);
	catalog_free(&cat);
	return ret;
}

#define DIGEST "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* A cycle, a missing parent, a parent from elsewhere: refused at load. */
TEST(daemon_catalog_refuses_broken_chains)
{
	static const char full[] = "1 pg wal full 3 - 10 2023-11-14T22:13:22Z " DIGEST " pg/a";

	CHECK_FAILS(load_two("1 pg wal incremental 3 pg/b 10 2023-11-14T22:13:22Z " DIGEST
			     " pg/a",
			     "2 pg wal incremental 4 pg/a 10 2023-11-14T22:13:22Z " DIGEST
			     " pg/b"), AMBER_EDATA,
		    "./catalog: pg/a's parent pg/b is not an earlier backup of pg/wal");
	CHECK_FAILS(load_two(full, "2 pg wal incremental 4 pg/c 10 2023-11-14T22:13:22Z "
			     DIGEST " pg/b"), AMBER_EDATA,
		    "./catalog: pg/b needs pg/c, which is not listed");
	CHECK_FAILS(load_two(full, "2 pg data incremental 4 pg/a 10 2023-11-14T22:13:22Z "
			     DIGEST " pg/b"), AMBER_EDATA,
		    "pg/b's parent pg/a is not an earlier backup of pg/data");
	CHECK_OK(load_two(full, "2 pg wal incremental 4 pg/a 10 2023-11-14T22:13:22Z "
			  DIGEST " pg/b"));
}

TEST(daemon_full_every_n)
{
	/* full_every 3: F I I F I I F ... */
	static const bool expect[] = { true, false, false, true, false, false, true };
	struct catalog cat;
	unsigned int i;
	bool full;

	catalog_init(&cat, ".");
	for (i = 0; i < ARRAY_SIZE(expect); i++) {
		full = catalog_next_is_full(&cat, "pg", 3);
		if (full != expect[i])
			test_failed(__FILE__, __LINE__, "set %u: full %d", i + 1, full);
		add_set(&cat, "pg", i + 1, full, two);
	}
	CHECK(catalog_next_is_full(&cat, "other", 3));
	CHECK(catalog_next_is_full(&cat, "pg", 1));
	catalog_free(&cat);
}

TEST(daemon_chain_and_retention_keep_what_incrementals_need)
{
	const struct cat_entry *chain[8];
	struct catalog cat;
	bool drop[64];
	size_t n, i;

	catalog_init(&cat, ".");
	add_set(&cat, "pg", 1, true, two);	/* F */
	add_set(&cat, "pg", 2, false, two);	/* I */
	add_set(&cat, "pg", 3, true, two);	/* F */
	add_set(&cat, "pg", 4, false, two);	/* I */
	add_set(&cat, "pg", 5, false, two);	/* I */
	add_set(&cat, "other", 1, true, two);
	CHECK_EQ(catalog_chain(&cat, catalog_find(&cat, "pg", 5, "wal"), chain, 8), 3);
	CHECK(!strcmp(chain[0]->file, "pg/000003-wal.amb"));
	CHECK(!strcmp(chain[2]->file, "pg/000005-wal.amb"));
	CHECK_FAILS(catalog_chain(&cat, catalog_find(&cat, "pg", 5, "wal"), chain, 2),
		    AMBER_EDATA, "longer than 2");

	/* keep 0: everything; keep 2: everything (two fulls); keep 1: sets 1, 2 go */
	CHECK_EQ(catalog_retention(&cat, "pg", 0, drop), 0);
	CHECK_EQ(catalog_retention(&cat, "pg", 2, drop), 0);
	n = catalog_retention(&cat, "pg", 1, drop);
	CHECK_EQ(n, 4);
	for (i = 0; i < cat.n; i++)
		CHECK_EQ(drop[i], !strcmp(cat.e[i].group, "pg") && cat.e[i].set <= 2);

	/* An incremental whose parent is older than the cutoff keeps it. */
	add_set(&cat, "pg", 6, true, (const char *const[]){ "data", NULL });
	add_set(&cat, "pg", 7, false, (const char *const[]){ "data", NULL });
	strcpy(cat.e[cat.n - 1].parent, "pg/000005-data.amb");
	n = catalog_retention(&cat, "pg", 1, drop);
	for (i = 0; i < cat.n; i++)
		if (!strcmp(cat.e[i].file, "pg/000005-data.amb") ||
		    !strcmp(cat.e[i].file, "pg/000004-data.amb") ||
		    !strcmp(cat.e[i].file, "pg/000003-data.amb") ||
		    !strcmp(cat.e[i].group, "other") || cat.e[i].set >= 6)
			CHECK(!drop[i]);
		else
			CHECK(drop[i]);
	CHECK_EQ(n, 7);
	catalog_remove(&cat, drop);
	CHECK_EQ(cat.n, 7);
	CHECK(catalog_find(&cat, "pg", 7, "data") && !catalog_find(&cat, "pg", 1, "data"));
	catalog_free(&cat);
}

TEST(daemon_requests)
{
	static const struct { const char *line, *msg; } bad[] = {
		{ "", "empty request" },
		{ "   ", "empty request" },
		{ "frob", "unknown request 'frob'" },
		{ "status now", "status: 'now' is not json" },
		{ "status json now", "'status' takes at most the word json" },
		{ "snap", "'snap' takes one GROUP" },
		{ "snap a b", "'snap' takes one GROUP" },
		{ "backup", "'backup' takes GROUP [full|incremental]" },
		{ "backup g partial", "'partial' is not full or incremental" },
		{ "backup g full now", "takes GROUP [full|incremental]" },
		{ "backup ../g", "'../g' is not a group name" },
		{ "chain g x", "'x' is not a set number" },
		{ "list a b c d e", "too many words" },
		{ "backup g\x01", "control or non-ASCII byte (0x01)" },
		{ "backup \xc3\xa9t\xc3\xa9", "non-ASCII byte (0xc3)" },
	};
	struct request r;
	unsigned int i;
	char long_line[600];

	CHECK_OK(request_parse("status", &r));
	CHECK(r.cmd == REQ_STATUS && !r.json);
	CHECK_OK(request_parse("status json", &r));
	CHECK(r.cmd == REQ_STATUS && r.json && !*r.group);
	CHECK_OK(request_parse("  backup\tpg  ", &r));
	CHECK(r.cmd == REQ_BACKUP && !strcmp(r.group, "pg") && r.kind == KIND_AUTO);
	CHECK_OK(request_parse("backup pg incremental", &r));
	CHECK(r.kind == KIND_INCREMENTAL);
	CHECK_OK(request_parse("chain pg 12", &r));
	CHECK(r.cmd == REQ_CHAIN && r.set == 12);
	CHECK_OK(request_parse("list", &r));
	CHECK(r.cmd == REQ_LIST && !*r.group);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (!request_parse(bad[i].line, &r))
			test_failed(__FILE__, __LINE__, "case %u parsed", i);
		if (!strstr(error_msg(), bad[i].msg))
			test_failed(__FILE__, __LINE__, "case %u: '%s'", i, error_msg());
	}
	memset(long_line, 'a', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = 0;
	CHECK_FAILS(request_parse(long_line, &r), AMBER_EUSAGE, "longer than 511 bytes");
}

/* A one-shot amberd on ./s.sock: sends the first line of @answer (its
 * greeting), takes one request line into ./request, sends the rest, waits
 * for the client to close. An empty @answer hangs up at once; one starting
 * with '!' is sent whole at once, before reading anything. */
static pid_t fake_amberd(const char *answer)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const char *first;
	char buf[600];
	ssize_t n, len = 0;
	int lfd, fd;
	pid_t pid;

	strcpy(a.sun_path, "s.sock");
	unlink("s.sock");
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(lfd >= 0);
	CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(listen(lfd, 1), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid) {
		close(lfd);
		return pid;
	}
	fd = accept(lfd, NULL, NULL);
	if (*answer == '!') {		/* refuse at once, as for a bad peer */
		if (write(fd, answer + 1, strlen(answer + 1)) < 0)
			_exit(1);
		_exit(0);
	}
	if (!*answer)
		_exit(0);	/* hang up without a word */
	/* The first line (the greeting) comes before the request, as amberd's. */
	first = strchr(answer, '\n');
	if (first) {
		if (write(fd, answer, first + 1 - answer) < 0)
			_exit(1);
		answer = first + 1;
	}
	while (fd >= 0 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
		len += n;
		if (memchr(buf, '\n', len))
			break;
	}
	file_put("request", buf, len);
	if (!len)
		_exit(0);	/* the client left after the greeting */
	if (write(fd, answer, strlen(answer)) != (ssize_t)strlen(answer))
		_exit(1);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	_exit(0);
}

static void reap(pid_t pid)
{
	int status;

	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(daemon_client_answers_and_errors)
{
	size_t len;
	char *req;
	pid_t pid;

	pid = fake_amberd("amberd protocol 1\nstarted group g set 1 job 1\n"
			  "barrier group g set 1 a=1\nok group g set 1 full\n");
	CHECK_OK(run_cmd(daemon_main, "daemon", "backup", "g", "full", "--socket", "s.sock",
			 NULL));
	reap(pid);
	req = (char *)file_get("request", &len);
	CHECK(len == 14 && !memcmp(req, "backup g full\n", 14));
	free(req);

	pid = fake_amberd("amberd protocol 1\nnote something\nerror group g set 2 failed: boom\n");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "backup", "g", "--socket=s.sock", NULL),
		    AMBER_ESYS, "group g set 2 failed: boom");
	reap(pid);

	pid = fake_amberd("");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "status", "--socket", "s.sock", NULL),
		    AMBER_ESYS, "amberd closed the connection before answering");
	reap(pid);

	/* --detach: back at the barrier line, the set still running */
	pid = fake_amberd("amberd protocol 1\nstarted group g set 3 job 3\n"
			  "barrier group g set 3 a=3\n");
	CHECK_OK(run_cmd(daemon_main, "daemon", "backup", "g", "--detach", "--socket", "s.sock",
			 NULL));
	reap(pid);

	/* the greeting: another protocol, or not amberd at all */
	pid = fake_amberd("amberd protocol 2\nok\n");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "status", "--socket", "s.sock", NULL),
		    AMBER_ESYS, "amberd at s.sock speaks protocol 2 and this amber speaks 1");
	reap(pid);
	pid = fake_amberd("ok group g set 1 full\n");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "status", "--socket", "s.sock", NULL),
		    AMBER_ESYS, "it said 'ok group g set 1 full'");
	reap(pid);
	pid = fake_amberd("amberd protocol 1x\n");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "status", "--socket", "s.sock", NULL),
		    AMBER_ESYS, "s.sock is not amberd's socket");
	reap(pid);

	/* told why even when the hang-up beats the request */
	pid = fake_amberd("!error permission denied: not root\n");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "status", "--socket", "s.sock", NULL),
		    AMBER_ESYS, "permission denied: not root");
	reap(pid);

	unlink("s.sock");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "status", "--socket", "s.sock", NULL),
		    AMBER_ESYS, "cannot reach amberd at s.sock: no such socket (is amberd running?)");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", NULL), AMBER_EUSAGE, "missing REQUEST");
	/* a request amberd would refuse is a usage error, found before connecting */
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "frob", "--socket", "s.sock", NULL),
		    AMBER_EUSAGE, "unknown request 'frob'");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "backup", "g", "partial", NULL), AMBER_EUSAGE,
		    "'partial' is not full or incremental");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "a", "b", "c", "d", "e", NULL), AMBER_EUSAGE,
		    "unexpected argument 'e'");
	CHECK_OK(run_cmd(daemon_main, "daemon", "--help", NULL));
}

/* ---- amberd's clients, with its code and no poll loop ---- */

/*
 * amberd's state for its client code: group g (volume v) whose trigger user
 * is this test's, backups in ".", no job. Returns a listening socket that
 * stands for g's trigger socket (or the control socket: client_accept()
 * says which).
 */
static int daemon_fixture(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int lfd;

	CHECK_OK(config_parse("t.conf", BASE "[group g]\nvolumes=v\n", &conf));
	strcpy(conf.backup_dir, ".");
	strcpy(conf.grp[0].trigger_user, "tester");
	conf.grp[0].trigger_uid = getuid();
	catalog_init(&cat, ".");
	clients_init();
	queue_init();
	strcpy(a.sun_path, "t.sock");
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(lfd >= 0);
	CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(listen(lfd, 16), 0);
	return lfd;
}

/* A connection to @lfd: its descriptor, and the client slot amberd's code
 * gives it on the socket of group @grp (-1: the control socket) if it takes
 * it (NULL: the table is full). */
static struct client *connect_client(int lfd, int grp, int *fd)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct client *c;

	for (c = clients; c < clients + CLIENTS_MAX && c->fd >= 0; c++)
		;
	if (c == clients + CLIENTS_MAX)
		c = NULL;		/* client_accept() takes the first free */
	strcpy(a.sun_path, "t.sock");
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(*fd >= 0);
	CHECK_EQ(connect(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	client_accept(lfd, grp);
	return c;
}

/* The next line amberd sent on @fd, without its newline ("" when none
 * comes within a second, "EOF" when it hung up). */
static const char *next_line(int fd)
{
	static char line[CLIENT_LINE_MAX];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(line) - 1) {
		if (poll(&p, 1, 1000) != 1)
			break;
		n = read(fd, line + len, 1);
		if (n <= 0) {
			if (!len)
				return "EOF";
			break;
		}
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = 0;
	return line;
}

#define CHECK_LINE(fd, text)							\
	do {									\
		const char *l_ = next_line(fd);					\
		if (strcmp(l_, (text)))						\
			test_failed(__FILE__, __LINE__, "amberd sent '%s', expected"	\
				    " '%s'", l_, (text));			\
	} while (0)

/*
 * A request sent behind one that waits for a job ("backup g", then "list g"
 * in one write) is served once the job's final line is out. The job queues
 * behind a running one (a child that fails at once); when that ends, the
 * queued one cannot start (min_free) and its waiter gets its error.
 */
TEST(daemon_client_pipelined_request_after_a_wait)
{
	struct client *c;
	struct job *run;
	int lfd, fd, p[2];

	lfd = daemon_fixture();
	conf.min_free = UINT64_MAX / 2;
	conf.min_free_percent = false;
	run = new_job(0, KIND_FULL, "test");
	CHECK(run && !pipe2(p, O_CLOEXEC));
	run->pid = fork();
	CHECK(run->pid >= 0);
	if (!run->pid)
		_exit(1);
	close(p[1]);
	run->fd = p[0];

	c = connect_client(lfd, 0, &fd);
	CHECK_LINE(fd, "amberd protocol 1");
	CHECK_EQ(send(fd, "backup g\nlist g\n", 16, 0), 16);
	client_ready(c, POLLIN);
	CHECK_LINE(fd, "queued behind job 1 (group g)");
	CHECK_EQ(c->wait, 2);
	CHECK_LINE(fd, "");			/* list waits */

	job_input(run);		/* job 1 ends, job 2 cannot start */
	CHECK_EQ(c->wait, 0);
	CHECK(!strncmp(next_line(fd), "error ", 6));
	clients_serve_held();	/* what amberd's loop does next */
	CHECK_LINE(fd, "ok 0 backups");
	CHECK_LINE(fd, "");
	CHECK(c->fd >= 0 && !c->in_len);
}

/* Run amber daemon @args... with its standard output in ./out.json. */
#define run_daemon_to_file(...)							\
	({									\
		int saved_ = dup(STDOUT_FILENO), out_, ret_;			\
										\
		fflush(stdout);							\
		out_ = open("out.json", O_WRONLY | O_CREAT | O_TRUNC, 0600);	\
		CHECK(saved_ >= 0 && out_ >= 0 && dup2(out_, STDOUT_FILENO) >= 0);	\
		ret_ = run_cmd(daemon_main, "daemon", __VA_ARGS__, NULL);	\
		fflush(stdout);							\
		dup2(saved_, STDOUT_FILENO);					\
		close(saved_);							\
		close(out_);							\
		ret_;								\
	})

/*
 * "status json": one JSON record per line from amberd's own code, which
 * amber daemon --json gathers into one document. amberd's lines are replayed
 * to amber by a fake amberd.
 */
TEST(daemon_status_json_is_one_document)
{
	static const struct { const char *answer, *msg; } hostile[] = {
		{ "amberd protocol 1\n{\"volume\":5}\nok\n", "not one record: '{\"volume\":5}'" },
		{ "amberd protocol 1\n{\"daemon\":{}}\n{\"daemon\":{}}\nok\n",
		  "two daemon records" },
		{ "amberd protocol 1\n{\"job\":{}}\nok\n", "no daemon record" },
		{ "amberd protocol 1\n{\"daemon\":\n", "not JSON" },
	};
	unsigned int i;
	char answer[8192] = "amberd protocol 1\n", *req;
	const char *line;
	struct client *c;
	json_t *doc, *g;
	int lfd, fd;
	size_t len;
	pid_t pid;

	lfd = daemon_fixture();
	c = connect_client(lfd, 0, &fd);
	CHECK_LINE(fd, "amberd protocol 1");
	serve_status(c, true);
	while (strcmp(line = next_line(fd), "ok")) {
		json_t *rec = json_loads(line, JSON_REJECT_DUPLICATES, NULL);

		CHECK(json_is_object(rec) && json_object_size(rec) == 1);
		json_decref(rec);
		snprintf(answer + strlen(answer), sizeof(answer) - strlen(answer), "%s\n", line);
	}
	strcat(answer, "ok\n");
	/* amberd refuses what amber daemon would not send */
	CHECK_EQ(send(fd, "frob\n", 5, 0), 5);
	client_ready(c, POLLIN);
	CHECK(!strncmp(next_line(fd), "error unknown request 'frob'", 28));
	/* a record too long for a line: the answer ends in an error, not ok */
	memset(conf.backup_dir, 1, 3000);	/* 6 bytes each in JSON: \u0001 */
	conf.backup_dir[3000] = 0;
	serve_status(c, true);
	while (*(line = next_line(fd)) == '{')
		;
	CHECK(!strcmp(line, "error 1 status record could not be sent (amberd's log says which)"));
	client_close(c);
	close(fd);
	close(lfd);

	pid = fake_amberd(answer);
	CHECK_OK(run_daemon_to_file("status", "-j", "--socket", "s.sock"));
	reap(pid);
	req = (char *)file_get("request", &len);
	CHECK(len == 12 && !memcmp(req, "status json\n", 12));
	free(req);
	doc = json_load_file("out.json", JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_is_object(doc));
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(doc, "daemon"), "pid")),
		 getpid());
	CHECK_EQ(json_array_size(json_object_get(doc, "volumes")), 1);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(
		json_object_get(doc, "volumes"), 0), "name")), "v"));
	CHECK_EQ(json_array_size(json_object_get(doc, "jobs")), 0);
	g = json_array_get(json_object_get(doc, "groups"), 0);
	CHECK(!strcmp(json_string_value(json_object_get(g, "name")), "g"));
	CHECK(!strcmp(json_string_value(json_array_get(json_object_get(g, "volumes"), 0)), "v"));
	CHECK(json_is_null(json_object_get(g, "last_set")));
	CHECK(!strcmp(json_string_value(json_object_get(g, "trigger_user")), "tester"));
	json_decref(doc);

	/* an amberd whose records are not what amber gathers */
	for (i = 0; i < ARRAY_SIZE(hostile); i++) {
		pid = fake_amberd(hostile[i].answer);
		CHECK_FAILS(run_daemon_to_file("status", "-j", "--socket", "s.sock"), AMBER_ESYS,
			    hostile[i].msg);
		reap(pid);
	}

	/* an amberd from before "status json"; --json is for status only */
	pid = fake_amberd("amberd protocol 1\nerror 'status' takes no arguments\n");
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "status", "--json", "--socket", "s.sock",
			    NULL), AMBER_ESYS, "older than this amber: restart it");
	reap(pid);
	CHECK_FAILS(run_cmd(daemon_main, "daemon", "list", "--json", NULL), AMBER_EUSAGE,
		    "--json goes with the status request only");
}

/* Lines of ./amberd.log holding @text; the K of each "suppressed K" added
 * to @suppressed. */
static unsigned int log_lines(const char *text, unsigned long *suppressed)
{
	char line[1300], *s;
	unsigned int n = 0;
	FILE *f = fopen("amberd.log", "r");

	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, text))
			continue;
		n++;
		s = strstr(line, "suppressed ");
		if (suppressed && s)
			*suppressed += strtoul(s + 11, NULL, 10);
	}
	fclose(f);
	return n;
}

/*
 * A trigger user asking for sets back to back (each refused: min_interval)
 * cannot flood the log: LOG_LIMIT_BURST lines per interval, then one line
 * that counts the rest. Client A's "backup g" sets the group's last trigger
 * (its set cannot start: min_free); B asks 2000 times.
 */
TEST(daemon_client_flood_is_logged_in_a_few_lines)
{
	unsigned long suppressed = 0, logged;
	char first[CLIENT_LINE_MAX];
	int lfd, afd, bfd, err, i, wrong = 0, report;
	struct client *a, *b;
	struct stat st;
	const int asks = 2000;

	lfd = daemon_fixture();
	conf.min_free = UINT64_MAX / 2;
	conf.min_free_percent = false;
	a = connect_client(lfd, 0, &afd);
	CHECK_LINE(afd, "amberd protocol 1");
	b = connect_client(lfd, 0, &bfd);
	CHECK_LINE(bfd, "amberd protocol 1");

	/* amberd's log into ./amberd.log, and no CHECK until it is back */
	err = dup(STDERR_FILENO);
	CHECK(err >= 0 && freopen("amberd.log", "w", stderr));
	setvbuf(stderr, NULL, _IONBF, 0);
	wrong += send(afd, "backup g\n", 9, 0) != 9;
	client_ready(a, POLLIN);
	snprintf(first, sizeof(first), "%s", next_line(afd));
	for (i = 0; i < asks; i++) {
		wrong += send(bfd, "backup g full\n", 14, 0) != 14;
		client_ready(b, POLLIN);
		wrong += !!strncmp(next_line(bfd), "error group g: a set was asked for", 34);
	}
	/* what amberd's loop does once the interval is over */
	report = log_limits_report(monotonic_seconds() + LOG_LIMIT_INTERVAL_S);
	if (dup2(err, STDERR_FILENO) != STDERR_FILENO)
		_exit(3);
	CHECK(!strncmp(first, "error ", 6) && strstr(first, "under min_free"));
	CHECK_EQ(wrong, 0);
	CHECK_EQ(report, -1);

	/* Each ask is two lines (the request, its refusal), A's one: each is
	 * logged or counted. An interval may end during the flood. */
	logged = log_lines("request from uid", NULL) + log_lines("refused a set for uid", NULL);
	CHECK(log_lines("messages from uid", &suppressed) <= 2);
	CHECK(logged >= LOG_LIMIT_BURST && logged <= 2 * LOG_LIMIT_BURST);
	CHECK_EQ(logged + suppressed, 1 + 2 * asks);
	CHECK(!stat("amberd.log", &st));
	printf("%d asks: %lu lines logged, %lu suppressed, %lld bytes of log\n", asks, logged,
	       suppressed, (long long)st.st_size);
	CHECK(st.st_size < 4096);
}

/* @n backups of group g into amberd's catalog, volume names of @name_len
 * characters (set 1 each, full). */
static void catalog_fill(size_t n, size_t name_len)
{
	struct cat_entry e;
	size_t i;

	memset(&e, 0, sizeof(e));
	e.set = 1;
	strcpy(e.group, "g");
	e.kind = BKP_FULL;
	e.epoch = 10;
	strcpy(e.parent, "-");
	e.bytes = 123456789;
	e.created = 1700000000;
	memset(e.digest, 'a', 64);
	for (i = 0; i < n; i++) {
		snprintf(e.volume, sizeof(e.volume), "%0*zu", (int)name_len, i);
		snprintf(e.file, sizeof(e.file), "g/000001-%s.full.amb", e.volume);
		CHECK_OK(catalog_add(&cat, &e));
	}
}

/* Read an answer on @fd up to its final line (into @final), sending what
 * @c holds as the socket takes it; returns the lines before the final,
 * each of which must start with @data. */
static unsigned int read_answer(int fd, struct client *c, const char *data, char *final,
				size_t size)
{
	static char buf[1 << 16];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned int lines = 0;
	size_t len = 0;
	char *line, *nl;
	ssize_t n;

	for (;;) {
		if (c->fd >= 0 && c->out_len)
			client_ready(c, POLLOUT);
		else
			CHECK_EQ(poll(&p, 1, 1000), 1);
		n = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			continue;
		CHECK(n > 0);
		len += n;
		for (line = buf; (nl = memchr(line, '\n', buf + len - line)); line = nl + 1) {
			*nl = 0;
			if (!strncmp(line, "ok", 2) || !strncmp(line, "error", 5)) {
				len = MIN(strlen(line), size - 1);
				memcpy(final, line, len);
				final[len] = 0;
				return lines;
			}
			if (strncmp(line, data, strlen(data)))
				test_failed(__FILE__, __LINE__, "line %u: '%.80s'", lines, line);
			lines++;
		}
		len -= line - buf;
		memmove(buf, line, len);
	}
}

/* A big answer's buffer is freed once it is sent; the next one is served. */
TEST(daemon_client_buffer_is_freed_once_sent)
{
	char final[256];
	struct client *c;
	int lfd, fd, round;

	lfd = daemon_fixture();
	catalog_fill(3000, 8);		/* about 450 KB */
	c = connect_client(lfd, 0, &fd);
	CHECK_LINE(fd, "amberd protocol 1");
	/* whatever the system's default, the socket takes little of it */
	CHECK(!setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &(int){ 16384 }, sizeof(int)));
	for (round = 0; round < 2; round++) {
		CHECK_EQ(send(fd, "list g\n", 7, 0), 7);
		client_ready(c, POLLIN);
		CHECK(c->out_size >= 256 << 10);
		CHECK_EQ(read_answer(fd, c, "backup 1 g ", final, sizeof(final)), 3000);
		CHECK(!strcmp(final, "ok 3000 backups"));
		CHECK(c->fd >= 0 && !c->out_len);
		CHECK(!c->out && !c->out_size);
	}
	/* a small answer keeps its buffer */
	CHECK_EQ(send(fd, "list g\n", 7, 0), 7);
	cat.n = 1;
	client_ready(c, POLLIN);
	CHECK_EQ(read_answer(fd, c, "backup 1 g ", final, sizeof(final)), 1);
	CHECK(!strcmp(final, "ok 1 backup"));
	CHECK(c->out && c->out_size == 4096);
}

/*
 * An answer over 16 MiB (list of 70,000 backups with 60-character names,
 * 18 MB, made while the client reads nothing) is cut after a whole line
 * and ends with an error line; then amberd hangs up. ('amber daemon'
 * prints the lines before it and fails with its text:
 * daemon_client_answers_and_errors.)
 */
TEST(daemon_client_answer_too_big_ends_with_an_error)
{
	unsigned int lines;
	char final[256];
	struct client *c;
	int lfd, fd;

	lfd = daemon_fixture();
	catalog_fill(70000, 60);
	c = connect_client(lfd, 0, &fd);
	CHECK_LINE(fd, "amberd protocol 1");
	CHECK_EQ(send(fd, "list g\n", 7, 0), 7);
	client_ready(c, POLLIN);
	CHECK(c->out_len <= 16 << 20);
	lines = read_answer(fd, c, "backup 1 g ", final, sizeof(final));
	printf("%u of 70000 lines before the cut\n", lines);
	CHECK(lines > 60000 && lines < 70000);
	CHECK(!strcmp(final, "error the answer is cut here: it is over 16 MiB, more than amberd"
		      " holds for one client (ask for less: list GROUP)"));
	CHECK(c->fd < 0);			/* hung up once that was sent */
	CHECK_LINE(fd, "EOF");
}

/* Be root in a user namespace of our own when not root (SO_PEERCRED then
 * says uid 0 for our own connections); false when that cannot be. */
static bool be_root(void)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();

	if (!uid)
		return true;
	if (unshare(CLONE_NEWUSER))
		return false;
	file_put("/proc/self/setgroups", "deny", 4);
	snprintf(map, sizeof(map), "0 %u 1", uid);
	file_put("/proc/self/uid_map", map, strlen(map));
	snprintf(map, sizeof(map), "0 %u 1", gid);
	file_put("/proc/self/gid_map", map, strlen(map));
	return !getuid();
}

/*
 * CONTROL_RESERVED slots stay root's on the control socket: with every
 * other slot held by trigger clients (8 each of 14 users, put there by
 * hand: a test has one uid), a trigger client is refused and root gets in,
 * CONTROL_RESERVED times; then the table is full for root too. A trigger
 * slot that frees up is taken again.
 */
TEST(daemon_client_control_slots_stay_roots)
{
	const unsigned int trigger_slots = CLIENTS_MAX - CONTROL_RESERVED;
	struct client *c;
	unsigned int i;
	int lfd, fd;

	if (!be_root()) {
		printf("# SKIP: neither root nor a user namespace\n");
		return;
	}
	lfd = daemon_fixture();
	for (i = 0; i < trigger_slots; i++) {
		clients[i] = (struct client){ .fd = open("/dev/null", O_RDWR | O_CLOEXEC),
					      .grp = 0, .uid = 1000 + i / CLIENTS_PER_UID,
					      .progress = now_seconds() };
		CHECK(clients[i].fd >= 0);
	}
	CHECK(1000 + (trigger_slots - 1) / CLIENTS_PER_UID != getuid());

	/* a trigger user with no connection yet: no slot for it */
	c = connect_client(lfd, 0, &fd);
	CHECK_LINE(fd, "error too many clients: try later");
	CHECK_LINE(fd, "EOF");
	CHECK(c->fd < 0);
	close(fd);
	for (i = 0; i < CONTROL_RESERVED; i++) {
		c = connect_client(lfd, -1, &fd);
		CHECK_LINE(fd, "amberd protocol 1");
		CHECK(c == &clients[trigger_slots + i] && c->grp == -1 && c->uid == 0);
	}
	CHECK(!connect_client(lfd, -1, &fd));
	CHECK_LINE(fd, "error too many clients: try later");
	close(fd);
	CHECK(!connect_client(lfd, 0, &fd));
	CHECK_LINE(fd, "error too many clients: try later");
	close(fd);

	client_close(&clients[5]);
	c = connect_client(lfd, 0, &fd);
	CHECK(c == &clients[5]);
	CHECK_LINE(fd, "amberd protocol 1");
}
