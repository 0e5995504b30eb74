// SPDX-License-Identifier: GPL-2.0
/*
 * amber restore --instant: the chain's image served over NBD (export.c) is
 * the source of a dm-clone device over the target, /dev/mapper/<name>.
 * dm-clone sends writes to the target, reads of regions it has not copied
 * to the source, and copies every region in the background, recording each
 * in its metadata before it serves it from the target (docs/DESIGN.md,
 * "Instant restore"). When all are copied, the server swaps the table for a
 * linear one over the target and ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "kernel.h"
#include "restore.h"
#include "export.h"
#include "util.h"

#define CLONE_TARGET		"clone"
#define METADATA_SUFFIX		"-meta"
#define METADATA_HEADER		4096	/* dm-clone formats a zeroed superblock */
/* The regions copied at once in the background, and the most in flight. */
#define HYDRATION_BATCH		8
#define HYDRATION_THRESHOLD	32

struct instant_restore {
	const struct instant *in;
	const struct bkp_info *tip;
	uint64_t sectors;		/* of the image */
	uint64_t region_sectors;	/* one chunk */
	uint64_t meta_sectors;		/* of a metadata area at the target's end */
	char meta[DM_NAME_MAX + 16];	/* its path */
	char meta_name[DM_NAME_MAX];	/* its dm name, "" when --metadata gave it */
	double started;			/* in the server: its first watch */
	uint64_t first_hydrated;	/* regions hydrated then */
};

/* Room for dm-clone's metadata: its superblock, space maps and bitset, thrice. */
static uint64_t metadata_sectors(uint64_t regions)
{
	uint64_t bytes = (4ULL << 20) + 3 * ((regions + 7) / 8);

	return (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20) / 512;
}

static int check_geometry(struct instant_restore *r)
{
	const struct geometry *g = &r->tip->geo;

	if (g->volume_bytes % 512)
		return fail(AMBER_EDATA, "the image is %" PRIu64 " bytes, not whole sectors",
			    g->volume_bytes);
	r->sectors = g->volume_bytes / 512;
	r->region_sectors = g->chunk_bytes / 512;
	if (r->region_sectors < 8 || r->region_sectors & (r->region_sectors - 1))
		return fail(AMBER_EUSAGE, "--instant needs chunks of at least 4 KiB and a power"
			    " of two (dm-clone's regions); this chain's are %" PRIu32 " bytes",
			    g->chunk_bytes);
	r->meta_sectors = metadata_sectors(g->nr_chunks);
	return 0;
}

/*
 * The target: not in use, large enough for the image (and the metadata
 * area at its end when --metadata is not given), holding no filesystem
 * unless --force or --resume.
 */
