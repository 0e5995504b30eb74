// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

volatile sig_atomic_t interrupted;

bool is_power_of_2(uint64_t v)
{
	return v && !(v & (v - 1));
}

bool all_zero(const void *buf, size_t len)
{
	static const uint8_t zeros[64];
	const uint8_t *p = buf;

	if (len <= sizeof(zeros))
		return !memcmp(p, zeros, len);
	return !memcmp(p, zeros, sizeof(zeros)) &&
	       !memcmp(p, p + sizeof(zeros), len - sizeof(zeros));
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return fail(AMBER_EUSAGE, "'%s' is not a number", s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end)
		return fail(AMBER_EUSAGE, "'%s' is not a number", s);
	if (errno || v < min || v > max)
		return fail(AMBER_EUSAGE, "%s is out of range %" PRIu64 "..%" PRIu64,
			    s, min, max);
	*out = v;
	return 0;
}

static int unit_shift(const char *unit)
{
	static const char letters[] = "KMGT";
	char letter = unit[0] & ~0x20;	/* upper case */
	const char *l;

	if (!*unit || !strcmp(unit, "B"))
		return 0;
	l = letter ? strchr(letters, letter) : NULL;
	if (!l || (unit[1] && strcmp(unit + 1, "iB") && strcmp(unit + 1, "B")))
		return -1;
	return 10 * (int)(l - letters + 1);
}

int parse_size(const char *s, uint64_t *bytes)
{
	unsigned long long v;
	char *end;
	int shift;

	if (*s < '0' || *s > '9')
		return fail(AMBER_EUSAGE, "'%s' is not a size", s);
	errno = 0;
	v = strtoull(s, &end, 10);
	shift = unit_shift(end);
	if (errno || shift < 0)
		return fail(AMBER_EUSAGE, "'%s' is not a size (use e.g. 65536, 64K, 1M)", s);
	if (shift && v > (UINT64_MAX >> shift))
		return fail(AMBER_EUSAGE, "'%s' is too large", s);
	*bytes = (uint64_t)v << shift;
	return 0;
}

char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = bytes;
	unsigned int i = 0;

	if (bytes < KiB) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	for (v /= 1024; v >= 1024 && i + 1 < ARRAY_SIZE(units); i++)
		v /= 1024;
	snprintf(buf, len, "%.1f %s", v, units[i]);
	return buf;
}

char *format_hex(const uint8_t *bytes, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", bytes[i]);
	out[2 * len] = 0;
	return out;
}

char *format_uuid(const uint8_t uuid[16], char *out)
{
	char hex[33];

	format_hex(uuid, 16, hex);
	sprintf(out, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
		hex + 16, hex + 20);
	return out;
}

char *format_time(int64_t seconds, char *out, size_t len)
{
	time_t t = seconds;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "@%" PRId64, seconds);
	return out;
}

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

void catch_interrupts(void)
{
	struct sigaction sa = { .sa_handler = on_interrupt };	/* no SA_RESTART */

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void stop_with_parent(pid_t parent)
{
	/* The check after the prctl closes the race with an early exit. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != parent)
		_exit(1);
}

unsigned int default_workers(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return MIN(MAX(cpus, 1), 16);
}

int start_thread(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		return 0;
	errno = err;
	return fail_errno(AMBER_ESYS, "cannot start a thread");
}

/* After a failed call: true to retry it, false with the error recorded. */
static bool retry(const char *what)
{
	if (errno == EINTR && !interrupted)
		return true;
	if (errno == EINTR)
		fail(AMBER_ESYS, "interrupted");
	else
		fail_errno(AMBER_ESYS, "%s", what);
	return false;
}

ssize_t read_upto(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (uint8_t *)buf + done, len - done);
		if (n == 0)
			break;
		if (n < 0 && retry("read"))
			continue;
		if (n < 0)
			return -1;
		done += n;
	}
	return done;
}

int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, (const uint8_t *)buf + done, len - done);
		if (n < 0 && retry("write"))
			continue;
		if (n < 0)
			return -1;
		done += n;
	}
	return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t offset)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (uint8_t *)buf + done, len - done, offset + done);
		if (n == 0)
			return fail(AMBER_ESYS, "read at offset %" PRIu64 ": unexpected end",
				    offset + done);
		if (n < 0 && retry("read"))
			continue;
		if (n < 0)
			return error_prefix("offset %" PRIu64 ": ", offset + done);
		done += n;
	}
	return 0;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t offset)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, (const uint8_t *)buf + done, len - done, offset + done);
		if (n < 0 && retry("write"))
			continue;
		if (n < 0)
			return error_prefix("offset %" PRIu64 ": ", offset + done);
		done += n;
	}
	return 0;
}

bool fd_is_regular(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISREG(st.st_mode);
}

bool fd_is_block(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISBLK(st.st_mode);
}

