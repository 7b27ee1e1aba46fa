//! The trace: one ordered, typed record of a real session — the single data model of every view.
//!
//! The engine records raw observations (bytes on the wire, verifier verdicts, key-log lines, policy
//! decisions) in causal order; [`crate::tls::dissect`] turns the bytes into decoded events; every view
//! (plain text, JSON, the terminal UI) renders a [`Trace`]. Nothing in here is simulated: every byte
//! was on a socket and every verdict is the one rustls, ring or the policy engine returned.
//!
//! The JSON form of these types is documented in `docs/trace-format.md`; bump [`FORMAT`] when a
//! change would break a reader of the old form.

mod calc;
mod codes;
mod operation;
mod outcome;

pub use calc::{
    FinishedCalc, KeyExpansion, KeyPart, KeySchedule, MasterSecret, RecordProtection, SessionHash,
    SignatureCalc, Span,
};

pub use codes::{hexbytes, AlertDescription, AlertLevel, HandshakeType};
pub use operation::{Actor, OpData, OpValue, OpVerdict, Operation, OperationKind};
pub use outcome::{exit, Failure, FailureCode, MqttOutcome, MqttRequest, MqttResult};

use serde::{Deserialize, Serialize};

/// Version tag of the JSON trace format (docs/trace-format.md says what changed from version 1).
pub const FORMAT: &str = "iotls-trace/2";

/// A whole recorded session.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Trace {
    /// Always [`FORMAT`].
    pub format: String,
    /// Name of the scenario that produced the trace (e.g. `pizza-button`).
    pub scenario: String,
    /// Wall-clock start of the session, seconds since the Unix epoch.
    pub started_unix: u64,
    /// What TLS negotiated; `None` when the handshake stopped before ServerHello.
    pub tls: Option<TlsSummary>,
    /// How the session ended.
    pub outcome: Outcome,
    /// Every certificate seen on the wire or configured as a trust anchor, described once.
    pub certificates: Vec<CertInfo>,
    /// Every TLS record that was on the wire, whole (5-byte header included), in the order sent.
    #[serde(default)]
    pub records: Vec<WireRecord>,
    /// Events in causal order.
    pub events: Vec<Event>,
    /// Set by `iotls replay` for a trace it built from a capture or re-verified: where it came
    /// from and what iotls could not re-verify offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayInfo>,
    /// The lesson's words for its device (`[words]` of a walkthrough); empty, and absent from
    /// the JSON, for a session that is not a lesson (`connect`, `serve`, `replay` of a capture).
    #[serde(default, skip_serializing_if = "LessonWords::is_empty")]
    pub words: LessonWords,
}

/// What a lesson calls its device's actions, for the narration (`[words]`,
/// docs/walkthrough-format.md). Each is optional; narration without them is neutral.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LessonWords {
    /// Said before the device's PUBLISH: `The button is pressed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    /// What the device's payload is: `the pizza order`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

impl LessonWords {
    pub fn is_empty(&self) -> bool {
        self.publish.is_none() && self.payload.is_none()
    }
}

/// How `iotls replay` made or re-verified a trace.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ReplayInfo {
    /// What was read, e.g. `capture cap.pcapng, session 1 of 2`.
    pub source: String,
    /// The roots the chains were re-verified against (`--ca root.pem`, or the trust anchors the
    /// trace records), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<String>,
    /// What iotls could not re-verify, and why. No `check` event is written for these.
    #[serde(default)]
    pub not_reverified: Vec<NotReverified>,
    /// Warnings about the input: a key log that matches no session, bytes missing from a capture.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A check (or `mqtt`, `policy`) iotls could not make offline, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotReverified {
    /// A check id (`server_chain`, …), `mqtt` or `policy`.
    pub check: String,
    pub reason: String,
}

/// One TLS record exactly as it was on the wire (or, for bytes that were not TLS, the chunk).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireRecord {
    /// The sender.
    pub from: Side,
    /// Index of the record in its direction, from 0 (the `record` of the events it carried).
    pub index: u32,
    /// Microseconds since the session started, when the record's last byte was seen.
    pub t_us: u64,
    /// The record: header and fragment (ciphertext when encrypted).
    #[serde(rename = "hex", with = "hexbytes")]
    pub bytes: Vec<u8>,
}

