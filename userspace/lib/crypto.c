// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "error.h"
#include "util.h"

/* ---- secret memory ---- */

/* libcrypto keeps key schedules on its own heap: no core dump, no ptrace. */
static void protect_process(void)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

void *secret_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fail_errno(AMBER_ESYS, "allocating memory for keys");
		return NULL;
	}
	protect_process();
	/* mlock may exceed RLIMIT_MEMLOCK for an unprivileged user: not fatal. */
	mlock(p, len);
	if (madvise(p, len, MADV_DONTDUMP) || madvise(p, len, MADV_WIPEONFORK)) {
		fail_errno(AMBER_ESYS, "marking memory for keys (madvise)");
		munmap(p, len);
		return NULL;
	}
	return p;
}

void secret_free(void *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len);
	munlock(p, len);
	munmap(p, len);
}

void wipe(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

static int crypto_failed(const char *what)
{
	return fail(AMBER_ESYS, "%s failed (libcrypto)", what);
}

/* ---- HKDF, HMAC ---- */

int hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
	 const char *info, uint8_t out[32])
{
	static const uint8_t no_salt[32];
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						  (void *)(salt ? salt : no_salt),
						  salt ? salt_len : sizeof(no_salt)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
						  strlen(info)),
		OSSL_PARAM_construct_end(),
	};
	int ok = ctx && EVP_KDF_derive(ctx, out, 32, params) > 0;

	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : crypto_failed("HKDF");
}

struct hmac {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
};

struct hmac *hmac_new(const uint8_t key[KEY_BYTES])
{
	struct hmac *h = calloc(1, sizeof(*h));
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	if (h && (h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) &&
	    (h->ctx = EVP_MAC_CTX_new(h->mac)) && EVP_MAC_init(h->ctx, key, KEY_BYTES, params))
		return h;
	hmac_free(h);
	crypto_failed("setting up HMAC-SHA256");
	return NULL;
}

int hmac_run(struct hmac *h, const void *data, size_t len, uint8_t out[32])
{
	size_t n;

	/* A NULL key: the one given to hmac_new(). */
	if (!EVP_MAC_init(h->ctx, NULL, 0, NULL) || !EVP_MAC_update(h->ctx, data, len) ||
	    !EVP_MAC_final(h->ctx, out, &n, 32) || n != 32)
		return crypto_failed("HMAC-SHA256");
	return 0;
}

void hmac_free(struct hmac *h)
{
	if (!h)
		return;
	EVP_MAC_CTX_free(h->ctx);
	EVP_MAC_free(h->mac);
	free(h);
}

int hmac_once(const uint8_t key[KEY_BYTES], const void *data, size_t len, uint8_t out[32])
{
	struct hmac *h = hmac_new(key);
	int ret = h ? hmac_run(h, data, len, out) : -1;

	hmac_free(h);
	return ret;
}

/* ---- AES-256-GCM ---- */

struct gcm {
	EVP_CIPHER_CTX *ctx;
};

struct gcm *gcm_new(const uint8_t key[KEY_BYTES], bool seal)
{
	struct gcm *g = calloc(1, sizeof(*g));

	if (g && (g->ctx = EVP_CIPHER_CTX_new()) &&
	    EVP_CipherInit_ex(g->ctx, EVP_aes_256_gcm(), NULL, key, NULL, seal))
		return g;
	gcm_free(g);
	crypto_failed("setting up AES-256-GCM");
	return NULL;
}

/* The nonce and the associated data of one message. */
static int gcm_start(struct gcm *g, const uint8_t nonce[NONCE_BYTES], const void *aad,
		     size_t aad_len)
{
	int n;

	return EVP_CipherInit_ex(g->ctx, NULL, NULL, NULL, nonce, -1) &&
	       EVP_CipherUpdate(g->ctx, NULL, &n, aad, aad_len) ? 0 : -1;
}

