// SPDX-License-Identifier: GPL-2.0
/* Chains: validation before writing, newest wins, consolidation. */
#include <fcntl.h>
#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chain.h"
#include "harness.h"
#include "helpers.h"
#include "keys.h"
#include "subcommands.h"
#include "util.h"

#define CHUNKS	24

/*
 * full.amb (epoch 1) of v0; incr1.amb (epoch 3) with chunks 2, 5, 6
 * changed; incr2.amb (epoch 6) with chunks 5, 9, 23 changed. v2 is the
 * final image. Chunk 5 changes twice: only incr2's version may survive.
 */
struct fixture {
	struct image v0, v1, v2;
	struct bkp_summary full, incr1, incr2;
};

static const uint64_t changed1[] = { 2, 5, 6 };
static const uint64_t changed2[] = { 5, 9, 23 };

/*
 * make_chain()'s chain, member i in format @version[i] (0: the writer's
 * default) and encrypted with @keys (NULL: not).
 */
static void make_chain_with(struct fixture *f, const uint32_t version[3],
			    const struct bkp_keys *keys)
{
	struct bkp_info info;
	uint64_t all[CHUNKS];
	unsigned int i;

	image_make(&f->v0, CHUNKS * 4096, 4096, 21);
	for (i = 0; i < CHUNKS; i++)
		all[i] = i;
	info = test_info(&f->v0, BKP_FULL, 1);
	info.version = version[0];
	write_chunks_keyed("full.amb", &info, &f->v0, all, NULL, CHUNKS, 3, keys, &f->full);

	image_copy(&f->v1, &f->v0);
	for (i = 0; i < 3; i++)
		image_change(&f->v1, changed1[i], 100 + i);
	info = test_info(&f->v1, BKP_INCREMENTAL, 3);
	info.version = version[1];
	set_parent(&info, 1, &f->full);
	write_chunks_keyed("incr1.amb", &info, &f->v1, changed1, NULL, 3, 3, keys, &f->incr1);

	image_copy(&f->v2, &f->v1);
	for (i = 0; i < 3; i++)
		image_change(&f->v2, changed2[i], 200 + i);
	info = test_info(&f->v2, BKP_INCREMENTAL, 6);
	info.version = version[2];
	set_parent(&info, 3, &f->incr1);
	write_chunks_keyed("incr2.amb", &info, &f->v2, changed2, NULL, 3, 3, keys, &f->incr2);
}

static const uint32_t writers_default[3];

static void make_chain(struct fixture *f)
{
	make_chain_with(f, writers_default, NULL);
}

static void make_target(const char *path, size_t len, uint8_t fill)
{
	uint8_t *junk = malloc(len);

	memset(junk, fill, len);
	file_put(path, junk, len);
	free(junk);
}

static void expect_file(const char *path, const struct image *im)
{
	uint8_t *data;
	size_t len;

	data = file_get(path, &len);
	CHECK(len >= im->geo.volume_bytes);
	CHECK(!memcmp(data, im->data, im->geo.volume_bytes));
	free(data);
}

static void expect_untouched(const char *path, size_t len, uint8_t fill)
{
	uint8_t *data;
	size_t got, i;

	data = file_get(path, &got);
	CHECK_EQ(got, len);
	for (i = 0; i < len; i++)
		CHECK_EQ(data[i], fill);
	free(data);
}

TEST(chain_restore_full_and_incrementals_to_a_file)
{
	struct fixture f;

	make_chain(&f);
	make_target("target", CHUNKS * 4096, 0xaa);
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr1.amb", "incr2.amb",
			 "--to", "target", NULL));
	expect_file("target", &f.v2);
	make_target("target", CHUNKS * 4096 + 8192, 0xaa);	/* larger is fine */
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr1.amb", "--to", "target",
			 NULL));
	expect_file("target", &f.v1);
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "--to", "target", NULL));
	expect_file("target", &f.v0);
}

struct applied {
	unsigned int times[CHUNKS];
	const char *from[CHUNKS];
};

static int record_apply(void *ctx, const struct chain_member *from, const struct bkp_record *rec)
{
	struct applied *a = ctx;

	a->times[rec->chunk]++;
	a->from[rec->chunk] = from->path;
	return 0;
}