/// What a recording bound left out of one direction (the `gap` event).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GapSide {
    /// Index of the first record not kept (meaningless when `records` is 0).
    pub from_record: u32,
    /// How many consecutive records, from `from_record` on, were not kept.
    pub records: u32,
    /// Their bytes, headers included.
    pub bytes: u64,
}

/// The negotiated TLS parameters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TlsSummary {
    /// `TLSv1.2`.
    pub version: String,
    /// IANA name, e.g. `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    pub cipher_suite: String,
    /// Key-exchange group, e.g. `x25519`; `None` if ServerKeyExchange was never seen.
    pub kx_group: Option<String>,
    /// Whether both hellos carried `extended_master_secret`.
    pub extended_master_secret: bool,
    /// Server name the device asked for (SNI), if any.
    pub sni: Option<String>,
    /// The application protocol the broker chose from the device's ALPN offer (ServerHello's
    /// `application_layer_protocol_negotiation`), e.g. `x-amzn-mqtt-ca`; `None` when it chose none.
    #[serde(default)]
    pub alpn: Option<String>,
}

/// How a session ended: computed from the typed events (`engine::outcome`), never from text.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    /// True when everything the device asked was carried out (or, for an MQTT 3.1.1 PUBACK,
    /// acknowledged) and no check failed.
    pub ok: bool,
    /// Phase in which the session stopped (or `close` for a normal end).
    pub phase: Phase,
    /// One line for a person: what happened, on which side, and why (written from the values below).
    pub summary: String,
    /// What failed first, with the values that explain it; `None` when nothing failed.
    pub failure: Option<Failure>,
    /// One entry per thing the device asked the broker, with what became of it.
    #[serde(default)]
    pub mqtt: Vec<MqttOutcome>,
    /// Whether the TLS handshake completed (a side's rustls finished it).
    #[serde(default)]
    pub tls_completed: bool,
}

impl Outcome {
    /// The exit code of a non-interactive command that ran this session ([`exit`]).
    pub fn exit_code(&self) -> u8 {
        if self.ok {
            return exit::OK;
        }
        if self.tls_completed {
            exit::MQTT
        } else {
            exit::TLS
        }
    }
}

/// The teaching phases of a session. Events are in causal order, so phases can recur.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// TCP connection set-up.
    Connect,
    /// ClientHello / ServerHello: agreeing on version, suite, randoms.
    Hello,
    /// The broker proves who it is: its certificate chain and ServerKeyExchange signature.
    ServerAuth,
    /// The broker asks for, and checks, the device's certificate.
    ClientAuth,
    /// ECDHE: both sides contribute a key share and derive the master secret.
    KeyExchange,
    /// CertificateVerify: the device signs the transcript hash with its private key.
    HandshakeSignature,
    /// ChangeCipherSpec and Finished: both prove they computed the same keys over the same talk.
    Finished,
    /// MQTT packets inside encrypted application data.
    Mqtt,
    /// Authorization decisions (registry, policies).
    Policy,
    /// The session ends (close_notify, TCP close, or a fatal alert).
    Close,
    /// A lesson made of operations (keys, signatures, CSRs, chains) rather than one session.
    Operation,
}

impl Phase {
    /// The phases of a session, in teaching order (`Operation` belongs to the lessons made of
    /// operations, not to a session).
    pub const ALL: [Phase; 10] = [
        Phase::Connect,
        Phase::Hello,
        Phase::ServerAuth,
        Phase::ClientAuth,
        Phase::KeyExchange,
        Phase::HandshakeSignature,
        Phase::Finished,
        Phase::Mqtt,
        Phase::Policy,
        Phase::Close,
    ];

    /// Title for people.
    pub fn title(self) -> &'static str {
        match self {
            Phase::Connect => "TCP connect",
            Phase::Hello => "Hello",
            Phase::ServerAuth => "Server authentication",
            Phase::ClientAuth => "Client authentication",
            Phase::KeyExchange => "Key exchange",
            Phase::HandshakeSignature => "Handshake signature",
            Phase::Finished => "Finished",
            Phase::Mqtt => "MQTT",
            Phase::Policy => "Policy",
            Phase::Close => "Close",
            Phase::Operation => "Operations",
        }
    }
}

