//! How a session ended, as data: a typed failure with the values that explain it, one result per
//! thing the device asked the broker, and the exit code that follows from them.
//!
//! [`crate::trace::Outcome`] is computed from the trace's typed events (see
//! `engine::outcome`), never from display text; the words for people are written from these values
//! by the narration.

use super::{CheckId, Side};
use serde::{Deserialize, Serialize};

/// Why something failed, as a stable snake_case code.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The chain does not lead to a trusted root, and the checker knows no CA that would complete it.
    UnknownIssuer,
    /// The chain lacks an intermediate CA that the checker knows (a registered CA): the sender did
    /// not send it.
    MissingIntermediate,
    /// A certificate's validity ended before now.
    Expired,
    /// A certificate's validity starts after now.
    NotYetValid,
    /// The certificate does not name the server name asked for.
    NotValidForName,
    /// A signature (in the chain, ServerKeyExchange or CertificateVerify) does not verify.
    BadSignature,
    /// The extended key usage does not allow this use (serverAuth / clientAuth).
    InvalidPurpose,
    /// A certificate is revoked.
    Revoked,
    /// A certificate is not valid DER / X.509.
    BadEncoding,
    /// The device sent no certificate.
    NoCertificate,
    /// A Finished value did not match: the two sides did not compute the same keys over the same talk.
    FinishedMismatch,
    /// The certificate is registered but not ACTIVE.
    InactiveCertificate,
    /// The certificate (or its CA) is not in the broker's registry.
    Unregistered,
    /// No TLS version both sides speak.
    ProtocolVersion,
    /// No cipher suite, group or signature scheme both sides support.
    NoSharedCipher,
    /// No application protocol (ALPN) both sides accept.
    NoApplicationProtocol,
    /// The peer does not speak TLS (its first bytes are not a TLS record).
    PeerNotTls,
    /// The peer closed the connection (or reset it) without saying why.
    ClosedByPeer,
    /// The peer stopped answering.
    Timeout,
    /// A policy decision denied an MQTT action.
    PolicyDenied,
    /// The broker refused an MQTT request with a reason code (MQTT 5, or a CONNACK return code).
    MqttRefused,
    /// The peer sent bytes that break the protocol (TLS or MQTT).
    ProtocolViolation,
    /// The person running a live tour quit before the session ended (no side failed).
    Interrupted,
    /// A fatal alert that none of the codes above explains.
    Alert,
    /// Something else; the `detail` says what.
    #[default]
    Other,
}

impl FailureCode {
    /// Every code, in declaration order.
    pub const ALL: [FailureCode; 25] = [
        FailureCode::UnknownIssuer,
        FailureCode::MissingIntermediate,
        FailureCode::Expired,
        FailureCode::NotYetValid,
        FailureCode::NotValidForName,
        FailureCode::BadSignature,
        FailureCode::InvalidPurpose,
        FailureCode::Revoked,
        FailureCode::BadEncoding,
        FailureCode::NoCertificate,
        FailureCode::FinishedMismatch,
        FailureCode::InactiveCertificate,
        FailureCode::Unregistered,
        FailureCode::ProtocolVersion,
        FailureCode::NoSharedCipher,
        FailureCode::NoApplicationProtocol,
        FailureCode::PeerNotTls,
        FailureCode::ClosedByPeer,
        FailureCode::Timeout,
        FailureCode::PolicyDenied,
        FailureCode::MqttRefused,
        FailureCode::ProtocolViolation,
        FailureCode::Interrupted,
        FailureCode::Alert,
        FailureCode::Other,
    ];

    /// The snake_case code, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::UnknownIssuer => "unknown_issuer",
            FailureCode::MissingIntermediate => "missing_intermediate",
            FailureCode::Expired => "expired",
            FailureCode::NotYetValid => "not_yet_valid",
            FailureCode::NotValidForName => "not_valid_for_name",
            FailureCode::BadSignature => "bad_signature",
            FailureCode::InvalidPurpose => "invalid_purpose",
            FailureCode::Revoked => "revoked",
            FailureCode::BadEncoding => "bad_encoding",
            FailureCode::NoCertificate => "no_certificate",
            FailureCode::FinishedMismatch => "finished_mismatch",
            FailureCode::InactiveCertificate => "inactive_certificate",
            FailureCode::Unregistered => "unregistered",
            FailureCode::ProtocolVersion => "protocol_version",
            FailureCode::NoSharedCipher => "no_shared_cipher",
            FailureCode::NoApplicationProtocol => "no_application_protocol",
            FailureCode::PeerNotTls => "peer_not_tls",
            FailureCode::ClosedByPeer => "closed_by_peer",
            FailureCode::Timeout => "timeout",
            FailureCode::PolicyDenied => "policy_denied",
            FailureCode::MqttRefused => "mqtt_refused",
            FailureCode::ProtocolViolation => "protocol_violation",
            FailureCode::Interrupted => "interrupted",
            FailureCode::Alert => "alert",
            FailureCode::Other => "other",
        }
    }
}

