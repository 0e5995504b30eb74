// SPDX-License-Identifier: GPL-2.0
/*
 * amber backup: stream a volume's snapshot, or an image that is no amber
 * volume (--image), into a backup. Both go through the one stream engine
 * (stream.h): a volume's view with its store to drain and the kernel's
 * change maps, an image alone with the leaves of the backup it continues.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "cli.h"
#include "codec.h"
#include "error.h"
#include "kernel.h"
#include "keyfile.h"
#include "keys.h"
#include "progress.h"
#include "store.h"
#include "stream.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber backup NAME --to FILE|- [--incremental-from BACKUP] [--level N]\n"
"                    [--no-compress] [--progress] [--use-snapshot]\n"
"                    [--format-version N] [--encrypt KEYFILE] [--sign KEY]\n"
"       amber backup --image PATH --to FILE|- [--incremental-from BACKUP]\n"
"                    [--chunk SIZE] [--level N] [--no-compress] [--progress]\n"
"                    [--format-version N] [--encrypt KEYFILE] [--sign KEY]\n"
"\n"
"Take a snapshot of the amber volume NAME and stream its frozen image into a\n"
"backup: FILE (created; never overwritten), a tape or other device, or\n"
"standard output ('-'). Chunks leave the snapshot as soon as they are durable\n"
"on the medium; the snapshot is dropped at the end, also on errors and\n"
"interrupts.\n"
"\n"
"With --image, back up PATH instead, a regular file or a block device that is\n"
"no amber volume (an LVM or ZFS snapshot, a cold volume, a VM image), in the\n"
"same format. PATH must not change while it is read: snapshot it first. A\n"
"change of its size, or of a file's modification or change time, fails the\n"
"backup before its end.\n"
"\n"
"  -t, --to FILE|-        where the backup goes\n"
"  -i, --incremental-from BACKUP\n"
"                         only the chunks changed since BACKUP (a seekable\n"
"                         file: full, incremental or consolidated; with\n"
"                         --image a full or consolidated backup of PATH, whose\n"
"                         leaves tell the changed chunks)\n"
"      --image PATH       back up PATH, not an amber volume\n"
"  -c, --chunk SIZE       --image: chunk size, 4K..1M, a power of two (64K;\n"
"                         an incremental's: its base's)\n"
"  -l, --level N          zstd level, 1..19 (3); 0 stores chunks raw\n"
"      --no-compress      same as --level 0\n"
"  -p, --progress         show progress when stderr is not a terminal too\n"
"                         (a line every 5 s; on a terminal it always shows)\n"
"      --use-snapshot     use the snapshot 'amber snap' just took instead of\n"
"                         taking one\n"
"      --format-version N write backup format N: 2 (the default) or 1, for\n"
"                         readers older than format 2\n"
"  -e, --encrypt KEYFILE  encrypt every record with AES-256-GCM under the data\n"
"                         key of KEYFILE ('amber key new'); leaves and digest\n"
"                         are keyed. An incremental is encrypted with its\n"
"                         parent's key, or not at all, as its parent\n"
"      --passphrase-file FILE\n"
"                         KEYFILE's passphrase, the first line of FILE (mode\n"
"                         0600), instead of asking on the terminal\n"
"      --sign KEY         sign the trailer with the Ed25519 private key KEY\n"
"                         (PEM, 'amber key new-signing')\n";

enum { OPT_TO, OPT_INCREMENTAL_FROM, OPT_LEVEL, OPT_NO_COMPRESS, OPT_PROGRESS,
       OPT_USE_SNAPSHOT, OPT_IMAGE, OPT_CHUNK, OPT_FORMAT_VERSION, OPT_ENCRYPT,
       OPT_PASSPHRASE_FILE, OPT_SIGN };

static const struct cli_option options[] = {
	[OPT_TO]		= CLI_VALUE("to", 't'),
	[OPT_INCREMENTAL_FROM]	= CLI_VALUE("incremental-from", 'i'),
	[OPT_LEVEL]		= CLI_VALUE("level", 'l'),
	[OPT_NO_COMPRESS]	= CLI_FLAG("no-compress", 0),
	[OPT_PROGRESS]		= CLI_FLAG("progress", 'p'),
	[OPT_USE_SNAPSHOT]	= CLI_FLAG("use-snapshot", 0),
	[OPT_IMAGE]		= CLI_VALUE("image", 0),
	[OPT_CHUNK]		= CLI_VALUE("chunk", 'c'),
	[OPT_FORMAT_VERSION]	= CLI_VALUE("format-version", 0),
	[OPT_ENCRYPT]		= CLI_VALUE("encrypt", 'e'),
	[OPT_PASSPHRASE_FILE]	= CLI_VALUE("passphrase-file", 0),
	[OPT_SIGN]		= CLI_VALUE("sign", 0),
	{ },
};

struct backup {
	const char *name;		/* the volume's, or the image's path */
	const char *image, *to, *parent_path;
	uint64_t level, chunk;		/* chunk: --chunk, 0 when not given */
	uint64_t format_version;
	bool show_progress, use_snapshot;
	struct amber_volume vol;
	struct geometry geo;
	uint8_t uuid[16];
	struct bkp_info parent;
	struct bkp_summary parent_summary;
	int ctl, view_fd, out_fd;	/* view_fd: the snapshot's view or the image */
	bool created_out, snapshot_held;
	uint64_t epoch;
	uint64_t *wanted;		/* incremental of a volume: changed chunks */
	bool changes_exact;
	struct stat image_stat;		/* as the backup started */
	uint8_t (*base_leaves)[32];	/* incremental of an image */
	struct bkp_summary summary;
	struct stream_progress counts;
	double seconds;
	struct data_key *key;		/* --encrypt */
	struct asym_key *sign;		/* --sign */
};