TEST(chain_newest_version_wins_and_each_chunk_is_written_once)
{
	char *paths[] = { "full.amb", "incr1.amb", "incr2.amb" };
	struct applied a = { 0 };
	struct fixture f;
	struct chain c;
	unsigned int i;

	make_chain(&f);
	CHECK_OK(chain_open(&c, paths, 3));
	CHECK_OK(chain_check(&c));
	CHECK_OK(chain_apply(&c, record_apply, &a));
	for (i = 0; i < CHUNKS; i++)
		CHECK_EQ(a.times[i], 1);
	CHECK(!strcmp(a.from[5], "incr2.amb"));
	CHECK(!strcmp(a.from[9], "incr2.amb"));
	CHECK(!strcmp(a.from[2], "incr1.amb"));
	CHECK(!strcmp(a.from[6], "incr1.amb"));
	CHECK(!strcmp(a.from[0], "full.amb"));
	CHECK(!memcmp(chain_tip(&c)->summary.link, f.incr2.link, 32));
	chain_close(&c);
}

TEST(chain_broken_chains_are_refused_before_writing)
{
	struct bkp_summary other;
	struct bkp_info info;
	struct fixture f;

	make_chain(&f);
	make_target("target", CHUNKS * 4096, 0x5a);
	/* swapped */
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "incr2.amb", "incr1.amb",
			    "--to", "target", NULL), AMBER_EDATA, "continues epoch 3");
	/* a missing link */
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "incr2.amb", "--to", "target",
			    NULL), AMBER_EDATA, "chain broken: incr2.amb continues epoch 3");
	/* no full first */
	CHECK_FAILS(run_cmd(restore_main, "restore", "incr1.amb", "incr2.amb", "--to", "target",
			    NULL), AMBER_EDATA, "starts with a full one");
	/* two fulls */
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "full.amb", "--to", "target",
			    NULL), AMBER_EDATA, "only the first");
	/* a different full of the same epoch: the link does not match */
	image_change(&f.v0, 0, 999);
	info = test_info(&f.v0, BKP_FULL, 1);
	write_all("other.amb", &info, &f.v0, 3, &other);
	CHECK_FAILS(run_cmd(restore_main, "restore", "other.amb", "incr1.amb", "--to", "target",
			    NULL), AMBER_EDATA, "not its parent");
	/* another volume */
	info = test_info(&f.v1, BKP_INCREMENTAL, 3);
	info.volume_uuid[0] ^= 1;
	set_parent(&info, 1, &f.full);
	write_chunks("foreign.amb", &info, &f.v1, changed1, NULL, 3, 3, NULL);
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "foreign.amb", "--to", "target",
			    NULL), AMBER_EDATA, "is of volume");
	expect_untouched("target", CHUNKS * 4096, 0x5a);
}

TEST(chain_restore_refuses_bad_targets)
{
	uint8_t ext4[CHUNKS * 4096] = { 0 };
	struct fixture f;

	make_chain(&f);
	make_target("small", CHUNKS * 4096 - 512, 0);
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "--to", "small", NULL),
		    AMBER_ESYS, "the image needs");
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "--to", "missing", NULL),
		    AMBER_ESYS, "missing");
	ext4[1080] = 0x53, ext4[1081] = 0xef;
	file_put("ext4", ext4, sizeof(ext4));
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "--to", "ext4", NULL),
		    AMBER_ESYS, "holds an ext2/3/4 filesystem");
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "--to", "ext4", "--force", NULL));
	expect_file("ext4", &f.v0);
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", NULL), AMBER_EUSAGE,
		    "--to is required");
}

TEST(chain_corrupt_member_leaves_the_target_marked_incomplete)
{
	struct fixture f;

	make_chain(&f);
	file_flip("full.amb", sizeof(struct disk_header) + 20, 0x10);	/* record 0's header */
	make_target("target", CHUNKS * 4096, 0);
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "incr1.amb", "--to", "target",
			    NULL), AMBER_EDATA, "target is incomplete");
}

