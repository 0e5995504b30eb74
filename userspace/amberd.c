// SPDX-License-Identifier: GPL-2.0
/*
 * amberd: owns amber volumes and groups, takes their backup sets from one
 * group barrier each (on request or on a schedule), keeps a catalog of them
 * and applies retention. See amberd(8) and amberd.conf(5).
 *
 * One process with a poll() loop, here: the root-only control socket, the
 * trigger sockets of groups that have a trigger_user, the clients, the pipe
 * of the running backup job, signals through a signalfd. The parts it calls
 * are under daemon/ (daemon.h lists them).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "daemon.h"
#include "error.h"
#include "queue.h"
#include "setup.h"
#include "util.h"

static const char usage[] =
"Usage: amberd [--config FILE] [--check]\n"
"\n"
"The amber daemon: creates the amber volumes of its configuration when they\n"
"are missing, takes backup sets of its groups (one atomic barrier over every\n"
"volume of a group) on a schedule and on request, keeps a catalog and applies\n"
"retention. Requests come on a unix socket, root only ('amber daemon').\n"
"Runs in the foreground and logs one line per event to standard error (or\n"
"syslog). amberd(8), amberd.conf(5).\n"
"\n"
"  -c, --config FILE  the configuration (" CONF_DEFAULT_PATH ")\n"
"  -t, --check        check the configuration, print a summary and exit\n";

enum { OPT_CONFIG, OPT_CHECK };

static const struct cli_option options[] = {
	[OPT_CONFIG]	= CLI_VALUE("config", 'c'),
	[OPT_CHECK]	= CLI_FLAG("check", 't'),
	{ },
};

static void begin_stop(int sig)
{
	struct job *run;

	stopping = true;
	remove_sockets();
	run = queue_stop();
	log_info("stopping on %s%s", strsignal(sig), run ? ": interrupting the running backup" : "");
}

static void signal_input(void)
{
	struct signalfd_siginfo si;

	if (read(sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		log_info("SIGHUP: nothing to do (restart amberd to read %s again)", conf.path);
		return;
	}
	if (!stopping)
		begin_stop(si.ssi_signo);
}

/* Until the next scheduled set, client timeout or count of suppressed log
 * lines, a minute at most. */
static int poll_timeout(void)
{
	time_t now = time(NULL);
	int64_t ms = 60000;
	unsigned int i;
	int client_ms, log_ms;

	for (i = 0; i < conf.nr_grps; i++)
		if (conf.grp[i].scheduled)
			ms = MIN(ms, MAX(0, (int64_t)(next_due[i] - now) * 1000));
	client_ms = clients_expire();
	if (client_ms >= 0)
		ms = MIN(ms, client_ms);
	log_ms = log_limits_report(monotonic_seconds());
	if (log_ms >= 0)
		ms = MIN(ms, log_ms);
	return ms;
}

enum poll_kind { POLL_SIGNAL, POLL_CONTROL, POLL_TRIGGER, POLL_CLIENT, POLL_JOB };