static int parse_target(const struct cli *c, struct backup *b)
{
	b->image = c->value[OPT_IMAGE];
	if (!b->image) {
		if (cli_args(c, 1, 1, "NAME"))
			return -1;
		if (cli_flag(c, OPT_CHUNK))
			return fail(AMBER_EUSAGE, "--chunk goes with --image: a volume's"
				    " chunk size is its store's");
		b->name = c->args[0];
		return 0;
	}
	if (c->nr_args)
		return fail(AMBER_EUSAGE, "--image PATH or a volume NAME, not both");
	if (cli_flag(c, OPT_USE_SNAPSHOT))
		return fail(AMBER_EUSAGE, "--use-snapshot is for a volume, not --image");
	if (cli_size(c, OPT_CHUNK, 0, &b->chunk))
		return -1;
	if (cli_flag(c, OPT_CHUNK) && !b->chunk)
		return fail(AMBER_EUSAGE, "--chunk: 0 is no chunk size");
	b->name = b->image;
	return 0;
}

/* The keys, before any snapshot is taken or file created. */
static int load_keys(const struct cli *c, struct backup *b)
{
	if (c->value[OPT_PASSPHRASE_FILE] && !c->value[OPT_ENCRYPT])
		return fail(AMBER_EUSAGE, "--passphrase-file goes with --encrypt");
	if ((c->value[OPT_ENCRYPT] || c->value[OPT_SIGN]) && b->format_version == BKP_VERSION_1)
		return fail(AMBER_EUSAGE, "--encrypt and --sign need format 2");
	if (c->value[OPT_ENCRYPT] &&
	    !(b->key = data_key_load(c->value[OPT_ENCRYPT], c->value[OPT_PASSPHRASE_FILE])))
		return -1;
	if (c->value[OPT_SIGN] && !(b->sign = asym_load_private(c->value[OPT_SIGN], true)))
		return -1;
	return 0;
}

static int parse_args(const struct cli *c, struct backup *b)
{
	if (parse_target(c, b) || cli_required(c, OPT_TO, &b->to) ||
	    cli_number(c, OPT_LEVEL, 0, ZSTD_LEVEL_MAX, ZSTD_LEVEL_DEFAULT, &b->level) ||
	    cli_number(c, OPT_FORMAT_VERSION, BKP_VERSION_1, BKP_VERSION_2, BKP_VERSION,
		       &b->format_version))
		return -1;
	if (cli_flag(c, OPT_NO_COMPRESS) && cli_flag(c, OPT_LEVEL))
		return fail(AMBER_EUSAGE, "--no-compress and --level exclude each other");
	if (cli_flag(c, OPT_NO_COMPRESS))
		b->level = 0;
	b->parent_path = c->value[OPT_INCREMENTAL_FROM];
	b->show_progress = cli_flag(c, OPT_PROGRESS);
	b->use_snapshot = cli_flag(c, OPT_USE_SNAPSHOT);
	return load_keys(c, b);
}

