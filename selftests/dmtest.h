/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Device-mapper helpers of the C selftests, over libdevmapper. Every
 * function returns 0 or the negative errno the kernel answered.
 * Scratch disks: getenv("AMBER_DISK_ORIGIN") and the like (see lib.sh).
 */
#ifndef AMBER_SELFTESTS_DMTEST_H
#define AMBER_SELFTESTS_DMTEST_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <libdevmapper.h>

static inline int dmt_run(struct dm_task *dmt)
{
	int err;

	if (dm_task_run(dmt))
		return 0;
	err = dm_task_get_errno(dmt);
	return err ? -err : -EIO;
}

/* DM_DEVICE_REMOVE (retried while busy), _SUSPEND, _RESUME, ... by name. */
static inline int dmt_simple(int type, const char *name)
{
	struct dm_task *dmt = dm_task_create(type);
	int err = -ENOMEM;

	if (!dmt)
		return -ENOMEM;
	if (dm_task_set_name(dmt, name) &&
	    (type != DM_DEVICE_REMOVE || dm_task_retry_remove(dmt)))
		err = dmt_run(dmt);
	dm_task_destroy(dmt);
	return err;
}

/* Load a table of one target of @len sectors into the inactive slot. */
static inline int dmt_load(const char *name, uint64_t len, const char *target,
			   const char *params, int readonly)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_RELOAD);
	int err = -ENOMEM;

	if (!dmt)
		return -ENOMEM;
	if (dm_task_set_name(dmt, name) &&
	    dm_task_add_target(dmt, 0, len, target, params) &&
	    (!readonly || dm_task_set_ro(dmt)))
		err = dmt_run(dmt);
	dm_task_destroy(dmt);
	return err;
}

/*
 * Create a device with one target and resume it, step by step so that the
 * error is the failing step's (a refused table: the load's); on failure
 * nothing is left behind.
 */
static inline int dmt_create(const char *name, uint64_t len, const char *target,
			     const char *params, int readonly)
{
	int err = dmt_simple(DM_DEVICE_CREATE, name);

	if (err)
		return err;
	err = dmt_load(name, len, target, params, readonly);
	if (!err)
		err = dmt_simple(DM_DEVICE_RESUME, name);
	if (err)
		dmt_simple(DM_DEVICE_REMOVE, name);
	return err;
}

/* The device's info; info->exists is 0 when there is no such device. */
static inline int dmt_info(const char *name, struct dm_info *info)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);
	int err = -ENOMEM;

	if (!dmt)
		return -ENOMEM;
	if (dm_task_set_name(dmt, name)) {
		err = dmt_run(dmt);
		if (!err && !dm_task_get_info(dmt, info))
			err = -EIO;
	}
	dm_task_destroy(dmt);
	return err;
}

/* /dev/dm-<minor> of a device (devtmpfs makes it; no udev needed). */
static inline int dmt_devnode(const char *name, char *path, size_t size)
{
	struct dm_info info;
	int err = dmt_info(name, &info);

	if (err)
		return err;
	if (!info.exists)
		return -ENODEV;
	snprintf(path, size, "/dev/dm-%" PRIu32, info.minor);
	return 0;
}

/* The first target's parameters: DM_DEVICE_TABLE or DM_DEVICE_STATUS. */
static inline int dmt_params(int type, const char *name, char *out, size_t size)
{
	struct dm_task *dmt = dm_task_create(type);
	uint64_t start, len;
	char *target, *params;
	int err = -ENOMEM;

	if (!dmt)
		return -ENOMEM;
	if (dm_task_set_name(dmt, name)) {
		err = dmt_run(dmt);
		if (!err) {
			dm_get_next_target(dmt, NULL, &start, &len, &target, &params);
			snprintf(out, size, "%s", params ? params : "");
		}
	}
	dm_task_destroy(dmt);
	return err;
}

/* Send a target message at sector 0; @out gets the response, if any. */
static inline int dmt_message(const char *name, const char *msg,
			      char *out, size_t size)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_TARGET_MSG);
	const char *resp;
	int err = -ENOMEM;

	if (!dmt)
		return -ENOMEM;
	if (dm_task_set_name(dmt, name) && dm_task_set_sector(dmt, 0) &&
	    dm_task_set_message(dmt, msg)) {
		err = dmt_run(dmt);
		/* A failed task has no response to ask for. */
		resp = err ? NULL : dm_task_get_message_response(dmt);
		if (out)
			snprintf(out, size, "%s", resp ? resp : "");
	}
	dm_task_destroy(dmt);
	return err;
}

#endif /* AMBER_SELFTESTS_DMTEST_H */
