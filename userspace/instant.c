// SPDX-License-Identifier: GPL-2.0
/*
 * amber restore --instant: the chain's image served over NBD (export.c) is
 * the source of a dm-clone device over the target, /dev/mapper/<name>.
 * dm-clone sends writes to the target, reads of regions it has not copied
 * to the source, and copies every region in the background, recording each
 * in its metadata before it serves it from the target (docs/DESIGN.md,
 * "Instant restore"). When all are copied, the server swaps the table for a
 * linear one over the target and ends.
 *
 * The metadata area (the end of the target past the image, or --metadata)
 * starts with amber's record of what is being restored (the chain's tip:
 * volume, epoch, digest; the geometry), then dm-clone's metadata, which
 * <name>-meta maps. --resume goes on only where the record names the same
 * chain, and only over the same devices.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "export.h"
#include "kernel.h"
#include "restore.h"
#include "util.h"

#define CLONE_TARGET		"clone"
#define METADATA_SUFFIX		"-meta"
#define RECORD_SECTORS		8	/* amber's record, before dm-clone's metadata */
#define RECORD_MAGIC		"amber instant restore 1\n"
#define CLONE_HEADER		4096	/* dm-clone formats a zeroed superblock */
/* The regions copied at once in the background, and the most in flight. */
#define HYDRATION_BATCH		8
#define HYDRATION_THRESHOLD	32
/* Seconds without progress, with read errors, before the copy is stopped. */
#define STALL_SECONDS		60

struct instant_restore {
	const struct instant *in;
	const struct chain *chain;
	const struct bkp_info *tip;
	uint64_t sectors;		/* of the image */
	uint64_t region_sectors;	/* one chunk */
	uint64_t area_sectors;		/* the record and dm-clone's metadata */
	dev_t target, area, meta, nbd;	/* the devices, resolved once */
	char meta_name[DM_NAME_MAX];
	char record[512];		/* what the area's record must say */
	/* in the server */
	double started, progressed;	/* first watch, last progress */
	uint64_t first_hydrated, last_hydrated, errors_then;
	bool stopped;			/* the copy was stopped on errors */
};

/* Room for dm-clone's metadata: its superblock, space maps and bitset, thrice. */
static uint64_t area_sectors(uint64_t regions)
{
	uint64_t bytes = (4ULL << 20) + 3 * ((regions + 7) / 8);

	return (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20) / 512 + RECORD_SECTORS;
}

static int check_geometry(struct instant_restore *r)
{
	const struct geometry *g = &r->tip->geo;
	char uuid[37], digest[65];

	if (g->volume_bytes % 512)
		return fail(AMBER_EDATA, "the image is %" PRIu64 " bytes, not whole sectors",
			    g->volume_bytes);
	r->sectors = g->volume_bytes / 512;
	r->region_sectors = g->chunk_bytes / 512;
	if (r->region_sectors < 8 || r->region_sectors & (r->region_sectors - 1))
		return fail(AMBER_EUSAGE, "--instant needs chunks of at least 4 KiB and a power"
			    " of two (dm-clone's regions); this chain's are %" PRIu32 " bytes",
			    g->chunk_bytes);
	r->area_sectors = area_sectors(g->nr_chunks);
	snprintf(r->record, sizeof(r->record), RECORD_MAGIC "volume %s\nepoch %" PRIu64
		 "\ndigest %s\nchunk %" PRIu32 "\nbytes %" PRIu64 "\n",
		 format_uuid(r->tip->volume_uuid, uuid), r->tip->epoch,
		 format_hex(chain_tip(r->chain)->summary.digest, 32, digest), g->chunk_bytes,
		 g->volume_bytes);
	return 0;
}

/* @path's device number: a block device, or a usage error naming it. */
static int block_device(const char *path, const char *what, dev_t *dev)
{
	struct stat st;

	if (stat(path, &st))
		return fail_errno(AMBER_ESYS, "%s", path);
	if (!S_ISBLK(st.st_mode))
		return fail(AMBER_EUSAGE, "%s: %s must be a block device", path, what);
	*dev = st.st_rdev;
	return 0;
}