int gcm_seal(struct gcm *g, const uint8_t nonce[NONCE_BYTES], const void *aad, size_t aad_len,
	     const void *in, size_t len, uint8_t *out)
{
	int n = 0, last;

	if (len > INT32_MAX || gcm_start(g, nonce, aad, aad_len) ||
	    (len && !EVP_CipherUpdate(g->ctx, out, &n, in, len)) ||
	    !EVP_CipherFinal_ex(g->ctx, out + n, &last) ||
	    !EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, out + len))
		return crypto_failed("AES-256-GCM encryption");
	return 0;
}

int gcm_open(struct gcm *g, const uint8_t nonce[NONCE_BYTES], const void *aad, size_t aad_len,
	     const void *in, size_t len, uint8_t *out)
{
	uint8_t tag[TAG_BYTES];
	size_t body = len - TAG_BYTES;
	int n = 0, last;

	if (len < TAG_BYTES || len > INT32_MAX)
		return fail(AMBER_EDATA, "%zu stored bytes: no room for the tag", len);
	memcpy(tag, (const uint8_t *)in + body, TAG_BYTES);
	if (gcm_start(g, nonce, aad, aad_len) ||
	    (body && !EVP_CipherUpdate(g->ctx, out, &n, in, body)) ||
	    !EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag))
		return crypto_failed("AES-256-GCM decryption");
	if (EVP_CipherFinal_ex(g->ctx, out + n, &last) <= 0) {
		wipe(out, body);
		return fail(AMBER_EDATA, "authentication tag does not match (wrong key, or"
			    " the record was altered or moved)");
	}
	return 0;
}

void gcm_free(struct gcm *g)
{
	if (!g)
		return;
	EVP_CIPHER_CTX_free(g->ctx);
	free(g);
}

int scrypt_kdf(const void *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
	       uint64_t n, uint32_t r, uint32_t p, uint64_t maxmem, uint8_t out[KEY_BYTES])
{
	if (!EVP_PBE_scrypt(pass, pass_len, salt, salt_len, n, r, p, maxmem, out, KEY_BYTES))
		return crypto_failed("scrypt");
	return 0;
}

/* ---- Ed25519, X25519 ---- */

struct asym_key {
	EVP_PKEY *k;
};

static int asym_type(bool ed25519)
{
	return ed25519 ? EVP_PKEY_ED25519 : EVP_PKEY_X25519;
}

static const char *asym_name(bool ed25519)
{
	return ed25519 ? "Ed25519" : "X25519";
}

static struct asym_key *asym_wrap(EVP_PKEY *k, bool ed25519, const char *what)
{
	struct asym_key *p;

	if (!k) {
		fail(AMBER_EDATA, "%s: not a %s key in PEM form", what, asym_name(ed25519));
		return NULL;
	}
	if (EVP_PKEY_get_id(k) != asym_type(ed25519)) {
		fail(AMBER_EDATA, "%s: not a %s key", what, asym_name(ed25519));
		EVP_PKEY_free(k);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		EVP_PKEY_free(k);
		fail(AMBER_ESYS, "out of memory");
		return NULL;
	}
	p->k = k;
	return p;
}

/* O_NONBLOCK: a FIFO planted at @path must not hang amber. */
static FILE *open_key(const char *path, bool private)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	FILE *f;

	if (fd < 0 || !(f = fdopen(fd, "r"))) {
		fail_errno(AMBER_ESYS, "%s", path);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fail(AMBER_ESYS, "%s: not a regular file", path);
		fclose(f);
		return NULL;
	}
	if (private && (st.st_mode & 077)) {
		fail(AMBER_ESYS, "%s: a private key readable by group or others is refused"
		     " (chmod 600 it)", path);
		fclose(f);
		return NULL;
	}
	return f;
}

struct asym_key *asym_load_private(const char *path, bool ed25519)
{
	FILE *f = open_key(path, true);
	EVP_PKEY *k;

	if (!f)
		return NULL;
	protect_process();
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return asym_wrap(k, ed25519, path);
}

struct asym_key *asym_load_public(const char *path, bool ed25519)
{
	FILE *f = open_key(path, false);
	EVP_PKEY *k;

