// SPDX-License-Identifier: GPL-2.0
/* amber key: data key files, signing and recovery key pairs. */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "error.h"
#include "keyfile.h"
#include "keys.h"
#include "subcommands.h"
#include "util.h"

static const char usage[] =
"Usage: amber key new KEYFILE [--recovery-pubkey FILE] [--passphrase-file FILE]\n"
"                     [--scrypt-log2n N]\n"
"       amber key show KEYFILE\n"
"       amber key recover KEYFILE --recovery-key FILE --to NEWKEYFILE\n"
"                     [--passphrase-file FILE]\n"
"       amber key new-signing PRIVATE PUBLIC\n"
"       amber key new-recovery PRIVATE PUBLIC\n"
"\n"
"new: a random 32-byte data key in KEYFILE (created mode 0600, never\n"
"overwritten), wrapped by a passphrase with scrypt, and also to an X25519\n"
"recovery public key when given. show: its fingerprint, which backups\n"
"encrypted with it carry. recover: the data key unwrapped with the recovery\n"
"private key, written to NEWKEYFILE under a new passphrase. new-signing and\n"
"new-recovery: an Ed25519 (for backup --sign, verify --pubkey) or X25519\n"
"key pair, PEM; the private key mode 0600.\n"
"\n"
"      --recovery-pubkey FILE  X25519 public key (PEM) to wrap the key to\n"
"      --recovery-key FILE     its private key, for recover\n"
"      --passphrase-file FILE  the passphrase, the first line of FILE (mode\n"
"                              0600), instead of asking on the terminal\n"
"      --scrypt-log2n N        scrypt cost, 14..20 (17: 128 MiB)\n"
"  -t, --to NEWKEYFILE         recover: the new key file\n";

enum { OPT_RECOVERY_PUBKEY, OPT_RECOVERY_KEY, OPT_PASSPHRASE_FILE, OPT_SCRYPT, OPT_TO };

static const struct cli_option options[] = {
	[OPT_RECOVERY_PUBKEY]	= CLI_VALUE("recovery-pubkey", 0),
	[OPT_RECOVERY_KEY]	= CLI_VALUE("recovery-key", 0),
	[OPT_PASSPHRASE_FILE]	= CLI_VALUE("passphrase-file", 0),
	[OPT_SCRYPT]		= CLI_VALUE("scrypt-log2n", 0),
	[OPT_TO]		= CLI_VALUE("to", 't'),
	{ },
};

/* The raw X25519 public key of --recovery-pubkey, or none. */
static int recovery_public(const struct cli *c, uint8_t raw[32], const uint8_t **out)
{
	struct asym_key *k;
	int ret;

	*out = NULL;
	if (!c->value[OPT_RECOVERY_PUBKEY])
		return 0;
	k = asym_load_public(c->value[OPT_RECOVERY_PUBKEY], false);
	if (!k)
		return -1;
	ret = asym_raw_public(k, raw);
	asym_free(k);
	*out = raw;
	return ret;
}

/* Write @k to @path under a new passphrase, keeping @recovery. */
static int write_key(const struct cli *c, const char *path, const uint8_t *k,
		     const uint8_t *recovery)
{
	struct scrypt_params params = SCRYPT_DEFAULT;
	struct passphrase *pass;
	uint64_t log2n;
	int ret;

	if (cli_number(c, OPT_SCRYPT, 14, 20, params.log2_n, &log2n))
		return -1;
	params.log2_n = log2n;
	pass = passphrase_get(c->value[OPT_PASSPHRASE_FILE], true);
	if (!pass)
		return -1;
	ret = keyfile_new(path, k, pass, &params, recovery);
	passphrase_free(pass);
	return ret;
}

static int show(const char *path)
{
	struct disk_keyfile f;
	char fp[65], when[32];

	if (keyfile_read(path, &f))
		return -1;
	printf("%s: data key %s\n", path, format_hex(f.fingerprint, 32, fp));
	printf("  created   %s\n", format_time(le64toh(f.created), when, sizeof(when)));
	printf("  scrypt    log2 N %u, r %u, p %u\n", f.log2_n, le32toh(f.r), le32toh(f.p));
	if (le32toh(f.flags) & KEYFILE_RECOVERY)
		printf("  recovery  X25519 %s\n", format_hex(f.recovery_public, 32, fp));
	return 0;
}

static int new_key(const struct cli *c, const char *path)
{
	uint8_t raw[32], *k = secret_alloc(KEY_BYTES);
	const uint8_t *recovery;
	int ret = -1;

	if (k && !recovery_public(c, raw, &recovery) && !random_bytes(k, KEY_BYTES) &&
	    !write_key(c, path, k, recovery))
		ret = show(path);
	secret_free(k, KEY_BYTES);
	return ret;
}

static int recover(const struct cli *c, const char *path)
{
	uint8_t *k = secret_alloc(KEY_BYTES);
	struct asym_key *priv = NULL;
	struct disk_keyfile f;
	const char *to, *recovery_key;
	int ret = -1;

	if (!k || cli_required(c, OPT_TO, &to) ||
	    cli_required(c, OPT_RECOVERY_KEY, &recovery_key) || keyfile_read(path, &f) ||
	    !(priv = asym_load_private(recovery_key, false)))
		goto out;
	if (keyfile_recover(&f, priv, k)) {
		error_prefix("%s: ", path);
		goto out;
	}
	if (!write_key(c, to, k, f.recovery_public))
		ret = show(to);
out:
	asym_free(priv);
	secret_free(k, KEY_BYTES);
	return ret;
}

int key_main(int argc, char **argv)
{
	struct cli c = { .command = "key", .usage = usage, .options = options };
	const char *what;
	int ret;

	ret = cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : -1;
	if (cli_args(&c, 2, 3, "ACTION FILE"))
		return -1;
	what = c.args[0];
	if (!strcmp(what, "new-signing") || !strcmp(what, "new-recovery")) {
		if (cli_args(&c, 3, 3, "ACTION PRIVATE PUBLIC"))
			return -1;
		return asym_generate(c.args[1], c.args[2], !strcmp(what, "new-signing"));
	}
	if (cli_args(&c, 2, 2, "ACTION KEYFILE"))
		return -1;
	if (!strcmp(what, "new"))
		return new_key(&c, c.args[1]);
	if (!strcmp(what, "show"))
		return show(c.args[1]);
	if (!strcmp(what, "recover"))
		return recover(&c, c.args[1]);
	return fail(AMBER_EUSAGE, "unknown action '%s': new, show, recover, new-signing or"
		    " new-recovery", what);
}
