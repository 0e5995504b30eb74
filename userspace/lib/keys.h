/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The data key and what format 2 derives from it (FORMAT-v2.md,
 * "Encryption"): the fingerprint and identity key of the data key, the
 * record and trailer MAC keys of one backup; records sealed and opened
 * with them, the trailer's MAC and signature.
 */
#ifndef AMBER_KEYS_H
#define AMBER_KEYS_H

#include "bkp.h"
#include "crypto.h"

/* K and the keys that do not depend on a backup; in secret memory. */
struct data_key {
	uint8_t k[KEY_BYTES];
	uint8_t fingerprint[32];	/* HKDF(K, no salt, "amber v2 fingerprint") */
	uint8_t identity[KEY_BYTES];	/* HKDF(K, no salt, "amber v2 chunk id") */
};

struct data_key *data_key_new(const uint8_t k[KEY_BYTES]);
void data_key_free(struct data_key *key);
int key_fingerprint(const uint8_t k[KEY_BYTES], uint8_t out[32]);

/* One backup's keys, and its header_hash for the associated data. */
struct bkp_crypto {
	uint8_t record[KEY_BYTES];	/* HKDF(K, backup_id, "amber v2 record key") */
	uint8_t mac[KEY_BYTES];		/* HKDF(K, backup_id, "amber v2 trailer mac") */
	uint8_t identity[KEY_BYTES];
	uint8_t header_hash[32];
};

struct bkp_crypto *bkp_crypto_new(const struct data_key *key, const uint8_t backup_id[16],
				  const uint8_t header_hash[32]);
void bkp_crypto_free(struct bkp_crypto *c);

/*
 * Seal @plain (rec->stored_bytes - TAG_BYTES bytes) as record @seq into
 * @out (rec->stored_bytes bytes): @rec is the record as stored, but for
 * its payload_hash.
 */
int record_seal(struct gcm *g, const struct bkp_crypto *c, const struct bkp_record *rec,
		const void *plain, uint8_t *out);
/*
 * Open @rec's payload in place: afterwards rec->payload holds the
 * plaintext and rec->stored_bytes its length. AMBER_EDATA on a bad tag.
 */
int record_open(struct gcm *g, const struct bkp_crypto *c, struct bkp_record *rec);

/* HMAC(trailer MAC key, trailer bytes 0..223) of the trailer @s encodes. */
int trailer_mac(const struct bkp_crypto *c, const struct bkp_summary *s, uint8_t out[32]);
/* @s's MAC is trailer_mac()'s (compared in constant time), else AMBER_EDATA. */
int trailer_check_mac(const struct bkp_crypto *c, const struct bkp_summary *s);
/* Fill @s's signer and signature with @k's. */
int trailer_sign(const struct asym_key *k, struct bkp_summary *s);
/* @s must be signed, by @pub. */
int trailer_check_signature(const struct asym_key *pub, const struct bkp_summary *s);

/*
 * The key a reader of @info needs: fails (AMBER_EDATA) naming both
 * fingerprints when @key is not it, or when the backup is encrypted and
 * @key is NULL and !@keyless_ok. An unencrypted backup needs no key, and
 * is refused when one is given: a key asked for is insisted on.
 */
int check_backup_key(const struct bkp_info *info, const struct data_key *key, bool keyless_ok);
/* "5be1c0de7a9f3e21": the first 8 bytes of a fingerprint in hex (@out 17). */
char *short_fingerprint(const uint8_t fp[32], char *out);

#endif
