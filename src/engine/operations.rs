//! The lessons that are not one mutual-TLS 1.2 session: public-key basics, a CSR becoming a
//! certificate, the three ways to get a device identity, the files on a device, forward secrecy,
//! and a TLS 1.3 session for contrast.
//!
//! Each lesson runs real operations — ring, RustCrypto's `rsa`, rcgen, x509-parser, rustls's WebPKI
//! verifiers, a real rustls TLS 1.3 session — and records each as an [`Operation`] event with this
//! run's values. A verdict is the one the library returned; a deliberate failure (a tampered
//! message that does not verify, a chain checked against the wrong root) is recorded with
//! `expected: false`, and the trace's outcome is ok when every operation answered what the lesson
//! demonstrates. Private keys are never put in the trace: where one travels, its size is said.

use super::EngineError;
use crate::pki::{self, DefaultPki, BUTTON_SERIAL, BUTTON_THING};
use crate::trace::{
    Actor, Event, EventKind, Failure, FailureCode, OpValue, OpVerdict, Operation, OperationKind,
    Outcome, Phase, Trace, FORMAT,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, CertifiedIssuer,
    DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData, PKCS_ECDSA_P256_SHA256,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::sync::Arc;
use std::time::Instant;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The lessons made of operations, by id (`operations = "<id>"` in a walkthrough).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operations {
    PublicKeyBasics,
    CsrToCertificate,
    IdentityOptions,
    FilesOnTheDevice,
    ForwardSecrecy,
    Tls13Contrast,
}

impl Operations {
    pub const ALL: [Operations; 6] = [
        Operations::PublicKeyBasics,
        Operations::CsrToCertificate,
        Operations::IdentityOptions,
        Operations::FilesOnTheDevice,
        Operations::ForwardSecrecy,
        Operations::Tls13Contrast,
    ];

    /// The id, as in a walkthrough file and on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Operations::PublicKeyBasics => "public-key-basics",
            Operations::CsrToCertificate => "csr-to-certificate",
            Operations::IdentityOptions => "identity-options",
            Operations::FilesOnTheDevice => "files-on-the-device",
            Operations::ForwardSecrecy => "forward-secrecy",
            Operations::Tls13Contrast => "tls13-contrast",
        }
    }

    /// What the lesson shows, in one line.
    pub fn title(self) -> &'static str {
        match self {
            Operations::PublicKeyBasics => {
                "key pairs: sign with the private key, verify with the public; RSA encryption"
            }
            Operations::CsrToCertificate => {
                "the device's key and CSR become a certificate; the key never leaves the device"
            }
            Operations::IdentityOptions => {
                "three ways to a device identity: CA-made, your own CSR, your own registered CA"
            }
            Operations::FilesOnTheDevice => {
                "the device's certificate, private key and broker root: what each is for"
            }
            Operations::ForwardSecrecy => {
                "RSA key transport vs. ephemeral ECDHE: what a leaked server key reveals"
            }
            Operations::Tls13Contrast => {
                "a TLS 1.3 mutual-TLS session: the certificates travel encrypted"
            }
        }
    }

    /// The lesson with this id, if there is one.
    pub fn from_id(id: &str) -> Option<Operations> {
        Operations::ALL.into_iter().find(|o| o.id() == id)
    }
}

/// Run a lesson's operations for real and return their trace (format `iotls-trace/2`, `scenario`
/// = the id). Blocking; the RSA lessons generate a 2048-bit key (well under a second in a release
/// build), `tls13-contrast` runs a TLS 1.3 and a TLS 1.2 session on loopback.
pub fn run(kind: Operations) -> Result<Trace, EngineError> {
    let mut l = Lesson::new();
    match kind {
        Operations::PublicKeyBasics => public_key_basics(&mut l)?,
        Operations::CsrToCertificate => csr_to_certificate(&mut l)?,
        Operations::IdentityOptions => identity_options(&mut l)?,
        Operations::FilesOnTheDevice => files_on_the_device(&mut l)?,
        Operations::ForwardSecrecy => forward_secrecy(&mut l)?,
        Operations::Tls13Contrast => tls13_contrast(&mut l)?,
    }
    Ok(l.finish(kind))
}

/// The operations recorded so far, in order.
struct Lesson {
    start: Instant,
    started_unix: u64,
    part: String,
    events: Vec<Event>,
    rng: SystemRandom,
}

impl Lesson {
    fn new() -> Self {
        Lesson {
            start: Instant::now(),
            started_unix: super::unix_now(),
            part: String::new(),
            events: Vec::new(),
            rng: SystemRandom::new(),
        }
    }

    fn part(&mut self, part: &str) {
        self.part = part.to_string();
    }

    fn add(&mut self, op: Op) {
        let mut o = op.0;
        o.part = self.part.clone();
        self.events.push(Event {
            seq: self.events.len() as u32,
            t_us: self.start.elapsed().as_micros() as u64,
            phase: Phase::Operation,
            side: o.actor.side(),
            kind: EventKind::Operation(Box::new(o)),
        });
    }

    fn random(&self, n: usize) -> Result<Vec<u8>, EngineError> {
        let mut b = vec![0u8; n];
        self.rng
            .fill(&mut b)
            .map_err(|_| fail("the system random generator failed"))?;
        Ok(b)
    }

    fn finish(self, kind: Operations) -> Trace {
        let ops: Vec<&Operation> = self
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Operation(o) => Some(o.as_ref()),
                _ => None,
            })
            .collect();
        let checks = ops.iter().filter(|o| o.verdict.is_some()).count();
        let deliberate = ops
            .iter()
            .filter(|o| o.verdict.as_ref().is_some_and(|v| !v.expected && !v.ok))
            .count();
        let first_wrong = ops.iter().find(|o| !o.as_expected());
        let (ok, summary, failure) = match first_wrong {
            None => (
                true,
                format!(
                    "{} operations, {checks} verdicts, each as the lesson shows \
                     ({deliberate} deliberate {})",
                    ops.len(),
                    if deliberate == 1 {
                        "failure"
                    } else {
                        "failures"
                    }
                ),
                None,
            ),
            Some(o) => {
                let v = o.verdict.as_ref();
                let detail = format!(
                    "{} by the {} ({}): {} — {}",
                    o.op.name(),
                    o.actor.name(),
                    o.library,
                    o.summary,
                    v.map(|v| v.reason.as_str()).unwrap_or("")
                );
                (
                    false,
                    format!("{}: not as the lesson expects: {detail}", kind.id()),
                    Some(Failure {
                        detail: Some(detail),
                        ..Failure::new(FailureCode::Other)
                    }),
                )
            }
        };
        Trace {
            format: FORMAT.to_string(),
            scenario: kind.id().to_string(),
            started_unix: self.started_unix,
            tls: None,
            outcome: Outcome {
                ok,
                phase: Phase::Operation,
                summary,
                failure,
                mqtt: Vec::new(),
                tls_completed: false,
            },
            certificates: Vec::new(),
            records: Vec::new(),
            events: self.events,
            replay: None,
            words: Default::default(),
        }
    }
}

/// An operation being built.
struct Op(Operation);

