// SPDX-License-Identifier: GPL-2.0
/* amber backup: stream a volume's snapshot into a backup. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "cli.h"
#include "codec.h"
#include "error.h"
#include "kernel.h"
#include "progress.h"
#include "store.h"
#include "stream.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber backup NAME --to FILE|- [--incremental-from BACKUP] [--level N]\n"
"                    [--no-compress] [--progress] [--use-snapshot]\n"
"\n"
"Take a snapshot of the amber volume NAME and stream its frozen image into a\n"
"backup: FILE (created; never overwritten), a tape or other device, or\n"
"standard output ('-'). Chunks leave the snapshot as soon as they are durable\n"
"on the medium; the snapshot is dropped at the end, also on errors and\n"
"interrupts.\n"
"\n"
"  -t, --to FILE|-        where the backup goes\n"
"  -i, --incremental-from BACKUP\n"
"                         only the chunks changed since BACKUP (a seekable\n"
"                         file: full, incremental or consolidated)\n"
"  -l, --level N          zstd level, 1..19 (3); 0 stores chunks raw\n"
"      --no-compress      same as --level 0\n"
"  -p, --progress         show progress when stderr is not a terminal too\n"
"                         (a line every 5 s; on a terminal it always shows)\n"
"      --use-snapshot     use the snapshot 'amber snap' just took instead of\n"
"                         taking one\n";

enum { OPT_TO, OPT_INCREMENTAL_FROM, OPT_LEVEL, OPT_NO_COMPRESS, OPT_PROGRESS,
       OPT_USE_SNAPSHOT };

static const struct cli_option options[] = {
	[OPT_TO]		= CLI_VALUE("to", 't'),
	[OPT_INCREMENTAL_FROM]	= CLI_VALUE("incremental-from", 'i'),
	[OPT_LEVEL]		= CLI_VALUE("level", 'l'),
	[OPT_NO_COMPRESS]	= CLI_FLAG("no-compress", 0),
	[OPT_PROGRESS]		= CLI_FLAG("progress", 'p'),
	[OPT_USE_SNAPSHOT]	= CLI_FLAG("use-snapshot", 0),
	{ },
};

struct backup {
	const char *name, *to, *parent_path;
	uint64_t level;
	bool show_progress, use_snapshot;
	struct amber_volume vol;
	struct geometry geo;
	uint8_t uuid[16];
	struct bkp_info parent;
	struct bkp_summary parent_summary;
	int ctl, view_fd, out_fd;
	bool created_out, snapshot_held;
	uint64_t epoch;
	uint64_t *wanted;		/* incremental: changed chunks */
	bool changes_exact;
	struct bkp_summary summary;
	struct stream_progress counts;
	double seconds;
};

static int parse_args(const struct cli *c, struct backup *b)
{
	if (cli_args(c, 1, 1, "NAME") || cli_required(c, OPT_TO, &b->to) ||
	    cli_number(c, OPT_LEVEL, 0, ZSTD_LEVEL_MAX, ZSTD_LEVEL_DEFAULT, &b->level))
		return -1;
	if (cli_flag(c, OPT_NO_COMPRESS) && cli_flag(c, OPT_LEVEL))
		return fail(AMBER_EUSAGE, "--no-compress and --level exclude each other");
	if (cli_flag(c, OPT_NO_COMPRESS))
		b->level = 0;
	b->name = c->args[0];
	b->parent_path = c->value[OPT_INCREMENTAL_FROM];
	b->show_progress = cli_flag(c, OPT_PROGRESS);
	b->use_snapshot = cli_flag(c, OPT_USE_SNAPSHOT);
	return 0;
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
	return chain_read_parent(b->parent_path, &want, &b->parent, &b->parent_summary);
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

static int stream(struct backup *b)
{
	struct kernel_source k = { .ctl = b->ctl, .dev = b->vol.dev };
	struct stream_source src = { copied_chunks, release_chunks, &k };
	struct progress prog;
	struct stream_config cfg = {
		.view_fd = b->view_fd,
		.out_fd = b->out_fd,
		.geo = &b->geo,
		.wanted = b->wanted,
		.level = b->level,
		.src = &src,
		.progress = progress_show,
		.progress_ctx = &prog,
	};
	struct bkp_writer *w;
	struct bkp_info info;
	double start = now_seconds();
	int ret = -1;

	header_info(b, &info);
	progress_init(&prog, b->show_progress || isatty(STDERR_FILENO), b->name);
	w = bkp_writer_new(b->out_fd, &info);
	if (w && !stream_backup(&cfg, w, &b->counts) &&
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
		" zero, %" PRIu64 " from the store first), %s in %s, %.1f s, %s/s%s\n",
		b->name, b->parent_path ? "incremental" : "full", b->epoch, b->summary.records,
		b->summary.zero_records, b->counts.early_records,
		format_size(b->summary.logical_bytes, content, sizeof(content)),
		format_size(b->summary.file_bytes, stored, sizeof(stored)), b->seconds,
		format_size(b->seconds > 0 ? b->summary.logical_bytes / b->seconds : 0, rate,
			    sizeof(rate)),
		b->wanted && !b->changes_exact ? " (change maps were a superset)" : "");
	fprintf(out, "%s: digest %s\n", b->name, format_hex(b->summary.digest, 32, digest));
}

static int run_backup(struct backup *b)
{
	if (load_volume(b) || load_parent(b) || open_backup_output(b))
		return -1;
	catch_interrupts();
	b->ctl = control_open();
	if (b->ctl < 0 || take_snapshot(b) || load_changes(b) || open_view(b))
		return -1;
	if (stream(b)) {
		explain_invalid(b);
		return -1;
	}
	return drop_snapshot(b);
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
}

int backup_main(int argc, char **argv)
{
	struct cli c = { .command = "backup", .usage = usage, .options = options };
	struct backup b = { .ctl = -1, .view_fd = -1, .out_fd = -1 };
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (parse_args(&c, &b))
		return -1;
	ret = run_backup(&b);
	clean_up(&b, ret);
	if (!ret)
		report(&b);
	return ret;
}
