// SPDX-License-Identifier: GPL-2.0
/*
 * clientflood: hostile clients of amberd's sockets, and the time a request
 * takes meanwhile, for amber_daemon.
 *
 *   clientflood flood SOCKET NOREAD IDLE REQUEST WAIT
 *       Opens NOREAD connections that send REQUEST over and over (as much
 *       as their sockets take) and never read, then IDLE connections that
 *       send nothing. Prints "held H refused R": connections whose first
 *       line was amberd's greeting (or that heard nothing in 2 s: an
 *       amberd without one), or an error; and "refusal TEXT" once. Then
 *       waits until amberd has hung up on every held connection, WAIT
 *       seconds at most: prints "closed N of H after S s".
 *   clientflood time SOCKET REQUEST
 *       One request: prints "ms M" from connect to the answer's final
 *       line, and the final line. Exit 0 when it is "ok...".
 *
 * Exit 1 on an unexpected failure, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (sent < 65536 && send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len)
		sent += len;
}

static int flood(const char *path, int noread, int idle, const char *request, int wait_s)
{
	static struct pollfd held[MAX_CONNS];
	char line[1024], req[600], refusal[1024] = "";
	int i, fd, held_n = 0, refused = 0, closed = 0;
	double start;

	snprintf(req, sizeof(req), "%s\n", request);
	for (i = 0; i < noread + idle; i++) {
		fd = connect_to(path);
		if (read_line(fd, line, sizeof(line), 2000) && *line) {
			fprintf(stderr, "connection %d: a part of a line, '%s'\n", i, line);
			return 1;
		}
		if (!strncmp(line, "error ", 6)) {
			if (!refused++)
				snprintf(refusal, sizeof(refusal), "%s", line + 6);
			close(fd);
			continue;
		}
		if (*line && strncmp(line, "amberd protocol ", 16)) {
			fprintf(stderr, "connection %d: first line '%s'\n", i, line);
			return 1;
		}
		if (i < noread)
			send_until_full(fd, req);
		held[held_n++] = (struct pollfd){ .fd = fd };
	}
	printf("held %d refused %d\n", held_n, refused);
	if (refused)
		printf("refusal %s\n", refusal);
	fflush(stdout);
	/* Amberd's answers are not read: only its hang-up is looked for. */
	start = now_ms();
	while (closed < held_n && now_ms() - start < wait_s * 1e3) {
		for (i = 0; i < held_n; i++)
			held[i].events = held[i].fd >= 0 ? POLLRDHUP : 0;
		if (poll(held, held_n, 1000) < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < held_n; i++)
			if (held[i].fd >= 0 && (held[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
				close(held[i].fd);
				held[i].fd = -1;
				closed++;
			}
	}
	printf("closed %d of %d after %.0f s\n", closed, held_n, (now_ms() - start) / 1e3);
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
	printf("ms %.1f\n%s\n", now_ms() - start, line);
	close(fd);
	return strncmp(line, "ok", 2) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "flood") && atoi(argv[3]) + atoi(argv[4]) <= MAX_CONNS)
		return flood(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5], atoi(argv[6]));
	if (argc == 4 && !strcmp(argv[1], "time"))
		return timed(argv[2], argv[3]);
	fprintf(stderr, "usage: clientflood flood SOCKET NOREAD IDLE REQUEST WAIT\n"
		"       clientflood time SOCKET REQUEST\n");
	return 2;
}
