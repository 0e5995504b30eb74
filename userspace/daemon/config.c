// SPDX-License-Identifier: GPL-2.0
/* amberd.conf: see config.h and amberd.conf(5). */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "codec.h"
#include "config.h"
#include "dmline.h"
#include "error.h"
#include "store.h"
#include "util.h"

#define CONF_MAX_BYTES	(1 << 20)
#define CONF_MAX_RETENTION	10000

enum section { SEC_NONE, SEC_DAEMON, SEC_VOLUME, SEC_GROUP, SEC_SCHEDULE };

/* A [schedule GROUP] section, matched with its group once all are read. */
struct pending_schedule {
	char group[CONF_NAME_MAX];
	uint64_t interval, full_every;
	bool has_interval, has_full_every;
	int line, full_every_line;
};

/* Group members by name, resolved once all volumes are read. */
struct pending_members {
	char names[AMBER_MAX_GROUP][CONF_NAME_MAX];
	unsigned int n;
	bool given;
	int line;
};

struct parser {
	const char *path;
	int line;
	struct config *c;
	enum section sec;
	unsigned int idx;		/* the current volume, group or schedule */
	char seen[16][24];		/* keys given in the current section */
	unsigned int nr_seen;
	bool daemon_seen, retention_given[CONF_MAX_GROUPS];
	int full_every_line[CONF_MAX_GROUPS];	/* given in [group], 0: not */
	struct pending_members members[CONF_MAX_GROUPS];
	struct pending_schedule sched[CONF_MAX_GROUPS];
	unsigned int nr_sched;
};

