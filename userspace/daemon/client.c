// SPDX-License-Identifier: GPL-2.0
/* amberd's connections: see client.h for the limits and why. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "daemon.h"
#include "request.h"
#include "serve.h"
#include "util.h"

#define OUT_MAX		(16 << 20)	/* one answer, buffered */
#define OUT_CUT_ROOM	512		/* for the line that says it was cut */
#define OUT_KEEP	(64 << 10)	/* a buffer kept for the next answer */

struct client clients[CLIENTS_MAX];

void clients_init(void)
{
	unsigned int i;

	for (i = 0; i < CLIENTS_MAX; i++)
		clients[i].fd = -1;
}

void client_close(struct client *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void clients_close_all(void)
{
	unsigned int i;

	for (i = 0; i < CLIENTS_MAX; i++)
		client_close(&clients[i]);
}

void clients_close_fds(void)
{
	unsigned int i;

	for (i = 0; i < CLIENTS_MAX; i++)
		if (clients[i].fd >= 0)
			close(clients[i].fd);
}

/*
 * Send what the socket takes now; false when the client is gone (hung up
 * on, or done with once its last line went out). A drained buffer that grew
 * past OUT_KEEP is freed: a big answer's memory is not kept for the next.
 */
static bool flush_out(struct client *c)
{
	ssize_t n;

	while (c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0) {
			client_close(c);
			return false;
		}
		c->out_off += n;
		c->out_len -= n;
		c->progress = now_seconds();
	}
	c->out_off = 0;
	if (c->out_size > OUT_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_size = 0;
	}
	if (c->ending) {
		client_close(c);
		return false;
	}
	return true;
}

/* Queue @len bytes; false when there is no memory for them. */
static bool append_out(struct client *c, const char *line, size_t len)
{
	size_t size = c->out_size ? c->out_size : 4096;
	char *out;

	/* What was sent goes first, once, rather than at every send(). */
	if (c->out_off && c->out_off + c->out_len + len > c->out_size) {
		memmove(c->out, c->out + c->out_off, c->out_len);
		c->out_off = 0;
	}
	while (size < c->out_off + c->out_len + len)
		size *= 2;
	if (size != c->out_size) {
		out = realloc(c->out, size);
		if (!out) {
			log_uid(c->uid, LOG_ERR, "hung up on a client of uid %u pid %d: out of"
				" memory for its answer", c->uid, c->pid);
			return false;
		}
		c->out = out;
		c->out_size = size;
	}
	memcpy(c->out + c->out_off + c->out_len, line, len);
	c->out_len += len;
	return true;
}

static void send_line(struct client *c, const char *line, size_t len)
{
	if (!append_out(c, line, len)) {
		client_close(c);
		return;
	}
	if (c->out_len == len)	/* nothing was pending: it starts now */
		c->progress = now_seconds();
	flush_out(c);
}

/*
 * A last line, "error TEXT": the client is hung up on once it has read it
 * (or after SEND_TIMEOUT_S), and nothing else is read from it or sent.
 */
/* @prefix and @fmt's text in @line of @size bytes, cut to fit its newline;
 * returns the length with the newline. */
static size_t format_line(char *line, size_t size, const char *prefix, const char *fmt,
			  va_list ap)
{
	size_t len = snprintf(line, size - 1, "%s", prefix);

	vsnprintf(line + len, size - 1 - len, fmt, ap);
	len = strlen(line);
	line[len++] = '\n';
	return len;
}

