// SPDX-License-Identifier: GPL-2.0
/* amber create: an amber volume NAME and its read-only view NAME-view. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "module/uapi/amber.h"
#include "cli.h"
#include "dmline.h"
#include "error.h"
#include "kernel.h"
#include "store.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber create NAME --origin DEV --store DEV [--chunk SIZE] [--epochs N]\n"
"                    [--overflow block|invalidate] [--block-timeout MS]\n"
"                    [--intent SIZE]\n"
"                    [--format] [--force]\n"
"\n"
"Create the device-mapper device NAME (target amber) over ORIGIN, with its\n"
"copy-on-write store on STORE, and NAME-view (target amber-view, read-only)\n"
"showing the active snapshot. Loads dm-amber when needed (modprobe, else\n"
"insmod $AMBER_MODULE). The store is formatted when it is not an amber store\n"
"for an origin of this size.\n"
"\n"
"  -o, --origin DEV      the volume to protect\n"
"  -s, --store DEV       the store device\n"
"  -c, --chunk SIZE      chunk size when formatting (64K)\n"
"  -e, --epochs N        change maps when formatting (16)\n"
"      --overflow MODE   store full: block writes until a release (block), or\n"
"                        invalidate the snapshot at once (invalidate)\n"
"      --block-timeout MS\n"
"                        longest a write waits with --overflow block\n"
"      --intent SIZE     write-intent region of the change maps (4M): after a\n"
"                        crash, the next incremental backup sends each region\n"
"                        that was being written in full; a power of two from\n"
"                        the chunk size to 1G\n"
"      --format          format the store even if it is an amber store\n"
"  -f, --force           format the store even over a filesystem or a damaged\n"
"                        store\n";

enum { OPT_ORIGIN, OPT_STORE, OPT_CHUNK, OPT_EPOCHS, OPT_OVERFLOW, OPT_BLOCK_TIMEOUT,
       OPT_INTENT, OPT_FORMAT, OPT_FORCE };

static const struct cli_option options[] = {
	[OPT_ORIGIN]		= CLI_VALUE("origin", 'o'),
	[OPT_STORE]		= CLI_VALUE("store", 's'),
	[OPT_CHUNK]		= CLI_VALUE("chunk", 'c'),
	[OPT_EPOCHS]		= CLI_VALUE("epochs", 'e'),
	[OPT_OVERFLOW]		= CLI_VALUE("overflow", 0),
	[OPT_BLOCK_TIMEOUT]	= CLI_VALUE("block-timeout", 0),
	[OPT_INTENT]		= CLI_VALUE("intent", 0),
	[OPT_FORMAT]		= CLI_FLAG("format", 0),
	[OPT_FORCE]		= CLI_FLAG("force", 'f'),
	{ },
};

struct create_args {
	const char *name, *origin, *store;
	uint64_t chunk, epochs, block_timeout, intent;
	bool chunk_given, format, force;
	const char *overflow;
};

/* --intent SIZE against the chunk size the volume will have. */
static int check_intent(uint64_t intent, uint64_t chunk_sectors)
{
	if (intent % 512 || !intent_sectors_ok(intent / 512, chunk_sectors))
		return fail(AMBER_EUSAGE, "--intent: %" PRIu64 " is not a power of two from"
			    " the chunk size (%" PRIu64 " bytes) to 1G", intent,
			    chunk_sectors * 512);
	return 0;
}

static int parse_args(const struct cli *c, struct create_args *a)
{
	if (cli_args(c, 1, 1, "NAME") || cli_required(c, OPT_ORIGIN, &a->origin) ||
	    cli_required(c, OPT_STORE, &a->store) ||
	    cli_size(c, OPT_CHUNK, STORE_DEFAULT_CHUNK, &a->chunk) ||
	    cli_number(c, OPT_EPOCHS, 2, AMBER_MAX_EPOCHS, STORE_DEFAULT_EPOCHS, &a->epochs) ||
	    cli_number(c, OPT_BLOCK_TIMEOUT, 1, BLOCK_TIMEOUT_MAX_MS, 0, &a->block_timeout) ||
	    cli_size(c, OPT_INTENT, 0, &a->intent) ||
	    store_check_geometry(a->chunk, a->epochs))
		return -1;
	a->name = c->args[0];
	a->chunk_given = cli_flag(c, OPT_CHUNK);
	a->format = cli_flag(c, OPT_FORMAT);
	a->force = cli_flag(c, OPT_FORCE);
	a->overflow = c->value[OPT_OVERFLOW];
	if (a->overflow && strcmp(a->overflow, "block") && strcmp(a->overflow, "invalidate"))
		return fail(AMBER_EUSAGE, "--overflow: '%s' is not block or invalidate",
			    a->overflow);
	if (a->intent && a->chunk_given && check_intent(a->intent, a->chunk / 512))
		return -1;
	if (!*a->name || strchr(a->name, '/') ||
	    strlen(a->name) + strlen(VIEW_SUFFIX) >= DM_NAME_MAX)
		return fail(AMBER_EUSAGE, "'%s' is not a usable device name", a->name);
	return 0;
}

