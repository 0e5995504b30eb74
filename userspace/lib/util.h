/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers: byte order, sizes, full reads and writes, bitmaps. */
#ifndef AMBER_UTIL_H
#define AMBER_UTIL_H

#include <endian.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define ROUND_UP(n, d)	(DIV_ROUND_UP(n, d) * (d))
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))

#define KiB	((uint64_t)1024)
#define MiB	(1024 * KiB)

/* Little endian fields in byte buffers, whatever the host order. */
static inline void put_le16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static inline void put_le32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void put_le64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static inline uint16_t get_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static inline uint32_t get_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t get_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

bool is_power_of_2(uint64_t v);
bool all_zero(const void *buf, size_t len);

/* "65536", "64K", "64KiB", "1M", "2G", "1T" (binary units) into bytes. */
int parse_size(const char *s, uint64_t *bytes);
/* A decimal number in [min, max]. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* "1.5 GiB", "512 B": fills @buf and returns it. */
char *format_size(uint64_t bytes, char *buf, size_t len);
/* Lower-case hex of @len bytes; @out holds 2 * len + 1. */
char *format_hex(const uint8_t *bytes, size_t len, char *out);
/* 8-4-4-4-12 form; @out holds 37. */
char *format_uuid(const uint8_t uuid[16], char *out);
/* ISO 8601 UTC; @out holds 21. */
char *format_time(int64_t seconds, char *out, size_t len);

/*
 * Set by SIGINT, SIGTERM and SIGHUP once catch_interrupts() ran. The I/O
 * helpers below stop with an "interrupted" error when it is set.
 */
extern volatile sig_atomic_t interrupted;
void catch_interrupts(void);

/*
 * In a child just forked from @parent: SIGTERM when @parent exits, so that
 * work it started stops (and cleans up) with it, even when it was killed
 * with SIGKILL. When @parent is gone already, _exit(1) at once.
 */
void stop_with_parent(pid_t parent);

/* Threads for CPU work: one per CPU online, 1 to 16. */
unsigned int default_workers(void);
/* Start @fn(@arg) in a thread that takes no signals: the caller sees them. */
int start_thread(pthread_t *thread, void *(*fn)(void *), void *arg);

/* Read until @len bytes or end of file; returns the count or -1. */
ssize_t read_upto(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, uint64_t offset);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t offset);

/* Size of a regular file or block device in bytes. */
/*
 * Open @path to write a backup to: a new file, created 0600 whatever the
 * umask (it holds a whole database); with @devices also an existing block
 * or character device (a tape); "-" is standard output unless it is a
 * terminal. Never an existing file, FIFO or symbolic link: nothing planted
 * at @path is written through. *@created: the caller made the file and
 * removes it if it gives up. Returns the fd, or -1 with the error set.
 */
int open_output(const char *path, bool devices, bool *created);
/*
 * Fails (AMBER_ESYS, naming the directory and why) unless @dir, with its
 * symbolic links resolved, and each directory above it is owned by root or
 * by us and writable by no one else, as sshd's StrictModes asks; a parent
 * with the sticky bit (/tmp) may be world-writable, since no one else can
 * rename or remove what is ours in it.
 */
int check_trusted_dir(const char *dir);
/* Make the names in @dir durable (after a create or rename in it). */
int sync_dir(const char *dir);
int fd_size(int fd, uint64_t *bytes);
bool fd_is_regular(int fd);
bool fd_is_block(int fd);
/* Make @len bytes at @offset read as zeros (hole, BLKZEROOUT or writes). */
int zero_range(int fd, uint64_t offset, uint64_t len);
/* fdatasync() where the medium has it (files, block devices). */
int sync_medium(int fd);

int random_bytes(void *buf, size_t len);
void *alloc_aligned(size_t len);	/* 4 KiB aligned, for O_DIRECT */
double now_seconds(void);		/* monotonic */

/* Bitmaps of 64-bit words. */
uint64_t *bitmap_alloc(uint64_t bits);	/* zeroed */
static inline bool bit_test(const uint64_t *map, uint64_t bit)
{
	return map[bit / 64] >> (bit % 64) & 1;
}
static inline void bit_set(uint64_t *map, uint64_t bit)
{
	map[bit / 64] |= 1ULL << (bit % 64);
}

#endif
