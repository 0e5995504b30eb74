// SPDX-License-Identifier: GPL-2.0
/*
 * blkop: block operations the usual tools don't give a test.
 *
 *   blkop nowait  DEV OFFSET         one 4 KiB O_DIRECT write, RWF_NOWAIT
 *   blkop discard DEV OFFSET LENGTH  BLKDISCARD (no exclusive open)
 *   blkop zeroout DEV OFFSET LENGTH  BLKZEROOUT (WRITE ZEROES)
 *
 * nowait prints "ok", or "again" when the write would have had to wait
 * (EAGAIN); both exit 0. Any other error exits 1, bad usage 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

static int nowait_write(int fd, uint64_t offset)
{
	struct iovec iov = { .iov_len = 4096 };
	ssize_t n;

	if (posix_memalign(&iov.iov_base, 4096, 4096))
		return 1;
	memset(iov.iov_base, 0x5a, 4096);
	n = pwritev2(fd, &iov, 1, offset, RWF_NOWAIT);
	if (n == 4096) {
		puts("ok");
		return 0;
	}
	if (n < 0 && errno == EAGAIN) {
		puts("again");
		return 0;
	}
	perror("pwritev2");
	return 1;
}

static int range_ioctl(int fd, unsigned long op, uint64_t offset,
		       uint64_t length)
{
	uint64_t range[2] = { offset, length };

	if (ioctl(fd, op, range)) {
		perror(op == BLKDISCARD ? "BLKDISCARD" : "BLKZEROOUT");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t offset, length;
	int fd;

	if (argc < 4)
		goto usage;
	fd = open(argv[2], O_RDWR | O_DIRECT);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	offset = strtoull(argv[3], NULL, 0);
	if (!strcmp(argv[1], "nowait") && argc == 4)
		return nowait_write(fd, offset);
	if (argc != 5)
		goto usage;
	length = strtoull(argv[4], NULL, 0);
	if (!strcmp(argv[1], "discard"))
		return range_ioctl(fd, BLKDISCARD, offset, length);
	if (!strcmp(argv[1], "zeroout"))
		return range_ioctl(fd, BLKZEROOUT, offset, length);
usage:
	fprintf(stderr, "usage: blkop nowait DEV OFFSET | discard|zeroout DEV OFFSET LENGTH\n");
	return 2;
}
