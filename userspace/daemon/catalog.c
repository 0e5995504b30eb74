// SPDX-License-Identifier: GPL-2.0
/* amberd's catalog of backups: see catalog.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "error.h"
#include "util.h"

#define CAT_HEADER	"# amberd catalog 1\n" \
			"# set group volume kind epoch parent bytes created digest file" \
			" [key signer]\n"
#define CAT_MAX_ENTRIES	1000000

void catalog_init(struct catalog *cat, const char *dir)
{
	memset(cat, 0, sizeof(*cat));
	snprintf(cat->dir, sizeof(cat->dir), "%s", dir);
}

void catalog_free(struct catalog *cat)
{
	free(cat->e);
	cat->e = NULL;
	cat->n = cat->cap = 0;
}

int catalog_add(struct catalog *cat, const struct cat_entry *e)
{
	struct cat_entry *grown;

	if (cat->n == cat->cap) {
		size_t cap = cat->cap ? 2 * cat->cap : 64;

		if (cap > CAT_MAX_ENTRIES)
			return fail(AMBER_ESYS, "the catalog holds %zu backups: too many", cat->n);
		grown = realloc(cat->e, cap * sizeof(*grown));
		if (!grown)
			return fail(AMBER_ESYS, "out of memory");
		cat->e = grown;
		cat->cap = cap;
	}
	cat->e[cat->n++] = *e;
	return 0;
}

void catalog_format(const struct cat_entry *e, char *line, size_t len)
{
	const char *key = *e->key ? e->key : "-", *signer = *e->signer ? e->signer : "-";
	char when[32], extra[2 * 65 + 2] = "";

	/* Without a key or a signer, the line of a catalog before them. */
	if (strcmp(key, "-") || strcmp(signer, "-"))
		snprintf(extra, sizeof(extra), " %s %s", key, signer);
	snprintf(line, len, "%" PRIu64 " %s %s %s %" PRIu64 " %s %" PRIu64 " %s %s %s%s",
		 e->set, e->group, e->volume, e->kind == BKP_FULL ? "full" : "incremental",
		 e->epoch, e->parent, e->bytes, format_time(e->created, when, sizeof(when)),
		 e->digest, e->file, extra);
}

/* A relative path of the backup directory: GROUP/NAME, a group name and a
 * file name of letters, digits, '_', '.' and '-' not starting with '.'. */
static bool file_ok(const char *f)
{
	const char *slash = strchr(f, '/'), *s;
	char group[CONF_NAME_MAX];

	if (!slash || (size_t)(slash - f) >= sizeof(group) || strlen(f) >= CAT_FILE_MAX ||
	    !slash[1] || slash[1] == '.')
		return false;
	memcpy(group, f, slash - f);
	group[slash - f] = 0;
	for (s = slash + 1; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return conf_name_ok(group);
}

static bool hex_ok(const char *s, size_t len);

/* KEY or SIGNER: 64 lower-case hex digits or "-", into @out. */
static int parse_fingerprint(const char *what, const char *s, char out[65])
{
	if (strcmp(s, "-") && !hex_ok(s, 64))
		return fail(AMBER_EDATA, "%s: not 64 lower-case hex digits or -", what);
	strcpy(out, s);
	return 0;
}

static bool hex_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return !s[len];
}

static int parse_time(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);

	if (!end || *end)
		return -1;
	*out = timegm(&tm);
	return 0;
}

int catalog_parse_line(const char *line, struct cat_entry *e)
{
	char buf[1024], *f[12], *save = NULL, *tok;
	int n = 0;

	if (strlen(line) >= sizeof(buf))
		return fail(AMBER_EDATA, "a line is too long");
	strcpy(buf, line);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == 12)
			return fail(AMBER_EDATA, "more than 12 fields");
		f[n++] = tok;
	}
	if (n != 10 && n != 12)
		return fail(AMBER_EDATA, "%d fields, not 10 or 12", n);
	memset(e, 0, sizeof(*e));
	if (parse_u64(f[0], 1, UINT64_MAX, &e->set))
		return fail(AMBER_EDATA, "set: '%s' is not a number", f[0]);
	if (!conf_name_ok(f[1]) || !conf_name_ok(f[2]))
		return fail(AMBER_EDATA, "bad group or volume name");
	strcpy(e->group, f[1]);
	strcpy(e->volume, f[2]);
	if (!strcmp(f[3], "full"))
		e->kind = BKP_FULL;
	else if (!strcmp(f[3], "incremental"))
		e->kind = BKP_INCREMENTAL;
	else
		return fail(AMBER_EDATA, "kind: '%s' is not full or incremental", f[3]);
	if (parse_u64(f[4], 1, UINT64_MAX, &e->epoch))
		return fail(AMBER_EDATA, "epoch: '%s' is not a number", f[4]);
	if (e->kind == BKP_FULL ? strcmp(f[5], "-") : !file_ok(f[5]))
		return fail(AMBER_EDATA, "parent: '%s' does not fit a %s backup", f[5], f[3]);
	strcpy(e->parent, f[5]);
	if (parse_u64(f[6], 0, UINT64_MAX, &e->bytes))
		return fail(AMBER_EDATA, "bytes: '%s' is not a number", f[6]);
	if (parse_time(f[7], &e->created))
		return fail(AMBER_EDATA, "created: '%s' is not YYYY-MM-DDTHH:MM:SSZ", f[7]);
	if (!hex_ok(f[8], 64))
		return fail(AMBER_EDATA, "digest: not 64 lower-case hex digits");
	strcpy(e->digest, f[8]);
	if (!file_ok(f[9]))
		return fail(AMBER_EDATA, "file: '%s' is not GROUP/NAME", f[9]);
	strcpy(e->file, f[9]);
	if (parse_fingerprint("key", n == 12 ? f[10] : "-", e->key))
		return -1;
	return parse_fingerprint("signer", n == 12 ? f[11] : "-", e->signer);
}