/// Who did or sent something. For wire events, the sender; for checks, the side that really made
/// the check — `Iotls` for what iotls recomputed itself from the bytes and the key log.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Device,
    Broker,
    /// iotls itself, as an observer (never a sender).
    Iotls,
}

impl Side {
    /// The other end of the connection (iotls has none).
    pub fn peer(self) -> Side {
        match self {
            Side::Device => Side::Broker,
            Side::Broker => Side::Device,
            Side::Iotls => Side::Iotls,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Side::Device => "device",
            Side::Broker => "broker",
            Side::Iotls => "iotls",
        }
    }
}

/// The checks a session can contain, by stable id.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// The device checks the broker's chain against its trust anchors.
    ServerChain,
    /// The device checks the broker's certificate against the name it asked for.
    ServerName,
    /// The device checks the ServerKeyExchange signature.
    ServerKxSignature,
    /// The broker checks the device's chain.
    ClientChain,
    /// The broker checks the device's CertificateVerify signature.
    CertificateVerify,
    /// The device's Finished, checked by the broker (or recomputed by iotls).
    ClientFinished,
    /// The broker's Finished, checked by the device (or recomputed by iotls).
    ServerFinished,
    /// The broker looks the certificate up in its registry.
    Registry,
}

impl CheckId {
    /// Every check, in the order a session makes them.
    pub const ALL: [CheckId; 8] = [
        CheckId::ServerChain,
        CheckId::ServerName,
        CheckId::ServerKxSignature,
        CheckId::ClientChain,
        CheckId::CertificateVerify,
        CheckId::ClientFinished,
        CheckId::ServerFinished,
        CheckId::Registry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::ServerChain => "server_chain",
            CheckId::ServerName => "server_name",
            CheckId::ServerKxSignature => "server_kx_signature",
            CheckId::ClientChain => "client_chain",
            CheckId::CertificateVerify => "certificate_verify",
            CheckId::ClientFinished => "client_finished",
            CheckId::ServerFinished => "server_finished",
            CheckId::Registry => "registry",
        }
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of the trace.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Position in the trace, from 0.
    pub seq: u32,
    /// Microseconds since the session started.
    pub t_us: u64,
    pub phase: Phase,
    /// Sender (wire events) or actor (checks, secrets, decisions).
    pub side: Side,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A decoded field of a message, with where its bytes are in the message's `hex`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Field {
    /// Field name, e.g. `random` or `extension server_name`.
    pub name: String,
    /// Byte offset in the message (for handshake messages: from the 4-byte header's first byte).
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// Decoded value for display, e.g. `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xc02b)`.
    pub value: String,
    /// Nesting depth: 0 for top-level fields, 1 for parts of them, …
    pub depth: u8,
}

impl Field {
    /// The field's stable id, the key of its words in `words/fields.toml`: see [`field_id`].
    pub fn id(&self) -> String {
        field_id(&self.name)
    }
}

/// The stable id of a field named `name`: the name up to its first ` (` or `[` (which hold
/// per-instance detail: `certificate[1]`, `public (server ECDHE public key)`), trimmed, in lower
/// case, spaces as `_`. `extension server_name` → `extension_server_name`.
pub fn field_id(name: &str) -> String {
    let stem = name.split(" (").next().unwrap_or(name);
    let stem = stem.split('[').next().unwrap_or(stem);
    stem.trim().to_lowercase().replace(' ', "_")
}

/// The field list of a message, built as a decoder walks its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<Field>);

impl Fields {
    pub fn add(
        &mut self,
        name: &str,
        offset: usize,
        len: usize,
        value: impl Into<String>,
        depth: u8,
    ) {
        self.0.push(Field {
            name: name.to_string(),
            offset,
            len,
            value: value.into(),
            depth,
        });
    }

    /// Adds a field whose value is filled in later with [`Self::set`]; returns its index.
    pub fn open(&mut self, name: &str, offset: usize, len: usize, depth: u8) -> usize {
        self.add(name, offset, len, String::new(), depth);
        self.0.len() - 1
    }

    pub fn set(&mut self, i: usize, value: impl Into<String>) {
        if let Some(f) = self.0.get_mut(i) {
            f.value = value.into();
        }
    }
}

