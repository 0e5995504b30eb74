/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Data key files (FORMAT-v2.md, "Keys"): K wrapped by a passphrase with
 * scrypt, and optionally to an X25519 recovery public key. 280 bytes.
 */
#ifndef AMBER_KEYFILE_H
#define AMBER_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define KEYFILE_MAGIC		"AMBERKEY"
#define KEYFILE_VERSION		1
#define KEYFILE_RECOVERY	(1U << 0)	/* flags: the recovery slot is filled */
#define PASSPHRASE_MAX		1024

struct disk_keyfile {
	char	 magic[8];
	uint32_t version;
	uint32_t file_bytes;		/* 280 */
	uint32_t flags;
	uint32_t reserved0;
	int64_t	 created;
	uint8_t	 fingerprint[32];
	uint8_t	 log2_n;		/* scrypt: 14..20 */
	uint8_t	 reserved1[3];
	uint32_t r;			/* 1..32 */
	uint32_t p;			/* 1..16 */
	uint32_t reserved2;
	uint8_t	 salt[32];
	uint8_t	 pass_wrapped[KEY_BYTES + TAG_BYTES];
	uint8_t	 recovery_public[32];
	uint8_t	 ephemeral_public[32];
	uint8_t	 recovery_wrapped[KEY_BYTES + TAG_BYTES];
	uint64_t csum;			/* XXH3-64 of the bytes before it */
} __attribute__((packed));

_Static_assert(sizeof(struct disk_keyfile) == 280, "key file layout");

struct scrypt_params {
	uint8_t log2_n;
	uint32_t r, p;
};

#define SCRYPT_DEFAULT	((struct scrypt_params){ 17, 8, 1 })

/* A passphrase, in secret memory. */
struct passphrase {
	size_t len;
	char text[PASSPHRASE_MAX];
};

/*
 * What a key file is made of besides K, the passphrase and the recovery
 * key: drawn at random by keyfile_new(), given by the known-answer test.
 */
struct keyfile_seed {
	int64_t created;
	uint8_t salt[32];
	uint8_t ephemeral[32];		/* X25519 private key e */
};

/* Fill @out: K under @pass, and under @recovery (an X25519 public key) unless NULL. */
int keyfile_encode(struct disk_keyfile *out, const uint8_t k[KEY_BYTES],
		   const struct passphrase *pass, const struct scrypt_params *params,
		   const uint8_t *recovery, const struct keyfile_seed *seed);
/* Checksum, magic, sizes, reserved bytes and scrypt parameters. */
int keyfile_check(const struct disk_keyfile *in);
/* K from the passphrase slot: AMBER_EDATA "wrong passphrase" when the tag fails. */
int keyfile_unwrap(const struct disk_keyfile *in, const struct passphrase *pass,
		   uint8_t k[KEY_BYTES]);
/* K from the recovery slot, with the recovery private key. */
int keyfile_recover(const struct disk_keyfile *in, const struct asym_key *recovery,
		    uint8_t k[KEY_BYTES]);

/* Read and check a key file (280 bytes). */
int keyfile_read(const char *path, struct disk_keyfile *out);
/* A new key file at @path: O_EXCL, 0600, never overwriting. */
int keyfile_write(const char *path, const struct disk_keyfile *in);
/* keyfile_encode() with a new salt, ephemeral key and time, then keyfile_write(). */
int keyfile_new(const char *path, const uint8_t k[KEY_BYTES], const struct passphrase *pass,
		const struct scrypt_params *params, const uint8_t *recovery);

/*
 * The passphrase: from @file (not readable by group or others; one line, its
 * newline dropped) or, when @file is NULL, from the terminal without echo,
 * asked twice when @confirm. In secret memory: passphrase_free() it.
 */
struct passphrase *passphrase_get(const char *file, bool confirm);
void passphrase_free(struct passphrase *p);

struct data_key;
/* The data key of key file @path, unwrapped with passphrase_get(@pass_file). */
struct data_key *data_key_load(const char *path, const char *pass_file);

#endif
