// SPDX-License-Identifier: GPL-2.0
/* amberd's request lines: see request.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "request.h"
#include "util.h"

#define COMMANDS "status [json], list [GROUP], chain GROUP [SET], snap GROUP, " \
		 "backup GROUP [full|incremental]"

static const struct {
	const char *name;
	enum req_cmd cmd;
	int min, max;			/* words after the command */
} commands[] = {
	{ "status", REQ_STATUS, 0, 1 },
	{ "list", REQ_LIST, 0, 1 },
	{ "chain", REQ_CHAIN, 1, 2 },
	{ "snap", REQ_SNAP, 1, 1 },
	{ "backup", REQ_BACKUP, 1, 2 },
};

const char *req_kind_name(enum req_kind k)
{
	return k == KIND_FULL ? "full" : k == KIND_INCREMENTAL ? "incremental" : "auto";
}

/* Split on blanks; every byte must be printable ASCII or a blank. */
static int split(const char *line, char words[][REQ_WORD_MAX], int *n)
{
	const char *s = line, *start;
	size_t len;

	*n = 0;
	for (; *s; s++)
		if (!isprint((unsigned char)*s) && *s != '\t')
			return fail(AMBER_EUSAGE, "the request holds a control or non-ASCII byte"
				    " (0x%02x)", (unsigned char)*s);
	for (s = line; *s;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		start = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		len = s - start;
		if (*n == REQ_MAX_WORDS)
			return fail(AMBER_EUSAGE, "too many words (requests: " COMMANDS ")");
		if (len >= REQ_WORD_MAX)
			return fail(AMBER_EUSAGE, "'%.20s...' is too long", start);
		memcpy(words[*n], start, len);
		words[(*n)++][len] = 0;
	}
	if (!*n)
		return fail(AMBER_EUSAGE, "empty request (requests: " COMMANDS ")");
	return 0;
}

int request_parse(const char *line, struct request *r)
{
	char w[REQ_MAX_WORDS][REQ_WORD_MAX];
	unsigned int i;
	int n;

	memset(r, 0, sizeof(*r));
	if (strlen(line) >= REQ_LINE_MAX)
		return fail(AMBER_EUSAGE, "the request is longer than %d bytes", REQ_LINE_MAX - 1);
	if (split(line, w, &n))
		return -1;
	for (i = 0; i < ARRAY_SIZE(commands) && strcmp(commands[i].name, w[0]); i++)
		;
	if (i == ARRAY_SIZE(commands))
		return fail(AMBER_EUSAGE, "unknown request '%s' (requests: " COMMANDS ")", w[0]);
	r->cmd = commands[i].cmd;
	if (n - 1 < commands[i].min || n - 1 > commands[i].max)
		return fail(AMBER_EUSAGE, "'%s' takes %s", w[0],
			    r->cmd == REQ_STATUS ? "at most the word json" :
			    r->cmd == REQ_LIST ? "at most a GROUP" :
			    r->cmd == REQ_CHAIN ? "GROUP [SET]" :
			    r->cmd == REQ_SNAP ? "one GROUP" : "GROUP [full|incremental]");
	if (r->cmd == REQ_STATUS && n > 1) {
		if (strcmp(w[1], "json"))
			return fail(AMBER_EUSAGE, "status: '%s' is not json", w[1]);
		r->json = true;
		return 0;
	}
	if (n > 1) {
		if (!conf_name_ok(w[1]))
			return fail(AMBER_EUSAGE, "'%s' is not a group name", w[1]);
		strcpy(r->group, w[1]);
	}
	if (n > 2 && r->cmd == REQ_CHAIN &&
	    parse_u64(w[2], 1, UINT64_MAX, &r->set))
		return fail(AMBER_EUSAGE, "chain: '%s' is not a set number", w[2]);
	if (n > 2 && r->cmd == REQ_BACKUP) {
		if (!strcmp(w[2], "full"))
			r->kind = KIND_FULL;
		else if (!strcmp(w[2], "incremental"))
			r->kind = KIND_INCREMENTAL;
		else
			return fail(AMBER_EUSAGE, "backup: '%s' is not full or incremental", w[2]);
	}
	return 0;
}
