// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "checks.h"
#include "error.h"
#include "keyfile.h"
#include "keys.h"
#include "util.h"

#define AAD_BYTES	offsetof(struct disk_keyfile, log2_n)	/* bytes 0..63 */
#define SCRYPT_MAXMEM	(1ULL << 30)

static const uint8_t zero_nonce[NONCE_BYTES];

/* Secrets of one wrap or unwrap, in one secret area. */
struct wrap_secrets {
	uint8_t kek[KEY_BYTES];
	uint8_t shared[32];
};

static uint64_t keyfile_csum(const struct disk_keyfile *f)
{
	return XXH3_64bits(f, offsetof(struct disk_keyfile, csum));
}

static int scrypt_memory(const struct scrypt_params *p, uint64_t *bytes)
{
	if (p->log2_n < 14 || p->log2_n > 20 || p->r < 1 || p->r > 32 || p->p < 1 || p->p > 16)
		return fail(AMBER_EDATA, "scrypt parameters log2 N %u, r %u, p %u out of range"
			    " (14..20, 1..32, 1..16)", p->log2_n, p->r, p->p);
	*bytes = 128ULL * p->r << p->log2_n;
	if (*bytes > SCRYPT_MAXMEM)
		return fail(AMBER_EDATA, "scrypt parameters need %llu MiB, above 1 GiB",
			    (unsigned long long)(*bytes >> 20));
	/* p passes over that memory: the work of p = 1 at the largest N and r 8 */
	if (*bytes * p->p > SCRYPT_MAXMEM)
		return fail(AMBER_EDATA, "scrypt parameters need %u passes over %llu MiB,"
			    " above 1 GiB of work (128 * r * N * p)", p->p,
			    (unsigned long long)(*bytes >> 20));
	return 0;
}

static int passphrase_kek(const struct disk_keyfile *f, const struct passphrase *pass,
			  uint8_t kek[KEY_BYTES])
{
	struct scrypt_params p = { f->log2_n, le32toh(f->r), le32toh(f->p) };
	uint64_t mem = 0;

	if (scrypt_memory(&p, &mem))
		return -1;
	/* EVP_PBE_scrypt's maxmem must exceed 128 r N by its own buffers. */
	return scrypt_kdf(pass->text, pass->len, f->salt, sizeof(f->salt), 1ULL << p.log2_n,
			  p.r, p.p, mem + (1 << 20) + 128ULL * p.r * p.p, kek);
}

static int recovery_kek(const struct asym_key *priv, const uint8_t peer[32], const uint8_t e[32],
			const uint8_t r[32], struct wrap_secrets *s)
{
	uint8_t salt[64];

	memcpy(salt, e, 32);
	memcpy(salt + 32, r, 32);
	if (x25519(priv, peer, s->shared))
		return -1;
	return hkdf(s->shared, 32, salt, sizeof(salt), "amber v2 recovery wrap", s->kek);
}

static int wrap(const struct disk_keyfile *f, const uint8_t kek[KEY_BYTES],
		const uint8_t k[KEY_BYTES], uint8_t out[KEY_BYTES + TAG_BYTES])
{
	struct gcm *g = gcm_new(kek, true);
	int ret = g ? gcm_seal(g, zero_nonce, f, AAD_BYTES, k, KEY_BYTES, out) : -1;

	gcm_free(g);
	return ret;
}

/* K from a slot, checked against the file's fingerprint; @what names the slot. */
static int unwrap(const struct disk_keyfile *f, const uint8_t kek[KEY_BYTES],
		  const uint8_t in[KEY_BYTES + TAG_BYTES], uint8_t k[KEY_BYTES], const char *what)
{
	struct gcm *g = gcm_new(kek, false);
	uint8_t fingerprint[32];
	int ret;

	if (!g)
		return -1;
	ret = gcm_open(g, zero_nonce, f, AAD_BYTES, in, KEY_BYTES + TAG_BYTES, k);
	gcm_free(g);
	if (ret)
		return fail(AMBER_EDATA, "%s", what);
	if (key_fingerprint(k, fingerprint))
		return -1;
	if (memcmp(fingerprint, f->fingerprint, 32)) {
		wipe(k, KEY_BYTES);
		return fail(AMBER_EDATA, "the key unwrapped does not have the file's fingerprint");
	}
	return 0;
}