	if (!f)
		return NULL;
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	return asym_wrap(k, ed25519, path);
}

struct asym_key *asym_from_raw_private(const uint8_t raw[32], bool ed25519)
{
	return asym_wrap(EVP_PKEY_new_raw_private_key(asym_type(ed25519), NULL, raw, 32),
			 ed25519, "raw key");
}

struct asym_key *asym_from_raw_public(const uint8_t raw[32], bool ed25519)
{
	return asym_wrap(EVP_PKEY_new_raw_public_key(asym_type(ed25519), NULL, raw, 32),
			 ed25519, "raw public key");
}

int asym_raw_public(const struct asym_key *k, uint8_t raw[32])
{
	size_t len = 32;

	if (!EVP_PKEY_get_raw_public_key(k->k, raw, &len) || len != 32)
		return crypto_failed("reading a public key");
	return 0;
}

/* A new file at @path, O_EXCL with @mode, for PEM. */
static FILE *create_key_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *f;

	if (fd < 0) {
		fail_errno(AMBER_ESYS, "%s%s", path, errno == EEXIST ?
			   " (never overwritten: remove it first)" : "");
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f) {
		fail_errno(AMBER_ESYS, "%s", path);
		close(fd);
	}
	return f;
}

static int write_pem(const char *path, mode_t mode, EVP_PKEY *k, bool private)
{
	FILE *f = create_key_file(path, mode);
	int ok;

	if (!f)
		return -1;
	ok = private ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) :
	     PEM_write_PUBKEY(f, k);
	if (fclose(f) || !ok) {
		unlink(path);
		return fail(AMBER_ESYS, "%s: writing the key failed", path);
	}
	return 0;
}

int asym_generate(const char *private_path, const char *public_path, bool ed25519)
{
	EVP_PKEY *k;
	int ret;

	protect_process();
	k = EVP_PKEY_Q_keygen(NULL, NULL, ed25519 ? "ED25519" : "X25519");
	if (!k)
		return crypto_failed("generating a key");
	ret = write_pem(private_path, 0600, k, true);
	if (!ret && write_pem(public_path, 0644, k, false)) {
		unlink(private_path);
		ret = -1;
	}
	EVP_PKEY_free(k);
	return ret;
}

void asym_free(struct asym_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->k);
	free(k);
}

int ed25519_sign(const struct asym_key *k, const void *msg, size_t len, uint8_t sig[SIG_BYTES])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = SIG_BYTES;
	int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->k) &&
		 EVP_DigestSign(ctx, sig, &n, msg, len) && n == SIG_BYTES;

	EVP_MD_CTX_free(ctx);
	return ok ? 0 : crypto_failed("Ed25519 signing");
}

int ed25519_verify(const struct asym_key *k, const void *msg, size_t len,
		   const uint8_t sig[SIG_BYTES])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ret;

	if (!ctx || !EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->k)) {
		EVP_MD_CTX_free(ctx);
		return crypto_failed("setting up Ed25519");
	}
	ret = EVP_DigestVerify(ctx, sig, SIG_BYTES, msg, len);
	EVP_MD_CTX_free(ctx);
	return ret == 1 ? 0 : fail(AMBER_EDATA, "the signature does not verify");
}

int x25519(const struct asym_key *priv, const uint8_t peer[32], uint8_t out[32])
{
	struct asym_key *pub = asym_from_raw_public(peer, false);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(priv->k, NULL);
	size_t len = 32;
	int ok = pub && ctx && EVP_PKEY_derive_init(ctx) > 0 &&
		 EVP_PKEY_derive_set_peer(ctx, pub->k) > 0 &&
		 EVP_PKEY_derive(ctx, out, &len) > 0 && len == 32;

	EVP_PKEY_CTX_free(ctx);
	asym_free(pub);
	/* libcrypto refuses an all-zero result itself: a low-order public key */
	if (!ok || all_zero(out, 32))
		return fail(AMBER_EDATA, "X25519 with this public key fails (a bad public key)");
	return 0;
}
