// SPDX-License-Identifier: GPL-2.0
/*
 * Format 2 encryption, keys and signatures (docs/FORMAT-v2.md): round
 * trips, wrong keys, what verify --no-key names, signatures, key files, and
 * the known-answer vectors V1, V3 and the key file.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "codec.h"
#include "digest.h"
#include "harness.h"
#include "helpers.h"
#include "keyfile.h"
#include "keys.h"
#include "layout.h"
#include "report.h"
#include "subcommands.h"
#include "util.h"

#define CHUNKS	9

static struct asym_key *test_signer(uint8_t first)
{
	struct asym_key *k;
	uint8_t seed[32];

	counting(seed, sizeof(seed), first);
	CHECK_PTR(k = asym_from_raw_private(seed, true));
	return k;
}

static struct asym_key *public_of(const struct asym_key *k)
{
	struct asym_key *pub;
	uint8_t raw[32];

	CHECK_OK(asym_raw_public(k, raw));
	CHECK_PTR(pub = asym_from_raw_public(raw, true));
	return pub;
}

/* A full of @im (CHUNKS chunks, zero ones among them), encrypted with @keys. */
static void write_encrypted(const char *path, struct image *im, const struct bkp_keys *keys,
			    int level, struct bkp_summary *out)
{
	static const uint64_t order[CHUNKS] = { 7, 5, 0, 1, 2, 3, 4, 6, 8 };
	static const bool early[CHUNKS] = { true, true };
	struct bkp_info info;

	if (!im->data)
		image_make(im, CHUNKS * 4096, 4096, 11);
	info = test_info(im, BKP_FULL, 5);
	info.version = BKP_VERSION_2;
	write_chunks_keyed(path, &info, im, order, early, CHUNKS, level, keys, out);
}

/* ---- round trips ---- */

TEST(crypto_encrypted_backup_round_trips_with_the_key)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct bkp_summary a, b, plain, got;
	struct image im = { 0 }, back;
	struct bkp_info info;
	int level;

	for (level = 0; level <= 3; level += 3) {
		write_encrypted("e.amb", &im, &keys, level, &a);
		image_copy(&back, &im);
		memset(back.data, 0x5a, back.geo.volume_bytes);
		CHECK_OK(read_backup_keyed("e.amb", &back, &got, key, NULL));
		CHECK(!memcmp(back.data, im.data, im.geo.volume_bytes));
		CHECK(!memcmp(got.digest, a.digest, 32));
		image_free(&back);
	}
	/* keyed leaves: one digest for one image under one key, another unencrypted */
	write_encrypted("e2.amb", &im, &keys, 3, &b);
	CHECK(!memcmp(a.digest, b.digest, 32));
	info = test_info(&im, BKP_FULL, 5);
	write_all("p.amb", &info, &im, 3, &plain);
	CHECK(memcmp(a.digest, plain.digest, 32));
	/* keyless: checked, no content */
	CHECK_OK(read_backup("e.amb", NULL, NULL));
	image_free(&im);
	data_key_free(key);
}

TEST(crypto_wrong_key_is_refused_by_fingerprint)
{
	struct data_key *key = test_key(0), *other = test_key(1);
	struct bkp_keys keys = { .data = key };
	struct image im = { 0 };
	int fd;
	struct bkp_reader *r;

	write_encrypted("e.amb", &im, &keys, 3, NULL);
	fd = open("e.amb", O_RDONLY);
	CHECK_PTR(r = bkp_reader_open(fd));
	CHECK_FAILS(bkp_reader_set_key(r, other), AMBER_EDATA, ", but the key file holds ");
	bkp_reader_free(r);
	close(fd);
	image_free(&im);
	data_key_free(key);
	data_key_free(other);
}

/* Each record is bound to its seq, chunk, header and backup by its tag. */
TEST(crypto_a_record_opens_only_where_it_was_sealed)
{
	struct data_key *key = test_key(0);
	uint8_t id[16] = { 1 }, hash[32] = { 2 }, plain[100], sealed[100 + TAG_BYTES];
	uint8_t opened[sizeof(sealed)];
	struct bkp_crypto *c, *other_backup;
	struct gcm *seal, *open_;
	struct bkp_record rec = { .chunk = 3, .length = 4096, .stored_bytes = sizeof(sealed),
				  .codec = CODEC_ZSTD, .seq = 9 }, copy;

	counting(plain, sizeof(plain), 7);
	CHECK_PTR(c = bkp_crypto_new(key, id, hash));
	id[0] = 2;
	CHECK_PTR(other_backup = bkp_crypto_new(key, id, hash));
	CHECK_PTR(seal = gcm_new(c->record, true));
	CHECK_PTR(open_ = gcm_new(c->record, false));
	CHECK_OK(record_seal(seal, c, &rec, plain, sealed));
#define REOPENS(change)							\
	({ memcpy(opened, sealed, sizeof(sealed));				\
	   copy = rec; copy.payload = opened; change;				\
	   record_open(open_, c, &copy); })
	CHECK_OK(REOPENS((void)0));
	CHECK_EQ(copy.stored_bytes, sizeof(plain));
	CHECK(!memcmp(copy.payload, plain, sizeof(plain)));
	CHECK_FAILS(REOPENS(copy.seq = 10), AMBER_EDATA, "authentication tag does not match");
	CHECK_FAILS(REOPENS(copy.chunk = 4), AMBER_EDATA, "authentication tag");
	CHECK_FAILS(REOPENS(copy.flags = REC_EARLY), AMBER_EDATA, "authentication tag");
	CHECK_FAILS(REOPENS(copy.leaf[0] ^= 1), AMBER_EDATA, "authentication tag");
	CHECK_FAILS(REOPENS(opened[50] ^= 1), AMBER_EDATA, "authentication tag");
	CHECK_FAILS(REOPENS(opened[sizeof(sealed) - 1] ^= 1), AMBER_EDATA, "authentication tag");
	memcpy(c->header_hash, "another header", 14);
	CHECK_FAILS(REOPENS((void)0), AMBER_EDATA, "authentication tag");
#undef REOPENS
	/* another backup's record key */
	gcm_free(open_);
	CHECK_PTR(open_ = gcm_new(other_backup->record, false));
	copy = rec;
	copy.payload = sealed;
	CHECK_FAILS(record_open(open_, other_backup, &copy), AMBER_EDATA, "authentication tag");
	gcm_free(seal);
	gcm_free(open_);
	bkp_crypto_free(c);
	bkp_crypto_free(other_backup);
	data_key_free(key);
}

/* Keyless, every byte of an encrypted, signed file is covered by a hash. */
TEST(crypto_every_flipped_bit_is_detected_without_the_key)
{
	struct data_key *key = test_key(0);
	struct asym_key *signer = test_signer(0x40);
	struct bkp_keys keys = { .data = key, .sign = signer };
	struct image im = { 0 };

	write_encrypted("e.amb", &im, &keys, 3, NULL);
	check_every_flip_detected("e.amb");
	image_free(&im);
	asym_free(signer);
	data_key_free(key);
}

