// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: any bytes as a backup, read front to back by the
 * streaming reader and at random through the trailer index. Built with
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION: checksums never fail, so the
 * fuzzer reaches the parsing they guard (lib/checks.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bkp.h"

static uint8_t chunk[BKP_MAX_CHUNK];

static void read_stream(int fd)
{
	struct bkp_reader *r = bkp_reader_open(fd);
	struct bkp_record rec;

	if (!r)
		return;
	while (bkp_reader_next(r, &rec) > 0)
		;
	bkp_reader_free(r);
}

static void read_at_random(int fd)
{
	struct bkp_summary summary;
	struct bkp_index *x;
	struct bkp_info info;
	uint64_t c, step;

	if (bkp_peek(fd, &info, &summary))
		return;
	x = bkp_index_load(fd, &info, &summary);
	if (!x)
		return;
	step = info.geo.nr_chunks / 16 + 1;
	for (c = 0; c < info.geo.nr_chunks; c += step)
		bkp_index_read(x, c, chunk);
	bkp_index_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;

	if (fd < 0 && (fd = memfd_create("backup", 0)) < 0)
		abort();
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET))
		abort();
	read_stream(fd);
	read_at_random(fd);
	return 0;
}
