// SPDX-License-Identifier: GPL-2.0
/* amber format: write a new store superblock. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "module/uapi/amber.h"
#include "cli.h"
#include "error.h"
#include "store.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber format --store DEV --origin DEV [--chunk SIZE] [--epochs N] [--force]\n"
"\n"
"Write a new amber store on DEV for the volume ORIGIN: a superblock with a\n"
"new volume uuid, zeroed change maps, and copy-on-write slots on the rest.\n"
"Whatever the store held is lost; the origin is only measured.\n"
"\n"
"  -s, --store DEV    the store device (or a regular file)\n"
"  -o, --origin DEV   the volume the store will protect\n"
"  -c, --chunk SIZE   copy and tracking granule, 4K..1M, a power of two (64K)\n"
"  -e, --epochs N     change maps kept, 2..64: incrementals can reach back\n"
"                     that many snapshots (16)\n"
"  -f, --force        format even if DEV holds a filesystem or a store\n";

enum { OPT_STORE, OPT_ORIGIN, OPT_CHUNK, OPT_EPOCHS, OPT_FORCE };

static const struct cli_option options[] = {
	[OPT_STORE]	= CLI_VALUE("store", 's'),
	[OPT_ORIGIN]	= CLI_VALUE("origin", 'o'),
	[OPT_CHUNK]	= CLI_VALUE("chunk", 'c'),
	[OPT_EPOCHS]	= CLI_VALUE("epochs", 'e'),
	[OPT_FORCE]	= CLI_FLAG("force", 'f'),
	{ },
};

int write_new_store(int fd, const char *path, uint64_t origin_bytes, uint64_t chunk_bytes,
		    uint64_t epochs, struct store_layout *out)
{
	char uuid[37], slots[32], chunk[32];
	uint64_t store_bytes;

	if (fd_size(fd, &store_bytes) ||
	    store_plan(store_bytes, origin_bytes, chunk_bytes, epochs, out) ||
	    store_format(fd, out))
		return error_prefix("%s: ", path);
	printf("formatted %s: volume %s, chunk %s, %u change maps, %" PRIu64 " slots (%s)\n",
	       path, format_uuid(out->uuid, uuid), format_size(chunk_bytes, chunk, sizeof(chunk)),
	       out->cbt_epochs, out->nr_slots,
	       format_size(out->nr_slots * chunk_bytes, slots, sizeof(slots)));
	return 0;
}

/* Size of the origin, which is opened read-only and never written. */
int origin_bytes(const char *path, uint64_t *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	ret = fd_size(fd, bytes) ? error_prefix("%s: ", path) : 0;
	close(fd);
	return ret;
}

int format_main(int argc, char **argv)
{
	struct cli c = { .command = "format", .usage = usage, .options = options };
	uint64_t chunk, epochs, origin_size;
	const char *store, *origin;
	struct store_layout layout;
	int fd, ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 0, 0, "") || cli_required(&c, OPT_STORE, &store) ||
	    cli_required(&c, OPT_ORIGIN, &origin) ||
	    cli_size(&c, OPT_CHUNK, STORE_DEFAULT_CHUNK, &chunk) ||
	    cli_number(&c, OPT_EPOCHS, 2, AMBER_MAX_EPOCHS, STORE_DEFAULT_EPOCHS, &epochs) ||
	    store_check_geometry(chunk, epochs) || origin_bytes(origin, &origin_size))
		return -1;
	fd = open(store, O_RDWR | O_CLOEXEC | O_EXCL);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", store);
	ret = refuse_signature(fd, store, cli_flag(&c, OPT_FORCE));
	if (!ret)
		ret = write_new_store(fd, store, origin_size, chunk, epochs, &layout);
	close(fd);
	return ret;
}