/* A trailer rewritten by whoever has no key: its hashes hold, its MAC not. */
TEST(crypto_trailer_mac_needs_the_key)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct disk_trailer_v2 *t;
	struct image im = { 0 };
	uint8_t *file;
	size_t len;

	write_encrypted("e.amb", &im, &keys, 3, NULL);
	file = file_get("e.amb", &len);
	t = (void *)(file + len - sizeof(*t));
	t->mac[0] ^= 1;
	t->csum = htole64(XXH3_64bits(t, offsetof(struct disk_trailer_v2, csum)));
	file_put("e.amb", file, len);
	CHECK_OK(read_backup("e.amb", NULL, NULL));
	CHECK_FAILS(read_backup_keyed("e.amb", NULL, NULL, key, NULL), AMBER_EDATA,
		    "MAC does not match");
	free(file);
	image_free(&im);
	data_key_free(key);
}

/* ---- verify --no-key names the chunk (FORMAT-v2.md, "What a reader checks") ---- */

static int verify_no_key(const char *a, const char *b)
{
	return run_cmd(verify_main, "verify", "--no-key", a, b, NULL);
}

struct layout {
	uint64_t record[CHUNKS];	/* offset by chunk */
	uint32_t bytes[CHUNKS];		/* header and payload */
};

static void find_records(const uint8_t *file, struct layout *l)
{
	uint64_t at = sizeof(struct disk_header), c;

	while (!memcmp(file + at, "AREC", 4) || !memcmp(file + at, "AIDX", 4)) {
		if (!memcmp(file + at, "AIDX", 4)) {
			at += 16 + 88ULL * get_le32(file + at + 4);
			continue;
		}
		c = get_le64(file + at + 16);
		l->record[c] = at;
		l->bytes[c] = sizeof(struct disk_record_v2) + get_le32(file + at + 24);
		at += l->bytes[c];
	}
}

TEST(crypto_no_key_names_the_chunk_of_a_flipped_bit)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct image im = { 0 };
	struct layout l;
	uint8_t *file;
	size_t len;

	write_encrypted("e.amb", &im, &keys, 0, NULL);
	CHECK_OK(verify_no_key("e.amb", NULL));
	file = file_get("e.amb", &len);
	find_records(file, &l);
	file_flip("e.amb", l.record[4] + sizeof(struct disk_record_v2) + 100, 0x10);
	CHECK_FAILS(verify_no_key("e.amb", NULL), AMBER_EDATA,
		    "chunk 4, record 6 at offset");
	CHECK_FAILS(verify_no_key("e.amb", NULL), AMBER_EDATA,
		    "stored bytes do not match their hash");
	/* in a record header: the chunk comes from the index */
	file_put("e.amb", file, len);
	file_flip("e.amb", l.record[2] + 20, 0x01);
	CHECK_FAILS(verify_no_key("e.amb", NULL), AMBER_EDATA, "chunk 2, record 4 at offset");
	free(file);
	image_free(&im);
	data_key_free(key);
}

/* The keys of an encrypted, signed test backup, and the signer's public key. */
struct signed_keys {
	struct data_key *key;
	struct asym_key *signer, *pub;
	struct bkp_keys keys;
};

static struct signed_keys signed_keys_new(void)
{
	struct signed_keys sk = { .key = test_key(0), .signer = test_signer(0x40) };

	sk.pub = public_of(sk.signer);
	sk.keys = (struct bkp_keys){ .data = sk.key, .sign = sk.signer };
	return sk;
}

static void signed_keys_free(struct signed_keys *sk)
{
	asym_free(sk->pub);
	asym_free(sk->signer);
	data_key_free(sk->key);
}

/* A copy of backup @file with records @a and @b, of one length, swapped. */
static uint8_t *with_records_swapped(const uint8_t *file, size_t len,
				     unsigned int a, unsigned int b)
{
	struct layout l;
	uint8_t *copy;

	find_records(file, &l);
	CHECK_EQ(l.bytes[a], l.bytes[b]);
	copy = malloc(len);
	CHECK(copy);
	memcpy(copy, file, len);
	memcpy(copy + l.record[a], file + l.record[b], l.bytes[b]);
	memcpy(copy + l.record[b], file + l.record[a], l.bytes[a]);
	return copy;
}

TEST(crypto_no_key_names_two_records_swapped)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct image im = { 0 };
	uint8_t *file, *copy;
	size_t len;

	/* level 0: chunks 1 and 2 (text, random) are raw, of one length */
	write_encrypted("e.amb", &im, &keys, 0, NULL);
	file = file_get("e.amb", &len);
	copy = with_records_swapped(file, len, 1, 2);
	file_put("e.amb", copy, len);
	CHECK_FAILS(verify_no_key("e.amb", NULL), AMBER_EDATA,
		    "chunk 2, record 3 at offset");
	CHECK_FAILS(verify_no_key("e.amb", NULL), AMBER_EDATA,
		    "sequence number 4, expected 3: chunk 2 where the index puts chunk 1");
	free(copy);
	free(file);
	image_free(&im);
	data_key_free(key);
}

TEST(crypto_no_key_names_the_chunk_a_truncated_file_ends_in)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct image im = { 0 };
	struct layout l;
	uint8_t *file;
	size_t len;

	write_encrypted("e.amb", &im, &keys, 0, NULL);
	file = file_get("e.amb", &len);
	find_records(file, &l);
	file_truncate("e.amb", l.record[4] + 200);
	CHECK_FAILS(verify_no_key("e.amb", NULL), AMBER_EDATA, "chunk 4, record 6 at offset");
	CHECK_FAILS(verify_no_key("e.amb", NULL), AMBER_EDATA, "truncated at offset");
	free(file);
	image_free(&im);
	data_key_free(key);
}

/* A full and two incrementals, encrypted; chunk 1 changes in each. */
static void write_encrypted_chain(struct image *im, const struct bkp_keys *keys)
{
	struct bkp_summary full, incr1;
	struct bkp_info info;
	uint64_t one = 1;

	write_encrypted("full.amb", im, keys, 3, &full);
	info = test_info(im, BKP_FULL, 6);
	set_parent(&info, 5, &full);
	image_change(im, 1, 77);
	write_chunks_keyed("incr1.amb", &info, im, &one, NULL, 1, 3, keys, &incr1);
	info = test_info(im, BKP_FULL, 7);
	set_parent(&info, 6, &incr1);
	image_change(im, 1, 78);
	write_chunks_keyed("incr2.amb", &info, im, &one, NULL, 1, 3, keys, NULL);
}

