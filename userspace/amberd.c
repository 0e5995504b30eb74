// SPDX-License-Identifier: GPL-2.0
/*
 * amberd: owns amber volumes and groups, takes their backup sets from one
 * group barrier each (on request or on a schedule), keeps a catalog of them
 * and applies retention. See amberd(8) and amberd.conf(5).
 *
 * One process with a poll() loop: the root-only control socket, the trigger
 * sockets of groups that have a trigger_user, the clients, the pipe of the
 * running backup job, signals through a signalfd. A backup set runs in a
 * child process (daemon/job.c), one at a time; requests queue behind it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "cli.h"
#include "config.h"
#include "error.h"
#include "job.h"
#include "kernel.h"
#include "request.h"
#include "subcommands.h"
#include "util.h"

#define MAX_CLIENTS	64
#define MAX_JOBS	16
#define SEND_TIMEOUT_S	10
#define SEND_LINE_MAX	16384
#define TRIGGER_SUFFIX	".trigger"

static const char usage[] =
"Usage: amberd [--config FILE] [--check]\n"
"\n"
"The amber daemon: creates the amber volumes of its configuration when they\n"
"are missing, takes backup sets of its groups (one atomic barrier over every\n"
"volume of a group) on a schedule and on request, keeps a catalog and applies\n"
"retention. Requests come on a unix socket, root only ('amber daemon').\n"
"Runs in the foreground and logs one line per event to standard error (or\n"
"syslog). amberd(8), amberd.conf(5).\n"
"\n"
"  --config FILE   the configuration (" CONF_DEFAULT_PATH ")\n"
"  --check         check the configuration, print a summary and exit\n";

enum { OPT_CONFIG, OPT_CHECK };

static const struct cli_option options[] = {
	[OPT_CONFIG]	= { "config", true },
	[OPT_CHECK]	= { "check", false },
	{ NULL, false },
};

struct client {
	int fd;				/* -1: a free slot */
	int grp;			/* trigger socket's group, -1: control socket */
	uid_t uid;
	pid_t pid;
	char in[REQ_LINE_MAX + 1];
	size_t len;
	unsigned int wait;		/* the job this client waits for, 0: none */
};

struct job {
	unsigned int id;		/* 0: a free slot */
	int grp;
	enum req_kind kind;
	char why[64];
	pid_t pid;			/* 0 while queued */
	int fd;				/* the child's reports */
	char buf[4096];
	size_t len;
	struct job_plan plan;
	uint64_t epochs[AMBER_MAX_GROUP];
	struct cat_entry done[AMBER_MAX_GROUP];
	unsigned int nr_done;
	char failure[700];
	time_t started;
};

static struct config conf;
static struct catalog cat;
static int ctl_fd = -1, sig_fd = -1;
static int trig_fd[CONF_MAX_GROUPS];
static char trig_path[CONF_MAX_GROUPS][CONF_SOCKET_MAX];
static struct client clients[MAX_CLIENTS];
static struct job jobs[MAX_JOBS];
static unsigned int last_job_id;
static uint64_t next_set[CONF_MAX_GROUPS];
static time_t next_due[CONF_MAX_GROUPS];
static time_t last_trigger[CONF_MAX_GROUPS];	/* monotonic_seconds() of the last set asked
						 * on its trigger socket */
static time_t started_at;
static bool stopping;

/* ---- logging: one line per event ---- */

