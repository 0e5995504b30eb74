/* SPDX-License-Identifier: GPL-2.0 */
/*
 * amberd's socket protocol (amberd(8)). amberd starts each connection with
 * its greeting, "amberd protocol N" (AMBERD_PROTOCOL), or with "error TEXT"
 * when it refuses the client. Then a client sends one request line, words
 * separated by blanks, ended by a newline:
 *
 *	status [json]
 *	list [GROUP]
 *	chain GROUP [SET]
 *	snap GROUP
 *	backup GROUP [full|incremental]
 *
 * amberd answers with zero or more lines of data, then one final line,
 * "ok [TEXT]" or "error TEXT". The client may then send another request.
 */
#ifndef AMBERD_REQUEST_H
#define AMBERD_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#define AMBERD_PROTOCOL	1	/* this protocol's version */
#define REQ_LINE_MAX	512	/* bytes of a request, with its newline */
#define REQ_MAX_WORDS	4
#define REQ_WORD_MAX	64

enum req_cmd { REQ_STATUS, REQ_LIST, REQ_CHAIN, REQ_SNAP, REQ_BACKUP };
enum req_kind { KIND_AUTO, KIND_FULL, KIND_INCREMENTAL };

struct request {
	enum req_cmd cmd;
	char group[REQ_WORD_MAX];	/* "" when not given */
	uint64_t set;			/* chain: 0 = the newest */
	enum req_kind kind;
	bool json;			/* status json */
};

/*
 * Parse one request line (without its newline). On error the recorded
 * message (AMBER_EUSAGE) is what amberd answers after "error ".
 */
int request_parse(const char *line, struct request *r);
const char *req_kind_name(enum req_kind k);

#endif
