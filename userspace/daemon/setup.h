/* SPDX-License-Identifier: GPL-2.0 */
/*
 * amberd's start-up, in this order: backup_dir checked and its catalog
 * loaded, the volumes created where missing, the signals (a signalfd),
 * the sockets. Each returns 0, or -1 with the error recorded.
 */
#ifndef AMBERD_SETUP_H
#define AMBERD_SETUP_H

#include "config.h"

extern int ctl_fd, sig_fd;		/* -1 when closed */
extern int trig_fd[CONF_MAX_GROUPS];	/* -1: the group has no trigger socket */

int setup_backup_dir(void);
int setup_volumes(void);
int setup_signals(void);
int setup_sockets(void);
/* Each scheduled group's first set: due by its newest catalogued one. */
void setup_schedules(void);
/* systemd's Type=notify, without libsystemd. */
void notify_ready(void);

/* Close the listening sockets and remove their files. */
void remove_sockets(void);
/* In a child process: close the descriptors, remove nothing. */
void setup_close_fds(void);

#endif