static void log_at(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_at(int prio, const char *fmt, ...)
{
	char msg[1200], when[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (conf.syslog)
		syslog(prio, "%s", msg);
	else if (getenv("JOURNAL_STREAM"))	/* the journal stamps lines itself */
		fprintf(stderr, "<%d>%s\n", prio, msg);
	else
		fprintf(stderr, "%s amberd[%d]: %s%s\n", format_time(time(NULL), when, sizeof(when)),
			getpid(), prio <= LOG_ERR ? "error: " : prio == LOG_WARNING ?
			"warning: " : "", msg);
}

#define log_info(...)	log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...)	log_at(LOG_WARNING, __VA_ARGS__)
#define log_err(...)	log_at(LOG_ERR, __VA_ARGS__)

/* ---- clients ---- */

static void send_line(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void close_client(struct client *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->wait = 0;
}

/* A line to a client; a client that does not read within SEND_TIMEOUT_S is
 * dropped. */
static void send_line(struct client *c, const char *fmt, ...)
{
	char line[SEND_LINE_MAX];
	va_list ap;
	size_t len;

	if (c->fd < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	len = strlen(line);
	line[len++] = '\n';
	if (send(c->fd, line, len, MSG_NOSIGNAL) != (ssize_t)len)
		close_client(c);
}

static void reply_error(struct client *c, const char *msg)
{
	send_line(c, "error %s", msg);
}

/* Every client waiting for @job (the if/else keeps a following else safe). */
#define for_each_waiter(c, job) \
	for ((c) = clients; (c) < clients + MAX_CLIENTS; (c)++) \
		if ((c)->fd < 0 || (c)->wait != (job)->id) {} else

/* ---- jobs ---- */

static const struct conf_group *group_of(const struct job *j)
{
	return &conf.grp[j->grp];
}

static struct job *running_job(void)
{
	unsigned int i;

	for (i = 0; i < MAX_JOBS; i++)
		if (jobs[i].id && jobs[i].pid)
			return &jobs[i];
	return NULL;
}

static bool group_has_job(int grp)
{
	unsigned int i;

	for (i = 0; i < MAX_JOBS; i++)
		if (jobs[i].id && jobs[i].grp == grp)
			return true;
	return false;
}

static bool groups_share_a_volume(const struct conf_group *a, const struct conf_group *b)
{
	unsigned int i, j;

	for (i = 0; i < a->nr_vols; i++)
		for (j = 0; j < b->nr_vols; j++)
			if (a->vols[i] == b->vols[j])
				return true;
	return false;
}

static struct job *new_job(int grp, enum req_kind kind, const char *why)
{
	unsigned int i;

	for (i = 0; i < MAX_JOBS; i++)
		if (!jobs[i].id)
			break;
	if (i == MAX_JOBS)
		return NULL;
	memset(&jobs[i], 0, sizeof(jobs[i]));
	jobs[i].id = ++last_job_id;
	jobs[i].grp = grp;
	jobs[i].kind = kind;
	jobs[i].fd = -1;
	snprintf(jobs[i].why, sizeof(jobs[i].why), "%s", why);
	return &jobs[i];
}

/* What the plan says for each volume: full, or incremental from its
 * backup in the group's newest set. */
static int plan_job(struct job *j)
{
	const struct conf_group *g = group_of(j);
	uint64_t last = catalog_last_set(&cat, g->name);
	const struct cat_entry *e;
	bool full;
	unsigned int i;

	if (j->kind == KIND_INCREMENTAL && !last)
		return fail(AMBER_ESYS, "group %s has no backup to be incremental from:"
			    " take a full one", g->name);
	if (job_check_free_space(conf.backup_dir, conf.min_free, conf.min_free_percent))
		return -1;
	full = j->kind == KIND_FULL ||
	       (j->kind == KIND_AUTO && catalog_next_is_full(&cat, g->name, g->full_every));
	memset(&j->plan, 0, sizeof(j->plan));
	snprintf(j->plan.dir, sizeof(j->plan.dir), "%s", conf.backup_dir);
	strcpy(j->plan.group, g->name);
	j->plan.set = next_set[j->grp]++;
	j->plan.level = conf.level;
	j->plan.flush = g->flush;
	j->plan.nr = g->nr_vols;
	for (i = 0; i < g->nr_vols; i++) {
		strcpy(j->plan.v[i].name, conf.vol[g->vols[i]].name);
		e = full ? NULL : catalog_find(&cat, g->name, last, j->plan.v[i].name);
		if (e)
			strcpy(j->plan.v[i].parent, e->file);
	}
	return 0;
}

static void close_daemon_fds(void)
{
	unsigned int i;

	close(ctl_fd);
	close(sig_fd);
	for (i = 0; i < conf.nr_grps; i++)
		if (trig_fd[i] >= 0)
			close(trig_fd[i]);
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			close(clients[i].fd);
	for (i = 0; i < MAX_JOBS; i++)
		if (jobs[i].fd >= 0)
			close(jobs[i].fd);
}

static void finish_job(struct job *j, bool ok);

static void start_job(struct job *j)
{
	const struct conf_group *g = group_of(j);
	int p[2], devnull;
	struct client *c;
	pid_t daemon_pid;

	if (plan_job(j)) {
		snprintf(j->failure, sizeof(j->failure), "%s", error_msg());
		finish_job(j, false);
		return;
	}
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(j->failure, sizeof(j->failure), "pipe: %s", strerror(errno));
		finish_job(j, false);
		return;
	}
	daemon_pid = getpid();
	j->pid = fork();
	if (j->pid < 0) {
		j->pid = 0;
		snprintf(j->failure, sizeof(j->failure), "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		finish_job(j, false);
		return;
	}
	if (!j->pid) {
		/* amberd killed outright still ends the set cleanly. */
		stop_with_parent(daemon_pid);
		setpgid(0, 0);
		close(p[0]);
		close_daemon_fds();
		devnull = open("/dev/null", O_RDWR);
		dup2(devnull, STDIN_FILENO);
		job_child(&j->plan, p[1]);
	}
	setpgid(j->pid, j->pid);
	close(p[1]);
	j->fd = p[0];
	j->started = time(NULL);
	log_info("group %s: set %" PRIu64 " started (job %u, %s, %s)", g->name, j->plan.set,
		 j->id, req_kind_name(j->kind), j->why);
	for_each_waiter(c, j)
		send_line(c, "started group %s set %" PRIu64 " job %u", g->name, j->plan.set,
			  j->id);
}

/* Start the oldest queued job when none runs (the next one if it cannot
 * start). */
static void run_queue(void)
{
	struct job *next;
	unsigned int i;

	while (!stopping && !running_job()) {
		next = NULL;
		for (i = 0; i < MAX_JOBS; i++)
			if (jobs[i].id && !jobs[i].pid && (!next || jobs[i].id < next->id))
				next = &jobs[i];
		if (!next)
			return;
		start_job(next);
	}
}

static void job_barrier(struct job *j, char *args)
{
	const struct conf_group *g = group_of(j);
	char line[AMBER_MAX_GROUP * (CONF_NAME_MAX + 24)], *tok, *save = NULL;
	size_t used = 0;
	unsigned int i = 0;
	struct client *c;

	for (tok = strtok_r(args, " ", &save); tok && i < j->plan.nr;
	     tok = strtok_r(NULL, " ", &save), i++) {
		j->epochs[i] = strtoull(tok, NULL, 10);
		used += snprintf(line + used, sizeof(line) - used, " %s=%" PRIu64,
				 j->plan.v[i].name, j->epochs[i]);
	}
	log_info("group %s: set %" PRIu64 ": one barrier over %u volume%s, epochs%s", g->name,
		 j->plan.set, j->plan.nr, j->plan.nr > 1 ? "s" : "", line);
	for_each_waiter(c, j)
		send_line(c, "barrier group %s set %" PRIu64 "%s", g->name, j->plan.set, line);
}

/* "done VOLUME KIND EPOCH BYTES DIGEST SECONDS" */
static void job_done(struct job *j, const char *args)
{
	const struct conf_group *g = group_of(j);
	char vol[CONF_NAME_MAX], kind[16], digest[65], size[32], line[1100];
	struct cat_entry *e, check;
	unsigned int i;
	struct client *c;
	double seconds;

	if (j->nr_done == j->plan.nr) {
		log_err("group %s: job %u: a report too many: %s", g->name, j->id, args);
		return;
	}
	e = &j->done[j->nr_done];
	if (sscanf(args, "%63s %15s %" SCNu64 " %" SCNu64 " %64s %lf", vol, kind, &e->epoch,
		   &e->bytes, digest, &seconds) != 6) {
		log_err("group %s: job %u: a garbled report: %s", g->name, j->id, args);
		return;
	}
	for (i = 0; i < j->plan.nr && strcmp(j->plan.v[i].name, vol); i++)
		;
	if (i == j->plan.nr || catalog_find(&cat, g->name, j->plan.set, vol)) {
		log_err("group %s: job %u: a report about volume %s", g->name, j->id, vol);
		return;
	}
	e->set = j->plan.set;
	strcpy(e->group, g->name);
	strcpy(e->volume, vol);
	e->kind = strcmp(kind, "full") ? BKP_INCREMENTAL : BKP_FULL;
	strcpy(e->parent, e->kind == BKP_FULL ? "-" : j->plan.v[i].parent);
	e->created = time(NULL);
	strcpy(e->digest, digest);
	job_file_name(g->name, j->plan.set, vol, e->kind == BKP_FULL, e->file, sizeof(e->file));
	/* What goes into the catalog must read back from it. */
	catalog_format(e, line, sizeof(line));
	if (catalog_parse_line(line, &check)) {
		log_err("group %s: job %u: a report that makes no catalog line (%s): %s", g->name,
			j->id, error_msg(), args);
		return;
	}
	j->nr_done++;
	log_info("group %s: set %" PRIu64 ": %s: %s backup of epoch %" PRIu64 ", %s in %.1f s,"
		 " %s, digest %.16s", g->name, j->plan.set, vol, kind, e->epoch,
		 format_size(e->bytes, size, sizeof(size)), seconds, e->file, digest);
	for_each_waiter(c, j)
		send_line(c, "backup %s %s epoch %" PRIu64 " bytes %" PRIu64 " digest %s file %s/%s",
			  vol, kind, e->epoch, e->bytes, digest, conf.backup_dir, e->file);
}

static void job_report(struct job *j, char *line)
{
	const struct conf_group *g = group_of(j);
	struct client *c;

	if (!strncmp(line, "barrier ", 8)) {
		job_barrier(j, line + 8);
	} else if (!strncmp(line, "done ", 5)) {
		job_done(j, line + 5);
	} else if (!strncmp(line, "info ", 5)) {
		log_info("group %s: set %" PRIu64 ": %s", g->name, j->plan.set, line + 5);
		for_each_waiter(c, j)
			send_line(c, "%s", line + 5);
	} else if (!strncmp(line, "note ", 5)) {
		log_warn("group %s: set %" PRIu64 ": %s", g->name, j->plan.set, line + 5);
		for_each_waiter(c, j)
			send_line(c, "note %s", line + 5);
	} else if (!strncmp(line, "fail ", 5)) {
		log_err("group %s: set %" PRIu64 ": %s", g->name, j->plan.set, line + 5);
		if (!j->failure[0])
			snprintf(j->failure, sizeof(j->failure), "%s", line + 5);
	} else {
		log_err("group %s: job %u: a garbled report: %s", g->name, j->id, line);
	}
}

/*
 * The set's backups into the catalog, what retention no longer keeps out of
 * it (@removed: the files to delete once it is saved). When the catalog
 * cannot be saved, the one in memory stays as it was on disk.
 */
static int add_to_catalog(struct job *j, char (*removed)[CAT_FILE_MAX], size_t *nr_removed)
{
	const struct conf_group *g = group_of(j);
	struct cat_entry *saved = NULL;
	size_t before = cat.n, i;
	bool *drop = NULL;

	*nr_removed = 0;
	if (before) {
		saved = malloc(before * sizeof(*saved));
		if (!saved)
			return fail(AMBER_ESYS, "out of memory");
		memcpy(saved, cat.e, before * sizeof(*saved));
	}
	for (i = 0; i < j->nr_done; i++)
		if (catalog_add(&cat, &j->done[i]))
			goto undo;
	drop = calloc(cat.n + 1, sizeof(*drop));
	if (!drop) {
		fail(AMBER_ESYS, "out of memory");
		goto undo;
	}
	if (catalog_retention(&cat, g->name, g->retention, drop))
		for (i = 0; i < cat.n; i++)
			if (drop[i])
				strcpy(removed[(*nr_removed)++], cat.e[i].file);
	catalog_remove(&cat, drop);
	if (catalog_save(&cat)) {
		error_prefix("the catalog: ");
		goto undo;
	}
	free(drop);
	free(saved);
	return 0;
undo:
	if (before)
		memcpy(cat.e, saved, before * sizeof(*saved));
	cat.n = before;
	*nr_removed = 0;
	free(drop);
	free(saved);
	return -1;
}

static void remove_backups(const char (*files)[CAT_FILE_MAX], size_t n, const char *group)
{
	char path[PATH_MAX + CAT_FILE_MAX];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", conf.backup_dir, files[i]);
		if (unlink(path) && errno != ENOENT)
			log_err("group %s: retention: cannot remove %s: %s", group, path,
				strerror(errno));
		else
			log_info("group %s: retention: removed %s", group, files[i]);
	}
}

static const char *set_kind(const struct job *j)
{
	unsigned int i, full = 0;

	for (i = 0; i < j->nr_done; i++)
		full += j->done[i].kind == BKP_FULL;
	return full == j->nr_done ? "full" : full ? "mixed" : "incremental";
}

static void finish_job(struct job *j, bool ok)
{
	const struct conf_group *g = group_of(j);
	char (*removed)[CAT_FILE_MAX] = NULL;
	size_t nr_removed = 0;
	struct client *c;

	if (ok && j->nr_done != j->plan.nr) {
		ok = false;
		snprintf(j->failure, sizeof(j->failure), "%u of %u volumes reported",
			 j->nr_done, j->plan.nr);
	}
	if (ok) {
		removed = calloc(cat.n + j->nr_done + 1, sizeof(*removed));
		if (!removed || add_to_catalog(j, removed, &nr_removed)) {
			snprintf(j->failure, sizeof(j->failure), "%.500s (the set's files are in"
				 " %.150s, not catalogued)", removed ? error_msg() : "out of memory",
				 conf.backup_dir);
			ok = false;
		}
	}
	if (ok) {
		log_info("group %s: set %" PRIu64 " done: %s, %u volume%s, in %lld s", g->name,
			 j->plan.set, set_kind(j), j->nr_done, j->nr_done > 1 ? "s" : "",
			 (long long)(time(NULL) - j->started));
		for_each_waiter(c, j) {
			send_line(c, "ok group %s set %" PRIu64 " %s", g->name, j->plan.set,
				  set_kind(j));
			c->wait = 0;
		}
		remove_backups((const char (*)[CAT_FILE_MAX])removed, nr_removed, g->name);
	} else if (!j->pid) {		/* it never started */
		log_err("group %s: no backup set: %s", g->name, j->failure);
		for_each_waiter(c, j) {
			send_line(c, "error %s", j->failure);
			c->wait = 0;
		}
	} else {
		if (!j->failure[0])
			snprintf(j->failure, sizeof(j->failure), "the backup job failed");
		log_err("group %s: set %" PRIu64 " failed: %s", g->name, j->plan.set, j->failure);
		for_each_waiter(c, j) {
			send_line(c, "error group %s set %" PRIu64 " failed: %s", g->name,
				  j->plan.set, j->failure);
			c->wait = 0;
		}
	}
	free(removed);
	if (g->scheduled)
		next_due[j->grp] = time(NULL) + g->interval;
	if (j->fd >= 0)
		close(j->fd);
	memset(j, 0, sizeof(*j));
	j->fd = -1;
}

static void job_input(struct job *j)
{
	ssize_t n = read(j->fd, j->buf + j->len, sizeof(j->buf) - 1 - j->len);
	int status = -1;
	char *nl;

	if (n < 0 && errno == EINTR)
		return;
	if (n > 0) {
		j->len += n;
		while ((nl = memchr(j->buf, '\n', j->len))) {
			*nl = 0;
			job_report(j, j->buf);
			j->len -= nl + 1 - j->buf;
			memmove(j->buf, nl + 1, j->len);
		}
		if (j->len == sizeof(j->buf) - 1)
			j->len = 0;	/* no line is that long: drop it */
		return;
	}
	/* The child closed its end: it is exiting. */
	while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
		;
	finish_job(j, WIFEXITED(status) && !WEXITSTATUS(status));
	run_queue();
}

/* ---- requests ---- */

static void req_status(struct client *c)
{
	char when[32], last[64], next[48];
	struct amber_status st;
	unsigned int i, k;
	uint64_t set;

	send_line(c, "daemon pid %d since %s config %s backup_dir %s", getpid(),
		  format_time(started_at, when, sizeof(when)), conf.path, conf.backup_dir);
	for (i = 0; i < conf.nr_vols; i++) {
		if (volume_status(conf.vol[i].name, &st)) {
			send_line(c, "volume %s missing (%s)", conf.vol[i].name, error_msg());
			continue;
		}
		send_line(c, "volume %s state %s epoch %" PRIu64 " store %" PRIu64 "/%" PRIu64
			  " cbt %s reason %s", conf.vol[i].name, vol_state_name(st.state),
			  st.epoch, st.used, st.total, cbt_name(st.cbt), reason_name(st.reason));
	}
	for (i = 0; i < conf.nr_grps; i++) {
		const struct conf_group *g = &conf.grp[i];
		char vols[AMBER_MAX_GROUP * CONF_NAME_MAX] = "";

		for (k = 0; k < g->nr_vols; k++)
			snprintf(vols + strlen(vols), sizeof(vols) - strlen(vols), "%s%s",
				 k ? "," : "", conf.vol[g->vols[k]].name);
		set = catalog_last_set(&cat, g->name);
		if (set)
			snprintf(last, sizeof(last), "%" PRIu64 " %s", set,
				 catalog_set_is_full(&cat, g->name, set) ? "full" : "incremental");
		else
			strcpy(last, "- -");
		if (g->scheduled)
			format_time(next_due[i], next, sizeof(next));
		else
			strcpy(next, "-");
		send_line(c, "group %s volumes %s last_set %s interval %" PRIu64 " full_every %"
			  PRIu64 " next %s retention %" PRIu64 " trigger_user %s", g->name, vols,
			  last, g->scheduled ? g->interval : 0, g->full_every, next, g->retention,
			  *g->trigger_user ? g->trigger_user : "-");
	}
	for (i = 0; i < MAX_JOBS; i++)
		if (jobs[i].id)
			send_line(c, "job %u group %s %s %s (%s)", jobs[i].id,
				  conf.grp[jobs[i].grp].name, jobs[i].pid ? "running" : "queued",
				  req_kind_name(jobs[i].kind), jobs[i].why);
	send_line(c, "ok");
}

static void req_list(struct client *c, const char *group)
{
	char line[1100];
	size_t i, n = 0;

	for (i = 0; i < cat.n; i++) {
		if (*group && strcmp(cat.e[i].group, group))
			continue;
		catalog_format(&cat.e[i], line, sizeof(line));
		send_line(c, "backup %s", line);
		n++;
	}
	send_line(c, "ok %zu backup%s", n, n == 1 ? "" : "s");
}

static void req_chain(struct client *c, const struct conf_group *g, uint64_t set)
{
	const struct cat_entry *chain[1024];
	char line[SEND_LINE_MAX - 64];
	unsigned int found = 0;
	size_t i, used;
	int n, k;

	if (!set)
		set = catalog_last_set(&cat, g->name);
	if (!set) {
		send_line(c, "error group %s has no backups", g->name);
		return;
	}
	for (i = 0; i < cat.n; i++) {
		if (cat.e[i].set != set || strcmp(cat.e[i].group, g->name))
			continue;
		n = catalog_chain(&cat, &cat.e[i], chain, ARRAY_SIZE(chain));
		if (n < 0) {
			reply_error(c, error_msg());
			return;
		}
		used = snprintf(line, sizeof(line), "chain %s", cat.e[i].volume);
		for (k = 0; k < n && used < sizeof(line); k++)
			used += snprintf(line + used, sizeof(line) - used, " %s/%s",
					 conf.backup_dir, chain[k]->file);
		if (used >= sizeof(line)) {
			reply_error(c, "the chain is too long to send");
			return;
		}
		send_line(c, "%s", line);
		/* What amber restore --digest takes: the catalog's, not the files'. */
		used = snprintf(line, sizeof(line), "digests %s ", cat.e[i].volume);
		for (k = 0; k < n && used < sizeof(line); k++)
			used += snprintf(line + used, sizeof(line) - used, "%s%s",
					 k ? "," : "", chain[k]->digest);
		if (used >= sizeof(line)) {
			reply_error(c, "the chain is too long to send");
			return;
		}
		send_line(c, "%s", line);
		found++;
	}
	if (!found)
		send_line(c, "error group %s has no set %" PRIu64, g->name, set);
	else
		send_line(c, "ok group %s set %" PRIu64, g->name, set);
}

static void req_snap(struct client *c, const struct conf_group *g)
{
	uint32_t devs[AMBER_MAX_GROUP];
	uint64_t epochs[AMBER_MAX_GROUP];
	struct amber_volume v;
	struct job *run = running_job();
	unsigned int i;
	int ctl;

	if (run && groups_share_a_volume(g, group_of(run))) {
		send_line(c, "error group %s is being backed up (job %u): try when it is done",
			  g->name, run->id);
		return;
	}
	for (i = 0; i < g->nr_vols; i++) {
		if (volume_open(conf.vol[g->vols[i]].name, &v)) {
			reply_error(c, error_msg());
			return;
		}
		devs[i] = v.dev;
	}
	ctl = control_open();
	if (ctl < 0 || control_snap(ctl, devs, g->nr_vols, 0, epochs)) {
		log_err("group %s: snap: %s", g->name, error_msg());
		reply_error(c, error_msg());
		if (ctl >= 0)
			close(ctl);
		return;
	}
	close(ctl);
	for (i = 0; i < g->nr_vols; i++)
		send_line(c, "snap %s epoch %" PRIu64, conf.vol[g->vols[i]].name, epochs[i]);
	log_info("group %s: snap for uid %u: one barrier, snapshots left for"
		 " 'amber backup --use-snapshot'", g->name, c->uid);
	send_line(c, "ok the snapshots stay until 'amber backup NAME --use-snapshot' or"
		  " 'dmsetup message NAME 0 drop' ends each");
}

/* Seconds on a clock no one can set back; 0 is never a time it shows. */
static time_t monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + 1;
}

/*
 * The trigger socket (a database role through its hook) may ask for a new
 * set once per min_interval, so that requests back to back cannot fill
 * backup_dir. A request that joins a queued set is always served; root's
 * control socket is not limited.
 */
static bool too_soon(struct client *c, const struct conf_group *g, int grp)
{
	time_t since = monotonic_seconds() - last_trigger[grp];

	if (last_trigger[grp] && since < (time_t)g->min_interval) {
		send_line(c, "error group %s: a set was asked for on its trigger socket %lld s"
			  " ago, and min_interval is %" PRIu64 " s: try again in %lld s",
			  g->name, (long long)since, g->min_interval,
			  (long long)(g->min_interval - since));
		log_warn("group %s: refused a set for uid %u on the trigger socket"
			 " (min_interval)", g->name, c->uid);
		return true;
	}
	return false;
}

static void req_backup(struct client *c, int grp, enum req_kind kind)
{
	const struct conf_group *g = &conf.grp[grp];
	struct job *j = NULL, *run;
	char why[64];
	unsigned int i;

	if (kind == KIND_INCREMENTAL && !catalog_last_set(&cat, g->name)) {
		send_line(c, "error group %s has no backup to be incremental from: take a full one",
			  g->name);
		return;
	}
	/* A queued job of the same group and kind serves this request too: its
	 * barrier comes after the request. */
	for (i = 0; i < MAX_JOBS && !j; i++)
		if (jobs[i].id && !jobs[i].pid && jobs[i].grp == grp && jobs[i].kind == kind)
			j = &jobs[i];
	if (!j && c->grp >= 0 && too_soon(c, g, grp))
		return;
	if (!j) {
		snprintf(why, sizeof(why), "requested by uid %u%s", c->uid,
			 c->grp >= 0 ? " on the trigger socket" : "");
		j = new_job(grp, kind, why);
		if (j && c->grp >= 0)
			last_trigger[grp] = monotonic_seconds();
	}
	if (!j) {
		send_line(c, "error too many backups queued: try later");
		return;
	}
	c->wait = j->id;
	run = running_job();
	if (run)
		send_line(c, "queued behind job %u (group %s)", run->id, group_of(run)->name);
	run_queue();
}

static void handle_request(struct client *c, const char *line)
{
	const struct conf_group *g = NULL;
	struct request r;
	int grp = -1;

	if (request_parse(line, &r)) {
		reply_error(c, error_msg());
		return;
	}
	if (c->grp >= 0 && (r.cmd == REQ_STATUS || r.cmd == REQ_SNAP ||
			    (*r.group && strcmp(r.group, conf.grp[c->grp].name)))) {
		send_line(c, "error the trigger socket of group %s takes only 'backup %s"
			  " [full|incremental]', 'list %s' and 'chain %s [SET]'",
			  conf.grp[c->grp].name, conf.grp[c->grp].name, conf.grp[c->grp].name,
			  conf.grp[c->grp].name);
		return;
	}
	if (c->grp >= 0 && !*r.group)
		strcpy(r.group, conf.grp[c->grp].name);
	if (*r.group) {
		g = config_group(&conf, r.group);
		if (!g) {
			send_line(c, "error no group '%s' in %s", r.group, conf.path);
			return;
		}
		grp = g - conf.grp;
	}
	if (r.cmd == REQ_SNAP || r.cmd == REQ_BACKUP)
		log_info("request from uid %u pid %d: %s", c->uid, c->pid, line);
	if (stopping && (r.cmd == REQ_SNAP || r.cmd == REQ_BACKUP)) {
		reply_error(c, "amberd is stopping");
		return;
	}
	switch (r.cmd) {
	case REQ_STATUS:
		req_status(c);
		break;
	case REQ_LIST:
		req_list(c, r.group);
		break;
	case REQ_CHAIN:
		req_chain(c, g, r.set);
		break;
	case REQ_SNAP:
		req_snap(c, g);
		break;
	case REQ_BACKUP:
		req_backup(c, grp, r.kind);
		break;
	}
}

static void client_input(struct client *c)
{
	ssize_t n = recv(c->fd, c->in + c->len, sizeof(c->in) - 1 - c->len, 0);
	char *nl;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (c->wait)
			log_info("a client waiting for job %u left; the job goes on", c->wait);
		close_client(c);
		return;
	}
	c->len += n;
	while (c->fd >= 0 && !c->wait && (nl = memchr(c->in, '\n', c->len))) {
		*nl = 0;
		if (nl > c->in && nl[-1] == '\r')
			nl[-1] = 0;
		handle_request(c, c->in);
		if (c->fd < 0)
			return;
		c->len -= nl + 1 - c->in;
		memmove(c->in, nl + 1, c->len);
	}
	if (c->fd >= 0 && c->len == sizeof(c->in) - 1 && !memchr(c->in, '\n', c->len)) {
		send_line(c, "error the request is longer than %d bytes", REQ_LINE_MAX - 1);
		close_client(c);
	}
}

static void accept_client(int lfd, int grp)
{
	struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };
	struct client tmp = { .grp = grp }, *c = NULL;
	socklen_t len = sizeof(struct ucred);
	struct ucred cred;
	unsigned int i;

	tmp.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (tmp.fd < 0)
		return;
	setsockopt(tmp.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (getsockopt(tmp.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		send_line(&tmp, "error cannot tell who is asking (SO_PEERCRED: %s)", strerror(errno));
		close(tmp.fd);
		return;
	}
	tmp.uid = cred.uid;
	tmp.pid = cred.pid;
	if (grp < 0 && cred.uid != 0) {
		log_warn("refused a client of uid %u pid %d on the control socket: not root",
			 cred.uid, cred.pid);
		send_line(&tmp, "error permission denied: amberd's control socket takes requests"
			  " from root only, not from uid %u (a database user asks for backups on"
			  " its group's trigger socket, see trigger_user in amberd.conf(5))",
			  cred.uid);
		close(tmp.fd);
		return;
	}
	if (grp >= 0 && cred.uid != 0 && cred.uid != conf.grp[grp].trigger_uid) {
		log_warn("refused a client of uid %u pid %d on the trigger socket of group %s",
			 cred.uid, cred.pid, conf.grp[grp].name);
		send_line(&tmp, "error permission denied: the trigger socket of group %s is for"
			  " user %s only, not uid %u", conf.grp[grp].name,
			  conf.grp[grp].trigger_user, cred.uid);
		close(tmp.fd);
		return;
	}
	for (i = 0; i < MAX_CLIENTS && !c; i++)
		if (clients[i].fd < 0)
			c = &clients[i];
	if (!c) {
		send_line(&tmp, "error too many clients: try later");
		close(tmp.fd);
		return;
	}
	*c = tmp;
}

/* ---- start-up ---- */

/*
 * Each directory made gets @mode whatever the umask (systemd's UMask=0077
 * would leave the socket directory closed to the trigger users); one that
 * exists is left as it is.
 */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX], *s, c;

	snprintf(buf, sizeof(buf), "%s", path);
	for (s = buf + 1; ; s++) {
		if (*s && *s != '/')
			continue;
		c = *s;
		*s = 0;
		if (!mkdir(buf, mode)) {
			if (chmod(buf, mode))
				return fail_errno(AMBER_ESYS, "chmod %s", buf);
		} else if (errno != EEXIST) {
			return fail_errno(AMBER_ESYS, "mkdir %s", buf);
		}
		*s = c;
		if (!c)
			break;
	}
	return 0;
}

