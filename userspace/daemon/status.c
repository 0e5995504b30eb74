// SPDX-License-Identifier: GPL-2.0
/*
 * amberd's status answer: "status" sends lines of words for people,
 * "status json" one JSON object per line for scripts ({"daemon": ...},
 * {"volume": ...}, {"group": ...}, {"job": ...}), which amber daemon --json
 * gathers into one document (amber(8) has the keys). Each record is a line
 * of its own so that no line grows with the configuration.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "client.h"
#include "daemon.h"
#include "error.h"
#include "kernel.h"
#include "queue.h"
#include "report.h"
#include "serve.h"
#include "util.h"

/* Records that could not be sent in this answer: it then ends in an error. */
static unsigned int unsent;

/* One record, {"@key": @v}, on a line; @v's reference is taken. */
static void send_record(struct client *c, const char *key, json_t *v)
{
	json_t *rec = json_pack("{s:o}", key, v);
	char *line = rec ? json_dumps(rec, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	json_decref(rec);
	if (line && strlen(line) < CLIENT_LINE_MAX - 1) {
		client_send(c, "%s", line);
	} else {
		log_err("status json: cannot send the %s record (out of memory or longer"
			" than %d bytes)", key, CLIENT_LINE_MAX - 2);
		unsent++;
	}
	free(line);
}

static json_t *time_json(time_t t)
{
	char when[32];

	return json_string(format_time(t, when, sizeof(when)));
}

static void send_daemon(struct client *c, bool json)
{
	char when[32];

	if (!json) {
		client_send(c, "daemon pid %d since %s config %s backup_dir %s", getpid(),
			    format_time(started_at, when, sizeof(when)), conf.path,
			    conf.backup_dir);
		return;
	}
	send_record(c, "daemon", json_pack("{s:i, s:o, s:o, s:o, s:i}", "pid", getpid(),
					   "since", time_json(started_at),
					   "config", json_text(conf.path),
					   "backup_dir", json_text(conf.backup_dir),
					   "protocol", AMBERD_PROTOCOL));
}

static void send_volume(struct client *c, const char *name, bool json)
{
	struct amber_status st;

	if (volume_status(name, &st)) {
		if (json)
			send_record(c, "volume", json_pack("{s:s, s:o}", "name", name,
							   "error", json_text(error_msg())));
		else
			client_send(c, "volume %s missing (%s)", name, error_msg());
		return;
	}
	if (json)
		send_record(c, "volume", volume_json(name, &st));
	else
		client_send(c, "volume %s state %s epoch %" PRIu64 " store %" PRIu64 "/%" PRIu64
			    " cbt %s reason %s", name, vol_state_name(st.state), st.epoch, st.used,
			    st.total, cbt_name(st.cbt), reason_name(st.reason));
}

static json_t *group_json(unsigned int i, uint64_t set)
{
	const struct conf_group *g = &conf.grp[i];
	json_t *vols = json_array();
	unsigned int k;

	for (k = 0; k < g->nr_vols; k++)
		if (!json_append(vols, json_string(conf.vol[g->vols[k]].name)))
			break;
	return json_pack("{s:s, s:o, s:o, s:o, s:I, s:I, s:o, s:I, s:o}", "name", g->name,
			 "volumes", vols,
			 "last_set", set ? json_integer(set) : json_null(),
			 "last_set_kind", !set ? json_null() :
			 json_string(catalog_set_is_full(&cat, g->name, set) ? "full" :
				     "incremental"),
			 "interval", (json_int_t)(g->scheduled ? g->interval : 0),
			 "full_every", (json_int_t)g->full_every,
			 "next", g->scheduled ? time_json(next_due[i]) : json_null(),
			 "retention", (json_int_t)g->retention,
			 "trigger_user", *g->trigger_user ? json_string(g->trigger_user) :
			 json_null());
}

static void send_group(struct client *c, unsigned int i, bool json)
{
	const struct conf_group *g = &conf.grp[i];
	char vols[AMBER_MAX_GROUP * CONF_NAME_MAX] = "", last[64], next[48];
	uint64_t set = catalog_last_set(&cat, g->name);
	unsigned int k;

	if (json) {
		send_record(c, "group", group_json(i, set));
		return;
	}
	for (k = 0; k < g->nr_vols; k++)
		snprintf(vols + strlen(vols), sizeof(vols) - strlen(vols), "%s%s",
			 k ? "," : "", conf.vol[g->vols[k]].name);
	if (set)
		snprintf(last, sizeof(last), "%" PRIu64 " %s", set,
			 catalog_set_is_full(&cat, g->name, set) ? "full" : "incremental");
	else
		strcpy(last, "- -");
	if (g->scheduled)
		format_time(next_due[i], next, sizeof(next));
	else
		strcpy(next, "-");
	client_send(c, "group %s volumes %s last_set %s interval %" PRIu64 " full_every %"
		    PRIu64 " next %s retention %" PRIu64 " trigger_user %s", g->name, vols,
		    last, g->scheduled ? g->interval : 0, g->full_every, next, g->retention,
		    *g->trigger_user ? g->trigger_user : "-");
}

static void send_job(struct client *c, const struct job *j, bool json)
{
	const char *state = j->pid ? "running" : "queued";

	if (json)
		send_record(c, "job", json_pack("{s:i, s:s, s:s, s:s, s:o}", "id", (int)j->id,
						"group", conf.grp[j->grp].name, "state", state,
						"kind", req_kind_name(j->kind),
						"why", json_text(j->why)));
	else
		client_send(c, "job %u group %s %s %s (%s)", j->id, conf.grp[j->grp].name,
			    state, req_kind_name(j->kind), j->why);
}

void serve_status(struct client *c, bool json)
{
	unsigned int i;

	unsent = 0;
	send_daemon(c, json);
	for (i = 0; i < conf.nr_vols; i++)
		send_volume(c, conf.vol[i].name, json);
	for (i = 0; i < conf.nr_grps; i++)
		send_group(c, i, json);
	for (i = 0; i < MAX_JOBS; i++)
		if (jobs[i].id)
			send_job(c, &jobs[i], json);
	if (unsent)
		client_send(c, "error %u status record%s could not be sent (amberd's log says"
			    " which)", unsent, unsent == 1 ? "" : "s");
	else
		client_send(c, "ok");
}
