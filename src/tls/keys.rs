//! TLS 1.2 key derivation and record protection, as pure functions (RFC 5246 §5, §6.3, §7.4.9;
//! RFC 5288 for AES-GCM; RFC 7905 for ChaCha20-Poly1305).
//!
//! Given the master secret a TLS library exported through its key log, these functions re-derive
//! the record keys, decrypt records and recompute the `verify_data` of the Finished messages. They
//! do no I/O and never panic on malformed input.

use ring::{aead, digest, hmac};

/// The hash a TLS 1.2 cipher suite uses for its PRF and its transcript hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrfHash {
    Sha256,
    Sha384,
}

impl PrfHash {
    /// Name for people, e.g. `SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            PrfHash::Sha256 => "SHA-256",
            PrfHash::Sha384 => "SHA-384",
        }
    }

    /// The hash named as [`Self::id`] names it.
    pub fn by_id(id: &str) -> Option<PrfHash> {
        match id {
            "sha256" => Some(PrfHash::Sha256),
            "sha384" => Some(PrfHash::Sha384),
            _ => None,
        }
    }

    /// Name as openssl and Python's hashlib spell it: `sha256`, `sha384`.
    pub fn id(self) -> &'static str {
        match self {
            PrfHash::Sha256 => "sha256",
            PrfHash::Sha384 => "sha384",
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            PrfHash::Sha256 => hmac::HMAC_SHA256,
            PrfHash::Sha384 => hmac::HMAC_SHA384,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            PrfHash::Sha256 => &digest::SHA256,
            PrfHash::Sha384 => &digest::SHA384,
        }
    }
}

/// The record-protection algorithm of a TLS 1.2 AEAD cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadKind {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl AeadKind {
    /// Name for people: `AES-128-GCM`, `AES-256-GCM`, `ChaCha20-Poly1305`.
    pub fn name(self) -> &'static str {
        match self {
            AeadKind::Aes128Gcm => "AES-128-GCM",
            AeadKind::Aes256Gcm => "AES-256-GCM",
            AeadKind::Chacha20Poly1305 => "ChaCha20-Poly1305",
        }
    }

    /// Length of the write key.
    pub fn key_len(self) -> usize {
        match self {
            AeadKind::Aes128Gcm => 16,
            AeadKind::Aes256Gcm | AeadKind::Chacha20Poly1305 => 32,
        }
    }

    /// Length of the write IV taken from the key block: the 4-byte implicit salt for AES-GCM,
    /// the whole 12-byte nonce mask for ChaCha20-Poly1305.
    pub fn fixed_iv_len(self) -> usize {
        match self {
            AeadKind::Aes128Gcm | AeadKind::Aes256Gcm => 4,
            AeadKind::Chacha20Poly1305 => 12,
        }
    }

    /// Bytes of explicit nonce at the start of every record fragment.
    pub fn explicit_nonce_len(self) -> usize {
        match self {
            AeadKind::Aes128Gcm | AeadKind::Aes256Gcm => 8,
            AeadKind::Chacha20Poly1305 => 0,
        }
    }

    /// Authentication tag length.
    pub const TAG_LEN: usize = 16;

    fn ring_algorithm(self) -> &'static aead::Algorithm {
        match self {
            AeadKind::Aes128Gcm => &aead::AES_128_GCM,
            AeadKind::Aes256Gcm => &aead::AES_256_GCM,
            AeadKind::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

/// What this module needs to know about a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuiteParams {
    pub aead: AeadKind,
    pub hash: PrfHash,
}

/// The parameters of the TLS 1.2 ECDHE AEAD suites iotls can decrypt, by IANA code; `None` for
/// every other suite.
pub fn suite_params(code: u16) -> Option<SuiteParams> {
    let (aead, hash) = match code {
        // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        0xc02b | 0xc02f => (AeadKind::Aes128Gcm, PrfHash::Sha256),
        // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        0xc02c | 0xc030 => (AeadKind::Aes256Gcm, PrfHash::Sha384),
        // TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        0xcca8 | 0xcca9 => (AeadKind::Chacha20Poly1305, PrfHash::Sha256),
        _ => return None,
    };
    Some(SuiteParams { aead, hash })
}