impl Op {
    fn new(op: OperationKind, actor: Actor, library: &str, summary: impl Into<String>) -> Op {
        Op(Operation {
            op,
            actor,
            library: library.to_string(),
            part: String::new(),
            summary: summary.into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            verdict: None,
            explain: String::new(),
        })
    }
    fn input(mut self, v: OpValue) -> Op {
        self.0.inputs.push(v);
        self
    }
    fn output(mut self, v: OpValue) -> Op {
        self.0.outputs.push(v);
        self
    }
    /// `ok`: what the library answered; `expected`: what the lesson demonstrates.
    fn verdict(mut self, ok: bool, expected: bool, reason: impl Into<String>) -> Op {
        self.0.verdict = Some(OpVerdict {
            ok,
            expected,
            reason: reason.into(),
        });
        self
    }
    fn explain(mut self, text: impl Into<String>) -> Op {
        self.0.explain = text.into();
        self
    }
}

fn fail(msg: impl Into<String>) -> EngineError {
    EngineError::Pki(msg.into())
}

fn rc(e: rcgen::Error) -> EngineError {
    fail(format!("rcgen: {e}"))
}

fn text(name: &str, t: impl Into<String>) -> OpValue {
    OpValue::text(name, t)
}

fn bytes(name: &str, b: impl Into<Vec<u8>>) -> OpValue {
    OpValue::bytes(name, b)
}

/// The order a button press publishes (the same JSON as the tour's PUBLISH).
fn pizza_order() -> Vec<u8> {
    super::scenario::click_payload(BUTTON_SERIAL, "SINGLE")
}

// ---------------------------------------------------------------------------------------------
// 1. public-key-basics

fn public_key_basics(l: &mut Lesson) -> Result<(), EngineError> {
    l.part("Sign and verify: ECDSA P-256 (ring)");
    let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &l.rng)
        .map_err(|_| fail("ring could not generate a P-256 key"))?;
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &l.rng)
        .map_err(|_| fail("ring could not load the key it generated"))?;
    let public = pair.public_key().as_ref().to_vec();
    l.add(
        Op::new(
            OperationKind::GenerateKey,
            Actor::Device,
            "ring",
            "the button generates an ECDSA P-256 key pair",
        )
        .output(bytes("public key (uncompressed point)", public.clone()))
        .output(text(
            "private key",
            format!(
                "PKCS#8, {} bytes: stays inside the button, never shown",
                pkcs8.as_ref().len()
            ),
        ))
        .explain(
            "A key pair is two numbers that belong together. The private key stays with its \
             owner; the public key (65 bytes: 04, then x and y of a point on the P-256 curve) \
             may be given to anyone.",
        ),
    );

    let order = pizza_order();
    let sig = pair
        .sign(&l.rng, &order)
        .map_err(|_| fail("ring could not sign"))?
        .as_ref()
        .to_vec();
    l.add(
        Op::new(
            OperationKind::Sign,
            Actor::Device,
            "ring",
            "the button signs its pizza order with its private key",
        )
        .input(text("message", String::from_utf8_lossy(&order)))
        .output(bytes("signature (ASN.1 DER: r and s)", sig.clone()))
        .explain(
            "Signing: ring hashes the message with SHA-256 and computes a signature from that \
             hash and the PRIVATE key. Only the holder of the private key can make it.",
        ),
    );

    let verifier = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &public);
    let r = verifier.verify(&order, &sig);
    l.add(
        Op::new(
            OperationKind::Verify,
            Actor::Broker,
            "ring",
            "the shop verifies the order's signature with the button's public key",
        )
        .input(text("message", String::from_utf8_lossy(&order)))
        .input(bytes("signature", sig.clone()))
        .input(bytes("public key", public.clone()))
        .verdict(r.is_ok(), true, ring_answer(&r, "signature valid"))
        .explain(
            "Verifying: anyone with the PUBLIC key can check the signature. Valid means two \
             things: the message is exactly what was signed, and the signer held the private \
             key.",
        ),
    );

    // One bit of one byte changes: "SINGLE" becomes "SINGLD" … or the serial changes.
    let mut tampered = order.clone();
    let at = order
        .windows(6)
        .position(|w| w == b"SINGLE")
        .map(|p| p + 5)
        .unwrap_or(order.len() / 2);
    tampered[at] ^= 0x01;
    l.add(
        Op::new(
            OperationKind::Tamper,
            Actor::Attacker,
            "iotls",
            format!("someone flips one bit of byte {at} of the order"),
        )
        .input(text("message", String::from_utf8_lossy(&order)))
        .output(text("tampered message", String::from_utf8_lossy(&tampered)))
        .output(text(
            "changed byte",
            format!("offset {at}: {:#04x} → {:#04x}", order[at], tampered[at]),
        ))
        .explain(
            "On the way to the shop, someone changes a single bit of the order and keeps the \
             original signature.",
        ),
    );
    let r = verifier.verify(&tampered, &sig);
    l.add(
        Op::new(
            OperationKind::Verify,
            Actor::Broker,
            "ring",
            "the shop verifies the tampered order with the same signature and public key",
        )
        .input(text("message", String::from_utf8_lossy(&tampered)))
        .input(bytes("signature", sig))
        .input(bytes("public key", public))
        .verdict(r.is_ok(), false, ring_answer(&r, "signature valid"))
        .explain(
            "The signature covered the original bytes; the SHA-256 of the changed message is \
             different, so ring rejects it. Any change, even one bit, breaks the signature.",
        ),
    );

    l.part("Encrypt and decrypt: RSA 2048, OAEP-SHA256 (rsa crate)");
    let (rsa_key, rsa_pub) = rsa_generate()?;
    l.add(
        Op::new(
            OperationKind::GenerateKey,
            Actor::Broker,
            "rsa",
            "the shop generates an RSA 2048 key pair",
        )
        .output(bytes(
            "public key (SubjectPublicKeyInfo DER)",
            rsa_pub.clone(),
        ))
        .output(text(
            "private key",
            "2048-bit RSA: stays with the shop, never shown",
        ))
        .explain(
            "RSA can do what ECDSA cannot: encrypt. The shop publishes its public key (modulus n \
             and exponent e) and keeps the private exponent.",
        ),
    );
    let secret = b"deliver to: 12 Elm Street, ring twice".to_vec();
    let ct = rsa_key
        .to_public_key()
        .encrypt(
            &mut rsa::rand_core::OsRng,
            rsa::Oaep::new::<rsa::sha2::Sha256>(),
            &secret,
        )
        .map_err(|e| fail(format!("rsa: encrypting failed: {e}")))?;
    l.add(
        Op::new(
            OperationKind::Encrypt,
            Actor::Device,
            "rsa",
            "the button encrypts the delivery address to the shop's PUBLIC key",
        )
        .input(text("plaintext", String::from_utf8_lossy(&secret)))
        .input(bytes("public key", rsa_pub))
        .output(bytes("ciphertext (RSA-OAEP, 256 bytes)", ct.clone()))
        .explain(
            "Encrypting: anyone can encrypt to the public key (OAEP adds random padding, so the \
             same text encrypts differently each time); only the private key decrypts.",
        ),
    );
    let dec = rsa_key.decrypt(rsa::Oaep::new::<rsa::sha2::Sha256>(), &ct);
    let plain = dec.as_ref().map(|d| d.to_vec()).unwrap_or_default();
    l.add(
        Op::new(
            OperationKind::Decrypt,
            Actor::Broker,
            "rsa",
            "the shop decrypts with its PRIVATE key",
        )
        .input(bytes("ciphertext", ct))
        .output(text("plaintext", String::from_utf8_lossy(&plain)))
        .verdict(
            dec.is_ok(),
            true,
            match &dec {
                Ok(_) => "decrypted".to_string(),
                Err(e) => format!("decryption error: {e}"),
            },
        )
        .explain("Only the holder of the private key can undo the encryption."),
    );
    let equal = plain == secret;
    l.add(
        Op::new(
            OperationKind::Compare,
            Actor::Iotls,
            "iotls",
            "iotls compares the decrypted text with the original",
        )
        .input(text("original", String::from_utf8_lossy(&secret)))
        .input(text("decrypted", String::from_utf8_lossy(&plain)))
        .verdict(equal, true, if equal { "equal" } else { "different" })
        .explain(
            "The two directions, side by side:\n\
             - sign with the PRIVATE key, verify with the PUBLIC key: proves who wrote it and \
             that it was not changed (what TLS's CertificateVerify does);\n\
             - encrypt with the PUBLIC key, decrypt with the PRIVATE key: only the key holder \
             can read it (what old TLS RSA key transport did; see forward-secrecy).",
        ),
    );
    Ok(())
}