/* The volume's table, geometry and, from its store, its uuid. */
static int load_volume(struct backup *b)
{
	const struct amber_table *t = &b->vol.table;
	struct store_layout store;
	int fd, ret;

	if (volume_open(b->name, &b->vol) ||
	    geometry_init(&b->geo, b->vol.sectors * 512, t->chunk_sectors * 512ULL))
		return error_prefix("%s: ", b->name);
	fd = open_dev_node(t->store_major, t->store_minor, O_RDONLY);
	if (fd < 0)
		return -1;
	ret = store_read(fd, &store);
	close(fd);
	if (ret)
		return error_prefix("%s: store: ", b->name);
	if (store.chunk_sectors != t->chunk_sectors || store.origin_sectors != b->vol.sectors)
		return fail(AMBER_ESYS, "%s: the store's geometry differs from the table",
			    b->name);
	memcpy(b->uuid, store.uuid, 16);
	return 0;
}

/* Its epoch is checked once the snapshot's is known (load_changes()). */
static int load_parent(struct backup *b)
{
	const struct parent_want want = {
		.volume = b->name,
		.uuid = b->uuid,
		.volume_bytes = b->geo.volume_bytes,
		.chunk_bytes = b->geo.chunk_bytes,
	};

	if (!b->parent_path)
		return 0;
	if (chain_read_parent(b->parent_path, &want, &b->parent, &b->parent_summary))
		return -1;
	return chain_same_key(b->parent_path, &b->parent, b->key ? b->key->fingerprint : NULL);
}

/* A new file, or an existing device (a tape); never an existing file. */
static int open_backup_output(struct backup *b)
{
	b->out_fd = open_output(b->to, true, &b->created_out);
	return b->out_fd < 0 ? -1 : 0;
}

static int take_snapshot(struct backup *b)
{
	struct amber_status st;

	if (!b->use_snapshot) {
		if (control_snap(b->ctl, &b->vol.dev, 1, 0, &b->epoch))
			return error_prefix("%s: ", b->name);
		b->snapshot_held = true;
		return 0;
	}
	if (volume_status(b->name, &st))
		return -1;
	if (st.state != VOL_ACTIVE)
		return fail(AMBER_ESYS, "%s has no active snapshot (state %s)", b->name,
			    vol_state_name(st.state));
	b->snapshot_held = true;
	b->epoch = st.epoch;
	return 0;
}

static int load_changes(struct backup *b)
{
	uint64_t snap_epoch;
	uint8_t uuid[16];

	if (!b->parent_path)
		return 0;
	if (chain_parent_before(b->parent_path, b->parent.epoch, b->epoch))
		return -1;
	b->wanted = bitmap_alloc(b->geo.nr_chunks);
	if (!b->wanted ||
	    control_changed(b->ctl, b->vol.dev, b->parent.epoch, b->geo.nr_chunks, b->wanted,
			    &snap_epoch, uuid, &b->changes_exact))
		return -1;
	if (snap_epoch != b->epoch || memcmp(uuid, b->uuid, 16))
		return fail(AMBER_ESYS, "%s: the change maps are of epoch %" PRIu64
			    ", the snapshot is %" PRIu64, b->name, snap_epoch, b->epoch);
	return 0;
}

