// SPDX-License-Identifier: GPL-2.0
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "chain.h"
#include "digest.h"
#include "error.h"
#include "keys.h"
#include "util.h"

static int open_member(struct chain_member *m, const char *path)
{
	m->path = path;
	m->fd = -1;
	if (!strcmp(path, "-"))
		m->fd = STDIN_FILENO;
	else if ((m->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return fail_errno(AMBER_ESYS, "%s", path);
	}
	m->reader = bkp_reader_open(m->fd);
	if (!m->reader)
		return error_prefix("%s: ", path);
	m->info = bkp_reader_info(m->reader);
	if (fd_is_regular(m->fd)) {
		struct bkp_info info;

		if (bkp_peek(m->fd, &info, &m->summary))
			return error_prefix("%s: ", path);
		m->peeked = true;
	}
	return 0;
}

int chain_open(struct chain *c, char *const *paths, size_t n)
{
	size_t i, stdin_uses = 0;

	for (i = 0; i < n; i++)
		stdin_uses += !strcmp(paths[i], "-");
	if (stdin_uses > 1)
		return fail(AMBER_EUSAGE, "'-' (standard input) given twice");
	*c = (struct chain){ .m = calloc(n, sizeof(*c->m)), .n = n };
	if (!c->m)
		return fail(AMBER_ESYS, "out of memory");
	for (i = 0; i < n; i++)
		if (open_member(&c->m[i], paths[i])) {
			c->n = i + 1;
			chain_close(c);
			return -1;
		}
	return 0;
}

static const char *short_link(const uint8_t link[32], char *buf)
{
	return format_hex(link, 6, buf);
}

/* Does member @i (an incremental) name member @i - 1's verified link? */
static int check_link(const struct chain *c, size_t i)
{
	const struct chain_member *child = &c->m[i], *parent = &c->m[i - 1];
	char named[13], has[13];

	if (!memcmp(child->info->parent_link, parent->summary.link, 32))
		return 0;
	return fail(AMBER_EDATA, "chain broken: %s continues the backup with link %s, but %s"
		    " (also epoch %" PRIu64 ") has link %s: not its parent", child->path,
		    short_link(child->info->parent_link, named), parent->path,
		    parent->info->epoch, short_link(parent->summary.link, has));
}

static int check_pair(const struct chain *c, size_t i)
{
	const struct chain_member *child = &c->m[i], *parent = &c->m[i - 1];
	const struct geometry *a = &parent->info->geo, *b = &child->info->geo;
	char u1[37], u2[37];

	if (child->info->kind != BKP_INCREMENTAL)
		return fail(AMBER_EDATA, "%s is a full backup: only the first of a chain is",
			    child->path);
	if (memcmp(child->info->volume_uuid, parent->info->volume_uuid, 16))
		return fail(AMBER_EDATA, "%s is of volume %s, %s of volume %s", child->path,
			    format_uuid(child->info->volume_uuid, u1), parent->path,
			    format_uuid(parent->info->volume_uuid, u2));
	if (a->volume_bytes != b->volume_bytes || a->chunk_bytes != b->chunk_bytes)
		return fail(AMBER_EDATA, "%s and %s differ in volume or chunk size",
			    parent->path, child->path);
	if (child->info->parent_epoch != parent->info->epoch)
		return fail(AMBER_EDATA, "chain broken: %s continues epoch %" PRIu64
			    ", but the backup before it, %s, is epoch %" PRIu64
			    " (list the backups oldest first, with no gap)", child->path,
			    child->info->parent_epoch, parent->path, parent->info->epoch);
	return parent->peeked ? check_link(c, i) : 0;
}

int chain_expect(struct chain *c, const char *list)
{
	size_t i;

	c->expect = calloc(c->n, sizeof(*c->expect));
	if (!c->expect)
		return fail(AMBER_ESYS, "out of memory");
	if (parse_digests(list, c->n, c->expect))
		return -1;
	for (i = 0; i < c->n; i++)
		c->m[i].expect = c->expect[i];
	return 0;
}

/* A member's digest against the expected one, once it is known. */
static int check_member_digest(const struct chain_member *m)
{
	if (m->expect && check_expected_digest(m->summary.digest, m->expect))
		return error_prefix("%s: ", m->path);
	return 0;
}

/*
 * A seekable member's index (v2: its block table) against its trailer, its
 * trailer MAC with the chain's key and its signature with its public key.
 */
static int check_member_index(const struct chain *c, const struct chain_member *m)
{
	struct bkp_index *x = bkp_index_load(m->fd, m->info, &m->summary);
	int ret = -1;

	if (x && (!c->key || !bkp_index_set_key(x, c->key)) &&
	    (!c->pubkey || !trailer_check_signature(c->pubkey, &m->summary)))
		ret = 0;
	bkp_index_free(x);
	return ret ? error_prefix("%s: ", m->path) : 0;
}

int chain_set_key(struct chain *c, const struct data_key *key)
{
	size_t i;

	c->key = key;
	for (i = 0; i < c->n; i++)
		if (check_backup_key(c->m[i].info, key, false) ||
		    bkp_reader_set_key(c->m[i].reader, key))
			return error_prefix("%s: ", c->m[i].path);
	return 0;
}

int chain_set_pubkey(struct chain *c, const struct asym_key *pub)
{
	size_t i;

	c->pubkey = pub;
	for (i = 0; i < c->n; i++)
		if (bkp_reader_set_pubkey(c->m[i].reader, pub))
			return error_prefix("%s: ", c->m[i].path);
	return 0;
}

int chain_same_key(const char *path, const struct bkp_info *parent, const uint8_t *fingerprint)
{
	char fp[17], other[17];

	if (!bkp_encrypted(parent) && !fingerprint)
		return 0;
	if (!bkp_encrypted(parent))
		return fail(AMBER_EDATA, "%s is not encrypted: a chain has one key (an encrypted"
			    " chain starts with a full backup)", path);
	short_fingerprint(parent->key_fingerprint, fp);
	if (!fingerprint)
		return fail(AMBER_EDATA, "%s is encrypted with key %s: its incrementals are"
			    " too (--encrypt KEYFILE)", path, fp);
	if (memcmp(fingerprint, parent->key_fingerprint, 32))
		return fail(AMBER_EDATA, "%s: encrypted with key %s, but the key file holds %s",
			    path, fp, short_fingerprint(fingerprint, other));
	return 0;
}

/* All members have the first one's key, or none (FORMAT-v2.md, "Chains"). */
static int check_one_key(const struct chain *c, size_t i)
{
	const struct bkp_info *a = c->m[0].info, *b = c->m[i].info;
	char fa[17], fb[17];

	if (bkp_encrypted(a) == bkp_encrypted(b) &&
	    !memcmp(a->key_fingerprint, b->key_fingerprint, 32))
		return 0;
	return fail(AMBER_EDATA, "%s is %s%s, %s is %s%s: a chain has one key", c->m[0].path,
		    bkp_encrypted(a) ? "encrypted with key " : "not encrypted",
		    bkp_encrypted(a) ? short_fingerprint(a->key_fingerprint, fa) : "",
		    c->m[i].path, bkp_encrypted(b) ? "encrypted with key " : "not encrypted",
		    bkp_encrypted(b) ? short_fingerprint(b->key_fingerprint, fb) : "");
}

int chain_check(const struct chain *c)
{
	size_t i;

	if (c->m[0].info->kind != BKP_FULL)
		return fail(AMBER_EDATA, "%s is an incremental backup: a chain starts with a"
			    " full one", c->m[0].path);
	for (i = 1; i < c->n; i++)
		if (check_one_key(c, i) || check_pair(c, i))
			return -1;
	for (i = 0; i < c->n; i++)
		if (c->m[i].peeked &&
		    (check_member_index(c, &c->m[i]) || check_member_digest(&c->m[i])))
			return -1;
	return 0;
}

int chain_check_extendable(const struct chain *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (bkp_check_extendable(c->m[i].path, c->m[i].info))
			return -1;
	return 0;
}

static int apply_member(struct chain *c, size_t i, chain_apply_fn apply, void *ctx)
{
	struct chain_member *m = &c->m[i];
	struct bkp_record rec;
	int ret;

	while ((ret = bkp_reader_next(m->reader, &rec)) > 0) {
		if (bit_test(c->taken, rec.chunk))
			continue;
		if (apply(ctx, m, &rec))
			return -1;
		bit_set(c->taken, rec.chunk);
	}
	if (ret < 0)
		return error_prefix("%s: ", m->path);
	m->summary = *bkp_reader_summary(m->reader);
	return check_member_digest(m);
}

int chain_apply(struct chain *c, chain_apply_fn apply, void *ctx)
{
	size_t i;

	c->taken = bitmap_alloc(c->m[0].info->geo.nr_chunks);
	if (!c->taken)
		return -1;
	for (i = c->n; i-- > 0;)
		if (apply_member(c, i, apply, ctx) || (i + 1 < c->n && check_link(c, i + 1)))
			return -1;
	return 0;
}

const struct chain_member *chain_tip(const struct chain *c)
{
	return &c->m[c->n - 1];
}

void chain_close(struct chain *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		bkp_reader_free(c->m[i].reader);
		if (c->m[i].fd > STDIN_FILENO)
			close(c->m[i].fd);
	}
	free(c->m);
	free(c->taken);
	free(c->expect);
	*c = (struct chain){ 0 };
}