/// The most MQTT packets an `app_data` event lists: a 16 KiB record can hold 8,000 PINGREQs, and
/// each listed packet costs far more than its 2 bytes.
pub const MAX_MQTT_LISTED: usize = 32;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What happened.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// TCP connection established.
    Tcp {
        device_addr: String,
        broker_addr: String,
    },
    /// A complete TLS handshake message.
    Handshake {
        /// RFC 5246 name in JSON (`ClientHello`, …, `Unknown(N)`).
        msg: HandshakeType,
        /// Handshake type byte.
        msg_type: u8,
        /// The complete plaintext message including its 4-byte header (decrypted for Finished).
        #[serde(with = "hexbytes")]
        hex: Vec<u8>,
        /// Index (from 0) of the TLS record, in this direction, that completed the message.
        record: u32,
        /// Whether the message travelled encrypted (Finished).
        encrypted: bool,
        /// For an encrypted message: the whole TLS record as sent (header + ciphertext).
        #[serde(with = "hexbytes::opt")]
        ciphertext: Option<Vec<u8>>,
        /// Decoded fields with offsets into `hex`.
        fields: Vec<Field>,
        /// ServerKeyExchange and CertificateVerify: iotls's view of the signature, from the wire
        /// (what was signed, the digest, the signer's public key).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<Box<SignatureCalc>>,
        /// An encrypted message (Finished): how its record was protected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<Box<RecordProtection>>,
    },
    /// A ChangeCipherSpec record.
    ChangeCipherSpec {
        #[serde(with = "hexbytes")]
        hex: Vec<u8>,
        record: u32,
    },
    /// A TLS alert.
    Alert {
        /// `warning` or `fatal` in JSON.
        level: AlertLevel,
        /// RFC name in JSON, e.g. `bad_certificate`, `close_notify`.
        description: AlertDescription,
        code: u8,
        encrypted: bool,
        /// Whole record as sent (for an encrypted alert: header + ciphertext).
        #[serde(with = "hexbytes")]
        hex: Vec<u8>,
        record: u32,
        /// An encrypted alert: how its record was protected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<Box<RecordProtection>>,
    },
    /// An application-data record: its ciphertext and the MQTT packets completed in it.
    AppData {
        /// Whole record as sent (header + explicit nonce + ciphertext + tag).
        #[serde(with = "hexbytes")]
        ciphertext: Vec<u8>,
        /// Decrypted content; `None` when it could not be decrypted.
        #[serde(with = "hexbytes::opt")]
        plaintext: Option<Vec<u8>>,
        record: u32,
        /// The MQTT packets completed in this record, at most [`MAX_MQTT_LISTED`] of them.
        mqtt: Vec<MqttPacket>,
        /// Packets completed in this record beyond the first [`MAX_MQTT_LISTED`]: decoded (the
        /// stream keeps its place) but not listed.
        #[serde(default, skip_serializing_if = "is_zero")]
        mqtt_not_listed: u32,
        /// How the record was protected (when the keys are known).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<Box<RecordProtection>>,
    },
    /// Bytes that could not be decoded as TLS (e.g. a peer speaking another protocol).
    Undecodable {
        #[serde(with = "hexbytes")]
        hex: Vec<u8>,
        reason: String,
        /// The record these bytes belong to, when they were inside a TLS record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<u32>,
        /// The bytes are not TLS at all: the sender does not speak TLS on this connection.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        not_tls: bool,
    },
    /// A verdict: a certificate-chain check, a signature check, a Finished check, a registry check.
    /// The event's `side` is who made it: `device`/`broker` when that side's TLS library or policy
    /// engine decided, `iotls` when iotls recomputed it from the bytes and the key log.
    Check {
        check: CheckId,
        ok: bool,
        /// Why, in words (rustls's / ring's verdict, or what matched).
        reason: String,
        /// The handshake message this check is about, if any.
        about: Option<HandshakeType>,
        /// Named values of this check (e.g. `transcript_sha256`), in display order.
        facts: Vec<Fact>,
        /// For a failed check: what failed, with the values that explain it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<Box<Failure>>,
        /// A signature check (`server_kx_signature`, `certificate_verify`): the calculation, from
        /// the evidence the verifier was handed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<Box<SignatureCalc>>,
        /// iotls's Finished recomputation: the calculation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finished: Option<Box<FinishedCalc>>,
    },
    /// iotls's key schedule (side `iotls`, phase `key_exchange`), right after the device's
    /// ClientKeyExchange, when the key log's master secret is known: from it to the record keys.
    KeySchedule(Box<KeySchedule>),
    /// A key-log line: what the TLS library exported to decrypt the session.
    Secret {
        /// `CLIENT_RANDOM`.
        label: String,
        #[serde(with = "hexbytes")]
        client_random: Vec<u8>,
        #[serde(with = "hexbytes")]
        secret: Vec<u8>,
    },
    /// An authorization decision of the policy engine.
    Policy(PolicyEvent),
    /// One operation of a lesson that is not a session (`iotls::engine::operations`): a key
    /// generated, a signature checked, a certificate issued, a TLS 1.3 record written.
    Operation(Box<Operation>),
    /// The connection ended, as seen by `by` (or by nobody in particular).
    Closed {
        by: Option<Side>,
        cause: CloseCause,
        /// In words, for people.
        reason: String,
        /// What failed, when the close is a failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<Box<Failure>>,
    },
    /// `serve` kept only the first and the last records of a long session: what it left out,
    /// here, where it was. The records after it keep their real indices.
    Gap {
        device: GapSide,
        broker: GapSide,
        /// Other observations left out with them (policy decisions that allowed, …).
        events: u64,
        /// In words: the bound, and what the gap does to MQTT decoding.
        reason: String,
    },
    /// What a witness — another device of the lesson, e.g. the shop's order subscriber — really
    /// did and saw on its own TLS connection to the same broker (side `device`). Its bytes are not
    /// in this trace (the trace is one connection); these events never decide the outcome.
    Witness {
        /// The witness's name in the lesson (`[[devices]] name`), or its client id.
        device: String,
        /// Its keys sit beside `device` in JSON: `"what": "received", "topic": …, "payload": …`.
        #[serde(flatten)]
        what: WitnessKind,
    },
    /// Something failed outside TLS checks (I/O error, timeout, peer vanished).
    Error {
        stage: Stage,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<Box<Failure>>,
    },
}