TEST(crypto_no_key_names_a_deleted_or_reordered_incremental)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct image im = { 0 };

	write_encrypted_chain(&im, &keys);
	CHECK_OK(run_cmd(verify_main, "verify", "--no-key", "full.amb", "incr1.amb", "incr2.amb",
			 NULL));
	CHECK_FAILS(verify_no_key("full.amb", "incr2.amb"), AMBER_EDATA,
		    "chain broken: incr2.amb continues epoch 6 (link ");
	CHECK_FAILS(verify_no_key("full.amb", "incr2.amb"), AMBER_EDATA,
		    "but full.amb before it is epoch 5 (link ");
	CHECK_FAILS(verify_no_key("full.amb", "incr2.amb"), AMBER_EDATA,
		    "a backup is missing or out of order");
	CHECK_FAILS(run_cmd(verify_main, "verify", "--no-key", "full.amb", "incr2.amb",
			    "incr1.amb", NULL), AMBER_EDATA, "chain broken: incr2.amb");
	image_free(&im);
	data_key_free(key);
}

/* ---- with the key, the tag stands for payload_hash (FORMAT-v2.md) ---- */

/* A record of a file in memory, its header decoded, and its backup's keys. */
struct record_at {
	struct disk_record_v2 *header;
	uint8_t *payload;
	struct bkp_record rec;
	struct bkp_info info;
	struct bkp_crypto *crypto;
};

static void record_at(uint8_t *file, const struct layout *l, uint64_t chunk,
		      const struct data_key *key, struct record_at *r)
{
	uint8_t header_hash[32];
	uint64_t seq;

	CHECK_OK(header_decode((const void *)file, &r->info));
	CHECK_OK(sha256(file, sizeof(struct disk_header), header_hash));
	CHECK_PTR(r->crypto = bkp_crypto_new(key, r->info.backup_id, header_hash));
	r->header = (void *)(file + l->record[chunk]);
	r->payload = file + l->record[chunk] + sizeof(*r->header);
	CHECK_OK(record_v2_decode(r->header, &r->info.geo, TAG_BYTES, &r->rec, &seq));
	r->rec.payload = r->payload;
}

/* @plain sealed in place of the record's payload, as a data key holder can. */
static void reseal(struct record_at *r, const void *plain)
{
	struct gcm *g;

	CHECK_PTR(g = gcm_new(r->crypto->record, true));
	CHECK_OK(record_seal(g, r->crypto, &r->rec, plain, r->payload));
	gcm_free(g);
}

/* The record's plaintext, opened from a copy, into @plain. */
static void open_copy(const struct record_at *r, uint8_t *plain)
{
	struct bkp_record copy = r->rec;
	struct gcm *g;

	memcpy(plain, r->payload, r->rec.stored_bytes);
	copy.payload = plain;
	CHECK_PTR(g = gcm_new(r->crypto->record, false));
	CHECK_OK(record_open(g, r->crypto, &copy));
	gcm_free(g);
}

/* The header rewritten from r->rec, payload_hash of the payload as it stands. */
static void rehash_header(struct record_at *r)
{
	CHECK_OK(sha256(r->payload, r->rec.stored_bytes, r->rec.payload_hash));
	record_v2_encode(&r->rec, r->rec.seq, r->header);
}

/*
 * @path refused by every reader: keyless, with the signer only, with the
 * key, with the key and the signer; each naming @why[i].
 */
static void refused_by_every_reader(const char *path, const struct data_key *key,
				    const struct asym_key *pub, const char *const why[4])
{
	CHECK_FAILS(read_backup_keyed(path, NULL, NULL, NULL, NULL), AMBER_EDATA, why[0]);
	CHECK_FAILS(read_backup_keyed(path, NULL, NULL, NULL, pub), AMBER_EDATA, why[1]);
	CHECK_FAILS(read_backup_keyed(path, NULL, NULL, key, NULL), AMBER_EDATA, why[2]);
	CHECK_FAILS(read_backup_keyed(path, NULL, NULL, key, pub), AMBER_EDATA, why[3]);
}

static void accepted_by_every_reader(const char *path, const struct data_key *key,
				     const struct asym_key *pub)
{
	CHECK_OK(read_backup_keyed(path, NULL, NULL, NULL, NULL));
	CHECK_OK(read_backup_keyed(path, NULL, NULL, NULL, pub));
	CHECK_OK(read_backup_keyed(path, NULL, NULL, key, NULL));
	CHECK_OK(read_backup_keyed(path, NULL, NULL, key, pub));
}

/* A decoder of @r's backup, with the key; @trust: 0 no, 1 unsigned, 2 signed. */
static int decode_copy(const struct record_at *r, int trust)
{
	static uint8_t payload[4096 + TAG_BYTES];
	struct bkp_record copy = r->rec;
	struct chunk_decoder *d;
	int ret;

	CHECK_PTR(d = chunk_decoder_new(&r->info, r->crypto));
	if (trust)
		chunk_decoder_trust_tag(d, trust == 2);
	memcpy(payload, r->payload, r->rec.stored_bytes);
	copy.payload = payload;
	ret = chunk_decode(d, &copy);
	chunk_decoder_free(d);
	return ret;
}

/*
 * The payload_hash a decoder checks: with the key, none unless a signature
 * is checked, then a zstd record's only. A raw record's stored bytes follow
 * from its header and leaf; a zstd record's do not.
 */
TEST(crypto_with_the_key_the_tag_stands_for_payload_hash)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct image im = { 0 };
	struct record_at zstd, raw;
	struct layout l;
	uint8_t *file;
	size_t len;

	write_encrypted("e.amb", &im, &keys, 3, NULL);
	file = file_get("e.amb", &len);
	find_records(file, &l);
	record_at(file, &l, 1, key, &zstd);
	record_at(file, &l, 2, key, &raw);
	CHECK_EQ(zstd.rec.codec, CODEC_ZSTD);
	CHECK_EQ(raw.rec.codec, CODEC_RAW);
	zstd.rec.payload_hash[0] ^= 1;
	raw.rec.payload_hash[0] ^= 1;
	CHECK_FAILS(decode_copy(&zstd, 0), AMBER_EDATA, "stored bytes do not match their hash");
	CHECK_FAILS(decode_copy(&raw, 0), AMBER_EDATA, "stored bytes do not match their hash");
	CHECK_OK(decode_copy(&zstd, 1));
	CHECK_OK(decode_copy(&raw, 1));
	CHECK_FAILS(decode_copy(&zstd, 2), AMBER_EDATA, "stored bytes do not match their hash");
	CHECK_OK(decode_copy(&raw, 2));
	/* in the file: the index, which commits to the header, refuses it */
	rehash_header(&zstd);
	zstd.header->payload_hash[0] ^= 1;
	zstd.header->csum = htole64(XXH3_64bits(zstd.header,
						offsetof(struct disk_record_v2, csum)));
	file_put("x.amb", file, len);
	refused_by_every_reader("x.amb", key, NULL, (const char *const[]){
		"stored bytes do not match their hash", "stored bytes do not match their hash",
		"entry 1 (chunk 1) does not match its record",
		"entry 1 (chunk 1) does not match its record" });
	bkp_crypto_free(zstd.crypto);
	bkp_crypto_free(raw.crypto);
	free(file);
	image_free(&im);
	data_key_free(key);
}

