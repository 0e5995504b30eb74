// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <stdlib.h>

#include "error.h"
#include "report.h"
#include "util.h"

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
	if (bkp_encrypted(info))
		fprintf(out, "  encrypted key %s\n", format_hex(info->key_fingerprint, 32, link));
}

void print_summary(FILE *out, const struct bkp_info *info, const struct bkp_summary *s,
		   bool verified)
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
	if (info->compat & FEATURE_COMPAT_SIGNED)
		fprintf(out, "  signer    %s (%s)\n", format_hex(s->signer, 32, hex),
			verified ? "verified with the public key given" :
				   "not verified: give --pubkey");
}

/*
 * The length of the well-formed UTF-8 sequence at @s (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), 0 if there is none.
 */
static size_t utf8_sequence(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (*s < 0x80)
		return 1;
	if (*s >= 0xc2 && *s <= 0xdf)
		len = 2;
	else if (*s >= 0xe0 && *s <= 0xef)
		len = 3;
	else if (*s >= 0xf0 && *s <= 0xf4)
		len = 4;
	else
		return 0;
	if (*s == 0xe0)
		lo = 0xa0;
	else if (*s == 0xed)
		hi = 0x9f;
	else if (*s == 0xf0)
		lo = 0x90;
	else if (*s == 0xf4)
		hi = 0x8f;
	for (i = 1; i < len; i++, lo = 0x80, hi = 0xbf)
		if (s[i] < lo || s[i] > hi)
			return 0;
	return len;
}

json_t *json_text(const char *s)
{
	static const char replacement[] = "\xef\xbf\xbd";
	json_t *v = json_string(s);
	char *copy, *p;
	size_t n;

	if (v)
		return v;
	/* Not UTF-8 (a path is any bytes): each byte that is not part of a
	 * well-formed sequence becomes U+FFFD. */
	copy = malloc(strlen(s) * 3 + 1);
	if (!copy)
		return NULL;
	for (p = copy; *s; s += n) {
		n = utf8_sequence((const unsigned char *)s);
		if (n) {
			memcpy(p, s, n);
			p += n;
		} else {
			memcpy(p, replacement, 3);
			p += 3;
			n = 1;
		}
	}
	*p = 0;
	v = json_string(copy);
	free(copy);
	return v;
}

bool json_append(json_t *a, json_t *v)
{
	return v && !json_array_append_new(a, v);
}

static json_t *hex_json(const uint8_t *bytes, size_t len)
{
	char hex[65];

	return json_string(format_hex(bytes, len, hex));
}

static json_t *parent_json(const struct bkp_info *info)
{
	if (info->kind != BKP_INCREMENTAL)
		return json_null();
	return json_pack("{s:I, s:o}", "epoch", (json_int_t)info->parent_epoch,
			 "link", hex_json(info->parent_link, 32));
}

/* @len bytes in hex, or null when @set is false. */
static json_t *hex_or_null(bool set, const uint8_t *bytes, size_t len)
{
	return set ? hex_json(bytes, len) : json_null();
}

static int add_summary(json_t *o, const struct bkp_summary *s, bool verified)
{
	bool signed_ = !all_zero(s->signer, 32);
	json_t *part = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:b}",
				 "chunks_stored", (json_int_t)s->records,
				 "zero_chunks", (json_int_t)s->zero_records,
				 "content_bytes", (json_int_t)s->logical_bytes,
				 "file_bytes", (json_int_t)s->file_bytes,
				 "digest", hex_json(s->digest, 32),
				 "link", hex_json(s->link, 32),
				 "signer", hex_or_null(signed_, s->signer, 32),
				 "signer_verified", signed_ && verified);

	if (!part)
		return -1;
	json_object_update(o, part);
	json_decref(part);
	return 0;
}

json_t *backup_json(const char *file, const struct bkp_info *info,
		    const struct bkp_summary *s, bool verified)
{
	char uuid[37], when[32];
	json_t *o;

	o = json_pack("{s:o, s:I, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:o, s:o}",
		      "file", json_text(file),
		      "format", (json_int_t)info->version,
		      "kind", info->kind == BKP_FULL ? "full" : "incremental",
		      "consolidated", !!(info->flags & BKP_SYNTHETIC),
		      "volume_uuid", format_uuid(info->volume_uuid, uuid),
		      "volume_bytes", (json_int_t)info->geo.volume_bytes,
		      "chunk_bytes", (json_int_t)info->geo.chunk_bytes,
		      "chunks", (json_int_t)info->geo.nr_chunks,
		      "epoch", (json_int_t)info->epoch,
		      "created", format_time(info->created, when, sizeof(when)),
		      "tool", info->tool,
		      "parent", parent_json(info),
		      "key_fingerprint", hex_or_null(bkp_encrypted(info), info->key_fingerprint, 32));
	if (o && s && add_summary(o, s, verified)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *failure_json(const char *file)
{
	return json_pack("{s:o, s:o, s:i}", "file", json_text(file),
			 "error", json_text(error_msg()), "exit_status", error_status());
}

json_t *volume_json(const char *name, const struct amber_status *st)
{
	return json_pack("{s:o, s:s, s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:o}",
			 "name", json_text(name), "state", vol_state_name(st->state),
			 "epoch", (json_int_t)st->epoch, "chunk_sectors", (int)st->chunk_sectors,
			 "store_used", (json_int_t)st->used, "store_total", (json_int_t)st->total,
			 "copied", (json_int_t)st->copied, "released", (json_int_t)st->released,
			 "waited", (json_int_t)st->waited, "overflow", overflow_name(st->overflow),
			 "cbt", cbt_name(st->cbt), "reason", st->reason == REASON_NONE ?
			 json_null() : json_string(reason_name(st->reason)));
}

int print_json(json_t *doc)
{
	int ret;

	if (!doc)
		return fail(AMBER_ESYS, "out of memory building the JSON output");
	ret = json_dumpf(doc, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(doc);
	if (ret || putchar('\n') == EOF || fflush(stdout))
		return fail_errno(AMBER_ESYS, "writing the JSON output");
	return 0;
}
