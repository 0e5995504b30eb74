// SPDX-License-Identifier: GPL-2.0
/* Serve a backup chain's image over the kernel's NBD client (export.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nbd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "kernel.h"
#include "export.h"
#include "util.h"

#define EXPORT_CONNECTIONS	2
/*
 * The kernel gives a request up after this, and the connection with it
 * (the ioctl interface does not reconnect): long enough for a slow backup
 * store, short enough that a stuck one ends in errors, not a hang.
 */
#define EXPORT_TIMEOUT_S	120
#define EXPORT_MAX_REQUEST	(32U << 20)	/* the NBD client's max_hw_sectors */
#define EXPORT_PREALLOC		(1U << 20)	/* a reply buffer that rarely grows */
#define EXPORT_LOGGED_ERRORS	20	/* then one in EXPORT_LOG_EVERY */
#define EXPORT_LOG_EVERY	1000

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER	57
#endif

/* One connection: its socket, its own chain reader and the last chunk read. */
struct worker {
	struct server *server;
	int sock;
	pthread_t thread;
	struct chain_reader reader;
	uint8_t *chunk;			/* chunk_bytes */
	uint64_t cached;		/* the chunk in @chunk, or UINT64_MAX */
	uint8_t *data;			/* a read's reply */
	size_t data_len;
};

