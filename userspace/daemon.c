// SPDX-License-Identifier: GPL-2.0
/* amber daemon: send one request to amberd and print its answer. */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "report.h"
#include "request.h"
#include "subcommands.h"
#include "util.h"

#define DAEMON_SOCKET	"/run/amber/amberd.sock"
#define ANSWER_MAX	65536

static const char usage[] =
"Usage: amber daemon REQUEST [ARG...] [--socket PATH] [--detach] [--json]\n"
"\n"
"Send one request to amberd and print its answer, a line at a time as it\n"
"comes. Requests:\n"
"\n"
"  status                           the daemon, its volumes, groups and jobs\n"
"  list [GROUP]                     the catalog of backups\n"
"  chain GROUP [SET]                per volume, the files that restore a set\n"
"                                   (the newest by default), oldest first,\n"
"                                   and their digests for 'restore --digest'\n"
"  snap GROUP                       one barrier over the group; the snapshots\n"
"                                   stay for 'amber backup --use-snapshot'\n"
"  backup GROUP [full|incremental]  a backup set from one barrier over the\n"
"                                   group (by default full or incremental as\n"
"                                   the group's full_every says)\n"
"\n"
"  -s, --socket PATH  amberd's socket (" DAEMON_SOCKET ", root only), or a\n"
"                     group's trigger socket (/run/amber/GROUP.trigger, for\n"
"                     its trigger_user)\n"
"      --detach       backup: return once the barrier is cut; amberd\n"
"                     finishes the backup and logs its outcome\n"
"  -j, --json         status: one JSON object, {daemon, volumes, groups,\n"
"                     jobs} (amber(8) has the keys)\n"
"\n"
"Exit status 0 when amberd answers ok, 1 when it answers with an error or\n"
"cannot be reached, 2 for a usage error (a request amberd would refuse as\n"
"malformed included: it is not sent).\n";

enum { OPT_SOCKET, OPT_DETACH, OPT_JSON };

static const struct cli_option options[] = {
	[OPT_SOCKET]	= CLI_VALUE("socket", 's'),
	[OPT_DETACH]	= CLI_FLAG("detach", 0),
	[OPT_JSON]	= CLI_FLAG("json", 'j'),
	{ },
};

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return fail(AMBER_EUSAGE, "--socket: '%s' is too long for a socket path", path);
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_errno(AMBER_ESYS, "socket");
	if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return fd;
	close(fd);
	if (errno == ENOENT || errno == ECONNREFUSED)
		return fail(AMBER_ESYS, "cannot reach amberd at %s: %s (is amberd running?)",
			    path, errno == ENOENT ? "no such socket" : "nobody listens");
	if (errno == EACCES)
		return fail(AMBER_ESYS, "cannot reach amberd at %s: permission denied (its"
			    " control socket is root's; a database user uses its group's"
			    " trigger socket)", path);
	return fail_errno(AMBER_ESYS, "cannot reach amberd at %s", path);
}

/* The request line, from the words on the command line. */
static int request_line(const struct cli *c, char *line, size_t size, size_t *len)
{
	struct request r;
	size_t used = 0;
	int i;

	for (i = 0; i < c->nr_args; i++) {
		if (strchr(c->args[i], '\n') || strchr(c->args[i], ' ') || !*c->args[i])
			return fail(AMBER_EUSAGE, "'%s' is not one word", c->args[i]);
		used += snprintf(line + used, size - used, "%s%s", i ? " " : "", c->args[i]);
		if (used >= size - 1)
			return fail(AMBER_EUSAGE, "the request is too long");
	}
	/* A request amberd would refuse is a usage error, found before asking. */
	if (request_parse(line, &r))
		return -1;
	line[used++] = '\n';
	*len = used;
	return 0;
}

/* amberd's first line: its greeting, unless it refused the client. */
static int check_greeting(const char *line, const char *path)
{
	int version, end = 0;

	if (sscanf(line, "amberd protocol %d%n", &version, &end) != 1 || line[end])
		return fail(AMBER_ESYS, "%s is not amberd's socket, or its amberd is older than"
			    " this amber (restart it): it said '%.80s'", path, line);
	if (version != AMBERD_PROTOCOL)
		return fail(AMBER_ESYS, "amberd at %s speaks protocol %d and this amber speaks %d:"
			    " use the amber of amberd's release", path, version, AMBERD_PROTOCOL);
	return 0;
}

struct answer {
	char buf[ANSWER_MAX];
	size_t len;
	json_t *json;		/* --json: the status document being gathered */
};

/*
 * One record of "status json", {"KIND": {...}}, into the document: the
 * daemon's object (exactly one), or one more in volumes, groups or jobs. A
 * kind this amber does not know (from a newer amberd) is left out.
 */
#define STATUS_RECORDS_MAX	100000