/* incr1.amb is written first: the damaged table of full.amb must stop it. */
TEST(chain_damaged_index_of_any_member_is_refused_before_writing)
{
	struct bkp_info info;
	struct fixture f;
	size_t len;

	make_chain(&f);
	make_target("target", CHUNKS * 4096, 0x5a);
	free(file_get("full.amb", &len));
	file_flip("full.amb", len - sizeof(struct disk_trailer_v2) - 20, 0x10);
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "incr1.amb", "--to", "target",
			    NULL), AMBER_EDATA, "full.amb: block table at offset");
	expect_untouched("target", CHUNKS * 4096, 0x5a);
	/* v1: the index checksum, before the first chunk is written */
	info = test_info(&f.v0, BKP_FULL, 1);
	info.version = BKP_VERSION_1;
	write_all("full1.amb", &info, &f.v0, 3, NULL);
	free(file_get("full1.amb", &len));
	file_flip("full1.amb", len - sizeof(struct disk_trailer) - 4, 0x10);
	CHECK_FAILS(run_cmd(restore_main, "restore", "full1.amb", "--to", "target", NULL),
		    AMBER_EDATA, "full1.amb: index at offset");
	expect_untouched("target", CHUNKS * 4096, 0x5a);
}

static void with_stdin(const char *path)
{
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0 && dup2(fd, STDIN_FILENO) == STDIN_FILENO);
	close(fd);
}

TEST(chain_full_from_standard_input)
{
	struct fixture f;

	make_chain(&f);
	make_target("target", CHUNKS * 4096, 0);
	with_stdin("full.amb");
	CHECK_OK(run_cmd(restore_main, "restore", "-", "incr1.amb", "incr2.amb", "--to",
			 "target", NULL));
	expect_file("target", &f.v2);
	/* a wrong full on stdin: caught at its end, by its link */
	image_change(&f.v0, 1, 77);
	{
		struct bkp_info info = test_info(&f.v0, BKP_FULL, 1);

		write_all("other.amb", &info, &f.v0, 3, NULL);
	}
	with_stdin("other.amb");
	CHECK_FAILS(run_cmd(restore_main, "restore", "-", "incr1.amb", "--to", "target", NULL),
		    AMBER_EDATA, "not its parent");
	CHECK_FAILS(run_cmd(restore_main, "restore", "-", "-", "--to", "target", NULL),
		    AMBER_EUSAGE, "given twice");
}

TEST(chain_consolidated_full_equals_a_full_of_the_final_image)
{
	struct bkp_summary direct, merged;
	struct bkp_info info;
	struct fixture f;
	uint8_t digest[32];

	make_chain(&f);
	CHECK_OK(run_cmd(consolidate_main, "consolidate", "full.amb", "incr1.amb", "incr2.amb",
			 "--to", "new.amb", NULL));
	CHECK_OK(read_backup("new.amb", NULL, &merged));
	info = test_info(&f.v2, BKP_FULL, 6);
	write_all("direct.amb", &info, &f.v2, 3, &direct);
	CHECK(!memcmp(merged.digest, direct.digest, 32));
	reference_digest(&f.v2, BKP_VERSION_2, digest);
	CHECK(!memcmp(merged.digest, digest, 32));
	CHECK(!memcmp(merged.link, f.incr2.link, 32));
	make_target("target", CHUNKS * 4096, 0xff);
	CHECK_OK(run_cmd(restore_main, "restore", "new.amb", "--to", "target", NULL));
	expect_file("target", &f.v2);
	CHECK_FAILS(run_cmd(consolidate_main, "consolidate", "full.amb", "--to", "new.amb",
			    NULL), AMBER_ESYS, "exists");
}

/* An incremental after the chain continues the consolidated full too. */
TEST(chain_consolidated_full_continues_the_chain)
{
	struct bkp_summary incr3;
	struct bkp_info info;
	struct fixture f;
	static const uint64_t changed3[] = { 1 };

	make_chain(&f);
	CHECK_OK(run_cmd(consolidate_main, "consolidate", "full.amb", "incr1.amb",
			 "--to", "base.amb", NULL));
	image_change(&f.v2, 1, 300);
	info = test_info(&f.v2, BKP_INCREMENTAL, 8);
	set_parent(&info, 6, &f.incr2);
	write_chunks("incr3.amb", &info, &f.v2, changed3, NULL, 1, 3, &incr3);
	make_target("target", CHUNKS * 4096, 0);
	CHECK_OK(run_cmd(restore_main, "restore", "base.amb", "incr2.amb", "incr3.amb", "--to",
			 "target", NULL));
	expect_file("target", &f.v2);
	CHECK_OK(run_cmd(consolidate_main, "consolidate", "base.amb", "incr2.amb", "--to",
			 "base2.amb", NULL));
	CHECK_OK(run_cmd(restore_main, "restore", "base2.amb", "incr3.amb", "--to", "target",
			 NULL));
	expect_file("target", &f.v2);
	CHECK_FAILS(run_cmd(consolidate_main, "consolidate", "base.amb", "incr3.amb", "--to",
			    "bad.amb", NULL), AMBER_EDATA, "continues epoch 6");
	CHECK(access("bad.amb", F_OK));
}

