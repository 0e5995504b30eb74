// SPDX-License-Identifier: GPL-2.0
/*
 * clientflood: hostile clients of amberd's sockets, and the time a request
 * takes meanwhile, for amber_daemon.
 *
 *   clientflood flood SOCKET NOREAD IDLE REQUEST WAIT
 *       Opens NOREAD connections that send REQUEST over and over (as much
 *       as their sockets take) and never read, then IDLE connections that
 *       send nothing, all at once. Prints "held H refused R": connections
 *       whose first line was amberd's greeting (or that heard nothing in
 *       20 s: an amberd without one), or an error; and "refusal TEXT" once. Then
 *       waits until amberd has hung up on every held connection, WAIT
 *       seconds at most: prints "closed N of H after S s".
 *   clientflood time SOCKET REQUEST
 *       One request: prints "ms M" from connect to the answer's final
 *       line, and "final LINE". Exit 0 when it is "ok...".
 *   clientflood spam SOCKET CONNS REQUEST SECONDS
 *       CONNS connections that each send REQUEST, read its answer and send
 *       it again, for SECONDS: prints "asked N" (answers read in full) and
 *       "final LINE", the first answer's final line.
 *
 * Exit 1 on an unexpected failure, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS	1024

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror(path);
		exit(1);
	}
	return fd;
}

/* One line from @fd into @line (without its newline), within @ms. */
static int read_line(int fd, char *line, size_t size, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t len = 0;
	char ch;

	*line = 0;
	while (len < size - 1) {
		if (poll(&p, 1, ms) != 1 || read(fd, &ch, 1) != 1)
			return -1;
		if (ch == '\n')
			break;
		line[len++] = ch;
	}
	line[len] = 0;
	return 0;
}

