/* SPDX-License-Identifier: GPL-2.0 */
/*
 * amberd's connections. Every accepted socket is non-blocking, and what
 * amberd answers goes into the client's own buffer first, so that no client
 * can stall the poll loop (the job pipe, signals and the other clients).
 *
 * Limits, so that a trigger user cannot lock root out:
 *   - CLIENTS_MAX slots in all, CONTROL_RESERVED of them for the control
 *     socket only;
 *   - CLIENTS_PER_UID connections per user on the trigger sockets;
 *   - a client with no request under way (and no job it waits for) is
 *     hung up on after IDLE_TIMEOUT_S, and one whose answer makes no
 *     progress for SEND_TIMEOUT_S (it does not read) too;
 *   - while an answer is pending, the client's next requests are not read,
 *     so a client that sends and never reads holds one answer at most;
 *   - an answer is made whole at once and buffered up to 16 MiB: past that
 *     it is cut after a whole line, an error line says so, and amberd
 *     hangs up once that is sent. A buffer that grew past 64 KiB is freed
 *     once sent.
 *
 * Requests are served one at a time, in order. What a client sends while it
 * waits for a job is read (one line's buffer of it) and served once the
 * job's final line is out: clients_serve_held(), from the poll loop.
 *
 * A connection starts with amberd's greeting, "amberd protocol N", or with
 * "error TEXT" when it is refused (then amberd hangs up).
 */
#ifndef AMBERD_CLIENT_H
#define AMBERD_CLIENT_H

#include <poll.h>
#include <stdbool.h>
#include <sys/types.h>

#include "request.h"

#define CLIENTS_MAX		128
#define CONTROL_RESERVED	16
#define CLIENTS_PER_UID		8
#define IDLE_TIMEOUT_S		30
#define SEND_TIMEOUT_S		10
#define CLIENT_LINE_MAX		16384	/* one line of an answer */

struct client {
	int fd;				/* -1: a free slot */
	int grp;			/* trigger socket's group, -1: control socket */
	uid_t uid;
	pid_t pid;
	unsigned int wait;		/* the job this client waits for, 0: none */
	/* private to client.c */
	char in[REQ_LINE_MAX + 1];
	size_t in_len;
	char *out;			/* answer bytes not sent yet: out_len */
	size_t out_off, out_len, out_size;	/* of them from out_off */
	bool ending;			/* hung up on once out is sent */
	double progress;		/* now_seconds() of the last byte either way */
};

extern struct client clients[CLIENTS_MAX];

/* Every client waiting for @job (the if/else keeps a following else safe). */
#define for_each_waiter(c, job) \
	for ((c) = clients; (c) < clients + CLIENTS_MAX; (c)++) \
		if ((c)->fd < 0 || (c)->wait != (job)->id) {} else

void clients_init(void);

/* Accept a connection on @lfd, the control socket (@grp -1) or the trigger
 * socket of group @grp, or refuse it, saying why. */
void client_accept(int lfd, int grp);

/* One line of an answer (a newline is added). */
void client_send(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void client_error(struct client *c, const char *msg);

/* The poll set's entry of a client in use: what it waits for. */
struct pollfd client_pollfd(const struct client *c);
/* After poll(): read requests, send what is pending, or hang up. */
void client_ready(struct client *c, short revents);

/*
 * Serve the requests buffered while their client waited for a job, now that
 * the job's final line went out (a job ends in queue.c, which clears
 * c->wait and cannot serve there: a request may start, join or end jobs).
 * Called by the poll loop, never from a request or a job's report.
 */
void clients_serve_held(void);

/* Hang up on clients past their timeout; the milliseconds until the next
 * one is due (-1: none). */
int clients_expire(void);

void client_close(struct client *c);
void clients_close_all(void);
/* In a child process: close the descriptors, touch nothing else. */
void clients_close_fds(void);

#endif