/*
 * Records altered by a holder of the data key who is not the signer: every
 * reader that refused them still does.
 */
TEST(crypto_a_record_resealed_with_the_data_key_is_refused)
{
	static uint8_t other[4096], plain[4096 + TAG_BYTES];
	struct signed_keys sk = signed_keys_new();
	struct image im = { 0 };
	struct record_at r;
	struct layout l;
	uint8_t *file;
	size_t len;

	/* level 0, a raw record, its header kept: the leaf refuses it */
	write_encrypted("e.amb", &im, &sk.keys, 0, NULL);
	accepted_by_every_reader("e.amb", sk.key, sk.pub);
	file = file_get("e.amb", &len);
	find_records(file, &l);
	record_at(file, &l, 2, sk.key, &r);
	counting(other, sizeof(other), 3);
	reseal(&r, other);
	file_put("x.amb", file, len);
	refused_by_every_reader("x.amb", sk.key, sk.pub, (const char *const[]){
		"stored bytes do not match their hash", "stored bytes do not match their hash",
		"content does not match its keyed leaf", "content does not match its keyed leaf" });
	/* its leaf and header made anew: the index refuses it */
	CHECK_OK(hmac_once(sk.key->identity, other, sizeof(other), r.rec.leaf));
	reseal(&r, other);
	rehash_header(&r);
	file_put("x.amb", file, len);
	refused_by_every_reader("x.amb", sk.key, sk.pub, (const char *const[]){
		"entry 2 (chunk 2) does not match its record",
		"entry 2 (chunk 2) does not match its record",
		"entry 2 (chunk 2) does not match its record",
		"entry 2 (chunk 2) does not match its record" });
	bkp_crypto_free(r.crypto);
	free(file);
	/* level 3, a zstd record, its header kept, its plaintext altered */
	write_encrypted("e.amb", &im, &sk.keys, 3, NULL);
	file = file_get("e.amb", &len);
	find_records(file, &l);
	record_at(file, &l, 1, sk.key, &r);
	CHECK_EQ(r.rec.codec, CODEC_ZSTD);
	open_copy(&r, plain);
	plain[r.rec.stored_bytes - TAG_BYTES - 1] ^= 1;
	reseal(&r, plain);
	file_put("x.amb", file, len);
	refused_by_every_reader("x.amb", sk.key, sk.pub, (const char *const[]){
		"stored bytes do not match their hash", "stored bytes do not match their hash",
		"chunk 1, record 3 at offset", "stored bytes do not match their hash" });
	bkp_crypto_free(r.crypto);
	free(file);
	image_free(&im);
	signed_keys_free(&sk);
}

TEST(crypto_two_records_swapped_are_refused_by_every_reader)
{
	struct signed_keys sk = signed_keys_new();
	struct image im = { 0 };
	uint8_t *file, *copy;
	size_t len;

	write_encrypted("e.amb", &im, &sk.keys, 0, NULL);
	file = file_get("e.amb", &len);
	copy = with_records_swapped(file, len, 1, 2);
	file_put("x.amb", copy, len);
	refused_by_every_reader("x.amb", sk.key, sk.pub, (const char *const[]){
		"where the index puts chunk 1", "where the index puts chunk 1",
		"where the index puts chunk 1", "where the index puts chunk 1" });
	free(copy);
	free(file);
	image_free(&im);
	signed_keys_free(&sk);
}

/* Put the signer and signature of backup @from into backup @to. */
static void copy_signature(const char *from, const char *to)
{
	struct disk_trailer_v2 *t, *u;
	size_t alen, blen;
	uint8_t *a = file_get(from, &alen), *b = file_get(to, &blen);

	t = (void *)(a + alen - sizeof(*t));
	u = (void *)(b + blen - sizeof(*u));
	memcpy(u->signer, t->signer, 32);
	memcpy(u->signature, t->signature, 64);
	u->csum = htole64(XXH3_64bits(u, offsetof(struct disk_trailer_v2, csum)));
	file_put(to, b, blen);
	free(a);
	free(b);
}

/* A whole file by a holder of the data key, the signer's signature copied. */
TEST(crypto_a_file_rewritten_with_the_data_key_fails_the_signature)
{
	struct signed_keys sk = signed_keys_new();
	struct asym_key *forger = test_signer(0x60);
	struct bkp_keys forged = { .data = sk.key, .sign = forger };
	struct image im = { 0 };

	write_encrypted("real.amb", &im, &sk.keys, 0, NULL);
	image_change(&im, 2, 99);
	write_encrypted("forged.amb", &im, &forged, 0, NULL);
	copy_signature("real.amb", "forged.amb");
	CHECK_OK(read_backup_keyed("forged.amb", NULL, NULL, NULL, NULL));
	CHECK_OK(read_backup_keyed("forged.amb", NULL, NULL, sk.key, NULL));
	CHECK_FAILS(read_backup_keyed("forged.amb", NULL, NULL, NULL, sk.pub), AMBER_EDATA,
		    "the signature does not verify");
	CHECK_FAILS(read_backup_keyed("forged.amb", NULL, NULL, sk.key, sk.pub), AMBER_EDATA,
		    "the signature does not verify");
	image_free(&im);
	asym_free(forger);
	signed_keys_free(&sk);
}

/*
 * With the key, and with the key and the signer, in a ZERO, a zstd and a raw
 * record (chunks 0, 1, 2, back to back): header and payload. The rest of
 * the file is read as keyless (crypto_every_flipped_bit_is_detected_without_the_key)
 * but for the MAC (crypto_trailer_mac_needs_the_key).
 */
TEST(crypto_every_flipped_bit_is_detected_with_the_key)
{
	struct signed_keys sk = signed_keys_new();
	struct image im = { 0 };
	struct layout l;
	uint8_t *file;
	size_t len, from, to;

	write_encrypted("e.amb", &im, &sk.keys, 3, NULL);
	file = file_get("e.amb", &len);
	find_records(file, &l);
	from = l.record[0];
	to = l.record[2] + l.bytes[2];
	CHECK_EQ(l.record[1], from + l.bytes[0]);
	CHECK_EQ(l.record[2], l.record[1] + l.bytes[1]);
	check_flips_detected("e.amb", from, to, sk.key, NULL);
	check_flips_detected("e.amb", from, to, sk.key, sk.pub);
	free(file);
	image_free(&im);
	signed_keys_free(&sk);
}