/// A failure with the values that explain it. Only the values that apply are present in JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    pub code: FailureCode,
    /// The side that detected it (made the check, sent the alert, closed the connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// The check that failed, if a check did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckId>,
    /// The certificate concerned (its subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Validity bounds and the time of the check, RFC 3339 (`2020-01-01T00:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
    /// The server name asked for, and the names the certificate presents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presented_names: Vec<String>,
    /// The issuer the chain stops at (unknown_issuer), or the CA the sender left out
    /// (missing_intermediate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_issuer: Option<String>,
    /// The TLS alert that went out because of it (RFC name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// MQTT: the action refused, its topic or filter, and the reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<u8>,
    /// The policy decision (`EXPLICIT_DENY`, `IMPLICIT_DENY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// The library's own words (rustls's error, an I/O error), for the curious.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Failure {
    pub fn new(code: FailureCode) -> Self {
        Failure {
            code,
            ..Failure::default()
        }
    }
}

/// What the device asked the broker for.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MqttRequest {
    Connect,
    Publish,
    Subscribe,
    Unsubscribe,
    Ping,
}

/// What became of one request, as far as the trace shows.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MqttResult {
    /// Done: acknowledged with success, or (where iotls is the broker) allowed and carried out.
    CarriedOut,
    /// Refused: a reason code ≥ 0x80 (MQTT 5), a CONNACK return code, or (where iotls is the
    /// broker) a denied policy decision.
    Refused,
    /// The broker closed the connection instead of answering (AWS IoT's MQTT 3.1.1 refusal).
    ConnectionClosed,
    /// MQTT 3.1.1 PUBACK seen by the device: it proves receipt, not authorization or delivery.
    AcknowledgedUnverifiable,
    /// Sent at QoS 0: nothing comes back, so nothing can be known.
    SentUnacknowledged,
    /// Never sent: the session ended before.
    NotSent,
}

impl MqttResult {
    /// What an answer's return / reason code says: below 0x80 success, 0x80 and above a refusal
    /// (MQTT 5 §2.4; a 3.1.1 CONNACK's non-zero return codes are refusals too, see [`Self::of_connack`]).
    pub fn of_code(code: u8) -> Self {
        if code < 0x80 {
            MqttResult::CarriedOut
        } else {
            MqttResult::Refused
        }
    }

    /// A CONNACK: 0 accepts; anything else refuses (3.1.1 return codes 1–5, MQTT 5 0x80 and up).
    pub fn of_connack(code: u8) -> Self {
        if code == 0 {
            MqttResult::CarriedOut
        } else {
            MqttResult::Refused
        }
    }

    /// Whether this result counts as success for the exit code.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            MqttResult::CarriedOut
                | MqttResult::AcknowledgedUnverifiable
                | MqttResult::SentUnacknowledged
        )
    }
}

/// One request and its result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MqttOutcome {
    pub action: MqttRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<u8>,
    pub result: MqttResult,
    /// The reason / return code that came back, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<u8>,
}

impl MqttRequest {
    /// The MQTT packet that asks for it.
    pub fn packet_name(self) -> &'static str {
        match self {
            MqttRequest::Connect => "CONNECT",
            MqttRequest::Publish => "PUBLISH",
            MqttRequest::Subscribe => "SUBSCRIBE",
            MqttRequest::Unsubscribe => "UNSUBSCRIBE",
            MqttRequest::Ping => "PINGREQ",
        }
    }
}

impl MqttOutcome {
    /// A request with nothing known about it yet (`result` is set by whoever knows it).
    pub fn new(action: MqttRequest, result: MqttResult) -> Self {
        MqttOutcome {
            action,
            client_id: None,
            topic: None,
            filter: None,
            qos: None,
            result,
            reason_code: None,
        }
    }
}

/// Exit codes of the non-interactive commands. Stable: scripts depend on them.
pub mod exit {
    /// Everything the device asked was carried out (or, for an MQTT 3.1.1 PUBACK, acknowledged).
    pub const OK: u8 = 0;
    /// Command-line usage error (clap's own code).
    pub const USAGE: u8 = 2;
    /// Set-up error: a file that cannot be read or used, an address, a port.
    pub const SETUP: u8 = 3;
    /// The TLS handshake did not complete.
    pub const TLS: u8 = 4;
    /// The broker refused an MQTT request or closed the connection after the handshake.
    pub const MQTT: u8 = 5;
    /// `iotls lesson check`: the run contradicted the lesson's `[expect]`.
    pub const EXPECT: u8 = 6;
}
