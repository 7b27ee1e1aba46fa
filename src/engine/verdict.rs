//! Verifier verdicts, recorded raw during the handshake and worked out afterwards.
//!
//! A verifier wrapper keeps only what rustls decided and, of the evidence it was handed (the
//! chain, the signed message, the signer's certificate, the signature), the SHA-256 and length
//! of each piece ([`Seen`]): those bytes are in the session's recording already, since the
//! handshake is always recorded whole. When the trace is assembled, [`Pending::resolve`] rebuilds
//! them from the recorded handshake messages and uses them only if they are the bytes rustls was
//! handed (same digest, same length); otherwise the check keeps rustls's verdict and says its
//! evidence was not kept. Describing the certificates, hashing and hex-encoding the signed
//! transcript happen at assembly too, so observation costs the handshake as little as possible
//! and a held `serve` connection keeps no second copy of its handshake (BENCHMARKS.md).

use super::observe::{explain_error, failure_of};
use crate::narrate::words;
use crate::pki::{describe_brief, subject_cn};
use crate::tls::calc;
use crate::trace::{
    hex, CheckId, EventKind, Fact, FailureCode, HandshakeType, Phase, Side, SignatureCalc,
};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::CertificateDer;
use std::sync::Arc;

/// Which check a verdict is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The device checks the broker's chain (`name_failed`: the name check that follows failed).
    ServerChain { name_failed: bool },
    /// The device checks the broker's certificate against the name it asked for.
    ServerName { asked: String },
    /// The device checks the ServerKeyExchange signature.
    ServerKxSignature,
    /// The broker checks the device's chain.
    ClientChain,
    /// The broker checks the device's CertificateVerify signature.
    CertificateVerify,
}

impl Verdict {
    /// Phase and side of the check.
    pub fn at(&self) -> (Phase, Side) {
        match self {
            Verdict::ServerChain { .. }
            | Verdict::ServerName { .. }
            | Verdict::ServerKxSignature => (Phase::ServerAuth, Side::Device),
            Verdict::ClientChain => (Phase::ClientAuth, Side::Broker),
            Verdict::CertificateVerify => (Phase::HandshakeSignature, Side::Broker),
        }
    }

    fn id(&self) -> CheckId {
        match self {
            Verdict::ServerChain { .. } => CheckId::ServerChain,
            Verdict::ServerName { .. } => CheckId::ServerName,
            Verdict::ServerKxSignature => CheckId::ServerKxSignature,
            Verdict::ClientChain => CheckId::ClientChain,
            Verdict::CertificateVerify => CheckId::CertificateVerify,
        }
    }

    fn about(&self) -> HandshakeType {
        match self {
            Verdict::ServerKxSignature => HandshakeType::SERVER_KEY_EXCHANGE,
            Verdict::CertificateVerify => HandshakeType::CERTIFICATE_VERIFY,
            _ => HandshakeType::CERTIFICATE,
        }
    }

    /// The side whose messages the check judges (the other side's verifier made it).
    fn judged(&self) -> Side {
        match self.at().1 {
            Side::Device => Side::Broker,
            _ => Side::Device,
        }
    }
}

/// What a wrapper keeps of bytes rustls handed it: their SHA-256 and length, not the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    sha256: [u8; 32],
    len: u32,
}

impl Seen {
    pub fn of(bytes: &[u8]) -> Self {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
        Seen {
            sha256,
            // A handshake is far below 4 GiB (rustls bounds its messages); saturating keeps a
            // longer input from matching anything.
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        }
    }

    /// Whether `bytes` are the bytes that were seen.
    pub fn is(&self, bytes: &[u8]) -> bool {
        bytes.len() == self.len as usize
            && ring::digest::digest(&ring::digest::SHA256, bytes).as_ref() == self.sha256
    }

    fn len(&self) -> usize {
        self.len as usize
    }
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes, sha256 {}", self.len, hex(&self.sha256[..8]))
    }
}

