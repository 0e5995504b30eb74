// SPDX-License-Identifier: GPL-2.0
/*
 * latwin: per-I/O latency logs against snapshot windows, for make bench
 * (bench/vm-bench.sh). Awk under TCG takes seconds for what this does in
 * milliseconds.
 *
 *   latwin stall LATLOG WINDOWS
 *       LATLOG: fio's per-I/O log written with log_avg_msec=0 and
 *       log_unix_epoch=1: "<completion ms since 1970>, <latency ns>, ...".
 *       WINDOWS: lines "<kind> <start ns> <end ns>" (benchsnap's output,
 *       CLOCK_REALTIME). Prints "<key> <value>" lines, times in ms:
 *         ios, p50, p999, max         every I/O of the log
 *         quiet_ios, quiet_p99        the I/Os in flight at no time
 *                                     within 100 ms of a snapshot's life
 *                                     (a "snap" window to the end of the
 *                                     "drop" window after it): the
 *                                     latency with no barrier and no
 *                                     snapshot
 *         <kind>_stall_med/_max       per window: the longest latency of an
 *                                     I/O in flight at any time in it
 *         <kind>_excess_max           the same, less the log's median
 *         <kind>_dur_med/_max         the windows themselves
 *         <kind>_p999                 p99.9 of the I/Os in flight within
 *                                     100 ms of a window of that kind
 *       and one "w <kind> <start ms from the first window> <dur> <stall>"
 *       line per window.
 *   latwin chunks LATLOG START_NS END_NS CHUNK_BYTES
 *       logged with log_offset=1 too: the I/Os issued and completed within
 *       [START, END], and the distinct chunks they wrote:
 *       "writes <n>" and "chunks <n>".
 * Exit 0, 1 on a read error, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct io {
	double done;		/* completion, ms since 1970 */
	double lat;		/* ms */
	uint64_t offset;
};

struct win {
	char kind[16];
	double start, end;	/* ms since 1970 */
	double stall;
};

static struct io *ios;
static size_t nr_ios;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The p-quantile (0..1) of @n values, sorted in place: nearest rank. */
static double quantile(double *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p * n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

static int read_log(const char *path)
{
	size_t cap = 0;
	char line[256];
	FILE *f = fopen(path, "r");

	if (!f) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long ms, ns, dir, bs, off = 0;

		if (sscanf(line, "%llu, %llu, %llu, %llu, %llu", &ms, &ns, &dir,
			   &bs, &off) < 2)
			continue;
		if (nr_ios == cap) {
			cap = cap ? 2 * cap : 65536;
			ios = realloc(ios, cap * sizeof(*ios));
			if (!ios) {
				perror("realloc");
				exit(1);
			}
		}
		ios[nr_ios].done = ms;
		ios[nr_ios].lat = ns / 1e6;
		ios[nr_ios].offset = off;
		nr_ios++;
	}
	fclose(f);
	return 0;
}

static double issued(const struct io *io)
{
	return io->done - io->lat;
}

/*
 * Whether @io was in flight within 100 ms of the life of a snapshot: from
 * the start of a "snap" window to the end of the first "drop" window after
 * it, or of the snap window itself when none follows.
 */
static int near_snapshot(const struct io *io, const struct win *wins,
			 size_t nw)
{
	size_t j, d;
	double end;

	for (j = 0; j < nw; j++) {
		if (strcmp(wins[j].kind, "snap"))
			continue;
		end = wins[j].end;
		for (d = j + 1; d < nw; d++)
			if (!strcmp(wins[d].kind, "drop")) {
				end = wins[d].end;
				break;
			}
		if (issued(io) <= end + 100 && io->done >= wins[j].start - 100)
			return 1;
	}
	return 0;
}

