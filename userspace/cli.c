// SPDX-License-Identifier: GPL-2.0
#include <getopt.h>
#include <inttypes.h>

#include "module/uapi/amber.h"
#include "chain.h"
#include "cli.h"
#include "error.h"
#include "keyfile.h"
#include "keys.h"
#include "probe.h"
#include "util.h"

#define STR(x)	#x
#define XSTR(x)	STR(x)

const char *tool_version(void)
{
	return "amber " XSTR(AMBER_VERSION_MAJOR) "." XSTR(AMBER_VERSION_MINOR) "."
	       XSTR(AMBER_VERSION_PATCH);
}

/*
 * getopt_long() tables from @c's options: long options return their index
 * plus OPT_BASE (short ones their letter, mapped back by find_short()).
 */
#define OPT_BASE	256
#define OPT_HELP	(OPT_BASE + CLI_MAX_OPTIONS)

static int find_short(const struct cli *c, int ch)
{
	int i;

	for (i = 0; c->options[i].name; i++)
		if (c->options[i].short_name == ch)
			return i;
	return -1;
}

/* The index into c->options of what getopt_long() returned, or -1. */
static int option_index(const struct cli *c, int val)
{
	if (val >= OPT_BASE && val < OPT_HELP)
		return val - OPT_BASE;
	return val > 0 && val < OPT_BASE ? find_short(c, val) : -1;
}

struct getopt_tables {
	struct option longs[CLI_MAX_OPTIONS + 2];
	char shorts[2 * CLI_MAX_OPTIONS + 4];
};

static void build_tables(const struct cli *c, struct getopt_tables *t)
{
	char *s = t->shorts;
	int i;

	*s++ = '-';			/* arguments come back in order, as 1 */
	*s++ = ':';			/* a missing value returns ':' */
	*s++ = 'h';
	for (i = 0; c->options[i].name; i++) {
		t->longs[i] = (struct option) {
			.name = c->options[i].name,
			.has_arg = c->options[i].takes_value ? required_argument : no_argument,
			.val = OPT_BASE + i,
		};
		if (c->options[i].short_name) {
			*s++ = c->options[i].short_name;
			if (c->options[i].takes_value)
				*s++ = ':';
		}
	}
	t->longs[i++] = (struct option) { .name = "help", .val = OPT_HELP };
	t->longs[i] = (struct option) { 0 };
	*s = 0;
}

/* How many long names start with @arg's name ("--fo" of "--force=x"). */
static int prefix_matches(const struct cli *c, const char *arg)
{
	size_t len = strcspn(arg + 2, "=");
	int i, n = 0;

	for (i = 0; c->options[i].name; i++)
		n += !strncmp(c->options[i].name, arg + 2, len);
	return n;
}

/* What getopt_long() refused: @ch is '?' or ':', @arg the word it was at. */
static int refused(const struct cli *c, int ch, const char *arg)
{
	int o = option_index(c, optopt);

	if (ch == ':')
		return fail(AMBER_EUSAGE, "--%s needs a value", c->options[o].name);
	if (optopt == OPT_HELP)
		return fail(AMBER_EUSAGE, "--help takes no value");
	if (o >= 0)		/* only "--flag=value" gets here for a known option */
		return fail(AMBER_EUSAGE, "--%s takes no value", c->options[o].name);
	if (optopt)
		return fail(AMBER_EUSAGE, "unknown option -%c", optopt);
	if (!strncmp(arg, "--", 2) && prefix_matches(c, arg) > 1)
		return fail(AMBER_EUSAGE, "ambiguous option %s: more than one option starts so",
			    arg);
	return fail(AMBER_EUSAGE, "unknown option %s", arg);
}

static int take_option(struct cli *c, int o)
{
	if (c->value[o])
		return fail(AMBER_EUSAGE, "--%s given twice", c->options[o].name);
	c->value[o] = c->options[o].takes_value ? optarg : "";
	return 0;
}

/*
 * getopt_long() in RETURN_IN_ORDER mode ('-' first): it permutes nothing,
 * whatever POSIXLY_CORRECT says (amberd runs commands as "create NAME
 * --origin ..."), and hands each argument back as option 1. The arguments
 * are gathered at the front of argv[1..], over words already read.
 */