fn ring_answer(r: &Result<(), ring::error::Unspecified>, ok: &str) -> String {
    match r {
        Ok(()) => ok.to_string(),
        Err(_) => "signature invalid (ring: Unspecified)".to_string(),
    }
}

fn rsa_generate() -> Result<(rsa::RsaPrivateKey, Vec<u8>), EngineError> {
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| fail(format!("rsa: generating a 2048-bit key failed: {e}")))?;
    let spki = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| fail(format!("rsa: encoding the public key failed: {e}")))?
        .as_bytes()
        .to_vec();
    Ok((key, spki))
}

// ---------------------------------------------------------------------------------------------
// CAs and certificates (rcgen), described with x509-parser

fn dn(org: &str, cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, DnValue::Utf8String(org.into()));
    d.push(DnType::CommonName, DnValue::Utf8String(cn.into()));
    d
}

fn ca_params(org: &str, cn: &str, pathlen: Option<u8>) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(org, cn);
    p.is_ca = IsCa::Ca(match pathlen {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(3650);
    p
}

fn new_key() -> Result<KeyPair, EngineError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rc)
}

/// The shop's root CA and its issuing CA.
struct ShopCa {
    root: CertifiedIssuer<'static, KeyPair>,
    issuing: CertifiedIssuer<'static, KeyPair>,
}

fn shop_ca() -> Result<ShopCa, EngineError> {
    let root = CertifiedIssuer::self_signed(
        ca_params("Pizza Shop", "Pizza Shop Root CA", None),
        new_key()?,
    )
    .map_err(rc)?;
    let issuing = CertifiedIssuer::signed_by(
        ca_params("Pizza Shop", "Pizza Shop Issuing CA 1", Some(0)),
        new_key()?,
        &root,
    )
    .map_err(rc)?;
    Ok(ShopCa { root, issuing })
}

/// What a device asks for in its CSR: its thing name and the serial printed on it.
fn device_request() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut d = dn("Pizza Shop customers", BUTTON_THING);
    d.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::Utf8String(BUTTON_SERIAL.into()),
    );
    p.distinguished_name = d;
    p
}

/// What the CA decides for a device certificate: validity, key usage, clientAuth.
fn ca_policy(p: &mut CertificateParams) -> Result<(), EngineError> {
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(365);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p.is_ca = IsCa::ExplicitNoCa;
    let serial = SystemRandom::new();
    let mut s = [0u8; 16];
    serial
        .fill(&mut s)
        .map_err(|_| fail("the system random generator failed"))?;
    s[0] &= 0x7f;
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&s));
    Ok(())
}

/// The public key (SubjectPublicKeyInfo DER) of a certificate.
fn cert_spki(der: &[u8]) -> Result<Vec<u8>, EngineError> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| fail(format!("x509-parser cannot read the certificate: {e}")))?;
    Ok(c.tbs_certificate.subject_pki.raw.to_vec())
}

/// The fields a learner checks, as x509-parser reads them (through `pki::describe`).
fn describe_values(der: &[u8], now_unix: u64) -> Vec<OpValue> {
    let c = pki::describe(der, Vec::new(), now_unix as i64);
    let mut v = vec![
        text("subject", c.subject),
        text("issuer", c.issuer),
        text("serial", c.serial),
        text("valid", format!("{} to {}", c.not_before, c.not_after)),
        text("key", c.key),
        text("signature algorithm", c.signature_algorithm),
    ];
    if let Some(bc) = c.basic_constraints {
        v.push(text("basic constraints", bc));
    }
    if !c.key_usage.is_empty() {
        v.push(text("key usage", c.key_usage.join(", ")));
    }
    if !c.extended_key_usage.is_empty() {
        v.push(text("extended key usage", c.extended_key_usage.join(", ")));
    }
    if !c.san.is_empty() {
        v.push(text("subject alt names", c.san.join(", ")));
    }
    v.push(text("sha256 (certificate id)", c.sha256));
    v
}

