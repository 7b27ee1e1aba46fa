#!/usr/bin/env python3
"""The TLS 1.2 arithmetic that openssl's command line does not offer, for reproduce.sh.

Written by iotls into a --reproduce directory. Python standard library only; the block ciphers
(AES, ChaCha20) are openssl's, run as `openssl enc`.

  python3 tls12.py prf HASH SECRET LABEL SEED... LENGTH
      The TLS 1.2 PRF (RFC 5246 section 5): P_HASH(secret, label + seed), LENGTH bytes, as hex.
      SECRET is a key-log file (the master secret of its CLIENT_RANDOM line) or a binary file.
      Each SEED is a file, or HASH(FILE) for the hash of a file (as Finished uses it).
  python3 tls12.py record AEAD KEY IV SEQ BASE IOTLS_NONCE IOTLS_AAD
      Decrypts the record BASE.record with openssl (AES-CTR or ChaCha20), checks its tag
      (GHASH or Poly1305, here), writes BASE.plaintext and compares it with BASE.iotls-plaintext.
      Prints what it found; exits 1 when something differs.
"""

import hashlib
import hmac
import os
import subprocess
import sys


def prf(hash_name, secret, label, seed, length):
    """P_hash(secret, label + seed) truncated to length bytes."""
    label_seed = label + seed
    out = b""
    a = hmac.new(secret, label_seed, hash_name).digest()
    while len(out) < length:
        out += hmac.new(secret, a + label_seed, hash_name).digest()
        a = hmac.new(secret, a, hash_name).digest()
    return out[:length]


def read_secret(path):
    data = open(path, "rb").read()
    if data.startswith(b"CLIENT_RANDOM"):
        # NSS key log: CLIENT_RANDOM <client random> <master secret>
        return bytes.fromhex(data.split()[2].decode())
    return data


def read_seed(arg):
    for name in ("sha256", "sha384", "sha512"):
        if arg.startswith(name + "(") and arg.endswith(")"):
            return hashlib.new(name, open(arg[len(name) + 1 : -1], "rb").read()).digest()
    return open(arg, "rb").read()


def openssl(args, data):
    """Runs openssl with data on standard input; its output, or an exception with its error."""
    p = subprocess.run(["openssl"] + args, input=data, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("openssl " + " ".join(args) + ": " + p.stderr.decode().strip())
    return p.stdout


def gf_mult(x, y):
    """Multiplication in GF(2^128) with GCM's bit order (NIST SP 800-38D, algorithm 1)."""
    r = 0xE1 << 120
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ r if v & 1 else v >> 1
    return z


def ghash(h, aad, ciphertext):
    """GHASH_H(A, C): A and C zero-padded to 16 bytes, then their bit lengths."""

    def blocks(b):
        b += b"\0" * (-len(b) % 16)
        return [b[i : i + 16] for i in range(0, len(b), 16)]

    hi = int.from_bytes(h, "big")
    y = 0
    lengths = (len(aad) * 8).to_bytes(8, "big") + (len(ciphertext) * 8).to_bytes(8, "big")
    for block in blocks(aad) + blocks(ciphertext) + [lengths]:
        y = gf_mult(y ^ int.from_bytes(block, "big"), hi)
    return y.to_bytes(16, "big")


def poly1305(key, msg):
    """Poly1305 (RFC 8439 section 2.5)."""
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i : i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) % (1 << 128)).to_bytes(16, "little")


def record(aead, key_hex, iv_hex, seq, base, iotls_nonce, iotls_aad):
    rec = open(base + ".record", "rb").read()
    key, iv = bytes.fromhex(key_hex), bytes.fromhex(iv_hex)
    content_type, version, fragment = rec[0], rec[1:3], rec[5:]
    gcm = aead.startswith("aes")
    explicit = fragment[:8] if gcm else b""
    encrypted, tag = fragment[len(explicit) : -16], fragment[-16:]
    if gcm:
        nonce = iv + explicit
    else:
        nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + seq.to_bytes(8, "big")))
    aad = seq.to_bytes(8, "big") + bytes([content_type]) + version + len(encrypted).to_bytes(2, "big")
    problems = []
    if nonce.hex() != iotls_nonce:
        problems.append(f"the nonce is {nonce.hex()}, iotls says {iotls_nonce}")
    if aad.hex() != iotls_aad:
        problems.append(f"the additional data is {aad.hex()}, iotls says {iotls_aad}")
    if open(base + ".encrypted", "rb").read() != encrypted:
        problems.append(f"{base}.encrypted is not the encrypted part of {base}.record")
    if gcm:
        bits = len(key) * 8
        plaintext = openssl(["enc", "-d", f"-aes-{bits}-ctr", "-K", key_hex, "-iv", nonce.hex() + "00000002"], encrypted)
        h = openssl(["enc", "-e", f"-aes-{bits}-ecb", "-nopad", "-K", key_hex], bytes(16))
        ek_j0 = openssl(["enc", "-e", f"-aes-{bits}-ecb", "-nopad", "-K", key_hex], nonce + b"\0\0\0\1")
        computed = bytes(a ^ b for a, b in zip(ghash(h, aad, encrypted), ek_j0))
        mac = "GHASH"
    else:
        plaintext = openssl(["enc", "-d", "-chacha20", "-K", key_hex, "-iv", "01000000" + nonce.hex()], encrypted)
        one_time_key = openssl(["enc", "-e", "-chacha20", "-K", key_hex, "-iv", "00000000" + nonce.hex()], bytes(32))
        pad = lambda b: b + b"\0" * (-len(b) % 16)
        msg = pad(aad) + pad(encrypted) + len(aad).to_bytes(8, "little") + len(encrypted).to_bytes(8, "little")
        computed = poly1305(one_time_key, msg)
        mac = "Poly1305"
    if computed != tag:
        problems.append(f"the tag does not verify: {mac} gives {computed.hex()}, the record carries {tag.hex()}")
    open(base + ".plaintext", "wb").write(plaintext)
    said = f"{aead.upper()}, seq {seq}: the tag verifies ({mac}), {len(plaintext)} bytes decrypted"
    if os.path.exists(base + ".iotls-plaintext"):
        if open(base + ".iotls-plaintext", "rb").read() != plaintext:
            problems.append(f"the plaintext differs from iotls's ({base}.iotls-plaintext)")
        else:
            said += " = iotls's plaintext"
    if problems:
        print("; ".join(problems))
        return 1
    print(said)
    return 0


def main(argv):
    try:
        if argv[:1] == ["prf"] and len(argv) >= 6:
            hash_name, secret, label = argv[1], read_secret(argv[2]), argv[3].encode()
            seed = b"".join(read_seed(a) for a in argv[4:-1])
            print(prf(hash_name, secret, label, seed, int(argv[-1])).hex())
            return 0
        if argv[:1] == ["record"] and len(argv) == 8:
            return record(argv[1], argv[2], argv[3], int(argv[4]), argv[5], argv[6], argv[7])
    except (OSError, ValueError, IndexError, RuntimeError) as e:
        print(e)
        return 1
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