/*
 * A device of a new restore: not in use (opened exclusively), at least
 * @need bytes, holding no filesystem unless --force.
 */
static int check_free(const char *path, uint64_t need, bool force, const char *why)
{
	uint64_t size;
	int fd, ret;

	fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	ret = fd_size(fd, &size) ? error_prefix("%s: ", path) : 0;
	if (!ret && size < need)
		ret = fail(AMBER_ESYS, "%s is %" PRIu64 " bytes; %s %" PRIu64, path, size, why,
			   need);
	if (!ret)
		ret = refuse_signature(fd, path, force);
	close(fd);
	return ret;
}

static int check_devices(struct instant_restore *r, bool fresh)
{
	const struct instant *in = r->in;
	uint64_t image = r->sectors * 512, area = r->area_sectors * 512;

	if (block_device(in->target, "--to", &r->target))
		return -1;
	if (in->metadata) {
		if (block_device(in->metadata, "--metadata", &r->area))
			return -1;
		if (r->area == r->target)
			return fail(AMBER_EUSAGE, "--metadata %s is the target", in->metadata);
	} else {
		r->area = r->target;
	}
	if (!fresh)
		return 0;
	if (in->metadata)
		return check_free(in->target, image, in->force, "the image needs") ||
		       check_free(in->metadata, area, in->force, "the restore's metadata needs");
	return check_free(in->target, image + area, in->force,
			  "the image with the restore's metadata at its end (or give"
			  " --metadata) needs");
}

static uint64_t area_offset(const struct instant_restore *r)
{
	return r->in->metadata ? 0 : r->sectors;
}

static void dev_name(dev_t dev, char *buf, size_t len)
{
	snprintf(buf, len, "%u:%u", major(dev), minor(dev));
}

/* <name>-meta: dm-clone's metadata, past amber's record in the area. */
static int map_metadata(struct instant_restore *r)
{
	char params[64], area[32], path[DM_NAME_MAX + 16];

	dev_name(r->area, area, sizeof(area));
	snprintf(params, sizeof(params), "%s %" PRIu64, area, area_offset(r) + RECORD_SECTORS);
	if (dm_create(r->meta_name, "linear", r->area_sectors - RECORD_SECTORS, params, false))
		return -1;
	snprintf(path, sizeof(path), "/dev/mapper/%s", r->meta_name);
	return block_device(path, "the metadata", &r->meta);
}

