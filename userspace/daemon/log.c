// SPDX-License-Identifier: GPL-2.0
/* amberd's log: one line per event, to syslog, the journal or stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