/* Is the store an amber store we may use as it is? */
static bool store_fits(const struct create_args *a, const struct store_layout *l,
		       uint64_t origin_size)
{
	return l->origin_sectors * 512 == origin_size &&
	       (!a->chunk_given || l->chunk_sectors * 512ULL == a->chunk);
}

/* Use the store as it is, or format it when that is allowed. */
static int prepare_store(const struct create_args *a, int fd, uint64_t origin_size,
			 struct store_layout *l)
{
	bool is_store = !store_read(fd, l);

	if (is_store && !a->format && store_fits(a, l, origin_size))
		return 0;
	if (is_store && !a->format)
		return fail(AMBER_ESYS, "%s is an amber store for a %" PRIu64
			    "-sector origin with %u-sector chunks: --format to reformat it",
			    a->store, l->origin_sectors, l->chunk_sectors);
	if (!is_store && refuse_signature(fd, a->store, a->force))
		return -1;
	return write_new_store(fd, a->store, origin_size, a->chunk, a->epochs, l);
}

static int device_number(const char *path, dev_t *dev)
{
	struct stat st;

	if (stat(path, &st))
		return fail_errno(AMBER_ESYS, "%s", path);
	if (!S_ISBLK(st.st_mode))
		return fail(AMBER_ESYS, "%s is not a block device", path);
	*dev = st.st_rdev;
	return 0;
}

static int table_params(const struct create_args *a, char *buf, size_t len,
			const struct store_layout *l)
{
	char features[128];
	size_t used = 0;
	dev_t origin, store;
	int n = 0;

	if (device_number(a->origin, &origin) || device_number(a->store, &store))
		return -1;
	if (a->overflow && ++n)
		used += snprintf(features + used, sizeof(features) - used, " overflow=%s",
				 a->overflow);
	if (a->block_timeout && ++n)
		used += snprintf(features + used, sizeof(features) - used,
				 " block_timeout_ms=%" PRIu64, a->block_timeout);
	if (a->intent && ++n) {
		if (check_intent(a->intent, l->chunk_sectors))
			return -1;
		used += snprintf(features + used, sizeof(features) - used,
				 " intent_sectors=%" PRIu64, a->intent / 512);
	}
	used = snprintf(buf, len, "%u:%u %u:%u %u", major(origin), minor(origin),
			major(store), minor(store), l->chunk_sectors);
	if (n)
		snprintf(buf + used, len - used, " %d%s", n, features);
	return 0;
}

static int create_devices(const struct create_args *a, const struct store_layout *l)
{
	char params[256], view[DM_NAME_MAX], view_params[32];
	struct amber_volume v;

	if (table_params(a, params, sizeof(params), l) || kernel_load_module() ||
	    dm_create(a->name, AMBER_TARGET, l->origin_sectors, params, false))
		return -1;
	snprintf(view, sizeof(view), "%s%s", a->name, VIEW_SUFFIX);
	if (!volume_open(a->name, &v)) {
		snprintf(view_params, sizeof(view_params), "%u:%u", v.major, v.minor);
		if (!dm_create(view, AMBER_VIEW_TARGET, v.sectors, view_params, true))
			return 0;
	}
	error_append(" (removing %s again)", a->name);
	dm_remove(a->name);
	return -1;
}

int create_main(int argc, char **argv)
{
	struct cli c = { .command = "create", .usage = usage, .options = options };
	struct create_args a = { 0 };
	struct store_layout layout;
	uint64_t origin_size;
	int fd, ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (parse_args(&c, &a) || origin_bytes(a.origin, &origin_size))
		return -1;
	if (dm_exists(a.name))
		return fail(AMBER_ESYS, "device %s exists already", a.name);
	fd = open(a.store, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", a.store);
	ret = prepare_store(&a, fd, origin_size, &layout);
	close(fd);		/* the target needs it exclusively */
	if (ret || create_devices(&a, &layout))
		return -1;
	printf("created /dev/mapper/%s and /dev/mapper/%s%s\n", a.name, a.name, VIEW_SUFFIX);
	return 0;
}
