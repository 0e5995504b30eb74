// SPDX-License-Identifier: GPL-2.0
/*
 * logreplay: read the log that dm-log-writes keeps and replay it onto a
 * device, as xfstests' replay-log does (no Debian package ships that tool).
 * The format is the kernel's, drivers/md/dm-log-writes.c: a super block at
 * byte 0, then per entry one block of the device's logical block size with
 * a struct log_write_entry (a mark's text after it), followed by the
 * entry's data (nr_sectors blocks; none for a discard).
 *
 *   logreplay list LOG              one line per entry:
 *                                   <index> <flags> <sector> <sectors> [mark]
 *                                   flags: F flush, U fua, D discard, M mark,
 *                                   - none
 *   logreplay replay LOG DEV FROM TO
 *                                   apply entries [FROM, TO) to DEV; a
 *                                   discard is replayed as zeroes
 *
 * Exit status 0, or 2 with a message naming the entry on a bad log or an
 * I/O error.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <unistd.h>

#define LOG_MAGIC	0x6a736677736872ULL
#define LOG_VERSION	1
#define FLAG_FLUSH	(1 << 0)
#define FLAG_FUA	(1 << 1)
#define FLAG_DISCARD	(1 << 2)
#define FLAG_MARK	(1 << 3)
#define MAX_BLOCK	65536
#define COPY_BYTES	(1 << 20)

struct log_super {
	uint64_t magic;
	uint64_t version;
	uint64_t nr_entries;
	uint32_t sectorsize;
} __attribute__((packed));

struct log_entry {
	uint64_t sector;
	uint64_t nr_sectors;
	uint64_t flags;
	uint64_t data_len;
} __attribute__((packed));

struct log {
	int fd;
	uint64_t size;		/* bytes */
	uint64_t nr_entries;
	uint32_t bs;		/* the logged device's logical block size */
	uint64_t pos;		/* byte offset of the next entry */
	uint64_t index;		/* its number */
	char *block;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("logreplay: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static uint64_t dev_bytes(int fd, const char *path)
{
	uint64_t bytes;

	if (ioctl(fd, BLKGETSIZE64, &bytes))
		die("%s: BLKGETSIZE64: %s", path, strerror(errno));
	return bytes;
}

static void read_at(int fd, void *buf, size_t len, uint64_t off, const char *what)
{
	ssize_t n = pread(fd, buf, len, off);

	if (n != (ssize_t)len)
		die("%s: short read at byte %" PRIu64 ": %s", what, off,
		    n < 0 ? strerror(errno) : "end of device");
}

static void log_open(struct log *log, const char *path)
{
	struct log_super super;

	log->fd = open(path, O_RDONLY);
	if (log->fd < 0)
		die("%s: %s", path, strerror(errno));
	log->size = dev_bytes(log->fd, path);
	read_at(log->fd, &super, sizeof(super), 0, path);
	if (le64toh(super.magic) != LOG_MAGIC || le64toh(super.version) != LOG_VERSION)
		die("%s: not a dm-log-writes log (magic or version)", path);
	log->bs = le32toh(super.sectorsize);
	if (log->bs < 512 || log->bs > MAX_BLOCK || (log->bs & (log->bs - 1)))
		die("%s: bad block size %u", path, log->bs);
	if (log->size < 2 * (uint64_t)log->bs)
		die("%s: too small for a log", path);
	log->nr_entries = le64toh(super.nr_entries);
	log->pos = log->bs;
	log->index = 0;
	log->block = malloc(log->bs);
	if (!log->block)
		die("out of memory");
}

/* The next entry's header into @e; its data starts at log->pos after it. */
static void log_next(struct log *log, struct log_entry *e)
{
	uint64_t data;

	if (log->pos > log->size - log->bs)
		die("entry %" PRIu64 ": past the end of the log", log->index);
	read_at(log->fd, log->block, log->bs, log->pos, "log");
	memcpy(e, log->block, sizeof(*e));
	e->sector = le64toh(e->sector);
	e->nr_sectors = le64toh(e->nr_sectors);
	e->flags = le64toh(e->flags);
	e->data_len = le64toh(e->data_len);
	if ((e->flags & FLAG_MARK) && e->data_len > log->bs - sizeof(*e))
		die("entry %" PRIu64 ": mark of %" PRIu64 " bytes", log->index, e->data_len);
	data = (e->flags & FLAG_DISCARD) ? 0 : e->nr_sectors;
	if (data > (log->size - log->pos) / log->bs - 1)
		die("entry %" PRIu64 ": %" PRIu64 " blocks of data past the end of the log",
		    log->index, data);
	log->pos += log->bs;
}

/* Step over the data of the entry just read (log_next). */
static void log_skip_data(struct log *log, const struct log_entry *e)
{
	if (!(e->flags & FLAG_DISCARD))
		log->pos += e->nr_sectors * log->bs;
	log->index++;
}

static int list_main(const char *path)
{
	struct log log;
	struct log_entry e;

	log_open(&log, path);
	while (log.index < log.nr_entries) {
		log_next(&log, &e);
		printf("%" PRIu64 " %s%s%s%s%s %" PRIu64 " %" PRIu64, log.index,
		       e.flags & FLAG_FLUSH ? "F" : "", e.flags & FLAG_FUA ? "U" : "",
		       e.flags & FLAG_DISCARD ? "D" : "", e.flags & FLAG_MARK ? "M" : "",
		       e.flags & (FLAG_FLUSH | FLAG_FUA | FLAG_DISCARD | FLAG_MARK) ? "" : "-",
		       e.sector, e.nr_sectors);
		if (e.flags & FLAG_MARK)
			printf(" %.*s", (int)e.data_len, log.block + sizeof(e));
		putchar('\n');
		log_skip_data(&log, &e);
	}
	return 0;
}

/* Write @e's data, or zeroes for a discard, to @dev. */
static void apply(struct log *log, const struct log_entry *e, int dev, uint64_t dev_size,
		  char *buf)
{
	uint64_t left = e->nr_sectors * log->bs;
	uint64_t to = e->sector * log->bs;
	size_t n;

	if (e->nr_sectors > dev_size / log->bs || e->sector > dev_size / log->bs - e->nr_sectors)
		die("entry %" PRIu64 ": blocks %" PRIu64 "+%" PRIu64 " are past the device",
		    log->index, e->sector, e->nr_sectors);
	if (e->flags & FLAG_DISCARD)
		memset(buf, 0, COPY_BYTES);
	while (left) {
		n = left < COPY_BYTES ? left : COPY_BYTES;
		if (!(e->flags & FLAG_DISCARD)) {
			read_at(log->fd, buf, n, log->pos, "log");
			log->pos += n;
		}
		if (pwrite(dev, buf, n, to) != (ssize_t)n)
			die("entry %" PRIu64 ": write at byte %" PRIu64 ": %s", log->index, to,
			    strerror(errno));
		to += n;
		left -= n;
	}
	log->index++;
}

static uint64_t number(const char *s, const char *what)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		die("%s: '%s' is not a number", what, s);
	return v;
}