/// What a verifier was handed, as kept (see [`Seen`]).
#[derive(Clone, Debug)]
pub enum Evidence {
    /// A chain (leaf first) and the roots it was checked against.
    Chain {
        chain: Box<[Seen]>,
        roots: Arc<[CertificateDer<'static>]>,
        /// A registered CA that the sender left out: with it, the chain passes. (A copy: it is
        /// rare, and it is not in the recording.)
        missing_ca: Option<Vec<u8>>,
    },
    /// A handshake signature (boxed: it is the larger kind, and a recording holds many raws).
    Signature(Box<Signed>),
}

/// A handshake signature as kept: the signed bytes, the signer's certificate, scheme, signature.
#[derive(Clone, Debug)]
pub struct Signed {
    message: Seen,
    cert: Seen,
    scheme: SignatureScheme,
    signature: Seen,
}

impl Evidence {
    pub fn chain(
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        roots: &Arc<[CertificateDer<'static>]>,
    ) -> Self {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| Seen::of(c))
            .collect();
        Evidence::Chain {
            chain,
            roots: Arc::clone(roots),
            missing_ca: None,
        }
    }

    /// A chain read from a record (`replay`'s re-verification), leaf first.
    pub fn chain_of(certs: &[Vec<u8>], roots: Arc<[CertificateDer<'static>]>) -> Self {
        Evidence::Chain {
            chain: certs.iter().map(|c| Seen::of(c)).collect(),
            roots,
            missing_ca: None,
        }
    }

    pub fn signature(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Self {
        Evidence::Signature(Box::new(Signed {
            message: Seen::of(message),
            cert: Seen::of(cert),
            scheme: dss.scheme,
            signature: Seen::of(dss.signature()),
        }))
    }

    /// The evidence's bytes, rebuilt from the recorded handshake messages (in order, headers
    /// included: `Dissector::handshake_messages`), if they are exactly what rustls was handed.
    fn rebuild<'a>(&self, kind: &Verdict, handshake: &'a [HandshakeMessage]) -> Option<Shown<'a>> {
        let sender = kind.judged();
        // The first message of a type from a side (a TLS 1.2 handshake has one of each).
        let find = |from: Side, t: HandshakeType| {
            handshake
                .iter()
                .position(|(s, m)| *s == from && m.first() == Some(&t.0))
        };
        let message = |from: Side, t: HandshakeType| Some(handshake[find(from, t)?].1.as_slice());
        match self {
            Evidence::Chain { chain, .. } => {
                let certs =
                    super::assemble::certificate_list(message(sender, HandshakeType::CERTIFICATE)?);
                let same = certs.len() == chain.len()
                    && certs.iter().zip(chain.iter()).all(|(c, s)| s.is(c));
                same.then_some(Shown::Chain(certs))
            }
            Evidence::Signature(kept) => {
                let cert = calc::leaf_of(message(sender, HandshakeType::CERTIFICATE)?)?;
                let (signed, signature) = match kind {
                    Verdict::ServerKxSignature => {
                        // client_random ‖ server_random ‖ the ECDHE parameters.
                        let ske = message(sender, HandshakeType::SERVER_KEY_EXCHANGE)?;
                        let (params, _, signature) = calc::parse_ske(ske)?;
                        let random = |from: Side, t: HandshakeType| message(from, t)?.get(6..38);
                        let signed = [
                            random(Side::Device, HandshakeType::CLIENT_HELLO)?,
                            random(Side::Broker, HandshakeType::SERVER_HELLO)?,
                            params,
                        ]
                        .concat();
                        (signed, signature)
                    }
                    _ => {
                        // Every handshake message before the CertificateVerify.
                        let at = find(sender, HandshakeType::CERTIFICATE_VERIFY)?;
                        let (_, signature) = calc::parse_cv(&handshake[at].1)?;
                        let signed = handshake[..at]
                            .iter()
                            .flat_map(|(_, m)| m.iter().copied())
                            .collect();
                        (signed, signature)
                    }
                };
                let same =
                    kept.message.is(&signed) && kept.cert.is(cert) && kept.signature.is(signature);
                same.then_some(Shown::Signature {
                    message: signed,
                    cert,
                    signature,
                })
            }
        }
    }
}

/// A handshake message as the dissector recorded it: its sender and its bytes, header included.
pub type HandshakeMessage = (Side, Vec<u8>);

/// The evidence's bytes, rebuilt and matched: exactly what rustls was handed.
enum Shown<'a> {
    Chain(Vec<&'a [u8]>),
    Signature {
        message: Vec<u8>,
        cert: &'a [u8],
        signature: &'a [u8],
    },
}

/// A verdict as recorded: the check, rustls's error (None = passed), the evidence.
#[derive(Clone, Debug)]
pub struct Pending {
    pub kind: Verdict,
    pub error: Option<rustls::Error>,
    pub evidence: Evidence,
}

impl Pending {
    /// The `check` event: reason in words and facts from the evidence, rebuilt from `handshake`
    /// (the recorded handshake messages so far, in order). Evidence that cannot be rebuilt as
    /// exactly what rustls was handed is not shown: the event then carries rustls's verdict, the
    /// reason rustls's error gives, and an `evidence` fact that says so — no calculation.
    pub fn resolve(self, handshake: &[HandshakeMessage]) -> EventKind {
        let shown = self.evidence.rebuild(&self.kind, handshake);
        let facts = match (&shown, &self.evidence) {
            (Some(Shown::Chain(chain)), Evidence::Chain { roots, .. }) => match &self.kind {
                Verdict::ServerName { asked } => {
                    let names = chain
                        .first()
                        .map(|c| describe_brief(c).san.join(", "))
                        .unwrap_or_default();
                    vec![
                        Fact::new("asked for", asked.clone()),
                        Fact::new("certificate names", names),
                    ]
                }
                _ => chain_facts(chain, roots),
            },
            (
                Some(Shown::Signature {
                    message,
                    cert,
                    signature,
                }),
                Evidence::Signature(kept),
            ) => signature_facts(message, cert, kept.scheme, signature),
            _ => self.unkept_facts(),
        };
        let (phase_side, check) = (self.kind.at().1, self.kind.id());
        let failure = self.error.as_ref().map(|e| {
            let mut f = failure_of(e);
            f.side = Some(phase_side);
            f.check = Some(check);
            if let Evidence::Chain {
                missing_ca: Some(ca),
                ..
            } = &self.evidence
            {
                f.code = FailureCode::MissingIntermediate;
                f.missing_issuer = Some(describe_brief(ca).subject);
            }
            if let Evidence::Signature(_) = &self.evidence {
                if f.code == FailureCode::Other {
                    f.code = FailureCode::BadSignature;
                }
            }
            match &shown {
                Some(Shown::Chain(chain)) => {
                    let leaf = chain.first().map(|c| describe_brief(c));
                    f.subject = leaf.as_ref().map(|l| l.subject.clone());
                    if f.code == FailureCode::UnknownIssuer {
                        f.missing_issuer = chain.last().map(|c| describe_brief(c).issuer);
                    }
                    if f.code == FailureCode::NotValidForName {
                        // The names as the certificate writes them (DNS:…, IP:…).
                        f.presented_names = leaf.map(|l| l.san).unwrap_or_default();
                    }
                }
                Some(Shown::Signature { cert, .. }) => {
                    f.subject = Some(describe_brief(cert).subject);
                }
                // Nothing from bytes that are not known to be what rustls judged.
                None => {}
            }
            if let (Verdict::ServerName { asked }, None) = (&self.kind, &f.expected_name) {
                f.expected_name = Some(asked.clone());
            }
            f
        });
        // The sentence is `words/reasons.toml`'s, filled from the verdict and its evidence.
        let reason = match &self.error {
            Some(e) => match (&self.kind, &failure) {
                (Verdict::ServerKxSignature, _) => words::reason(
                    "server_kx_signature_failed",
                    &[("error", &explain_error(e))],
                ),
                (Verdict::CertificateVerify, _) => {
                    words::reason("certificate_verify_failed", &[("error", &explain_error(e))])
                }
                // The failure's cause names the CA; the reason says only what rustls found.
                (_, Some(f)) if f.code == FailureCode::MissingIntermediate => {
                    words::reason("missing_intermediate", &[])
                }
                _ => explain_error(e),
            },
            None => match &shown {
                Some(shown) => self.reason_ok(&facts, shown),
                None => words::reason("evidence_not_kept", &[]),
            },
        };
        let signature = match (&shown, &self.evidence) {
            (
                Some(Shown::Signature {
                    message,
                    cert,
                    signature,
                }),
                Evidence::Signature(kept),
            ) => Some(Box::new(self.signature_calc(
                message,
                cert,
                kept.scheme,
                signature,
            ))),
            _ => None,
        };
        EventKind::Check {
            check,
            ok: self.error.is_none(),
            reason,
            about: Some(self.kind.about()),
            facts,
            failure: failure.map(Box::new),
            signature,
            finished: None,
        }
    }

