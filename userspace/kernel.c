// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <linux/nbd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "module/uapi/amber.h"
#include "error.h"
#include "kernel.h"
#include "util.h"

extern char **environ;

/* ---- device-mapper ---- */

/* libdevmapper's own messages are dropped: errors carry the errno. */
static void quiet_log(int level, const char *file, int line, int dm_errno,
		      const char *f, ...)
{
	(void)level, (void)file, (void)line, (void)dm_errno, (void)f;
}

/* Say so plainly instead of failing on the first permission error. */
static bool is_root(void)
{
	if (!geteuid())
		return true;
	fail(AMBER_ESYS, "must run as root: device-mapper and /dev/%s are root only",
	     AMBER_CONTROL_NAME);
	return false;
}

static struct dm_task *task_for(int type, const char *name)
{
	struct dm_task *dmt;

	if (!is_root())
		return NULL;
	dm_log_with_errno_init(quiet_log);
	dmt = dm_task_create(type);
	if (!dmt) {
		fail(AMBER_ESYS, "device-mapper is not available");
		return NULL;
	}
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		fail(AMBER_ESYS, "bad device name '%s'", name);
		return NULL;
	}
	return dmt;
}

/* Run @dmt, waiting for udev to settle device nodes when @udev. */
static int run_task(struct dm_task *dmt, bool udev, const char *what, const char *name)
{
	uint32_t cookie = 0;
	int ok;

	if (udev && !dm_task_set_cookie(dmt, &cookie, 0))
		return fail(AMBER_ESYS, "%s %s: udev cookie failed", what, name);
	ok = dm_task_run(dmt);
	if (udev)
		dm_udev_wait(cookie);
	if (ok)
		return 0;
	errno = dm_task_get_errno(dmt);
	if (errno == EINVAL)
		return fail(AMBER_ESYS, "%s %s: invalid argument (the kernel log says why)",
			    what, name);
	return fail_errno(AMBER_ESYS, "%s %s", what, name);
}

int dm_create(const char *name, const char *target, uint64_t sectors,
	      const char *params, bool read_only)
{
	struct dm_task *dmt = task_for(DM_DEVICE_CREATE, name);
	int ret = -1;

	if (!dmt)
		return -1;
	if ((read_only && !dm_task_set_ro(dmt)) ||
	    !dm_task_add_target(dmt, 0, sectors, target, params))
		fail(AMBER_ESYS, "create %s: out of memory", name);
	else
		ret = run_task(dmt, true, "create", name);
	dm_task_destroy(dmt);
	return ret;
}

int dm_remove(const char *name)
{
	struct dm_task *dmt = task_for(DM_DEVICE_REMOVE, name);
	int ret;

	if (!dmt)
		return -1;
	dm_task_retry_remove(dmt);
	ret = run_task(dmt, true, "remove", name);
	dm_task_destroy(dmt);
	return ret;
}

/* Replace the table of @name: suspend, load the new one, resume. */
int dm_reload(const char *name, const char *target, uint64_t sectors, const char *params)
{
	struct dm_task *dmt;
	int ret = -1;

	dmt = task_for(DM_DEVICE_SUSPEND, name);
	if (!dmt)
		return -1;
	ret = run_task(dmt, false, "suspend", name);
	dm_task_destroy(dmt);
	if (ret)
		return -1;
	dmt = task_for(DM_DEVICE_RELOAD, name);
	if (!dmt)
		goto resume;
	if (!dm_task_add_target(dmt, 0, sectors, target, params))
		fail(AMBER_ESYS, "reload %s: out of memory", name);
	else
		ret = run_task(dmt, false, "load", name);
	dm_task_destroy(dmt);
resume:
	dmt = task_for(DM_DEVICE_RESUME, name);
	if (!dmt)
		return -1;
	if (run_task(dmt, true, "resume", name))
		ret = -1;
	dm_task_destroy(dmt);
	return ret;
}

static int device_info(const char *name, struct dm_info *info)
{
	struct dm_task *dmt = task_for(DM_DEVICE_INFO, name);
	int ret;

	if (!dmt)
		return -1;
	ret = run_task(dmt, false, "info", name);
	if (!ret && !dm_task_get_info(dmt, info))
		ret = fail(AMBER_ESYS, "info %s failed", name);
	dm_task_destroy(dmt);
	return ret;
}

