/* SPDX-License-Identifier: GPL-2.0 */
/* What the subcommands share: option parsing, refusals, printing. */
#ifndef AMBER_CLI_H
#define AMBER_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>


#define CLI_MAX_OPTIONS	16

struct cli_option {
	const char *name;		/* long name, without "--" */
	bool takes_value;
	char short_name;		/* 't' for -t, 0: long only */
};

#define CLI_VALUE(name, short_name)	{ name, true, short_name }
#define CLI_FLAG(name, short_name)	{ name, false, short_name }

struct cli {
	const char *command;		/* "backup" */
	const char *usage;		/* printed by --help */
	const struct cli_option *options;	/* ends with { } */
	const char *value[CLI_MAX_OPTIONS];	/* NULL: not given; "" for flags */
	char **args;			/* the positional arguments, in order */
	int nr_args;
};

/*
 * Parse argv[1..] with getopt_long() into options and positional arguments:
 * "--name=value", "--name value", "-n value", "-nvalue", a unique prefix of a
 * long name, options after arguments (whatever POSIXLY_CORRECT says), "--"
 * ends the options; -h and --help print the usage. The arguments are
 * gathered, in order, at the front of argv[1..] (c->args points there). Returns 0, 1 when the usage was printed, -1 on a usage
 * error naming the option.
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

struct data_key;
/*
 * The data key of key file @key_opt, unwrapped with the passphrase of file
 * @pass_opt or from the terminal: *@key NULL when @key_opt is not given.
 */
int cli_key(const struct cli *c, int key_opt, int pass_opt, struct data_key **key);
/* The options that name a chain's trust, for cli_open_chain(); -1 when absent. */
struct cli_chain_options {
	int key, passphrase_file, pubkey, digest;
};
struct chain;
struct asym_key;
/*
 * Open the chain of the positional arguments with the key, public key and
 * digests the options give, and check it (chain_check()). On success close
 * it with cli_close_chain(); on failure nothing is left open.
 */
int cli_open_chain(const struct cli *c, const struct cli_chain_options *o, struct chain *chain);
void cli_close_chain(struct chain *chain);

/* Usage text of --key and --passphrase-file. */
#define CLI_KEY_USAGE \
"  -k, --key KEYFILE\n" \
"               the data key of encrypted backups ('amber key new'), refused\n" \
"               by fingerprint before anything is opened or written when it\n" \
"               is not theirs, or when they are not encrypted\n" \
"      --passphrase-file FILE\n" \
"               KEYFILE's passphrase, the first line of FILE (mode 0600),\n" \
"               instead of asking on the terminal\n"
/* Usage text of --pubkey. */
#define CLI_PUBKEY_USAGE \
"      --pubkey FILE\n" \
"               every backup must be signed by this Ed25519 public key (PEM):\n" \
"               seekable files are checked before anything is written, a\n" \
"               backup from standard input at its end\n"

/* Refuse a device holding a known signature unless @force. */
int refuse_signature(int fd, const char *path, bool force);

/* The tool name and version written into backups: "amber 1.0.0". */
const char *tool_version(void);

#endif
