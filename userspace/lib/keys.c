// SPDX-License-Identifier: GPL-2.0
#include <inttypes.h>
#include <openssl/crypto.h>

#include "checks.h"
#include "digest.h"
#include "error.h"
#include "keys.h"
#include "layout.h"
#include "util.h"

#define SIGN_PREFIX	"amber-trailer-v2"	/* 16 bytes, no NUL */
#define MAC_BYTES	offsetof(struct disk_trailer_v2, mac)
#define SIGNED_BYTES	offsetof(struct disk_trailer_v2, signer)	/* bytes 0..255 */

int key_fingerprint(const uint8_t k[KEY_BYTES], uint8_t out[32])
{
	return hkdf(k, KEY_BYTES, NULL, 0, "amber v2 fingerprint", out);
}

struct data_key *data_key_new(const uint8_t k[KEY_BYTES])
{
	struct data_key *key = secret_alloc(sizeof(*key));

	if (!key)
		return NULL;
	memcpy(key->k, k, KEY_BYTES);
	if (!key_fingerprint(k, key->fingerprint) &&
	    !hkdf(k, KEY_BYTES, NULL, 0, "amber v2 chunk id", key->identity))
		return key;
	data_key_free(key);
	return NULL;
}

void data_key_free(struct data_key *key)
{
	secret_free(key, sizeof(*key));
}

struct bkp_crypto *bkp_crypto_new(const struct data_key *key, const uint8_t backup_id[16],
				  const uint8_t header_hash[32])
{
	struct bkp_crypto *c = secret_alloc(sizeof(*c));

	if (!c)
		return NULL;
	memcpy(c->identity, key->identity, KEY_BYTES);
	memcpy(c->header_hash, header_hash, 32);
	if (!hkdf(key->k, KEY_BYTES, backup_id, 16, "amber v2 record key", c->record) &&
	    !hkdf(key->k, KEY_BYTES, backup_id, 16, "amber v2 trailer mac", c->mac))
		return c;
	bkp_crypto_free(c);
	return NULL;
}

void bkp_crypto_free(struct bkp_crypto *c)
{
	secret_free(c, sizeof(*c));
}

/* nonce = le64 seq || 4 zero bytes; AAD = header_hash || header bytes 0..63. */
static void record_nonce_aad(const struct bkp_crypto *c, const struct bkp_record *rec,
			     uint8_t nonce[NONCE_BYTES], uint8_t aad[96])
{
	struct disk_record_v2 header;

	record_v2_encode(rec, rec->seq, &header);
	memset(nonce, 0, NONCE_BYTES);
	put_le64(nonce, rec->seq);
	memcpy(aad, c->header_hash, 32);
	memcpy(aad + 32, &header, offsetof(struct disk_record_v2, payload_hash));
}

int record_seal(struct gcm *g, const struct bkp_crypto *c, const struct bkp_record *rec,
		const void *plain, uint8_t *out)
{
	uint8_t nonce[NONCE_BYTES], aad[96];

	record_nonce_aad(c, rec, nonce, aad);
	return gcm_seal(g, nonce, aad, sizeof(aad), plain, rec->stored_bytes - TAG_BYTES, out);
}

int record_open(struct gcm *g, const struct bkp_crypto *c, struct bkp_record *rec)
{
	uint8_t nonce[NONCE_BYTES], aad[96];

	record_nonce_aad(c, rec, nonce, aad);
	if (gcm_open(g, nonce, aad, sizeof(aad), rec->payload, rec->stored_bytes,
		     (uint8_t *)rec->payload))
		return -1;
	rec->stored_bytes -= TAG_BYTES;
	return 0;
}

int trailer_mac(const struct bkp_crypto *c, const struct bkp_summary *s, uint8_t out[32])
{
	struct disk_trailer_v2 t;

	trailer_v2_encode(s, &t);
	return hmac_once(c->mac, &t, MAC_BYTES, out);
}

int trailer_check_mac(const struct bkp_crypto *c, const struct bkp_summary *s)
{
	uint8_t mac[32];

	if (trailer_mac(c, s, mac))
		return -1;
	if (CRYPTO_memcmp(mac, s->mac, 32))
		return fail(AMBER_EDATA, "MAC does not match: the trailer is not the one written"
			    " with this key");
	return 0;
}

/* "amber-trailer-v2" || trailer bytes 0..255. */
static void signed_message(const struct bkp_summary *s, uint8_t msg[16 + SIGNED_BYTES])
{
	struct disk_trailer_v2 t;

	trailer_v2_encode(s, &t);
	memcpy(msg, SIGN_PREFIX, 16);
	memcpy(msg + 16, &t, SIGNED_BYTES);
}

int trailer_sign(const struct asym_key *k, struct bkp_summary *s)
{
	uint8_t pub[32], msg[16 + SIGNED_BYTES];

	if (asym_raw_public(k, pub) || sha256(pub, sizeof(pub), s->signer))
		return -1;
	signed_message(s, msg);
	return ed25519_sign(k, msg, sizeof(msg), s->signature);
}

int trailer_check_signature(const struct asym_key *pub, const struct bkp_summary *s)
{
	uint8_t raw[32], signer[32], msg[16 + SIGNED_BYTES];
	char a[17], b[17];

	if (all_zero(s->signature, SIG_BYTES))
		return fail(AMBER_EDATA, "not signed, and --pubkey asks for a signature");
	if (asym_raw_public(pub, raw) || sha256(raw, sizeof(raw), signer))
		return -1;
	if (memcmp(signer, s->signer, 32))
		return fail(AMBER_EDATA, "signed by key %s, not by the public key given (%s)",
			    short_fingerprint(s->signer, a), short_fingerprint(signer, b));
	signed_message(s, msg);
	if (ed25519_verify(pub, msg, sizeof(msg), s->signature))
		return error_prefix("trailer: ");
	return 0;
}

char *short_fingerprint(const uint8_t fp[32], char *out)
{
	return format_hex(fp, 8, out);
}

int check_backup_key(const struct bkp_info *info, const struct data_key *key, bool keyless_ok)
{
	char a[17], b[17];

	if (!(info->incompat & FEATURE_INCOMPAT_ENCRYPTED) && key)
		return fail(AMBER_EDATA, "the backup is not encrypted, but --key was given");
	if (!(info->incompat & FEATURE_INCOMPAT_ENCRYPTED) || (!key && keyless_ok))
		return 0;
	if (!key)
		return fail(AMBER_EDATA, "encrypted with key %s: give --key FILE",
			    short_fingerprint(info->key_fingerprint, a));
	if (memcmp(key->fingerprint, info->key_fingerprint, 32))
		return fail(AMBER_EDATA, "encrypted with key %s, but the key file holds %s",
			    short_fingerprint(info->key_fingerprint, a),
			    short_fingerprint(key->fingerprint, b));
	return 0;
}