/// One thing a witness did or saw (see [`EventKind::Witness`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum WitnessKind {
    /// Its handshake completed and the broker accepted its CONNECT.
    Connected { client_id: String },
    /// The broker answered its SUBSCRIBE: `code` is the SUBACK's return (reason) code for the
    /// filter (0 or 1: granted at that QoS; 0x80 or more: refused).
    Subscribed { filter: String, code: u8 },
    /// A PUBLISH the broker delivered to it on a subscription.
    Received {
        topic: String,
        #[serde(with = "hexbytes")]
        payload: Vec<u8>,
    },
    /// It could not connect, or the broker refused or ended its session: why, in words.
    Refused { reason: String },
    /// It sent DISCONNECT and closed, after the lesson's device was done.
    Disconnected,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CloseCause {
    /// Orderly: the device said DISCONNECT (or, TLS only, closed after the handshake).
    Done,
    /// The TLS handshake failed on the side that closed.
    HandshakeFailed,
    /// The side that closed refused an authorization (registry or policy).
    Refused,
    /// The side that closed was refused by its peer (e.g. a CONNACK with a failure code).
    RefusedByPeer,
    /// The side that closed saw its peer close first (EOF, close_notify, reset).
    PeerClosed,
    /// The peer sent MQTT DISCONNECT with a reason code (MQTT 5) — e.g. 0x87.
    PeerDisconnect,
    /// The peer stopped answering.
    Timeout,
    /// The peer broke the MQTT protocol (e.g. a second CONNECT, a packet before CONNECT).
    ProtocolViolation,
    /// Writing failed: the peer went away.
    WriteFailed,
    /// Another connection with the same client id took the session over (AWS IoT: the older
    /// connection is closed; MQTT 5: DISCONNECT 0x8E).
    TakenOver,
    /// The person running the tour quit before the session ended (a live tour): the side closed
    /// its TCP connection.
    Interrupted,
}

/// Where something failed outside the TLS checks.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    TcpConnect,
    TlsHandshake,
    BrokerSetup,
}

