// SPDX-License-Identifier: GPL-2.0
/* One backup set of a group, in a child of amberd: see job.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bkp.h"
#include "chain.h"
#include "error.h"
#include "job.h"
#include "kernel.h"
#include "keyfile.h"
#include "subcommands.h"
#include "util.h"

struct job_volume {
	const struct job_plan_volume *plan;
	struct amber_volume vol;
	uint64_t epoch;			/* of the barrier */
	bool full;
	char parent_path[PATH_MAX + CAT_FILE_MAX];
	char file[CAT_FILE_MAX];	/* relative, final */
	char path[PATH_MAX + CAT_FILE_MAX];	/* absolute, final */
	char part[PATH_MAX + CAT_FILE_MAX + 8];	/* absolute, while written */
	pid_t pid;
	int err_fd;			/* the backup process's stderr */
	char error[600];
	double started, seconds;
	struct bkp_info info;
	struct bkp_summary summary;
};

static volatile sig_atomic_t stop;
static int report_fd = -1;

void job_file_name(const char *group, uint64_t set, const char *volume, bool full,
		   char *out, size_t len)
{
	snprintf(out, len, "%s/%06" PRIu64 "-%s.%s.amb", group, set, volume,
		 full ? "full" : "incr");
}

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line to amberd; newlines inside become spaces. */
static void report(const char *fmt, ...)
{
	char line[1024], *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	for (s = line; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
	strcat(line, "\n");
	write_full(report_fd, line, strlen(line));
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void catch_stop(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Can this volume's backup be incremental from its planned parent? The
 * parent file must be a backup of this volume (uuid, geometry) from an
 * earlier barrier, encrypted with the group's key or, as the group, not at
 * all, and the change maps must reach back to its epoch.
 */
static int check_parent(const struct job_plan *plan, int ctl, struct job_volume *jv)
{
	uint64_t nr_chunks, snap_epoch, *bitmap;
	/* The uuid comes with the change maps, checked below. */
	const struct parent_want want = {
		.volume = jv->plan->name,
		.volume_bytes = jv->vol.sectors * 512,
		.chunk_bytes = jv->vol.table.chunk_sectors * 512ULL,
		.epoch = jv->epoch,
	};
	struct disk_keyfile key;
	struct bkp_summary summary;
	struct bkp_info parent;
	uint8_t uuid[16];
	bool exact;
	int ret;

	if (chain_read_parent(jv->parent_path, &want, &parent, &summary) ||
	    (plan->encrypt_key && keyfile_read(plan->encrypt_key, &key)) ||
	    chain_same_key(jv->parent_path, &parent, plan->encrypt_key ? key.fingerprint : NULL))
		return -1;
	nr_chunks = DIV_ROUND_UP(jv->vol.sectors, jv->vol.table.chunk_sectors);
	bitmap = bitmap_alloc(nr_chunks);
	if (!bitmap)
		return fail(AMBER_ESYS, "out of memory");
	ret = control_changed(ctl, jv->vol.dev, parent.epoch, nr_chunks, bitmap, &snap_epoch,
			      uuid, &exact);
	free(bitmap);
	if (ret)
		return -1;
	if (memcmp(uuid, parent.volume_uuid, 16))
		return fail(AMBER_EDATA, "%s is not a backup of %s (another volume uuid: its"
			    " store was formatted since)", jv->parent_path, jv->plan->name);
	return 0;
}

static void plan_files(const struct job_plan *plan, struct job_volume *jv)
{
	char file[CAT_FILE_MAX];

	job_file_name(plan->group, plan->set, jv->plan->name, jv->full, file, sizeof(file));
	strcpy(jv->file, file);
	snprintf(jv->path, sizeof(jv->path), "%s/%s", plan->dir, file);
	snprintf(jv->part, sizeof(jv->part), "%s/%s.part", plan->dir, file);
}

/* A process running 'amber backup NAME --use-snapshot --to PART ...'. */
static int start_backup(const struct job_plan *plan, struct job_volume *jv)
{
	char level[24], *argv[20];
	int argc = 0, err[2], devnull;
	pid_t job_pid;

	unlink(jv->part);	/* left by a crash: never a finished backup */
	if (pipe2(err, O_CLOEXEC))
		return fail_errno(AMBER_ESYS, "pipe");
	jv->started = now_seconds();
	job_pid = getpid();
	jv->pid = fork();
	if (jv->pid < 0) {
		close(err[0]);
		close(err[1]);
		return fail_errno(AMBER_ESYS, "fork");
	}
	if (jv->pid) {
		close(err[1]);
		jv->err_fd = err[0];
		return 0;
	}
	/* The backup is interrupted (and drops its snapshot) with its job. */
	stop_with_parent(job_pid);
	devnull = open("/dev/null", O_WRONLY);
	dup2(devnull, STDOUT_FILENO);
	dup2(err[1], STDERR_FILENO);
	close(report_fd);
	catch_interrupts();
	snprintf(level, sizeof(level), "%" PRIu64, plan->level);
	argv[argc++] = "backup";
	argv[argc++] = (char *)jv->plan->name;
	argv[argc++] = "--use-snapshot";
	argv[argc++] = "--to";
	argv[argc++] = jv->part;
	argv[argc++] = "--level";
	argv[argc++] = level;
	if (!jv->full) {
		argv[argc++] = "--incremental-from";
		argv[argc++] = jv->parent_path;
	}
	if (plan->encrypt_key) {
		argv[argc++] = "--encrypt";
		argv[argc++] = (char *)plan->encrypt_key;
		argv[argc++] = "--passphrase-file";
		argv[argc++] = (char *)plan->passphrase_file;
	}
	if (plan->sign_key) {
		argv[argc++] = "--sign";
		argv[argc++] = (char *)plan->sign_key;
	}
	argv[argc] = NULL;
	if (backup_main(argc, argv)) {
		fprintf(stderr, "%s", error_msg());
		_exit(error_status() ? error_status() : 1);
	}
	_exit(0);
}

static void wait_backups(struct job_volume *jv, unsigned int n)
{
	unsigned int left = 0, i;
	bool forwarded = false;
	ssize_t len;
	int status;
	pid_t pid;

	for (i = 0; i < n; i++)
		left += jv[i].pid > 0;
	while (left) {
		if (stop && !forwarded) {
			for (i = 0; i < n; i++)
				if (jv[i].pid > 0)
					kill(jv[i].pid, SIGTERM);
			forwarded = true;
		}
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < n; i++) {
			if (jv[i].pid != pid)
				continue;
			jv[i].pid = 0;
			jv[i].seconds = now_seconds() - jv[i].started;
			len = read_upto(jv[i].err_fd, jv[i].error, sizeof(jv[i].error) - 1);
			jv[i].error[len > 0 ? len : 0] = 0;
			close(jv[i].err_fd);
			if (WIFEXITED(status) && !WEXITSTATUS(status))
				jv[i].error[0] = 0;
			else if (!jv[i].error[0])
				snprintf(jv[i].error, sizeof(jv[i].error),
					 "the backup process %s %d",
					 WIFSIGNALED(status) ? "was killed by signal" :
					 "exited with status",
					 WIFSIGNALED(status) ? WTERMSIG(status) :
					 WEXITSTATUS(status));
			left--;
		}
	}
}

/* A snapshot of our barrier still active (a backup that died early): drop it. */
static void drop_leftovers(struct job_volume *jv, unsigned int n)
{
	struct amber_status st;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (volume_status(jv[i].plan->name, &st) || st.epoch != jv[i].epoch ||
		    (st.state != VOL_ACTIVE && st.state != VOL_INVALID))
			continue;
		if (dm_message(jv[i].plan->name, "drop"))
			report("note %s: cannot drop the snapshot of epoch %" PRIu64 ": %s",
			       jv[i].plan->name, jv[i].epoch, error_msg());
		else
			report("note %s: dropped the snapshot of epoch %" PRIu64 " left behind",
			       jv[i].plan->name, jv[i].epoch);
	}
}

static int sync_dir_of(const char *path)
{
	char dir[PATH_MAX + CAT_FILE_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	return sync_dir(dir);
}

/* Every backup is complete: check each, then give it its final name. */
static int finish(struct job_volume *jv, unsigned int n)
{
	unsigned int i;
	int fd, ret;

	for (i = 0; i < n; i++) {
		fd = open(jv[i].part, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail_errno(AMBER_ESYS, "%s", jv[i].part);
		ret = bkp_peek(fd, &jv[i].info, &jv[i].summary);
		close(fd);
		if (ret)
			return error_prefix("%s: ", jv[i].part);
		if (jv[i].info.epoch != jv[i].epoch)
			return fail(AMBER_EDATA, "%s is of epoch %" PRIu64 ", the barrier's is %"
				    PRIu64, jv[i].part, jv[i].info.epoch, jv[i].epoch);
	}
	for (i = 0; i < n; i++)
		if (rename(jv[i].part, jv[i].path))
			return fail_errno(AMBER_ESYS, "rename %s", jv[i].part);
	return sync_dir_of(jv[0].path);
}

static void remove_files(struct job_volume *jv, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		unlink(jv[i].part);
		unlink(jv[i].path);
	}
}

/* A mount point from /proc/self/mountinfo: octal escapes (\040) undone. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0');
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = 0;
}

/*
 * syncfs() each file system mounted (in amberd's mount namespace) from a
 * volume of the set: what was written but not fsynced before the request
 * (a config file edited a moment ago, SQLite's WAL under synchronous=NORMAL)
 * reaches the volumes before the barrier. The image is crash-consistent
 * either way; this makes it hold everything written before the request.
 */
static void flush_file_systems(struct job_volume *jv, unsigned int n)
{
	char line[4096], mnt[4096], list[1024] = "";
	bool flushed[AMBER_MAX_GROUP] = { false };
	unsigned int maj, min, i;
	size_t used = 0;
	FILE *f;
	int fd;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		report("note cannot read /proc/self/mountinfo: %s: nothing flushed", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) != 3)
			continue;
		for (i = 0; i < n; i++)
			if (!flushed[i] && jv[i].vol.major == maj && jv[i].vol.minor == min)
				break;
		if (i == n)
			continue;
		unescape(mnt);
		fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd)) {
			report("note %s: cannot flush %s: %s", jv[i].plan->name, mnt, strerror(errno));
		} else {
			flushed[i] = true;
			used += snprintf(list + used, used < sizeof(list) ? sizeof(list) - used : 0,
					 "%s%s (%s)", used ? ", " : "", mnt, jv[i].plan->name);
		}
		if (fd >= 0)
			close(fd);
	}
	fclose(f);
	if (used)
		report("info flushed %s", list);
}

