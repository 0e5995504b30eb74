#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""An independent check of FORMAT-v2.md's encrypted known-answer vectors,
written from the text of the specification with python3-cryptography, not
from amber's C: derives the keys, opens every record, recomputes leaves,
digest, MAC and signature of V1 and V3, unwraps the key file. Prints the
intermediate values the document lists.

Usage: scripts/kat-check.py DIR   (DIR from AMBER_KAT_OUT=DIR build/tests/run crypto_known,
       in userspace/; python3-cryptography, from scripts/deps.sh)
"""
import hashlib, hmac, struct, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

def hkdf(ikm, salt, info):
    return HKDF(hashes.SHA256(), 32, salt if salt else b"\0" * 32, info.encode()).derive(ikm)

def show(name, b):
    print(f"{name:24} {b.hex()}")

K = bytes(range(32))
fp = hkdf(K, None, "amber v2 fingerprint")
ident = hkdf(K, None, "amber v2 chunk id")
show("fingerprint", fp)
show("identity key", ident)
seed = bytes(range(0x40, 0x60))
signer = Ed25519PrivateKey.from_private_bytes(seed)
pub = signer.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
show("signing public key", pub)

def check(path, parent_link=None):
    f = open(path, "rb").read()
    hdr = f[:256]
    assert hdr[:8] == b"AMBERBKP" and struct.unpack_from("<I", hdr, 168)[0] & 1
    assert hdr[192:224] == fp, "key_fingerprint"
    backup_id = hdr[176:192]
    hh = hashlib.sha256(hdr).digest()
    rk = hkdf(K, backup_id, "amber v2 record key")
    mk = hkdf(K, backup_id, "amber v2 trailer mac")
    print(f"-- {path}")
    show("header_hash", hh)
    show("record key", rk)
    show("trailer MAC key", mk)
    at, leaves = 256, []
    while f[at:at + 4] == b"AREC":
        codec, flags, seq, chunk, stored = struct.unpack_from("<HHQQI", f, at + 4)
        rh = f[at:at + 104]
        payload = f[at + 104:at + 104 + stored]
        assert hashlib.sha256(payload).digest() == rh[64:96], "payload_hash"
        nonce = struct.pack("<Q", seq) + b"\0" * 4
        aad = hh + rh[:64]
        plain = AESGCM(rk).decrypt(nonce, payload, aad)
        content = plain if not flags & 1 else b"\0" * 4096
        leaf = hmac.new(ident, content, hashlib.sha256).digest()
        assert leaf == rh[32:64], "leaf"
        show(f"seq {seq} nonce", nonce)
        show(f"seq {seq} AAD", aad)
        show(f"seq {seq} tag", payload[-16:])
        show(f"seq {seq} leaf (chunk {chunk})", leaf)
        show(f"seq {seq} payload_hash", rh[64:96])
        leaves.append((chunk, leaf))
        at += 104 + stored
    t = f[-368:]
    d = hashlib.sha256(b"amber-image-v2-k" + struct.pack("<QQ", 8192, 4096) +
                       b"".join(struct.pack("<Q", c) + l for c, l in sorted(leaves))).digest()
    assert t[160:192] == d, "digest"
    assert t[64:96] == hh
    mac = hmac.new(mk, t[:224], hashlib.sha256).digest()
    assert t[224:256] == mac, "MAC"
    show("digest", d)
    show("MAC", mac)
    if any(t[256:352]):
        assert t[256:288] == hashlib.sha256(pub).digest()
        signer.public_key().verify(t[288:352], b"amber-trailer-v2" + t[:256])
        show("signature", t[288:352])
    if parent_link:
        assert hdr[128:160] == parent_link
    return t[192:224]

d = sys.argv[1]
link = check(d + "/v1.amb")
check(d + "/v3.amb", link)
kf = open(d + "/kat.key", "rb").read()
assert kf[32:64] == fp
salt = kf[80:112]
kek = hashlib.scrypt(b"amber test passphrase", salt=salt, n=1 << kf[64], r=8, p=1, dklen=32)
assert AESGCM(kek).decrypt(b"\0" * 12, kf[112:160], kf[:64]) == K
rpriv = X25519PrivateKey.from_private_bytes(bytes(range(0x80, 0xa0)))
R = kf[160:192]
E = kf[192:224]
def raw(public):
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

assert raw(rpriv.public_key()) == R
assert raw(X25519PrivateKey.from_private_bytes(bytes(range(0xc0, 0xe0))).public_key()) == E
s = rpriv.exchange(X25519PublicKey.from_public_bytes(E))
kek2 = hkdf(s, E + R, "amber v2 recovery wrap")
assert AESGCM(kek2).decrypt(b"\0" * 12, kf[224:272], kf[:64]) == K
print("-- kat.key")
show("passphrase KEK", kek)
show("recovery public R", R)
show("ephemeral public E", E)
show("shared secret", s)
show("recovery KEK", kek2)
print("all vectors check")