/// rustls's WebPKI client verifier, as the broker checks a device's chain.
fn verify_client_chain(
    chain: &[CertificateDer<'static>],
    anchors: &[CertificateDer<'static>],
) -> Result<Result<(), String>, EngineError> {
    use rustls::server::WebPkiClientVerifier;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for a in anchors {
        roots
            .add(a.clone())
            .map_err(|e| EngineError::tls("trust anchor", e))?;
    }
    let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| EngineError::tls("client verifier", e))?;
    let Some((leaf, rest)) = chain.split_first() else {
        return Err(fail("an empty chain"));
    };
    Ok(v.verify_client_cert(leaf, rest, UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string()))
}

/// rustls's WebPKI server verifier, as the device checks the broker's chain.
fn verify_server_chain(
    chain: &[CertificateDer<'static>],
    anchors: &[CertificateDer<'static>],
    name: &str,
) -> Result<Result<(), String>, EngineError> {
    use rustls::client::WebPkiServerVerifier;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for a in anchors {
        roots
            .add(a.clone())
            .map_err(|e| EngineError::tls("trust anchor", e))?;
    }
    let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| EngineError::tls("server verifier", e))?;
    let Some((leaf, rest)) = chain.split_first() else {
        return Err(fail("an empty chain"));
    };
    let server = ServerName::try_from(name.to_string())
        .map_err(|_| EngineError::ServerName(name.to_string()))?;
    Ok(
        v.verify_server_cert(leaf, rest, &server, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string()),
    )
}

fn chain_values(
    chain: &[CertificateDer<'static>],
    anchors: &[CertificateDer<'static>],
) -> Vec<OpValue> {
    let mut v: Vec<OpValue> = chain
        .iter()
        .enumerate()
        .map(|(i, c)| text(&format!("chain[{i}]"), pki::describe_brief(c).subject))
        .collect();
    v.extend(
        anchors
            .iter()
            .map(|a| text("trust anchor", pki::describe_brief(a).subject)),
    );
    v
}

// ---------------------------------------------------------------------------------------------
// 2. csr-to-certificate

fn csr_to_certificate(l: &mut Lesson) -> Result<(), EngineError> {
    l.part("On the device: a key pair and a CSR (rcgen)");
    let key = new_key()?;
    let public = key.subject_public_key_info();
    l.add(
        Op::new(
            OperationKind::GenerateKey,
            Actor::Device,
            "rcgen",
            "the button generates its ECDSA P-256 key pair",
        )
        .output(bytes(
            "public key (SubjectPublicKeyInfo DER)",
            public.clone(),
        ))
        .output(text(
            "private key",
            format!(
                "PKCS#8, {} bytes: generated on the device, stays there",
                key.serialize_der().len()
            ),
        ))
        .explain("The device makes its own key pair; the private key never leaves it."),
    );
    let csr = device_request().serialize_request(&key).map_err(rc)?;
    let csr_der = csr.der().to_vec();
    l.add(
        Op::new(
            OperationKind::CreateCsr,
            Actor::Device,
            "rcgen",
            "the button writes a certificate signing request and signs it with its private key",
        )
        .input(text(
            "subject asked for",
            format!("O=Pizza Shop customers, CN={BUTTON_THING}, serialNumber={BUTTON_SERIAL}"),
        ))
        .input(bytes("public key", public.clone()))
        .output(bytes("CSR (PKCS#10 DER)", csr_der.clone()))
        .explain(
            "A CSR holds the identity asked for and the PUBLIC key, signed with the private key. \
             It contains no secret: it can be mailed, uploaded, printed.",
        ),
    );

    l.part("At the CA: check the CSR, sign a certificate");
    let parsed = x509_parser::certification_request::X509CertificationRequest::from_der(&csr_der)
        .map_err(|e| fail(format!("x509-parser cannot read the CSR: {e}")))?
        .1;
    let pop = parsed.verify_signature();
    let info = &parsed.certification_request_info;
    l.add(
        Op::new(
            OperationKind::InspectCsr,
            Actor::Ca,
            "x509-parser",
            "the CA reads the CSR and checks its signature",
        )
        .input(bytes("CSR", csr_der.clone()))
        .output(text("subject", info.subject.to_string()))
        .output(bytes("public key", info.subject_pki.raw.to_vec()))
        .verdict(
            pop.is_ok(),
            true,
            match &pop {
                Ok(()) => "CSR signature valid: proof of possession".to_string(),
                Err(e) => format!("CSR signature invalid: {e}"),
            },
        )
        .explain(
            "The CSR's signature verifies with the public key inside it: whoever sent it holds \
             the matching private key (proof of possession). A real CA would now also check that \
             the requester may have this name.",
        ),
    );
    let ca = shop_ca()?;
    let mut req = CertificateSigningRequestParams::from_der(&csr_der.clone().into()).map_err(rc)?;
    ca_policy(&mut req.params)?;
    let cert = req.signed_by(&ca.issuing).map_err(rc)?;
    let cert_der = cert.der().to_vec();
    l.add(
        Op::new(
            OperationKind::IssueCertificate,
            Actor::Ca,
            "rcgen",
            "the issuing CA signs a certificate for the CSR's subject and public key",
        )
        .input(bytes("CSR", csr_der.clone()))
        .input(text(
            "issuer",
            pki::describe_brief(ca.issuing.der()).subject,
        ))
        .input(bytes("issuing CA certificate", ca.issuing.der().to_vec()))
        .input(text(
            "the CA's own choices",
            "validity 1 year, key usage digitalSignature, EKU clientAuth, random serial",
        ))
        .output(bytes("certificate (DER)", cert_der.clone()))
        .explain(
            "The CA copies the subject and the public key from the CSR, adds what it decides \
             itself, and signs the whole with its own private key. Anyone holding the CA's \
             certificate can check that signature.",
        ),
    );

    l.part("The certificate: what it says");
    let mut op = Op::new(
        OperationKind::InspectCertificate,
        Actor::Iotls,
        "x509-parser",
        "iotls reads the new certificate",
    )
    .input(bytes("certificate", cert_der.clone()));
    for v in describe_values(&cert_der, l.started_unix) {
        op = op.output(v);
    }
    l.add(op.explain(
        "Subject as asked for, issuer = the CA, a serial the CA chose, a validity period, and \
         extended key usage clientAuth: this certificate may identify a TLS client.",
    ));
    let cert_key = cert_spki(&cert_der)?;
    let csr_key = info.subject_pki.raw.to_vec();
    let same = cert_key == csr_key && csr_key == public;
    l.add(
        Op::new(
            OperationKind::Compare,
            Actor::Iotls,
            "iotls",
            "iotls compares the public keys of the device, the CSR and the certificate",
        )
        .input(bytes("device's public key", public))
        .input(bytes("CSR's public key", csr_key))
        .input(bytes("certificate's public key", cert_key))
        .verdict(
            same,
            true,
            if same { "all three equal" } else { "different" },
        )
        .explain(
            "The certificate carries the device's own public key. The CA never saw the private \
             key: it never left the device, and only the device can prove it owns this \
             certificate.",
        ),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. identity-options

fn identity_options(l: &mut Lesson) -> Result<(), EngineError> {
    let ca = shop_ca()?;
    let shop_root = vec![ca.root.der().clone()];

    l.part("(a) The CA makes the key and the certificate");
    let key_a = new_key()?;
    let mut pa = device_request();
    ca_policy(&mut pa)?;
    l.add(
        Op::new(
            OperationKind::GenerateKey,
            Actor::Ca,
            "rcgen",
            "the CA generates a key pair for the button",
        )
        .output(bytes("public key", key_a.subject_public_key_info()))
        .output(text(
            "private key",
            format!(
                "PKCS#8, {} bytes, made at the CA",
                key_a.serialize_der().len()
            ),
        ))
        .explain("The private key is born at the CA, not on the device."),
    );
    let cert_a = pa.signed_by(&key_a, &ca.issuing).map_err(rc)?;
    l.add(
        Op::new(
            OperationKind::IssueCertificate,
            Actor::Ca,
            "rcgen",
            "the CA signs the certificate for that key",
        )
        .output(bytes("certificate", cert_a.der().to_vec()))
        .explain("Like AWS IoT's \"create certificate\": one click, key and certificate."),
    );
    l.add(
        Op::new(
            OperationKind::Transfer,
            Actor::Ca,
            "iotls",
            "the certificate AND the private key travel from the CA to the device",
        )
        .output(text("certificate", format!("{} bytes", cert_a.der().len())))
        .output(text(
            "private key",
            format!(
                "{} bytes — travelled, so the CA and the download path saw it",
                key_a.serialize_der().len()
            ),
        ))
        .explain(
            "Simple, but the private key had to travel: whoever could read it on the way, or \
             at the CA, can be this device.",
        ),
    );
    let chain_a = vec![cert_a.der().clone(), ca.issuing.der().clone()];
    chain_check(
        l,
        &chain_a,
        &shop_root,
        true,
        "the broker verifies (a)'s chain",
    )?;

    l.part("(b) Your own CSR: the key never leaves the device");
    let key_b = new_key()?;
    l.add(
        Op::new(
            OperationKind::GenerateKey,
            Actor::Device,
            "rcgen",
            "the device generates its key pair",
        )
        .output(bytes("public key", key_b.subject_public_key_info()))
        .output(text("private key", "stays on the device, never shown"))
        .explain("The private key is born on the device."),
    );
    let csr_b = device_request().serialize_request(&key_b).map_err(rc)?;
    let csr_b_der = csr_b.der().to_vec();
    l.add(
        Op::new(
            OperationKind::CreateCsr,
            Actor::Device,
            "rcgen",
            "the device sends a CSR (public key and name, signed)",
        )
        .output(bytes("CSR", csr_b_der.clone()))
        .explain("Only public information leaves the device."),
    );
    let mut rb =
        CertificateSigningRequestParams::from_der(&csr_b_der.clone().into()).map_err(rc)?;
    ca_policy(&mut rb.params)?;
    let cert_b = rb.signed_by(&ca.issuing).map_err(rc)?;
    l.add(
        Op::new(
            OperationKind::IssueCertificate,
            Actor::Ca,
            "rcgen",
            "the CA checks the CSR's signature and signs a certificate",
        )
        .input(bytes("CSR", csr_b_der))
        .output(bytes("certificate", cert_b.der().to_vec()))
        .explain(
            "rcgen refuses a CSR whose signature does not verify; this one did. Only the \
             certificate goes back to the device.",
        ),
    );
    let chain_b = vec![cert_b.der().clone(), ca.issuing.der().clone()];
    chain_check(
        l,
        &chain_b,
        &shop_root,
        true,
        "the broker verifies (b)'s chain",
    )?;

    l.part("(c) Your own CA, registered with the broker");
    let own = CertifiedIssuer::self_signed(
        ca_params("Button Factory", "Button Factory CA", Some(0)),
        new_key()?,
    )
    .map_err(rc)?;
    l.add(
        Op::new(
            OperationKind::IssueCertificate,
            Actor::OwnCa,
            "rcgen",
            "the button maker creates its own CA (self-signed)",
        )
        .output(bytes("CA certificate", own.der().to_vec()))
        .explain(
            "A manufacturer runs its own CA and gives each button an identity on the \
             production line.",
        ),
    );
    let key_c = new_key()?;
    let csr_c = device_request().serialize_request(&key_c).map_err(rc)?;
    let mut rcq =
        CertificateSigningRequestParams::from_der(&csr_c.der().to_vec().into()).map_err(rc)?;
    ca_policy(&mut rcq.params)?;
    let cert_c = rcq.signed_by(&own).map_err(rc)?;
    l.add(
        Op::new(
            OperationKind::IssueCertificate,
            Actor::OwnCa,
            "rcgen",
            "on the line, the button makes a key and a CSR; the maker's CA signs it",
        )
        .input(bytes("CSR", csr_c.der().to_vec()))
        .output(bytes("certificate", cert_c.der().to_vec()))
        .explain("The key stays in the button here too; the maker's CA signs."),
    );
    let chain_c = vec![cert_c.der().clone()];
    chain_check(
        l,
        &chain_c,
        &shop_root,
        false,
        "before registration: the broker verifies (c)'s chain against the shop's root only",
    )?;
    l.add(
        Op::new(
            OperationKind::Transfer,
            Actor::OwnCa,
            "iotls",
            "the maker registers its CA certificate with the broker",
        )
        .output(bytes("registered CA certificate", own.der().to_vec()))
        .explain(
            "Registering tells the broker: certificates this CA signs are devices of mine \
             (AWS IoT: register CA certificate, with a proof that you hold its key).",
        ),
    );
    chain_check(
        l,
        &chain_c,
        &[own.der().clone()],
        true,
        "after registration: the broker verifies (c)'s chain against the registered CA",
    )?;
    Ok(())
}

/// A chain check through rustls's WebPKI client verifier, as the broker makes it.
fn chain_check(
    l: &mut Lesson,
    chain: &[CertificateDer<'static>],
    anchors: &[CertificateDer<'static>],
    expected: bool,
    summary: &str,
) -> Result<(), EngineError> {
    let r = verify_client_chain(chain, anchors)?;
    let mut op = Op::new(
        OperationKind::VerifyChain,
        Actor::Broker,
        "rustls (webpki)",
        summary,
    );
    for v in chain_values(chain, anchors) {
        op = op.input(v);
    }
    let reason = match &r {
        Ok(()) => "chain valid: leads to the trust anchor, clientAuth allowed".to_string(),
        Err(e) => e.clone(),
    };
    let explain = if expected {
        "The broker walks the chain: each signature checks with the issuer's public key, up to \
         a certificate it trusts."
    } else {
        "The broker trusts only what it was told to trust: a CA it has never heard of is \
         refused (TLS alert unknown_ca)."
    };
    l.add(op.verdict(r.is_ok(), expected, reason).explain(explain));
    Ok(())
}

/// A check of the broker's chain (for the name `localhost`) through rustls's WebPKI server
/// verifier, as the device makes it; `expected`: whether the lesson shows it passing.
fn device_chain_check(
    l: &mut Lesson,
    chain: &[CertificateDer<'static>],
    anchors: &[CertificateDer<'static>],
    expected: bool,
    summary: &str,
    explain: &str,
) -> Result<(), EngineError> {
    let r = verify_server_chain(chain, anchors, "localhost")?;
    let mut op = Op::new(
        OperationKind::VerifyChain,
        Actor::Device,
        "rustls (webpki)",
        summary,
    );
    for v in chain_values(chain, anchors) {
        op = op.input(v);
    }
    let ok = r.is_ok();
    let reason = match r {
        Ok(()) if expected => "chain valid, name localhost matches".to_string(),
        Ok(()) => "chain valid".to_string(),
        Err(e) => e,
    };
    l.add(op.verdict(ok, expected, reason).explain(explain));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. files-on-the-device

fn files_on_the_device(l: &mut Lesson) -> Result<(), EngineError> {
    // The files as `iotls pki init` writes them, read back from disk, then removed.
    let generated = DefaultPki::generate()?;
    let dir = std::env::temp_dir().join(format!(
        "iotls-operations-{}-{}",
        std::process::id(),
        l.start.elapsed().as_nanos()
    ));
    let read_back = write_and_read(&generated, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let files = read_back?;
    let p = &files.pki;
    let now = l.started_unix;

    l.part("button.pem: the device's certificate (and its issuing CA)");
    let mut op = Op::new(
        OperationKind::InspectCertificate,
        Actor::Device,
        "x509-parser",
        "button.pem, certificate 1: the device's own certificate",
    )
    .input(text(
        "file",
        format!(
            "button.pem: {} certificates, {} bytes of PEM, mode {}",
            p.button.chain.len(),
            files.sizes[0],
            files.modes[0]
        ),
    ))
    .input(bytes("certificate", p.button.leaf().to_vec()));
    for v in describe_values(p.button.leaf(), now) {
        op = op.output(v);
    }
    l.add(op.explain(
        "What the device SENDS in its Certificate message: who it is (the serial in the subject \
         is what the policy uses) and its public key. Missing: the broker gets no certificate \
         and refuses the handshake (certificate_required). The issuing CA's certificate follows \
         it in the file so the broker can complete the chain.",
    ));

    l.part("button.key: the device's private key");
    let key_der = match &p.button.key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => return Err(fail("the button's key is not PKCS#8")),
    };
    let provider = rustls::crypto::ring::default_provider();
    let loaded = provider
        .key_provider
        .load_private_key(p.button.key.clone_key())
        .map_err(|e| EngineError::tls("device key", e))?;
    let key_pub = loaded
        .public_key()
        .map(|k| k.as_ref().to_vec())
        .unwrap_or_default();
    l.add(
        Op::new(
            OperationKind::InspectKey,
            Actor::Device,
            "rustls (ring)",
            "button.key: an ECDSA P-256 private key in PKCS#8",
        )
        .input(text(
            "file",
            format!(
                "button.key: {} bytes of PEM, mode {} (pki init's own writer); never shown",
                files.sizes[1], files.modes[1]
            ),
        ))
        .output(text("algorithm", format!("{:?}", loaded.algorithm())))
        .output(bytes(
            "its public half (SubjectPublicKeyInfo)",
            key_pub.clone(),
        ))
        .explain(
            "The one secret on the device: it signs the handshake (CertificateVerify). \
             Missing: the device cannot prove it owns its certificate. Leaked: anyone can be \
             this button until the certificate is revoked or deactivated.",
        ),
    );
    let order = pizza_order();
    let pair =
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &key_der, &l.rng)
            .map_err(|_| fail("ring cannot read the button's key"))?;
    let sig = pair
        .sign(&l.rng, &order)
        .map_err(|_| fail("ring could not sign"))?
        .as_ref()
        .to_vec();
    l.add(
        Op::new(
            OperationKind::Sign,
            Actor::Device,
            "ring",
            "the device signs a test message with button.key",
        )
        .input(text("message", String::from_utf8_lossy(&order)))
        .output(bytes("signature", sig.clone()))
        .explain("Does the key belong to the certificate? Sign with one, verify with the other."),
    );
    let cert_pub = cert_point(p.button.leaf())?;
    let r =
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &cert_pub).verify(&order, &sig);
    l.add(
        Op::new(
            OperationKind::Verify,
            Actor::Iotls,
            "ring",
            "iotls verifies it with the public key in button.pem's certificate",
        )
        .input(bytes("certificate's public key", cert_pub.clone()))
        .input(bytes("signature", sig))
        .verdict(
            r.is_ok(),
            true,
            ring_answer(&r, "signature valid: key and certificate match"),
        )
        .explain("They match: this key is the one the certificate vouches for."),
    );
    let wrong = match &p.neighbour.key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => return Err(fail("the neighbour's key is not PKCS#8")),
    };
    let wrong_pair =
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &wrong, &l.rng)
            .map_err(|_| fail("ring cannot read the neighbour's key"))?;
    let wsig = wrong_pair
        .sign(&l.rng, &order)
        .map_err(|_| fail("ring could not sign"))?
        .as_ref()
        .to_vec();
    let r =
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &cert_pub).verify(&order, &wsig);
    l.add(
        Op::new(
            OperationKind::Verify,
            Actor::Iotls,
            "ring",
            "a WRONG key (another button's) signs; iotls verifies with button.pem's public key",
        )
        .input(bytes("certificate's public key", cert_pub))
        .input(bytes("signature by the other key", wsig))
        .verdict(r.is_ok(), false, ring_answer(&r, "signature valid"))
        .explain(
            "A key file that does not belong to the certificate: the broker would reject the \
             CertificateVerify (decrypt_error); rustls refuses such a pair already when it \
             loads them.",
        ),
    );

    l.part("root.pem: the root that identifies the broker");
    let mut op = Op::new(
        OperationKind::InspectCertificate,
        Actor::Device,
        "x509-parser",
        "root.pem: the shop's root CA, the device's only trust anchor",
    )
    .input(text(
        "file",
        format!(
            "root.pem: {} bytes of PEM, mode {}",
            files.sizes[2], files.modes[2]
        ),
    ))
    .input(bytes("certificate", p.root.to_vec()));
    for v in describe_values(&p.root, now) {
        op = op.output(v);
    }
    l.add(op.explain(
        "Self-signed, CA:TRUE. The device checks the broker's chain against it, so it knows it \
         reached the real broker. The device does NOT need the CA that checks devices: that \
         trust lives on the broker.",
    ));
    device_chain_check(
        l,
        &p.broker.chain,
        std::slice::from_ref(&p.root),
        true,
        "the device verifies the broker's chain against root.pem",
        "The broker's chain leads to the root the device holds.",
    )?;
    device_chain_check(
        l,
        &p.broker.chain,
        std::slice::from_ref(&p.rogue_root),
        false,
        "a WRONG root.pem: the device verifies the same chain against another root",
        "With the wrong (or a missing) root the device cannot recognise the real broker \
         and refuses it (unknown_ca): it never sends its order.",
    )?;
    Ok(())
}

/// The default PKI as read back from the files `pki init`'s writer put in `dir`: button.pem,
/// button.key and root.pem with their sizes and modes (in that order).
struct DeviceFiles {
    pki: DefaultPki,
    sizes: [u64; 3],
    modes: [String; 3],
}

fn write_and_read(p: &DefaultPki, dir: &std::path::Path) -> Result<DeviceFiles, EngineError> {
    p.write(dir, false)
        .map_err(|e| fail(format!("writing the device's files: {e}")))?;
    let read = DefaultPki::load_or_init(dir)
        .map_err(|e| fail(format!("reading the device's files back: {e}")))?;
    let mut sizes = [0u64; 3];
    let mut modes: [String; 3] = Default::default();
    for (i, name) in ["button.pem", "button.key", "root.pem"].iter().enumerate() {
        let meta = std::fs::metadata(dir.join(name)).map_err(|e| fail(format!("{name}: {e}")))?;
        sizes[i] = meta.len();
        modes[i] = file_mode(&meta);
    }
    Ok(DeviceFiles {
        pki: read,
        sizes,
        modes,
    })
}

#[cfg(unix)]
fn file_mode(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::PermissionsExt;
    format!("{:04o}", meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn file_mode(_: &std::fs::Metadata) -> String {
    "(not a Unix file system)".to_string()
}

/// The EC point (the BIT STRING of the SubjectPublicKeyInfo) of a certificate.
fn cert_point(der: &[u8]) -> Result<Vec<u8>, EngineError> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| fail(format!("x509-parser cannot read the certificate: {e}")))?;
    Ok(c.tbs_certificate
        .subject_pki
        .subject_public_key
        .data
        .to_vec())
}

// ---------------------------------------------------------------------------------------------
// 5. forward-secrecy

fn forward_secrecy(l: &mut Lesson) -> Result<(), EngineError> {
    l.part("RSA key transport (TLS 1.2 TLS_RSA_*), as operations");
    let (key, spki) = rsa_generate()?;
    l.add(
        Op::new(
            OperationKind::GenerateKey,
            Actor::Broker,
            "rsa",
            "the server's long-term RSA 2048 key (the one in its certificate)",
        )
        .output(bytes("public key", spki.clone()))
        .output(text(
            "private key",
            "kept by the server for years; not shown",
        ))
        .explain(
            "rustls does not implement RSA key transport (it was removed from TLS 1.3 and is \
             discouraged in 1.2), so iotls cannot run it as a session: each step is run here as \
             the operation it was.",
        ),
    );
    let mut pms = vec![0x03, 0x03];
    pms.extend(l.random(46)?);
    let ct = key
        .to_public_key()
        .encrypt(&mut rsa::rand_core::OsRng, rsa::Pkcs1v15Encrypt, &pms)
        .map_err(|e| fail(format!("rsa: encrypting failed: {e}")))?;
    l.add(
        Op::new(
            OperationKind::Encrypt,
            Actor::Device,
            "rsa",
            "the client encrypts a 48-byte pre-master secret to the server's public key",
        )
        .input(bytes(
            "pre-master secret (03 03 + 46 random bytes)",
            pms.clone(),
        ))
        .input(bytes("server's public key", spki))
        .output(bytes(
            "ClientKeyExchange: RSA PKCS#1 v1.5 ciphertext",
            ct.clone(),
        ))
        .explain(
            "TLS 1.2's RSA key exchange: the client picks the pre-master secret and sends it \
             encrypted (PKCS#1 v1.5). Both sides derive every session key from it and the two \
             hello randoms, which travel in the clear.",
        ),
    );
    l.add(
        Op::new(
            OperationKind::Transfer,
            Actor::Attacker,
            "iotls",
            "an eavesdropper records the session, ciphertext included",
        )
        .output(bytes("recorded ClientKeyExchange", ct.clone()))
        .explain("Recording encrypted traffic is cheap; it can be kept for years."),
    );
    l.add(
        Op::new(
            OperationKind::Transfer,
            Actor::Broker,
            "iotls",
            "years later the server's private key leaks (a stolen backup, a retired disk)",
        )
        .output(text(
            "private key",
            "now in the attacker's hands (not shown)",
        ))
        .explain("The long-term key outlives the sessions it protected."),
    );
    let rec = key.decrypt(rsa::Pkcs1v15Encrypt, &ct);
    let recovered = rec.as_ref().map(|v| v.to_vec()).unwrap_or_default();
    l.add(
        Op::new(
            OperationKind::Decrypt,
            Actor::Attacker,
            "rsa",
            "the attacker decrypts the recorded ciphertext with the leaked key",
        )
        .input(bytes("recorded ciphertext", ct))
        .output(bytes("recovered pre-master secret", recovered.clone()))
        .verdict(
            rec.is_ok(),
            true,
            match &rec {
                Ok(_) => "decrypted".to_string(),
                Err(e) => format!("decryption error: {e}"),
            },
        )
        .explain("Nothing else is needed: the leaked key opens the recording."),
    );
    let same = recovered == pms;
    l.add(
        Op::new(
            OperationKind::Compare,
            Actor::Iotls,
            "iotls",
            "iotls compares the recovered pre-master secret with the client's",
        )
        .input(bytes("client's pre-master secret", pms))
        .input(bytes("attacker's recovered secret", recovered))
        .verdict(same, true, if same { "equal" } else { "different" })
        .explain(
            "Equal: with the recorded randoms this gives the master secret and every record key, \
             so every recorded session under this key is readable. No forward secrecy.",
        ),
    );

    l.part("Ephemeral ECDHE (what rustls does): P-256 key agreement (ring)");
    use ring::agreement;
    let dev_priv = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &l.rng)
        .map_err(|_| fail("ring could not generate an ephemeral key"))?;
    let dev_pub = dev_priv
        .compute_public_key()
        .map_err(|_| fail("ring could not compute a public key"))?
        .as_ref()
        .to_vec();
    let brk_priv = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &l.rng)
        .map_err(|_| fail("ring could not generate an ephemeral key"))?;
    let brk_pub = brk_priv
        .compute_public_key()
        .map_err(|_| fail("ring could not compute a public key"))?
        .as_ref()
        .to_vec();
    for (actor, public) in [(Actor::Device, &dev_pub), (Actor::Broker, &brk_pub)] {
        l.add(
            Op::new(
                OperationKind::GenerateKey,
                actor,
                "ring",
                "a fresh ephemeral P-256 key pair for this one session",
            )
            .output(bytes("public value (sent in the clear)", public.clone()))
            .output(text(
                "private value",
                "exists only in memory, for this session",
            ))
            .explain(
                "Each side makes a new key pair per session. The public value goes on the wire \
                 (the server signs its own with its long-term key, so it cannot be swapped).",
            ),
        );
    }
    let dev_secret = agreement::agree_ephemeral(
        dev_priv,
        &agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &brk_pub),
        |s| s.to_vec(),
    )
    .map_err(|_| fail("ring: the device's key agreement failed"))?;
    let brk_secret = agreement::agree_ephemeral(
        brk_priv,
        &agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &dev_pub),
        |s| s.to_vec(),
    )
    .map_err(|_| fail("ring: the broker's key agreement failed"))?;
    l.add(
        Op::new(
            OperationKind::KeyAgreement,
            Actor::Device,
            "ring",
            "the device combines its private value with the broker's public value",
        )
        .input(bytes("broker's public value", brk_pub.clone()))
        .output(bytes("shared secret (pre-master)", dev_secret.clone()))
        .explain(
            "ring's agree_ephemeral consumes the private key: once the secret is computed the \
             private value is gone, by the type system.",
        ),
    );
    l.add(
        Op::new(
            OperationKind::KeyAgreement,
            Actor::Broker,
            "ring",
            "the broker combines its private value with the device's public value",
        )
        .input(bytes("device's public value", dev_pub.clone()))
        .output(bytes("shared secret (pre-master)", brk_secret.clone()))
        .explain("The same operation on the other side, with the other pair of values."),
    );
    let same = dev_secret == brk_secret;
    l.add(
        Op::new(
            OperationKind::Compare,
            Actor::Iotls,
            "iotls",
            "iotls compares the two sides' shared secrets",
        )
        .input(bytes("device's secret", dev_secret.clone()))
        .input(bytes("broker's secret", brk_secret))
        .verdict(same, true, if same { "equal" } else { "different" })
        .explain("Equal, although the secret itself never travelled."),
    );
    let recorded: Vec<u8> = [dev_pub.as_slice(), brk_pub.as_slice()].concat();
    let found = recorded
        .windows(dev_secret.len())
        .any(|w| w == dev_secret.as_slice());
    l.add(
        Op::new(
            OperationKind::Compare,
            Actor::Attacker,
            "iotls",
            "what an eavesdropper recorded: the two public values; is the secret in them?",
        )
        .input(bytes("recorded public values", recorded))
        .verdict(
            found,
            false,
            if found {
                "the secret appears in the recording"
            } else {
                "the secret is not in the recording"
            },
        )
        .explain(
            "What this shows: the wire carries only the public values, and both private values \
             were dropped, so a key leaked later (the server's long-term key only SIGNS here) \
             opens no recorded session: forward secrecy.\n\
             What it does not show: that the secret cannot be computed from the public values. \
             That rests on the elliptic-curve Diffie-Hellman problem being hard; no program can \
             demonstrate it by running.",
        ),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. tls13-contrast

fn tls13_contrast(l: &mut Lesson) -> Result<(), EngineError> {
    let p = DefaultPki::generate()?;
    l.part("A TLS 1.3 mutual-TLS session (rustls, loopback TCP)");
    let rt = super::runtime()?;
    let session = rt.block_on(tls13_session(&p))?;
    l.add(
        Op::new(
            OperationKind::TlsSession,
            Actor::Iotls,
            "rustls",
            "the button and the broker run a TLS 1.3 session with client certificates",
        )
        .output(text("version", session.version.clone()))
        .output(text("cipher suite", session.suite.clone()))
        .output(text(
            "application data",
            String::from_utf8_lossy(&session.received),
        ))
        .explain(
            "The same PKI as the tour (a fresh one), but TLS 1.3: rustls on both ends, each \
             end's tap recording what it writes. iotls does not decrypt TLS 1.3; the records \
             are shown as they travelled.",
        ),
    );
    let mut after_server_hello = false;
    let mut all_hidden = true;
    let mut told: Vec<String> = Vec::new();
    for (side, rec) in &session.records {
        let ct = rec.first().copied().unwrap_or(0);
        let hs = rec.get(5).copied();
        let (message, explain) = match (ct, hs) {
            (22, Some(1)) => (
                "ClientHello".to_string(),
                "In the clear, as in TLS 1.2: versions, cipher suites, and already a key share \
                 (TLS 1.3 guesses the group so the handshake needs one round trip less).",
            ),
            (22, Some(2)) => (
                "ServerHello".to_string(),
                "In the clear: the chosen suite and the server's key share. From here both \
                 sides hold handshake keys; everything else the handshake says is encrypted.",
            ),
            (22, _) => (
                "handshake (22)".to_string(),
                "A plaintext handshake record.",
            ),
            (20, _) => (
                "ChangeCipherSpec (compat)".to_string(),
                "A dummy ChangeCipherSpec (one byte, 01) for middleboxes that expect TLS 1.2; \
                 TLS 1.3 ignores it. It carries nothing.",
            ),
            (23, _) => (
                "encrypted (23)".to_string(),
                "Content type 23, application_data, whatever it really carries: \
                 EncryptedExtensions, Certificate, CertificateRequest, CertificateVerify, \
                 Finished and the MQTT bytes all look like this on the wire.",
            ),
            (21, _) => ("alert (21)".to_string(), "A plaintext alert."),
            (t, _) => (format!("type {t}"), "A record of another type."),
        };
        if after_server_hello && ct != 23 && ct != 20 {
            all_hidden = false;
        }
        if ct == 22 && hs == Some(2) {
            after_server_hello = true;
        }
        let actor = match side {
            crate::trace::Side::Broker => Actor::Broker,
            _ => Actor::Device,
        };
        // The long explanation once per kind of record.
        let explain = if told.contains(&message) {
            "Another record of this kind."
        } else {
            told.push(message.clone());
            explain
        };
        l.add(
            Op::new(
                OperationKind::TlsRecord,
                actor,
                "rustls",
                format!(
                    "{} writes a {}-byte record: {message}",
                    actor.name(),
                    rec.len()
                ),
            )
            .input(text("message", message))
            .input(text("content type", ct.to_string()))
            .output(bytes("record as sent", rec.clone()))
            .explain(explain),
        );
    }

    l.part("Where are the certificates?");
    let wire13: Vec<u8> = session
        .records
        .iter()
        .flat_map(|(_, r)| r.clone())
        .collect();
    l.add(
        Op::new(
            OperationKind::Compare,
            Actor::Iotls,
            "iotls",
            "every record after ServerHello: application_data (23), or the 1-byte compat CCS",
        )
        .input(text("records", session.records.len().to_string()))
        .verdict(
            after_server_hello && all_hidden,
            true,
            if after_server_hello && all_hidden {
                "yes: nothing after ServerHello is readable handshake"
            } else {
                "no: a plaintext handshake record follows ServerHello"
            },
        )
        .explain("An eavesdropper sees two hellos, then only type 23."),
    );
    for (who, der) in [
        ("device", p.button.leaf().to_vec()),
        ("broker", p.broker.leaf().to_vec()),
    ] {
        let found = contains(&wire13, &der);
        l.add(
            Op::new(
                OperationKind::Compare,
                Actor::Iotls,
                "iotls",
                format!("does the {who}'s certificate (DER) appear in the TLS 1.3 bytes?"),
            )
            .input(bytes(&format!("{who} certificate"), der))
            .verdict(
                found,
                false,
                if found {
                    "found in the bytes on the wire"
                } else {
                    "not found: it travelled encrypted"
                },
            )
            .explain(
                "TLS 1.3 encrypts the Certificate messages: an eavesdropper does not learn which \
                 device connected.",
            ),
        );
    }

    l.part("For contrast: the tour's TLS 1.2 session");
    let scenario = super::lessons::scenario("pizza-button")?;
    let device_cert = scenario.device.identity.leaf().to_vec();
    let t12 = super::run(&scenario)?;
    let wire12: Vec<u8> = t12.records.iter().flat_map(|r| r.bytes.clone()).collect();
    let found = contains(&wire12, &device_cert);
    l.add(
        Op::new(
            OperationKind::Compare,
            Actor::Iotls,
            "iotls",
            "does the device's certificate appear in a TLS 1.2 session's bytes?",
        )
        .input(text(
            "TLS 1.2 session",
            format!(
                "{} records, {} bytes; outcome {}",
                t12.records.len(),
                wire12.len(),
                if t12.outcome.ok { "ok" } else { "failed" }
            ),
        ))
        .input(bytes("device certificate", device_cert))
        .verdict(
            found,
            true,
            if found {
                "found in the clear"
            } else {
                "not found"
            },
        )
        .explain(
            "In TLS 1.2 the Certificate messages travel before ChangeCipherSpec, in the clear: \
             anyone on the path reads the device's identity (its thing name and serial). That is \
             what the tour shows, byte by byte.",
        ),
    );
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

struct Tls13Session {
    version: String,
    suite: String,
    received: Vec<u8>,
    records: Vec<(crate::trace::Side, Vec<u8>)>,
}

async fn tls13_session(p: &DefaultPki) -> Result<Tls13Session, EngineError> {
    use super::observe::{Raw, Recorder, Tap, TapMode};
    use crate::trace::Side;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(p.root.clone())
        .map_err(|e| EngineError::tls("root", e))?;
    let roots = Arc::new(roots);
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .map_err(|e| EngineError::tls("client verifier", e))?;
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| EngineError::tls("TLS 1.3 server", e))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(p.broker.chain.clone(), p.broker.key.clone_key())
        .map_err(|e| EngineError::tls("broker certificate and key", e))?;
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| EngineError::tls("TLS 1.3 client", e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(p.button.chain.clone(), p.button.key.clone_key())
        .map_err(|e| EngineError::tls("device certificate and key", e))?;
    client.resumption = rustls::client::Resumption::disabled();

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| EngineError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EngineError::Listen { addr, source })?;
    let rec = Recorder::new();
    let brec = rec.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let serving = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let tap = Tap::new(tcp, Side::Broker, brec, TapMode::WritesOnly);
        let mut tls = acceptor.accept(tap).await?;
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await?;
        tls.shutdown().await.ok();
        Ok::<Vec<u8>, std::io::Error>(buf)
    });
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| EngineError::Connect { addr, source })?;
    let tap = Tap::new(tcp, Side::Device, rec.clone(), TapMode::WritesOnly);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("localhost")
        .map_err(|_| EngineError::ServerName("localhost".into()))?;
    let limit = std::time::Duration::from_secs(10);
    let io = |e: std::io::Error| fail(format!("the TLS 1.3 session failed: {e}"));
    let mut tls = tokio::time::timeout(limit, connector.connect(name, tap))
        .await
        .map_err(|_| fail("the TLS 1.3 handshake timed out"))?
        .map_err(io)?;
    let (version, suite) = {
        let (_, c) = tls.get_ref();
        (
            c.protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            c.negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
        )
    };
    tls.write_all(&pizza_order()).await.map_err(io)?;
    tls.shutdown().await.map_err(io)?;
    let received = tokio::time::timeout(limit, serving)
        .await
        .map_err(|_| fail("the TLS 1.3 broker did not finish"))?
        .map_err(|e| fail(format!("the TLS 1.3 broker task failed: {e}")))?
        .map_err(io)?;
    // Drain what the device might still read (the broker's close_notify) so it is recorded.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        tls.read_to_end(&mut rest),
    )
    .await;

    // Cut each direction's bytes into records, in the order they were written.
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut records = Vec::new();
    for raw in rec.take() {
        if let Raw::Bytes { from, data, .. } = raw {
            let i = usize::from(from == Side::Broker);
            pending[i].extend_from_slice(&data);
            while pending[i].len() >= 5 {
                let len = 5 + u16::from_be_bytes([pending[i][3], pending[i][4]]) as usize;
                if pending[i].len() < len {
                    break;
                }
                let r: Vec<u8> = pending[i].drain(..len).collect();
                records.push((from, r));
            }
        }
    }
    Ok(Tls13Session {
        version,
        suite,
        received,
        records,
    })
}
