// SPDX-License-Identifier: GPL-2.0
/* amberd's backup sets: the job queue (queue.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "daemon.h"
#include "error.h"
#include "queue.h"
#include "setup.h"
#include "util.h"

struct job jobs[MAX_JOBS];
uint64_t next_set[CONF_MAX_GROUPS];
time_t next_due[CONF_MAX_GROUPS];
static unsigned int last_job_id;

void queue_init(void)
{
	unsigned int i;

	for (i = 0; i < MAX_JOBS; i++)
		jobs[i].fd = -1;
}

const struct conf_group *group_of(const struct job *j)
{
	return &conf.grp[j->grp];
}

struct job *running_job(void)
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

bool groups_share_a_volume(const struct conf_group *a, const struct conf_group *b)
{
	unsigned int i, j;

	for (i = 0; i < a->nr_vols; i++)
		for (j = 0; j < b->nr_vols; j++)
			if (a->vols[i] == b->vols[j])
				return true;
	return false;
}

struct job *new_job(int grp, enum req_kind kind, const char *why)
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
	j->plan.encrypt_key = *g->encrypt_key ? g->encrypt_key : NULL;
	j->plan.passphrase_file = g->passphrase_file;
	j->plan.sign_key = *g->sign_key ? g->sign_key : NULL;
	j->plan.nr = g->nr_vols;
	for (i = 0; i < g->nr_vols; i++) {
		strcpy(j->plan.v[i].name, conf.vol[g->vols[i]].name);
		e = full ? NULL : catalog_find(&cat, g->name, last, j->plan.v[i].name);
		if (e)
			strcpy(j->plan.v[i].parent, e->file);
	}
	return 0;
}

/* In the job's child: amberd's descriptors are not its business. */
static void close_daemon_fds(void)
{
	unsigned int i;

	setup_close_fds();
	clients_close_fds();
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
		client_send(c, "started group %s set %" PRIu64 " job %u", g->name, j->plan.set,
			  j->id);
}

/* Start the oldest queued job when none runs (the next one if it cannot
 * start). */
void run_queue(void)
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
		client_send(c, "barrier group %s set %" PRIu64 "%s", g->name, j->plan.set, line);
}

/* "done VOLUME KIND EPOCH BYTES DIGEST SECONDS KEY SIGNER" */
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
	if (sscanf(args, "%63s %15s %" SCNu64 " %" SCNu64 " %64s %lf %64s %64s", vol, kind,
		   &e->epoch, &e->bytes, digest, &seconds, e->key, e->signer) != 8) {
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
		client_send(c, "backup %s %s epoch %" PRIu64 " bytes %" PRIu64 " digest %s file %s/%s",
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
			client_send(c, "%s", line + 5);
	} else if (!strncmp(line, "note ", 5)) {
		log_warn("group %s: set %" PRIu64 ": %s", g->name, j->plan.set, line + 5);
		for_each_waiter(c, j)
			client_send(c, "note %s", line + 5);
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
			client_send(c, "ok group %s set %" PRIu64 " %s", g->name, j->plan.set,
				  set_kind(j));
			c->wait = 0;
		}
		remove_backups((const char (*)[CAT_FILE_MAX])removed, nr_removed, g->name);
	} else if (!j->pid) {		/* it never started */
		log_err("group %s: no backup set: %s", g->name, j->failure);
		for_each_waiter(c, j) {
			client_send(c, "error %s", j->failure);
			c->wait = 0;
		}
	} else {
		if (!j->failure[0])
			snprintf(j->failure, sizeof(j->failure), "the backup job failed");
		log_err("group %s: set %" PRIu64 " failed: %s", g->name, j->plan.set, j->failure);
		for_each_waiter(c, j) {
			client_send(c, "error group %s set %" PRIu64 " failed: %s", g->name,
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

void job_input(struct job *j)
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

struct job *queued_job(int grp, enum req_kind kind)
{
	unsigned int i;

	for (i = 0; i < MAX_JOBS; i++)
		if (jobs[i].id && !jobs[i].pid && jobs[i].grp == grp && jobs[i].kind == kind)
			return &jobs[i];
	return NULL;
}

void check_schedules(void)
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

struct job *queue_stop(void)
{
	struct job *run = running_job();
	struct client *c;
	unsigned int i;

	for (i = 0; i < MAX_JOBS; i++) {
		if (!jobs[i].id || jobs[i].pid)
			continue;
		for_each_waiter(c, &jobs[i]) {
			client_error(c, "amberd is stopping: the backup was not taken");
			c->wait = 0;
		}
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].fd = -1;
	}
	if (run)
		kill(-run->pid, SIGTERM);
	return run;
}