/* ---- key files and the command line ---- */

static void make_key(const char *path, const char *pass)
{
	int fd = open("pass", O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	CHECK_OK(write_full(fd, pass, strlen(pass)));
	close(fd);
	CHECK_OK(run_cmd(key_main, "key", "new", path, "--passphrase-file", "pass",
			 "--scrypt-log2n", "14", NULL));
}

static struct data_key *load_key(const char *path)
{
	struct data_key *key;

	CHECK_PTR(key = data_key_load(path, "pass"));
	return key;
}

TEST(crypto_key_files_are_private_and_refuse_bad_input)
{
	struct disk_keyfile f;
	struct stat st;
	uint8_t *file;
	size_t len;

	make_key("k.key", "one passphrase\n");
	CHECK(!stat("k.key", &st) && (st.st_mode & 0777) == 0600 && st.st_size == 280);
	CHECK_FAILS(run_cmd(key_main, "key", "new", "k.key", "--passphrase-file", "pass",
			    NULL), AMBER_ESYS, "never overwritten");
	CHECK_OK(run_cmd(key_main, "key", "show", "k.key", NULL));
	data_key_free(load_key("k.key"));
	file_put("pass", "another", 7);
	CHECK_FAILS(data_key_load("k.key", "pass") ? 0 : -1, AMBER_EDATA, "wrong passphrase");
	file = file_get("k.key", &len);
	file_flip("k.key", 100, 4);
	CHECK_FAILS(keyfile_read("k.key", &f), AMBER_EDATA, "checksum mismatch");
	CHECK(!chmod("k.key", 0600));
	file_put("k.key", file, 279);
	CHECK(!chmod("k.key", 0600));
	CHECK_FAILS(keyfile_read("k.key", &f), AMBER_EDATA, "a key file has 280");
	file_put("k.key", file, len);
	CHECK(!chmod("k.key", 0640));
	CHECK_FAILS(keyfile_read("k.key", &f), AMBER_ESYS, "readable by group or others");
	CHECK(!chmod("k.key", 0600));
	/* scrypt parameters beyond the bounds are refused before scrypt runs */
	((struct disk_keyfile *)file)->log2_n = 21;
	((struct disk_keyfile *)file)->csum =
		htole64(XXH3_64bits(file, offsetof(struct disk_keyfile, csum)));
	file_put("k.key", file, len);
	CHECK_FAILS(keyfile_read("k.key", &f), AMBER_EDATA, "out of range");
	/* 1 GiB, 16 times over: minutes of work a crafted key file may not ask */
	((struct disk_keyfile *)file)->log2_n = 20;
	((struct disk_keyfile *)file)->r = htole32(8);
	((struct disk_keyfile *)file)->p = htole32(16);
	((struct disk_keyfile *)file)->csum =
		htole64(XXH3_64bits(file, offsetof(struct disk_keyfile, csum)));
	file_put("k.key", file, len);
	CHECK_FAILS(keyfile_read("k.key", &f), AMBER_EDATA, "above 1 GiB of work");
	CHECK(!chmod("pass", 0644));
	CHECK_FAILS(passphrase_get("pass", false) ? 0 : -1, AMBER_ESYS, "readable by group");
	/* a FIFO with no writer is refused, not waited on */
	CHECK(!mkfifo("fifo", 0600));
	CHECK_FAILS(passphrase_get("fifo", false) ? 0 : -1, AMBER_ESYS,
		    "fifo: not a regular file");
	CHECK_FAILS(asym_load_public("fifo", true) ? 0 : -1, AMBER_ESYS,
		    "fifo: not a regular file");
	CHECK_FAILS(asym_load_private("fifo", true) ? 0 : -1, AMBER_ESYS,
		    "fifo: not a regular file");
	free(file);
}

TEST(crypto_recovery_key_unwraps_a_forgotten_passphrase)
{
	struct data_key *a, *b;

	CHECK_OK(run_cmd(key_main, "key", "new-recovery", "rec.pem", "rec.pub", NULL));
	file_put("pass", "first", 5);
	CHECK(!chmod("pass", 0600));
	CHECK_OK(run_cmd(key_main, "key", "new", "k.key", "--passphrase-file", "pass",
			 "--scrypt-log2n", "14", "--recovery-pubkey", "rec.pub", NULL));
	a = load_key("k.key");
	file_put("pass", "second", 6);
	CHECK_OK(run_cmd(key_main, "key", "recover", "k.key", "--recovery-key", "rec.pem",
			 "--to", "new.key", "--passphrase-file", "pass", "--scrypt-log2n", "14",
			 NULL));
	b = load_key("new.key");
	CHECK(!memcmp(a->k, b->k, KEY_BYTES));
	CHECK(!memcmp(a->fingerprint, b->fingerprint, 32));
	CHECK_OK(run_cmd(key_main, "key", "new-recovery", "rec2.pem", "rec2.pub", NULL));
	CHECK_FAILS(run_cmd(key_main, "key", "recover", "k.key", "--recovery-key", "rec2.pem",
			    "--to", "new2.key", "--passphrase-file", "pass", NULL), AMBER_EDATA,
		    "not the one the key file was wrapped to");
	data_key_free(a);
	data_key_free(b);
}

static void write_image_file(struct image *im)
{
	image_make(im, 40 * 4096, 4096, 5);
	file_put("img", im->data, im->geo.volume_bytes);
}


TEST(crypto_command_line_round_trip_and_wrong_key_before_the_target)
{
	uint8_t *before, *after;
	struct image im;
	size_t len;

	make_key("k.key", "pass one");
	make_key("other.key", "pass one");
	write_image_file(&im);
	CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "full.amb", "--chunk",
			 "4K", "--encrypt", "k.key", "--passphrase-file", "pass", NULL));
	image_change(&im, 3, 9);
	file_put("img", im.data, im.geo.volume_bytes);
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "img", "--to", "incr.amb",
			    "--incremental-from", "full.amb", NULL), AMBER_EDATA,
		    "its incrementals are too");
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "img", "--to", "incr.amb",
			    "--incremental-from", "full.amb", "--encrypt", "other.key",
			    "--passphrase-file", "pass", NULL), AMBER_EDATA,
		    ", but the key file holds ");
	CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "incr.amb",
			 "--incremental-from", "full.amb", "--encrypt", "k.key",
			 "--passphrase-file", "pass", NULL));
	memset(im.data, 0x77, 4096);
	file_put("target", im.data, 4096);		/* must stay as it is */
	CHECK(!truncate("target", im.geo.volume_bytes));
	before = file_get("target", &len);
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "incr.amb", "--to", "target",
			    NULL), AMBER_EDATA, "give --key FILE");
	CHECK_FAILS(run_cmd(restore_main, "restore", "full.amb", "incr.amb", "--to", "target",
			    "--key", "other.key", "--passphrase-file", "pass", NULL), AMBER_EDATA,
		    "full.amb: encrypted with key ");
	after = file_get("target", &len);
	CHECK(!memcmp(before, after, len));
	image_free(&im);
	image_make(&im, 40 * 4096, 4096, 5);
	image_change(&im, 3, 9);
	CHECK_OK(run_cmd(restore_main, "restore", "full.amb", "incr.amb", "--to", "target",
			 "--key", "k.key", "--passphrase-file", "pass", "--force", NULL));
	check_target_is(&im);
	CHECK_OK(run_cmd(consolidate_main, "consolidate", "full.amb", "incr.amb", "--to",
			 "new.amb", "--key", "k.key", "--passphrase-file", "pass", NULL));
	CHECK_OK(run_cmd(verify_main, "verify", "new.amb", "--key", "k.key",
			 "--passphrase-file", "pass", NULL));
	CHECK_FAILS(run_cmd(verify_main, "verify", "new.amb", NULL), AMBER_EDATA,
		    "give --key FILE or --no-key");
	CHECK_OK(run_cmd(restore_main, "restore", "new.amb", "--to", "target", "--key", "k.key",
			 "--passphrase-file", "pass", "--force", NULL));
	check_target_is(&im);
	CHECK_OK(run_cmd(info_main, "info", "new.amb", "--key", "k.key", "--passphrase-file",
			 "pass", NULL));
	CHECK_OK(run_cmd(verify_main, "verify", "--chunk", "3", "new.amb", "--key", "k.key",
			 "--passphrase-file", "pass", NULL));
	CHECK_FAILS(run_cmd(verify_main, "verify", "--chunk", "3", "new.amb", NULL),
		    AMBER_EDATA, "give --key FILE");
	free(before);
	free(after);
	image_free(&im);
}