int chain_parent_before(const char *path, uint64_t parent_epoch, uint64_t epoch)
{
	if (parent_epoch >= epoch)
		return fail(AMBER_EDATA, "%s is of epoch %" PRIu64 ", not before this snapshot's %"
			    PRIu64, path, parent_epoch, epoch);
	return 0;
}

int chain_read_parent(const char *path, const struct parent_want *want, struct bkp_info *info,
		      struct bkp_summary *summary)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	ret = bkp_peek(fd, info, summary);
	close(fd);
	if (ret)
		return error_prefix("%s: ", path);
	if (bkp_check_extendable(path, info))
		return -1;
	if (want->uuid && memcmp(info->volume_uuid, want->uuid, 16))
		return fail(AMBER_EDATA, "%s is not a backup of %s (another volume uuid: its"
			    " store was formatted since)", path, want->volume);
	if (info->geo.volume_bytes != want->volume_bytes)
		return fail(AMBER_EDATA, "%s is not a backup of %s (volume size differs: %"
			    PRIu64 " bytes, not %" PRIu64 ")", path, want->volume,
			    info->geo.volume_bytes, want->volume_bytes);
	if (want->chunk_bytes && info->geo.chunk_bytes != want->chunk_bytes)
		return fail(AMBER_EDATA, "%s is not a backup of %s (chunk size differs: %" PRIu32
			    " bytes, not %" PRIu64 ")", path, want->volume, info->geo.chunk_bytes,
			    want->chunk_bytes);
	return want->epoch ? chain_parent_before(path, info->epoch, want->epoch) : 0;
}