static int stall(const char *logpath, const char *winpath)
{
	struct win wins[4096];
	size_t nw = 0, i, j, n;
	double *v, p50;
	char line[256];
	FILE *f;

	if (read_log(logpath))
		return 1;
	f = fopen(winpath, "r");
	if (!f) {
		perror(winpath);
		return 1;
	}
	while (nw < 4096 && fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (sscanf(line, "%15s %llu %llu", wins[nw].kind, &s, &e) != 3)
			continue;
		wins[nw].start = s / 1e6;
		wins[nw].end = e / 1e6;
		wins[nw].stall = 0;
		nw++;
	}
	fclose(f);

	v = calloc(nr_ios + 1, sizeof(*v));
	if (!v)
		return 1;
	for (i = 0; i < nr_ios; i++)
		v[i] = ios[i].lat;
	p50 = quantile(v, nr_ios, 0.5);
	printf("ios %zu\np50 %.2f\np999 %.2f\nmax %.2f\n", nr_ios, p50,
	       quantile(v, nr_ios, 0.999), nr_ios ? v[nr_ios - 1] : 0);

	n = 0;
	for (i = 0; i < nr_ios; i++)
		if (!near_snapshot(&ios[i], wins, nw))
			v[n++] = ios[i].lat;
	printf("quiet_ios %zu\nquiet_p99 %.2f\n", n, quantile(v, n, 0.99));

	/* Completion times are whole ms: one ms of slack either side. */
	for (j = 0; j < nw; j++)
		for (i = 0; i < nr_ios; i++)
			if (issued(&ios[i]) <= wins[j].end + 1 &&
			    ios[i].done >= wins[j].start - 1 &&
			    ios[i].lat > wins[j].stall)
				wins[j].stall = ios[i].lat;

	for (j = 0; j < nw; j++) {
		const char *k = wins[j].kind;
		double dur[4096], st[4096];
		size_t m = 0, w;

		for (w = 0; w < j; w++)
			if (!strcmp(wins[w].kind, k))
				break;
		if (w < j)
			continue;	/* this kind is done */
		for (w = j; w < nw; w++) {
			if (strcmp(wins[w].kind, k))
				continue;
			dur[m] = wins[w].end - wins[w].start;
			st[m] = wins[w].stall;
			m++;
		}
		printf("%s_stall_med %.2f\n", k, quantile(st, m, 0.5));
		printf("%s_stall_max %.2f\n", k, st[m - 1]);
		printf("%s_excess_max %.2f\n", k, st[m - 1] - p50);
		printf("%s_dur_med %.2f\n", k, quantile(dur, m, 0.5));
		printf("%s_dur_max %.2f\n", k, dur[m - 1]);

		n = 0;
		for (i = 0; i < nr_ios; i++)
			for (w = j; w < nw; w++)
				if (!strcmp(wins[w].kind, k) &&
				    issued(&ios[i]) <= wins[w].end + 100 &&
				    ios[i].done >= wins[w].start - 100) {
					v[n++] = ios[i].lat;
					break;
				}
		printf("%s_p999 %.2f\n", k, quantile(v, n, 0.999));
	}
	for (j = 0; j < nw; j++)
		printf("w %s %.1f %.2f %.2f\n", wins[j].kind,
		       wins[j].start - wins[0].start,
		       wins[j].end - wins[j].start, wins[j].stall);
	free(v);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int chunks(const char *logpath, double start, double end,
		  uint64_t chunk)
{
	uint64_t *c;
	size_t i, n = 0, d = 0;

	if (read_log(logpath))
		return 1;
	c = calloc(nr_ios + 1, sizeof(*c));
	if (!c)
		return 1;
	for (i = 0; i < nr_ios; i++)
		if (issued(&ios[i]) >= start && ios[i].done <= end)
			c[n++] = ios[i].offset / chunk;
	qsort(c, n, sizeof(*c), cmp_u64);
	for (i = 0; i < n; i++)
		if (!i || c[i] != c[i - 1])
			d++;
	printf("writes %zu\nchunks %zu\n", n, d);
	free(c);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "stall"))
		return stall(argv[2], argv[3]);
	if (argc == 6 && !strcmp(argv[1], "chunks"))
		return chunks(argv[2], strtoull(argv[3], NULL, 10) / 1e6,
			      strtoull(argv[4], NULL, 10) / 1e6,
			      strtoull(argv[5], NULL, 10));
	fprintf(stderr, "usage: latwin stall LATLOG WINDOWS\n"
		"       latwin chunks LATLOG START_NS END_NS CHUNK_BYTES\n");
	return 2;
}