static int gather(json_t *doc, const char *line)
{
	static const char *const kinds[][2] = {
		{ "volume", "volumes" }, { "group", "groups" }, { "job", "jobs" },
	};
	json_error_t why;
	json_t *rec = json_loads(line, JSON_REJECT_DUPLICATES, &why);
	const char *kind = json_object_size(rec) == 1 ?
			   json_object_iter_key(json_object_iter(rec)) : NULL;
	json_t *value = kind ? json_object_get(rec, kind) : NULL;
	unsigned int i;
	int ret = 0;

	if (!rec)
		return fail(AMBER_ESYS, "amberd sent a status line that is not JSON (%s): '%.80s'",
			    why.text, line);
	if (!json_is_object(value)) {
		json_decref(rec);
		return fail(AMBER_ESYS, "amberd sent a status line that is not one record:"
			    " '%.80s'", line);
	}
	if (!strcmp(kind, "daemon")) {
		if (!json_is_null(json_object_get(doc, "daemon")))
			ret = fail(AMBER_ESYS, "amberd sent two daemon records");
		else if (json_object_set(doc, "daemon", value))
			ret = fail(AMBER_ESYS, "out of memory");
	}
	for (i = 0; i < ARRAY_SIZE(kinds) && !ret; i++) {
		json_t *list = json_object_get(doc, kinds[i][1]);

		if (strcmp(kind, kinds[i][0]))
			continue;
		if (json_array_size(list) >= STATUS_RECORDS_MAX)
			ret = fail(AMBER_ESYS, "amberd sent over %d %s records", STATUS_RECORDS_MAX,
				   kind);
		else if (json_array_append(list, value))
			ret = fail(AMBER_ESYS, "out of memory");
	}
	json_decref(rec);
	return ret;
}

/* A line of the answer (not its final one): printed, or gathered. */
static int take_line(struct answer *a, const char *line)
{
	if (a->json)
		return gather(a->json, line);
	printf("%s\n", line);
	return 0;
}

static bool is_final(const char *line)
{
	return !strncmp(line, "ok", 2) && (!line[2] || line[2] == ' ');
}

/*
 * Read amberd's lines: with @greeting, up to its greeting (checked), and
 * nothing is printed; without, the answer's lines up to its final line (or
 * the barrier line with @detach), each printed or, with --json, gathered.
 */
static int read_answer(struct answer *a, int fd, const char *path, bool greeting, bool detach)
{
	char *buf = a->buf;
	size_t len = a->len;
	char *nl;
	ssize_t n;

	for (;;) {
		while ((nl = memchr(buf, '\n', len))) {
			*nl = 0;
			if (!strncmp(buf, "error ", 6) || !strcmp(buf, "error"))
				return fail(AMBER_ESYS, "%s", buf + (buf[5] ? 6 : 5));
			if (greeting) {
				if (check_greeting(buf, path))
					return -1;
				a->len = len - (nl + 1 - buf);
				memmove(buf, nl + 1, a->len);
				return 0;
			}
			if (a->json && is_final(buf))
				return 0;
			if (take_line(a, buf))
				return -1;
			if (is_final(buf))
				return 0;
			if (detach && !strncmp(buf, "barrier ", 8))
				return 0;
			len -= nl + 1 - buf;
			memmove(buf, nl + 1, len);
		}
		if (len == sizeof(a->buf))
			return fail(AMBER_ESYS, "amberd sent a line longer than %zu bytes",
				    sizeof(a->buf));
		n = read(fd, buf + len, sizeof(a->buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_errno(AMBER_ESYS, "reading from amberd");
		if (!n)
			return fail(AMBER_ESYS, "amberd closed the connection before answering");
		len += n;
	}
}

/* --json: the status request's JSON form, and the empty document. */
static int ask_json(const struct cli *c, struct answer *a, char *line, size_t *len)
{
	if (c->nr_args != 1 || strcmp(c->args[0], "status"))
		return fail(AMBER_EUSAGE, "--json goes with the status request only");
	*len = sprintf(line, "status json\n");
	a->json = json_pack("{s:n, s:[], s:[], s:[]}", "daemon", "volumes", "groups", "jobs");
	return a->json ? 0 : fail(AMBER_ESYS, "out of memory");
}

/* An amberd that predates "status json" refuses it as a status with words. */
static int explain_old_amberd(void)
{
	if (strstr(error_msg(), "'status' takes"))
		error_append(" (this amberd is older than this amber: restart it)");
	return -1;
}

static int run_request(struct answer *a, const char *path, const char *line, size_t len,
		       bool detach)
{
	int fd = connect_to(path);
	int ret;

	if (fd < 0)
		return -1;
	/* Nothing is sent before amberd greets: a refused client is told why,
	 * and a socket that is not amberd's never gets a request. */
	a->len = 0;
	ret = read_answer(a, fd, path, true, false);
	if (!ret && send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len)
		ret = fail_errno(AMBER_ESYS, "sending to amberd");
	if (!ret)
		ret = read_answer(a, fd, path, false, detach);
	close(fd);
	return ret;
}

int daemon_main(int argc, char **argv)
{
	struct cli c = { .command = "daemon", .usage = usage, .options = options };
	static struct answer answer;
	const char *path = DAEMON_SOCKET;
	char line[512];
	size_t len = 0;
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 1, 4, "REQUEST") || request_line(&c, line, sizeof(line), &len))
		return -1;
	answer.json = NULL;
	if (cli_flag(&c, OPT_JSON) && ask_json(&c, &answer, line, &len))
		return -1;
	if (c.value[OPT_SOCKET])
		path = c.value[OPT_SOCKET];
	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = run_request(&answer, path, line, len, cli_flag(&c, OPT_DETACH));
	if (answer.json) {
		if (!ret && json_is_null(json_object_get(answer.json, "daemon")))
			ret = fail(AMBER_ESYS, "amberd's status had no daemon record");
		if (ret)
			explain_old_amberd();
		else
			ret = print_json(json_incref(answer.json));
		json_decref(answer.json);
	}
	return ret;
}
