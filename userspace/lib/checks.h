/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Checksum and digest comparisons. A fuzzing build (libFuzzer, with
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) computes them but never lets
 * them fail, so the fuzzer reaches the parsing behind them; every other
 * check stays. Never defined in a build that reads real backups.
 */
#ifndef AMBER_CHECKS_H
#define AMBER_CHECKS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
static inline bool sum_differs(uint64_t a, uint64_t b) { (void)a, (void)b; return false; }
static inline bool digest_differs(const void *a, const void *b)
{
	(void)a, (void)b;
	return false;
}
#else
static inline bool sum_differs(uint64_t a, uint64_t b) { return a != b; }
static inline bool digest_differs(const void *a, const void *b) { return memcmp(a, b, 32); }
#endif

#endif
