/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * amber: crash-consistent snapshots and streaming backup for live volumes.
 *
 * Userspace interface of dm-amber: the on-disk store superblock and the
 * ioctls of the control device /dev/amber-control. Everything here is
 * little endian on disk and native endian in ioctls. See docs/DESIGN.md.
 */
#ifndef _UAPI_LINUX_DM_AMBER_H
#define _UAPI_LINUX_DM_AMBER_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define AMBER_VERSION_MAJOR	1
#define AMBER_VERSION_MINOR	0
#define AMBER_VERSION_PATCH	0

/*
 * The store device.
 *
 *   sector 0               superblock (one 4 KiB block, crc32c protected)
 *   cbt_offset             cbt_epochs change maps, each cbt_map_sectors
 *                          long: bit N of map (E % cbt_epochs) is set when
 *                          chunk N was (or may have been) written in epoch E
 *   data_offset            nr_slots copy-on-write slots, chunk_sectors each
 *
 * All offsets and sizes are in 512-byte sectors and multiples of 8.
 */
#define AMBER_SB_MAGIC		0x3142535245424d41ULL	/* "AMBERSB1", little endian */
#define AMBER_SB_VERSION	1
#define AMBER_SB_SIZE		4096
#define AMBER_MAX_EPOCHS	64	/* most change maps a store can keep */
#define AMBER_MIN_CHUNK_SECTORS	8	/* 4 KiB */
#define AMBER_MAX_CHUNK_SECTORS	2048	/* 1 MiB */
/*
 * Most chunks of an origin, and most slots of a store: 8 TiB at 4 KiB
 * chunks, 128 TiB at 64 KiB, 2 PiB at 1 MiB. The kernel's bitmap helpers
 * count bits in unsigned int, and every sum of a bit and a length must fit.
 */
#define AMBER_MAX_CHUNKS	(1ULL << 31)

/* superblock flags */
#define AMBER_SB_CLEAN		(1U << 0)	/* last shutdown wrote exact maps */
#define AMBER_SB_CBT_FAILED	(1U << 1)	/* a map write failed: next is full */
#define AMBER_SB_UNCLEAN	(1U << 2)	/* unclean_epoch names a crash */

struct amber_store_sb {
	__le64 magic;
	__le32 version;
	__le32 flags;
	__u8   uuid[16];		/* identity of the protected volume */
	__le64 origin_sectors;		/* size of the origin at format time */
	__le32 chunk_sectors;		/* power of two, 8..2048 */
	__le32 cbt_epochs;		/* change maps kept, 2..AMBER_MAX_EPOCHS */
	__le64 cbt_offset;		/* first sector of map 0 */
	__le64 cbt_map_sectors;		/* sectors per map */
	__le64 data_offset;		/* first sector of slot 0 */
	__le64 nr_slots;		/* copy-on-write slots */
	__le64 epoch;			/* last barrier cut; 0 = none yet */
	__le64 cbt_valid_from;		/* oldest epoch whose map can be trusted */
	__le64 format_time;		/* seconds since the epoch, at format */
	/*
	 * The epoch of the last unclean shutdown (when AMBER_SB_UNCLEAN is
	 * set, or nonzero in older stores): maps up to it may name extra
	 * chunks.
	 */
	__le64 unclean_epoch;
	__u8   reserved[AMBER_SB_SIZE - 120];
	__le32 pad;
	__le32 csum;			/* CRC-32C of the block, csum = 0 */
} __attribute__((packed));

/*
 * The control device: /dev/amber-control (misc, root only).
 *
 * Volumes are named by the dev_t of their dm device (the "amber" target),
 * encoded as new_encode_dev(): (minor & 0xff) | (major << 8) |
 * ((minor & ~0xff) << 12): not glibc's makedev() encoding.
 */
#define AMBER_CONTROL_NAME	"amber-control"
#define AMBER_IOCTL		0xAB
#define AMBER_MAX_GROUP		16	/* volumes in one atomic barrier */

struct amber_ioc_version {
	__u32 major;
	__u32 minor;
	__u32 patch;
	__u32 pad;
};

/*
 * Raise one commit barrier over @count volumes, atomically: every gate
 * closes, all in-flight writes drain, every epoch is cut, every gate opens.
 * A write acknowledged before the call is in every view; a write submitted
 * after the gates closed is in none. If any volume cannot be cut (already
 * has a snapshot, invalid, drain timed out), none is and the call fails.
 */
struct amber_ioc_snap {
	__u32 count;			/* in: 1..AMBER_MAX_GROUP */
	__u32 timeout_ms;		/* in: drain bound, 0 = volume default */
	__u64 devs;			/* in: pointer to __u32[count] */
	__u64 epochs;			/* out: pointer to __u64[count] */
};

/*
 * Chunks changed after barrier @since_epoch and before the barrier of the
 * snapshot that is active now (epochs since_epoch .. snap_epoch - 1).
 * Fills a bitmap window of @nr_chunks bits starting at @first_chunk (a
 * multiple of 64); bit N of byte B is chunk first_chunk + 8 * B + N.
 * Fails with ERANGE when those epochs' maps are no longer all kept or can't
 * be trusted: the next backup must then be a full one.
 */
#define AMBER_CHANGED_EXACT	(1U << 0)	/* out: no superset bits */
#define AMBER_CHANGED_MAX_WINDOW (8ULL << 20)	/* most chunks in one call */

struct amber_ioc_changed {
	__u32 dev;			/* in */
	__u32 flags;			/* out */
	__u64 since_epoch;		/* in */
	__u64 snap_epoch;		/* out: epoch of the active snapshot */
	__u64 first_chunk;		/* in */
	__u64 nr_chunks;		/* in: bits in the buffer; out: filled */
	__u64 bitmap;			/* in: pointer to (nr_chunks + 7) / 8 bytes */
	__u8  uuid[16];			/* out: volume uuid */
};

/*
 * Chunks held in the store right now (copied and not yet released), in
 * ascending order from @start_chunk: the backup streams these first so the
 * store drains.
 */
#define AMBER_COPIED_MAX	65536		/* most entries in one call */

struct amber_ioc_copied {
	__u32 dev;			/* in */
	__u32 pad;
	__u64 start_chunk;		/* in */
	__u64 max;			/* in: entries the array holds */
	__u64 count;			/* out: entries filled */
	__u64 chunks;			/* in: pointer to __u64[max] */
};

/* The backup has durably streamed chunks [first, first + count). */
struct amber_ioc_release {
	__u32 dev;
	__u32 pad;
	__u64 first_chunk;
	__u64 count;
};

#define AMBER_IOC_VERSION _IOR(AMBER_IOCTL, 0, struct amber_ioc_version)
#define AMBER_IOC_SNAP    _IOW(AMBER_IOCTL, 1, struct amber_ioc_snap)
#define AMBER_IOC_CHANGED _IOWR(AMBER_IOCTL, 2, struct amber_ioc_changed)
#define AMBER_IOC_COPIED  _IOWR(AMBER_IOCTL, 3, struct amber_ioc_copied)
#define AMBER_IOC_RELEASE _IOW(AMBER_IOCTL, 4, struct amber_ioc_release)

#endif /* _UAPI_LINUX_DM_AMBER_H */
