/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The amber target's status and table lines (docs/DESIGN.md), parsed
 * strictly: a line that does not match the contract is an error naming
 * the field, never a guess.
 */
#ifndef AMBER_DMLINE_H
#define AMBER_DMLINE_H

#include <stdbool.h>
#include <stdint.h>

enum vol_state { VOL_IDLE, VOL_FROZEN, VOL_ACTIVE, VOL_INVALID };
enum overflow_mode { OVERFLOW_BLOCK, OVERFLOW_INVALIDATE };
enum cbt_state { CBT_EXACT, CBT_SUPERSET, CBT_INVALID };
enum invalid_reason { REASON_NONE, REASON_STORE_FULL, REASON_BLOCK_TIMEOUT,
		      REASON_STORE_IO_ERROR, REASON_ORIGIN_IO_ERROR,
		      REASON_NO_MEMORY };

/* <state> <epoch> <chunk_sectors> <used>/<total> <copied> <released>
 * <waited> <overflow> <cbt> <reason> */
struct amber_status {
	enum vol_state state;
	uint64_t epoch;
	uint32_t chunk_sectors;
	uint64_t used, total;
	uint64_t copied, released, waited;
	enum overflow_mode overflow;
	enum cbt_state cbt;
	enum invalid_reason reason;
};

int status_parse(const char *line, struct amber_status *st);

const char *vol_state_name(enum vol_state s);
const char *overflow_name(enum overflow_mode m);
const char *cbt_name(enum cbt_state c);
const char *reason_name(enum invalid_reason r);

#define BLOCK_TIMEOUT_DEFAULT_MS	30000
#define BLOCK_TIMEOUT_MAX_MS		3600000
#define DRAIN_TIMEOUT_DEFAULT_MS	5000
#define DRAIN_TIMEOUT_MAX_MS		600000
#define INTENT_SECTORS_DEFAULT		8192	/* 4 MiB: more than any chunk */
#define INTENT_SECTORS_MAX		2097152

/* The write-intent region: a power of two from the chunk size to the max. */
bool intent_sectors_ok(uint64_t v, uint64_t chunk_sectors);

/* <origin_dev> <store_dev> <chunk_sectors> [<#features> <feature>...] */
struct amber_table {
	uint32_t origin_major, origin_minor;
	uint32_t store_major, store_minor;
	uint32_t chunk_sectors;
	enum overflow_mode overflow;
	uint32_t block_timeout_ms;
	uint32_t drain_timeout_ms;
	uint32_t intent_sectors;
};

/* Devices as major:minor, the form the kernel echoes. */
int table_parse(const char *params, struct amber_table *t);

#endif