static int block_dev(const char *what, const char *path, dev_t *dev)
{
	struct stat st;

	if (stat(path, &st))
		return fail_errno(AMBER_ESYS, "%s %s", what, path);
	if (!S_ISBLK(st.st_mode))
		return fail(AMBER_ESYS, "%s %s is not a block device", what, path);
	*dev = st.st_rdev;
	return 0;
}

/*
 * A snapshot found at start-up is not this amberd's: an admin's, or left by
 * a backup killed with everything around it. It may still be in use, so it
 * is named, not dropped.
 */
static void warn_foreign_snapshot(const char *name)
{
	struct amber_status st;

	if (volume_status(name, &st) || st.state == VOL_IDLE)
		return;
	log_warn("volume %s: a snapshot of epoch %" PRIu64 " is %s, not taken by this"
		 " amberd: sets of its groups fail until it ends ('amber drop %s')",
		 name, st.epoch, vol_state_name(st.state), name);
}

/* The volume's devices exist, are not another volume's, and /dev/mapper/NAME
 * is an amber device over them; create it (and its store) when missing. */
static int ensure_volume(const struct conf_volume *v, dev_t *origins, dev_t *stores,
			 unsigned int idx)
{
	char chunk[32], epochs[24], timeout[24], view[DM_NAME_MAX + 8], params[32];
	struct amber_volume av;
	char *argv[16];
	unsigned int i;
	int argc = 0;

	if (block_dev("origin", v->origin, &origins[idx]) ||
	    block_dev("store", v->store, &stores[idx]))
		return -1;
	if (origins[idx] == stores[idx])
		return fail(AMBER_ESYS, "origin and store are the same device");
	for (i = 0; i < idx; i++)
		if (origins[i] == origins[idx] || stores[i] == stores[idx] ||
		    origins[i] == stores[idx] || stores[i] == origins[idx])
			return fail(AMBER_ESYS, "it shares a device with volume %s",
				    conf.vol[i].name);
	if (dm_exists(v->name)) {
		if (volume_open(v->name, &av))
			return -1;
		if (makedev(av.table.origin_major, av.table.origin_minor) != origins[idx] ||
		    makedev(av.table.store_major, av.table.store_minor) != stores[idx])
			return fail(AMBER_ESYS, "/dev/mapper/%s exists over other devices (origin"
				    " %u:%u, store %u:%u), not %s and %s", v->name,
				    av.table.origin_major, av.table.origin_minor,
				    av.table.store_major, av.table.store_minor, v->origin,
				    v->store);
		snprintf(view, sizeof(view), "%s%s", v->name, VIEW_SUFFIX);
		if (!dm_exists(view)) {
			snprintf(params, sizeof(params), "%u:%u", av.major, av.minor);
			if (dm_create(view, AMBER_VIEW_TARGET, av.sectors, params, true))
				return -1;
			log_info("volume %s: there; created its view /dev/mapper/%s", v->name, view);
		} else {
			log_info("volume %s: there (/dev/mapper/%s over %s, store %s)", v->name,
				 v->name, v->origin, v->store);
		}
		warn_foreign_snapshot(v->name);
		return 0;
	}
	snprintf(chunk, sizeof(chunk), "%" PRIu64, v->chunk);
	snprintf(epochs, sizeof(epochs), "%" PRIu64, v->epochs);
	snprintf(timeout, sizeof(timeout), "%" PRIu64, v->block_timeout);
	argv[argc++] = "create";
	argv[argc++] = (char *)v->name;
	argv[argc++] = "--origin";
	argv[argc++] = (char *)v->origin;
	argv[argc++] = "--store";
	argv[argc++] = (char *)v->store;
	argv[argc++] = "--epochs";
	argv[argc++] = epochs;
	if (v->chunk_set) {
		argv[argc++] = "--chunk";
		argv[argc++] = chunk;
	}
	if (*v->overflow) {
		argv[argc++] = "--overflow";
		argv[argc++] = (char *)v->overflow;
	}
	if (v->block_timeout) {
		argv[argc++] = "--block-timeout";
		argv[argc++] = timeout;
	}
	argv[argc] = NULL;
	if (create_main(argc, argv))
		return -1;
	log_info("volume %s: created /dev/mapper/%s over %s, store %s", v->name, v->name,
		 v->origin, v->store);
	return 0;
}