TEST(chain_verify_list_and_info)
{
	struct fixture f;
	size_t len;
	uint8_t *data;

	make_chain(&f);
	CHECK_OK(run_cmd(verify_main, "verify", "full.amb", "incr1.amb", "incr2.amb", NULL));
	CHECK_OK(run_cmd(list_main, "list", "full.amb", "incr1.amb", "incr2.amb", NULL));
	CHECK_OK(run_cmd(info_main, "info", "incr2.amb", NULL));
	with_stdin("incr1.amb");
	CHECK_OK(run_cmd(verify_main, "verify", "-", NULL));
	data = file_get("incr2.amb", &len);
	file_put("short.amb", data, len - 1);
	CHECK_FAILS(run_cmd(verify_main, "verify", "short.amb", NULL), AMBER_EDATA, "short.amb:");
	CHECK_FAILS(run_cmd(list_main, "list", "short.amb", NULL), AMBER_EDATA,
		    "1 of 1 files could not be listed");
	/* a bad file is named, and the next one listed all the same */
	CHECK_FAILS(run_cmd(list_main, "list", "short.amb", "missing.amb", "full.amb", NULL),
		    AMBER_EDATA, "2 of 3 files could not be listed");
	CHECK_FAILS(run_cmd(list_main, "list", "missing.amb", "full.amb", NULL), AMBER_ESYS,
		    "1 of 2 files could not be listed");
	CHECK_EQ(system("\"$AMBER_BIN\" list short.amb full.amb 2>err | grep -q '^full.amb '"
			   " && grep -q 'short.amb: .*trailer' err"), 0);
	CHECK_FAILS(run_cmd(info_main, "info", "short.amb", NULL), AMBER_EDATA, "trailer");
	free(data);
}

/* Run @cmd (through the shell) and load the JSON it printed; @status its
 * expected exit status. */
static json_t *json_of(const char *cmd, int status)
{
	char line[512];
	json_t *doc;

	snprintf(line, sizeof(line), "\"$AMBER_BIN\" %s >out.json 2>/dev/null", cmd);
	CHECK_EQ(WEXITSTATUS(system(line)), status);
	doc = json_load_file("out.json", JSON_REJECT_DUPLICATES, NULL);
	CHECK(doc);
	return doc;
}

static void check_json_backup(json_t *o, const char *file, uint64_t epoch,
			      const struct bkp_summary *s)
{
	char hex[65];

	CHECK(json_is_object(o));
	CHECK(!strcmp(json_string_value(json_object_get(o, "file")), file));
	CHECK_EQ(json_integer_value(json_object_get(o, "epoch")), (json_int_t)epoch);
	CHECK_EQ(json_integer_value(json_object_get(o, "chunks")), CHUNKS);
	CHECK_EQ(json_integer_value(json_object_get(o, "chunks_stored")), (json_int_t)s->records);
	CHECK_EQ(json_integer_value(json_object_get(o, "file_bytes")), (json_int_t)s->file_bytes);
	CHECK(!strcmp(json_string_value(json_object_get(o, "digest")),
		      format_hex(s->digest, 32, hex)));
	CHECK(!json_object_get(o, "error"));
}

