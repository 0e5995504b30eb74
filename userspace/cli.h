/* SPDX-License-Identifier: GPL-2.0 */
/* What the subcommands share: option parsing, refusals, printing. */
#ifndef AMBER_CLI_H
#define AMBER_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bkp.h"

#define CLI_MAX_OPTIONS	16
#define CLI_MAX_ARGS	64

struct cli_option {
	const char *name;		/* long name, without "--" */
	bool takes_value;
};

struct cli {
	const char *command;		/* "backup" */
	const char *usage;		/* printed by --help */
	const struct cli_option *options;	/* ends with { NULL } */
	const char *value[CLI_MAX_OPTIONS];	/* NULL: not given; "" for flags */
	char *args[CLI_MAX_ARGS];
	int nr_args;
};

/*
 * Parse argv[1..] into options and positional arguments ("--" ends the
 * options; "--name=value" and "--name value" both work). Returns 0, 1 when
 * --help was printed, -1 on a usage error naming the option.
 */
int cli_parse(struct cli *c, int argc, char **argv);
bool cli_flag(const struct cli *c, int option);
/* The option's value; a usage error if it was not given. */
int cli_required(const struct cli *c, int option, const char **value);
/* Option values in a range, or @fallback when not given. */
int cli_number(const struct cli *c, int option, uint64_t min, uint64_t max,
	       uint64_t fallback, uint64_t *out);
int cli_size(const struct cli *c, int option, uint64_t fallback, uint64_t *out);
/* Exactly @min..@max positional arguments. */
int cli_args(const struct cli *c, int min, int max, const char *what);

/* Refuse a device holding a known signature unless @force. */
int refuse_signature(int fd, const char *path, bool force);

/* The tool name and version written into backups: "amber 1.0.0". */
const char *tool_version(void);

/* Two-space indented "key  value" lines about a backup. */
void print_info(FILE *out, const struct bkp_info *info);
void print_summary(FILE *out, const struct bkp_info *info, const struct bkp_summary *s);
/* A JSON string literal of @s. */
void print_json_string(FILE *out, const char *s);

#endif