static int barrier(const struct job_plan *plan, struct job_volume *jv, int ctl)
{
	uint32_t devs[AMBER_MAX_GROUP];
	uint64_t epochs[AMBER_MAX_GROUP];
	char line[AMBER_MAX_GROUP * 24 + 16];
	size_t used;
	unsigned int i;

	for (i = 0; i < plan->nr; i++) {
		if (volume_open(plan->v[i].name, &jv[i].vol))
			return -1;
		devs[i] = jv[i].vol.dev;
	}
	if (plan->flush)
		flush_file_systems(jv, plan->nr);
	if (control_snap(ctl, devs, plan->nr, 0, epochs))
		return -1;
	used = snprintf(line, sizeof(line), "barrier");
	for (i = 0; i < plan->nr; i++) {
		jv[i].epoch = epochs[i];
		used += snprintf(line + used, sizeof(line) - used, " %" PRIu64, epochs[i]);
	}
	report("%s", line);
	return 0;
}

int job_check_free_space(const char *dir, uint64_t min_free, bool percent)
{
	char have[32], want[32];
	uint64_t free_bytes, floor;
	struct statvfs st;

	if (statvfs(dir, &st))
		return fail_errno(AMBER_ESYS, "statvfs %s", dir);
	free_bytes = (uint64_t)st.f_bfree * st.f_frsize;	/* amberd is root */
	floor = percent ? (uint64_t)st.f_blocks * st.f_frsize / 100 * min_free : min_free;
	if (free_bytes >= floor)
		return 0;
	format_size(free_bytes, have, sizeof(have));
	format_size(floor, want, sizeof(want));
	if (percent)
		return fail(AMBER_ESYS, "%s has %s free, under min_free = %" PRIu64 "%% (%s):"
			    " no set starts until space is freed", dir, have, min_free, want);
	return fail(AMBER_ESYS, "%s has %s free, under min_free = %s: no set starts until"
		    " space is freed", dir, have, want);
}

