//! Verifier verdicts, recorded raw during the handshake and worked out afterwards.
//!
//! A verifier wrapper keeps only what rustls decided and the evidence it was handed (the chain, the
//! signed message and signature) — a few copies. Describing the certificates, hashing and
//! hex-encoding the signed transcript happen when the trace is assembled, so observation costs the
//! handshake as little as possible (BENCHMARKS.md).

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
}

/// What a verifier was handed.
#[derive(Clone, Debug)]
pub enum Evidence {
    /// A chain (leaf first) and the roots it was checked against.
    Chain {
        chain: Vec<Vec<u8>>,
        roots: Arc<[CertificateDer<'static>]>,
        /// A registered CA that the sender left out: with it, the chain passes.
        missing_ca: Option<Vec<u8>>,
    },
    /// A handshake signature: the exact signed bytes, the signer's certificate, scheme, signature.
    Signature {
        message: Vec<u8>,
        cert: Vec<u8>,
        scheme: SignatureScheme,
        signature: Vec<u8>,
    },
}

impl Evidence {
    pub fn chain(
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        roots: &Arc<[CertificateDer<'static>]>,
    ) -> Self {
        let mut chain = vec![end_entity.to_vec()];
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        Evidence::Chain {
            chain,
            roots: Arc::clone(roots),
            missing_ca: None,
        }
    }

    pub fn signature(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Self {
        Evidence::Signature {
            message: message.to_vec(),
            cert: cert.to_vec(),
            scheme: dss.scheme,
            signature: dss.signature().to_vec(),
        }
    }
}

/// A verdict as recorded: the check, rustls's error (None = passed), the evidence.
#[derive(Clone, Debug)]
pub struct Pending {
    pub kind: Verdict,
    pub error: Option<rustls::Error>,
    pub evidence: Evidence,
}

impl Pending {
    /// The `check` event: reason in words and facts from the evidence.
    pub fn resolve(self) -> EventKind {
        let facts = match &self.evidence {
            Evidence::Chain { chain, roots, .. } => match &self.kind {
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
            Evidence::Signature {
                message,
                cert,
                scheme,
                signature,
            } => signature_facts(message, cert, *scheme, signature),
        };
        let (phase_side, check) = (self.kind.at().1, self.kind.id());
        let failure = self.error.as_ref().map(|e| {
            let mut f = failure_of(e);
            f.side = Some(phase_side);
            f.check = Some(check);
            match &self.evidence {
                Evidence::Chain {
                    chain, missing_ca, ..
                } => {
                    let leaf = chain.first().map(|c| describe_brief(c));
                    f.subject = leaf.as_ref().map(|l| l.subject.clone());
                    if let Some(ca) = missing_ca {
                        f.code = FailureCode::MissingIntermediate;
                        f.missing_issuer = Some(describe_brief(ca).subject);
                    } else if f.code == FailureCode::UnknownIssuer {
                        f.missing_issuer = chain.last().map(|c| describe_brief(c).issuer);
                    }
                    if f.code == FailureCode::NotValidForName {
                        // The names as the certificate writes them (DNS:…, IP:…).
                        f.presented_names = leaf.map(|l| l.san).unwrap_or_default();
                    }
                    if let (Verdict::ServerName { asked }, None) = (&self.kind, &f.expected_name) {
                        f.expected_name = Some(asked.clone());
                    }
                }
                Evidence::Signature { cert, .. } => {
                    f.subject = Some(describe_brief(cert).subject);
                    if f.code == FailureCode::Other {
                        f.code = FailureCode::BadSignature;
                    }
                }
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
            None => self.reason_ok(&facts),
        };
        EventKind::Check {
            check,
            ok: self.error.is_none(),
            reason,
            about: Some(self.kind.about()),
            facts,
            failure,
            signature: self.signature_calc().map(Box::new),
            finished: None,
        }
    }

    /// The calculation behind a signature check, from the evidence rustls was handed: the spans
    /// of the signed bytes (for CertificateVerify, the handshake messages they are), the digest,
    /// the signer's public key.
    fn signature_calc(&self) -> Option<SignatureCalc> {
        let Evidence::Signature {
            message,
            cert,
            scheme,
            signature,
        } = &self.evidence
        else {
            return None;
        };
        let (signer, spans) = match self.kind {
            Verdict::ServerKxSignature => (
                Side::Broker,
                calc::ske_spans(message.len().saturating_sub(64)),
            ),
            _ => (Side::Device, calc::split_transcript(message)),
        };
        Some(calc::signature(
            signer,
            spans,
            message,
            u16::from(*scheme),
            signature,
            cert,
        ))
    }

    fn reason_ok(&self, facts: &[Fact]) -> String {
        let fact = |n: &str| {
            facts
                .iter()
                .find(|f| f.name == n)
                .map(|f| f.value.clone())
                .unwrap_or_default()
        };
        let signer = || match &self.evidence {
            Evidence::Signature { cert, .. } => subject_cn(cert),
            Evidence::Chain { chain, .. } => {
                chain.first().map(|c| subject_cn(c)).unwrap_or_default()
            }
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

fn chain_facts(all: &[Vec<u8>], roots: &[CertificateDer<'static>]) -> Vec<Fact> {
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
