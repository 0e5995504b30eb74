// SPDX-License-Identifier: GPL-2.0
/* The status and table line contract of docs/DESIGN.md. */
#include "dmline.h"
#include "harness.h"

TEST(dmline_status_lines_parse)
{
	struct amber_status st;

	CHECK_OK(status_parse("active 12 128 3/1024 5 100 7 block exact -\n", &st));
	CHECK_EQ(st.state, VOL_ACTIVE);
	CHECK_EQ(st.epoch, 12);
	CHECK_EQ(st.chunk_sectors, 128);
	CHECK_EQ(st.used, 3);
	CHECK_EQ(st.total, 1024);
	CHECK_EQ(st.copied, 5);
	CHECK_EQ(st.released, 100);
	CHECK_EQ(st.waited, 7);
	CHECK_EQ(st.overflow, OVERFLOW_BLOCK);
	CHECK_EQ(st.cbt, CBT_EXACT);
	CHECK_EQ(st.reason, REASON_NONE);
	CHECK_OK(status_parse("invalid 3 8 1024/1024 1024 0 0 invalidate superset store_full",
			      &st));
	CHECK_EQ(st.state, VOL_INVALID);
	CHECK_EQ(st.reason, REASON_STORE_FULL);
	CHECK_EQ(st.cbt, CBT_SUPERSET);
	CHECK_OK(status_parse("idle 0 2048 0/1 0 0 18446744073709551615 block invalid "
			      "store_io_error", &st));
	CHECK_EQ(st.waited, UINT64_MAX);
	CHECK_OK(status_parse("frozen 1 8 0/0 0 0 0 block exact block_timeout", &st));
	CHECK_EQ(st.reason, REASON_BLOCK_TIMEOUT);
	CHECK_OK(status_parse("invalid 1 8 0/9 0 0 0 block invalid origin_io_error", &st));
	CHECK_EQ(st.reason, REASON_ORIGIN_IO_ERROR);
	CHECK_OK(status_parse("invalid 1 8 0/9 0 0 0 block invalid no_memory", &st));
	CHECK_EQ(st.reason, REASON_NO_MEMORY);
}

TEST(dmline_bad_status_lines_name_the_field)
{
	static const struct { const char *line, *why; } bad[] = {
		{ "", "0 fields" },
		{ "active 12 128 3/1024 5 100 7 block exact", "9 fields" },
		{ "active 12 128 3/1024 5 100 7 block exact - extra", "11 fields" },
		{ "asleep 12 128 3/1024 5 100 7 block exact -", "state 'asleep'" },
		{ "active -1 128 3/1024 5 100 7 block exact -", "epoch" },
		{ "active 012 128 3/1024 5 100 7 block exact -", "epoch" },
		{ "active 12 100 3/1024 5 100 7 block exact -", "chunk_sectors" },
		{ "active 12 4096 3/1024 5 100 7 block exact -", "chunk_sectors" },
		{ "active 12 128 2000/1024 5 100 7 block exact -", "used/total" },
		{ "active 12 128 3-1024 5 100 7 block exact -", "used/total" },
		{ "active 12 128 3/ 5 100 7 block exact -", "used/total" },
		{ "active 12 128 3/1024 18446744073709551616 100 7 block exact -", "copied" },
		{ "active 12 128 3/1024 5 1e3 7 block exact -", "released" },
		{ "active 12 128 3/1024 5 100 +7 block exact -", "waited" },
		{ "active 12 128 3/1024 5 100 7 wait exact -", "overflow" },
		{ "active 12 128 3/1024 5 100 7 block fuzzy -", "cbt" },
		{ "active 12 128 3/1024 5 100 7 block exact tired", "reason" },
	};
	struct amber_status st;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_FAILS(status_parse(bad[i].line, &st), AMBER_ESYS, bad[i].why);
}

TEST(dmline_table_lines_parse)
{
	struct amber_table t;

	CHECK_OK(table_parse("254:1 254:2 128", &t));
	CHECK_EQ(t.origin_major, 254);
	CHECK_EQ(t.origin_minor, 1);
	CHECK_EQ(t.store_minor, 2);
	CHECK_EQ(t.chunk_sectors, 128);
	CHECK_EQ(t.overflow, OVERFLOW_BLOCK);
	CHECK_EQ(t.block_timeout_ms, 30000);
	CHECK_EQ(t.drain_timeout_ms, 5000);
	CHECK_EQ(t.intent_sectors, 8192);
	CHECK_OK(table_parse("8:16 8:32 8 3 drain_timeout_ms=100 overflow=invalidate "
			     "block_timeout_ms=7", &t));
	CHECK_EQ(t.overflow, OVERFLOW_INVALIDATE);
	CHECK_EQ(t.block_timeout_ms, 7);
	CHECK_EQ(t.drain_timeout_ms, 100);
	CHECK_OK(table_parse("8:16 8:32 2048 4 overflow=block block_timeout_ms=1 "
			     "drain_timeout_ms=1 intent_sectors=2048", &t));
	CHECK_EQ(t.intent_sectors, 2048);
	CHECK_FAILS(table_parse("8:16 8:32 128 1 intent_sectors=64", &t), AMBER_ESYS,
		    "intent_sectors=64");
	CHECK_FAILS(table_parse("8:16 8:32 8 1 intent_sectors=12288", &t), AMBER_ESYS,
		    "intent_sectors=12288");
	CHECK_FAILS(table_parse("8:16 8:32 8 1 intent_sectors=4194304", &t), AMBER_ESYS,
		    "intent_sectors=4194304");
	CHECK_FAILS(table_parse("8:16 8:32 8 2 overflow=block overflow=block", &t), AMBER_ESYS,
		    "feature 'overflow=block'");
	CHECK_FAILS(table_parse("8:16 8:32 8 2 overflow=block", &t), AMBER_ESYS, "feature count");
	CHECK_FAILS(table_parse("8:16 8:32 8 1 block_timeout_ms=0", &t), AMBER_ESYS,
		    "block_timeout_ms=0");
	CHECK_FAILS(table_parse("8:16 8:32 8 1 drain_timeout_ms=600001", &t), AMBER_ESYS,
		    "drain_timeout_ms");
	CHECK_FAILS(table_parse("8:16 8:32 8 1 speed=fast", &t), AMBER_ESYS, "speed=fast");
	CHECK_FAILS(table_parse("/dev/sda 8:32 8", &t), AMBER_ESYS, "origin device");
	CHECK_FAILS(table_parse("8:16 8:32", &t), AMBER_ESYS, "needs 3");
}
