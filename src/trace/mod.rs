//! The trace: one ordered, typed record of a real session — the single data model of every view.
//!
//! The engine records raw observations (bytes on the wire, verifier verdicts, key-log lines, policy
//! decisions) in causal order; [`crate::tls::dissect`] turns the bytes into decoded events; every view
//! (plain text, JSON, the terminal UI) renders a [`Trace`]. Nothing in here is simulated: every byte
//! was on a socket and every verdict is the one rustls, ring or the policy engine returned.
//!
//! The JSON form of these types is documented in `docs/trace-format.md`; bump [`FORMAT`] when a
//! change would break a reader of the old form.

use serde::{Deserialize, Serialize};

/// Version tag of the JSON trace format.
pub const FORMAT: &str = "iotls-trace/1";

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
    /// Events in causal order.
    pub events: Vec<Event>,
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
}

/// How a session ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    /// True when everything the scenario asked for happened and no check failed.
    pub ok: bool,
    /// Phase in which the session stopped (or `close` for a normal end).
    pub phase: Phase,
    /// One sentence for a person: what happened.
    pub summary: String,
    /// The `check` of the first failed check, if one failed.
    pub failed_check: Option<String>,
    /// Which side's check failed.
    pub failed_side: Option<Side>,
    /// The TLS alert that went out because of it, e.g. `unknown_ca`.
    pub alert: Option<String>,
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
}

impl Phase {
    /// All phases, in teaching order.
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
        }
    }
}

/// Who did or sent something. For wire events, the sender.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Device,
    Broker,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Device => Side::Broker,
            Side::Broker => Side::Device,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Side::Device => "device",
            Side::Broker => "broker",
        }
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
        /// RFC 5246 name: `ClientHello`, `ServerHello`, `Certificate`, `ServerKeyExchange`,
        /// `CertificateRequest`, `ServerHelloDone`, `ClientKeyExchange`, `CertificateVerify`,
        /// `Finished`, or `Unknown(N)`.
        msg: String,
        /// Handshake type byte.
        msg_type: u8,
        /// The complete plaintext message including its 4-byte header (decrypted for Finished).
        hex: String,
        /// Index (from 0) of the TLS record, in this direction, that completed the message.
        record: u32,
        /// Whether the message travelled encrypted (Finished).
        encrypted: bool,
        /// For an encrypted message: the whole TLS record as sent (header + ciphertext).
        ciphertext: Option<String>,
        /// Decoded fields with offsets into `hex`.
        fields: Vec<Field>,
    },
    /// A ChangeCipherSpec record.
    ChangeCipherSpec { hex: String, record: u32 },
    /// A TLS alert.
    Alert {
        /// `warning` or `fatal`.
        level: String,
        /// RFC name, e.g. `bad_certificate`, `close_notify`.
        description: String,
        code: u8,
        encrypted: bool,
        /// Whole record as sent.
        hex: String,
        record: u32,
    },
    /// An application-data record: its ciphertext and the MQTT packets completed in it.
    AppData {
        /// Whole record as sent (header + explicit nonce + ciphertext + tag).
        ciphertext: String,
        /// Decrypted content; `None` when it could not be decrypted.
        plaintext: Option<String>,
        record: u32,
        mqtt: Vec<MqttPacket>,
    },
    /// Bytes that could not be decoded as TLS (e.g. a peer speaking another protocol).
    Undecodable { hex: String, reason: String },
    /// A verdict: a certificate-chain check, a signature check, a Finished check, a registry check.
    Check {
        /// Stable identifier: `server_chain`, `server_name`, `server_kx_signature`, `client_chain`,
        /// `certificate_verify`, `client_finished`, `server_finished`, `registry`, …
        check: String,
        ok: bool,
        /// Why — rustls's / ring's verdict in words, or what matched.
        reason: String,
        /// The handshake message this check is about, if any.
        about: Option<String>,
        /// Named values of this check (e.g. `transcript_sha256`), in display order.
        facts: Vec<Fact>,
    },
    /// A key-log line: what the TLS library exported to decrypt the session.
    Secret {
        /// `CLIENT_RANDOM`.
        label: String,
        client_random: String,
        secret: String,
    },
    /// An authorization decision of the policy engine.
    Policy(PolicyEvent),
    /// The connection ended.
    Closed { by: Option<Side>, reason: String },
    /// Something failed outside TLS checks (I/O error, timeout, peer vanished).
    Error { stage: String, message: String },
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

/// A decoded MQTT control packet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct MqttPacket {
    /// `CONNECT`, `CONNACK`, `PUBLISH`, `PUBACK`, `SUBSCRIBE`, `SUBACK`, `PINGREQ`, `PINGRESP`,
    /// `DISCONNECT`, …
    pub packet: String,
    /// The complete packet bytes.
    pub hex: String,
    /// Offset of this packet in the record's plaintext.
    pub offset: usize,
    pub client_id: Option<String>,
    pub topic: Option<String>,
    /// Payload as UTF-8 when it is text.
    pub payload: Option<String>,
    pub qos: Option<u8>,
    pub pkid: Option<u16>,
    pub retain: Option<bool>,
    /// CONNACK / SUBACK return codes, in words.
    pub code: Option<String>,
    /// Decoded fields with offsets into `hex`.
    pub fields: Vec<Field>,
}

/// One decision of the policy engine, with its explanation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PolicyEvent {
    /// `iot:Connect`, `iot:Publish`, `iot:Subscribe`, `iot:Receive`, `iot:RetainPublish`, or
    /// `registry` for the certificate-status check.
    pub action: String,
    /// Full resource ARN asked for.
    pub resource: String,
    /// `ALLOWED`, `EXPLICIT_DENY` or `IMPLICIT_DENY`.
    pub decision: String,
    /// What the broker did because of it, e.g. `closed the connection`.
    pub enforcement: String,
    /// The explanation for people, one line each.
    pub lines: Vec<String>,
    /// The explanation in structured form (policy, statement, substituted resources, variables).
    pub detail: serde_json::Value,
}

/// A certificate, described for people (x509-parser).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CertInfo {
    /// Lower-case hex SHA-256 of the DER — also AWS IoT's certificate id.
    pub sha256: String,
    /// Where it was seen: `device chain[0]`, `broker chain[1]`, `device trust anchor`, …
    pub role: String,
    pub subject: String,
    pub issuer: String,
    /// Serial number, hex with colons.
    pub serial: String,
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
    /// The DER, hex.
    pub der: String,
}

impl Trace {
    /// Events of one kind of check, in order.
    pub fn checks(&self) -> impl Iterator<Item = (&Event, &str, bool)> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Check { check, ok, .. } => Some((e, check.as_str(), *ok)),
            _ => None,
        })
    }

    /// The first handshake message with this name sent by `side`.
    pub fn handshake(&self, side: Side, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| {
            e.side == side && matches!(&e.kind, EventKind::Handshake { msg, .. } if msg == name)
        })
    }

    /// Every MQTT packet in order, with the event that carried it.
    pub fn mqtt_packets(&self) -> impl Iterator<Item = (&Event, &MqttPacket)> {
        self.events.iter().flat_map(|e| match &e.kind {
            EventKind::AppData { mqtt, .. } => mqtt.iter().map(move |p| (e, p)).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
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
