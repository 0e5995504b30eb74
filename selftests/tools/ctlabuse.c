// SPDX-License-Identifier: GPL-2.0
/*
 * ctlabuse: hostile calls to /dev/amber-control must fail cleanly.
 *
 *   ctlabuse NAME
 *   ctlabuse snap NAME
 *   ctlabuse release NAME FIRST COUNT
 *
 * snap: one AMBER_IOC_SNAP of NAME by its device number, whatever table
 * it has (dmsetup and amber reach only the live one); prints the epoch, or
 * "error <errno text>" and exits 1. release: one AMBER_IOC_RELEASE; exits
 * 0, or 1 with "error <errno text>".
 *
 * Otherwise NAME is an idle amber device. Every call below must fail with the errno
 * named (or, for the good calls, succeed); the device must be idle again at
 * the end. As user nobody the control device must not open (EACCES), and
 * an fd opened by root must not work either (EPERM). Prints one line per
 * check; exit 0 when all held, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uapi/amber.h"

static int failures;
static const char *name;

static void expect(const char *what, int r, int want)
{
	int got = r ? errno : 0;

	printf("%s %s: %s (want %s)\n", got == want ? "ok" : "FAIL", what,
	       got ? strerror(got) : "success", want ? strerror(want) : "success");
	if (got != want)
		failures++;
}

static uint32_t volume_dev(void)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/mapper/%s", name);
	if (stat(path, &st)) {
		perror(path);
		exit(2);
	}
	return (minor(st.st_rdev) & 0xff) | (major(st.st_rdev) << 8) |
	       ((minor(st.st_rdev) & ~0xffU) << 12);
}

static int snap(int ctl, uint32_t *devs, uint32_t count, uint64_t *epochs)
{
	struct amber_ioc_snap req = {
		.count = count,
		.devs = (uintptr_t)devs,
		.epochs = (uintptr_t)epochs,
	};

	return ioctl(ctl, AMBER_IOC_SNAP, &req);
}

static int drop(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "dmsetup message %s 0 drop", name);
	return system(cmd) ? -1 : 0;
}

static void abuse_snap(int ctl, uint32_t dev)
{
	uint32_t devs[AMBER_MAX_GROUP + 1] = { dev, dev };
	uint32_t bogus = 0;
	uint64_t epochs[AMBER_MAX_GROUP + 1];

	expect("snap of no volume", snap(ctl, devs, 0, epochs), EINVAL);
	expect("snap of 17 volumes", snap(ctl, devs, AMBER_MAX_GROUP + 1, epochs), EINVAL);
	expect("snap, devs NULL", snap(ctl, NULL, 1, epochs), EFAULT);
	expect("snap, devs wild", snap(ctl, (uint32_t *)8, 1, epochs), EFAULT);
	expect("snap, epochs NULL: nothing cut", snap(ctl, devs, 1, NULL), EFAULT);
	expect("snap of a non-amber device", snap(ctl, &bogus, 1, epochs), ENODEV);
	expect("snap naming a volume twice", snap(ctl, devs, 2, epochs), EINVAL);
	expect("snap", snap(ctl, devs, 1, epochs), 0);
	expect("second snap while active", snap(ctl, devs, 1, epochs), EBUSY);
}

static int changed(int ctl, uint32_t dev, uint64_t since, uint64_t first,
		   uint64_t nr, void *bitmap)
{
	struct amber_ioc_changed req = {
		.dev = dev,
		.since_epoch = since,
		.first_chunk = first,
		.nr_chunks = nr,
		.bitmap = (uintptr_t)bitmap,
	};

	return ioctl(ctl, AMBER_IOC_CHANGED, &req);
}

static void abuse_changed(int ctl, uint32_t dev)
{
	static uint8_t bits[1 << 16];

	expect("changed, window not 64-aligned", changed(ctl, dev, 0, 3, 64, bits), EINVAL);
	expect("changed, empty window", changed(ctl, dev, 0, 0, 0, bits), EINVAL);
	expect("changed, window too large",
	       changed(ctl, dev, 0, 0, AMBER_CHANGED_MAX_WINDOW + 1, bits), EINVAL);
	expect("changed, window past the end", changed(ctl, dev, 0, 1ULL << 40, 64, bits), EINVAL);
	expect("changed, bitmap NULL", changed(ctl, dev, 0, 0, 64, NULL), EFAULT);
	expect("changed, epoch in the future", changed(ctl, dev, 1ULL << 60, 0, 64, bits), EINVAL);
	expect("changed since format", changed(ctl, dev, 0, 0, 64, bits), 0);
}

static int copied(int ctl, uint32_t dev, uint64_t max, uint64_t *out)
{
	struct amber_ioc_copied req = {
		.dev = dev,
		.max = max,
		.chunks = (uintptr_t)out,
	};

	return ioctl(ctl, AMBER_IOC_COPIED, &req);
}

static int release(int ctl, uint32_t dev, uint64_t first, uint64_t count)
{
	struct amber_ioc_release req = {
		.dev = dev,
		.first_chunk = first,
		.count = count,
	};

	return ioctl(ctl, AMBER_IOC_RELEASE, &req);
}

static void abuse_lists(int ctl, uint32_t dev)
{
	uint64_t out[16];

	expect("copied, max 0", copied(ctl, dev, 0, out), EINVAL);
	expect("copied, max too large", copied(ctl, dev, AMBER_COPIED_MAX + 1, out), EINVAL);
	expect("copied", copied(ctl, dev, 16, out), 0);
	expect("release of nothing", release(ctl, dev, 0, 0), EINVAL);
	expect("release past the end", release(ctl, dev, 0, 1ULL << 62), EINVAL);
	expect("release wrapping around", release(ctl, dev, 1, UINT64_MAX), EINVAL);
	expect("release", release(ctl, dev, 0, 1), 0);
}

static void abuse_ioctl_numbers(int ctl)
{
	struct amber_ioc_version ver;

	expect("unknown ioctl", ioctl(ctl, _IO(AMBER_IOCTL, 99), 0), ENOTTY);
	expect("snap with a wrong size",
	       ioctl(ctl, _IOW(AMBER_IOCTL, 1, uint64_t), &ver), ENOTTY);
	expect("version to a wild pointer", ioctl(ctl, AMBER_IOC_VERSION, 8), EFAULT);
	expect("version", ioctl(ctl, AMBER_IOC_VERSION, &ver), 0);
	if (ver.major != AMBER_VERSION_MAJOR)
		expect("version major", -1, 0);
}

/* As nobody: no open, and root's fd refuses to work. */
static void abuse_as_nobody(int ctl)
{
	struct amber_ioc_version ver;
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(2);
		errno = 0;
		if (open("/dev/" AMBER_CONTROL_NAME, O_RDWR) >= 0 || errno != EACCES)
			_exit(1);
		if (!ioctl(ctl, AMBER_IOC_VERSION, &ver) || errno != EPERM)
			_exit(1);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	expect("nobody is refused (EACCES, EPERM)",
	       WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1, 0);
}