/* restore --key fails naming @path, and "target" stays as it is. */
static void restore_refused(const char *path, const char *want)
{
	uint8_t *before, *after;
	size_t a, b;

	before = file_get("target", &a);
	CHECK_FAILS(run_cmd(restore_main, "restore", path, "--to", "target", "--key", "k.key",
			    "--passphrase-file", "pass", "--force", NULL), AMBER_EDATA, want);
	after = file_get("target", &b);
	CHECK(a == b && !memcmp(before, after, a));
	free(before);
	free(after);
}

static void stdin_from(const char *path)
{
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0 && dup2(fd, STDIN_FILENO) == STDIN_FILENO);
	close(fd);
}

/* A plain backup put where an encrypted one was is refused when --key is given. */
TEST(crypto_key_given_refuses_a_plain_backup)
{
	struct image im;

	make_key("k.key", "pass one");
	write_image_file(&im);
	CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "plain.amb", "--chunk",
			 "4K", NULL));
	file_put("target", "x", 1);
	CHECK(!truncate("target", im.geo.volume_bytes));
	restore_refused("plain.amb", "plain.amb: the backup is not encrypted, but --key was given");
	CHECK_FAILS(run_cmd(verify_main, "verify", "plain.amb", "--key", "k.key",
			    "--passphrase-file", "pass", NULL), AMBER_EDATA,
		    "plain.amb: the backup is not encrypted, but --key was given");
	CHECK_FAILS(run_cmd(info_main, "info", "plain.amb", "--key", "k.key",
			    "--passphrase-file", "pass", NULL), AMBER_EDATA,
		    "not encrypted, but --key was given");
	stdin_from("plain.amb");
	CHECK_FAILS(run_cmd(info_main, "info", "-", "--key", "k.key", "--passphrase-file",
			    "pass", NULL), AMBER_EDATA,
		    "-: the backup is not encrypted, but --key was given");
	stdin_from("plain.amb");
	CHECK_FAILS(run_cmd(restore_main, "restore", "-", "--to", "target", "--key", "k.key",
			    "--passphrase-file", "pass", "--force", NULL), AMBER_EDATA,
		    "-: the backup is not encrypted, but --key was given");
	/* consolidate --key of a plain chain would write a plain file: refused */
	CHECK_FAILS(run_cmd(consolidate_main, "consolidate", "plain.amb", "--to", "new.amb",
			    "--key", "k.key", "--passphrase-file", "pass", NULL), AMBER_EDATA,
		    "plain.amb: the backup is not encrypted, but --key was given");
	CHECK(access("new.amb", F_OK) && errno == ENOENT);
	CHECK_OK(run_cmd(restore_main, "restore", "plain.amb", "--to", "target", "--force",
			 NULL));
	check_target_is(&im);
	image_free(&im);
}

/* Trailer bytes @at of @path flipped, its checksum made right again. */
static void trailer_flip(const char *path, size_t at)
{
	struct disk_trailer_v2 *t;
	uint8_t *file;
	size_t len;

	file = file_get(path, &len);
	t = (void *)(file + len - sizeof(*t));
	((uint8_t *)t)[at] ^= 1;
	t->csum = htole64(XXH3_64bits(t, offsetof(struct disk_trailer_v2, csum)));
	file_put(path, file, len);
	free(file);
}

/* An edited MAC is refused before the target or the output is opened. */
TEST(crypto_trailer_mac_is_checked_before_the_target)
{
	struct image im;

	make_key("k.key", "pass one");
	write_image_file(&im);
	CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "full.amb", "--chunk",
			 "4K", "--encrypt", "k.key", "--passphrase-file", "pass", NULL));
	file_put("target", "x", 1);
	CHECK(!truncate("target", im.geo.volume_bytes));
	trailer_flip("full.amb", offsetof(struct disk_trailer_v2, mac) + 5);
	restore_refused("full.amb", "full.amb: trailer: ");
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "img", "--to", "incr.amb",
			    "--incremental-from", "full.amb", "--encrypt", "k.key",
			    "--passphrase-file", "pass", NULL), AMBER_EDATA, "full.amb: trailer: ");
	CHECK_FAILS(run_cmd(consolidate_main, "consolidate", "full.amb", "--to", "new.amb",
			    "--key", "k.key", "--passphrase-file", "pass", NULL), AMBER_EDATA,
		    "full.amb: trailer: ");
	CHECK(access("new.amb", F_OK) && errno == ENOENT);
	image_free(&im);
}

/* ---- signatures ---- */