static void client_end(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void client_end(struct client *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	size_t len;

	if (c->fd < 0 || c->ending)
		return;
	va_start(ap, fmt);
	len = format_line(line, sizeof(line), "error ", fmt, ap);
	va_end(ap);
	c->ending = true;
	send_line(c, line, len);
}

void client_send(struct client *c, const char *fmt, ...)
{
	char line[CLIENT_LINE_MAX];
	va_list ap;
	size_t len;

	if (c->fd < 0 || c->ending)
		return;
	va_start(ap, fmt);
	len = format_line(line, sizeof(line), "", fmt, ap);
	va_end(ap);
	/* An answer is made whole at once, and only list's can be this big
	 * (some 90,000 backups with short names, when the client reads
	 * slower than amberd makes it): past OUT_MAX it is cut after a whole
	 * line, and its last line says so. */
	if (c->out_len + len > OUT_MAX - OUT_CUT_ROOM) {
		log_uid(c->uid, LOG_WARNING, "cut the answer to a client of uid %u pid %d at"
			" %d MiB; it is hung up on once it has read that far", c->uid, c->pid,
			OUT_MAX >> 20);
		client_end(c, "the answer is cut here: it is over %d MiB, more than amberd"
			   " holds for one client (ask for less: list GROUP)", OUT_MAX >> 20);
		return;
	}
	send_line(c, line, len);
}

void client_error(struct client *c, const char *msg)
{
	client_send(c, "error %s", msg);
}

/* The requests received, one at a time: none while an answer is pending
 * or a job is waited for. */
static void serve_lines(struct client *c)
{
	char *nl;

	while (c->fd >= 0 && !c->wait && !c->out_len &&
	       (nl = memchr(c->in, '\n', c->in_len))) {
		*nl = 0;
		if (nl > c->in && nl[-1] == '\r')
			nl[-1] = 0;
		serve_request(c, c->in);
		if (c->fd < 0)
			return;
		c->in_len -= nl + 1 - c->in;
		memmove(c->in, nl + 1, c->in_len);
	}
	if (c->fd >= 0 && c->in_len == sizeof(c->in) - 1 && !memchr(c->in, '\n', c->in_len))
		client_end(c, "the request is longer than %d bytes", REQ_LINE_MAX - 1);
}

/* A whole request waits in @c's input, and nothing holds it back. */
static bool has_held(const struct client *c)
{
	return c->fd >= 0 && !c->wait && !c->out_len && memchr(c->in, '\n', c->in_len);
}

void clients_serve_held(void)
{
	struct client *c;
	bool served;

	/* A request served may end a job (one that cannot start) and so
	 * free a client already passed: round again until none is left.
	 * Each round serves a line at least, and none is read meanwhile. */
	do {
		served = false;
		for (c = clients; c < clients + CLIENTS_MAX; c++)
			if (has_held(c)) {
				serve_lines(c);
				served = true;
			}
	} while (served);
}

static void client_input(struct client *c, short revents)
{
	size_t room = sizeof(c->in) - 1 - c->in_len;
	ssize_t n;

	if (!room) {		/* a job is waited for: only a hang-up counts */
		if (revents & (POLLERR | POLLHUP))
			client_close(c);
		return;
	}
	n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (c->wait)
			log_uid(c->uid, LOG_INFO, "a client of uid %u pid %d waiting for job %u"
				" left; the job goes on", c->uid, c->pid, c->wait);
		client_close(c);
		return;
	}
	c->in_len += n;
	c->progress = now_seconds();
	serve_lines(c);
}

struct pollfd client_pollfd(const struct client *c)
{
	/* A full input buffer is read no further until its line is served;
	 * a hang-up is reported all the same. */
	short events = c->out_len ? POLLOUT : c->in_len < sizeof(c->in) - 1 ? POLLIN : 0;

	return (struct pollfd){ .fd = c->fd, .events = events };
}

void client_ready(struct client *c, short revents)
{
	if (c->fd < 0)
		return;
	if (c->out_len && (revents & (POLLOUT | POLLERR | POLLHUP))) {
		if (flush_out(c) && !c->out_len)
			serve_lines(c);		/* requests that came meanwhile */
		return;
	}
	if (revents & (POLLIN | POLLERR | POLLHUP))
		client_input(c, revents);
}

/* When @c is hung up on, by now_seconds() (0: never). */
static double client_deadline(const struct client *c)
{
	if (c->out_len)
		return c->progress + SEND_TIMEOUT_S;
	if (c->wait)
		return 0;	/* a job's answers come when they come */
	return c->progress + IDLE_TIMEOUT_S;
}