static int encode_recovery(struct disk_keyfile *out, const uint8_t k[KEY_BYTES],
			   const uint8_t recovery[32], const uint8_t ephemeral[32],
			   struct wrap_secrets *s)
{
	struct asym_key *e = asym_from_raw_private(ephemeral, false);
	int ret = -1;

	if (e && !asym_raw_public(e, out->ephemeral_public) &&
	    !recovery_kek(e, recovery, out->ephemeral_public, recovery, s))
		ret = wrap(out, s->kek, k, out->recovery_wrapped);
	asym_free(e);
	return ret;
}

int keyfile_encode(struct disk_keyfile *out, const uint8_t k[KEY_BYTES],
		   const struct passphrase *pass, const struct scrypt_params *params,
		   const uint8_t *recovery, const struct keyfile_seed *seed)
{
	struct wrap_secrets *s = secret_alloc(sizeof(*s));
	uint64_t mem = 0;
	int ret = -1;

	if (!s || scrypt_memory(params, &mem))
		goto out;
	memset(out, 0, sizeof(*out));
	memcpy(out->magic, KEYFILE_MAGIC, sizeof(out->magic));
	out->version = htole32(KEYFILE_VERSION);
	out->file_bytes = htole32(sizeof(*out));
	out->flags = htole32(recovery ? KEYFILE_RECOVERY : 0);
	out->created = htole64(seed->created);
	out->log2_n = params->log2_n;
	out->r = htole32(params->r);
	out->p = htole32(params->p);
	memcpy(out->salt, seed->salt, sizeof(out->salt));
	if (key_fingerprint(k, out->fingerprint) || passphrase_kek(out, pass, s->kek) ||
	    wrap(out, s->kek, k, out->pass_wrapped))
		goto out;
	if (recovery) {
		memcpy(out->recovery_public, recovery, 32);
		if (encode_recovery(out, k, recovery, seed->ephemeral, s))
			goto out;
	}
	out->csum = htole64(keyfile_csum(out));
	ret = 0;
out:
	secret_free(s, sizeof(*s));
	return ret;
}

int keyfile_check(const struct disk_keyfile *in)
{
	struct scrypt_params p = { in->log2_n, le32toh(in->r), le32toh(in->p) };
	uint32_t flags = le32toh(in->flags);
	bool recovery = flags & KEYFILE_RECOVERY;
	uint64_t mem = 0;

	if (memcmp(in->magic, KEYFILE_MAGIC, sizeof(in->magic)))
		return fail(AMBER_EDATA, "not an amber key file (bad magic)");
	if (le32toh(in->version) != KEYFILE_VERSION)
		return fail(AMBER_EDATA, "key file version %u, this amber reads version 1",
			    le32toh(in->version));
	if (sum_differs(le64toh(in->csum), keyfile_csum(in)))
		return fail(AMBER_EDATA, "key file checksum mismatch (damaged)");
	if (le32toh(in->file_bytes) != sizeof(*in) || flags & ~KEYFILE_RECOVERY ||
	    in->reserved0 || in->reserved2 || in->reserved1[0] || in->reserved1[1] ||
	    in->reserved1[2])
		return fail(AMBER_EDATA, "key file: bad size, flags or reserved bytes");
	if (!recovery && (!all_zero(in->recovery_public, 32) ||
			  !all_zero(in->ephemeral_public, 32) ||
			  !all_zero(in->recovery_wrapped, sizeof(in->recovery_wrapped))))
		return fail(AMBER_EDATA, "key file: recovery slot set without RECOVERY");
	return scrypt_memory(&p, &mem) ? error_prefix("key file: ") : 0;
}

int keyfile_unwrap(const struct disk_keyfile *in, const struct passphrase *pass,
		   uint8_t k[KEY_BYTES])
{
	struct wrap_secrets *s = secret_alloc(sizeof(*s));
	int ret = -1;

	if (s && !passphrase_kek(in, pass, s->kek))
		ret = unwrap(in, s->kek, in->pass_wrapped, k, "wrong passphrase (or a damaged"
			     " key file)");
	secret_free(s, sizeof(*s));
	return ret;
}

