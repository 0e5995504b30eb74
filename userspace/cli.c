// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>

#include "module/uapi/amber.h"
#include "cli.h"
#include "error.h"
#include "probe.h"
#include "util.h"

#define STR(x)	#x
#define XSTR(x)	STR(x)

const char *tool_version(void)
{
	return "amber " XSTR(AMBER_VERSION_MAJOR) "." XSTR(AMBER_VERSION_MINOR) "."
	       XSTR(AMBER_VERSION_PATCH);
}

static int find_option(const struct cli *c, const char *name, size_t len)
{
	int i;

	for (i = 0; c->options[i].name; i++)
		if (strlen(c->options[i].name) == len && !strncmp(c->options[i].name, name, len))
			return i;
	return -1;
}

static int parse_option(struct cli *c, char *arg, int argc, char **argv, int *i)
{
	char *name = arg + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	int o = find_option(c, name, len);

	if (o < 0)
		return fail(AMBER_EUSAGE, "unknown option --%.*s", (int)len, name);
	if (c->value[o])
		return fail(AMBER_EUSAGE, "--%s given twice", c->options[o].name);
	if (!c->options[o].takes_value) {
		if (eq)
			return fail(AMBER_EUSAGE, "--%s takes no value", c->options[o].name);
		c->value[o] = "";
		return 0;
	}
	if (eq) {
		c->value[o] = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc)
		return fail(AMBER_EUSAGE, "--%s needs a value", c->options[o].name);
	c->value[o] = argv[++*i];
	return 0;
}

int cli_parse(struct cli *c, int argc, char **argv)
{
	bool options_done = false;
	int i;

	for (i = 1; i < argc; i++) {
		char *arg = argv[i];

		if (!options_done && (!strcmp(arg, "--help") || !strcmp(arg, "-h"))) {
			fputs(c->usage, stdout);
			return 1;
		}
		if (!options_done && !strcmp(arg, "--")) {
			options_done = true;
		} else if (!options_done && !strncmp(arg, "--", 2)) {
			if (parse_option(c, arg, argc, argv, &i))
				return -1;
		} else if (!options_done && arg[0] == '-' && arg[1]) {
			return fail(AMBER_EUSAGE, "unknown option %s", arg);
		} else if (c->nr_args == CLI_MAX_ARGS) {
			return fail(AMBER_EUSAGE, "too many arguments");
		} else {
			c->args[c->nr_args++] = arg;
		}
	}
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

void print_info(FILE *out, const struct bkp_info *info)
{
	char uuid[37], when[32], size[32], chunk[32], link[65];

	fprintf(out, "  kind      %s%s\n", info->kind == BKP_FULL ? "full" : "incremental",
		info->flags & BKP_SYNTHETIC ? " (consolidated)" : "");
	fprintf(out, "  volume    %s, %s in chunks of %s\n",
		format_uuid(info->volume_uuid, uuid),
		format_size(info->geo.volume_bytes, size, sizeof(size)),
		format_size(info->geo.chunk_bytes, chunk, sizeof(chunk)));
	fprintf(out, "  epoch     %" PRIu64 "\n", info->epoch);
	fprintf(out, "  created   %s by %s\n", format_time(info->created, when, sizeof(when)),
		info->tool);
	if (info->kind == BKP_INCREMENTAL)
		fprintf(out, "  parent    epoch %" PRIu64 ", link %s\n", info->parent_epoch,
			format_hex(info->parent_link, 32, link));
}

void print_summary(FILE *out, const struct bkp_info *info, const struct bkp_summary *s)
{
	char content[32], stored[32], hex[65];

	fprintf(out, "  chunks    %" PRIu64 " of %" PRIu64 " (%" PRIu64 " zero)\n",
		s->records, info->geo.nr_chunks, s->zero_records);
	fprintf(out, "  size      %s of content in %s (ratio %.2f)\n",
		format_size(s->logical_bytes, content, sizeof(content)),
		format_size(s->file_bytes, stored, sizeof(stored)),
		s->file_bytes ? (double)s->logical_bytes / s->file_bytes : 0.0);
	fprintf(out, "  digest    %s\n", format_hex(s->digest, 32, hex));
	if (memcmp(s->link, s->digest, 32))
		fprintf(out, "  link      %s\n", format_hex(s->link, 32, hex));
}

void print_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}
