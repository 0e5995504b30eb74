// SPDX-License-Identifier: GPL-2.0
/* amberd's start-up: backup_dir and its catalog, the volumes, the sockets,
 * the signals, the schedules (setup.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "error.h"
#include "kernel.h"
#include "queue.h"
#include "setup.h"
#include "subcommands.h"
#include "util.h"

#define TRIGGER_SUFFIX	".trigger"

struct config conf;
struct catalog cat;
time_t started_at;
bool stopping;

int ctl_fd = -1, sig_fd = -1;
int trig_fd[CONF_MAX_GROUPS] = { [0 ... CONF_MAX_GROUPS - 1] = -1 };
static char trig_path[CONF_MAX_GROUPS][CONF_SOCKET_MAX];

/*
 * Each directory made gets @mode whatever the umask (systemd's UMask=0077
 * would leave the socket directory closed to the trigger users); one that
 * exists is left as it is.
 */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX], *s, c;

	snprintf(buf, sizeof(buf), "%s", path);
	for (s = buf + 1; ; s++) {
		if (*s && *s != '/')
			continue;
		c = *s;
		*s = 0;
		if (!mkdir(buf, mode)) {
			if (chmod(buf, mode))
				return fail_errno(AMBER_ESYS, "chmod %s", buf);
		} else if (errno != EEXIST) {
			return fail_errno(AMBER_ESYS, "mkdir %s", buf);
		}
		*s = c;
		if (!c)
			break;
	}
	return 0;
}

static int block_dev(const char *what, const char *path, dev_t *dev)
{
	struct stat st;

	if (stat(path, &st))
		return fail_errno(AMBER_ESYS, "%s %s", what, path);
	if (!S_ISBLK(st.st_mode))
		return fail(AMBER_ESYS, "%s %s is not a block device", what, path);
	*dev = st.st_rdev;
	return 0;
}

/*
 * A snapshot found at start-up is not this amberd's: an admin's, or left by
 * a backup killed with everything around it. It may still be in use, so it
 * is named, not dropped.
 */
static void warn_foreign_snapshot(const char *name)
{
	struct amber_status st;

	if (volume_status(name, &st) || st.state == VOL_IDLE)
		return;
	log_warn("volume %s: a snapshot of epoch %" PRIu64 " is %s, not taken by this"
		 " amberd: sets of its groups fail until it ends ('amber drop %s')",
		 name, st.epoch, vol_state_name(st.state), name);
}

/* The volume's devices exist, are not another volume's, and /dev/mapper/NAME
 * is an amber device over them; create it (and its store) when missing. */
static int ensure_volume(const struct conf_volume *v, dev_t *origins, dev_t *stores,
			 unsigned int idx)
{
	char chunk[32], epochs[24], timeout[24], view[DM_NAME_MAX + 8], params[32];
	struct amber_volume av;
	char *argv[16];
	unsigned int i;
	int argc = 0;

	if (block_dev("origin", v->origin, &origins[idx]) ||
	    block_dev("store", v->store, &stores[idx]))
		return -1;
	if (origins[idx] == stores[idx])
		return fail(AMBER_ESYS, "origin and store are the same device");
	for (i = 0; i < idx; i++)
		if (origins[i] == origins[idx] || stores[i] == stores[idx] ||
		    origins[i] == stores[idx] || stores[i] == origins[idx])
			return fail(AMBER_ESYS, "it shares a device with volume %s",
				    conf.vol[i].name);
	if (dm_exists(v->name)) {
		if (volume_open(v->name, &av))
			return -1;
		if (makedev(av.table.origin_major, av.table.origin_minor) != origins[idx] ||
		    makedev(av.table.store_major, av.table.store_minor) != stores[idx])
			return fail(AMBER_ESYS, "/dev/mapper/%s exists over other devices (origin"
				    " %u:%u, store %u:%u), not %s and %s", v->name,
				    av.table.origin_major, av.table.origin_minor,
				    av.table.store_major, av.table.store_minor, v->origin,
				    v->store);
		snprintf(view, sizeof(view), "%s%s", v->name, VIEW_SUFFIX);
		if (!dm_exists(view)) {
			snprintf(params, sizeof(params), "%u:%u", av.major, av.minor);
			if (dm_create(view, AMBER_VIEW_TARGET, av.sectors, params, true))
				return -1;
			log_info("volume %s: there; created its view /dev/mapper/%s", v->name, view);
		} else {
			log_info("volume %s: there (/dev/mapper/%s over %s, store %s)", v->name,
				 v->name, v->origin, v->store);
		}
		warn_foreign_snapshot(v->name);
		return 0;
	}
	snprintf(chunk, sizeof(chunk), "%" PRIu64, v->chunk);
	snprintf(epochs, sizeof(epochs), "%" PRIu64, v->epochs);
	snprintf(timeout, sizeof(timeout), "%" PRIu64, v->block_timeout);
	argv[argc++] = "create";
	argv[argc++] = (char *)v->name;
	argv[argc++] = "--origin";
	argv[argc++] = (char *)v->origin;
	argv[argc++] = "--store";
	argv[argc++] = (char *)v->store;
	argv[argc++] = "--epochs";
	argv[argc++] = epochs;
	if (v->chunk_set) {
		argv[argc++] = "--chunk";
		argv[argc++] = chunk;
	}
	if (*v->overflow) {
		argv[argc++] = "--overflow";
		argv[argc++] = (char *)v->overflow;
	}
	if (v->block_timeout) {
		argv[argc++] = "--block-timeout";
		argv[argc++] = timeout;
	}
	argv[argc] = NULL;
	if (create_main(argc, argv))
		return -1;
	log_info("volume %s: created /dev/mapper/%s over %s, store %s", v->name, v->name,
		 v->origin, v->store);
	return 0;
}