/* An existing device to write a backup to: never a file, FIFO or link. */
static int open_output_device(const char *path)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: a FIFO planted at @path must not hang the open. */
	fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ?
		       fail(AMBER_ESYS, "%s is a symbolic link: name the file or device itself",
			    path) :
		       fail_errno(AMBER_ESYS, "%s", path);
	if (fstat(fd, &st) || (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode)) ||
	    fcntl(fd, F_SETFL, 0)) {
		close(fd);
		return fail(AMBER_ESYS, "%s exists: refusing to overwrite it", path);
	}
	return fd;
}

int open_output(const char *path, bool devices, bool *created)
{
	int fd;

	*created = false;
	if (!strcmp(path, "-")) {
		if (isatty(STDOUT_FILENO))
			return fail(AMBER_EUSAGE, "refusing to write a backup to a terminal");
		return STDOUT_FILENO;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		*created = true;
		/* The umask may only take bits away, but may take the owner's. */
		if (fchmod(fd, 0600)) {
			fail_errno(AMBER_ESYS, "%s: chmod 0600", path);
			close(fd);
			unlink(path);
			*created = false;
			return -1;
		}
		return fd;
	}
	if (errno != EEXIST)
		return fail_errno(AMBER_ESYS, "%s", path);
	if (!devices)
		return fail(AMBER_ESYS, "%s exists: refusing to overwrite it", path);
	return open_output_device(path);
}

/* One directory of check_trusted_dir(): @leaf is the one named. */
static int check_one_dir(const char *dir, bool leaf)
{
	struct stat st;

	if (lstat(dir, &st))
		return fail_errno(AMBER_ESYS, "%s", dir);
	if (!S_ISDIR(st.st_mode))
		return fail(AMBER_ESYS, "%s is not a directory%s", dir,
			    S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
	if (st.st_uid && st.st_uid != geteuid())
		return fail(AMBER_ESYS, "%s is owned by uid %u, not by root", dir,
			    (unsigned int)st.st_uid);
	if ((st.st_mode & 022) && (leaf || !(st.st_mode & S_ISVTX)))
		return fail(AMBER_ESYS, "%s is writable by its group or by everyone (mode %04o)",
			    dir, (unsigned int)(st.st_mode & 07777));
	return 0;
}

int check_trusted_dir(const char *dir)
{
	char path[PATH_MAX], *slash;
	bool leaf = true;

	if (dir[0] != '/')
		return fail(AMBER_EUSAGE, "%s: not an absolute path", dir);
	/* As sshd does: the directories that count are those the links lead to. */
	if (!realpath(dir, path))
		return fail_errno(AMBER_ESYS, "%s", dir);
	for (;;) {
		slash = strrchr(path, '/');
		if (slash[1] && check_one_dir(path, leaf))
			return -1;
		leaf = false;
		if (slash == path)
			return check_one_dir("/", false);
		*slash = 0;
	}
}

int fd_size(int fd, uint64_t *bytes)
{
	struct stat st;

	if (fstat(fd, &st))
		return fail_errno(AMBER_ESYS, "stat");
	if (S_ISREG(st.st_mode)) {
		*bytes = st.st_size;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return fail(AMBER_ESYS, "not a block device or regular file");
	if (ioctl(fd, BLKGETSIZE64, bytes))
		return fail_errno(AMBER_ESYS, "BLKGETSIZE64");
	return 0;
}

static int write_zeros(int fd, uint64_t offset, uint64_t len)
{
	static const uint8_t zeros[64 * KiB];
	size_t n;

	for (; len; offset += n, len -= n) {
		n = MIN(len, sizeof(zeros));
		if (pwrite_full(fd, zeros, n, offset))
			return -1;
	}
	return 0;
}

int zero_range(int fd, uint64_t offset, uint64_t len)
{
	uint64_t range[2] = { offset, len };

	if (fd_is_block(fd) && !ioctl(fd, BLKZEROOUT, range))
		return 0;
	if (fd_is_regular(fd) &&
	    !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len))
		return 0;
	return write_zeros(fd, offset, len);
}

int sync_medium(int fd)
{
	if (!fd_is_regular(fd) && !fd_is_block(fd))
		return 0;
	if (fdatasync(fd))
		return fail_errno(AMBER_ESYS, "fdatasync");
	return 0;
}

int random_bytes(void *buf, size_t len)
{
	ssize_t n = getrandom(buf, len, 0);

	if (n != (ssize_t)len)
		return fail_errno(AMBER_ESYS, "getrandom");
	return 0;
}

void *alloc_aligned(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len)) {
		fail(AMBER_ESYS, "out of memory (%zu bytes)", len);
		return NULL;
	}
	return p;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t *bitmap_alloc(uint64_t bits)
{
	uint64_t *map = calloc(MAX(DIV_ROUND_UP(bits, 64), 1), sizeof(*map));

	if (!map)
		fail(AMBER_ESYS, "out of memory (bitmap of %" PRIu64 " bits)", bits);
	return map;
}

int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", dir);
	ret = fsync(fd);
	close(fd);
	return ret ? fail_errno(AMBER_ESYS, "fsync %s", dir) : 0;
}
