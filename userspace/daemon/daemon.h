/* SPDX-License-Identifier: GPL-2.0 */
/*
 * amberd's shared state: its configuration and catalog, read at start-up
 * and then owned by the poll loop (one thread; the backup jobs are child
 * processes that get a copy). The parts of the daemon:
 *
 *	setup.c    start-up: backup_dir and catalog, volumes, sockets, signals
 *	client.c   connections: slots and limits, buffered answers, timeouts
 *	serve.c    requests: what each one answers
 *	queue.c    backup sets: the job queue, reports, catalog, retention
 *	job.c      one backup set, in its child process
 *	../amberd.c  the poll loop and stopping
 */
#ifndef AMBERD_DAEMON_H
#define AMBERD_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>
#include <syslog.h>
#include <time.h>

#include "catalog.h"
#include "config.h"

extern struct config conf;
extern struct catalog cat;
extern time_t started_at;	/* wall clock, for status */
extern bool stopping;		/* a signal asked amberd to stop */

void log_at(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_info(...)	log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...)	log_at(LOG_WARNING, __VA_ARGS__)
#define log_err(...)	log_at(LOG_ERR, __VA_ARGS__)

/*
 * What a client can make amberd log as often as it likes (its requests,
 * their refusals, a refused connection, leaving a job it waited for) goes
 * through log_uid(), limited per uid as the kernel's printk_ratelimit:
 * LOG_LIMIT_BURST lines in an interval of LOG_LIMIT_INTERVAL_S, then only a
 * count, which one line gives once the interval is over: "suppressed K
 * messages from uid U". What a client causes at most once per timeout
 * (being hung up on) is logged as it comes.
 */
#define LOG_LIMIT_INTERVAL_S	5
#define LOG_LIMIT_BURST		10
#define LOG_LIMIT_UIDS		64	/* uids followed at once */

/* May a line caused by a client of @uid be logged now? */
bool log_limit(uid_t uid);
/* Log the counts of the intervals over by @now (monotonic_seconds()); the
 * milliseconds until the next one is due, -1: none. */
int log_limits_report(time_t now);

#define log_uid(uid, prio, ...) \
	do { if (log_limit(uid)) log_at(prio, __VA_ARGS__); } while (0)

/* Seconds on a clock no one can set back; 0 is never a time it shows. */
static inline time_t monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + 1;
}

#endif