/* --json: what the text says, keyed as amber(8) documents, failures too. */
TEST(chain_json_reports)
{
	struct fixture f;
	json_t *doc, *o;
	char hex[65];
	size_t len;
	uint8_t *data;

	make_chain(&f);
	data = file_get("incr2.amb", &len);
	file_put("short.amb", data, len - 1);
	free(data);

	doc = json_of("list --json full.amb incr1.amb short.amb", AMBER_EDATA);
	CHECK(json_is_array(doc) && json_array_size(doc) == 3);
	check_json_backup(json_array_get(doc, 0), "full.amb", 1, &f.full);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(doc, 0), "kind")),
		      "full"));
	CHECK(json_is_null(json_object_get(json_array_get(doc, 0), "parent")));
	o = json_array_get(doc, 1);
	check_json_backup(o, "incr1.amb", 3, &f.incr1);
	o = json_object_get(o, "parent");
	CHECK_EQ(json_integer_value(json_object_get(o, "epoch")), 1);
	CHECK(!strcmp(json_string_value(json_object_get(o, "link")),
		      format_hex(f.full.link, 32, hex)));
	o = json_array_get(doc, 2);
	CHECK(strstr(json_string_value(json_object_get(o, "error")), "short.amb: "));
	CHECK_EQ(json_integer_value(json_object_get(o, "exit_status")), AMBER_EDATA);
	json_decref(doc);

	/* verify stops at the first bad backup, which is in the array too */
	doc = json_of("verify -j incr2.amb short.amb full.amb", AMBER_EDATA);
	CHECK(json_is_array(doc) && json_array_size(doc) == 2);
	check_json_backup(json_array_get(doc, 0), "incr2.amb", 6, &f.incr2);
	CHECK(json_object_get(json_array_get(doc, 1), "error"));
	json_decref(doc);

	doc = json_of("info -j incr2.amb", 0);
	check_json_backup(doc, "incr2.amb", 6, &f.incr2);
	CHECK(json_integer_value(json_object_get(json_object_get(doc, "index"), "extents")) > 0);
	json_decref(doc);
	doc = json_of("info --json - <incr1.amb", 0);
	CHECK_EQ(json_integer_value(json_object_get(doc, "epoch")), 3);
	CHECK(!json_object_get(doc, "digest"));	/* a stream: the header only */
	json_decref(doc);
}

/* The parent of a new incremental: this volume's, of its geometry, older. */
TEST(chain_parent_of_an_incremental_is_checked)
{
	struct parent_want want = { .volume = "vol", .uuid = test_uuid, .epoch = 9 };
	uint8_t other[16] = { 1 };
	struct bkp_summary s;
	struct bkp_info info;
	struct fixture f;

	make_chain(&f);
	want.volume_bytes = f.v0.geo.volume_bytes;
	want.chunk_bytes = f.v0.geo.chunk_bytes;
	CHECK_OK(chain_read_parent("incr1.amb", &want, &info, &s));
	CHECK_EQ(info.epoch, 3);
	CHECK(!memcmp(s.link, f.incr1.link, 32));
	want.epoch = 3;
	CHECK_FAILS(chain_read_parent("incr1.amb", &want, &info, &s), AMBER_EDATA,
		    "incr1.amb is of epoch 3, not before this snapshot's 3");
	want.epoch = 0;
	want.chunk_bytes *= 2;
	CHECK_FAILS(chain_read_parent("full.amb", &want, &info, &s), AMBER_EDATA,
		    "full.amb is not a backup of vol (chunk size differs: 4096 bytes, not 8192)");
	want.chunk_bytes /= 2;
	want.uuid = other;
	CHECK_FAILS(chain_read_parent("full.amb", &want, &info, &s), AMBER_EDATA,
		    "full.amb is not a backup of vol (another volume uuid");
	want.uuid = NULL;
	CHECK_OK(chain_read_parent("full.amb", &want, &info, &s));
	CHECK_FAILS(chain_read_parent("missing.amb", &want, &info, &s), AMBER_ESYS,
		    "missing.amb: No such file");
}

/*
 * A forged backup: a valid full of other content, every checksum right.
 * Only the digest the operator expects tells it apart, and restore refuses
 * it before writing.
 */