/* The catalog's KEY and SIGNER fields: a fingerprint in hex, or "-". */
static const char *hex_or_dash(bool set, const uint8_t fp[32], char out[65])
{
	return set ? format_hex(fp, 32, out) : strcpy(out, "-");
}

void job_child(const struct job_plan *plan, int out)
{
	struct job_volume jv[AMBER_MAX_GROUP];
	char digest[65], key[65], signer[65];
	unsigned int i;
	bool failed = false;
	int ctl;

	report_fd = out;
	catch_stop();
	memset(jv, 0, sizeof(jv));
	for (i = 0; i < plan->nr; i++) {
		jv[i].plan = &plan->v[i];
		jv[i].err_fd = -1;
	}
	ctl = control_open();
	if (ctl < 0 || barrier(plan, jv, ctl)) {
		report("fail %s", error_msg());
		_exit(1);
	}
	for (i = 0; i < plan->nr; i++) {
		jv[i].full = !plan->v[i].parent[0];
		snprintf(jv[i].parent_path, sizeof(jv[i].parent_path), "%s/%s", plan->dir,
			 plan->v[i].parent);
		if (!jv[i].full && check_parent(plan, ctl, &jv[i])) {
			report("note %s: a full backup instead of an incremental one: %s",
			       plan->v[i].name, error_msg());
			jv[i].full = true;
		}
		plan_files(plan, &jv[i]);
	}
	for (i = 0; i < plan->nr && !stop; i++)
		if (start_backup(plan, &jv[i])) {
			snprintf(jv[i].error, sizeof(jv[i].error), "%s", error_msg());
			break;
		}
	wait_backups(jv, plan->nr);
	drop_leftovers(jv, plan->nr);
	close(ctl);
	/* A set whose backups all completed is kept, stopping or not. */
	for (i = 0; i < plan->nr; i++) {
		if (jv[i].error[0])
			report("fail %s: %s", plan->v[i].name, jv[i].error);
		else if (!jv[i].started)
			report("fail %s: not backed up (%s)", plan->v[i].name,
			       stop ? "amberd is stopping" : "an earlier volume failed to start");
		failed |= jv[i].error[0] || !jv[i].started;
	}
	if (!failed && finish(jv, plan->nr)) {
		report("fail %s", error_msg());
		failed = true;
	}
	if (failed) {
		remove_files(jv, plan->nr);
		_exit(1);
	}
	for (i = 0; i < plan->nr; i++)
		report("done %s %s %" PRIu64 " %" PRIu64 " %s %.1f %s %s", plan->v[i].name,
		       jv[i].full ? "full" : "incremental", jv[i].epoch,
		       jv[i].summary.file_bytes, format_hex(jv[i].summary.digest, 32, digest),
		       jv[i].seconds,
		       hex_or_dash(bkp_encrypted(&jv[i].info), jv[i].info.key_fingerprint, key),
		       hex_or_dash(jv[i].info.compat & FEATURE_COMPAT_SIGNED,
				   jv[i].summary.signer, signer));
	_exit(0);
}
