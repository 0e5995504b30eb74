/* SPDX-License-Identifier: GPL-2.0 */
#ifndef AMBER_PROBE_H
#define AMBER_PROBE_H

/*
 * Look for a known signature at the start of @fd, blkid style: ext2/3/4,
 * xfs, btrfs, swap, LUKS, LVM2, GPT or DOS partition table, an amber store
 * or an amber backup. Sets *@found to its name, or NULL when none is there.
 */
int probe_signature(int fd, const char **found);

#endif