int cli_parse(struct cli *c, int argc, char **argv)
{
	struct getopt_tables t;
	int ch;

	build_tables(c, &t);
	c->args = argv + 1;
	c->nr_args = 0;
	opterr = 0;
	optind = 0;		/* a fresh scan, also for a second command in-process */
	while ((ch = getopt_long(argc, argv, t.shorts, t.longs, NULL)) != -1) {
		if (ch == 1) {
			c->args[c->nr_args++] = optarg;
			continue;
		}
		if (ch == 'h' || ch == OPT_HELP) {
			fputs(c->usage, stdout);
			return 1;
		}
		if (ch == '?' || ch == ':')
			return refused(c, ch, argv[optind - 1]);
		if (take_option(c, option_index(c, ch)))
			return -1;
	}
	while (optind < argc)	/* after "--" */
		c->args[c->nr_args++] = argv[optind++];
	return 0;
}

bool cli_flag(const struct cli *c, int option)
{
	return c->value[option];
}

int cli_required(const struct cli *c, int option, const char **value)
{
	*value = c->value[option];
	if (!*value)
		return fail(AMBER_EUSAGE, "--%s is required", c->options[option].name);
	return 0;
}

int cli_number(const struct cli *c, int option, uint64_t min, uint64_t max,
	       uint64_t fallback, uint64_t *out)
{
	*out = fallback;
	if (c->value[option] && parse_u64(c->value[option], min, max, out))
		return error_prefix("--%s: ", c->options[option].name);
	return 0;
}

int cli_size(const struct cli *c, int option, uint64_t fallback, uint64_t *out)
{
	*out = fallback;
	if (c->value[option] && parse_size(c->value[option], out))
		return error_prefix("--%s: ", c->options[option].name);
	return 0;
}

int cli_args(const struct cli *c, int min, int max, const char *what)
{
	if (c->nr_args < min)
		return fail(AMBER_EUSAGE, "missing %s", what);
	if (c->nr_args > max)
		return fail(AMBER_EUSAGE, "unexpected argument '%s'", c->args[max]);
	return 0;
}

int refuse_signature(int fd, const char *path, bool force)
{
	const char *found;

	if (probe_signature(fd, &found))
		return error_prefix("%s: ", path);
	if (found && !force)
		return fail(AMBER_ESYS, "%s holds %s: refusing to overwrite it (--force to do"
			    " it anyway)", path, found);
	return 0;
}

int cli_key(const struct cli *c, int key_opt, int pass_opt, struct data_key **key)
{
	*key = NULL;
	if (c->value[pass_opt] && !c->value[key_opt])
		return fail(AMBER_EUSAGE, "--passphrase-file goes with --%s",
			    c->options[key_opt].name);
	if (!c->value[key_opt])
		return 0;
	*key = data_key_load(c->value[key_opt], c->value[pass_opt]);
	return *key ? 0 : -1;
}

static const char *option_value(const struct cli *c, int option)
{
	return option < 0 ? NULL : c->value[option];
}

int cli_open_chain(const struct cli *c, const struct cli_chain_options *o, struct chain *chain)
{
	const char *pubkey = option_value(c, o->pubkey), *digest = option_value(c, o->digest);
	struct asym_key *pub = NULL;
	struct data_key *key;

	if (cli_key(c, o->key, o->passphrase_file, &key))
		return -1;
	if ((pubkey && !(pub = asym_load_public(pubkey, true))) ||
	    chain_open(chain, c->args, c->nr_args)) {
		data_key_free(key);
		asym_free(pub);
		return -1;
	}
	if ((digest && chain_expect(chain, digest)) || chain_set_pubkey(chain, pub) ||
	    chain_set_key(chain, key) || chain_check(chain)) {
		chain->key = key;
		chain->pubkey = pub;
		cli_close_chain(chain);
		return -1;
	}
	return 0;
}

void cli_close_chain(struct chain *chain)
{
	data_key_free((struct data_key *)chain->key);
	asym_free((struct asym_key *)chain->pubkey);
	chain_close(chain);
}
