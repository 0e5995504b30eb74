/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Errors: every library call that can fail returns -1 and leaves a one-line
 * message and a class in a per-thread slot. The class is the exit status the
 * command line ends with.
 */
#ifndef AMBER_ERROR_H
#define AMBER_ERROR_H

enum amber_exit {
	AMBER_OK	= 0,	/* success */
	AMBER_ESYS	= 1,	/* I/O, kernel, resources, refused operation */
	AMBER_EUSAGE	= 2,	/* bad command line */
	AMBER_EDATA	= 3,	/* a backup is corrupt, truncated, foreign or unlinked */
};

struct error_state {
	int status;
	char msg[512];
};

/* Record an error of class @status; returns -1. */
int fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As fail(), with ": strerror(errno)" appended. */
int fail_errno(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepend context ("FILE: ") to the recorded message; returns -1. */
int error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Append to the recorded message; returns -1. */
int error_append(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *error_msg(void);
int error_status(void);

/* Move an error between threads. */
void error_save(struct error_state *to);
void error_restore(const struct error_state *from);

#endif
