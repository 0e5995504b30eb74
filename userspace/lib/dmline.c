// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>

#include "dmline.h"
#include "error.h"
#include "util.h"

#define MAX_LINE	1024
#define MAX_TOKENS	16

static const char *const state_names[] = { "idle", "frozen", "active", "invalid" };
static const char *const overflow_names[] = { "block", "invalidate" };
static const char *const cbt_names[] = { "exact", "superset", "invalid" };
static const char *const reason_names[] = { "-", "store_full", "block_timeout",
					    "store_io_error", "origin_io_error",
					    "no_memory" };

const char *vol_state_name(enum vol_state s) { return state_names[s]; }
const char *overflow_name(enum overflow_mode m) { return overflow_names[m]; }
const char *cbt_name(enum cbt_state c) { return cbt_names[c]; }
const char *reason_name(enum invalid_reason r) { return reason_names[r]; }

struct tokens {
	char buf[MAX_LINE + 1];
	char *v[MAX_TOKENS];
	unsigned int n;
};

static int tokenize(const char *line, struct tokens *t, const char *what)
{
	char *save, *tok;

	if (strlen(line) > MAX_LINE)
		return fail(AMBER_ESYS, "%s line is too long", what);
	strcpy(t->buf, line);
	t->n = 0;
	for (tok = strtok_r(t->buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		if (t->n == MAX_TOKENS)
			return fail(AMBER_ESYS, "%s line has too many fields", what);
		t->v[t->n++] = tok;
	}
	return 0;
}

/* A plain decimal up to @max, ended by @end. */
static bool number(const char *s, uint64_t max, char end, const char **rest, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (max - (*p - '0')) / 10)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (p == s || *p != end || (p - s > 1 && *s == '0'))
		return false;
	*out = v;
	if (rest)
		*rest = p + 1;
	return true;
}

static bool whole_number(const char *s, uint64_t max, uint64_t *out)
{
	return number(s, max, 0, NULL, out);
}