/*
 * Every incremental's parent is listed, and is a backup of the same volume
 * in the same group from an earlier set. Set numbers then fall along every
 * chain, so no chain is a cycle, and each ends in a full: what retention
 * and restore walk always ends.
 */
static int check_parents(const struct catalog *cat, const char *path)
{
	const struct cat_entry *e, *p;
	size_t i;

	for (i = 0; i < cat->n; i++) {
		e = &cat->e[i];
		if (e->kind == BKP_FULL)
			continue;
		p = catalog_find_file(cat, e->parent);
		if (!p)
			return fail(AMBER_EDATA, "%s: %s needs %s, which is not listed",
				    path, e->file, e->parent);
		if (strcmp(p->group, e->group) || strcmp(p->volume, e->volume) ||
		    p->set >= e->set)
			return fail(AMBER_EDATA, "%s: %s's parent %s is not an earlier "
				    "backup of %s/%s", path, e->file, e->parent, e->group,
				    e->volume);
	}
	return 0;
}

int catalog_load(struct catalog *cat)
{
	char path[PATH_MAX + 16], line[1100];
	struct cat_entry e;
	int nr = 0, fd;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cat->dir, CAT_NAME);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : fail_errno(AMBER_ESYS, "%s", path);
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return fail_errno(AMBER_ESYS, "%s", path);
	}
	while (fgets(line, sizeof(line), f)) {
		nr++;
		if (!strchr(line, '\n') && !feof(f)) {
			fclose(f);
			return fail(AMBER_EDATA, "%s:%d: a line is too long", path, nr);
		}
		line[strcspn(line, "\n")] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		if (catalog_parse_line(line, &e)) {
			fclose(f);
			return error_prefix("%s:%d: ", path, nr);
		}
		if (catalog_find_file(cat, e.file) || catalog_find(cat, e.group, e.set, e.volume)) {
			fclose(f);
			return fail(AMBER_EDATA, "%s:%d: %s is listed twice", path, nr, e.file);
		}
		if (catalog_add(cat, &e)) {
			fclose(f);
			return -1;
		}
	}
	if (ferror(f)) {
		fclose(f);
		return fail_errno(AMBER_ESYS, "%s", path);
	}
	fclose(f);
	return check_parents(cat, path);
}

int catalog_save(const struct catalog *cat)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32], line[1100];
	size_t i;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cat->dir, CAT_NAME);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	/* A fresh file: nothing left or planted at @tmp is written through. */
	if (unlink(tmp) && errno != ENOENT)
		return fail_errno(AMBER_ESYS, "unlink %s", tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", tmp);
	f = fdopen(fd, "w");
	if (!f) {
		fail_errno(AMBER_ESYS, "%s", tmp);
		close(fd);
		return -1;
	}
	fputs(CAT_HEADER, f);
	for (i = 0; i < cat->n; i++) {
		catalog_format(&cat->e[i], line, sizeof(line));
		fprintf(f, "%s\n", line);
	}
	if (fflush(f) || ferror(f) || fsync(fileno(f))) {
		fail_errno(AMBER_ESYS, "writing %s", tmp);
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f)) {
		unlink(tmp);
		return fail_errno(AMBER_ESYS, "writing %s", tmp);
	}
	if (rename(tmp, path)) {
		fail_errno(AMBER_ESYS, "rename %s", tmp);
		unlink(tmp);
		return -1;
	}
	return sync_dir(cat->dir);
}

uint64_t catalog_last_set(const struct catalog *cat, const char *group)
{
	uint64_t last = 0;
	size_t i;

	for (i = 0; i < cat->n; i++)
		if (!strcmp(cat->e[i].group, group))
			last = MAX(last, cat->e[i].set);
	return last;
}