int keyfile_recover(const struct disk_keyfile *in, const struct asym_key *recovery,
		    uint8_t k[KEY_BYTES])
{
	struct wrap_secrets *s;
	uint8_t pub[32];
	int ret = -1;

	if (!(le32toh(in->flags) & KEYFILE_RECOVERY))
		return fail(AMBER_EDATA, "the key file has no recovery slot");
	if (asym_raw_public(recovery, pub))
		return -1;
	if (memcmp(pub, in->recovery_public, 32))
		return fail(AMBER_EDATA, "the recovery key is not the one the key file was"
			    " wrapped to");
	s = secret_alloc(sizeof(*s));
	if (s && !recovery_kek(recovery, in->ephemeral_public, in->ephemeral_public,
			       in->recovery_public, s))
		ret = unwrap(in, s->kek, in->recovery_wrapped, k, "the recovery slot does not"
			     " open (a damaged key file)");
	secret_free(s, sizeof(*s));
	return ret;
}

/*
 * Open @path, a secret of the kind @what names: a regular file (a FIFO
 * there must not hang us) that only its owner may read. Its status in @st.
 */
static int open_private(const char *path, const char *what, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s", path);
	if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
		close(fd);
		return fail(AMBER_ESYS, "%s: not a regular file", path);
	}
	if (st->st_mode & 077) {
		close(fd);
		return fail(AMBER_ESYS, "%s: a %s readable by group or others is refused"
			    " (chmod 600 it)", path, what);
	}
	return fd;
}

int keyfile_read(const char *path, struct disk_keyfile *out)
{
	struct stat st;
	ssize_t got;
	int fd;

	fd = open_private(path, "key file", &st);
	if (fd < 0)
		return fd;
	got = read_upto(fd, out, sizeof(*out));
	close(fd);
	if (got < 0)
		return error_prefix("%s: ", path);
	if ((size_t)got != sizeof(*out) || st.st_size != sizeof(*out))
		return fail(AMBER_EDATA, "%s: %lld bytes, a key file has 280", path,
			    (long long)st.st_size);
	return keyfile_check(out) ? error_prefix("%s: ", path) : 0;
}

int keyfile_write(const char *path, const struct disk_keyfile *in)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return fail_errno(AMBER_ESYS, "%s%s", path, errno == EEXIST ?
				  " (a key file is never overwritten)" : "");
	if (write_full(fd, in, sizeof(*in)) || fsync(fd)) {
		close(fd);
		unlink(path);
		return error_prefix("%s: ", path);
	}
	return close(fd) ? fail_errno(AMBER_ESYS, "%s", path) : 0;
}

int keyfile_new(const char *path, const uint8_t k[KEY_BYTES], const struct passphrase *pass,
		const struct scrypt_params *params, const uint8_t *recovery)
{
	struct keyfile_seed *seed = secret_alloc(sizeof(*seed));
	struct disk_keyfile f;
	int ret = -1;

	if (!seed)
		return -1;
	seed->created = time(NULL);
	if (!random_bytes(seed->salt, sizeof(seed->salt)) &&
	    !random_bytes(seed->ephemeral, sizeof(seed->ephemeral)) &&
	    !keyfile_encode(&f, k, pass, params, recovery, seed))
		ret = keyfile_write(path, &f);
	secret_free(seed, sizeof(*seed));
	return ret;
}

/* ---- passphrases ---- */

