// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "kernel.h"
#include "progress.h"
#include "util.h"

#define TERMINAL_INTERVAL	0.25	/* one line redrawn */
#define LOG_INTERVAL		5.0	/* a line each time, for logs */
#define STORE_INTERVAL		1.0

void progress_init(struct progress *p, bool enabled, const char *volume)
{
	*p = (struct progress){ .enabled = enabled, .volume = volume,
				.terminal = isatty(STDERR_FILENO) };
	p->start = now_seconds();
}

static void update_store_use(struct progress *p, double now)
{
	struct amber_status st;

	if (!p->volume || now - p->last_store < STORE_INTERVAL)
		return;
	p->last_store = now;
	if (!volume_status(p->volume, &st) && st.total)
		snprintf(p->store, sizeof(p->store), "store %" PRIu64 "%%",
			 st.used * 100 / st.total);
}

static void format_eta(double seconds, char *buf, size_t len)
{
	unsigned long s = seconds;

	if (seconds < 0 || seconds > 359999)
		snprintf(buf, len, "--:--");
	else if (s >= 3600)
		snprintf(buf, len, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%lu:%02lu", s / 60, s % 60);
}

void progress_show(void *ctx, const struct stream_progress *s)
{
	struct progress *p = ctx;
	double now = now_seconds(), elapsed = now - p->start;
	double rate = elapsed > 0 ? s->done_bytes / elapsed : 0;
	char done[32], total[32], speed[32], eta[32];

	if (!p->enabled ||
	    now - p->last_shown < (p->terminal ? TERMINAL_INTERVAL : LOG_INTERVAL))
		return;
	p->last_shown = now;
	update_store_use(p, now);
	format_eta(rate > 0 ? (s->total_bytes - s->done_bytes) / rate : -1, eta, sizeof(eta));
	fprintf(stderr, "%s%10s of %-10s %3" PRIu64 "%%  %10s/s  ETA %-8s %-10s%s",
		p->terminal ? "\r" : "",
		format_size(s->done_bytes, done, sizeof(done)),
		format_size(s->total_bytes, total, sizeof(total)),
		s->total_bytes ? s->done_bytes * 100 / s->total_bytes : 100,
		format_size(rate, speed, sizeof(speed)), eta, p->store, p->terminal ? "" : "\n");
	fflush(stderr);
}

void progress_done(struct progress *p)
{
	if (p->enabled && p->terminal && p->last_shown)
		fputc('\n', stderr);
}