/// The TLS 1.2 PRF (RFC 5246 §5): `P_hash(secret, label ‖ seed)` truncated to `len` bytes.
pub fn prf(hash: PrfHash, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(hash.hmac_algorithm(), secret);
    let mut label_seed = Vec::with_capacity(label.len() + seed.len());
    label_seed.extend_from_slice(label);
    label_seed.extend_from_slice(seed);

    let mut out = Vec::with_capacity(len);
    // A(1) = HMAC(secret, label ‖ seed); A(i) = HMAC(secret, A(i-1)).
    let mut a = hmac::sign(&key, &label_seed);
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(&label_seed);
        let block = ctx.sign();
        let take = (len - out.len()).min(block.as_ref().len());
        out.extend_from_slice(&block.as_ref()[..take]);
        a = hmac::sign(&key, a.as_ref());
    }
    out
}

/// Hash of `data` with the suite's hash.
pub fn transcript_hash(hash: PrfHash, data: &[u8]) -> Vec<u8> {
    digest::digest(hash.digest_algorithm(), data)
        .as_ref()
        .to_vec()
}

/// The key material of one direction of a TLS 1.2 AEAD connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteKeys {
    pub key: Vec<u8>,
    /// Implicit IV: 4 bytes (AES-GCM) or 12 bytes (ChaCha20-Poly1305).
    pub iv: Vec<u8>,
}

/// The key block split into both directions (RFC 5246 §6.3). AEAD suites have no MAC keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBlock {
    /// Keys the client (device) encrypts with.
    pub client: WriteKeys,
    /// Keys the server (broker) encrypts with.
    pub server: WriteKeys,
}

/// `key_block = PRF(master_secret, "key expansion", server_random ‖ client_random)`, split into
/// client_write_key, server_write_key, client_write_IV, server_write_IV.
pub fn key_block(
    suite: SuiteParams,
    master_secret: &[u8],
    client_random: &[u8],
    server_random: &[u8],
) -> KeyBlock {
    let k = suite.aead.key_len();
    let iv = suite.aead.fixed_iv_len();
    let mut seed = Vec::with_capacity(64);
    seed.extend_from_slice(server_random);
    seed.extend_from_slice(client_random);
    let block = prf(
        suite.hash,
        master_secret,
        b"key expansion",
        &seed,
        2 * k + 2 * iv,
    );
    KeyBlock {
        client: WriteKeys {
            key: block[..k].to_vec(),
            iv: block[2 * k..2 * k + iv].to_vec(),
        },
        server: WriteKeys {
            key: block[k..2 * k].to_vec(),
            iv: block[2 * k + iv..].to_vec(),
        },
    }
}

/// `verify_data = PRF(master_secret, finished_label, Hash(handshake_messages))[0..12]`, where
/// `finished_label` is `client finished` or `server finished`.
pub fn verify_data(
    hash: PrfHash,
    master_secret: &[u8],
    finished_label: &str,
    transcript: &[u8],
) -> Vec<u8> {
    let h = transcript_hash(hash, transcript);
    prf(hash, master_secret, finished_label.as_bytes(), &h, 12)
}

/// Why a record could not be decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecryptError {
    /// The fragment is shorter than explicit nonce + tag.
    TooShort { len: usize, min: usize },
    /// The AEAD tag did not verify: wrong key, wrong sequence number, or altered bytes.
    BadTag,
    /// The key has the wrong length for the algorithm.
    BadKey,
}

impl std::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecryptError::TooShort { len, min } => write!(
                f,
                "the encrypted fragment is {len} bytes, shorter than the {min} bytes of nonce and tag"
            ),
            DecryptError::BadTag => f.write_str(
                "the authentication tag does not verify (wrong key or sequence number, or the bytes were altered)",
            ),
            DecryptError::BadKey => f.write_str("the derived key has the wrong length"),
        }
    }
}

impl std::error::Error for DecryptError {}

/// What protects one record: its sequence number, the nonce and additional data the AEAD takes,
/// and the tag it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLayout {
    pub seq: u64,
    /// The explicit part of the nonce, sent after the record header (AES-GCM: 8 bytes).
    pub explicit_nonce: Vec<u8>,
    pub nonce: [u8; 12],
    /// seq_num ‖ content type ‖ version ‖ plaintext length.
    pub aad: [u8; 13],
    /// The record's last 16 bytes.
    pub tag: Vec<u8>,
}

