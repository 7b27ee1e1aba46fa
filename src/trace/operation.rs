//! Operations: what a lesson that is not one mTLS 1.2 session records — a key generated, a message
//! signed, a signature checked, a CSR made and signed, a chain verified, a TLS 1.3 record sent.
//!
//! Each operation names who performed it ([`Actor`]), the library that did the work, its inputs and
//! outputs with this run's values, and, for a check, the verdict the library returned next to the
//! verdict the lesson expects. A deliberate failure (a tampered message that does not verify) is an
//! operation whose `verdict.ok` is false and whose `verdict.expected` is false too: the lesson went
//! as it should.

use super::hexbytes;
use serde::{Deserialize, Serialize};

/// One operation of a lesson (event kind `operation`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Operation {
    pub op: OperationKind,
    /// Who performed it, in the lesson's story.
    pub actor: Actor,
    /// The library that did the work (`ring`, `rsa`, `rcgen`, `x509-parser`, `rustls`, `iotls`).
    pub library: String,
    /// The part of the lesson it belongs to (e.g. `Sign and verify: ECDSA P-256`).
    pub part: String,
    /// One line: what was done.
    pub summary: String,
    /// What went in, in order.
    #[serde(default)]
    pub inputs: Vec<OpValue>,
    /// What came out, in order.
    #[serde(default)]
    pub outputs: Vec<OpValue>,
    /// For a check or a comparison: what the library answered, and what the lesson expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<OpVerdict>,
    /// What this operation shows, for people (one paragraph; lines end at `\n`).
    pub explain: String,
}

impl Operation {
    /// Whether the operation did what the lesson demonstrates (no verdict: it simply happened).
    pub fn as_expected(&self) -> bool {
        self.verdict.as_ref().is_none_or(|v| v.ok == v.expected)
    }

    /// Every value, inputs first.
    pub fn values(&self) -> impl Iterator<Item = (&'static str, &OpValue)> {
        self.inputs
            .iter()
            .map(|v| ("in", v))
            .chain(self.outputs.iter().map(|v| ("out", v)))
    }
}

/// What kind of operation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// A key pair is generated.
    GenerateKey,
    /// A message is signed with a private key.
    Sign,
    /// A signature is checked with a public key.
    Verify,
    /// Bytes are changed after signing or sending (the tampering of a lesson).
    Tamper,
    /// Bytes are encrypted to a public key.
    Encrypt,
    /// Bytes are decrypted with a private key.
    Decrypt,
    /// A certificate signing request is made and signed with the requester's key.
    CreateCsr,
    /// A CSR is read and its signature (proof of possession) checked.
    InspectCsr,
    /// A CA signs a certificate.
    IssueCertificate,
    /// A certificate is read (x509-parser).
    InspectCertificate,
    /// A private key file is read (its algorithm and public half).
    InspectKey,
    /// Something is handed from one party to another (a key that travels, a CA registered).
    Transfer,
    /// A certificate chain is verified against trust anchors (rustls's WebPKI verifier).
    VerifyChain,
    /// Two values are compared (or searched for) by iotls.
    Compare,
    /// An ephemeral (EC)DH key agreement.
    KeyAgreement,
    /// A TLS session runs (the TLS 1.3 contrast).
    TlsSession,
    /// A TLS record as a side wrote it on the socket.
    TlsRecord,
}

impl OperationKind {
    pub fn name(self) -> &'static str {
        match self {
            OperationKind::GenerateKey => "generate key",
            OperationKind::Sign => "sign",
            OperationKind::Verify => "verify",
            OperationKind::Tamper => "tamper",
            OperationKind::Encrypt => "encrypt",
            OperationKind::Decrypt => "decrypt",
            OperationKind::CreateCsr => "create CSR",
            OperationKind::InspectCsr => "inspect CSR",
            OperationKind::IssueCertificate => "issue certificate",
            OperationKind::InspectCertificate => "inspect certificate",
            OperationKind::InspectKey => "inspect key",
            OperationKind::Transfer => "hand over",
            OperationKind::VerifyChain => "verify chain",
            OperationKind::Compare => "compare",
            OperationKind::KeyAgreement => "key agreement",
            OperationKind::TlsSession => "TLS session",
            OperationKind::TlsRecord => "TLS record",
        }
    }
}

/// Who performed an operation, in the lesson's story.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The device (the pizza button), or a TLS client.
    Device,
    /// The broker (the shop's server), or a TLS server.
    Broker,
    /// The certificate authority the broker's operator runs (the shop's CA).
    Ca,
    /// A device maker's own CA, registered with the broker.
    OwnCa,
    /// Someone who records traffic or changes messages.
    Attacker,
    /// iotls itself, describing or comparing what the others produced.
    Iotls,
}

impl Actor {
    pub fn name(self) -> &'static str {
        match self {
            Actor::Device => "device",
            Actor::Broker => "broker",
            Actor::Ca => "CA",
            Actor::OwnCa => "own CA",
            Actor::Attacker => "attacker",
            Actor::Iotls => "iotls",
        }
    }

    /// The side of the diagram the operation is drawn on: the device's or the broker's; iotls for
    /// everyone else (a CA and an attacker are not an end of a connection).
    pub fn side(self) -> super::Side {
        match self {
            Actor::Device => super::Side::Device,
            Actor::Broker => super::Side::Broker,
            Actor::Ca | Actor::OwnCa | Actor::Attacker | Actor::Iotls => super::Side::Iotls,
        }
    }
}

/// A named input or output.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OpValue {
    pub name: String,
    #[serde(flatten)]
    pub data: OpData,
}

/// The value itself: bytes (hex in JSON) or text.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OpData {
    Bytes {
        #[serde(with = "hexbytes")]
        hex: Vec<u8>,
    },
    Text {
        text: String,
    },
}

impl OpValue {
    pub fn bytes(name: impl Into<String>, b: impl Into<Vec<u8>>) -> Self {
        OpValue {
            name: name.into(),
            data: OpData::Bytes { hex: b.into() },
        }
    }
    pub fn text(name: impl Into<String>, t: impl Into<String>) -> Self {
        OpValue {
            name: name.into(),
            data: OpData::Text { text: t.into() },
        }
    }
    /// The bytes, if the value is bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.data {
            OpData::Bytes { hex } => Some(hex),
            OpData::Text { .. } => None,
        }
    }
    /// The text, if the value is text.
    pub fn as_text(&self) -> Option<&str> {
        match &self.data {
            OpData::Text { text } => Some(text),
            OpData::Bytes { .. } => None,
        }
    }
    /// The value for one line of text: text as is, bytes as hex (long ones shortened).
    pub fn display(&self, max_hex: usize) -> String {
        match &self.data {
            OpData::Text { text } => text.clone(),
            OpData::Bytes { hex } => {
                let h = super::hex(hex);
                if h.len() > max_hex {
                    format!("{}… ({} bytes)", &h[..max_hex], hex.len())
                } else {
                    format!("{h} ({} bytes)", hex.len())
                }
            }
        }
    }
}

/// A verdict of an operation: what the library returned, and what the lesson expects.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OpVerdict {
    /// What the library (or iotls's comparison) answered: valid / equal / found.
    pub ok: bool,
    /// What the lesson demonstrates: false for a deliberate failure.
    pub expected: bool,
    /// The library's answer in words (e.g. ring's `Unspecified`, webpki's `UnknownIssuer`).
    pub reason: String,
}
