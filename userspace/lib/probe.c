// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "module/uapi/amber.h"
#include "error.h"
#include "format.h"
#include "probe.h"
#include "util.h"

#define PROBE_BYTES	(68 * KiB)	/* covers btrfs at 64 KiB */

struct signature {
	const char *name;
	uint32_t offset;
	const char *magic;
	uint32_t len;
};

#define SIG(name, offset, magic) { name, offset, magic, sizeof(magic) - 1 }

static const struct signature signatures[] = {
	SIG("an ext2/3/4 filesystem", 1080, "\x53\xef"),
	SIG("an xfs filesystem", 0, "XFSB"),
	SIG("a btrfs filesystem", 65600, "_BHRfS_M"),
	SIG("swap space", 4086, "SWAPSPACE2"),
	SIG("a LUKS volume", 0, "LUKS\xba\xbe"),
	SIG("an LVM2 physical volume", 512, "LABELONE"),
	SIG("a GPT partition table", 512, "EFI PART"),
	SIG("an amber backup", 0, BKP_MAGIC),
	SIG("a DOS partition table or boot sector", 510, "\x55\xaa"),
};

static bool is_amber_store(const uint8_t *buf, size_t len)
{
	return len >= 8 && get_le64(buf) == AMBER_SB_MAGIC;
}

int probe_signature(int fd, const char **found)
{
	uint8_t *buf = malloc(PROBE_BYTES);
	const struct signature *s;
	ssize_t len;

	*found = NULL;
	if (!buf)
		return fail(AMBER_ESYS, "out of memory");
	len = pread(fd, buf, PROBE_BYTES, 0);
	if (len < 0) {
		free(buf);
		return fail_errno(AMBER_ESYS, "reading the first %" PRIu64 " KiB",
				  PROBE_BYTES / KiB);
	}
	if (is_amber_store(buf, len))
		*found = "an amber store";
	for (s = signatures; !*found && s < signatures + ARRAY_SIZE(signatures); s++)
		if (s->offset + s->len <= (size_t)len &&
		    !memcmp(buf + s->offset, s->magic, s->len))
			*found = s->name;
	free(buf);
	return 0;
}