static int check_target(const struct instant_restore *r)
{
	const struct instant *in = r->in;
	uint64_t size, need = r->sectors * 512;
	int fd, ret;

	if (!in->metadata)
		need += r->meta_sectors * 512;
	fd = open(in->target, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", in->target);
	ret = fd_size(fd, &size) ? error_prefix("%s: ", in->target) : 0;
	if (!ret && size < need)
		ret = fail(AMBER_ESYS, "%s is %" PRIu64 " bytes; the image needs %" PRIu64
			   "%s", in->target, size, need, in->metadata ? "" :
			   " with the restore's metadata at its end (or give --metadata)");
	if (!ret && !fd_is_block(fd))
		ret = fail(AMBER_EUSAGE, "%s: --instant restores to a block device", in->target);
	if (!ret && !in->resume)
		ret = refuse_signature(fd, in->target, in->force);
	close(fd);
	return ret;
}

/* The metadata area: --metadata, or a linear device over the target's end. */
static int open_metadata(struct instant_restore *r)
{
	const struct instant *in = r->in;
	char params[4200];

	if (in->metadata) {
		snprintf(r->meta, sizeof(r->meta), "%s", in->metadata);
		return 0;
	}
	snprintf(r->meta_name, sizeof(r->meta_name), "%s%s", in->name, METADATA_SUFFIX);
	snprintf(r->meta, sizeof(r->meta), "/dev/mapper/%s", r->meta_name);
	if (dm_exists(r->meta_name))
		return 0;
	snprintf(params, sizeof(params), "%s %" PRIu64, in->target, r->sectors);
	return dm_create(r->meta_name, "linear", r->meta_sectors, params, false);
}

/*
 * A new restore zeroes the metadata's first block, so dm-clone formats it
 * with every region still to copy; --resume insists on finding one.
 */
static int prepare_metadata(const struct instant_restore *r)
{
	uint8_t block[METADATA_HEADER] = { 0 }, zero[METADATA_HEADER] = { 0 };
	int fd = open(r->meta, O_RDWR | O_CLOEXEC), ret;

	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", r->meta);
	if (r->in->resume) {
		ret = pread_full(fd, block, sizeof(block), 0);
		if (!ret && !memcmp(block, zero, sizeof(zero)))
			ret = fail(AMBER_EUSAGE, "%s records no instant restore to resume",
				   r->meta);
	} else {
		ret = pwrite_full(fd, zero, sizeof(zero), 0);
		if (!ret)
			ret = sync_medium(fd);
	}
	close(fd);
	return ret ? error_prefix("%s: ", r->meta) : 0;
}

static void clone_params(const struct instant_restore *r, const char *nbd, char *params,
			 size_t len)
{
	snprintf(params, len, "%s %s %s %" PRIu64 " 0 4 hydration_threshold %u"
		 " hydration_batch_size %u", r->meta, r->in->target, nbd, r->region_sectors,
		 HYDRATION_THRESHOLD, HYDRATION_BATCH);
}

/* In the server: the clone device on the NBD device, or its new source. */
static int instant_up(void *ctx, const char *nbd)
{
	const struct instant_restore *r = ctx;
	char params[8400];

	clone_params(r, nbd, params, sizeof(params));
	if (dm_exists(r->in->name))	/* --resume of a device whose server died */
		return dm_reload(r->in->name, CLONE_TARGET, r->sectors, params);
	return dm_create(r->in->name, CLONE_TARGET, r->sectors, params, false);
}

/*
 * dm-clone's status: <metadata block size> <used>/<total metadata blocks>
 * <region size> <hydrated>/<total regions> <hydrating regions> ...
 */
static int clone_progress(const char *name, uint64_t *hydrated, uint64_t *total)
{
	char status[1024];
	uint64_t sectors;

	if (dm_target_status(name, CLONE_TARGET, &sectors, status, sizeof(status)))
		return -1;
	if (sscanf(status, "%*u %*u/%*u %*u %" SCNu64 "/%" SCNu64, hydrated, total) != 2)
		return fail(AMBER_ESYS, "%s: dm-clone's status '%s' is not understood", name,
			    status);
	return 0;
}

/* All copied: the device becomes a linear one over the target. */
static int finish(const struct instant_restore *r)
{
	char params[4200];

	snprintf(params, sizeof(params), "%s 0", r->in->target);
	if (dm_reload(r->in->name, "linear", r->sectors, params))
		return -1;
	if (*r->meta_name && dm_remove(r->meta_name))
		return -1;
	fprintf(stderr, "restored: %s is a linear device over %s\n", r->in->name, r->in->target);
	return 0;
}

/* The status file amber status shows: progress, rate, time left, errors. */
static int write_status(struct instant_restore *r, const struct export_stats *stats,
			uint64_t hydrated, uint64_t total, const char *state)
{
	uint64_t region = r->region_sectors * 512, done = hydrated - r->first_hydrated;
	double elapsed = now_seconds() - r->started;
	double rate = elapsed > 0 ? done * region / elapsed : 0;
	json_t *eta = rate > 0 ? json_integer((total - hydrated) * region / rate) : json_null();

	return export_write_status(r->in->name, json_pack(
		"{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:o, s:I, s:I, s:I, s:s, s:I}",
		"name", r->in->name, "kind", "instant restore", "state", state,
		"target", r->in->target, "hydrated_regions", (json_int_t)hydrated,
		"total_regions", (json_int_t)total, "region_bytes", (json_int_t)region,
		"percent", total ? 100.0 * hydrated / total : 100.0,
		"rate_bytes_per_s", (json_int_t)rate, "eta_s", eta,
		"chunks_verified", (json_int_t)stats->chunks,
		"bytes_served", (json_int_t)stats->bytes, "read_errors", (json_int_t)stats->errors,
		"last_error", stats->last_error, "pid", (json_int_t)getpid()));
}

static int instant_watch(void *ctx, const struct export_stats *stats)
{
	struct instant_restore *r = ctx;
	uint64_t hydrated, total;

	if (!dm_exists(r->in->name)) {
		fprintf(stderr, "%s was removed: stopping (--resume continues)\n", r->in->name);
		return 1;
	}
	if (clone_progress(r->in->name, &hydrated, &total))
		return -1;
	if (!r->started) {
		r->started = now_seconds();
		r->first_hydrated = hydrated;
	}
	if (hydrated < total)
		return write_status(r, stats, hydrated, total, "restoring");
	if (finish(r) < 0)
		return -1;
	write_status(r, stats, hydrated, total, "restored");
	return 1;
}

static void report(const struct instant_restore *r)
{
	char uuid[37], size[32];

	printf("%s epoch %" PRIu64 " of volume %s (%s) to %s: /dev/mapper/%s is ready,"
	       " the rest is restored in the background (log: %s/%s.log)\n",
	       r->in->resume ? "resuming the instant restore of" : "instant restore of",
	       r->tip->epoch, format_uuid(r->tip->volume_uuid, uuid),
	       format_size(r->tip->geo.volume_bytes, size, sizeof(size)), r->in->target,
	       r->in->name, EXPORT_LOG_DIR, r->in->name);
}

int restore_instant(const struct chain *c, const struct instant *in)
{
	struct instant_restore r = { .in = in, .tip = chain_tip(c)->info };
	const struct export_ops ops = { .up = instant_up, .watch = instant_watch, .ctx = &r };
	bool live = dm_exists(in->name);

	if (live && !in->resume)
		return fail(AMBER_EUSAGE, "%s exists (--resume continues its restore)", in->name);
	if (check_geometry(&r) || kernel_load_target(CLONE_TARGET, "dm-clone") ||
	    (!live && check_target(&r)) || open_metadata(&r) || (!live && prepare_metadata(&r)))
		return -1;
	if (export_chain(c, in->name, &ops))
		return -1;
	report(&r);
	return 0;
}
