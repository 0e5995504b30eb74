// SPDX-License-Identifier: GPL-2.0
/* amberd's log: one line per event, to syslog, the journal or stderr; the
 * lines clients cause, limited per uid (daemon.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "util.h"

void log_at(int prio, const char *fmt, ...)
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

/* One uid's interval: @begin is 0 for a free slot (monotonic_seconds()
 * never is). */
static struct log_limit {
	uid_t uid;
	time_t begin;
	unsigned int printed, missed;
} limits[LOG_LIMIT_UIDS];

/* The interval of @l is over: say what it did not log, free the slot. */
static void limit_end(struct log_limit *l)
{
	if (l->missed)
		log_warn("suppressed %u messages from uid %u (at most %d logged per %d s)",
			 l->missed, l->uid, LOG_LIMIT_BURST, LOG_LIMIT_INTERVAL_S);
	memset(l, 0, sizeof(*l));
}

/* @uid's slot, or a free one for it: when none is, the one whose interval
 * began first ends early. */
static struct log_limit *limit_of(uid_t uid)
{
	struct log_limit *l, *unused = NULL, *oldest = NULL;

	for (l = limits; l < limits + LOG_LIMIT_UIDS; l++) {
		if (l->begin && l->uid == uid)
			return l;
		if (!l->begin) {
			if (!unused)
				unused = l;
		} else if (!oldest || l->begin < oldest->begin) {
			oldest = l;
		}
	}
	if (!unused) {
		limit_end(oldest);
		unused = oldest;
	}
	return unused;
}

bool log_limit(uid_t uid)
{
	time_t now = monotonic_seconds();
	struct log_limit *l = limit_of(uid);

	if (l->begin && now - l->begin >= LOG_LIMIT_INTERVAL_S)
		limit_end(l);
	if (!l->begin) {
		l->uid = uid;
		l->begin = now;
	}
	if (l->printed < LOG_LIMIT_BURST) {
		l->printed++;
		return true;
	}
	l->missed++;
	return false;
}

int log_limits_report(time_t now)
{
	time_t next = 0, due;
	struct log_limit *l;

	for (l = limits; l < limits + LOG_LIMIT_UIDS; l++) {
		if (!l->begin)
			continue;
		due = l->begin + LOG_LIMIT_INTERVAL_S;
		if (now >= due)
			limit_end(l);
		else if (l->missed && (!next || due < next))
			next = due;
	}
	return next ? (int)(next - now) * 1000 : -1;
}