TEST(chain_expected_digests_refuse_a_forged_backup)
{
	char d0[65], d1[65], d2[65], list[200];
	struct bkp_info info;
	struct fixture f;

	make_chain(&f);
	format_hex(f.full.digest, 32, d0);
	format_hex(f.incr1.digest, 32, d1);
	format_hex(f.incr2.digest, 32, d2);
	image_change(&f.v0, 4, 99);
	info = test_info(&f.v0, BKP_FULL, 1);
	write_all("forged.amb", &info, &f.v0, 3, NULL);
	CHECK_OK(run_cmd(verify_main, "verify", "forged.amb", NULL));

	CHECK_FAILS(run_cmd(verify_main, "verify", "forged.amb", "--digest", d0, NULL),
		    AMBER_EDATA, "forged.amb: digest ");
	CHECK_OK(run_cmd(verify_main, "verify", "full.amb", "--digest", d0, NULL));
	make_target("target", CHUNKS * 4096, 0xaa);
	CHECK_FAILS(run_cmd(restore_main, "restore", "forged.amb", "--to", "target",
			    "--digest", d0, NULL), AMBER_EDATA, "not the backup that was made");
	expect_untouched("target", CHUNKS * 4096, 0xaa);

	snprintf(list, sizeof(list), "%s,%s,%s", d0, d1, d2);
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr1.amb", "incr2.amb",
			 "--to", "target", "--digest", list, NULL));
	expect_file("target", &f.v2);
	snprintf(list, sizeof(list), "%s,%s,%s", d0, d2, d1);
	make_target("target", CHUNKS * 4096, 0xaa);
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "incr1.amb", "incr2.amb",
			    "--to", "target", "--digest", list, NULL), AMBER_EDATA,
		    "incr1.amb: digest ");
	expect_untouched("target", CHUNKS * 4096, 0xaa);

	/* From a pipe the trailer comes last: refused at its end. */
	with_stdin("forged.amb");
	CHECK_FAILS(run_cmd(restore_main, "restore", "-", "--to", "target", "--digest", d0,
			    NULL), AMBER_EDATA, "-: digest ");
	with_stdin("forged.amb");
	CHECK_FAILS(run_cmd(verify_main, "verify", "-", "--digest", d0, NULL), AMBER_EDATA,
		    "-: digest ");

	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "incr1.amb", "--to", "target",
			    "--digest", d0, NULL), AMBER_EUSAGE, "1 digest for 2 backups");
	CHECK_FAILS(run_cmd(verify_main, "verify", "full.amb", "--digest", "abc", NULL),
		    AMBER_EUSAGE, "'abc' is not a SHA-256 digest");
	snprintf(list, sizeof(list), "%s,", d0);
	CHECK_FAILS(run_cmd(verify_main, "verify", "full.amb", "--digest", list, NULL),
		    AMBER_EUSAGE, "2 digests for 1 backup");
}

/* ---- random access: chain_reader ---- */

static char *chain_paths[] = { "full.amb", "incr1.amb", "incr2.amb" };

/* Open and check the chain of @paths[0..n), with @key, and a reader of its image. */
static void reader_open(struct chain *c, struct chain_reader *r, char *const *paths, size_t n,
			const struct data_key *key)
{
	CHECK_OK(chain_open(c, paths, n));
	CHECK_OK(chain_set_key(c, key));
	CHECK_OK(chain_check(c));
	CHECK_OK(chain_reader_open(c, r));
}

static void reader_close(struct chain *c, struct chain_reader *r)
{
	chain_reader_close(r);
	chain_close(c);
}

/* @r reads chunk @chunk of @im, byte for byte. */
static void expect_chunk(struct chain_reader *r, const struct image *im, uint64_t chunk)
{
	uint8_t buf[4096];

	memset(buf, 0xa5, sizeof(buf));
	CHECK_OK(chain_reader_read(r, chunk, buf));
	if (memcmp(buf, image_chunk(im, chunk), sizeof(buf)))
		test_failed(__FILE__, __LINE__, "chunk %" PRIu64 " is not the image's", chunk);
}

/* The chains full, full + incr1 and all three read as v0, v1 and v2, chunk by chunk. */
static void expect_chain_images(const struct fixture *f, const struct data_key *key)
{
	const struct image *want[] = { &f->v0, &f->v1, &f->v2 };
	struct chain_reader r;
	struct chain c;
	uint64_t chunk;
	size_t n;

	for (n = 1; n <= ARRAY_SIZE(want); n++) {
		reader_open(&c, &r, chain_paths, n, key);
		for (chunk = 0; chunk < CHUNKS; chunk++)
			expect_chunk(&r, want[n - 1], chunk);
		reader_close(&c, &r);
	}
}