static int bad(const struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(const struct parser *p, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail(AMBER_EUSAGE, "%s:%d: %s", p->path, p->line, msg);
}

bool conf_name_ok(const char *name)
{
	const char *s;

	if (!*name || strlen(name) >= CONF_NAME_MAX || !(isalnum((unsigned char)*name) ||
							  *name == '_'))
		return false;
	for (s = name; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

int conf_parse_interval(const char *s, uint64_t *seconds)
{
	uint64_t n, unit = 1;
	char *end;

	if (!isdigit((unsigned char)*s))
		return fail(AMBER_EUSAGE, "'%s' is not an interval (e.g. 90s, 15m, 6h, 1d)", s);
	errno = 0;
	n = strtoull(s, &end, 10);
	if (!strcmp(end, "m"))
		unit = 60;
	else if (!strcmp(end, "h"))
		unit = 3600;
	else if (!strcmp(end, "d"))
		unit = 86400;
	else if (*end && strcmp(end, "s"))
		return fail(AMBER_EUSAGE, "'%s' is not an interval (e.g. 90s, 15m, 6h, 1d)", s);
	if (errno || n == 0 || n > 366 * 86400 / unit)
		return fail(AMBER_EUSAGE, "interval '%s' is out of range 1s..366d", s);
	*seconds = n * unit;
	return 0;
}

const struct conf_group *config_group(const struct config *c, const char *name)
{
	unsigned int i;

	for (i = 0; i < c->nr_grps; i++)
		if (!strcmp(c->grp[i].name, name))
			return &c->grp[i];
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* ---- values ---- */

static int value_path(const struct parser *p, const char *key, const char *v, char *out,
		      size_t len)
{
	if (v[0] != '/')
		return bad(p, "%s: '%s' is not an absolute path", key, v);
	if (strlen(v) >= len)
		return bad(p, "%s: the path is longer than %zu bytes", key, len - 1);
	strcpy(out, v);
	return 0;
}

static int value_number(const struct parser *p, const char *key, const char *v,
			uint64_t min, uint64_t max, uint64_t *out)
{
	if (parse_u64(v, min, max, out))
		return bad(p, "%s: %s", key, error_msg());
	return 0;
}

static int value_user(const struct parser *p, const char *v, struct conf_group *g)
{
	struct passwd *pw;

	if (!conf_name_ok(v))
		return bad(p, "trigger_user: '%s' is not a user name", v);
	errno = 0;
	pw = getpwnam(v);
	if (!pw)
		return bad(p, "trigger_user: no user '%s' on this system", v);
	strcpy(g->trigger_user, v);
	g->trigger_uid = pw->pw_uid;
	g->trigger_gid = pw->pw_gid;
	return 0;
}

static int value_members(const struct parser *p, char *v, struct pending_members *m)
{
	char *tok, *save = NULL;
	unsigned int i;

	m->given = true;
	m->line = p->line;
	for (tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		tok = trim(tok);
		if (!conf_name_ok(tok))
			return bad(p, "volumes: '%s' is not a volume name", tok);
		if (m->n == AMBER_MAX_GROUP)
			return bad(p, "volumes: more than %d volumes in one group",
				   AMBER_MAX_GROUP);
		for (i = 0; i < m->n; i++)
			if (!strcmp(m->names[i], tok))
				return bad(p, "volumes: %s is named twice", tok);
		strcpy(m->names[m->n++], tok);
	}
	if (!m->n)
		return bad(p, "volumes: no volume named");
	return 0;
}

/* ---- sections and keys ---- */

/* min_free: "5%" of backup_dir's file system, or a size ("10G"). */
static int value_min_free(struct parser *p, char *v)
{
	struct config *c = p->c;
	size_t len = strlen(v);

	c->min_free_percent = len && v[len - 1] == '%';
	if (c->min_free_percent) {
		v[len - 1] = 0;
		return value_number(p, "min_free", v, 0, 99, &c->min_free);
	}
	if (parse_size(v, &c->min_free))
		return bad(p, "min_free: %s (a size such as 10G, or a percentage such as 5%%)",
			   error_msg());
	return 0;
}

/* min_interval: "0" (none) or an interval ("90s", "15m"). */
static int value_min_interval(struct parser *p, const char *v, uint64_t *out)
{
	if (!strcmp(v, "0")) {
		*out = 0;
		return 0;
	}
	if (conf_parse_interval(v, out))
		return bad(p, "min_interval: %s", error_msg());
	return 0;
}

static int key_daemon(struct parser *p, const char *key, char *v)
{
	struct config *c = p->c;

	if (!strcmp(key, "socket")) {
		if (value_path(p, key, v, c->socket, sizeof(c->socket)))
			return -1;
		if (!strcmp(c->socket, "/") || c->socket[strlen(c->socket) - 1] == '/')
			return bad(p, "socket: '%s' is a directory, not a socket path", v);
		return 0;
	}
	if (!strcmp(key, "backup_dir"))
		return value_path(p, key, v, c->backup_dir, sizeof(c->backup_dir));
	if (!strcmp(key, "retention"))
		return value_number(p, key, v, 0, CONF_MAX_RETENTION, &c->retention);
	if (!strcmp(key, "level"))
		return value_number(p, key, v, 0, ZSTD_LEVEL_MAX, &c->level);
	if (!strcmp(key, "min_free"))
		return value_min_free(p, v);
	if (!strcmp(key, "log")) {
		if (strcmp(v, "stderr") && strcmp(v, "syslog"))
			return bad(p, "log: '%s' is not stderr or syslog", v);
		c->syslog = !strcmp(v, "syslog");
		return 0;
	}
	return bad(p, "unknown key '%s' in [daemon] (socket, backup_dir, retention, level,"
		   " min_free, log)", key);
}

static int key_volume(struct parser *p, const char *key, char *v)
{
	struct conf_volume *vol = &p->c->vol[p->idx];

	if (!strcmp(key, "origin"))
		return value_path(p, key, v, vol->origin, sizeof(vol->origin));
	if (!strcmp(key, "store"))
		return value_path(p, key, v, vol->store, sizeof(vol->store));
	if (!strcmp(key, "chunk")) {
		if (parse_size(v, &vol->chunk) || store_check_geometry(vol->chunk, 2))
			return bad(p, "chunk: %s", error_msg());
		vol->chunk_set = true;
		return 0;
	}
	if (!strcmp(key, "epochs"))
		return value_number(p, key, v, 2, AMBER_MAX_EPOCHS, &vol->epochs);
	if (!strcmp(key, "overflow")) {
		if (strcmp(v, "block") && strcmp(v, "invalidate"))
			return bad(p, "overflow: '%s' is not block or invalidate", v);
		strcpy(vol->overflow, v);
		return 0;
	}
	if (!strcmp(key, "block_timeout"))
		return value_number(p, key, v, 1, BLOCK_TIMEOUT_MAX_MS, &vol->block_timeout);
	return bad(p, "unknown key '%s' in [volume %s] (origin, store, chunk, epochs, overflow,"
		   " block_timeout)", key, vol->name);
}

static int key_group(struct parser *p, const char *key, char *v)
{
	struct conf_group *g = &p->c->grp[p->idx];

	if (!strcmp(key, "volumes"))
		return value_members(p, v, &p->members[p->idx]);
	if (!strcmp(key, "retention")) {
		p->retention_given[p->idx] = true;
		return value_number(p, key, v, 0, CONF_MAX_RETENTION, &g->retention);
	}
	if (!strcmp(key, "trigger_user"))
		return value_user(p, v, g);
	if (!strcmp(key, "flush")) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return bad(p, "flush: '%s' is not yes or no", v);
		g->flush = !strcmp(v, "yes");
		return 0;
	}
	if (!strcmp(key, "full_every")) {
		p->full_every_line[p->idx] = p->line;
		return value_number(p, key, v, 1, CONF_MAX_FULL_EVERY, &g->full_every);
	}
	if (!strcmp(key, "min_interval"))
		return value_min_interval(p, v, &g->min_interval);
	if (!strcmp(key, "encrypt_key"))
		return value_path(p, key, v, g->encrypt_key, sizeof(g->encrypt_key));
	if (!strcmp(key, "passphrase_file"))
		return value_path(p, key, v, g->passphrase_file, sizeof(g->passphrase_file));
	if (!strcmp(key, "sign_key"))
		return value_path(p, key, v, g->sign_key, sizeof(g->sign_key));
	return bad(p, "unknown key '%s' in [group %s] (volumes, retention, full_every,"
		   " flush, trigger_user, min_interval, encrypt_key, passphrase_file, sign_key)",
		   key, g->name);
}

static int key_schedule(struct parser *p, const char *key, char *v)
{
	struct pending_schedule *s = &p->sched[p->idx];

	if (!strcmp(key, "interval")) {
		s->has_interval = true;
		if (conf_parse_interval(v, &s->interval))
			return bad(p, "interval: %s", error_msg());
		return 0;
	}
	if (!strcmp(key, "full_every")) {
		s->has_full_every = true;
		s->full_every_line = p->line;
		return value_number(p, key, v, 1, CONF_MAX_FULL_EVERY, &s->full_every);
	}
	return bad(p, "unknown key '%s' in [schedule %s] (interval, full_every)", key, s->group);
}

static int new_section(struct parser *p, char *hdr)
{
	char *kind = trim(hdr), *name = kind + strcspn(kind, " \t");
	struct config *c = p->c;
	unsigned int i;

	if (*name)
		*name++ = 0;
	name = trim(name);
	p->nr_seen = 0;
	if (!strcmp(kind, "daemon")) {
		if (*name)
			return bad(p, "[daemon] takes no name");
		if (p->daemon_seen)
			return bad(p, "a second [daemon] section");
		p->daemon_seen = true;
		p->sec = SEC_DAEMON;
		return 0;
	}
	if (strcmp(kind, "volume") && strcmp(kind, "group") && strcmp(kind, "schedule"))
		return bad(p, "unknown section [%s] (daemon, volume NAME, group NAME,"
			   " schedule GROUP)", kind);
	if (!*name)
		return bad(p, "[%s] needs a name: [%s NAME]", kind, kind);
	if (!conf_name_ok(name))
		return bad(p, "'%s' is not a usable name (letters, digits, '_', '.', '-';"
			   " at most %d characters)", name, CONF_NAME_MAX - 1);
	if (!strcmp(kind, "volume")) {
		for (i = 0; i < c->nr_vols; i++)
			if (!strcmp(c->vol[i].name, name))
				return bad(p, "volume %s is defined twice (line %d)", name,
					   c->vol[i].line);
		if (c->nr_vols == CONF_MAX_VOLUMES)
			return bad(p, "more than %d volumes", CONF_MAX_VOLUMES);
		p->sec = SEC_VOLUME;
		p->idx = c->nr_vols++;
		strcpy(c->vol[p->idx].name, name);
		c->vol[p->idx].line = p->line;
		c->vol[p->idx].chunk = STORE_DEFAULT_CHUNK;
		c->vol[p->idx].epochs = STORE_DEFAULT_EPOCHS;
		return 0;
	}
	if (!strcmp(kind, "group")) {
		for (i = 0; i < c->nr_grps; i++)
			if (!strcmp(c->grp[i].name, name))
				return bad(p, "group %s is defined twice (line %d)", name,
					   c->grp[i].line);
		if (c->nr_grps == CONF_MAX_GROUPS)
			return bad(p, "more than %d groups", CONF_MAX_GROUPS);
		p->sec = SEC_GROUP;
		p->idx = c->nr_grps++;
		strcpy(c->grp[p->idx].name, name);
		c->grp[p->idx].line = p->line;
		c->grp[p->idx].full_every = CONF_DEFAULT_FULL_EVERY;
		c->grp[p->idx].min_interval = CONF_DEFAULT_MIN_INTERVAL;
		c->grp[p->idx].flush = true;
		return 0;
	}
	for (i = 0; i < p->nr_sched; i++)
		if (!strcmp(p->sched[i].group, name))
			return bad(p, "group %s has a second [schedule] (line %d)", name,
				   p->sched[i].line);
	if (p->nr_sched == CONF_MAX_GROUPS)
		return bad(p, "more than %d schedules", CONF_MAX_GROUPS);
	p->sec = SEC_SCHEDULE;
	p->idx = p->nr_sched++;
	strcpy(p->sched[p->idx].group, name);
	p->sched[p->idx].line = p->line;
	return 0;
}

static int key_value(struct parser *p, char *line)
{
	char *eq = strchr(line, '='), *key, *value;
	unsigned int i;

	if (!eq)
		return bad(p, "expected 'key = value' or '[section]', got '%s'", line);
	*eq = 0;
	key = trim(line);
	value = trim(eq + 1);
	if (!*key)
		return bad(p, "a value without a key");
	if (p->sec == SEC_NONE)
		return bad(p, "'%s' before any [section]", key);
	if (!*value)
		return bad(p, "%s: empty value", key);
	for (i = 0; i < p->nr_seen; i++)
		if (!strcmp(p->seen[i], key))
			return bad(p, "%s is given twice in this section", key);
	if (p->nr_seen < ARRAY_SIZE(p->seen) && strlen(key) < sizeof(p->seen[0]))
		strcpy(p->seen[p->nr_seen++], key);
	switch (p->sec) {
	case SEC_DAEMON:
		return key_daemon(p, key, value);
	case SEC_VOLUME:
		return key_volume(p, key, value);
	case SEC_GROUP:
		return key_group(p, key, value);
	default:
		return key_schedule(p, key, value);
	}
}

/* ---- after the last line: what must be there and what refers to what ---- */

static int at_line(struct parser *p, int line)
{
	p->line = line;
	return 0;
}

static int check_volumes(struct parser *p)
{
	struct config *c = p->c;
	unsigned int i, j;

	for (i = 0; i < c->nr_vols; i++) {
		struct conf_volume *v = &c->vol[i];

		at_line(p, v->line);
		if (!*v->origin || !*v->store)
			return bad(p, "[volume %s] needs origin = and store =", v->name);
		if (!strcmp(v->origin, v->store))
			return bad(p, "[volume %s]: origin and store are the same device",
				   v->name);
		for (j = 0; j < i; j++) {
			const struct conf_volume *o = &c->vol[j];

			if (!strcmp(o->origin, v->origin) || !strcmp(o->store, v->store) ||
			    !strcmp(o->origin, v->store) || !strcmp(o->store, v->origin))
				return bad(p, "[volume %s] shares a device with [volume %s]",
					   v->name, o->name);
		}
	}
	return 0;
}

static int find_volume(const struct config *c, const char *name)
{
	unsigned int i;

	for (i = 0; i < c->nr_vols; i++)
		if (!strcmp(c->vol[i].name, name))
			return i;
	return -1;
}

static int check_groups(struct parser *p)
{
	struct config *c = p->c;
	unsigned int i, j;
	int v;

	for (i = 0; i < c->nr_grps; i++) {
		struct conf_group *g = &c->grp[i];
		const struct pending_members *m = &p->members[i];

		at_line(p, g->line);
		if (!m->given)
			return bad(p, "[group %s] needs volumes = NAME[, NAME...]", g->name);
		at_line(p, m->line);
		for (j = 0; j < m->n; j++) {
			v = find_volume(c, m->names[j]);
			if (v < 0)
				return bad(p, "[group %s]: no [volume %s]", g->name, m->names[j]);
			g->vols[g->nr_vols++] = v;
		}
		if (!p->retention_given[i])
			g->retention = c->retention;
	}
	for (i = 0; i < p->nr_sched; i++) {
		const struct pending_schedule *s = &p->sched[i];
		struct conf_group *g = (struct conf_group *)config_group(c, s->group);

		at_line(p, s->line);
		if (!g)
			return bad(p, "[schedule %s]: no [group %s]", s->group, s->group);
		if (!s->has_interval)
			return bad(p, "[schedule %s] needs interval = (e.g. 6h)", s->group);
		g->scheduled = true;
		g->interval = s->interval;
		if (!s->has_full_every)
			continue;
		if (p->full_every_line[g - c->grp]) {
			at_line(p, s->full_every_line);
			return bad(p, "full_every is given in [group %s] too (line %d): give it"
				   " once", g->name, p->full_every_line[g - c->grp]);
		}
		g->full_every = s->full_every;
	}
	return 0;
}

static int check_daemon(struct parser *p)
{
	struct config *c = p->c;

	at_line(p, 0);
	if (!*c->backup_dir)
		return fail(AMBER_EUSAGE, "%s: [daemon] needs backup_dir = DIRECTORY", p->path);
	if (!c->nr_grps)
		return fail(AMBER_EUSAGE, "%s: no [group NAME]: nothing to back up", p->path);
	return 0;
}

/* amberd asks no one for a passphrase: a key file comes with its passphrase file. */
static int check_keys(struct parser *p)
{
	const struct conf_group *g;
	unsigned int i;

	for (i = 0; i < p->c->nr_grps; i++) {
		g = &p->c->grp[i];
		if (!*g->encrypt_key != !*g->passphrase_file)
			return fail(AMBER_EUSAGE, "%s:%d: [group %s]: encrypt_key and"
				    " passphrase_file go together", p->path, g->line, g->name);
	}
	return 0;
}

/* A group's trigger socket lives next to the control socket. */
static int check_trigger_paths(struct parser *p)
{
	const struct config *c = p->c;
	const char *slash = strrchr(c->socket, '/');
	unsigned int i;

	for (i = 0; i < c->nr_grps; i++)
		if (*c->grp[i].trigger_user &&
		    (size_t)(slash - c->socket) + strlen(c->grp[i].name) +
		    sizeof("/.trigger") > CONF_SOCKET_MAX)
			return fail(AMBER_EUSAGE, "%s: [group %s]: the trigger socket's path"
				    " would be too long (socket = is in a deep directory)",
				    p->path, c->grp[i].name);
	return 0;
}

int config_parse(const char *path, const char *text, struct config *c)
{
	struct parser *p = calloc(1, sizeof(*p));
	char *copy = strdup(text), *line, *next, *s;
	int ret = -1;

	if (!p || !copy) {
		fail(AMBER_ESYS, "out of memory");
		goto out;
	}
	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	strcpy(c->socket, CONF_DEFAULT_SOCKET);
	c->level = ZSTD_LEVEL_DEFAULT;
	c->min_free = CONF_DEFAULT_MIN_FREE_PERCENT;
	c->min_free_percent = true;
	p->path = path;
	p->c = c;
	for (line = copy; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		p->line++;
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');

			if (!close || *trim(close + 1)) {
				bad(p, "a section header is '[kind NAME]'");
				goto out;
			}
			*close = 0;
			if (new_section(p, s + 1))
				goto out;
		} else if (key_value(p, s)) {
			goto out;
		}
	}
	if (check_daemon(p) || check_volumes(p) || check_groups(p))
		goto out;
	if (check_trigger_paths(p) || check_keys(p))
		goto out;
	ret = 0;
out:
	free(copy);
	free(p);
	return ret;
}

int config_load(const char *path, struct config *c)
{
	char *text;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_EUSAGE, "%s", path);
	text = malloc(CONF_MAX_BYTES + 1);
	if (!text) {
		close(fd);
		return fail(AMBER_ESYS, "out of memory");
	}
	n = read_upto(fd, text, CONF_MAX_BYTES + 1);
	close(fd);
	if (n < 0 || n > CONF_MAX_BYTES) {
		free(text);
		return n < 0 ? error_prefix("%s: ", path) :
			fail(AMBER_EUSAGE, "%s: larger than %d bytes", path, CONF_MAX_BYTES);
	}
	text[n] = 0;
	if (memchr(text, 0, n)) {
		free(text);
		return fail(AMBER_EUSAGE, "%s: not a text file (a NUL byte)", path);
	}
	ret = config_parse(path, text, c);
	free(text);
	return ret;
}
