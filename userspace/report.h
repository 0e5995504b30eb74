/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What amber prints about backups and volumes: indented lines for people,
 * and JSON documents for scripts (--json; the schema is in amber(8), and a
 * key, once documented, keeps its meaning: new ones may be added).
 */
#ifndef AMBER_REPORT_H
#define AMBER_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "bkp.h"
#include "dmline.h"

/* Two-space indented "key  value" lines about a backup. */
void print_info(FILE *out, const struct bkp_info *info);
/* @verified: the signature was checked with the public key given (--pubkey). */
void print_summary(FILE *out, const struct bkp_info *info, const struct bkp_summary *s,
		   bool verified);

/*
 * A backup as a JSON object, "file" first: its header, and with @s its
 * trailer's summary, the signer @verified or not. NULL only when out of
 * memory (print_json() says so).
 */
json_t *backup_json(const char *file, const struct bkp_info *info,
		    const struct bkp_summary *s, bool verified);
/* { "file", "error", "exit_status" } for a file that failed, from the
 * recorded error. */
json_t *failure_json(const char *file);
json_t *volume_json(const char *name, const struct amber_status *st);

/* A JSON string of any C string: bytes that are not UTF-8 become U+FFFD. */
json_t *json_text(const char *s);

/* Append @v (a new reference) to the array @a; false when out of memory. */
bool json_append(json_t *a, json_t *v);

/* Print @doc on one line of standard output and drop the reference;
 * -1 (class AMBER_ESYS) if @doc is NULL or cannot be written. */
int print_json(json_t *doc);

#endif