static void loop(void)
{
	struct pollfd pfd[2 + CONF_MAX_GROUPS + CLIENTS_MAX + 1];
	void *who[ARRAY_SIZE(pfd)];
	enum poll_kind kind[ARRAY_SIZE(pfd)];
	unsigned int n, i;
	struct job *run;
	int timeout;

	for (;;) {
		if (!stopping)
			check_schedules();
		/* A job that ended (just now, or in the last round) may leave
		 * its clients with requests they sent while they waited. */
		clients_serve_held();
		run = running_job();
		if (stopping && !run)
			return;
		timeout = poll_timeout();
		n = 0;
		pfd[n] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		who[n] = NULL;
		kind[n++] = POLL_SIGNAL;
		if (ctl_fd >= 0) {
			pfd[n] = (struct pollfd){ .fd = ctl_fd, .events = POLLIN };
			who[n] = NULL;
			kind[n++] = POLL_CONTROL;
		}
		for (i = 0; i < conf.nr_grps; i++)
			if (trig_fd[i] >= 0) {
				pfd[n] = (struct pollfd){ .fd = trig_fd[i], .events = POLLIN };
				who[n] = (void *)(uintptr_t)i;
				kind[n++] = POLL_TRIGGER;
			}
		for (i = 0; i < CLIENTS_MAX; i++)
			if (clients[i].fd >= 0) {
				pfd[n] = client_pollfd(&clients[i]);
				who[n] = &clients[i];
				kind[n++] = POLL_CLIENT;
			}
		if (run) {
			pfd[n] = (struct pollfd){ .fd = run->fd, .events = POLLIN };
			who[n] = run;
			kind[n++] = POLL_JOB;
		}
		if (poll(pfd, n, timeout) < 0) {
			if (errno != EINTR)
				log_err("poll: %s", strerror(errno));
			continue;
		}
		for (i = 0; i < n; i++) {
			struct client *c = who[i];
			int grp = (uintptr_t)who[i];

			if (!pfd[i].revents)
				continue;
			switch (kind[i]) {
			case POLL_SIGNAL:
				signal_input();
				break;
			case POLL_CONTROL:
				if (ctl_fd >= 0)
					client_accept(ctl_fd, -1);
				break;
			case POLL_TRIGGER:
				if (trig_fd[grp] >= 0)
					client_accept(trig_fd[grp], grp);
				break;
			case POLL_CLIENT:
				/* closed (and maybe taken again) since the poll: skip */
				if (c->fd == pfd[i].fd)
					client_ready(c, pfd[i].revents);
				break;
			case POLL_JOB:
				if (((struct job *)who[i])->id)
					job_input(who[i]);
				break;
			}
		}
	}
}

static int check_only(void)
{
	unsigned int i, scheduled = 0, triggers = 0;

	for (i = 0; i < conf.nr_grps; i++) {
		scheduled += conf.grp[i].scheduled;
		triggers += !!*conf.grp[i].trigger_user;
	}
	printf("%s: %u volume%s, %u group%s (%u scheduled, %u with a trigger socket),"
	       " backups in %s\n", conf.path, conf.nr_vols, conf.nr_vols == 1 ? "" : "s",
	       conf.nr_grps, conf.nr_grps == 1 ? "" : "s", scheduled, triggers,
	       conf.backup_dir);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = { .command = "amberd", .usage = usage, .options = options };
	const char *path = CONF_DEFAULT_PATH;
	int ret, devnull;

	ret = cli_parse(&c, argc, argv);
	if (ret || cli_args(&c, 0, 0, "")) {
		if (ret > 0)
			return 0;
		fprintf(stderr, "amberd: %s\nTry 'amberd --help'.\n", error_msg());
		return AMBER_EUSAGE;
	}
	if (c.value[OPT_CONFIG])
		path = c.value[OPT_CONFIG];
	if (config_load(path, &conf)) {
		fprintf(stderr, "amberd: %s\n", error_msg());
		return error_status();
	}
	if (cli_flag(&c, OPT_CHECK))
		return check_only();
	if (geteuid()) {
		fprintf(stderr, "amberd: must run as root (it creates device-mapper devices and"
			" uses /dev/amber-control)\n");
		return AMBER_ESYS;
	}
	if (conf.syslog)
		openlog("amberd", LOG_PID, LOG_DAEMON);
	clients_init();
	queue_init();
	started_at = time(NULL);
	/* amber create prints on stdout; amberd says everything in its log. */
	fflush(stdout);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull >= 0)
		dup2(devnull, STDOUT_FILENO);
	if (setup_backup_dir() || setup_volumes() || setup_signals() || setup_sockets()) {
		log_err("%s", error_msg());
		remove_sockets();
		return AMBER_ESYS;
	}
	setup_schedules();
	log_info("ready: %u volume%s, %u group%s, socket %s, backups in %s", conf.nr_vols,
		 conf.nr_vols == 1 ? "" : "s", conf.nr_grps, conf.nr_grps == 1 ? "" : "s",
		 conf.socket, conf.backup_dir);
	notify_ready();
	loop();
	remove_sockets();
	clients_close_all();
	log_info("stopped");
	catalog_free(&cat);
	return 0;
}