impl Stage {
    pub fn title(self) -> &'static str {
        match self {
            Stage::TcpConnect => "TCP connect",
            Stage::TlsHandshake => "TLS handshake",
            Stage::BrokerSetup => "broker set-up",
        }
    }
}

/// A named value attached to a check.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

impl Fact {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Fact {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// MQTT control packet types (and `MALFORMED` for bytes that are not a valid packet).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MqttPacketType {
    Connect,
    #[serde(rename = "CONNACK")]
    ConnAck,
    Publish,
    #[serde(rename = "PUBACK")]
    PubAck,
    #[serde(rename = "PUBREC")]
    PubRec,
    #[serde(rename = "PUBREL")]
    PubRel,
    #[serde(rename = "PUBCOMP")]
    PubComp,
    Subscribe,
    #[serde(rename = "SUBACK")]
    SubAck,
    Unsubscribe,
    #[serde(rename = "UNSUBACK")]
    UnsubAck,
    #[serde(rename = "PINGREQ")]
    PingReq,
    #[serde(rename = "PINGRESP")]
    PingResp,
    Disconnect,
    Auth,
    #[default]
    Malformed,
}

impl MqttPacketType {
    /// The upper-case MQTT name, e.g. `PUBACK`.
    pub fn name(self) -> &'static str {
        match self {
            MqttPacketType::Connect => "CONNECT",
            MqttPacketType::ConnAck => "CONNACK",
            MqttPacketType::Publish => "PUBLISH",
            MqttPacketType::PubAck => "PUBACK",
            MqttPacketType::PubRec => "PUBREC",
            MqttPacketType::PubRel => "PUBREL",
            MqttPacketType::PubComp => "PUBCOMP",
            MqttPacketType::Subscribe => "SUBSCRIBE",
            MqttPacketType::SubAck => "SUBACK",
            MqttPacketType::Unsubscribe => "UNSUBSCRIBE",
            MqttPacketType::UnsubAck => "UNSUBACK",
            MqttPacketType::PingReq => "PINGREQ",
            MqttPacketType::PingResp => "PINGRESP",
            MqttPacketType::Disconnect => "DISCONNECT",
            MqttPacketType::Auth => "AUTH",
            MqttPacketType::Malformed => "MALFORMED",
        }
    }

    /// The type of a packet from the high nibble of its first byte.
    pub fn from_nibble(n: u8) -> Option<Self> {
        Some(match n {
            1 => MqttPacketType::Connect,
            2 => MqttPacketType::ConnAck,
            3 => MqttPacketType::Publish,
            4 => MqttPacketType::PubAck,
            5 => MqttPacketType::PubRec,
            6 => MqttPacketType::PubRel,
            7 => MqttPacketType::PubComp,
            8 => MqttPacketType::Subscribe,
            9 => MqttPacketType::SubAck,
            10 => MqttPacketType::Unsubscribe,
            11 => MqttPacketType::UnsubAck,
            12 => MqttPacketType::PingReq,
            13 => MqttPacketType::PingResp,
            14 => MqttPacketType::Disconnect,
            15 => MqttPacketType::Auth,
            _ => return None,
        })
    }
}

impl std::fmt::Display for MqttPacketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded MQTT control packet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct MqttPacket {
    pub packet: MqttPacketType,
    /// The complete packet bytes.
    #[serde(with = "hexbytes")]
    pub hex: Vec<u8>,
    /// Offset of this packet in the record's plaintext.
    pub offset: usize,
    pub client_id: Option<String>,
    pub topic: Option<String>,
    /// Payload as UTF-8 when it is text.
    pub payload: Option<String>,
    pub qos: Option<u8>,
    pub pkid: Option<u16>,
    pub retain: Option<bool>,
    /// CONNACK / SUBACK / acknowledgement / DISCONNECT codes, in words (malformed: the reason).
    pub code: Option<String>,
    /// The CONNACK return code, or the reason code of an MQTT 5 acknowledgement or DISCONNECT
    /// (absent in a packet that carries none, which means success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<u8>,
    /// SUBACK: one return / reason code per filter. SUBSCRIBE: the filters asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason_codes: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// MQTT protocol level of the connection (4 = 3.1.1, 5 = MQTT 5), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Decoded fields with offsets into `hex`.
    pub fields: Vec<Field>,
}