static int snap_once(int ctl, uint32_t dev)
{
	uint64_t epoch;

	if (snap(ctl, &dev, 1, &epoch)) {
		printf("error %s\n", strerror(errno));
		return 1;
	}
	printf("%llu\n", (unsigned long long)epoch);
	return 0;
}

static int release_once(int ctl, uint32_t dev, const char *first,
			const char *count)
{
	if (release(ctl, dev, strtoull(first, NULL, 0), strtoull(count, NULL, 0))) {
		printf("error %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool snap_only = argc == 3 && !strcmp(argv[1], "snap");
	bool release_only = argc == 5 && !strcmp(argv[1], "release");
	uint32_t dev;
	int ctl;

	if (argc != 2 && !snap_only && !release_only) {
		fprintf(stderr, "usage: ctlabuse NAME | ctlabuse snap NAME |"
			" ctlabuse release NAME FIRST COUNT\n");
		return 2;
	}
	name = argv[argc == 5 ? 2 : argc - 1];
	dev = volume_dev();
	ctl = open("/dev/" AMBER_CONTROL_NAME, O_RDWR);
	if (ctl < 0) {
		perror("/dev/" AMBER_CONTROL_NAME);
		return 2;
	}
	if (snap_only)
		return snap_once(ctl, dev);
	if (release_only)
		return release_once(ctl, dev, argv[3], argv[4]);
	abuse_ioctl_numbers(ctl);
	expect("changed with no snapshot", changed(ctl, dev, 0, 0, 64, &dev), ENOENT);
	expect("release with no snapshot", release(ctl, dev, 0, 1), ENOENT);
	abuse_snap(ctl, dev);
	abuse_changed(ctl, dev);
	abuse_lists(ctl, dev);
	expect("drop", drop(), 0);
	abuse_as_nobody(ctl);
	printf("ctlabuse: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