static int open_area(const struct instant_restore *r, const char **path)
{
	int fd;

	*path = r->in->metadata ? r->in->metadata : r->in->target;
	fd = open(*path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail_errno(AMBER_ESYS, "%s", *path);
	return fd;
}

/*
 * A new restore writes the record and zeroes dm-clone's first block, so
 * that dm-clone formats it with every region still to copy.
 */
static int write_record(const struct instant_restore *r)
{
	uint8_t block[RECORD_SECTORS * 512] = { 0 }, zero[CLONE_HEADER] = { 0 };
	uint64_t at = area_offset(r) * 512;
	const char *path;
	int fd = open_area(r, &path), ret;

	if (fd < 0)
		return -1;
	memcpy(block, r->record, strlen(r->record));
	ret = pwrite_full(fd, zero, sizeof(zero), at + sizeof(block)) ||
	      pwrite_full(fd, block, sizeof(block), at) || sync_medium(fd);
	close(fd);
	return ret ? error_prefix("%s: ", path) : 0;
}

/* --resume: the record must name this chain, and dm-clone's metadata be there. */
static int check_record(const struct instant_restore *r)
{
	uint8_t block[RECORD_SECTORS * 512 + 1] = { 0 }, head[CLONE_HEADER], zero[CLONE_HEADER] = { 0 };
	uint64_t at = area_offset(r) * 512;
	const char *path;
	int fd = open_area(r, &path), ret;

	if (fd < 0)
		return -1;
	ret = pread_full(fd, block, RECORD_SECTORS * 512, at) ||
	      pread_full(fd, head, sizeof(head), at + RECORD_SECTORS * 512);
	close(fd);
	if (ret)
		return error_prefix("%s: ", path);
	if (memcmp(block, RECORD_MAGIC, strlen(RECORD_MAGIC)) || !memcmp(head, zero, sizeof(zero)))
		return fail(AMBER_EUSAGE, "%s records no instant restore to resume (give the"
			    " --metadata of the first run, if it had one)", path);
	if (strcmp((char *)block, r->record))
		return fail(AMBER_EUSAGE, "%s records the instant restore of another chain:\n%s"
			    "this chain is:\n%s", path, (char *)block + strlen(RECORD_MAGIC),
			    r->record + strlen(RECORD_MAGIC));
	return 0;
}

static void clone_params(const struct instant_restore *r, char *params, size_t len)
{
	char meta[32], target[32], nbd[32];

	dev_name(r->meta, meta, sizeof(meta));
	dev_name(r->target, target, sizeof(target));
	dev_name(r->nbd, nbd, sizeof(nbd));
	snprintf(params, len, "%s %s %s %" PRIu64 " 0 4 hydration_threshold %u"
		 " hydration_batch_size %u", meta, target, nbd, r->region_sectors,
		 HYDRATION_THRESHOLD, HYDRATION_BATCH);
}

/* The live device of a --resume: a clone over the same metadata and target. */
static int check_live(const struct instant_restore *r)
{
	char table[256], meta[32], target[32], want[70];
	uint64_t sectors;

	if (dm_target_table(r->in->name, CLONE_TARGET, &sectors, table, sizeof(table)))
		return error_append(" (not an instant restore to resume)");
	dev_name(r->meta, meta, sizeof(meta));
	dev_name(r->target, target, sizeof(target));
	snprintf(want, sizeof(want), "%s %s ", meta, target);
	if (strncmp(table, want, strlen(want)) || sectors != r->sectors)
		return fail(AMBER_EUSAGE, "%s restores over other devices than these: its table"
			    " is '%s'", r->in->name, table);
	return 0;
}

/* In the server: the clone device on the NBD device, or its new source. */
static int instant_up(void *ctx, const char *nbd)
{
	struct instant_restore *r = ctx;
	char params[256];

	if (block_device(nbd, "the NBD device", &r->nbd))
		return -1;
	clone_params(r, params, sizeof(params));
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

/* Whether @name is still this server's clone: its source is our NBD device. */
static bool still_ours(const struct instant_restore *r)
{
	char table[256], nbd[32];
	uint64_t sectors;
	const char *source;

	if (dm_target_table(r->in->name, CLONE_TARGET, &sectors, table, sizeof(table)))
		return false;
	dev_name(r->nbd, nbd, sizeof(nbd));
	source = strchr(table, ' ');
	source = source ? strchr(source + 1, ' ') : NULL;
	return source && !strncmp(source + 1, nbd, strlen(nbd)) &&
	       source[1 + strlen(nbd)] == ' ';
}

/* All copied: the device becomes a linear one over the target. */
static int finish(const struct instant_restore *r)
{
	char params[64], target[32];

	dev_name(r->target, target, sizeof(target));
	snprintf(params, sizeof(params), "%s 0", target);
	if (dm_reload(r->in->name, "linear", r->sectors, params) || dm_remove(r->meta_name))
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

/*
 * A chunk that cannot be verified fails its region's copy, which dm-clone
 * retries for ever: with no progress and new read errors for
 * STALL_SECONDS, the background copy is stopped and the status says why.
 * Reads of the regions already copied, and of other regions, go on.
 */
static const char *check_stall(struct instant_restore *r, const struct export_stats *stats,
			       uint64_t hydrated)
{
	double now = now_seconds();

	if (hydrated != r->last_hydrated || r->stopped) {
		r->last_hydrated = hydrated;
		r->progressed = now;
		r->errors_then = stats->errors;
		return r->stopped ? "stopped on read errors (enable_hydration retries)" :
				    "restoring";
	}
	if (now - r->progressed < STALL_SECONDS || stats->errors == r->errors_then)
		return "restoring";
	if (dm_message(r->in->name, "disable_hydration"))
		return "restoring";
	r->stopped = true;
	fprintf(stderr, "the background copy is stopped: no progress in %d s and %" PRIu64
		" read errors, the last: %s\n", STALL_SECONDS, stats->errors - r->errors_then,
		stats->last_error);
	return "stopped on read errors (enable_hydration retries)";
}

static int instant_watch(void *ctx, const struct export_stats *stats)
{
	struct instant_restore *r = ctx;
	uint64_t hydrated, total;

	if (!still_ours(r)) {
		fprintf(stderr, "%s is no longer this server's: stopping (--resume continues)\n",
			r->in->name);
		return 1;
	}
	if (clone_progress(r->in->name, &hydrated, &total))
		return -1;
	if (!r->started) {
		r->started = r->progressed = now_seconds();
		r->first_hydrated = r->last_hydrated = hydrated;
	}
	if (hydrated < total)
		return write_status(r, stats, hydrated, total, check_stall(r, stats, hydrated));
	if (finish(r))
		return -1;
	write_status(r, stats, hydrated, total, "restored");
	return 1;
}

static void report(const struct instant_restore *r)
{
	char uuid[37], size[32];

	printf("%s epoch %" PRIu64 " of volume %s (%s) to %s: /dev/mapper/%s is ready,"
	       " the rest is restored in the background (amber status %s; log: %s/%s.log)\n",
	       r->in->resume ? "resuming the instant restore of" : "instant restore of",
	       r->tip->epoch, format_uuid(r->tip->volume_uuid, uuid),
	       format_size(r->tip->geo.volume_bytes, size, sizeof(size)), r->in->target,
	       r->in->name, r->in->name, EXPORT_LOG_DIR, r->in->name);
}

/* The metadata mapping of an earlier run whose device is gone: ours, removed. */
static int drop_stale_metadata(const struct instant_restore *r)
{
	char table[64];
	uint64_t sectors;

	if (!dm_exists(r->meta_name))
		return 0;
	if (dm_target_table(r->meta_name, "linear", &sectors, table, sizeof(table)))
		return error_prefix("%s is in the way: ", r->meta_name);
	return dm_remove(r->meta_name);
}

/* Devices, record and mapping, before the server starts. */
static int prepare(struct instant_restore *r, bool live)
{
	const struct instant *in = r->in;

	if (live && !in->resume)
		return fail(AMBER_EUSAGE, "%s exists (--resume continues its restore)", in->name);
	if (!live && drop_stale_metadata(r))
		return -1;
	if (check_devices(r, !in->resume) || (in->resume ? check_record(r) : write_record(r)))
		return -1;
	if (live) {
		char path[DM_NAME_MAX + 16];

		snprintf(path, sizeof(path), "/dev/mapper/%s", r->meta_name);
		return block_device(path, "the metadata", &r->meta) || check_live(r);
	}
	return map_metadata(r);
}

int restore_instant(const struct chain *c, const struct instant *in)
{
	struct instant_restore r = { .in = in, .chain = c, .tip = chain_tip(c)->info };
	const struct export_ops ops = { .up = instant_up, .watch = instant_watch, .ctx = &r };
	bool live;

	if (export_check_name(in->name, strlen(METADATA_SUFFIX)) || check_geometry(&r) ||
	    kernel_load_target(CLONE_TARGET, "dm-clone"))
		return -1;
	snprintf(r.meta_name, sizeof(r.meta_name), "%s%s", in->name, METADATA_SUFFIX);
	live = dm_exists(in->name);
	if (prepare(&r, live))
		return -1;
	if (export_chain(c, in->name, &ops)) {
		if (!live)
			dm_remove(r.meta_name);
		return -1;
	}
	report(&r);
	return 0;
}
