// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "util.h"

static __thread struct error_state last = { AMBER_OK, "" };

static void record(int status, const char *fmt, va_list ap)
{
	last.status = status;
	vsnprintf(last.msg, sizeof(last.msg), fmt, ap);
}

int fail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(status, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_errno(int status, const char *fmt, ...)
{
	int saved = errno;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	record(status, fmt, ap);
	va_end(ap);
	len = strlen(last.msg);
	snprintf(last.msg + len, sizeof(last.msg) - len, ": %s", strerror(saved));
	return -1;
}

int error_prefix(const char *fmt, ...)
{
	char prefix[256];
	size_t plen, mlen;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	plen = strlen(prefix);
	mlen = MIN(strlen(last.msg), sizeof(last.msg) - 1 - plen);
	memmove(last.msg + plen, last.msg, mlen);
	memcpy(last.msg, prefix, plen);
	last.msg[plen + mlen] = 0;
	return -1;
}

int error_append(const char *fmt, ...)
{
	size_t len = strlen(last.msg);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last.msg + len, sizeof(last.msg) - len, fmt, ap);
	va_end(ap);
	return -1;
}

const char *error_msg(void)
{
	return last.msg;
}

int error_status(void)
{
	return last.status;
}

void error_save(struct error_state *to)
{
	*to = last;
}

void error_restore(const struct error_state *from)
{
	last = *from;
}