/* One line from @fd into @p; its newline dropped. @c: a byte of it, wiped. */
static int read_chars(int fd, struct passphrase *p, const char *what, char *c)
{
	ssize_t got;

	for (p->len = 0;;) {
		got = read(fd, c, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return fail_errno(AMBER_ESYS, "reading the passphrase from %s", what);
		if (!got || *c == '\n')
			return 0;
		if (p->len == sizeof(p->text))
			return fail(AMBER_EUSAGE, "%s: passphrase longer than %d bytes", what,
				    PASSPHRASE_MAX);
		p->text[p->len++] = *c;
	}
}

static int read_line(int fd, struct passphrase *p, const char *what)
{
	char c = 0;
	int ret = read_chars(fd, p, what, &c);

	wipe(&c, sizeof(c));
	if (ret)
		return ret;
	if (!p->len)
		return fail(AMBER_EUSAGE, "%s: empty passphrase", what);
	return 0;
}

/* O_NONBLOCK: a FIFO planted at @path must not hang amber. */
static int from_file(const char *path, struct passphrase *p)
{
	struct stat st;
	int fd, ret;

	fd = open_private(path, "passphrase file", &st);
	if (fd < 0)
		return fd;
	ret = read_line(fd, p, path);
	close(fd);
	return ret;
}

/* The terminal's settings while echo is off, for a signal to restore. */
static int echo_tty = -1;
static struct termios echo_was;
static const int echo_signals[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP };

/* Echo back on, then die of @sig as if not caught. */
static void restore_echo(int sig)
{
	tcsetattr(echo_tty, TCSAFLUSH, &echo_was);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* While echo is off, the signals that end amber turn it back on first. */
static void catch_echo(bool on, struct sigaction *old)
{
	struct sigaction sa = { .sa_handler = restore_echo };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(echo_signals); i++)
		if (on)
			sigaction(echo_signals[i], &sa, &old[i]);
		else
			sigaction(echo_signals[i], &old[i], NULL);
}

/* Ask on the terminal with echo off. */
static int ask(int tty, const char *prompt, struct passphrase *p)
{
	struct sigaction old[ARRAY_SIZE(echo_signals)];
	struct termios quiet;
	int ret;

	if (tcgetattr(tty, &echo_was))
		return fail_errno(AMBER_ESYS, "/dev/tty");
	quiet = echo_was;
	quiet.c_lflag &= ~ECHO;
	echo_tty = tty;
	catch_echo(true, old);
	if (write_full(tty, prompt, strlen(prompt)) || tcsetattr(tty, TCSAFLUSH, &quiet))
		ret = fail(AMBER_ESYS, "cannot ask for the passphrase on the terminal");
	else
		ret = read_line(tty, p, "the terminal");
	tcsetattr(tty, TCSAFLUSH, &echo_was);
	catch_echo(false, old);
	write_full(tty, "\n", 1);
	return ret;
}

static int from_terminal(struct passphrase *p, bool confirm)
{
	struct passphrase *again = NULL;
	int tty = open("/dev/tty", O_RDWR | O_CLOEXEC), ret;

	if (tty < 0)
		return fail(AMBER_EUSAGE, "no terminal to ask for the passphrase: give"
			    " --passphrase-file FILE");
	ret = ask(tty, "Passphrase: ", p);
	if (!ret && confirm) {
		again = secret_alloc(sizeof(*again));
		ret = !again || ask(tty, "Passphrase again: ", again) ? -1 : 0;
		if (!ret && (again->len != p->len || memcmp(again->text, p->text, p->len)))
			ret = fail(AMBER_EUSAGE, "the passphrases differ");
		secret_free(again, sizeof(*again));
	}
	close(tty);
	return ret;
}

struct passphrase *passphrase_get(const char *file, bool confirm)
{
	struct passphrase *p = secret_alloc(sizeof(*p));

	if (p && !(file ? from_file(file, p) : from_terminal(p, confirm)))
		return p;
	passphrase_free(p);
	return NULL;
}

void passphrase_free(struct passphrase *p)
{
	secret_free(p, sizeof(*p));
}

struct data_key *data_key_load(const char *path, const char *pass_file)
{
	struct disk_keyfile f;
	struct passphrase *pass;
	struct data_key *key = NULL;
	uint8_t *k;

	if (keyfile_read(path, &f) || !(pass = passphrase_get(pass_file, false)))
		return NULL;
	k = secret_alloc(KEY_BYTES);
	if (k && !keyfile_unwrap(&f, pass, k))
		key = data_key_new(k);
	else
		error_prefix("%s: ", path);
	secret_free(k, KEY_BYTES);
	passphrase_free(pass);
	return key;
}