int clients_expire(void)
{
	double now = now_seconds(), next = 0, due;
	struct client *c;

	for (c = clients; c < clients + CLIENTS_MAX; c++) {
		if (c->fd < 0)
			continue;
		due = client_deadline(c);
		if (due && due <= now) {
			log_info("hung up on a client of uid %u pid %d: %s", c->uid, c->pid,
				 c->out_len ? "it reads no answer" : "idle");
			client_close(c);
			continue;
		}
		if (due && (!next || due < next))
			next = due;
	}
	return next ? (int)((next - now) * 1000) + 1 : -1;
}

/* A refusal: one line, if the socket takes it now, then hang up. */
static void refuse(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(int fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	len = format_line(line, sizeof(line), "error ", fmt, ap);
	va_end(ap);
	/* Not heard when it is gone or does not read: nothing to do then. */
	send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static unsigned int count_clients(int control, uid_t uid, bool by_uid)
{
	unsigned int i, n = 0;

	for (i = 0; i < CLIENTS_MAX; i++)
		if (clients[i].fd >= 0 && (clients[i].grp < 0) == control &&
		    (!by_uid || clients[i].uid == uid))
			n++;
	return n;
}

/* Why a client of @uid on a trigger socket may not have a slot, or NULL. */
static const char *trigger_limit(uid_t uid)
{
	if (count_clients(false, uid, true) >= CLIENTS_PER_UID)
		return "this user has too many connections";
	if (count_clients(false, 0, false) >= CLIENTS_MAX - CONTROL_RESERVED)
		return "too many clients";
	return NULL;
}

static struct client *free_slot(void)
{
	unsigned int i;

	for (i = 0; i < CLIENTS_MAX; i++)
		if (clients[i].fd < 0)
			return &clients[i];
	return NULL;
}

void client_accept(int lfd, int grp)
{
	socklen_t len = sizeof(struct ucred);
	const char *why;
	struct ucred cred;
	struct client *c;
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		refuse(fd, "cannot tell who is asking (SO_PEERCRED: %s)", strerror(errno));
		return;
	}
	if (grp < 0 && cred.uid != 0) {
		log_uid(cred.uid, LOG_WARNING, "refused a client of uid %u pid %d on the control"
			" socket: not root", cred.uid, cred.pid);
		refuse(fd, "permission denied: amberd's control socket takes requests"
		       " from root only, not from uid %u (a database user asks for backups on"
		       " its group's trigger socket, see trigger_user in amberd.conf(5))",
		       cred.uid);
		return;
	}
	if (grp >= 0 && cred.uid != 0 && cred.uid != conf.grp[grp].trigger_uid) {
		log_uid(cred.uid, LOG_WARNING, "refused a client of uid %u pid %d on the trigger"
			" socket of group %s", cred.uid, cred.pid, conf.grp[grp].name);
		refuse(fd, "permission denied: the trigger socket of group %s is for"
		       " user %s only, not uid %u", conf.grp[grp].name,
		       conf.grp[grp].trigger_user, cred.uid);
		return;
	}
	why = grp >= 0 ? trigger_limit(cred.uid) : NULL;
	c = why ? NULL : free_slot();
	if (!c) {
		why = why ? why : "too many clients";
		log_uid(cred.uid, LOG_WARNING, "refused a client of uid %u pid %d on %s%s: %s",
			cred.uid, cred.pid, grp < 0 ? "the control socket" :
			"the trigger socket of group ", grp < 0 ? "" : conf.grp[grp].name, why);
		refuse(fd, "%s: try later", why);
		return;
	}
	*c = (struct client){ .fd = fd, .grp = grp, .uid = cred.uid, .pid = cred.pid,
			      .progress = now_seconds() };
	client_send(c, "amberd protocol %d", AMBERD_PROTOCOL);
}