static int name_index(const char *s, const char *const *names, int count)
{
	int i;

	for (i = 0; i < count; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

#define NAME_INDEX(s, names) name_index(s, names, ARRAY_SIZE(names))

static bool chunk_sectors_ok(uint64_t v)
{
	return is_power_of_2(v) && v >= 8 && v <= 2048;
}

bool intent_sectors_ok(uint64_t v, uint64_t chunk_sectors)
{
	return is_power_of_2(v) && v >= chunk_sectors && v <= INTENT_SECTORS_MAX;
}

static int bad(const char *what, const char *field, const char *value)
{
	return fail(AMBER_ESYS, "%s line: bad %s '%s'", what, field, value);
}

int status_parse(const char *line, struct amber_status *st)
{
	struct tokens t;
	const char *rest;
	uint64_t v;
	int i;

	if (tokenize(line, &t, "status"))
		return -1;
	if (t.n != 10)
		return fail(AMBER_ESYS, "status line has %u fields, not 10", t.n);
	if ((i = NAME_INDEX(t.v[0], state_names)) < 0)
		return bad("status", "state", t.v[0]);
	st->state = i;
	if (!whole_number(t.v[1], UINT64_MAX, &st->epoch))
		return bad("status", "epoch", t.v[1]);
	if (!whole_number(t.v[2], UINT32_MAX, &v) || !chunk_sectors_ok(v))
		return bad("status", "chunk_sectors", t.v[2]);
	st->chunk_sectors = v;
	if (!number(t.v[3], UINT64_MAX, '/', &rest, &st->used) ||
	    !whole_number(rest, UINT64_MAX, &st->total) || st->used > st->total)
		return bad("status", "used/total", t.v[3]);
	if (!whole_number(t.v[4], UINT64_MAX, &st->copied))
		return bad("status", "copied", t.v[4]);
	if (!whole_number(t.v[5], UINT64_MAX, &st->released))
		return bad("status", "released", t.v[5]);
	if (!whole_number(t.v[6], UINT64_MAX, &st->waited))
		return bad("status", "waited", t.v[6]);
	if ((i = NAME_INDEX(t.v[7], overflow_names)) < 0)
		return bad("status", "overflow", t.v[7]);
	st->overflow = i;
	if ((i = NAME_INDEX(t.v[8], cbt_names)) < 0)
		return bad("status", "cbt", t.v[8]);
	st->cbt = i;
	if ((i = NAME_INDEX(t.v[9], reason_names)) < 0)
		return bad("status", "reason", t.v[9]);
	st->reason = i;
	return 0;
}

static bool device(const char *s, uint32_t *major, uint32_t *minor)
{
	const char *rest;
	uint64_t ma, mi;

	if (!number(s, UINT32_MAX, ':', &rest, &ma) || !whole_number(rest, UINT32_MAX, &mi))
		return false;
	*major = ma;
	*minor = mi;
	return true;
}

/* "name=value" with a value up to @max; false if @tok is not @name. */
static bool feature_value(const char *tok, const char *name, uint64_t *v, bool *ok)
{
	size_t len = strlen(name);

	if (strncmp(tok, name, len) || tok[len] != '=')
		return false;
	*ok = whole_number(tok + len + 1, UINT32_MAX, v);
	return true;
}

static int parse_feature(const char *tok, struct amber_table *t, unsigned int *seen)
{
	uint64_t v = 0;
	bool ok = false;
	unsigned int bit;
	int i;

	if (feature_value(tok, "block_timeout_ms", &v, &ok)) {
		bit = 1;
		ok = ok && v >= 1 && v <= BLOCK_TIMEOUT_MAX_MS;
		t->block_timeout_ms = v;
	} else if (feature_value(tok, "drain_timeout_ms", &v, &ok)) {
		bit = 2;
		ok = ok && v >= 1 && v <= DRAIN_TIMEOUT_MAX_MS;
		t->drain_timeout_ms = v;
	} else if (feature_value(tok, "intent_sectors", &v, &ok)) {
		bit = 8;
		ok = ok && intent_sectors_ok(v, t->chunk_sectors);
		t->intent_sectors = v;
	} else if (!strncmp(tok, "overflow=", 9)) {
		bit = 4;
		i = NAME_INDEX(tok + 9, overflow_names);
		ok = i >= 0;
		t->overflow = i;
	} else {
		return bad("table", "feature", tok);
	}
	if (!ok || (*seen & bit))
		return bad("table", "feature", tok);
	*seen |= bit;
	return 0;
}

int table_parse(const char *params, struct amber_table *t)
{
	unsigned int i, seen = 0;
	struct tokens tk;
	uint64_t v;

	if (tokenize(params, &tk, "table"))
		return -1;
	if (tk.n < 3)
		return fail(AMBER_ESYS, "table line has %u fields, needs 3", tk.n);
	*t = (struct amber_table){ .overflow = OVERFLOW_BLOCK,
				   .block_timeout_ms = BLOCK_TIMEOUT_DEFAULT_MS,
				   .drain_timeout_ms = DRAIN_TIMEOUT_DEFAULT_MS,
				   .intent_sectors = INTENT_SECTORS_DEFAULT };
	if (!device(tk.v[0], &t->origin_major, &t->origin_minor))
		return bad("table", "origin device", tk.v[0]);
	if (!device(tk.v[1], &t->store_major, &t->store_minor))
		return bad("table", "store device", tk.v[1]);
	if (!whole_number(tk.v[2], UINT32_MAX, &v) || !chunk_sectors_ok(v))
		return bad("table", "chunk_sectors", tk.v[2]);
	t->chunk_sectors = v;
	if (tk.n == 3)
		return 0;
	if (!whole_number(tk.v[3], 4, &v) || v != tk.n - 4)
		return bad("table", "feature count", tk.v[3]);
	for (i = 4; i < tk.n; i++)
		if (parse_feature(tk.v[i], t, &seen))
			return -1;
	return 0;
}