struct server {
	struct nbd_device nbd;
	atomic_int connections;		/* workers still serving */
	struct export_stats stats;	/* under stats_lock */
	pthread_mutex_t stats_lock;
	struct worker workers[EXPORT_CONNECTIONS];
	pthread_t runner;
	bool running;
};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One timestamped line on standard error, the server's log. */
static void logf_(const char *fmt, ...)
{
	char stamp[32];
	time_t now = time(NULL);
	va_list ap;

	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", gmtime(&now));
	va_start(ap, fmt);
	fprintf(stderr, "%s ", stamp);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int read_exact(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static int send_reply(int sock, const struct nbd_request *req, uint32_t error,
		      const void *data, size_t len)
{
	struct nbd_reply reply = { .magic = htonl(NBD_REPLY_MAGIC), .error = htonl(error) };
	struct iovec iov[2] = { { &reply, sizeof(reply) }, { (void *)data, error ? 0 : len } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	memcpy(reply.handle, req->handle, sizeof(reply.handle));
	while (msg.msg_iovlen) {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		while (msg.msg_iovlen && (size_t)n >= msg.msg_iov->iov_len) {
			n -= msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
			msg.msg_iov->iov_len -= n;
		}
	}
	return 0;
}

static void count_served(struct server *s, uint32_t len)
{
	pthread_mutex_lock(&s->stats_lock);
	s->stats.bytes += len;
	pthread_mutex_unlock(&s->stats_lock);
}

/*
 * The error of the failed read: counted, kept as the last one, and logged
 * (the first ones, then one in EXPORT_LOG_EVERY: dm-clone retries a failed
 * copy for ever, and the log is in memory).
 */
static void count_error(struct server *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->stats_lock);
	n = ++s->stats.errors;
	snprintf(s->stats.last_error, sizeof(s->stats.last_error), "%s", error_msg());
	pthread_mutex_unlock(&s->stats_lock);
	if (n <= EXPORT_LOGGED_ERRORS || !(n % EXPORT_LOG_EVERY))
		logf_("read error %" PRIu64 ": %s", n, error_msg());
}

static void count_chunk(struct server *s)
{
	pthread_mutex_lock(&s->stats_lock);
	s->stats.chunks++;
	pthread_mutex_unlock(&s->stats_lock);
}

/* @len bytes of the image at @from into w->data. */
static int read_image(struct worker *w, uint64_t from, uint32_t len)
{
	const struct geometry *geo = w->reader.geo;
	uint64_t end = from + len, chunk, at;
	uint32_t skip, n;

	if (end < from || end > geo->volume_bytes) {
		return fail(AMBER_ESYS, "read of %" PRIu32 " bytes at %" PRIu64
			    " is past the image's end", len, from);
	}
	for (at = from; at < end; at += n) {
		chunk = at / geo->chunk_bytes;
		skip = at % geo->chunk_bytes;
		n = chunk_length(geo, chunk) - skip;
		if (n > end - at)
			n = end - at;
		if (w->cached != chunk) {
			w->cached = UINT64_MAX;
			if (chain_reader_read(&w->reader, chunk, w->chunk))
				return error_prefix("chunk %" PRIu64 ": ", chunk);
			count_chunk(w->server);
			w->cached = chunk;
		}
		memcpy(w->data + (at - from), w->chunk + skip, n);
	}
	return 0;
}

/* Answer one read: the image, or EIO when a chunk cannot be proven. */
static int serve_read(struct worker *w, const struct nbd_request *req)
{
	uint32_t len = ntohl(req->len);
	uint64_t from = be64toh(req->from);

	if (len > EXPORT_MAX_REQUEST) {
		logf_("a read of %" PRIu32 " bytes is larger than any the kernel sends", len);
		return send_reply(w->sock, req, EINVAL, NULL, 0);
	}
	if (len > w->data_len) {
		uint8_t *data = realloc(w->data, len);

		if (!data)
			return send_reply(w->sock, req, ENOMEM, NULL, 0);
		w->data = data;
		w->data_len = len;
	}
	if (read_image(w, from, len)) {
		count_error(w->server);
		return send_reply(w->sock, req, EIO, NULL, 0);
	}
	count_served(w->server, len);
	return send_reply(w->sock, req, 0, w->data, len);
}

/* A write's payload, read and dropped so that the next request is found. */
static int skip_payload(int sock, uint32_t len)
{
	char buf[4096];
	uint32_t n;

	for (; len; len -= n) {
		n = len < sizeof(buf) ? len : sizeof(buf);
		if (read_exact(sock, buf, n))
			return -1;
	}
	return 0;
}

/* A connection's loop, until the kernel disconnects or the socket fails. */
static void *serve_connection(void *arg)
{
	struct worker *w = arg;
	struct nbd_request req;
	uint32_t type;
	int ret;

	while (!read_exact(w->sock, &req, sizeof(req))) {
		if (ntohl(req.magic) != NBD_REQUEST_MAGIC) {
			logf_("bad request magic %08x: connection closed", ntohl(req.magic));
			break;
		}
		type = ntohl(req.type) & 0xffff;
		if (type == NBD_CMD_DISC)
			break;
		if (type == NBD_CMD_READ)
			ret = serve_read(w, &req);
		else if (type == NBD_CMD_FLUSH)
			ret = send_reply(w->sock, &req, 0, NULL, 0);
		else if (type == NBD_CMD_WRITE && skip_payload(w->sock, ntohl(req.len)))
			break;
		else	/* the device is read-only: writes and discards are refused */
			ret = send_reply(w->sock, &req, EPERM, NULL, 0);
		if (ret) {
			logf_("connection lost: %s", strerror(errno));
			break;
		}
	}
	shutdown(w->sock, SHUT_RDWR);	/* the kernel's receiver ends with it */
	atomic_fetch_sub(&w->server->connections, 1);
	return NULL;
}

static void *run_nbd(void *arg)
{
	struct server *s = arg;

	nbd_run(&s->nbd);
	return NULL;
}

/* Wait for the kernel to start the device (NBD_DO_IT in the runner). */
static int wait_running(struct server *s, uint64_t bytes)
{
	int i;

	for (i = 0; i < 1000; i++) {
		if (nbd_ready(&s->nbd, bytes))
			return 0;
		usleep(10000);
	}
	return fail(AMBER_ESYS, "%s did not start within 10 s", s->nbd.path);
}

static int start_workers(struct server *s, const struct chain *c, int *kernel_ends)
{
	int pair[2];
	size_t i;

	for (i = 0; i < EXPORT_CONNECTIONS; i++) {
		struct worker *w = &s->workers[i];

		w->server = s;
		w->cached = UINT64_MAX;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair))
			return fail_errno(AMBER_ESYS, "socketpair");
		w->sock = pair[0];
		kernel_ends[i] = pair[1];
		if (chain_reader_open(c, &w->reader))
			return -1;
		w->chunk = malloc(w->reader.geo->chunk_bytes);
		w->data = malloc(EXPORT_PREALLOC);
		if (!w->chunk || !w->data)
			return fail(AMBER_ESYS, "out of memory");
		w->data_len = EXPORT_PREALLOC;
	}
	atomic_store(&s->connections, EXPORT_CONNECTIONS);
	for (i = 0; i < EXPORT_CONNECTIONS; i++)
		if (pthread_create(&s->workers[i].thread, NULL, serve_connection, &s->workers[i]))
			return fail(AMBER_ESYS, "cannot start a server thread");
	return 0;
}