int chain_reader_open(const struct chain *c, struct chain_reader *r)
{
	size_t i;

	r->n = 0;
	r->geo = &c->m[0].info->geo;
	r->x = calloc(c->n, sizeof(*r->x));
	if (!r->x)
		return fail(AMBER_ESYS, "out of memory");
	r->chain = c;
	for (i = 0; i < c->n; i++) {
		const struct chain_member *m = &c->m[i];

		if (!m->peeked)
			fail(AMBER_EUSAGE, "%s: random access needs a seekable file", m->path);
		else if (!(r->x[i] = bkp_index_load(m->fd, m->info, &m->summary)))
			error_prefix("%s: ", m->path);
		else if (r->n++, bkp_index_set_key(r->x[i], c->key))
			error_prefix("%s: ", m->path);
		else
			continue;
		chain_reader_close(r);
		return -1;
	}
	return 0;
}

int chain_reader_read(struct chain_reader *r, uint64_t chunk, void *buf)
{
	size_t i;
	int ret;

	if (chunk >= r->geo->nr_chunks)
		return fail(AMBER_EUSAGE, "chunk %" PRIu64 " is past the image's %" PRIu64,
			    chunk, r->geo->nr_chunks);
	for (i = r->n; i-- > 0;) {
		ret = bkp_index_read(r->x[i], chunk, buf);
		if (ret)
			return ret > 0 ? 0 : error_prefix("%s: ", r->chain->m[i].path);
	}
	return fail(AMBER_EDATA, "chunk %" PRIu64 ": in no backup of the chain (a full holds"
		    " every chunk)", chunk);
}

void chain_reader_close(struct chain_reader *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		bkp_index_free(r->x[i]);
	free(r->x);
	r->x = NULL;
	r->n = 0;
}
