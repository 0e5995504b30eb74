// SPDX-License-Identifier: GPL-2.0
/*
 * cowlimit: what the disks allow a copy-on-write first write, for make bench
 * (bench/vm-bench.sh). A first write needs three I/Os, one after the other:
 * read its chunk from the origin, write that chunk to the store, write the
 * 4 KiB itself to the origin. DEPTH workers each run that chain on random
 * chunks, with no snapshot logic at all, so the chains of different writes
 * overlap as they do at iodepth DEPTH under the real path.
 *
 *   cowlimit ORIGIN STORE CHUNK_BYTES SECONDS DEPTH
 *
 * Prints "chains_per_s <n>": chains completed a second. O_DIRECT; both
 * devices are written (the bench's scratch devices). Exit 0, 1 on an I/O
 * error, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define WRITE_BYTES	4096
#define MAX_DEPTH	64

struct target {
	int origin, store;
	uint64_t chunk, origin_chunks, store_chunks;
};

struct worker {
	const struct target *t;
	pthread_t thread;
	uint64_t rng;
	uint64_t chains;
	int error;
};

static atomic_bool stop;

static uint64_t next_random(uint64_t *s)
{
	/* xorshift64 */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int full_io(int fd, void *buf, size_t len, uint64_t off, int write)
{
	ssize_t n = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);

	if (n == (ssize_t)len)
		return 0;
	return n < 0 ? errno : EIO;
}

/* One first write's three I/Os, in their order. */
static int chain(struct worker *w, void *buf)
{
	const struct target *t = w->t;
	uint64_t c = next_random(&w->rng) % t->origin_chunks;
	uint64_t slot = next_random(&w->rng) % t->store_chunks;
	uint64_t within = next_random(&w->rng) % (t->chunk / WRITE_BYTES);

	return full_io(t->origin, buf, t->chunk, c * t->chunk, 0) ?:
	       full_io(t->store, buf, t->chunk, slot * t->chunk, 1) ?:
	       full_io(t->origin, buf, WRITE_BYTES,
		       c * t->chunk + within * WRITE_BYTES, 1);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	void *buf;

	w->error = posix_memalign(&buf, 4096, w->t->chunk);
	if (w->error)
		return NULL;
	memset(buf, 0xa5, w->t->chunk);
	while (!atomic_load(&stop) && !w->error) {
		w->error = chain(w, buf);
		if (!w->error)
			w->chains++;
	}
	free(buf);
	return NULL;
}

/* A block device, or a regular file (to try it out of the VM). */
static int open_device(const char *path, uint64_t chunk, uint64_t *chunks)
{
	uint64_t bytes;
	struct stat st;
	int fd = open(path, O_RDWR | O_DIRECT);

	if (fd < 0 || fstat(fd, &st)) {
		perror(path);
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		bytes = st.st_size;
	} else if (ioctl(fd, BLKGETSIZE64, &bytes)) {
		perror(path);
		return -1;
	}
	*chunks = bytes / chunk;
	if (!*chunks) {
		fprintf(stderr, "%s: smaller than one chunk\n", path);
		return -1;
	}
	return fd;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct worker workers[MAX_DEPTH] = {};
	struct target t;
	uint64_t chains = 0;
	double start, seconds;
	int depth, i, error = 0;

	if (argc != 6) {
		fprintf(stderr, "usage: cowlimit ORIGIN STORE CHUNK_BYTES SECONDS DEPTH\n");
		return 2;
	}
	t.chunk = strtoull(argv[3], NULL, 0);
	seconds = atof(argv[4]);
	depth = atoi(argv[5]);
	if (t.chunk < WRITE_BYTES || t.chunk % WRITE_BYTES || seconds <= 0 ||
	    depth < 1 || depth > MAX_DEPTH) {
		fprintf(stderr, "cowlimit: CHUNK_BYTES a multiple of 4096, SECONDS > 0, DEPTH 1..%d\n",
			MAX_DEPTH);
		return 2;
	}
	t.origin = open_device(argv[1], t.chunk, &t.origin_chunks);
	t.store = open_device(argv[2], t.chunk, &t.store_chunks);
	if (t.origin < 0 || t.store < 0)
		return 2;

	start = now();
	for (i = 0; i < depth; i++) {
		workers[i].t = &t;
		workers[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1);
		if (pthread_create(&workers[i].thread, NULL, work, &workers[i])) {
			fprintf(stderr, "cowlimit: cannot start worker %d\n", i);
			atomic_store(&stop, true);
			depth = i;
			error = 1;
			break;
		}
	}
	while (!error && now() - start < seconds)
		usleep(10000);
	atomic_store(&stop, true);
	for (i = 0; i < depth; i++) {
		pthread_join(workers[i].thread, NULL);
		chains += workers[i].chains;
		if (workers[i].error) {
			fprintf(stderr, "cowlimit: worker %d: %s\n", i,
				strerror(workers[i].error));
			error = 1;
		}
	}
	if (error)
		return 1;
	printf("chains_per_s %.0f\n", chains / (now() - start));
	return 0;
}
