/* SPDX-License-Identifier: GPL-2.0 */
/* amberd's requests (request.h for their grammar, amberd(8)). */
#ifndef AMBERD_SERVE_H
#define AMBERD_SERVE_H

#include <stdbool.h>

struct client;

/* Answer one request line of @c; a backup request leaves @c waiting for
 * its job (c->wait), whose answers queue.c sends. */
void serve_request(struct client *c, const char *line);

/* The status answer, as lines of words or (@json) JSON records (status.c). */
void serve_status(struct client *c, bool json);

#endif
