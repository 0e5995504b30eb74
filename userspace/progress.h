/* SPDX-License-Identifier: GPL-2.0 */
/* Progress on standard error: one redrawn line on a terminal, else a
 * line every few seconds. */
#ifndef AMBER_PROGRESS_H
#define AMBER_PROGRESS_H

#include <stdbool.h>

#include "stream.h"

struct progress {
	bool enabled;
	bool terminal;			/* redraw one line, else print lines */
	const char *volume;		/* store use is shown for it, or NULL */
	double start, last_shown, last_store;
	char store[16];
};

void progress_init(struct progress *p, bool enabled, const char *volume);
/* A stream_config progress callback; @ctx is a struct progress. */
void progress_show(void *ctx, const struct stream_progress *s);
/* Move off the progress line. */
void progress_done(struct progress *p);

#endif