TEST(crypto_signature_proves_the_writer)
{
	struct image im;
	uint8_t *target;
	size_t len;

	CHECK_OK(run_cmd(key_main, "key", "new-signing", "s.pem", "s.pub", NULL));
	CHECK_OK(run_cmd(key_main, "key", "new-signing", "t.pem", "t.pub", NULL));
	write_image_file(&im);
	CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "signed.amb",
			 "--chunk", "4K", "--sign", "s.pem", NULL));
	CHECK_OK(run_cmd(backup_main, "backup", "--image", "img", "--to", "plain.amb",
			 "--chunk", "4K", NULL));
	CHECK_OK(run_cmd(verify_main, "verify", "signed.amb", "--pubkey", "s.pub", NULL));
	CHECK_OK(run_cmd(verify_main, "verify", "signed.amb", NULL));
	CHECK_OK(run_cmd(verify_main, "verify", "--chunk", "2", "signed.amb", "--pubkey",
			 "s.pub", NULL));
	CHECK_FAILS(run_cmd(verify_main, "verify", "signed.amb", "--pubkey", "t.pub", NULL),
		    AMBER_EDATA, "not by the public key given");
	CHECK_FAILS(run_cmd(verify_main, "verify", "plain.amb", "--pubkey", "s.pub", NULL),
		    AMBER_EDATA, "not signed, and --pubkey asks for a signature");
	CHECK_OK(run_cmd(consolidate_main, "consolidate", "plain.amb", "--to", "cons.amb",
			 "--sign", "s.pem", NULL));
	CHECK_OK(run_cmd(verify_main, "verify", "cons.amb", "--pubkey", "s.pub", NULL));
	/* restore and consolidate --pubkey: checked before the target or output */
	file_put("target", "x", 1);
	CHECK(!truncate("target", im.geo.volume_bytes));
	CHECK_FAILS(run_cmd(restore_main, "restore", "plain.amb", "--to", "target", "--force",
			    "--pubkey", "s.pub", NULL), AMBER_EDATA,
		    "plain.amb: not signed, and --pubkey asks for a signature");
	CHECK_FAILS(run_cmd(restore_main, "restore", "signed.amb", "--to", "target", "--force",
			    "--pubkey", "t.pub", NULL), AMBER_EDATA, "not by the public key given");
	target = file_get("target", &len);
	CHECK(len == im.geo.volume_bytes && target[0] == 'x');	/* untouched */
	free(target);
	CHECK_FAILS(run_cmd(consolidate_main, "consolidate", "signed.amb", "--to", "c2.amb",
			    "--pubkey", "t.pub", NULL), AMBER_EDATA, "not by the public key given");
	CHECK(access("c2.amb", F_OK) && errno == ENOENT);
	CHECK_OK(run_cmd(restore_main, "restore", "signed.amb", "--to", "target", "--force",
			 "--pubkey", "s.pub", NULL));
	check_target_is(&im);
	CHECK_OK(run_cmd(consolidate_main, "consolidate", "signed.amb", "--to", "c2.amb",
			 "--pubkey", "s.pub", NULL));
	CHECK(!chmod("s.pem", 0644));
	CHECK_FAILS(run_cmd(backup_main, "backup", "--image", "img", "--to", "x.amb",
			    "--sign", "s.pem", NULL), AMBER_ESYS, "readable by group or others");
	image_free(&im);
}

/*
 * A chunk replaced and every hash recomputed: a valid file of another
 * image, by another key, carrying the first file's signer and signature.
 */
TEST(crypto_a_chunk_replaced_and_rehashed_fails_the_signature)
{
	struct asym_key *signer = test_signer(0x40), *forger = test_signer(0x60);
	struct asym_key *pub = public_of(signer);
	struct bkp_keys keys = { .sign = signer }, forged = { .sign = forger };
	struct bkp_summary real;
	struct image im = { 0 };

	write_encrypted("real.amb", &im, &keys, 3, &real);
	CHECK_OK(read_backup_keyed("real.amb", NULL, NULL, NULL, pub));
	image_change(&im, 2, 99);
	write_encrypted("forged.amb", &im, &forged, 3, NULL);
	copy_signature("real.amb", "forged.amb");
	CHECK_OK(read_backup("forged.amb", NULL, NULL));
	CHECK_FAILS(read_backup_keyed("forged.amb", NULL, NULL, NULL, pub), AMBER_EDATA,
		    "the signature does not verify");
	image_free(&im);
	asym_free(pub);
	asym_free(signer);
	asym_free(forger);
}

/* ---- the known-answer vectors V1, V3 and the key file of FORMAT-v2.md ---- */

#define KAT_V1_SHA256	"856a5be3f3febb5f6bf2f5feedeac06abcf099509910b6f1e276457893b06a05"
#define KAT_V3_SHA256	"a9d1ba2907d531a776b0235c21de9128e7a36a1e68cc867729796e9fa544f726"
#define KAT_KEY_SHA256	"4d6438893e26ee6aa7e97f3cd9b0d75f9e75a0d8417eeed43b5707da7f80f519"

/* Write @n records of KAT content (chunk c: @fill[c], or i mod 251 when 0x100). */
static void write_kat(const char *path, const struct bkp_info *info, const uint8_t id[16],
		      const struct bkp_keys *keys, const uint64_t *chunks, const int *fill,
		      size_t n, struct bkp_summary *out)
{
	static uint8_t content[4096];
	struct chunk_encoder *enc;
	struct bkp_writer *w;
	struct bkp_record rec;
	size_t i, j;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0);
	CHECK_PTR(enc = chunk_encoder_new(&info->geo, 0, keys->data->identity));
	CHECK_PTR(w = bkp_writer_new_with_id(fd, info, keys, id));
	for (i = 0; i < n; i++) {
		for (j = 0; j < sizeof(content); j++)
			content[j] = fill[i] == 0x100 ? (int)(j % 251) : fill[i];
		CHECK_OK(chunk_encode(enc, chunks[i], content, NULL, &rec));
		CHECK_OK(bkp_writer_put(w, &rec));
	}
	CHECK_OK(bkp_writer_finish(w, NULL, out));
	bkp_writer_free(w);
	chunk_encoder_free(enc);
	close(fd);
}

static void write_kat_key(const char *path, const struct data_key *key)
{
	struct passphrase pass = { .len = 21, .text = "amber test passphrase" };
	struct scrypt_params params = { 14, 8, 1 };
	struct keyfile_seed seed = { .created = 1700000000 };
	struct asym_key *rec;
	struct disk_keyfile f;
	uint8_t raw[32], pub[32];

	counting(seed.salt, 32, 0x60);
	counting(seed.ephemeral, 32, 0xc0);
	counting(raw, 32, 0x80);
	CHECK_PTR(rec = asym_from_raw_private(raw, false));
	CHECK_OK(asym_raw_public(rec, pub));
	CHECK_OK(keyfile_encode(&f, key->k, &pass, &params, pub, &seed));
	file_put(path, &f, sizeof(f));
	asym_free(rec);
}