/// Record protection of one direction: decrypts (and, for tests, encrypts) TLS 1.2 AEAD records.
pub struct RecordCipher {
    kind: AeadKind,
    key: aead::LessSafeKey,
    iv: Vec<u8>,
}

impl std::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCipher")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl RecordCipher {
    /// A cipher for one direction; `None` if key or IV have the wrong length.
    pub fn new(kind: AeadKind, keys: &WriteKeys) -> Option<Self> {
        if keys.iv.len() != kind.fixed_iv_len() {
            return None;
        }
        let unbound = aead::UnboundKey::new(kind.ring_algorithm(), &keys.key).ok()?;
        Some(RecordCipher {
            kind,
            key: aead::LessSafeKey::new(unbound),
            iv: keys.iv.clone(),
        })
    }

    pub fn kind(&self) -> AeadKind {
        self.kind
    }

    fn nonce(&self, seq: u64, explicit: &[u8]) -> [u8; 12] {
        let mut n = [0u8; 12];
        match self.kind {
            AeadKind::Aes128Gcm | AeadKind::Aes256Gcm => {
                n[..4].copy_from_slice(&self.iv);
                n[4..].copy_from_slice(explicit);
            }
            AeadKind::Chacha20Poly1305 => {
                n.copy_from_slice(&self.iv);
                for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
                    *b ^= s;
                }
            }
        }
        n
    }

    fn aad(seq: u64, content_type: u8, version: [u8; 2], plain_len: usize) -> [u8; 13] {
        let mut a = [0u8; 13];
        a[..8].copy_from_slice(&seq.to_be_bytes());
        a[8] = content_type;
        a[9..11].copy_from_slice(&version);
        a[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
        a
    }

    /// The nonce, additional data and tag of a record fragment (the record without its header),
    /// as [`Self::decrypt`] uses them; `None` when the fragment is shorter than nonce and tag.
    pub fn layout(
        &self,
        seq: u64,
        content_type: u8,
        version: [u8; 2],
        fragment: &[u8],
    ) -> Option<RecordLayout> {
        let explicit = self.kind.explicit_nonce_len();
        let min = explicit + AeadKind::TAG_LEN;
        let plain_len = fragment.len().checked_sub(min)?;
        Some(RecordLayout {
            seq,
            explicit_nonce: fragment[..explicit].to_vec(),
            nonce: self.nonce(seq, &fragment[..explicit]),
            aad: Self::aad(seq, content_type, version, plain_len),
            tag: fragment[fragment.len() - AeadKind::TAG_LEN..].to_vec(),
        })
    }

    /// Decrypts a record fragment (the record without its 5-byte header). `seq` is the record's
    /// sequence number in its direction, counted from 0 after ChangeCipherSpec.
    pub fn decrypt(
        &self,
        seq: u64,
        content_type: u8,
        version: [u8; 2],
        fragment: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let explicit = self.kind.explicit_nonce_len();
        let min = explicit + AeadKind::TAG_LEN;
        if fragment.len() < min {
            return Err(DecryptError::TooShort {
                len: fragment.len(),
                min,
            });
        }
        let nonce = self.nonce(seq, &fragment[..explicit]);
        let plain_len = fragment.len() - min;
        let aad = Self::aad(seq, content_type, version, plain_len);
        let mut in_out = fragment[explicit..].to_vec();
        let plain = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut in_out,
            )
            .map_err(|_| DecryptError::BadTag)?;
        Ok(plain.to_vec())
    }

    /// Encrypts `plaintext` into a record fragment (explicit nonce ‖ ciphertext ‖ tag). For AES-GCM
    /// the explicit nonce is the big-endian sequence number. Used to test [`Self::decrypt`].
    pub fn encrypt(
        &self,
        seq: u64,
        content_type: u8,
        version: [u8; 2],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let explicit: Vec<u8> = match self.kind {
            AeadKind::Chacha20Poly1305 => Vec::new(),
            _ => seq.to_be_bytes().to_vec(),
        };
        let nonce = self.nonce(seq, &explicit);
        let aad = Self::aad(seq, content_type, version, plaintext.len());
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut in_out,
            )
            .map_err(|_| DecryptError::BadKey)?;
        let mut out = explicit;
        out.extend_from_slice(&in_out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{hex, unhex};

    // The TLS 1.2 PRF test vectors posted to the IETF TLS working group list,
    // https://www.ietf.org/mail-archive/web/tls/current/msg03416.html (also used by GnuTLS's PRF
    // tests); the SHA-256 one was re-checked here with
    // `openssl kdf -keylen 100 -kdfopt digest:SHA256 -kdfopt hexsecret:9bbe… -kdfopt seed:"test label" -kdfopt hexseed:a0ba… TLS1-PRF`.
    #[test]
    fn prf_sha256_matches_published_vector() {
        let secret = unhex("9bbe436ba940f017b17652849a71db35").unwrap();
        let seed = unhex("a0ba9f936cda311827a6f796ffd5198c").unwrap();
        let out = prf(PrfHash::Sha256, &secret, b"test label", &seed, 100);
        assert_eq!(
            hex(&out),
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a\
             6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab\
             4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701\
             87347b66"
        );
    }

    #[test]
    fn prf_sha384_matches_published_vector() {
        let secret = unhex("b80b733d6ceefcdc71566ea48e5567df").unwrap();
        let seed = unhex("cd665cf6a8447dd6ff8b27555edb7465").unwrap();
        let out = prf(PrfHash::Sha384, &secret, b"test label", &seed, 148);
        assert_eq!(
            hex(&out),
            "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd\
             e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd\
             8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425\
             9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6\
             91c8f3a26854308d5eaa3be85e0990703d73e56f"
        );
    }

    #[test]
    fn prf_short_output_is_prefix_of_long_output() {
        let long = prf(PrfHash::Sha256, b"k", b"l", b"s", 77);
        let short = prf(PrfHash::Sha256, b"k", b"l", b"s", 12);
        assert_eq!(&long[..12], &short[..]);
    }

    #[test]
    fn key_block_split_follows_rfc_order() {
        let suite = suite_params(0xc02b).unwrap();
        let master = [7u8; 48];
        let (cr, sr) = ([1u8; 32], [2u8; 32]);
        let kb = key_block(suite, &master, &cr, &sr);
        let mut seed = sr.to_vec();
        seed.extend_from_slice(&cr);
        let raw = prf(PrfHash::Sha256, &master, b"key expansion", &seed, 40);
        assert_eq!(kb.client.key, raw[0..16]);
        assert_eq!(kb.server.key, raw[16..32]);
        assert_eq!(kb.client.iv, raw[32..36]);
        assert_eq!(kb.server.iv, raw[36..40]);
    }

    fn round_trip(code: u16) {
        let suite = suite_params(code).unwrap();
        let kb = key_block(suite, &[9u8; 48], &[3u8; 32], &[4u8; 32]);
        let enc = RecordCipher::new(suite.aead, &kb.client).unwrap();
        let dec = RecordCipher::new(suite.aead, &kb.client).unwrap();
        let msg = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c";
        let frag = enc.encrypt(5, 23, [3, 3], msg).unwrap();
        assert_eq!(frag.len(), msg.len() + suite.aead.explicit_nonce_len() + 16);
        assert_eq!(dec.decrypt(5, 23, [3, 3], &frag).unwrap(), msg);
        // Wrong sequence number, wrong content type, an altered byte, the other direction's key:
        assert_eq!(dec.decrypt(6, 23, [3, 3], &frag), Err(DecryptError::BadTag));
        assert_eq!(dec.decrypt(5, 22, [3, 3], &frag), Err(DecryptError::BadTag));
        let mut bad = frag.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(dec.decrypt(5, 23, [3, 3], &bad), Err(DecryptError::BadTag));
        let other = RecordCipher::new(suite.aead, &kb.server).unwrap();
        assert_eq!(
            other.decrypt(5, 23, [3, 3], &frag),
            Err(DecryptError::BadTag)
        );
        assert!(matches!(
            dec.decrypt(5, 23, [3, 3], &frag[..10]),
            Err(DecryptError::TooShort { .. })
        ));
    }

    #[test]
    fn aes128gcm_round_trip() {
        round_trip(0xc02b);
    }

    #[test]
    fn aes256gcm_round_trip() {
        round_trip(0xc030);
    }

    #[test]
    fn chacha20_round_trip() {
        round_trip(0xcca9);
    }

    #[test]
    fn unsupported_suites_are_none() {
        assert!(suite_params(0x009c).is_none()); // TLS_RSA_WITH_AES_128_GCM_SHA256
        assert!(suite_params(0x1301).is_none()); // TLS 1.3
    }
}