    /// The facts of a check whose evidence was not kept: what the wrapper itself holds (the
    /// name asked for; a signature's scheme and how many bytes it covered), and that the rest is
    /// missing.
    fn unkept_facts(&self) -> Vec<Fact> {
        let mut facts = Vec::new();
        match (&self.kind, &self.evidence) {
            (Verdict::ServerName { asked }, _) => facts.push(Fact::new("asked for", asked.clone())),
            (_, Evidence::Signature(kept)) => {
                facts.push(Fact::new("scheme", format!("{:?}", kept.scheme)));
                facts.push(Fact::new("signed_len", kept.message.len().to_string()));
            }
            _ => {}
        }
        facts.push(Fact::new(EVIDENCE_FACT, EVIDENCE_NOT_KEPT));
        facts
    }

    /// The calculation behind a signature check, from the evidence rustls was handed: the spans
    /// of the signed bytes (for CertificateVerify, the handshake messages they are), the digest,
    /// the signer's public key.
    fn signature_calc(
        &self,
        message: &[u8],
        cert: &[u8],
        scheme: SignatureScheme,
        signature: &[u8],
    ) -> SignatureCalc {
        let (signer, spans) = match self.kind {
            Verdict::ServerKxSignature => (
                Side::Broker,
                calc::ske_spans(message.len().saturating_sub(64)),
            ),
            _ => (Side::Device, calc::split_transcript(message)),
        };
        calc::signature(signer, spans, message, u16::from(scheme), signature, cert)
    }

