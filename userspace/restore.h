/* SPDX-License-Identifier: GPL-2.0 */
/* amber restore --instant (instant.c), called by restore.c. */
#ifndef AMBER_RESTORE_H
#define AMBER_RESTORE_H

#include <stdbool.h>

#include "chain.h"

struct instant {
	bool enabled;
	bool resume;			/* continue the restore recorded in the metadata */
	bool force;			/* write even if the target holds a filesystem */
	const char *name;		/* of the device-mapper device */
	const char *target;
	const char *metadata;		/* NULL: the end of the target */
};

/* Put /dev/mapper/<name> over the target and restore @c into it behind it. */
int restore_instant(const struct chain *c, const struct instant *in);

#endif