bool dm_exists(const char *name)
{
	struct dm_info info;

	return !device_info(name, &info) && info.exists;
}

int dm_message(const char *name, const char *message)
{
	struct dm_task *dmt = task_for(DM_DEVICE_TARGET_MSG, name);
	int ret = -1;

	if (!dmt)
		return -1;
	if (!dm_task_set_sector(dmt, 0) || !dm_task_set_message(dmt, message))
		fail(AMBER_ESYS, "message %s: out of memory", name);
	else
		ret = run_task(dmt, false, message, name);
	dm_task_destroy(dmt);
	return ret;
}

/*
 * The table (DM_DEVICE_TABLE) or status (DM_DEVICE_STATUS) of @name, for
 * its targets to be read with dm_get_next_target(); NULL on an error.
 */
static struct dm_task *targets_of(const char *name, int type)
{
	struct dm_task *dmt = task_for(type, name);

	if (dmt && run_task(dmt, false, type == DM_DEVICE_TABLE ? "table" : "status", name)) {
		dm_task_destroy(dmt);
		return NULL;
	}
	return dmt;
}

/* The one target of @name: its type, length and status or table line. */
static int target_line(const char *name, int type, char *target, size_t target_len,
		       uint64_t *sectors, char *params, size_t params_len)
{
	struct dm_task *dmt = targets_of(name, type);
	char *t = NULL, *p = NULL;
	uint64_t start, length;
	void *next;
	int ret = -1;

	if (!dmt)
		return -1;
	next = dm_get_next_target(dmt, NULL, &start, &length, &t, &p);
	if (!t || next || start) {
		fail(AMBER_ESYS, "%s does not have exactly one target", name);
		goto out;
	}
	snprintf(target, target_len, "%s", t);
	snprintf(params, params_len, "%s", p ? p : "");
	*sectors = length;
	ret = 0;
out:
	dm_task_destroy(dmt);
	return ret;
}

static int one_target(const char *name, int type, const char *target, uint64_t *sectors,
		      char *line, size_t len)
{
	char found[64];

	if (target_line(name, type, found, sizeof(found), sectors, line, len))
		return -1;
	if (strcmp(found, target))
		return fail(AMBER_ESYS, "%s has a %s target, not %s", name, found, target);
	return 0;
}

bool volume_is_amber(const char *name)
{
	struct dm_task *dmt = targets_of(name, DM_DEVICE_TABLE);
	char *target = NULL, *params = NULL;
	uint64_t start, length;
	bool amber;

	if (!dmt)
		return false;
	dm_get_next_target(dmt, NULL, &start, &length, &target, &params);
	amber = target && !strcmp(target, AMBER_TARGET);
	dm_task_destroy(dmt);
	return amber;
}

int dm_target_status(const char *name, const char *target, uint64_t *sectors, char *status,
		     size_t len)
{
	return one_target(name, DM_DEVICE_STATUS, target, sectors, status, len);
}

int dm_target_table(const char *name, const char *target, uint64_t *sectors, char *table,
		    size_t len)
{
	return one_target(name, DM_DEVICE_TABLE, target, sectors, table, len);
}

static int amber_line(const char *name, int type, uint64_t *sectors, char *params,
		      size_t len)
{
	char target[64];

	if (target_line(name, type, target, sizeof(target), sectors, params, len))
		return -1;
	if (strcmp(target, AMBER_TARGET))
		return fail(AMBER_ESYS, "%s is not an amber device (target %s)", name, target);
	return 0;
}

int dm_for_each(const char *target, int (*fn)(void *ctx, const char *name), void *ctx)
{
	struct dm_task *dmt = task_for(DM_DEVICE_LIST, NULL);
	char type[64], params[1024];
	struct dm_names *names;
	uint64_t sectors;
	uint32_t next = 0;
	int ret = -1;

	if (!dmt || run_task(dmt, false, "list", "devices"))
		goto out;
	names = dm_task_get_names(dmt);
	for (; names && names->dev; names = (void *)((char *)names + next)) {
		next = names->next;
		if (!target_line(names->name, DM_DEVICE_STATUS, type, sizeof(type), &sectors,
				 params, sizeof(params)) &&
		    !strcmp(type, target) && fn(ctx, names->name))
			goto out;
		if (!next)
			break;
	}
	ret = 0;
out:
	if (dmt)
		dm_task_destroy(dmt);
	return ret;
}