/// The MQTT actions AWS IoT authorizes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    #[serde(rename = "iot:Connect")]
    Connect,
    #[serde(rename = "iot:Publish")]
    Publish,
    #[serde(rename = "iot:RetainPublish")]
    RetainPublish,
    #[serde(rename = "iot:Subscribe")]
    Subscribe,
    #[serde(rename = "iot:Receive")]
    Receive,
}

impl PolicyAction {
    pub fn iot_name(self) -> &'static str {
        match self {
            PolicyAction::Connect => "iot:Connect",
            PolicyAction::Publish => "iot:Publish",
            PolicyAction::RetainPublish => "iot:RetainPublish",
            PolicyAction::Subscribe => "iot:Subscribe",
            PolicyAction::Receive => "iot:Receive",
        }
    }
}

impl std::fmt::Display for PolicyAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.iot_name())
    }
}

/// A policy engine's decision.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "ALLOWED",
            Decision::ExplicitDeny => "EXPLICIT_DENY",
            Decision::ImplicitDeny => "IMPLICIT_DENY",
        }
    }
    pub fn allowed(self) -> bool {
        self == Decision::Allowed
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// What failed at this event, if something did: a failed check, a denied policy decision, or
    /// an error or close that carries a failure.
    pub fn failure(&self) -> Option<Failure> {
        match &self.kind {
            EventKind::Check {
                ok: false,
                failure,
                check,
                ..
            } => Some(failure.as_deref().cloned().unwrap_or_else(|| Failure {
                side: Some(self.side),
                check: Some(*check),
                ..Failure::default()
            })),
            EventKind::Policy(p) if !p.decision.allowed() => Some(Failure {
                side: Some(self.side),
                action: Some(p.action.iot_name().to_string()),
                topic: Some(short_arn(&p.resource).to_string()),
                decision: Some(p.decision.as_str().to_string()),
                reason_code: p.enforcement.reason_code(),
                ..Failure::new(FailureCode::PolicyDenied)
            }),
            EventKind::Error {
                failure: Some(f), ..
            }
            | EventKind::Closed {
                failure: Some(f), ..
            } => Some(Failure::clone(f)),
            _ => None,
        }
    }
}

/// `arn:aws:iot:us-east-1:123456789012:topic/x` → `topic/x`.
pub fn short_arn(resource: &str) -> &str {
    if resource.starts_with("arn:") {
        resource.splitn(6, ':').nth(5).unwrap_or(resource)
    } else {
        resource
    }
}

/// What the broker did because of a decision.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Allowed: the broker carries it out.
    CarriedOut,
    /// Denied: the broker closes the connection (AWS IoT on MQTT 3.1.1).
    ConnectionClosed,
    /// Denied: CONNACK 0x87, then the connection closes (MQTT 5).
    ConnackRefused,
    /// Denied: PUBACK 0x87, the connection stays open (MQTT 5).
    PubackRefused,
    /// Denied: DISCONNECT 0x87 — a QoS 0 publish has no PUBACK to carry the refusal (MQTT 5).
    Disconnected,
    /// Denied: SUBACK 0x87 for this filter, the connection stays open (MQTT 5).
    SubackRefused,
    /// Denied iot:Receive: the message is not delivered to this subscriber.
    NotDelivered,
    /// iotls's offline re-evaluation (`iotls replay --registry`): it enforced nothing; what the
    /// real broker did is in its answer on the wire.
    NotEnforced,
}

impl Enforcement {
    /// The reason code the refusal carried on the wire (0x87 Not authorized), if it carried one.
    pub fn reason_code(self) -> Option<u8> {
        match self {
            Enforcement::ConnackRefused
            | Enforcement::PubackRefused
            | Enforcement::SubackRefused
            | Enforcement::Disconnected => Some(0x87),
            Enforcement::CarriedOut
            | Enforcement::ConnectionClosed
            | Enforcement::NotDelivered
            | Enforcement::NotEnforced => None,
        }
    }
}

/// One decision of the policy engine, with its explanation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PolicyEvent {
    pub action: PolicyAction,
    /// Full resource ARN asked for.
    pub resource: String,
    pub decision: Decision,
    /// What the broker did because of it.
    pub enforcement: Enforcement,
    /// The explanation for people, one line each.
    pub lines: Vec<String>,
    /// The explanation in structured form (policy, statement, substituted resources, variables).
    pub detail: serde_json::Value,
}