static int open_view(struct backup *b)
{
	char path[DM_NAME_MAX + 32];

	snprintf(path, sizeof(path), "/dev/mapper/%s%s", b->name, VIEW_SUFFIX);
	b->view_fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (b->view_fd < 0 && errno == EINVAL)	/* no O_DIRECT here */
		b->view_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (b->view_fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	return 0;
}

struct kernel_source {
	int ctl;
	uint32_t dev;
};

static int copied_chunks(void *ctx, uint64_t start, uint64_t *out, size_t max, size_t *n)
{
	struct kernel_source *k = ctx;

	return control_copied(k->ctl, k->dev, start, out, max, n);
}

static int release_chunks(void *ctx, uint64_t first, uint64_t count)
{
	struct kernel_source *k = ctx;

	return control_release(k->ctl, k->dev, first, count);
}

static void header_info(const struct backup *b, struct bkp_info *info)
{
	*info = (struct bkp_info){
		.version = b->format_version,
		.kind = b->parent_path ? BKP_INCREMENTAL : BKP_FULL,
		.geo = b->geo,
		.epoch = b->epoch,
		.created = time(NULL),
	};
	memcpy(info->volume_uuid, b->uuid, 16);
	snprintf(info->tool, sizeof(info->tool), "%s", tool_version());
	if (!b->parent_path)
		return;
	memcpy(info->parent_uuid, b->parent.volume_uuid, 16);
	info->parent_epoch = b->parent.epoch;
	memcpy(info->parent_link, b->parent_summary.link, 32);
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/*
 * The user keeps the image still; a file's size, modification or change
 * time tells if not. Checked before the trailer is written, so that a backup
 * of an image that changed is never complete, not even on a pipe or device.
 */
static int check_image_unchanged(const struct backup *b)
{
	const struct stat *was = &b->image_stat;
	struct stat now;
	uint64_t bytes;

	if (!b->image)
		return 0;
	if (fstat(b->view_fd, &now))
		return fail_errno(AMBER_ESYS, "%s", b->image);
	if (fd_size(b->view_fd, &bytes))
		return error_prefix("%s: ", b->image);
	if (bytes != b->geo.volume_bytes ||
	    (S_ISREG(was->st_mode) && (!same_time(&now.st_mtim, &was->st_mtim) ||
				       !same_time(&now.st_ctim, &was->st_ctim))))
		return fail(AMBER_ESYS, "%s changed while it was backed up (size, modification"
			    " or change time): back up a snapshot of it", b->image);
	return 0;
}

/* Stream the image at b->view_fd; @src: the store to drain, or NULL. */
static int stream(struct backup *b, const struct stream_source *src)
{
	struct progress prog;
	struct stream_config cfg = {
		.view_fd = b->view_fd,
		.out_fd = b->out_fd,
		.geo = &b->geo,
		.wanted = b->wanted,
		.base_leaves = (const uint8_t (*)[32])b->base_leaves,
		.level = b->level,
		.leaf_key = b->key ? b->key->identity : NULL,
		.src = src,
		.progress = progress_show,
		.progress_ctx = &prog,
	};
	struct bkp_keys keys = { .data = b->key, .sign = b->sign };
	struct bkp_writer *w;
	struct bkp_info info;
	double start = now_seconds();
	int ret = -1;

	header_info(b, &info);
	progress_init(&prog, b->show_progress || isatty(STDERR_FILENO), src ? b->name : NULL);
	w = bkp_writer_new(b->out_fd, &info, &keys);
	if (w && !stream_backup(&cfg, w, &b->counts) && !check_image_unchanged(b) &&
	    !bkp_writer_finish(w, NULL, &b->summary) && !sync_medium(b->out_fd))
		ret = 0;
	progress_done(&prog);
	bkp_writer_free(w);
	b->seconds = now_seconds() - start;
	return ret;
}

/* Say why reading the view failed when the snapshot broke underneath. */
static void explain_invalid(const struct backup *b)
{
	struct error_state saved;
	struct amber_status st;
	bool invalid;

	error_save(&saved);
	invalid = !volume_status(b->name, &st) && st.state == VOL_INVALID;
	error_restore(&saved);
	if (invalid)
		error_append(" (the snapshot was invalidated: %s)", reason_name(st.reason));
}

static int drop_snapshot(struct backup *b)
{
	if (!b->snapshot_held)
		return 0;
	b->snapshot_held = false;
	if (dm_message(b->name, "drop"))
		return error_prefix("dropping the snapshot of %s: ", b->name);
	return 0;
}

static void report(const struct backup *b)
{
	FILE *out = b->out_fd == STDOUT_FILENO ? stderr : stdout;
	char content[32], stored[32], rate[32], digest[65];

	fprintf(out, "%s: %s backup of epoch %" PRIu64 ": %" PRIu64 " chunks (%" PRIu64
		" zero, %" PRIu64 " %s), %s in %s, %.1f s, %s/s%s\n",
		b->name, b->parent_path ? "incremental" : "full", b->epoch, b->summary.records,
		b->summary.zero_records,
		b->image ? b->geo.nr_chunks - b->summary.records : b->counts.early_records,
		b->image ? "unchanged" : "from the store first",
		format_size(b->summary.logical_bytes, content, sizeof(content)),
		format_size(b->summary.file_bytes, stored, sizeof(stored)), b->seconds,
		format_size(b->seconds > 0 ? b->summary.logical_bytes / b->seconds : 0, rate,
			    sizeof(rate)),
		b->wanted && !b->changes_exact ? " (change maps were a superset)" : "");
	fprintf(out, "%s: digest %s\n", b->name, format_hex(b->summary.digest, 32, digest));
}

static int back_up_volume(struct backup *b)
{
	struct kernel_source k;
	struct stream_source src = { copied_chunks, release_chunks, &k };

	if (load_volume(b) || load_parent(b) || open_backup_output(b))
		return -1;
	catch_interrupts();
	b->ctl = control_open();
	if (b->ctl < 0 || take_snapshot(b) || load_changes(b) || open_view(b))
		return -1;
	k = (struct kernel_source){ .ctl = b->ctl, .dev = b->vol.dev };
	if (stream(b, &src)) {
		explain_invalid(b);
		return -1;
	}
	return drop_snapshot(b);
}

/* ---- an image ---- */

/* Image backups have a uuid of their own, RFC 9562 version 8 (FORMAT.md). */
static bool is_image_uuid(const uint8_t uuid[16])
{
	return (uuid[6] >> 4) == 8 && (uuid[8] & 0xc0) == 0x80;
}

static int new_image_uuid(uint8_t uuid[16])
{
	if (random_bytes(uuid, 16))
		return -1;
	uuid[6] = (uuid[6] & 0x0f) | 0x80;
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
	return 0;
}

static int image_size(struct backup *b, uint64_t *bytes)
{
	const struct stat *st = &b->image_stat;

	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return fail(AMBER_ESYS, "%s is neither a regular file nor a block device",
			    b->image);
	if (S_ISBLK(st->st_mode) && refuse_amber_device(major(st->st_rdev),
							minor(st->st_rdev), b->image))
		return -1;
	if (fd_size(b->view_fd, bytes))
		return error_prefix("%s: ", b->image);
	if (!*bytes || *bytes % 512)
		return fail(AMBER_ESYS, "%s is %" PRIu64 " bytes, not a positive multiple"
			    " of 512", b->image, *bytes);
	return 0;
}

/* O_NONBLOCK until its type is known: a FIFO at @PATH must not hang the open. */
static int open_image(struct backup *b, uint64_t *bytes)
{
	int direct = O_DIRECT;

	b->view_fd = open(b->image, O_RDONLY | O_DIRECT | O_NONBLOCK | O_CLOEXEC);
	if (b->view_fd < 0 && errno == EINVAL) {	/* no O_DIRECT here */
		direct = 0;
		b->view_fd = open(b->image, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	}
	if (b->view_fd < 0)
		return fail_errno(AMBER_ESYS, "%s", b->image);
	if (fstat(b->view_fd, &b->image_stat))
		return fail_errno(AMBER_ESYS, "%s", b->image);
	if (image_size(b, bytes))
		return -1;
	/* A tail that is not whole 4 KiB blocks: no direct read of it on 4Kn disks. */
	if (*bytes % 4096)
		direct = 0;
	if (fcntl(b->view_fd, F_SETFL, direct))
		return fail_errno(AMBER_ESYS, "%s", b->image);
	return 0;
}

/*
 * The base of an incremental: a backup of this image (its uuid and
 * geometry) whose records give the leaf of every chunk.
 */
static int load_image_base(struct backup *b, uint64_t volume_bytes)
{
	const struct parent_want want = {
		.volume = b->image,
		.volume_bytes = volume_bytes,
		.chunk_bytes = b->chunk,
	};

	if (chain_read_parent(b->parent_path, &want, &b->parent, &b->parent_summary) ||
	    chain_same_key(b->parent_path, &b->parent, b->key ? b->key->fingerprint : NULL))
		return -1;
	if (!is_image_uuid(b->parent.volume_uuid))
		return fail(AMBER_EDATA, "%s is a backup of an amber volume: an image backup"
			    " continues an image backup", b->parent_path);
	if (b->parent.kind != BKP_FULL)
		return fail(AMBER_EDATA, "%s is an incremental backup: an image backup"
			    " continues a full or consolidated one, whose records hold every"
			    " chunk's leaf ('amber consolidate' the chain first)",
			    b->parent_path);
	if (b->parent.epoch >= INT64_MAX)
		return fail(AMBER_EDATA, "%s: epoch %" PRIu64 " is the last one",
			    b->parent_path, b->parent.epoch);
	b->chunk = b->parent.geo.chunk_bytes;
	return 0;
}

static int load_base_leaves(struct backup *b)
{
	struct bkp_index *x = NULL;
	int fd, ret = -1;

	b->base_leaves = calloc(b->geo.nr_chunks, sizeof(*b->base_leaves));
	if (!b->base_leaves)
		return fail(AMBER_ESYS, "out of memory (%" PRIu64 " leaves)", b->geo.nr_chunks);
	fd = open(b->parent_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", b->parent_path);
	x = bkp_index_load(fd, &b->parent, &b->parent_summary);
	/* with the key, the parent's trailer MAC before its leaves are trusted */
	if (x && !bkp_index_set_key(x, b->key) &&
	    !bkp_index_leaves(x, &b->parent_summary, b->base_leaves))
		ret = 0;
	else
		error_prefix("%s: ", b->parent_path);
	bkp_index_free(x);
	close(fd);
	return ret;
}

/* Geometry, uuid, epoch and, for an incremental, the base's leaves. */
static int load_image(struct backup *b)
{
	uint64_t bytes;

	if (open_image(b, &bytes) || (b->parent_path && load_image_base(b, bytes)))
		return -1;
	if (geometry_init(&b->geo, bytes, b->chunk ? b->chunk : STORE_DEFAULT_CHUNK))
		return error_prefix("%s: ", b->image);
	if (!b->parent_path) {
		b->epoch = 1;
		return new_image_uuid(b->uuid);
	}
	b->epoch = b->parent.epoch + 1;
	memcpy(b->uuid, b->parent.volume_uuid, 16);
	return load_base_leaves(b);
}

/*
 * Not the image itself: a device named twice, standard output open on it,
 * or the device under the file system that holds it.
 */
static int check_output_not_image(const struct backup *b)
{
	const struct stat *im = &b->image_stat;
	struct stat out;

	if (fstat(b->out_fd, &out))
		return fail_errno(AMBER_ESYS, "%s", b->to);
	if ((S_ISBLK(im->st_mode) && S_ISBLK(out.st_mode) && im->st_rdev == out.st_rdev) ||
	    (out.st_dev == im->st_dev && out.st_ino == im->st_ino))
		return fail(AMBER_EUSAGE, "--to %s is %s itself: the backup would overwrite"
			    " the image it reads", b->to, b->image);
	if (S_ISREG(im->st_mode) && S_ISBLK(out.st_mode) && out.st_rdev == im->st_dev)
		return fail(AMBER_EUSAGE, "--to %s holds the file system of %s: the backup"
			    " would overwrite the image it reads", b->to, b->image);
	return 0;
}

static int back_up_image(struct backup *b)
{
	if (load_image(b) || open_backup_output(b) || check_output_not_image(b))
		return -1;
	catch_interrupts();
	return stream(b, NULL);
}

/* Never leave the volume frozen or a partial backup behind. */
static void clean_up(struct backup *b, bool failed)
{
	struct error_state saved;

	error_save(&saved);
	if (drop_snapshot(b))
		fprintf(stderr, "amber backup: %s\n", error_msg());
	error_restore(&saved);
	if (failed && b->created_out)
		unlink(b->to);
	if (b->view_fd >= 0)
		close(b->view_fd);
	if (b->ctl >= 0)
		close(b->ctl);
	if (b->out_fd > STDOUT_FILENO)
		close(b->out_fd);
	free(b->wanted);
	free(b->base_leaves);
	data_key_free(b->key);
	asym_free(b->sign);
}

int backup_main(int argc, char **argv)
{
	struct cli c = { .command = "backup", .usage = usage, .options = options };
	struct backup b = { .ctl = -1, .view_fd = -1, .out_fd = -1 };
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (parse_args(&c, &b)) {
		clean_up(&b, false);
		return -1;
	}
	ret = b.image ? back_up_image(&b) : back_up_volume(&b);
	clean_up(&b, ret);
	if (!ret)
		report(&b);
	return ret;
}
