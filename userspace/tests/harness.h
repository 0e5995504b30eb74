/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small test harness: TEST(name) { ... } registers a test; each runs in
 * its own process, in a fresh temporary directory, with its output kept
 * and shown only when it fails. Results are KTAP, ending with the plain
 * "N passed, N failed" line.
 */
#ifndef AMBER_TEST_HARNESS_H
#define AMBER_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

void test_register(const char *name, const char *file, int line, void (*fn)(void));
void test_failed(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

#define TEST(name)								\
	static void test_##name(void);						\
	__attribute__((constructor)) static void register_##name(void)		\
	{ test_register(#name, __FILE__, __LINE__, test_##name); }		\
	static void test_##name(void)

#define CHECK(cond)								\
	do { if (!(cond)) test_failed(__FILE__, __LINE__, "%s", #cond); } while (0)

#define CHECK_EQ(a, b)								\
	do {									\
		uint64_t a_ = (a), b_ = (b);					\
		if (a_ != b_)							\
			test_failed(__FILE__, __LINE__, "%s == %s: %" PRIu64	\
				    " != %" PRIu64, #a, #b, a_, b_);		\
	} while (0)

/* A library call that must succeed: 0 (or a non-NULL pointer). */
#define CHECK_OK(call)								\
	do { if ((call) != 0)							\
		test_failed(__FILE__, __LINE__, "%s failed: %s", #call,		\
			    error_msg()); } while (0)

#define CHECK_PTR(expr)								\
	do { if (!(expr))							\
		test_failed(__FILE__, __LINE__, "%s is NULL: %s", #expr,	\
			    error_msg()); } while (0)

/* A call that must fail with error class @status and a message holding @text. */
#define CHECK_FAILS(call, status, text)						\
	do {									\
		int r_ = (call);						\
		if (r_ >= 0)							\
			test_failed(__FILE__, __LINE__, "%s succeeded", #call);	\
		if (error_status() != (status) || !strstr(error_msg(), (text)))	\
			test_failed(__FILE__, __LINE__, "%s: error %d '%s', "	\
				    "expected %d '%s'", #call, error_status(),	\
				    error_msg(), (status), (text));		\
	} while (0)

#endif
