// SPDX-License-Identifier: GPL-2.0
/*
 * seqwriter: prove the commit barrier's prefix property under load.
 *
 *   seqwriter [-t threads] [-n snaps] [-i interval_ms] [-b blocks]
 *             [-s gap_ms] [-l] VOL [VOL2]
 *
 * Writer threads write numbered 4 KiB records with O_DIRECT to the amber
 * device /dev/mapper/VOL, one at a time each: thread T writes its record S
 * to block T * blocks + S % blocks, so a block always holds the newest
 * record written there. With VOL2, a thread writes record S to VOL2 only
 * after VOL acknowledged it: record S on VOL2 depends on record S on VOL.
 *
 * The threads' regions are zeroed first, through the device.
 * The main thread raises a barrier over all volumes at once with
 * AMBER_IOC_SNAP, reads each view (/dev/mapper/VOL-view) while the writers
 * go on, and checks, for every thread:
 *   - the view holds exactly records 0..K of the thread for one K, each in
 *     its block, nothing newer and no hole (the prefix property);
 *   - every record acknowledged before the barrier was raised is there;
 *   - no record submitted after the barrier returned is there;
 *   - with VOL2: K(VOL2) <= K(VOL), a dependent record never without the
 *     record it depends on.
 * then drops the snapshots and does it again. With -s the volumes get one
 * barrier each, gap_ms apart, instead of one over both: the dependency
 * check must then catch the torn pair (this proves it can fail). With -l
 * the checks read the live volumes instead of their views, once every
 * writer has had a record submitted after the barrier acknowledged: the
 * check must then fail (this proves it can).
 * Exit status 0 when every
 * snapshot passed, 1 on a violation (each is printed), 2 on an error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "uapi/amber.h"

#define BLOCK		4096
#define MAGIC		0x51455257524542ULL	/* "BERWREQ" */
#define MAX_THREADS	16
#define MAX_VOLS	2

struct record {
	uint64_t magic;
	uint32_t thread;
	uint32_t vol;
	int64_t seq;
	uint64_t check;
};

struct writer {
	pthread_t tid;
	unsigned int id;
	_Atomic int64_t issued;		/* highest record submitted */
	_Atomic int64_t acked;		/* highest record acknowledged on all */
};

static const char *names[MAX_VOLS];
static int origin_fd[MAX_VOLS];
static unsigned int nr_vols, nr_threads = 4, nr_snaps = 20;
static unsigned int interval_ms = 200;
static int separate_gap_ms = -1;	/* -s: one barrier per volume */
static bool read_live;			/* -l: the volume, not its view */
static int64_t blocks = 256;		/* per thread */
static struct writer writers[MAX_THREADS];
static atomic_bool stop;

static void die(const char *what)
{
	fprintf(stderr, "seqwriter: %s: %s\n", what, strerror(errno));
	exit(2);
}

static uint64_t record_check(const struct record *r)
{
	return r->magic ^ ((uint64_t)r->thread << 32 | r->vol) ^
	       (uint64_t)r->seq * 0x9e3779b97f4a7c15ULL;
}

static off_t block_offset(unsigned int thread, int64_t seq)
{
	return ((off_t)thread * blocks + seq % blocks) * BLOCK;
}

static void write_record(int fd, void *buf, unsigned int thread,
			 unsigned int vol, int64_t seq)
{
	struct record *r = buf;

	memset(buf, 0, BLOCK);
	r->magic = MAGIC;
	r->thread = thread;
	r->vol = vol;
	r->seq = seq;
	r->check = record_check(r);
	if (pwrite(fd, buf, BLOCK, block_offset(thread, seq)) != BLOCK)
		die("write");
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	unsigned int vol;
	int64_t seq;
	void *buf;

	if (posix_memalign(&buf, BLOCK, BLOCK))
		die("memalign");
	for (seq = 0; !atomic_load(&stop); seq++) {
		atomic_store(&w->issued, seq);
		for (vol = 0; vol < nr_vols; vol++)
			write_record(origin_fd[vol], buf, w->id, vol, seq);
		atomic_store(&w->acked, seq);
	}
	free(buf);
	return NULL;
}