int setup_volumes(void)
{
	dev_t origins[CONF_MAX_VOLUMES], stores[CONF_MAX_VOLUMES];
	unsigned int i;

	if (kernel_load_module())
		return -1;
	for (i = 0; i < conf.nr_vols; i++)
		if (ensure_volume(&conf.vol[i], origins, stores, i))
			return error_prefix("volume %s: ", conf.vol[i].name);
	return 0;
}

/* The newest set number a file of the group's directory names. */
static uint64_t scan_group_dir(const char *group)
{
	char dir[PATH_MAX + CONF_NAME_MAX], path[PATH_MAX + 2 * CAT_FILE_MAX], rel[2 * CAT_FILE_MAX];
	uint64_t max = 0, set;
	struct dirent *d;
	size_t len;
	DIR *dh;

	snprintf(dir, sizeof(dir), "%s/%s", conf.backup_dir, group);
	dh = opendir(dir);
	if (!dh)
		return 0;
	while ((d = readdir(dh))) {
		if (d->d_name[0] == '.')
			continue;
		len = strlen(d->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		snprintf(rel, sizeof(rel), "%s/%s", group, d->d_name);
		if (len > 5 && !strcmp(d->d_name + len - 5, ".part")) {
			if (!unlink(path))
				log_warn("group %s: removed %s, a backup that never finished",
					 group, rel);
			continue;
		}
		if (sscanf(d->d_name, "%" SCNu64 "-", &set) == 1)
			max = MAX(max, set);
		if (!catalog_find_file(&cat, rel))
			log_warn("group %s: %s is not in the catalog (left alone)", group, rel);
	}
	closedir(dh);
	return max;
}

int setup_backup_dir(void)
{
	char dir[PATH_MAX + CONF_NAME_MAX], path[PATH_MAX + CAT_FILE_MAX], resolved[PATH_MAX];
	struct stat st;
	unsigned int i;
	size_t k;

	/* Never created here: on a file system not mounted yet, it would land
	 * on the one below. */
	if (stat(conf.backup_dir, &st) || !S_ISDIR(st.st_mode))
		return fail(AMBER_ESYS, "backup_dir %s is not a directory: create it (mkdir -m 700"
			    " %s) or mount its file system before amberd starts", conf.backup_dir,
			    conf.backup_dir);
	/* Whole database images live here: no one else may plant or swap a file. */
	if (check_trusted_dir(conf.backup_dir))
		return error_prefix("backup_dir %s is not safe (chown root, chmod go-w): ",
				    conf.backup_dir);
	/* What was checked is where the links led: use that, never the links,
	 * which someone may repoint later. */
	if (!realpath(conf.backup_dir, resolved))
		return fail_errno(AMBER_ESYS, "backup_dir %s", conf.backup_dir);
	if (strcmp(resolved, conf.backup_dir)) {
		log_info("backup_dir %s is %s", conf.backup_dir, resolved);
		snprintf(conf.backup_dir, sizeof(conf.backup_dir), "%s", resolved);
	}
	catalog_init(&cat, conf.backup_dir);
	if (catalog_load(&cat))
		return error_prefix("the catalog is damaged (fix or move it): ");
	for (k = 0; k < cat.n; k++) {
		snprintf(path, sizeof(path), "%s/%s", conf.backup_dir, cat.e[k].file);
		if (stat(path, &st))
			log_warn("the catalog lists %s, which is gone: backups that need it cannot"
				 " be restored, and the next backup of group %s is full where it"
				 " would need it", cat.e[k].file, cat.e[k].group);
	}
	for (i = 0; i < conf.nr_grps; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", conf.backup_dir, conf.grp[i].name);
		if (mkdir(dir, 0700) && errno != EEXIST)
			return fail_errno(AMBER_ESYS, "mkdir %s", dir);
		if (check_trusted_dir(dir))
			return error_prefix("group %s: ", conf.grp[i].name);
		next_set[i] = MAX(catalog_last_set(&cat, conf.grp[i].name),
				  scan_group_dir(conf.grp[i].name)) + 1;
	}
	return 0;
}

/* Listen on @path, mode 0600, owned by @uid:@gid. */
static int listen_at(const char *path, uid_t uid, gid_t gid)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, probe;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			return fail(AMBER_ESYS, "%s exists and is not a socket", path);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && !connect(probe, (struct sockaddr *)&a, sizeof(a))) {
			close(probe);
			return fail(AMBER_ESYS, "another amberd listens on %s", path);
		}
		if (probe >= 0)
			close(probe);
		unlink(path);		/* a stale socket of an amberd gone */
	}
	/* Non-blocking: a client gone between poll() and accept() never stalls
	 * the loop (client.c makes the accepted sockets non-blocking too). */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "socket");
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		umask(old);
		close(fd);
		return fail_errno(AMBER_ESYS, "bind %s", path);
	}
	umask(old);
	if (chown(path, uid, gid) || chmod(path, 0600) || listen(fd, 16)) {
		fail_errno(AMBER_ESYS, "%s", path);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

int setup_sockets(void)
{
	char dir[CONF_SOCKET_MAX];
	unsigned int i;

	snprintf(dir, sizeof(dir), "%s", conf.socket);
	*strrchr(dir, '/') = 0;
	if (*dir && mkdir_p(dir, 0755))
		return -1;
	ctl_fd = listen_at(conf.socket, 0, 0);
	if (ctl_fd < 0)
		return -1;
	for (i = 0; i < conf.nr_grps; i++) {
		const struct conf_group *g = &conf.grp[i];

		trig_fd[i] = -1;
		if (!*g->trigger_user)
			continue;
		if (snprintf(trig_path[i], sizeof(trig_path[i]), "%s/%s%s", dir, g->name,
			     TRIGGER_SUFFIX) >= (int)sizeof(trig_path[i]))
			return fail(AMBER_ESYS, "the trigger socket path of group %s is too long",
				    g->name);
		trig_fd[i] = listen_at(trig_path[i], g->trigger_uid, g->trigger_gid);
		if (trig_fd[i] < 0)
			return -1;
	}
	return 0;
}

void remove_sockets(void)
{
	unsigned int i;

	if (ctl_fd >= 0) {
		close(ctl_fd);
		unlink(conf.socket);
		ctl_fd = -1;
	}
	for (i = 0; i < conf.nr_grps; i++)
		if (trig_fd[i] >= 0) {
			close(trig_fd[i]);
			unlink(trig_path[i]);
			trig_fd[i] = -1;
		}
}

int setup_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return fail_errno(AMBER_ESYS, "sigprocmask");
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sig_fd < 0)
		return fail_errno(AMBER_ESYS, "signalfd");
	return 0;
}

void setup_schedules(void)
{
	time_t now = time(NULL), last;
	unsigned int i;
	size_t k;

	for (i = 0; i < conf.nr_grps; i++) {
		if (!conf.grp[i].scheduled)
			continue;
		last = 0;
		for (k = 0; k < cat.n; k++)
			if (!strcmp(cat.e[k].group, conf.grp[i].name))
				last = MAX(last, cat.e[k].created);
		next_due[i] = last ? MAX(now, last + (time_t)conf.grp[i].interval) : now;
	}
}

/* systemd's Type=notify, without libsystemd. */
void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(a.sun_path))
		return;
	strcpy(a.sun_path, path);
	if (path[0] == '@')
		a.sun_path[0] = 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&a,
	       offsetof(struct sockaddr_un, sun_path) + strlen(path));
	close(fd);
}

void setup_close_fds(void)
{
	unsigned int i;

	close(ctl_fd);
	close(sig_fd);
	for (i = 0; i < conf.nr_grps; i++)
		if (trig_fd[i] >= 0)
			close(trig_fd[i]);
}