static bool target_loaded(const char *target)
{
	struct dm_task *dmt = task_for(DM_DEVICE_LIST_VERSIONS, NULL);
	struct dm_versions *v;
	bool found = false;
	uint32_t next = 0;

	if (!dmt)
		return false;
	if (dm_task_run(dmt))
		for (v = dm_task_get_versions(dmt); v && !found;
		     v = next ? (void *)((char *)v + next) : NULL) {
			next = v->next;
			found = !strcmp(v->name, target);
		}
	dm_task_destroy(dmt);
	return found;
}

/* Run a helper quietly; true when it exits 0. */
static bool run_quietly(const char *const argv[])
{
	posix_spawn_file_actions_t fa;
	int status = 1;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	if (!posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ))
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	posix_spawn_file_actions_destroy(&fa);
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

int kernel_load_target(const char *target, const char *module)
{
	if (!target_loaded(target))
		run_quietly((const char *const[]){ "modprobe", module, NULL });
	if (!target_loaded(target))
		return fail(AMBER_ESYS, "the kernel has no %s target (modprobe %s failed)",
			    target, module);
	return 0;
}

int kernel_load_module(void)
{
	const char *path = getenv("AMBER_MODULE");

	if (target_loaded(AMBER_TARGET))
		return 0;
	run_quietly((const char *const[]){ "modprobe", "dm-amber", NULL });
	if (target_loaded(AMBER_TARGET))
		return 0;
	if (!path || !*path)
		return fail(AMBER_ESYS, "cannot load dm-amber: modprobe dm-amber failed"
			    " (set AMBER_MODULE to the path of dm-amber.ko to insmod it)");
	run_quietly((const char *const[]){ "modprobe", "dm-mod", NULL });
	if (!run_quietly((const char *const[]){ "insmod", path, NULL }) ||
	    !target_loaded(AMBER_TARGET))
		return fail(AMBER_ESYS, "cannot load dm-amber: modprobe dm-amber and insmod %s"
			    " failed", path);
	return 0;
}