static uint32_t encode_dev(dev_t dev)
{
	unsigned int maj = major(dev), min = minor(dev);

	return (min & 0xff) | (maj << 8) | ((min & ~0xffU) << 12);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void snap(int ctl, const uint32_t *devs, unsigned int count)
{
	uint64_t epochs[MAX_VOLS];
	struct amber_ioc_snap req = {
		.count = count,
		.devs = (uintptr_t)devs,
		.epochs = (uintptr_t)epochs,
	};

	if (ioctl(ctl, AMBER_IOC_SNAP, &req))
		die("AMBER_IOC_SNAP");
}

static void raise_barrier(void)
{
	uint32_t devs[MAX_VOLS];
	struct stat st;
	unsigned int i;
	int ctl;

	for (i = 0; i < nr_vols; i++) {
		if (fstat(origin_fd[i], &st))
			die("stat");
		devs[i] = encode_dev(st.st_rdev);
	}
	ctl = open("/dev/" AMBER_CONTROL_NAME, O_RDWR);
	if (ctl < 0)
		die("/dev/" AMBER_CONTROL_NAME);
	if (separate_gap_ms < 0) {
		snap(ctl, devs, nr_vols);
	} else {
		for (i = 0; i < nr_vols; i++) {
			if (i)
				sleep_ms(separate_gap_ms);
			snap(ctl, &devs[i], 1);
		}
	}
	close(ctl);
}

static void drop(unsigned int vol)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "dmsetup message %s 0 drop", names[vol]);
	if (system(cmd))
		die("dmsetup message drop");
}

/* The newest record of @thread the view holds at @seq's block, or -1. */
static int64_t view_record(const char *base, unsigned int thread,
			   unsigned int vol, int64_t b, int *bad)
{
	const struct record *r = (const void *)(base + b * BLOCK);

	if (r->magic == 0 && r->seq == 0 && r->check == 0)
		return -1;
	if (r->magic != MAGIC || r->check != record_check(r) ||
	    r->thread != thread || r->vol != vol || r->seq % blocks != b) {
		printf("torn or foreign record in thread %u block %lld\n",
		       thread, (long long)b);
		*bad = 1;
		return -1;
	}
	return r->seq;
}

/*
 * Check one thread's region of one view; return K, the newest record in
 * it, or -2 on a violation.
 */
static int64_t check_region(const char *region, unsigned int thread,
			    unsigned int vol)
{
	int64_t k = -1, b, got, want;
	int bad = 0;

	for (b = 0; b < blocks; b++) {
		got = view_record(region, thread, vol, b, &bad);
		if (got > k)
			k = got;
	}
	for (b = 0; b < blocks && !bad; b++) {
		got = view_record(region, thread, vol, b, &bad);
		/* The newest record <= k that lands in block b. */
		want = k - ((k % blocks - b + blocks) % blocks);
		if (want < 0)
			want = -1;
		if (got != want) {
			printf("%s thread %u block %lld: record %lld, expected %lld (newest %lld): not a prefix\n",
			       names[vol], thread, (long long)b, (long long)got,
			       (long long)want, (long long)k);
			bad = 1;
		}
	}
	return bad ? -2 : k;
}

static void *read_view(unsigned int vol)
{
	size_t len = (size_t)nr_threads * blocks * BLOCK;
	char path[256];
	void *buf;
	size_t done = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/dev/mapper/%s%s", names[vol],
		 read_live ? "" : "-view");
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		die(path);
	if (posix_memalign(&buf, BLOCK, len))
		die("memalign");
	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, done);
		if (n <= 0)
			die("read view");
		done += n;
	}
	close(fd);
	return buf;
}

static int check_snapshot(unsigned int round, const int64_t *acked,
			  const int64_t *issued)
{
	int64_t k[MAX_VOLS][MAX_THREADS];
	unsigned int vol, t;
	int failed = 0;
	char *view;

	for (vol = 0; vol < nr_vols; vol++) {
		view = read_view(vol);
		for (t = 0; t < nr_threads; t++) {
			k[vol][t] = check_region(view + (size_t)t * blocks * BLOCK,
						 t, vol);
			if (k[vol][t] == -2) {
				failed = 1;
				continue;
			}
			if (k[vol][t] < acked[t] || k[vol][t] >= issued[t]) {
				printf("round %u %s thread %u: view ends at record %lld, acknowledged before the barrier %lld, submitted after %lld\n",
				       round, names[vol], t, (long long)k[vol][t],
				       (long long)acked[t], (long long)issued[t]);
				failed = 1;
			}
		}
		free(view);
	}
	for (t = 0; nr_vols == 2 && t < nr_threads; t++) {
		if (k[1][t] > k[0][t]) {
			printf("round %u thread %u: %s holds record %lld but %s only %lld: dependent write without its cause\n",
			       round, t, names[1], (long long)k[1][t], names[0],
			       (long long)k[0][t]);
			failed = 1;
		}
	}
	return failed;
}