const struct cat_entry *catalog_find(const struct catalog *cat, const char *group,
				     uint64_t set, const char *volume)
{
	size_t i;

	for (i = 0; i < cat->n; i++)
		if (cat->e[i].set == set && !strcmp(cat->e[i].group, group) &&
		    !strcmp(cat->e[i].volume, volume))
			return &cat->e[i];
	return NULL;
}

const struct cat_entry *catalog_find_file(const struct catalog *cat, const char *file)
{
	size_t i;

	for (i = 0; i < cat->n; i++)
		if (!strcmp(cat->e[i].file, file))
			return &cat->e[i];
	return NULL;
}

bool catalog_set_is_full(const struct catalog *cat, const char *group, uint64_t set)
{
	bool any = false;
	size_t i;

	for (i = 0; i < cat->n; i++) {
		if (cat->e[i].set != set || strcmp(cat->e[i].group, group))
			continue;
		if (cat->e[i].kind != BKP_FULL)
			return false;
		any = true;
	}
	return any;
}

/* The sets of @group, newest first, in @sets (allocated); returns the count. */
static size_t group_sets(const struct catalog *cat, const char *group, uint64_t **sets)
{
	size_t i, j, n = 0;
	uint64_t *s = malloc((cat->n + 1) * sizeof(*s)), t;

	*sets = s;
	if (!s)
		return 0;
	for (i = 0; i < cat->n; i++) {
		if (strcmp(cat->e[i].group, group))
			continue;
		for (j = 0; j < n && s[j] != cat->e[i].set; j++)
			;
		if (j == n)
			s[n++] = cat->e[i].set;
	}
	for (i = 1; i < n; i++)		/* insertion sort, descending */
		for (j = i; j > 0 && s[j - 1] < s[j]; j--) {
			t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	return n;
}

bool catalog_next_is_full(const struct catalog *cat, const char *group, uint64_t full_every)
{
	uint64_t *sets;
	size_t n, i;
	bool full = true;

	n = group_sets(cat, group, &sets);
	for (i = 0; i < n; i++)
		if (catalog_set_is_full(cat, group, sets[i])) {
			/* i sets since that full one, this one makes i + 2 */
			full = i + 2 > full_every;
			break;
		}
	free(sets);
	return full;
}

int catalog_chain(const struct catalog *cat, const struct cat_entry *e,
		  const struct cat_entry **out, size_t max)
{
	size_t n = 0, i;
	const struct cat_entry *t;

	for (; e; e = strcmp(e->parent, "-") ? catalog_find_file(cat, e->parent) : NULL) {
		if (n == max)
			return fail(AMBER_EDATA, "the chain of %s is longer than %zu", out[0]->file,
				    max);
		out[n++] = e;
		if (e->kind == BKP_INCREMENTAL && !catalog_find_file(cat, e->parent))
			return fail(AMBER_EDATA, "%s needs %s, which is not in the catalog",
				    e->file, e->parent);
	}
	for (i = 0; i < n / 2; i++) {
		t = out[i];
		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	return n;
}

size_t catalog_retention(const struct catalog *cat, const char *group, uint64_t keep_fulls,
			 bool *drop)
{
	uint64_t *sets, cutoff = 0, fulls = 0;
	size_t n, i, dropped = 0;
	const struct cat_entry *p;
	bool *keep;

	memset(drop, 0, cat->n * sizeof(*drop));
	if (!keep_fulls)
		return 0;
	n = group_sets(cat, group, &sets);
	for (i = 0; i < n && !cutoff; i++)
		if (catalog_set_is_full(cat, group, sets[i]) && ++fulls == keep_fulls)
			cutoff = sets[i];
	free(sets);
	if (!cutoff)
		return 0;
	keep = calloc(cat->n + 1, sizeof(*keep));
	if (!keep)
		return 0;		/* deleting nothing is always safe */
	for (i = 0; i < cat->n; i++)
		keep[i] = strcmp(cat->e[i].group, group) || cat->e[i].set >= cutoff;
	/* What a kept incremental needs stays, however old. */
	for (i = 0; i < cat->n; i++)
		for (p = keep[i] ? &cat->e[i] : NULL; p && strcmp(p->parent, "-");) {
			p = catalog_find_file(cat, p->parent);
			if (p)
				keep[p - cat->e] = true;
		}
	for (i = 0; i < cat->n; i++) {
		drop[i] = !keep[i];
		dropped += drop[i];
	}
	free(keep);
	return dropped;
}

void catalog_remove(struct catalog *cat, const bool *drop)
{
	size_t i, j = 0;

	for (i = 0; i < cat->n; i++)
		if (!drop[i])
			cat->e[j++] = cat->e[i];
	cat->n = j;
}