    fn reason_ok(&self, facts: &[Fact], shown: &Shown<'_>) -> String {
        let fact = |n: &str| {
            facts
                .iter()
                .find(|f| f.name == n)
                .map(|f| f.value.clone())
                .unwrap_or_default()
        };
        let signer = || match shown {
            Shown::Signature { cert, .. } => subject_cn(cert),
            Shown::Chain(chain) => chain.first().map(|c| subject_cn(c)).unwrap_or_default(),
        };
        match &self.kind {
            Verdict::ServerChain { name_failed: true } => {
                words::reason("server_chain_ok_name_failed", &[])
            }
            Verdict::ServerChain { name_failed: false } => words::reason("server_chain_ok", &[]),
            Verdict::ServerName { asked } => words::reason(
                "server_name_ok",
                &[
                    ("asked", &format!("{asked:?}")),
                    ("names", &fact("certificate names")),
                ],
            ),
            Verdict::ServerKxSignature => words::reason("server_kx_signature_ok", &[]),
            Verdict::ClientChain => words::reason("client_chain_ok", &[("signer", &signer())]),
            Verdict::CertificateVerify => words::reason(
                "certificate_verify_ok",
                &[("signed_len", &fact("signed_len")), ("signer", &signer())],
            ),
        }
    }
}

/// The fact a check carries when its evidence was not kept, and its value.
pub const EVIDENCE_FACT: &str = "evidence";
const EVIDENCE_NOT_KEPT: &str = "not kept: the recorded handshake does not hold the bytes rustls \
     was handed (their SHA-256 differs, or they cannot be rebuilt), so nothing is shown from them";

fn chain_facts(all: &[&[u8]], roots: &[CertificateDer<'static>]) -> Vec<Fact> {
    let mut facts = Vec::new();
    for (i, der) in all.iter().enumerate() {
        let info = describe_brief(der);
        facts.push(Fact::new(
            format!("chain[{i}]"),
            format!(
                "{} ← issued by {} ({}, {})",
                info.subject, info.issuer, info.signature_algorithm, info.key
            ),
        ));
        facts.push(Fact::new(
            format!("chain[{i}] validity"),
            format!("{} … {}", info.not_before, info.not_after),
        ));
        if !info.extended_key_usage.is_empty() {
            facts.push(Fact::new(
                format!("chain[{i}] EKU"),
                info.extended_key_usage.join(", "),
            ));
        }
    }
    // Which configured root is the issuer of the last certificate sent?
    if let Some(last) = all.last() {
        let last = describe_brief(last);
        let anchor = roots.iter().find_map(|r| {
            let d = describe_brief(r);
            (d.subject == last.issuer).then(|| {
                let sha = hex(ring::digest::digest(&ring::digest::SHA256, r).as_ref());
                (d.subject, sha)
            })
        });
        facts.push(Fact::new(
            "trust anchor",
            match anchor {
                Some((subject, sha)) => format!("{subject} (sha256 {})", &sha[..16]),
                None => format!(
                    "none of the {} trusted root(s) is named {}",
                    roots.len(),
                    last.issuer
                ),
            },
        ));
    }
    facts
}

fn signature_facts(
    message: &[u8],
    cert: &[u8],
    scheme: SignatureScheme,
    signature: &[u8],
) -> Vec<Fact> {
    let (alg, name) = match scheme {
        SignatureScheme::ECDSA_NISTP384_SHA384
        | SignatureScheme::RSA_PKCS1_SHA384
        | SignatureScheme::RSA_PSS_SHA384 => (&ring::digest::SHA384, "sha384"),
        SignatureScheme::ECDSA_NISTP521_SHA512
        | SignatureScheme::RSA_PKCS1_SHA512
        | SignatureScheme::RSA_PSS_SHA512 => (&ring::digest::SHA512, "sha512"),
        _ => (&ring::digest::SHA256, "sha256"),
    };
    vec![
        Fact::new("scheme", format!("{scheme:?}")),
        Fact::new("signed_len", message.len().to_string()),
        Fact::new("hash_algorithm", name),
        Fact::new(
            "signed_hash",
            hex(ring::digest::digest(alg, message).as_ref()),
        ),
        Fact::new("signer", subject_cn(cert)),
        Fact::new("signature", hex(signature)),
        Fact::new("signed_message", hex(message)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{unhex, Trace};
    use rustls::{CertificateError, Error};

    fn session(lesson: &str) -> Trace {
        let s = crate::engine::lessons::scenario(lesson).expect("the lesson");
        crate::engine::run(&s).expect("the session")
    }

    /// The trace's handshake messages in order: what the dissector hands `resolve`.
    fn messages(t: &Trace) -> Vec<HandshakeMessage> {
        t.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Handshake { hex, .. } => Some((e.side, hex.clone())),
                _ => None,
            })
            .collect()
    }

    fn fact<'a>(kind: &'a EventKind, name: &str) -> Option<&'a str> {
        match kind {
            EventKind::Check { facts, .. } => facts
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.value.as_str()),
            _ => None,
        }
    }

    /// A copy of `msgs` with one byte of the first `t` message from `from` flipped.
    fn flipped(
        msgs: &[HandshakeMessage],
        from: Side,
        t: HandshakeType,
        at: usize,
    ) -> Vec<HandshakeMessage> {
        let mut out = msgs.to_vec();
        let m = out
            .iter_mut()
            .find(|(s, m)| *s == from && m.first() == Some(&t.0))
            .expect("the message");
        m.1[at] ^= 0x01;
        out
    }

    /// The broker's CertificateVerify verdict as its wrapper kept it, from what the session's
    /// check showed (the bytes rustls was handed).
    fn certificate_verify(t: &Trace, error: Option<Error>) -> Pending {
        let check = t
            .check_by(Side::Broker, CheckId::CertificateVerify)
            .expect("the broker's check");
        let signed = unhex(fact(&check.kind, "signed_message").unwrap()).unwrap();
        let signature = unhex(fact(&check.kind, "signature").unwrap()).unwrap();
        let cert = t
            .handshake(Side::Device, HandshakeType::CERTIFICATE)
            .and_then(|e| match &e.kind {
                EventKind::Handshake { hex, .. } => calc::leaf_of(hex).map(<[u8]>::to_vec),
                _ => None,
            })
            .expect("the device's certificate");
        Pending {
            kind: Verdict::CertificateVerify,
            error,
            evidence: Evidence::Signature(Box::new(Signed {
                message: Seen::of(&signed),
                cert: Seen::of(&cert),
                scheme: SignatureScheme::ECDSA_NISTP256_SHA256,
                signature: Seen::of(&signature),
            })),
        }
    }

    #[test]
    fn a_signature_whose_recorded_bytes_differ_keeps_rustlss_verdict_and_shows_nothing_of_them() {
        let t = session("pizza-button");
        let msgs = messages(&t);
        let signed_len = match &t
            .check_by(Side::Broker, CheckId::CertificateVerify)
            .unwrap()
            .kind
        {
            EventKind::Check {
                signature: Some(s), ..
            } => s.signed_len,
            other => panic!("no calculation on {other:?}"),
        };
        // With the recording as it was, the evidence is rebuilt: the calculation and every fact.
        let EventKind::Check {
            ok,
            signature,
            facts,
            ..
        } = certificate_verify(&t, None).resolve(&msgs)
        else {
            panic!("not a check")
        };
        assert!(ok);
        assert_eq!(signature.map(|s| s.signed_len), Some(signed_len));
        assert!(facts.iter().any(|f| f.name == "signed_message"));
        assert!(!facts.iter().any(|f| f.name == EVIDENCE_FACT));

        // One byte of the recorded ClientHello's random differs from what rustls was handed; or
        // the CertificateVerify is missing from the recording.
        let changed = flipped(&msgs, Side::Device, HandshakeType::CLIENT_HELLO, 10);
        let cut: Vec<HandshakeMessage> = msgs
            .iter()
            .filter(|(_, m)| m.first() != Some(&HandshakeType::CERTIFICATE_VERIFY.0))
            .cloned()
            .collect();
        for recorded in [&changed, &cut] {
            let kind = certificate_verify(&t, None).resolve(recorded);
            let EventKind::Check {
                ok,
                ref reason,
                ref signature,
                ref failure,
                ..
            } = kind
            else {
                panic!("not a check")
            };
            assert!(ok, "rustls's verdict stands");
            assert_eq!(reason, &words::reason("evidence_not_kept", &[]));
            assert!(
                signature.is_none(),
                "no calculation from bytes rustls was not handed"
            );
            assert!(failure.is_none());
            assert!(fact(&kind, EVIDENCE_FACT).unwrap().starts_with("not kept"));
            // What the wrapper itself holds is still said; nothing computed from the bytes is.
            assert_eq!(
                fact(&kind, "signed_len"),
                Some(signed_len.to_string().as_str())
            );
            assert_eq!(fact(&kind, "scheme"), Some("ECDSA_NISTP256_SHA256"));
            for name in ["signed_message", "signed_hash", "signature", "signer"] {
                assert_eq!(fact(&kind, name), None, "{name}");
            }
        }

        // A refusal stays a refusal, with rustls's reason and no subject read from the bytes.
        let kind = certificate_verify(
            &t,
            Some(Error::InvalidCertificate(CertificateError::BadSignature)),
        )
        .resolve(&changed);
        let EventKind::Check {
            ok,
            reason,
            signature,
            failure,
            ..
        } = kind
        else {
            panic!("not a check")
        };
        assert!(!ok);
        assert!(reason.starts_with("the CertificateVerify signature does not verify"));
        assert!(signature.is_none());
        let f = failure.expect("a failure");
        assert_eq!(f.code, FailureCode::BadSignature);
        assert_eq!(f.check, Some(CheckId::CertificateVerify));
        assert_eq!(f.subject, None);
    }

    #[test]
    fn a_chain_whose_recorded_certificates_differ_keeps_rustlss_verdict_and_shows_nothing_of_them()
    {
        let t = session("pizza-button");
        let msgs = messages(&t);
        let cert_msg = match &t
            .handshake(Side::Device, HandshakeType::CERTIFICATE)
            .unwrap()
            .kind
        {
            EventKind::Handshake { hex, .. } => hex.clone(),
            _ => unreachable!(),
        };
        let chain: Vec<Vec<u8>> = crate::engine::certificate_list(&cert_msg)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        let pending = |error| Pending {
            kind: Verdict::ClientChain,
            error,
            evidence: Evidence::chain_of(&chain, Arc::from(Vec::new())),
        };
        let unknown = || Some(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        // As recorded: the chain's facts, the leaf's subject and the missing issuer.
        let kind = pending(unknown()).resolve(&msgs);
        assert!(fact(&kind, "chain[0]").is_some());
        let EventKind::Check { failure, .. } = &kind else {
            panic!("not a check")
        };
        let f = failure.as_ref().expect("a failure");
        assert!(f.subject.is_some() && f.missing_issuer.is_some());

        // A byte of the leaf (inside its signature, at the end of the message) differs.
        let changed = flipped(
            &msgs,
            Side::Device,
            HandshakeType::CERTIFICATE,
            cert_msg.len() - 1,
        );
        let kind = pending(unknown()).resolve(&changed);
        let EventKind::Check {
            ok,
            reason,
            facts,
            failure,
            ..
        } = &kind
        else {
            panic!("not a check")
        };
        assert!(!ok);
        assert_eq!(reason, &explain_error(&unknown().unwrap()));
        assert_eq!(facts.len(), 1, "{facts:?}");
        assert!(fact(&kind, EVIDENCE_FACT).unwrap().starts_with("not kept"));
        let f = failure.as_ref().expect("a failure");
        assert_eq!(f.code, FailureCode::UnknownIssuer);
        assert_eq!((&f.subject, &f.missing_issuer), (&None, &None));
        // And a passed check says only that it passed.
        let kind = pending(None).resolve(&changed);
        let EventKind::Check { ok, reason, .. } = &kind else {
            panic!("not a check")
        };
        assert!(ok);
        assert_eq!(reason, &words::reason("evidence_not_kept", &[]));
    }

    #[test]
    fn every_lessons_verifier_checks_show_the_bytes_rustls_was_handed() {
        let mut seen = 0;
        for lesson in crate::engine::lessons::names() {
            // The lessons made of operations have no session.
            let Ok(s) = crate::engine::lessons::scenario(lesson) else {
                continue;
            };
            let t = crate::engine::run(&s).expect("the session");
            for e in t.events.iter().filter(|e| e.side != Side::Iotls) {
                let EventKind::Check {
                    check, signature, ..
                } = &e.kind
                else {
                    continue;
                };
                let signed = matches!(
                    check,
                    CheckId::ServerKxSignature | CheckId::CertificateVerify
                );
                let chain = matches!(
                    check,
                    CheckId::ServerChain | CheckId::ServerName | CheckId::ClientChain
                );
                if signed || chain {
                    seen += 1;
                    assert_eq!(fact(&e.kind, EVIDENCE_FACT), None, "{lesson}: {check:?}");
                    assert_eq!(signature.is_some(), signed, "{lesson}: {check:?}");
                }
            }
        }
        assert!(seen > 40, "only {seen} verifier checks");
    }
}