/*
 * Reclaim must not wait on this process's I/O: it serves the device that
 * reclaim may be writing to (as nbd and iSCSI servers do).
 */
static int stay_out_of_reclaim(void)
{
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		return fail_errno(AMBER_ESYS, "prctl(PR_SET_IO_FLUSHER)");
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		return fail_errno(AMBER_ESYS, "mlockall");
	return 0;
}

/*
 * Servers take NBD devices one at a time, from the search for a free one to
 * its start: the ioctls of two at once on one device would mix.
 */
static int lock_nbd_devices(void)
{
	int fd = open(EXPORT_LOG_DIR "/nbd.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return fail_errno(AMBER_ESYS, EXPORT_LOG_DIR "/nbd.lock");
	if (flock(fd, LOCK_EX)) {
		close(fd);
		return fail_errno(AMBER_ESYS, "flock " EXPORT_LOG_DIR "/nbd.lock");
	}
	return fd;
}

static int attach_and_run(struct server *s, const struct chain *c, int *kernel_ends)
{
	uint64_t bytes = c->m[0].info->geo.volume_bytes;

	if (nbd_attach(&s->nbd, kernel_ends, EXPORT_CONNECTIONS, bytes, EXPORT_TIMEOUT_S))
		return -1;
	if (pthread_create(&s->runner, NULL, run_nbd, s))
		return fail(AMBER_ESYS, "cannot start the NBD thread");
	s->running = true;
	return wait_running(s, bytes);
}

static int server_start(struct server *s, const struct chain *c)
{
	int kernel_ends[EXPORT_CONNECTIONS] = { -1, -1 };
	int lock, ret;
	size_t i;

	ret = stay_out_of_reclaim() || start_workers(s, c, kernel_ends) ? -1 : 0;
	lock = ret ? -1 : lock_nbd_devices();
	if (lock >= 0) {
		ret = attach_and_run(s, c, kernel_ends);
		close(lock);
	} else {
		ret = -1;
	}
	for (i = 0; i < EXPORT_CONNECTIONS; i++)
		if (kernel_ends[i] >= 0)
			close(kernel_ends[i]);	/* the kernel holds its own reference */
	return ret;
}

/* The server's life after up(): watch until done or the device ends. */
static int server_watch(struct server *s, const struct export_ops *ops)
{
	struct export_stats stats;
	int ret;

	for (;;) {
		sleep(1);
		if (!atomic_load(&s->connections)) {
			logf_("%s: every connection is lost (a request timed out, or the"
			      " kernel ended the device)", s->nbd.path);
			return -1;
		}
		pthread_mutex_lock(&s->stats_lock);
		stats = s->stats;
		pthread_mutex_unlock(&s->stats_lock);
		ret = ops->watch(ops->ctx, &stats);
		if (ret > 0)
			return 0;
		if (ret < 0)
			logf_("%s", error_msg());
	}
}

static void server_stop(struct server *s)
{
	if (s->running) {
		nbd_disconnect(&s->nbd);
		pthread_join(s->runner, NULL);
	}
}

/* Standard input from /dev/null, output and errors to the log. */
static int open_log(const char *name)
{
	char path[256];
	int fd;

	if (mkdir(EXPORT_LOG_DIR, 0700) && errno != EEXIST)
		return fail_errno(AMBER_ESYS, "%s", EXPORT_LOG_DIR);
	snprintf(path, sizeof(path), EXPORT_LOG_DIR "/%s.log", name);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
		return fail_errno(AMBER_ESYS, "dup2");
	close(fd);
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != STDIN_FILENO) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	return 0;
}

