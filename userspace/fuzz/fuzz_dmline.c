// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: any bytes as an amber status line and table line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct amber_status st;
	struct amber_table t;
	char *line = malloc(size + 1);

	if (!line)
		abort();
	memcpy(line, data, size);
	line[size] = 0;
	if (!status_parse(line, &st) && (st.used > st.total || st.chunk_sectors < 8))
		abort();
	if (!table_parse(line, &t) && (t.chunk_sectors > 2048 || !t.block_timeout_ms ||
					t.intent_sectors < t.chunk_sectors))
		abort();
	free(line);
	return 0;
}