/* The kernel's new_encode_dev(), as module/uapi/amber.h names volumes. */
static uint32_t encode_dev(uint32_t major, uint32_t minor)
{
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

int volume_open(const char *name, struct amber_volume *v)
{
	char params[1024];
	struct dm_info info;

	memset(v, 0, sizeof(*v));
	if (strlen(name) >= sizeof(v->name))
		return fail(AMBER_EUSAGE, "device name '%s' is too long", name);
	strcpy(v->name, name);
	if (amber_line(name, DM_DEVICE_TABLE, &v->sectors, params, sizeof(params)) ||
	    table_parse(params, &v->table))
		return error_prefix("%s: ", name);
	if (device_info(name, &info))
		return -1;
	v->major = info.major;
	v->minor = info.minor;
	v->dev = encode_dev(info.major, info.minor);
	return 0;
}

int volume_status(const char *name, struct amber_status *st)
{
	char params[1024];
	uint64_t sectors;

	if (amber_line(name, DM_DEVICE_STATUS, &sectors, params, sizeof(params)) ||
	    status_parse(params, st))
		return error_prefix("%s: ", name);
	return 0;
}

/* ---- the control device ---- */

static int make_control_node(const char *path)
{
	unsigned int major, minor;
	FILE *f = fopen("/sys/class/misc/" AMBER_CONTROL_NAME "/dev", "r");
	int n;

	if (!f)
		return fail(AMBER_ESYS, "dm-amber's control device is missing (module not loaded?)");
	n = fscanf(f, "%u:%u", &major, &minor);
	fclose(f);
	if (n != 2)
		return fail(AMBER_ESYS, "cannot read the control device number from sysfs");
	if (mknod(path, S_IFCHR | 0600, makedev(major, minor)) && errno != EEXIST)
		return fail_errno(AMBER_ESYS, "mknod %s", path);
	return 0;
}

int control_open(void)
{
	static const char path[] = "/dev/" AMBER_CONTROL_NAME;
	int fd;

	if (!is_root())
		return -1;
	fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		if (make_control_node(path))
			return -1;
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	return fd;
}

int control_snap(int ctl, const uint32_t *devs, unsigned int count,
		 uint32_t timeout_ms, uint64_t *epochs)
{
	struct amber_ioc_snap snap = {
		.count = count,
		.timeout_ms = timeout_ms,
		.devs = (uintptr_t)devs,
		.epochs = (uintptr_t)epochs,
	};

	if (!ioctl(ctl, AMBER_IOC_SNAP, &snap))
		return 0;
	if (errno == EBUSY)
		return fail(AMBER_ESYS, "snap: a snapshot is already active (or a volume is invalid)");
	if (errno == ETIMEDOUT)
		return fail(AMBER_ESYS, "snap: in-flight writes did not drain in time;"
			    " nothing was cut");
	return fail_errno(AMBER_ESYS, "snap");
}

/* Chunks per AMBER_IOC_CHANGED call: the kernel's window limit. */
#define CHANGED_WINDOW	AMBER_CHANGED_MAX_WINDOW

static int changed_window(int ctl, struct amber_ioc_changed *req, uint64_t *words)
{
	uint64_t asked = req->nr_chunks, i;

	req->bitmap = (uintptr_t)words;
	if (ioctl(ctl, AMBER_IOC_CHANGED, req)) {
		if (errno == ERANGE)
			return fail(AMBER_ESYS, "the change maps since epoch %" PRIu64
				    " are gone or untrusted: take a full backup",
				    (uint64_t)req->since_epoch);
		return fail_errno(AMBER_ESYS, "changed chunks");
	}
	if (req->nr_chunks != asked)
		return fail(AMBER_ESYS, "changed chunks: the kernel filled %" PRIu64
			    " of %" PRIu64 " bits", (uint64_t)req->nr_chunks, asked);
	for (i = 0; i < DIV_ROUND_UP(asked, 64); i++)
		words[i] = le64toh(words[i]);	/* bytes in order: bit N of byte B */
	return 0;
}

int control_changed(int ctl, uint32_t dev, uint64_t since_epoch, uint64_t nr_chunks,
		    uint64_t *bitmap, uint64_t *snap_epoch, uint8_t uuid[16], bool *exact)
{
	struct amber_ioc_changed req;
	uint64_t first;

	*exact = true;
	for (first = 0; first < nr_chunks; first += CHANGED_WINDOW) {
		req = (struct amber_ioc_changed){
			.dev = dev,
			.since_epoch = since_epoch,
			.first_chunk = first,
			.nr_chunks = MIN(CHANGED_WINDOW, nr_chunks - first),
		};
		if (changed_window(ctl, &req, bitmap + first / 64))
			return -1;
		if (first && (req.snap_epoch != *snap_epoch || memcmp(uuid, req.uuid, 16)))
			return fail(AMBER_ESYS, "changed chunks: the snapshot changed meanwhile");
		*snap_epoch = req.snap_epoch;
		*exact &= !!(req.flags & AMBER_CHANGED_EXACT);
		memcpy(uuid, req.uuid, 16);
	}
	return 0;
}

int control_copied(int ctl, uint32_t dev, uint64_t start, uint64_t *out, size_t max,
		   size_t *count)
{
	struct amber_ioc_copied copied = {
		.dev = dev,
		.start_chunk = start,
		.max = max,
		.chunks = (uintptr_t)out,
	};

	if (ioctl(ctl, AMBER_IOC_COPIED, &copied))
		return fail_errno(AMBER_ESYS, "copied chunks");
	*count = copied.count;
	return 0;
}

int control_release(int ctl, uint32_t dev, uint64_t first, uint64_t count)
{
	struct amber_ioc_release release = {
		.dev = dev,
		.first_chunk = first,
		.count = count,
	};

	if (ioctl(ctl, AMBER_IOC_RELEASE, &release))
		return fail_errno(AMBER_ESYS, "release");
	return 0;
}

/* ---- block devices by number ---- */

static int dev_node_name(uint32_t major, uint32_t minor, char *path, size_t len)
{
	char uevent[64], line[256];
	FILE *f;

	snprintf(uevent, sizeof(uevent), "/sys/dev/block/%u:%u/uevent", major, minor);
	f = fopen(uevent, "r");
	if (!f)
		return fail_errno(AMBER_ESYS, "block device %u:%u", major, minor);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "DEVNAME=", 8)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(path, len, "/dev/%s", line + 8);
			fclose(f);
			return 0;
		}
	fclose(f);
	return fail(AMBER_ESYS, "block device %u:%u has no name in sysfs", major, minor);
}