/* With AMBER_KAT_OUT=DIR, the file at @path goes to DIR (for FORMAT-v2.md). */
static void export_kat(const char *path)
{
	const char *dir = getenv("AMBER_KAT_OUT");
	char out[4096];
	uint8_t *file;
	size_t len;

	if (!dir)
		return;
	file = file_get(path, &len);
	snprintf(out, sizeof(out), "%s/%s", dir, path);
	file_put(out, file, len);
	free(file);
}

/* The file at @path has SHA-256 @want. */
static void check_kat(const char *path, const char *want)
{
	uint8_t *file, hash[32];
	char hex[65];
	size_t len;

	export_kat(path);
	file = file_get(path, &len);
	CHECK_OK(sha256(file, len, hash));
	format_hex(hash, 32, hex);
	if (strcmp(hex, want))
		test_failed(__FILE__, __LINE__, "%s (%zu bytes) has SHA-256 %s", path, len, hex);
	free(file);
}

TEST(crypto_known_answer_vectors_are_pinned)
{
	static const uint64_t v1_chunks[] = { 0, 1 }, v3_chunks[] = { 1 };
	static const int v1_fill[] = { 0x100, 0 }, v3_fill[] = { 0xff };
	struct data_key *key = test_key(0);
	struct asym_key *signer = test_signer(0x40), *pub = public_of(signer);
	struct bkp_keys signed_keys = { .data = key, .sign = signer }, keys = { .data = key };
	struct bkp_info info = kat_info();
	struct bkp_summary v1;
	uint8_t id[16], k[KEY_BYTES];
	struct image im;

	counting(id, 16, 0xa0);
	write_kat("v1.amb", &info, id, &signed_keys, v1_chunks, v1_fill, 2, &v1);
	counting(id, 16, 0xb0);
	info.epoch = 8;
	info.created = 1700000060;
	set_parent(&info, 7, &v1);
	write_kat("v3.amb", &info, id, &keys, v3_chunks, v3_fill, 1, NULL);
	write_kat_key("kat.key", key);
	CHECK(!chmod("kat.key", 0600));
	export_kat("v3.amb");
	export_kat("kat.key");
	check_kat("v1.amb", KAT_V1_SHA256);
	check_kat("v3.amb", KAT_V3_SHA256);
	check_kat("kat.key", KAT_KEY_SHA256);
	/* read back: with the key, the signature, and the chain */
	image_make(&im, 8192, 4096, 1);
	CHECK_OK(read_backup_keyed("v1.amb", &im, NULL, key, pub));
	CHECK_EQ(image_chunk(&im, 0)[250], 250);
	CHECK_EQ(image_chunk(&im, 0)[251], 0);
	CHECK(all_zero(image_chunk(&im, 1), 4096));
	CHECK_OK(read_backup_keyed("v3.amb", &im, NULL, key, NULL));
	CHECK_EQ(image_chunk(&im, 1)[0], 0xff);
	file_put("pass", "amber test passphrase", 21);
	CHECK(!chmod("pass", 0600));
	data_key_free(key);
	key = load_key("kat.key");
	counting(k, sizeof(k), 0);
	CHECK(!memcmp(key->k, k, KEY_BYTES));
	image_free(&im);
	asym_free(pub);
	asym_free(signer);
	data_key_free(key);
}

/*
 * A record that fails once numbered and sealed (here: its write) stops the
 * writer: a later record would take the same seq, the same nonce.
 */
TEST(crypto_a_writer_that_failed_writes_nothing_more)
{
	struct data_key *key = test_key(0);
	struct bkp_keys keys = { .data = key };
	struct bkp_info info = kat_info();
	static uint8_t content[1 << 20];
	struct chunk_encoder *enc;
	struct bkp_writer *w;
	struct bkp_record rec;

	CHECK_OK(geometry_init(&info.geo, 2 << 20, 1 << 20));
	random_fill(content, sizeof(content), 3);
	CHECK_PTR(enc = chunk_encoder_new(&info.geo, 0, key->identity));
	CHECK_PTR(w = bkp_writer_new(-1, &info, &keys));	/* every write fails */
	CHECK_OK(chunk_encode(enc, 0, content, NULL, &rec));
	CHECK_FAILS(bkp_writer_put(w, &rec), AMBER_ESYS, "writing the backup");
	CHECK_OK(chunk_encode(enc, 1, content, NULL, &rec));
	CHECK_FAILS(bkp_writer_put(w, &rec), AMBER_ESYS, "the backup writer failed earlier");
	CHECK_FAILS(bkp_writer_finish(w, NULL, NULL), AMBER_ESYS, "failed earlier");
	bkp_writer_free(w);
	chunk_encoder_free(enc);
	data_key_free(key);
}

/* --json names the data key and the signer, null for neither. */
TEST(crypto_json_names_the_key_and_the_signer)
{
	struct data_key *key = test_key(0);
	struct asym_key *signer = test_signer(0x40);
	struct bkp_keys keys = { .data = key, .sign = signer };
	struct bkp_summary s;
	struct image im = { 0 };
	struct bkp_info info;
	char fp[65], *text;
	json_t *o;
	FILE *out;
	size_t len;
	int fd;

	write_encrypted("e.amb", &im, &keys, 3, NULL);
	fd = open("e.amb", O_RDONLY);
	CHECK_OK(bkp_peek(fd, &info, &s));
	close(fd);
	CHECK_PTR(o = backup_json("e.amb", &info, &s, false));
	CHECK_EQ(json_integer_value(json_object_get(o, "format")), 2);
	CHECK(!strcmp(json_string_value(json_object_get(o, "key_fingerprint")),
		      format_hex(key->fingerprint, 32, fp)));
	CHECK(!strcmp(json_string_value(json_object_get(o, "signer")),
		      format_hex(s.signer, 32, fp)));
	CHECK(json_is_false(json_object_get(o, "signer_verified")));	/* no --pubkey */
	json_decref(o);
	CHECK_PTR(o = backup_json("e.amb", &info, &s, true));
	CHECK(json_is_true(json_object_get(o, "signer_verified")));
	json_decref(o);
	CHECK_PTR(out = open_memstream(&text, &len));
	print_summary(out, &info, &s, false);
	fclose(out);
	CHECK(strstr(text, "  signer    ") && strstr(text, " (not verified: give --pubkey)\n"));
	free(text);
	info = test_info(&im, BKP_FULL, 5);
	write_all("p.amb", &info, &im, 3, NULL);
	fd = open("p.amb", O_RDONLY);
	CHECK_OK(bkp_peek(fd, &info, &s));
	close(fd);
	CHECK_PTR(o = backup_json("p.amb", &info, &s, true));
	CHECK(json_is_null(json_object_get(o, "key_fingerprint")));
	CHECK(json_is_null(json_object_get(o, "signer")));
	CHECK(json_is_false(json_object_get(o, "signer_verified")));
	json_decref(o);
	image_free(&im);
	asym_free(signer);
	data_key_free(key);
}