static struct bkp_info header_of(const char *path)
{
	struct bkp_summary s;
	struct bkp_info info;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0);
	CHECK_OK(bkp_peek(fd, &info, &s));
	close(fd);
	return info;
}

/* Chunk 5 is in all three members: only incr2's version may be read. */
TEST(chain_reader_reads_the_newest_version_of_each_chunk)
{
	struct fixture f;

	make_chain(&f);
	expect_chain_images(&f, NULL);
}

TEST(chain_reader_reads_v1_and_v2_members_alike)
{
	static const uint32_t mixed[3] = { BKP_VERSION_1, BKP_VERSION_2, BKP_VERSION_1 };
	struct fixture f;

	make_chain_with(&f, mixed, NULL);
	CHECK_EQ(header_of("full.amb").version, BKP_VERSION_1);
	CHECK_EQ(header_of("incr1.amb").version, BKP_VERSION_2);
	CHECK_EQ(header_of("incr2.amb").version, BKP_VERSION_1);
	expect_chain_images(&f, NULL);
}

/* Flip a bit in the payload of @chunk's record in the v2 backup @path: its offset. */
static uint64_t flip_payload(const char *path, uint64_t chunk)
{
	uint64_t at = chunk_record_offset(path, chunk);

	file_flip(path, at + sizeof(struct disk_record_v2) + 9, 0x04);
	return at;
}

/*
 * A damaged payload fails the read of its chunk alone, naming it, and the
 * same reader reads the others. A damaged version that a newer member
 * replaces (chunk 5 of full.amb) is never read.
 */
TEST(chain_reader_names_a_damaged_chunk_and_reads_the_others)
{
	static const uint64_t others[] = { 8, 10, 5, 6, 23, 0 };
	struct chain_reader r;
	struct fixture f;
	struct chain c;
	uint8_t buf[4096];
	char text[64];
	uint64_t at;
	size_t i;

	make_chain(&f);
	at = flip_payload("incr2.amb", 9);
	flip_payload("full.amb", 5);
	reader_open(&c, &r, chain_paths, 3, NULL);
	snprintf(text, sizeof(text), "chunk 9 (record at offset %" PRIu64 "): ", at);
	CHECK_FAILS(chain_reader_read(&r, 9, buf), AMBER_EDATA, text);
	for (i = 0; i < ARRAY_SIZE(others); i++)
		expect_chunk(&r, &f.v2, others[i]);
	CHECK_FAILS(chain_reader_read(&r, 9, buf), AMBER_EDATA, text);
	reader_close(&c, &r);
}

/* Read from a pipe, the newest member has no index to seek in. */
TEST(chain_reader_refuses_a_member_read_from_a_pipe)
{
	char *paths[] = { "full.amb", "incr1.amb", "-" };
	struct chain_reader r;
	struct fixture f;
	struct chain c;
	pid_t child;

	make_chain(&f);
	with_stdin_pipe("incr2.amb", &child);
	CHECK_OK(chain_open(&c, paths, 3));
	CHECK_OK(chain_check(&c));
	CHECK_FAILS(chain_reader_open(&c, &r), AMBER_EUSAGE,
		    "-: random access needs a seekable file");
	chain_close(&c);
	stdin_end(child);
}

TEST(chain_reader_refuses_a_chunk_past_the_image)
{
	struct chain_reader r;
	struct fixture f;
	struct chain c;
	uint8_t buf[4096];

	make_chain(&f);
	reader_open(&c, &r, chain_paths, 3, NULL);
	expect_chunk(&r, &f.v2, CHUNKS - 1);
	CHECK_FAILS(chain_reader_read(&r, CHUNKS, buf), AMBER_EUSAGE,
		    "chunk 24 is past the image's 24");
	CHECK_FAILS(chain_reader_read(&r, UINT64_MAX, buf), AMBER_EUSAGE, "past the image");
	reader_close(&c, &r);
}

/* chain_set_key()'s key reaches every member's index: the plaintext comes out. */
TEST(chain_reader_decrypts_an_encrypted_chain_with_its_key)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct fixture f;
	struct bkp_info info;

	make_chain_with(&f, writers_default, &keys);
	info = header_of("incr2.amb");
	CHECK(bkp_encrypted(&info));
	expect_chain_images(&f, key);
	data_key_free(key);
}