static int replay_main(const char *log_path, const char *dev_path, uint64_t from,
		       uint64_t to)
{
	struct log log;
	struct log_entry e;
	uint64_t dev_size;
	char *buf;
	int dev;

	log_open(&log, log_path);
	if (from > to || to > log.nr_entries)
		die("entries [%" PRIu64 ", %" PRIu64 ") are not within the log's %" PRIu64,
		    from, to, log.nr_entries);
	dev = open(dev_path, O_WRONLY);
	if (dev < 0)
		die("%s: %s", dev_path, strerror(errno));
	dev_size = dev_bytes(dev, dev_path);
	buf = malloc(COPY_BYTES);
	if (!buf)
		die("out of memory");
	while (log.index < to) {
		log_next(&log, &e);
		if (log.index < from || (e.flags & FLAG_MARK) || !e.nr_sectors)
			log_skip_data(&log, &e);
		else
			apply(&log, &e, dev, dev_size, buf);
	}
	if (fsync(dev))
		die("%s: fsync: %s", dev_path, strerror(errno));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "list"))
		return list_main(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "replay"))
		return replay_main(argv[2], argv[3], number(argv[4], "FROM"),
				   number(argv[5], "TO"));
	fprintf(stderr, "usage: logreplay list LOG\n"
		"       logreplay replay LOG DEV FROM TO\n");
	return 2;
}