static int setup_volumes(void)
{
	dev_t origins[CONF_MAX_VOLUMES], stores[CONF_MAX_VOLUMES];
	unsigned int i;

	if (kernel_load_module())
		return -1;
	for (i = 0; i < conf.nr_vols; i++)
		if (ensure_volume(&conf.vol[i], origins, stores, i))
			return error_prefix("volume %s: ", conf.vol[i].name);
	return 0;
}

/* The newest set number a file of the group's directory names. */
static uint64_t scan_group_dir(const char *group)
{
	char dir[PATH_MAX + CONF_NAME_MAX], path[PATH_MAX + 2 * CAT_FILE_MAX], rel[2 * CAT_FILE_MAX];
	uint64_t max = 0, set;
	struct dirent *d;
	size_t len;
	DIR *dh;

	snprintf(dir, sizeof(dir), "%s/%s", conf.backup_dir, group);
	dh = opendir(dir);
	if (!dh)
		return 0;
	while ((d = readdir(dh))) {
		if (d->d_name[0] == '.')
			continue;
		len = strlen(d->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		snprintf(rel, sizeof(rel), "%s/%s", group, d->d_name);
		if (len > 5 && !strcmp(d->d_name + len - 5, ".part")) {
			if (!unlink(path))
				log_warn("group %s: removed %s, a backup that never finished",
					 group, rel);
			continue;
		}
		if (sscanf(d->d_name, "%" SCNu64 "-", &set) == 1)
			max = MAX(max, set);
		if (!catalog_find_file(&cat, rel))
			log_warn("group %s: %s is not in the catalog (left alone)", group, rel);
	}
	closedir(dh);
	return max;
}

static int setup_backup_dir(void)
{
	char dir[PATH_MAX + CONF_NAME_MAX], path[PATH_MAX + CAT_FILE_MAX], resolved[PATH_MAX];
	struct stat st;
	unsigned int i;
	size_t k;

	/* Never created here: on a file system not mounted yet, it would land
	 * on the one below. */
	if (stat(conf.backup_dir, &st) || !S_ISDIR(st.st_mode))
		return fail(AMBER_ESYS, "backup_dir %s is not a directory: create it (mkdir -m 700"
			    " %s) or mount its file system before amberd starts", conf.backup_dir,
			    conf.backup_dir);
	/* Whole database images live here: no one else may plant or swap a file. */
	if (check_trusted_dir(conf.backup_dir))
		return error_prefix("backup_dir %s is not safe (chown root, chmod go-w): ",
				    conf.backup_dir);
	/* What was checked is where the links led: use that, never the links,
	 * which someone may repoint later. */
	if (!realpath(conf.backup_dir, resolved))
		return fail_errno(AMBER_ESYS, "backup_dir %s", conf.backup_dir);
	if (strcmp(resolved, conf.backup_dir)) {
		log_info("backup_dir %s is %s", conf.backup_dir, resolved);
		snprintf(conf.backup_dir, sizeof(conf.backup_dir), "%s", resolved);
	}
	catalog_init(&cat, conf.backup_dir);
	if (catalog_load(&cat))
		return error_prefix("the catalog is damaged (fix or move it): ");
	for (k = 0; k < cat.n; k++) {
		snprintf(path, sizeof(path), "%s/%s", conf.backup_dir, cat.e[k].file);
		if (stat(path, &st))
			log_warn("the catalog lists %s, which is gone: backups that need it cannot"
				 " be restored, and the next backup of group %s is full where it"
				 " would need it", cat.e[k].file, cat.e[k].group);
	}
	for (i = 0; i < conf.nr_grps; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", conf.backup_dir, conf.grp[i].name);
		if (mkdir(dir, 0700) && errno != EEXIST)
			return fail_errno(AMBER_ESYS, "mkdir %s", dir);
		if (check_trusted_dir(dir))
			return error_prefix("group %s: ", conf.grp[i].name);
		next_set[i] = MAX(catalog_last_set(&cat, conf.grp[i].name),
				  scan_group_dir(conf.grp[i].name)) + 1;
	}
	return 0;
}

/* Listen on @path, mode 0600, owned by @uid:@gid. */
static int listen_at(const char *path, uid_t uid, gid_t gid)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, probe;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			return fail(AMBER_ESYS, "%s exists and is not a socket", path);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && !connect(probe, (struct sockaddr *)&a, sizeof(a))) {
			close(probe);
			return fail(AMBER_ESYS, "another amberd listens on %s", path);
		}
		if (probe >= 0)
			close(probe);
		unlink(path);		/* a stale socket of an amberd gone */
	}
	/* Non-blocking: a client gone between poll() and accept() never stalls
	 * the loop (accepted sockets are blocking, with a send timeout). */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "socket");
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		umask(old);
		close(fd);
		return fail_errno(AMBER_ESYS, "bind %s", path);
	}
	umask(old);
	if (chown(path, uid, gid) || chmod(path, 0600) || listen(fd, 16)) {
		fail_errno(AMBER_ESYS, "%s", path);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

static int setup_sockets(void)
{
	char dir[CONF_SOCKET_MAX];
	unsigned int i;

	snprintf(dir, sizeof(dir), "%s", conf.socket);
	*strrchr(dir, '/') = 0;
	if (*dir && mkdir_p(dir, 0755))
		return -1;
	ctl_fd = listen_at(conf.socket, 0, 0);
	if (ctl_fd < 0)
		return -1;
	for (i = 0; i < conf.nr_grps; i++) {
		const struct conf_group *g = &conf.grp[i];

		trig_fd[i] = -1;
		if (!*g->trigger_user)
			continue;
		if (snprintf(trig_path[i], sizeof(trig_path[i]), "%s/%s%s", dir, g->name,
			     TRIGGER_SUFFIX) >= (int)sizeof(trig_path[i]))
			return fail(AMBER_ESYS, "the trigger socket path of group %s is too long",
				    g->name);
		trig_fd[i] = listen_at(trig_path[i], g->trigger_uid, g->trigger_gid);
		if (trig_fd[i] < 0)
			return -1;
	}
	return 0;
}

static void remove_sockets(void)
{
	unsigned int i;

	if (ctl_fd >= 0) {
		close(ctl_fd);
		unlink(conf.socket);
		ctl_fd = -1;
	}
	for (i = 0; i < conf.nr_grps; i++)
		if (trig_fd[i] >= 0) {
			close(trig_fd[i]);
			unlink(trig_path[i]);
			trig_fd[i] = -1;
		}
}

static int setup_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return fail_errno(AMBER_ESYS, "sigprocmask");
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sig_fd < 0)
		return fail_errno(AMBER_ESYS, "signalfd");
	return 0;
}