/* Send @req as many times as the socket takes now, 64 KiB at most. */
static void send_until_full(int fd, const char *req)
{
	size_t len = strlen(req), sent = 0;

	while (sent < 65536 && send(fd, req, len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len)
		sent += len;
}

struct conn {
	char first[256];		/* amberd's first line */
	size_t len;
	bool done;			/* the line, or end of file, came */
};

/* The first line of each connection, for @ms at most. */
static void read_first_lines(const struct pollfd *p, struct conn *c, int n, int ms)
{
	static struct pollfd q[MAX_CONNS];
	double end = now_ms() + ms;
	int i, left = n;
	char ch;

	for (i = 0; i < n; i++)
		q[i] = (struct pollfd){ .fd = p[i].fd, .events = POLLIN };
	while (left && now_ms() < end && poll(q, n, end - now_ms() + 1) > 0) {
		for (i = 0; i < n; i++) {
			if (!q[i].revents)
				continue;
			if (read(q[i].fd, &ch, 1) != 1 || ch == '\n' ||
			    c[i].len == sizeof(c[i].first) - 1) {
				c[i].done = true;
				q[i].fd = -1;	/* poll() skips it from now on */
				left--;
				continue;
			}
			c[i].first[c[i].len++] = ch;
		}
	}
}

static int flood(const char *path, int noread, int idle, const char *request, int wait_s)
{
	static struct pollfd p[MAX_CONNS];
	static struct conn c[MAX_CONNS];
	char req[600], refusal[256] = "";
	int i, n = noread + idle, held = 0, refused = 0, closed = 0;
	double start;

	/* All at once, in order: amberd accepts them in that order. */
	snprintf(req, sizeof(req), "%s\n", request);
	for (i = 0; i < n; i++) {
		p[i].fd = connect_to(path);
		if (i < noread)
			send_until_full(p[i].fd, req);
	}
	read_first_lines(p, c, n, 20000);
	for (i = 0; i < n; i++) {
		if (!strncmp(c[i].first, "error ", 6)) {
			if (!refused++)
				snprintf(refusal, sizeof(refusal), "%s", c[i].first + 6);
			close(p[i].fd);
			p[i].fd = -1;
		} else if (c[i].len && strncmp(c[i].first, "amberd protocol ", 16)) {
			fprintf(stderr, "connection %d: first line '%s'\n", i, c[i].first);
			return 1;
		} else {
			held++;	/* greeted, or silent: an amberd without a greeting */
		}
	}
	printf("held %d refused %d\n", held, refused);
	if (refused)
		printf("refusal %s\n", refusal);
	fflush(stdout);
	/* Amberd's answers are not read: only its hang-up is looked for. */
	start = now_ms();
	while (closed < held && now_ms() - start < wait_s * 1e3) {
		for (i = 0; i < n; i++)
			p[i].events = POLLRDHUP;
		if (poll(p, n, 1000) < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < n; i++)
			if (p[i].fd >= 0 && (p[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
				close(p[i].fd);
				p[i].fd = -1;
				closed++;
			}
	}
	printf("closed %d of %d after %.0f s\n", closed, held, (now_ms() - start) / 1e3);
	return 0;
}

static int timed(const char *path, const char *request)
{
	char line[16384], req[600];
	double start = now_ms();
	int fd = connect_to(path);

	snprintf(req, sizeof(req), "%s\n", request);
	/* The answer's lines, after the greeting (if this amberd has one). */
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		return 1;
	do {
		if (read_line(fd, line, sizeof(line), 10000)) {
			fprintf(stderr, "no final line within 10 s\n");
			return 1;
		}
	} while (strncmp(line, "ok", 2) && strncmp(line, "error", 5));
	printf("ms %.1f\nfinal %s\n", now_ms() - start, line);
	close(fd);
	return strncmp(line, "ok", 2) ? 1 : 0;
}

/* The final lines ("ok..." or "error...") among the whole lines of @buf
 * (@len bytes): counted, the first ever seen kept in @final; what follows
 * the last newline stays in @buf. */
static int final_lines(char *buf, size_t *len, char *final, size_t size)
{
	char *line = buf, *nl;
	int finals = 0;

	while ((nl = memchr(line, '\n', buf + *len - line))) {
		*nl = 0;
		if (!strncmp(line, "ok", 2) || !strncmp(line, "error", 5)) {
			finals++;
			if (!*final)
				snprintf(final, size, "%s", line);
		}
		line = nl + 1;
	}
	*len -= line - buf;
	memmove(buf, line, *len);
	return finals;
}

static int spam(const char *path, int n, const char *request, int seconds)
{
	static struct pollfd p[MAX_CONNS];
	static char buf[MAX_CONNS][4096];
	static size_t len[MAX_CONNS];
	char req[600], final[256] = "", greeting[256];
	double end = now_ms() + seconds * 1e3;
	long asked = 0;
	int i, open = n;
	ssize_t got;

	snprintf(req, sizeof(req), "%s\n", request);
	for (i = 0; i < n; i++) {
		p[i] = (struct pollfd){ .fd = connect_to(path), .events = POLLIN };
		if (read_line(p[i].fd, greeting, sizeof(greeting), 5000) ||
		    strncmp(greeting, "amberd protocol ", 16)) {
			fprintf(stderr, "connection %d: greeting '%s'\n", i, greeting);
			return 1;
		}
		if (send(p[i].fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
			return 1;
	}
	/* Each connection has one request out; after the deadline its answer
	 * is read and no other is sent. */
	while (open && poll(p, n, 10000) > 0) {
		for (i = 0; i < n; i++) {
			if (!p[i].revents)
				continue;
			got = read(p[i].fd, buf[i] + len[i], sizeof(buf[i]) - len[i]);
			if (got <= 0 || len[i] + got == sizeof(buf[i])) {
				fprintf(stderr, "connection %d: %s\n", i, got < 0 ? strerror(errno) :
					got ? "a line too long" : "amberd hung up");
				return 1;
			}
			len[i] += got;
			got = final_lines(buf[i], &len[i], final, sizeof(final));
			if (!got)
				continue;
			asked += got;
			if (now_ms() < end &&
			    send(p[i].fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req))
				continue;
			close(p[i].fd);
			p[i].fd = -1;
			open--;
		}
	}
	printf("asked %ld\nfinal %s\n", asked, final);
	return open ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "flood") && atoi(argv[3]) + atoi(argv[4]) <= MAX_CONNS)
		return flood(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5], atoi(argv[6]));
	if (argc == 4 && !strcmp(argv[1], "time"))
		return timed(argv[2], argv[3]);
	if (argc == 6 && !strcmp(argv[1], "spam") && atoi(argv[3]) > 0 &&
	    atoi(argv[3]) <= MAX_CONNS)
		return spam(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]));
	fprintf(stderr, "usage: clientflood flood SOCKET NOREAD IDLE REQUEST WAIT\n"
		"       clientflood time SOCKET REQUEST\n"
		"       clientflood spam SOCKET CONNS REQUEST SECONDS\n");
	return 2;
}