/// Where a certificate was seen.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct CertRole {
    /// Whose chain or whose trust store.
    pub side: Side,
    pub kind: CertRoleKind,
    /// Position in the chain (0 = leaf) or in the trust store.
    pub index: usize,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CertRoleKind {
    /// Sent in the side's Certificate message.
    Chain,
    /// Configured as one of the side's trusted roots.
    TrustAnchor,
    /// Known to the side as a registered CA (not a trust anchor by itself).
    RegisteredCa,
}

impl std::fmt::Display for CertRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            CertRoleKind::Chain => "chain",
            CertRoleKind::TrustAnchor => "trust anchor",
            CertRoleKind::RegisteredCa => "registered CA",
        };
        write!(f, "{} {what}[{}]", self.side.name(), self.index)
    }
}

/// A certificate, described for people (x509-parser).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CertInfo {
    /// Lower-case hex SHA-256 of the DER — also AWS IoT's certificate id.
    pub sha256: String,
    /// Where it was seen: in a side's chain, or as a side's trust anchor.
    pub roles: Vec<CertRole>,
    pub subject: String,
    pub issuer: String,
    /// Serial number, hex with colons (the certificate's serial, not the subject's serialNumber).
    pub serial: String,
    /// Validity, RFC 3339 (`2026-11-29T02:55:31Z`).
    pub not_before: String,
    pub not_after: String,
    /// Whole days from the session start to not_after (negative when expired).
    pub days_left: i64,
    /// e.g. `ECDSA P-256`, `RSA 2048`.
    pub key: String,
    pub signature_algorithm: String,
    pub san: Vec<String>,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    /// e.g. `CA:TRUE, pathlen:0`, or `CA:FALSE`.
    pub basic_constraints: Option<String>,
    pub self_signed: bool,
    #[serde(with = "hexbytes")]
    pub der: Vec<u8>,
}

impl CertInfo {
    /// The roles, for people: `device chain[0], broker trust anchor[0]`.
    pub fn role_text(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Trace {
    /// Every check, in order: (event, check, passed).
    pub fn checks(&self) -> impl Iterator<Item = (&Event, CheckId, bool)> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Check { check, ok, .. } => Some((e, *check, *ok)),
            _ => None,
        })
    }

    /// The first check `id` made by `side`.
    pub fn check_by(&self, side: Side, id: CheckId) -> Option<&Event> {
        self.checks()
            .find(|(e, c, _)| *c == id && e.side == side)
            .map(|(e, _, _)| e)
    }

    /// The first handshake message of this type sent by `side`.
    pub fn handshake(&self, side: Side, t: HandshakeType) -> Option<&Event> {
        self.events.iter().find(|e| {
            e.side == side && matches!(&e.kind, EventKind::Handshake { msg, .. } if *msg == t)
        })
    }

    /// Every MQTT packet in order, with the event that carried it.
    pub fn mqtt_packets(&self) -> impl Iterator<Item = (&Event, &MqttPacket)> {
        self.events.iter().flat_map(|e| match &e.kind {
            EventKind::AppData { mqtt, .. } => mqtt.iter().map(move |p| (e, p)).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }

    /// A copy for a log that others may read (`serve`'s default narration): without the key-log
    /// secrets (and the key schedule derived from them) and without the MQTT payloads shown in words. The JSON form (asked for with
    /// `--json`) keeps everything.
    pub fn without_secrets(&self) -> Trace {
        let mut t = self.clone();
        t.events
            .retain(|e| !matches!(e.kind, EventKind::Secret { .. } | EventKind::KeySchedule(_)));
        for e in &mut t.events {
            if let EventKind::AppData { mqtt, .. } = &mut e.kind {
                for p in mqtt {
                    p.payload = None;
                }
            }
        }
        t
    }

    /// The certificate with this SHA-256, if described.
    pub fn certificate(&self, sha256: &str) -> Option<&CertInfo> {
        self.certificates.iter().find(|c| c.sha256 == sha256)
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 0xf) as usize]);
    }
    // Only ASCII digits were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// Bytes from hex (as written by [`hex`]); `None` if malformed.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