static void setup_schedules(void)
{
	time_t now = time(NULL), last;
	unsigned int i;
	size_t k;

	for (i = 0; i < conf.nr_grps; i++) {
		if (!conf.grp[i].scheduled)
			continue;
		last = 0;
		for (k = 0; k < cat.n; k++)
			if (!strcmp(cat.e[k].group, conf.grp[i].name))
				last = MAX(last, cat.e[k].created);
		next_due[i] = last ? MAX(now, last + (time_t)conf.grp[i].interval) : now;
	}
}

/* systemd's Type=notify, without libsystemd. */
static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(a.sun_path))
		return;
	strcpy(a.sun_path, path);
	if (path[0] == '@')
		a.sun_path[0] = 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&a,
	       offsetof(struct sockaddr_un, sun_path) + strlen(path));
	close(fd);
}

/* ---- the loop ---- */

static void check_schedules(void)
{
	time_t now = time(NULL);
	unsigned int i;

	for (i = 0; i < conf.nr_grps && !stopping; i++) {
		if (!conf.grp[i].scheduled || now < next_due[i] || group_has_job(i))
			continue;
		if (!new_job(i, KIND_AUTO, "scheduled"))
			log_err("group %s: a scheduled backup cannot be queued: too many jobs",
				conf.grp[i].name);
		next_due[i] = now + conf.grp[i].interval;
	}
	run_queue();
}

