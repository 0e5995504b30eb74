/* SPDX-License-Identifier: GPL-2.0 */
/*
 * amberd's backup sets: a queue of jobs, one running at a time in a child
 * process (job.c) whose reports come on a pipe. Requests and schedules add
 * jobs; a finished set goes into the catalog, and retention removes what
 * it no longer keeps. Clients waiting for a job get its report lines.
 */
#ifndef AMBERD_QUEUE_H
#define AMBERD_QUEUE_H

#include <stdint.h>
#include <time.h>

#include "job.h"
#include "request.h"

#define MAX_JOBS	16

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

extern struct job jobs[MAX_JOBS];
extern uint64_t next_set[CONF_MAX_GROUPS];	/* the set number each group takes next */
extern time_t next_due[CONF_MAX_GROUPS];	/* wall clock of a scheduled group's next set */

void queue_init(void);
const struct conf_group *group_of(const struct job *j);
struct job *running_job(void);
bool groups_share_a_volume(const struct conf_group *a, const struct conf_group *b);

/* A queued job of group @grp and @kind, which a new request may join. */
struct job *queued_job(int grp, enum req_kind kind);
/* Queue a job; NULL when MAX_JOBS are queued already. */
struct job *new_job(int grp, enum req_kind kind, const char *why);
/* Start the oldest queued job when none runs. */
void run_queue(void);
/* Queue the scheduled groups' sets that are due, and start one. */
void check_schedules(void);
/* The running job's pipe is readable: its reports, or its end. */
void job_input(struct job *j);
/* Stopping: queued jobs are answered and dropped, the running one is told
 * to end (SIGTERM to its process group); returns it. */
struct job *queue_stop(void);

#endif