/*
 * -l: wait until every writer has had a record submitted after the barrier
 * acknowledged, so the live volume certainly holds one and the check must
 * fail, however slowly the writers run (copy-outs, a debug kernel).
 */
static void wait_for_acks(const int64_t *issued)
{
	unsigned int t;

	for (t = 0; t < nr_threads; t++)
		while (atomic_load(&writers[t].acked) < issued[t])
			sleep_ms(1);
}

static int run_rounds(void)
{
	int64_t acked[MAX_THREADS], issued[MAX_THREADS];
	unsigned int round, t, vol;
	int failed = 0;

	for (round = 0; round < nr_snaps; round++) {
		sleep_ms(interval_ms);
		for (t = 0; t < nr_threads; t++)
			acked[t] = atomic_load(&writers[t].acked);
		raise_barrier();
		/* A record submitted from now on must not be in the view. */
		for (t = 0; t < nr_threads; t++)
			issued[t] = atomic_load(&writers[t].issued) + 1;
		if (read_live)
			wait_for_acks(issued);
		failed |= check_snapshot(round, acked, issued);
		for (vol = 0; vol < nr_vols; vol++)
			drop(vol);
	}
	return failed;
}

static void parse_args(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "t:n:i:b:s:l")) != -1) {
		switch (opt) {
		case 't':
			nr_threads = atoi(optarg);
			break;
		case 'n':
			nr_snaps = atoi(optarg);
			break;
		case 'i':
			interval_ms = atoi(optarg);
			break;
		case 'b':
			blocks = atoll(optarg);
			break;
		case 's':
			separate_gap_ms = atoi(optarg);
			break;
		case 'l':
			read_live = true;
			break;
		default:
			goto usage;
		}
	}
	nr_vols = argc - optind;
	if (nr_vols < 1 || nr_vols > MAX_VOLS || nr_threads < 1 ||
	    nr_threads > MAX_THREADS || blocks < 1 || nr_snaps < 1)
		goto usage;
	names[0] = argv[optind];
	names[1] = nr_vols == 2 ? argv[optind + 1] : NULL;
	return;
usage:
	fprintf(stderr, "usage: seqwriter [-t threads<=16] [-n snaps] [-i interval_ms] [-b blocks] [-s gap_ms] [-l] VOL [VOL2]\n");
	exit(2);
}

static void zero_regions(int fd)
{
	size_t len = (size_t)nr_threads * blocks * BLOCK;
	void *buf;

	if (posix_memalign(&buf, BLOCK, len))
		die("memalign");
	memset(buf, 0, len);
	if (pwrite(fd, buf, len, 0) != (ssize_t)len)
		die("zero regions");
	free(buf);
}

int main(int argc, char **argv)
{
	char path[256];
	unsigned int i;
	int failed;

	parse_args(argc, argv);
	for (i = 0; i < nr_vols; i++) {
		snprintf(path, sizeof(path), "/dev/mapper/%s", names[i]);
		origin_fd[i] = open(path, O_RDWR | O_DIRECT);
		if (origin_fd[i] < 0)
			die(path);
		zero_regions(origin_fd[i]);
	}
	for (i = 0; i < nr_threads; i++) {
		writers[i].id = i;
		atomic_store(&writers[i].issued, -1);
		atomic_store(&writers[i].acked, -1);
		if (pthread_create(&writers[i].tid, NULL, writer_main, &writers[i]))
			die("pthread_create");
	}
	failed = run_rounds();
	atomic_store(&stop, true);
	for (i = 0; i < nr_threads; i++)
		pthread_join(writers[i].tid, NULL);
	printf("seqwriter: %u snapshot(s) of %u volume(s), %u writers: %s\n",
	       nr_snaps, nr_vols, nr_threads, failed ? "FAILED" : "ok");
	return failed;
}
