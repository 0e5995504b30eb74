/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Everything that talks to dm-amber: device-mapper through libdevmapper and
 * the control device /dev/amber-control (module/uapi/amber.h). The rest of
 * amber reaches the kernel only through here.
 */
#ifndef AMBER_KERNEL_H
#define AMBER_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmline.h"

#define AMBER_TARGET		"amber"
#define AMBER_VIEW_TARGET	"amber-view"
#define VIEW_SUFFIX		"-view"
#define DM_NAME_MAX		128

/* Load dm-amber unless its targets are there: modprobe, then insmod
 * $AMBER_MODULE. */
int kernel_load_module(void);

/* Load the kernel module @module unless the dm target @target is there. */
int kernel_load_target(const char *target, const char *module);

int dm_create(const char *name, const char *target, uint64_t sectors,
	      const char *params, bool read_only);
/* Suspend @name, load this one-target table, resume (even after a failed load). */
int dm_reload(const char *name, const char *target, uint64_t sectors, const char *params);
/* The status line of @name, whose one target must be @target. */
int dm_target_status(const char *name, const char *target, uint64_t *sectors, char *status,
		     size_t len);
/* Its table line, likewise. */
int dm_target_table(const char *name, const char *target, uint64_t *sectors, char *table,
		    size_t len);
int dm_remove(const char *name);
bool dm_exists(const char *name);
int dm_message(const char *name, const char *message);
/* Call @fn for every dm device whose single target is @target. */
int dm_for_each(const char *target, int (*fn)(void *ctx, const char *name), void *ctx);

/* An amber device, as its table and dm info describe it. */
struct amber_volume {
	char name[DM_NAME_MAX];
	uint32_t major, minor;
	uint32_t dev;			/* encoded for the control ioctls */
	uint64_t sectors;
	struct amber_table table;
};

/* Whether @name is a dm device whose (first) target is amber. */
bool volume_is_amber(const char *name);
/* Fails unless @name is a dm device with an amber table. */
int volume_open(const char *name, struct amber_volume *v);
int volume_status(const char *name, struct amber_status *st);

/* /dev/amber-control; made from sysfs when udev did not make it. */
int control_open(void);
int control_snap(int ctl, const uint32_t *devs, unsigned int count,
		 uint32_t timeout_ms, uint64_t *epochs);
/* Chunks changed since @since_epoch, as a bitmap of nr_chunks bits. */
int control_changed(int ctl, uint32_t dev, uint64_t since_epoch, uint64_t nr_chunks,
		    uint64_t *bitmap, uint64_t *snap_epoch, uint8_t uuid[16], bool *exact);
int control_copied(int ctl, uint32_t dev, uint64_t start, uint64_t *out, size_t max,
		   size_t *count);
int control_release(int ctl, uint32_t dev, uint64_t first, uint64_t count);

/*
 * Fails (AMBER_ESYS, naming a better command) when the block device
 * @major:@minor (opened at @path) is an amber volume, the view of an amber
 * snapshot, or lies under an amber volume (its origin or its store). Needs
 * root only for a device-mapper device.
 */
int refuse_amber_device(uint32_t major, uint32_t minor, const char *path);

/* Open the block device @major:@minor by its /dev node. */
int open_dev_node(uint32_t major, uint32_t minor, int flags);

/*
 * The kernel's NBD client, /dev/nbd<index>, served by this process over
 * local socket pairs: the device is read-only and every socket is one
 * connection (the kernel ends are given; the process serves the others).
 */
struct nbd_device {
	int index;
	int fd;				/* of path, for the ioctls */
	char path[32];
};

/* Take a free NBD device (modprobe nbd when needed) of @bytes for @socks. */
int nbd_attach(struct nbd_device *d, const int *socks, unsigned int nr, uint64_t bytes,
	       unsigned int timeout_s);
/* Run it until it is disconnected (NBD_DO_IT): blocks, call in a thread of its own. */
int nbd_run(struct nbd_device *d);
/* Whether block device @major:@minor is an NBD device, /dev/nbd<@index>. */
bool nbd_is(uint32_t major, uint32_t minor, int *index);
/* True while a server runs /dev/nbd<@index>. */
bool nbd_index_running(int index);
/* True once the device is running with the size of @bytes. */
bool nbd_ready(const struct nbd_device *d, uint64_t bytes);
/* Ask the kernel to end the device: nbd_run() returns. */
int nbd_disconnect(struct nbd_device *d);

#endif