static int poll_timeout(void)
{
	time_t now = time(NULL);
	int64_t ms = 60000;
	unsigned int i;

	for (i = 0; i < conf.nr_grps; i++)
		if (conf.grp[i].scheduled)
			ms = MIN(ms, MAX(0, (int64_t)(next_due[i] - now) * 1000));
	return ms;
}

static void begin_stop(int sig)
{
	struct client *c;
	struct job *run = running_job();
	unsigned int i;

	log_info("stopping on %s%s", strsignal(sig), run ? ": interrupting the running backup" : "");
	stopping = true;
	remove_sockets();
	for (i = 0; i < MAX_JOBS; i++) {
		if (!jobs[i].id || jobs[i].pid)
			continue;
		for_each_waiter(c, &jobs[i]) {
			reply_error(c, "amberd is stopping: the backup was not taken");
			c->wait = 0;
		}
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].fd = -1;
	}
	if (run)
		kill(-run->pid, SIGTERM);
}

static void signal_input(void)
{
	struct signalfd_siginfo si;

	if (read(sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		log_info("SIGHUP: nothing to do (restart amberd to read %s again)", conf.path);
		return;
	}
	if (!stopping)
		begin_stop(si.ssi_signo);
}

static void loop(void)
{
	struct pollfd pfd[2 + CONF_MAX_GROUPS + MAX_CLIENTS + 1];
	void *who[ARRAY_SIZE(pfd)];
	int kind[ARRAY_SIZE(pfd)];	/* 0 signal, 1 control, 2 trigger, 3 client, 4 job */
	unsigned int n, i;
	struct job *run;

	for (;;) {
		if (!stopping)
			check_schedules();
		run = running_job();
		if (stopping && !run)
			return;
		n = 0;
		pfd[n] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		kind[n++] = 0;
		if (ctl_fd >= 0) {
			pfd[n] = (struct pollfd){ .fd = ctl_fd, .events = POLLIN };
			kind[n++] = 1;
		}
		for (i = 0; i < conf.nr_grps; i++)
			if (trig_fd[i] >= 0) {
				pfd[n] = (struct pollfd){ .fd = trig_fd[i], .events = POLLIN };
				who[n] = (void *)(uintptr_t)i;
				kind[n++] = 2;
			}
		for (i = 0; i < MAX_CLIENTS; i++)
			if (clients[i].fd >= 0) {
				pfd[n] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
				who[n] = &clients[i];
				kind[n++] = 3;
			}
		if (run) {
			pfd[n] = (struct pollfd){ .fd = run->fd, .events = POLLIN };
			who[n] = run;
			kind[n++] = 4;
		}
		if (poll(pfd, n, poll_timeout()) < 0) {
			if (errno != EINTR)
				log_err("poll: %s", strerror(errno));
			continue;
		}
		for (i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			switch (kind[i]) {
			case 0:
				signal_input();
				break;
			case 1:
				if (ctl_fd >= 0)
					accept_client(ctl_fd, -1);
				break;
			case 2:
				if (trig_fd[(uintptr_t)who[i]] >= 0)
					accept_client(trig_fd[(uintptr_t)who[i]], (uintptr_t)who[i]);
				break;
			case 3:
				client_input(who[i]);
				break;
			default:
				if (((struct job *)who[i])->id)
					job_input(who[i]);
				break;
			}
		}
	}
}

static int check_only(void)
{
	unsigned int i, scheduled = 0, triggers = 0;

	for (i = 0; i < conf.nr_grps; i++) {
		scheduled += conf.grp[i].scheduled;
		triggers += !!*conf.grp[i].trigger_user;
	}
	printf("%s: %u volume%s, %u group%s (%u scheduled, %u with a trigger socket),"
	       " backups in %s\n", conf.path, conf.nr_vols, conf.nr_vols == 1 ? "" : "s",
	       conf.nr_grps, conf.nr_grps == 1 ? "" : "s", scheduled, triggers,
	       conf.backup_dir);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = { .command = "amberd", .usage = usage, .options = options };
	const char *path = CONF_DEFAULT_PATH;
	unsigned int i;
	int ret, devnull;

	ret = cli_parse(&c, argc, argv);
	if (ret || cli_args(&c, 0, 0, "")) {
		if (ret > 0)
			return 0;
		fprintf(stderr, "amberd: %s\nTry 'amberd --help'.\n", error_msg());
		return AMBER_EUSAGE;
	}
	if (c.value[OPT_CONFIG])
		path = c.value[OPT_CONFIG];
	if (config_load(path, &conf)) {
		fprintf(stderr, "amberd: %s\n", error_msg());
		return error_status();
	}
	if (cli_flag(&c, OPT_CHECK))
		return check_only();
	if (geteuid()) {
		fprintf(stderr, "amberd: must run as root (it creates device-mapper devices and"
			" uses /dev/amber-control)\n");
		return AMBER_ESYS;
	}
	if (conf.syslog)
		openlog("amberd", LOG_PID, LOG_DAEMON);
	for (i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	for (i = 0; i < MAX_JOBS; i++)
		jobs[i].fd = -1;
	for (i = 0; i < CONF_MAX_GROUPS; i++)
		trig_fd[i] = -1;
	started_at = time(NULL);
	/* amber create prints on stdout; amberd says everything in its log. */
	fflush(stdout);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull >= 0)
		dup2(devnull, STDOUT_FILENO);
	if (setup_backup_dir() || setup_volumes() || setup_signals() || setup_sockets()) {
		log_err("%s", error_msg());
		remove_sockets();
		return AMBER_ESYS;
	}
	setup_schedules();
	log_info("ready: %u volume%s, %u group%s, socket %s, backups in %s", conf.nr_vols,
		 conf.nr_vols == 1 ? "" : "s", conf.nr_grps, conf.nr_grps == 1 ? "" : "s",
		 conf.socket, conf.backup_dir);
	notify_ready();
	loop();
	remove_sockets();
	for (i = 0; i < MAX_CLIENTS; i++)
		close_client(&clients[i]);
	log_info("stopped");
	catalog_free(&cat);
	return 0;
}