int open_dev_node(uint32_t major, uint32_t minor, int flags)
{
	char path[300];
	struct stat st;
	int fd;

	if (dev_node_name(major, minor, path, sizeof(path)))
		return -1;
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	if (fstat(fd, &st) || !S_ISBLK(st.st_mode) || st.st_rdev != makedev(major, minor)) {
		close(fd);
		return fail(AMBER_ESYS, "%s is not block device %u:%u", path, major, minor);
	}
	return fd;
}

/* ---- amber's own devices among block devices ---- */

/* The dm name of the block device at /sys/class/block/@sysname, "" if not dm. */
static int dm_name_of(const char *sysname, char *name, size_t len)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/block/%s/dm/name", sysname);
	*name = 0;
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : fail_errno(AMBER_ESYS, "%s", path);
	if (!fgets(name, len, f))
		*name = 0;
	fclose(f);
	name[strcspn(name, "\n")] = 0;
	return 0;
}

/*
 * The type of the first target of dm device @name (amber's have one; a
 * device of several targets, whatever the first, is no amber device).
 */
static int first_target(const char *name, char *target, size_t len)
{
	struct dm_task *dmt = targets_of(name, DM_DEVICE_TABLE);
	char *type = NULL, *params;
	uint64_t start, length;

	if (!dmt)
		return error_prefix("to tell whether %s is an amber device: ", name);
	dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
	snprintf(target, len, "%s", type ? type : "");
	dm_task_destroy(dmt);
	return 0;
}

/* "volume", "view" or NULL: what the block device @sysname is to amber. */
static int amber_kind(const char *sysname, const char **kind)
{
	char name[DM_NAME_MAX + 2], target[64];

	*kind = NULL;
	if (dm_name_of(sysname, name, sizeof(name)))
		return -1;
	if (!*name)
		return 0;
	if (first_target(name, target, sizeof(target)))
		return -1;
	if (!strcmp(target, AMBER_TARGET))
		*kind = "volume";
	else if (!strcmp(target, AMBER_VIEW_TARGET))
		*kind = "view";
	return 0;
}

/* Is a device stacked on @sysname an amber volume or view? */
static int amber_holder(const char *sysname, bool *held)
{
	char path[300];
	const char *kind = NULL;
	struct dirent *d;
	DIR *dir;
	int ret = 0;

	*held = false;
	snprintf(path, sizeof(path), "/sys/class/block/%s/holders", sysname);
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : fail_errno(AMBER_ESYS, "%s", path);
	while (!ret && !*held && (d = readdir(dir)))
		if (d->d_name[0] != '.') {
			ret = amber_kind(d->d_name, &kind);
			*held = kind != NULL;
		}
	closedir(dir);
	return ret;
}

int refuse_amber_device(uint32_t major, uint32_t minor, const char *path)
{
	char link[64], target[300], *sysname;
	const char *kind;
	bool held;
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major, minor);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return fail_errno(AMBER_ESYS, "%s: %s", path, link);
	target[n] = 0;
	sysname = strrchr(target, '/') + 1;
	if (amber_kind(sysname, &kind) || amber_holder(sysname, &held))
		return error_prefix("%s: ", path);
	if (kind && !strcmp(kind, "volume"))
		return fail(AMBER_ESYS, "%s is an amber volume, live: back it up with"
			    " 'amber backup NAME'", path);
	if (kind)
		return fail(AMBER_ESYS, "%s is the view of an amber snapshot: back it up"
			    " with 'amber backup NAME --use-snapshot'", path);
	if (held)
		return fail(AMBER_ESYS, "%s lies under an amber volume (its origin or"
			    " store): back up the volume with 'amber backup NAME'", path);
	return 0;
}