/* The server process: report up()'s result on @report, then serve. */
static int server_main(const struct chain *c, const char *name, const struct export_ops *ops,
		       int report)
{
	struct server s = { .nbd.fd = -1, .stats_lock = PTHREAD_MUTEX_INITIALIZER };
	const char *msg;
	int ret, done = 0;

	setsid();
	signal(SIGPIPE, SIG_IGN);	/* a parent gone must not end the server */
	ret = open_log(name) || server_start(&s, c) || ops->up(ops->ctx, s.nbd.path) ? -1 : 0;
	if (!ret)	/* the status file is this server's before anyone reads it */
		done = ops->watch(ops->ctx, &s.stats);
	msg = ret ? error_msg() : "";
	if (ret)
		logf_("not started: %s", msg);
	else
		logf_("serving %s on %s (pid %d)", name, s.nbd.path, (int)getpid());
	write_full(report, msg, strlen(msg) + 1);
	close(report);
	if (ret) {
		server_stop(&s);
		return 1;
	}
	ret = done > 0 ? 0 : server_watch(&s, ops);
	server_stop(&s);
	logf_("done");
	return ret ? 1 : 0;
}

int export_chain(const struct chain *c, const char *name, const struct export_ops *ops)
{
	char msg[1024];
	size_t got = 0;
	ssize_t n;
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return fail_errno(AMBER_ESYS, "pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return fail_errno(AMBER_ESYS, "fork");
	if (!pid) {
		close(pipefd[0]);
		_exit(server_main(c, name, ops, pipefd[1]));
	}
	close(pipefd[1]);
	while (got < sizeof(msg) - 1 && (n = read(pipefd[0], msg + got, sizeof(msg) - 1 - got)))
		if (n > 0)
			got += n;
		else if (errno != EINTR)
			break;
	close(pipefd[0]);
	msg[got] = '\0';
	if (!got)
		return fail(AMBER_ESYS, "the server for %s died before it started (see %s/%s.log)",
			    name, EXPORT_LOG_DIR, name);
	if (*msg)
		return fail(AMBER_ESYS, "%s", msg);
	return 0;
}

static void status_path(const char *name, const char *suffix, char *path, size_t len)
{
	snprintf(path, len, EXPORT_LOG_DIR "/%s%s", name, suffix);
}

int export_write_status(const char *name, json_t *status)
{
	char path[256], tmp[256];
	int ret;

	status_path(name, ".json", path, sizeof(path));
	status_path(name, ".json.new", tmp, sizeof(tmp));
	ret = status ? json_dump_file(status, tmp, JSON_COMPACT) : -1;
	json_decref(status);
	if (ret || rename(tmp, path))
		return fail(AMBER_ESYS, "cannot write %s", path);
	return 0;
}

json_t *export_read_status(const char *name)
{
	char path[256];

	status_path(name, ".json", path, sizeof(path));
	return json_load_file(path, 0, NULL);
}

int export_check_name(const char *name, size_t suffix_room)
{
	size_t i, len = strlen(name);

	if (!len || name[0] == '.' || len + suffix_room >= DM_NAME_MAX)
		return fail(AMBER_EUSAGE, "--name '%s': 1 to %zu characters, not starting with"
			    " '.'", name, DM_NAME_MAX - 1 - suffix_room);
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-+", name[i]))
			return fail(AMBER_EUSAGE, "--name '%s': letters, digits, '.', '_', '-'"
				    " and '+' only", name);
	return 0;
}
