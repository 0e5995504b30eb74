/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cryptography of format 2 (docs/FORMAT-v2.md, "Conventions"), from
 * libcrypto: secret memory, HKDF-SHA256, HMAC-SHA256, AES-256-GCM, scrypt,
 * Ed25519 and X25519. Every call returns -1 (or NULL) with the error
 * recorded: AMBER_EDATA when bytes fail to authenticate, else AMBER_ESYS.
 */
#ifndef AMBER_CRYPTO_H
#define AMBER_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_BYTES	32
#define TAG_BYTES	16	/* AES-256-GCM tag, never truncated */
#define NONCE_BYTES	12
#define SIG_BYTES	64	/* Ed25519 */

/*
 * Memory for keys and passphrases: mmap'd, mlock'd, MADV_DONTDUMP and
 * MADV_WIPEONFORK; the process stops being dumpable. secret_free() wipes it
 * (OPENSSL_cleanse) first.
 */
void *secret_alloc(size_t len);
void secret_free(void *p, size_t len);
void wipe(void *p, size_t len);

/* HKDF-SHA256, 32 bytes out; @salt NULL: no salt (32 zero bytes). */
int hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
	 const char *info, uint8_t out[32]);

/* HMAC-SHA256 under one key, for many messages (one per thread). */
struct hmac;
struct hmac *hmac_new(const uint8_t key[KEY_BYTES]);
int hmac_run(struct hmac *h, const void *data, size_t len, uint8_t out[32]);
void hmac_free(struct hmac *h);
/* One message. */
int hmac_once(const uint8_t key[KEY_BYTES], const void *data, size_t len, uint8_t out[32]);

/* AES-256-GCM under one key, sealing or opening (one per thread). */
struct gcm;
struct gcm *gcm_new(const uint8_t key[KEY_BYTES], bool seal);
/* @out gets @len bytes of ciphertext, then the tag. */
int gcm_seal(struct gcm *g, const uint8_t nonce[NONCE_BYTES], const void *aad, size_t aad_len,
	     const void *in, size_t len, uint8_t *out);
/*
 * @in is @len bytes, the tag last (@len >= TAG_BYTES); @out (may be @in)
 * gets @len - TAG_BYTES bytes, to be used only when this returns 0.
 */
int gcm_open(struct gcm *g, const uint8_t nonce[NONCE_BYTES], const void *aad, size_t aad_len,
	     const void *in, size_t len, uint8_t *out);
void gcm_free(struct gcm *g);

/* scrypt (RFC 7914) of a passphrase, 32 bytes out; @maxmem bounds 128 r N. */
int scrypt_kdf(const void *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
	       uint64_t n, uint32_t r, uint32_t p, uint64_t maxmem, uint8_t out[KEY_BYTES]);

/* Ed25519 and X25519 keys: PKCS#8 / SubjectPublicKeyInfo PEM, or raw. */
struct asym_key;
/* A private key file: refused when readable by group or others. */
struct asym_key *asym_load_private(const char *path, bool ed25519);
struct asym_key *asym_load_public(const char *path, bool ed25519);
struct asym_key *asym_from_raw_private(const uint8_t raw[32], bool ed25519);
struct asym_key *asym_from_raw_public(const uint8_t raw[32], bool ed25519);
int asym_raw_public(const struct asym_key *k, uint8_t raw[32]);
/* Write a new key pair: @private_path O_EXCL 0600, @public_path O_EXCL 0644. */
int asym_generate(const char *private_path, const char *public_path, bool ed25519);
void asym_free(struct asym_key *k);

int ed25519_sign(const struct asym_key *k, const void *msg, size_t len, uint8_t sig[SIG_BYTES]);
/* 0 when @sig is @k's signature of @msg, else -1 (AMBER_EDATA). */
int ed25519_verify(const struct asym_key *k, const void *msg, size_t len,
		   const uint8_t sig[SIG_BYTES]);
/* X25519(@priv, @peer); refused when all zero. */
int x25519(const struct asym_key *priv, const uint8_t peer[32], uint8_t out[32]);

#endif
