// SPDX-License-Identifier: GPL-2.0
/*
 * benchsnap: take snapshots on a schedule and time them, for make bench
 * (bench/vm-bench.sh). Everything runs in-process through libdevmapper, so
 * that no fork or exec of dmsetup lengthens the windows it reports.
 *
 *   benchsnap amber NAME COUNT PERIOD_MS HOLD_MS
 *       message "snap" to amber device NAME, keep the snapshot HOLD_MS,
 *       message "stats" (the barrier's steps and the waits of the writes
 *       it held, timed by the module), message "drop"
 *   benchsnap dmsnap ORIGIN SNAP COWDEV LEN TABLE COUNT PERIOD_MS HOLD_MS
 *       zero the first 4 KiB of COWDEV (an empty persistent store), then
 *       suspend ORIGIN (a snapshot-origin device), create SNAP with the
 *       one-target table "0 LEN snapshot TABLE", resume ORIGIN: what
 *       lvcreate -s does; keep it HOLD_MS, remove SNAP
 *
 * Cycle i starts PERIOD_MS * i after the first. For each step it prints
 *   snap <start> <end>        the snapshot's window (the barrier, or
 *                             suspend+create+resume)
 *   stats <answer>            amber only: the answer to "stats"
 *   drop <start> <end>        dropping (removing) it
 * in CLOCK_REALTIME nanoseconds, fio's clock with log_unix_epoch=1, so the
 * windows line up with fio's per-I/O latency logs. Exit 0, or 1 at the
 * first failing step (nothing is left behind but what the caller made).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmtest.h"

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void sleep_until(uint64_t mono_ns)
{
	struct timespec ts = {
		.tv_sec = mono_ns / 1000000000ULL,
		.tv_nsec = mono_ns % 1000000000ULL,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
		;
}

static int message(const char *name, const char *msg)
{
	return dmt_message(name, msg, NULL, 0);
}

/* One step, timed: prints "<what> <start> <end>"; 0 or a negative errno. */
#define TIMED(what, call) ({						\
	uint64_t t0_ = now_ns(CLOCK_REALTIME);				\
	int r_ = (call);						\
	uint64_t t1_ = now_ns(CLOCK_REALTIME);				\
	if (r_)								\
		fprintf(stderr, "benchsnap: %s: %s\n", what, strerror(-r_)); \
	else								\
		printf("%s %" PRIu64 " %" PRIu64 "\n", what, t0_, t1_);	\
	r_;								\
})

static int amber_snap(const char *name)
{
	return message(name, "snap");
}

/* "stats <answer>", the module's timing of the snapshot just taken. */
static int amber_stats(const char *name)
{
	char out[512];
	int r = dmt_message(name, "stats", out, sizeof(out));

	if (r)
		fprintf(stderr, "benchsnap: stats: %s\n", strerror(-r));
	else
		printf("stats %s\n", out);
	return r;
}

static int zero_header(const char *cow)
{
	void *buf;
	int fd, r = 0;

	if (posix_memalign(&buf, 4096, 4096))
		return -ENOMEM;
	memset(buf, 0, 4096);
	fd = open(cow, O_WRONLY | O_DIRECT);
	if (fd < 0 || pwrite(fd, buf, 4096, 0) != 4096 || fdatasync(fd))
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

struct dmsnap {
	const char *origin, *snap, *cow, *table;
	uint64_t len;
};

static int dmsnap_take(const struct dmsnap *d)
{
	int r = dmt_simple(DM_DEVICE_SUSPEND, d->origin);

	if (r)
		return r;
	r = dmt_create(d->snap, d->len, "snapshot", d->table, 0);
	/* The origin resumes whatever became of the snapshot. */
	if (dmt_simple(DM_DEVICE_RESUME, d->origin) && !r)
		r = -EIO;
	return r;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: benchsnap amber NAME COUNT PERIOD_MS HOLD_MS\n"
		"       benchsnap dmsnap ORIGIN SNAP COWDEV LEN TABLE COUNT PERIOD_MS HOLD_MS\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct dmsnap d = { 0 };
	unsigned long count, period, hold, i;
	const char *name = NULL;
	uint64_t start;
	int amber, r = 0;

	if (argc == 6 && !strcmp(argv[1], "amber")) {
		amber = 1;
		name = argv[2];
		argv += 3;
	} else if (argc == 10 && !strcmp(argv[1], "dmsnap")) {
		amber = 0;
		d.origin = argv[2];
		d.snap = argv[3];
		d.cow = argv[4];
		d.len = strtoull(argv[5], NULL, 10);
		d.table = argv[6];
		argv += 7;
	} else {
		return usage();
	}
	count = strtoul(argv[0], NULL, 10);
	period = strtoul(argv[1], NULL, 10);
	hold = strtoul(argv[2], NULL, 10);
	if (!count || hold >= period)
		return usage();

	setvbuf(stdout, NULL, _IOLBF, 0);
	dm_udev_set_sync_support(0);
	start = now_ns(CLOCK_MONOTONIC);
	for (i = 0; i < count && !r; i++) {
		uint64_t at = start + i * period * 1000000ULL;

		sleep_until(at);
		if (amber) {
			r = TIMED("snap", amber_snap(name));
			if (r)
				break;
			sleep_until(at + hold * 1000000ULL);
			r = amber_stats(name) ?: TIMED("drop", message(name, "drop"));
		} else {
			r = zero_header(d.cow);
			if (r) {
				fprintf(stderr, "benchsnap: %s: %s\n", d.cow, strerror(-r));
				break;
			}
			r = TIMED("snap", dmsnap_take(&d));
			if (r)
				break;
			sleep_until(at + hold * 1000000ULL);
			r = TIMED("drop", dmt_simple(DM_DEVICE_REMOVE, d.snap));
		}
	}
	dm_lib_release();
	return r ? 1 : 0;
}
