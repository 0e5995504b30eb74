/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels amber builds on, probed by feature so the
 * rest of the code reads like upstream.
 */
#ifndef DM_AMBER_COMPAT_H
#define DM_AMBER_COMPAT_H

#include <linux/blkdev.h>
#include <linux/fs.h>

/* 6.5 turned fmode_t open modes into blk_mode_t. */
#ifdef BLK_OPEN_WRITE
#define AMBER_OPEN_WRITE	BLK_OPEN_WRITE
#else
#define AMBER_OPEN_WRITE	FMODE_WRITE
#endif

#endif /* DM_AMBER_COMPAT_H */