/* ---- the kernel's NBD client, over local socket pairs ---- */

/* /sys/block/nbd<i>/pid exists while a server runs the device. */
static bool nbd_in_use(int index)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/block/nbd%d/pid", index);
	return !access(path, F_OK);
}

/* Give the free device at @d->path its sockets, size and flags: 0, 1 if busy. */
static int nbd_setup(struct nbd_device *d, const int *socks, unsigned int nr, uint64_t bytes,
		     unsigned int timeout_s)
{
	/*
	 * Sectors of 512 bytes: the device above takes the largest logical
	 * block size of its devices, and must keep the target's.
	 */
	unsigned long block = 512;
	unsigned long flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_CAN_MULTI_CONN;
	unsigned int i;

	if (ioctl(d->fd, NBD_SET_BLKSIZE, block) || ioctl(d->fd, NBD_SET_SIZE_BLOCKS, bytes / block) ||
	    ioctl(d->fd, NBD_SET_TIMEOUT, (unsigned long)timeout_s) ||
	    ioctl(d->fd, NBD_SET_FLAGS, flags))
		return errno == EBUSY ? 1 : fail_errno(AMBER_ESYS, "%s: setting it up", d->path);
	for (i = 0; i < nr; i++)
		if (ioctl(d->fd, NBD_SET_SOCK, (unsigned long)socks[i])) {
			if (errno != EBUSY)
				fail_errno(AMBER_ESYS, "%s: giving it socket %u", d->path, i);
			ioctl(d->fd, NBD_CLEAR_SOCK);
			return errno == EBUSY ? 1 : -1;
		}
	return 0;
}

int nbd_attach(struct nbd_device *d, const int *socks, unsigned int nr, uint64_t bytes,
	       unsigned int timeout_s)
{
	int ret;

	if (!is_root())
		return -1;
	if (access("/sys/module/nbd", F_OK))
		run_quietly((const char *const[]){ "modprobe", "nbd", NULL });
	for (d->index = 0;; d->index++) {
		snprintf(d->path, sizeof(d->path), "/dev/nbd%d", d->index);
		if (nbd_in_use(d->index))
			continue;
		d->fd = open(d->path, O_RDWR | O_CLOEXEC);
		if (d->fd < 0 && errno == ENOENT)
			return fail(AMBER_ESYS, "no free NBD device (/dev/nbd0 to /dev/nbd%d are in use;"
				    " modprobe nbd nbds_max=N for more)", d->index - 1);
		if (d->fd < 0)
			return fail_errno(AMBER_ESYS, "%s", d->path);
		ret = nbd_setup(d, socks, nr, bytes, timeout_s);
		if (!ret)
			return 0;
		close(d->fd);
		d->fd = -1;
		if (ret < 0)
			return -1;
	}
}

int nbd_run(struct nbd_device *d)
{
	int ret = ioctl(d->fd, NBD_DO_IT);

	ioctl(d->fd, NBD_CLEAR_QUE);
	ioctl(d->fd, NBD_CLEAR_SOCK);
	return ret;
}

/* Started, and of its full size: the kernel sets the size after the pid. */
bool nbd_ready(const struct nbd_device *d, uint64_t bytes)
{
	unsigned long long sectors = 0;
	char path[64];
	FILE *f;

	if (!nbd_in_use(d->index))
		return false;
	snprintf(path, sizeof(path), "/sys/block/nbd%d/size", d->index);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fscanf(f, "%llu", &sectors) != 1)
		sectors = 0;
	fclose(f);
	return sectors == bytes / 512;
}

int nbd_disconnect(struct nbd_device *d)
{
	if (ioctl(d->fd, NBD_DISCONNECT))
		return fail_errno(AMBER_ESYS, "%s: disconnect", d->path);
	return 0;
}

bool nbd_is(uint32_t major, uint32_t minor, int *index)
{
	char path[64], link[256];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major, minor);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	return sscanf(base, "nbd%d", index) == 1;
}

bool nbd_index_running(int index)
{
	return nbd_in_use(index);
}
