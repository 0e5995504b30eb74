// SPDX-License-Identifier: GPL-2.0
/* amberd's requests: what each one answers (serve.h, amberd(8)). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "daemon.h"
#include "error.h"
#include "kernel.h"
#include "queue.h"
#include "serve.h"
#include "util.h"

static time_t last_trigger[CONF_MAX_GROUPS];	/* monotonic_seconds() of the last set asked
						 * on its trigger socket */

static void req_list(struct client *c, const char *group)
{
	char line[1100];
	size_t i, n = 0;

	for (i = 0; i < cat.n; i++) {
		if (*group && strcmp(cat.e[i].group, group))
			continue;
		catalog_format(&cat.e[i], line, sizeof(line));
		client_send(c, "backup %s", line);
		n++;
	}
	client_send(c, "ok %zu backup%s", n, n == 1 ? "" : "s");
}

static void req_chain(struct client *c, const struct conf_group *g, uint64_t set)
{
	const struct cat_entry *chain[1024];
	char line[CLIENT_LINE_MAX - 64];
	unsigned int found = 0;
	size_t i, used;
	int n, k;

	if (!set)
		set = catalog_last_set(&cat, g->name);
	if (!set) {
		client_send(c, "error group %s has no backups", g->name);
		return;
	}
	for (i = 0; i < cat.n; i++) {
		if (cat.e[i].set != set || strcmp(cat.e[i].group, g->name))
			continue;
		n = catalog_chain(&cat, &cat.e[i], chain, ARRAY_SIZE(chain));
		if (n < 0) {
			client_error(c, error_msg());
			return;
		}
		used = snprintf(line, sizeof(line), "chain %s", cat.e[i].volume);
		for (k = 0; k < n && used < sizeof(line); k++)
			used += snprintf(line + used, sizeof(line) - used, " %s/%s",
					 conf.backup_dir, chain[k]->file);
		if (used >= sizeof(line)) {
			client_error(c, "the chain is too long to send");
			return;
		}
		client_send(c, "%s", line);
		/* What amber restore --digest takes: the catalog's, not the files'. */
		used = snprintf(line, sizeof(line), "digests %s ", cat.e[i].volume);
		for (k = 0; k < n && used < sizeof(line); k++)
			used += snprintf(line + used, sizeof(line) - used, "%s%s",
					 k ? "," : "", chain[k]->digest);
		if (used >= sizeof(line)) {
			client_error(c, "the chain is too long to send");
			return;
		}
		client_send(c, "%s", line);
		found++;
	}
	if (!found)
		client_send(c, "error group %s has no set %" PRIu64, g->name, set);
	else
		client_send(c, "ok group %s set %" PRIu64, g->name, set);
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
		client_send(c, "error group %s is being backed up (job %u): try when it is done",
			  g->name, run->id);
		return;
	}
	for (i = 0; i < g->nr_vols; i++) {
		if (volume_open(conf.vol[g->vols[i]].name, &v)) {
			client_error(c, error_msg());
			return;
		}
		devs[i] = v.dev;
	}
	ctl = control_open();
	if (ctl < 0 || control_snap(ctl, devs, g->nr_vols, 0, epochs)) {
		log_err("group %s: snap: %s", g->name, error_msg());
		client_error(c, error_msg());
		if (ctl >= 0)
			close(ctl);
		return;
	}
	close(ctl);
	log_info("group %s: snap for uid %u: one barrier, snapshots left for"
		 " 'amber backup --use-snapshot'", g->name, c->uid);
	for (i = 0; i < g->nr_vols; i++)
		client_send(c, "snap %s epoch %" PRIu64, conf.vol[g->vols[i]].name, epochs[i]);
	client_send(c, "ok the snapshots stay until 'amber backup NAME --use-snapshot' or"
		  " 'dmsetup message NAME 0 drop' ends each");
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
		/* Logged first: a failed send closes @c and clears its uid. */
		log_uid(c->uid, LOG_WARNING, "group %s: refused a set for uid %u on the trigger"
			" socket (min_interval)", g->name, c->uid);
		client_send(c, "error group %s: a set was asked for on its trigger socket %lld s"
			  " ago, and min_interval is %" PRIu64 " s: try again in %lld s",
			  g->name, (long long)since, g->min_interval,
			  (long long)(g->min_interval - since));
		return true;
	}
	return false;
}

static void req_backup(struct client *c, int grp, enum req_kind kind)
{
	const struct conf_group *g = &conf.grp[grp];
	struct job *j, *run;
	char why[64];

	if (kind == KIND_INCREMENTAL && !catalog_last_set(&cat, g->name)) {
		client_send(c, "error group %s has no backup to be incremental from: take a full one",
			  g->name);
		return;
	}
	/* A queued job of the same group and kind serves this request too: its
	 * barrier comes after the request. */
	j = queued_job(grp, kind);
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
		client_send(c, "error too many backups queued: try later");
		return;
	}
	c->wait = j->id;
	run = running_job();
	if (run)
		client_send(c, "queued behind job %u (group %s)", run->id, group_of(run)->name);
	run_queue();
}

void serve_request(struct client *c, const char *line)
{
	const struct conf_group *g = NULL;
	struct request r;
	int grp = -1;

	if (request_parse(line, &r)) {
		client_error(c, error_msg());
		return;
	}
	if (c->grp >= 0 && (r.cmd == REQ_STATUS || r.cmd == REQ_SNAP ||
			    (*r.group && strcmp(r.group, conf.grp[c->grp].name)))) {
		client_send(c, "error the trigger socket of group %s takes only 'backup %s"
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
			client_send(c, "error no group '%s' in %s", r.group, conf.path);
			return;
		}
		grp = g - conf.grp;
	}
	if (r.cmd == REQ_SNAP || r.cmd == REQ_BACKUP)
		log_uid(c->uid, LOG_INFO, "request from uid %u pid %d: %s", c->uid, c->pid, line);
	if (stopping && (r.cmd == REQ_SNAP || r.cmd == REQ_BACKUP)) {
		client_error(c, "amberd is stopping");
		return;
	}
	switch (r.cmd) {
	case REQ_STATUS:
		serve_status(c, r.json);
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
