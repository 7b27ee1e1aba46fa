//! The wire dissector: turns the bytes each side sent into decoded trace events.
//!
//! Feed it every chunk in the order it was sent ([`Dissector::push`]); it reassembles TLS records
//! per direction (a record may be split across chunks, a chunk may hold several records),
//! reassembles handshake messages across and within records (rustls sends the server's whole
//! first flight in one record), decrypts everything after ChangeCipherSpec with the keys derived
//! from the session's key-log line, recomputes both Finished `verify_data` values, and decodes the
//! MQTT packets inside application data.
//!
//! It is pure — no I/O — and total: garbage, truncation, tampering or a missing key produce
//! `Undecodable` events or `plaintext: None`, never a panic, and memory stays bounded (a record is
//! at most [`MAX_RECORD_FRAGMENT`] bytes, a handshake message at most [`MAX_HANDSHAKE_MESSAGE`]).

use super::calc;
use super::handshake::{self, Facts};
use super::keys::{self, RecordCipher};
use super::names;
use crate::mqtt::MqttStream;
use crate::trace::{
    hex, AlertDescription, AlertLevel, CheckId, EventKind, Fact, FinishedCalc, GapSide,
    HandshakeType, Phase, RecordProtection, Side, TlsSummary, WireRecord,
};

/// Largest record fragment accepted: 2^14 plaintext + 2048 bytes of expansion (RFC 5246 §6.2.3).
pub const MAX_RECORD_FRAGMENT: usize = (1 << 14) + 2048;

/// Largest handshake message accepted (a generous bound for certificate chains).
pub const MAX_HANDSHAKE_MESSAGE: usize = 1 << 18;

/// How many bytes of undecodable input are kept in the event's `hex`.
const MAX_UNDECODABLE_HEX: usize = 4096;

/// One key-log line: the master secret of the session with this client random.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLogEntry {
    pub client_random: [u8; 32],
    pub master_secret: Vec<u8>,
}

/// A decoded event, without the sequence number and timestamp the recorder adds.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub phase: Phase,
    pub side: Side,
    pub kind: EventKind,
}

/// Per-direction state.
struct Direction {
    side: Side,
    /// Bytes of the record being received.
    buf: Vec<u8>,
    /// Records completed so far in this direction.
    records: u32,
    /// Plaintext handshake bytes not yet forming a complete message.
    hs: Vec<u8>,
    /// After ChangeCipherSpec.
    encrypted: bool,
    /// Sequence number of the next protected record.
    seq: u64,
    /// After garbage: everything further is ignored.
    dead: bool,
    cipher: Result<RecordCipher, String>,
    mqtt: MqttStream,
    /// After a gap: MQTT decoding waits for a record that begins with a whole packet.
    resync: bool,
}

impl Direction {
    fn new(side: Side) -> Self {
        Direction {
            side,
            buf: Vec::new(),
            records: 0,
            hs: Vec::new(),
            encrypted: false,
            seq: 0,
            dead: false,
            cipher: Err("no ChangeCipherSpec yet".to_string()),
            mqtt: MqttStream::new(),
            resync: false,
        }
    }
}

/// Decodes a TLS 1.2 session from both directions' bytes.
pub struct Dissector {
    keys: Vec<KeyLogEntry>,
    /// Index 0: device (client) → broker; 1: broker (server) → device.
    dirs: [Direction; 2],
    transcript: Vec<(Side, Vec<u8>)>,
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    suite: Option<u16>,
    version: Option<u16>,
    kx_group: Option<u16>,
    client_ems: bool,
    server_ems: bool,
    sni: Option<String>,
    /// The protocol the ServerHello chose (ALPN).
    alpn: Option<String>,
    phase: Phase,
    /// Every complete record, in the order pushed (see [`Dissector::take_records`]).
    records: Vec<WireRecord>,
    /// The key schedule event was emitted (once, after the device's ClientKeyExchange).
    scheduled: bool,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Broker => 1,
        // Only the device and the broker send bytes.
        Side::Device | Side::Iotls => 0,
    }
}

fn handshake_phase(msg_type: u8, from: Side, current: Phase) -> Phase {
    match (msg_type, from) {
        (1 | 2, _) => Phase::Hello,
        (11, Side::Broker) | (12, _) => Phase::ServerAuth,
        (11, Side::Device) | (13 | 14, _) => Phase::ClientAuth,
        (16, _) => Phase::KeyExchange,
        (15, _) => Phase::HandshakeSignature,
        (20 | 4, _) => Phase::Finished,
        _ => current,
    }
}

fn content_type_name(t: u8) -> &'static str {
    match t {
        20 => "ChangeCipherSpec",
        21 => "Alert",
        22 => "Handshake",
        23 => "ApplicationData",
        _ => "unknown",
    }
}

/// Why the start of `buf` cannot be a TLS record, if it cannot.
fn header_problem(buf: &[u8]) -> Option<String> {
    let looks_like = || {
        let n = buf.len().min(40);
        let printable = buf[..n]
            .iter()
            .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            .count();
        if n >= 4 && printable * 10 >= n * 8 {
            let line: String = buf[..n]
                .iter()
                .take_while(|b| **b != b'\r' && **b != b'\n')
                .map(|b| {
                    if b.is_ascii_graphic() || *b == b' ' {
                        *b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!(" The bytes look like text: \"{line}\" — the peer is not speaking TLS.")
        } else {
            String::new()
        }
    };
    let ct = *buf.first()?;
    if !(20..=23).contains(&ct) {
        return Some(format!(
            "byte 0x{ct:02x} is not a TLS record type (20 ChangeCipherSpec, 21 Alert, 22 Handshake, \
             23 ApplicationData).{}",
            looks_like()
        ));
    }
    if let (Some(&maj), Some(&min)) = (buf.get(1), buf.get(2)) {
        if maj != 3 || min > 4 {
            return Some(format!(
                "record version 0x{maj:02x}{min:02x} is not an SSL/TLS version (0x0300–0x0304).{}",
                looks_like()
            ));
        }
    } else if let Some(&maj) = buf.get(1) {
        if maj != 3 {
            return Some(format!(
                "record version byte 0x{maj:02x} is not 0x03 (SSL/TLS).{}",
                looks_like()
            ));
        }
    }
    if buf.len() >= 5 {
        let len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
        if len > MAX_RECORD_FRAGMENT {
            return Some(format!(
                "a {} record of {len} bytes is longer than TLS allows ({MAX_RECORD_FRAGMENT}).",
                content_type_name(ct)
            ));
        }
    }
    None
}

impl Dissector {
    /// A dissector that knows every key-log line of the session up front.
    pub fn new(keys: Vec<KeyLogEntry>) -> Self {
        Dissector {
            keys,
            dirs: [Direction::new(Side::Device), Direction::new(Side::Broker)],
            transcript: Vec::new(),
            client_random: None,
            server_random: None,
            suite: None,
            version: None,
            kx_group: None,
            client_ems: false,
            server_ems: false,
            sni: None,
            alpn: None,
            phase: Phase::Hello,
            records: Vec::new(),
            scheduled: false,
        }
    }

    /// The complete records seen since the last call, whole, in order (`t_us` is 0: the caller
    /// knows when the bytes arrived).
    pub fn take_records(&mut self) -> Vec<WireRecord> {
        std::mem::take(&mut self.records)
    }

    /// Every plaintext handshake message so far, in order, 4-byte header included — the
    /// transcript that CertificateVerify signs and Finished hashes.
    pub fn handshake_messages(&self) -> &[(Side, Vec<u8>)] {
        &self.transcript
    }

    /// The negotiated parameters, once a ServerHello was seen.
    pub fn summary(&self) -> Option<TlsSummary> {
        let v = self.version?;
        let version = match v {
            0x0303 => "TLSv1.2".to_string(),
            0x0304 => "TLSv1.3".to_string(),
            0x0302 => "TLSv1.1".to_string(),
            0x0301 => "TLSv1.0".to_string(),
            other => format!("unknown (0x{other:04x})"),
        };
        let suite = self.suite?;
        let cipher_suite = match names::cipher_suite_name(suite) {
            n if n == "unknown" => format!("unknown (0x{suite:04x})"),
            n => n,
        };
        let kx_group = self.kx_group.map(|g| match names::group_name(g) {
            "unknown" => format!("unknown (0x{g:04x})"),
            n => n.to_string(),
        });
        Some(TlsSummary {
            version,
            cipher_suite,
            kx_group,
            extended_master_secret: self.client_ems && self.server_ems,
            sni: self.sni.clone(),
            alpn: self.alpn.clone(),
        })
    }

    /// Bytes sent by `from` (Device = TLS client, Broker = TLS server), chunked any way.
    pub fn push(&mut self, from: Side, bytes: &[u8]) -> Vec<Decoded> {
        let d = idx(from);
        let mut out = Vec::new();
        if self.dirs[d].dead {
            return out;
        }
        self.dirs[d].buf.extend_from_slice(bytes);
        loop {
            let dir = &mut self.dirs[d];
            if let Some(reason) = header_problem(&dir.buf) {
                let at = dir.records;
                let shown = &dir.buf[..dir.buf.len().min(MAX_UNDECODABLE_HEX)];
                let kind = EventKind::Undecodable {
                    hex: shown.to_vec(),
                    reason: format!(
                        "Not TLS: after {at} record(s) from the {}, {reason} Ignoring the rest of \
                         this direction.",
                        from.name()
                    ),
                    record: None,
                    not_tls: true,
                };
                dir.dead = true;
                dir.buf = Vec::new();
                dir.hs = Vec::new();
                out.push(Decoded {
                    phase: self.phase,
                    side: from,
                    kind,
                });
                break;
            }
            if dir.buf.len() < 5 {
                break;
            }
            let len = u16::from_be_bytes([dir.buf[3], dir.buf[4]]) as usize;
            if dir.buf.len() < 5 + len {
                break;
            }
            let record: Vec<u8> = dir.buf.drain(..5 + len).collect();
            self.record(d, &record, &mut out);
            if self.dirs[d].dead {
                break;
            }
        }
        out
    }

    /// A recording bound left records out (`serve`): `device` and `broker` say how many each
    /// side sent in between. Decryption carries on after them, since the record sequence numbers
    /// (which the nonce and the additional data of TLS 1.2's AEAD ciphers depend on) move on by
    /// the skipped counts. An MQTT packet cut by the gap is reported, not guessed at; MQTT
    /// decoding resumes at the first record after it whose plaintext begins with a whole packet.
    pub fn gap(&mut self, device: &GapSide, broker: &GapSide, events: u64) -> Vec<Decoded> {
        let mut out = Vec::new();
        let mut notes = Vec::new();
        for (d, g) in [(0, device), (1, broker)] {
            if g.records == 0 {
                continue;
            }
            let side = self.dirs[d].side;
            let dir = &mut self.dirs[d];
            if dir.dead {
                continue;
            }
            dir.records += g.records;
            dir.buf.clear();
            if !dir.encrypted || !dir.hs.is_empty() {
                dir.dead = true;
                dir.hs.clear();
                notes.push(format!(
                    "the {}'s handshake was not all kept, so its records after the gap are not \
                     decoded",
                    side.name()
                ));
                continue;
            }
            dir.seq += u64::from(g.records);
            let cut = dir.mqtt.pending().to_vec();
            let level = dir.mqtt.protocol_level();
            dir.mqtt = MqttStream::new();
            if let Some(l) = level {
                dir.mqtt.set_protocol_level(l);
            }
            dir.resync = true;
            if !cut.is_empty() {
                let reason = format!(
                    "an MQTT packet the {} began before the gap: {} bytes of it were kept, the \
                     rest was in records not kept, so it is not decoded",
                    side.name(),
                    cut.len()
                );
                self.undecodable(&mut out, side, &cut, reason);
            }
            notes.push(format!(
                "the {}'s MQTT packets are decoded again from its first record after the gap that \
                 begins with a whole packet",
                side.name()
            ));
        }
        let count = |g: &GapSide, who: &str| {
            (g.records > 0).then(|| {
                format!(
                    "{} record(s) from the {who} (records {}–{}, {} bytes)",
                    g.records,
                    g.from_record,
                    g.from_record + g.records - 1,
                    g.bytes
                )
            })
        };
        let parts: Vec<String> = [count(device, "device"), count(broker, "broker")]
            .into_iter()
            .flatten()
            .collect();
        let mut reason = format!(
            "serve keeps the handshake and the first and last records of each direction; not kept: \
             {}{}",
            if parts.is_empty() {
                "no record".to_string()
            } else {
                parts.join(" and ")
            },
            if events > 0 {
                format!(", and {events} other observation(s)")
            } else {
                String::new()
            }
        );
        for n in notes {
            reason.push_str("; ");
            reason.push_str(&n);
        }
        let kind = EventKind::Gap {
            device: device.clone(),
            broker: broker.clone(),
            events,
            reason,
        };
        // Before what the gap did to MQTT decoding.
        out.insert(
            0,
            Decoded {
                phase: self.phase,
                side: Side::Iotls,
                kind,
            },
        );
        out
    }

    /// The end of the session: reports data left in the middle of a record, a handshake
    /// message or an MQTT packet.
    pub fn finish(&mut self) -> Vec<Decoded> {
        let mut out = Vec::new();
        for d in 0..2 {
            let phase = self.phase;
            let dir = &mut self.dirs[d];
            let side = dir.side;
            if dir.dead {
                continue;
            }
            if !dir.buf.is_empty() {
                let reason = if dir.buf.len() < 5 {
                    format!(
                        "the {} stopped sending in the middle of a TLS record header ({} of 5 bytes)",
                        side.name(),
                        dir.buf.len()
                    )
                } else {
                    let want = 5 + u16::from_be_bytes([dir.buf[3], dir.buf[4]]) as usize;
                    format!(
                        "the {} stopped sending in the middle of a TLS record: {} of {want} bytes \
                         arrived",
                        side.name(),
                        dir.buf.len()
                    )
                };
                let shown = &dir.buf[..dir.buf.len().min(MAX_UNDECODABLE_HEX)];
                out.push(Decoded {
                    phase,
                    side,
                    kind: EventKind::Undecodable {
                        hex: shown.to_vec(),
                        reason,
                        record: None,
                        not_tls: false,
                    },
                });
                dir.buf.clear();
            }
            if !dir.hs.is_empty() {
                let reason = format!(
                    "the {} stopped in the middle of a handshake message ({} bytes of it arrived)",
                    side.name(),
                    dir.hs.len()
                );
                let shown = &dir.hs[..dir.hs.len().min(MAX_UNDECODABLE_HEX)];
                out.push(Decoded {
                    phase,
                    side,
                    kind: EventKind::Undecodable {
                        hex: shown.to_vec(),
                        reason,
                        record: None,
                        not_tls: false,
                    },
                });
                dir.hs.clear();
            }
            let pending = dir.mqtt.pending();
            if !pending.is_empty() {
                let reason = format!(
                    "the {} stopped in the middle of an MQTT packet ({} bytes of it arrived)",
                    side.name(),
                    pending.len()
                );
                let kind = EventKind::Undecodable {
                    hex: pending.to_vec(),
                    reason,
                    record: None,
                    not_tls: false,
                };
                out.push(Decoded {
                    phase: Phase::Mqtt,
                    side,
                    kind,
                });
                dir.mqtt.stop("the session ended");
            }
        }
        out
    }

    fn emit(&mut self, out: &mut Vec<Decoded>, phase: Phase, side: Side, kind: EventKind) {
        self.phase = phase;
        out.push(Decoded { phase, side, kind });
    }

    fn undecodable(&self, out: &mut Vec<Decoded>, side: Side, bytes: &[u8], reason: String) {
        let shown = &bytes[..bytes.len().min(MAX_UNDECODABLE_HEX)];
        out.push(Decoded {
            phase: self.phase,
            side,
            kind: EventKind::Undecodable {
                hex: shown.to_vec(),
                reason,
                record: None,
                not_tls: false,
            },
        });
    }

    /// The record cipher for what `side` sends, or why there is none.
    fn make_cipher(&self, side: Side) -> Result<RecordCipher, String> {
        let cr = self
            .client_random
            .ok_or("no ClientHello was seen, so the client random is unknown")?;
        let sr = self
            .server_random
            .ok_or("no ServerHello was seen, so the server random is unknown")?;
        let code = self
            .suite
            .ok_or("no ServerHello was seen, so the cipher suite is unknown")?;
        let suite = keys::suite_params(code).ok_or_else(|| {
            format!(
                "iotls cannot decrypt cipher suite {}",
                names::cipher_suite(code)
            )
        })?;
        let master = self.master_secret().ok_or_else(|| {
            format!(
                "no key-log line (CLIENT_RANDOM) for this session's client random {}",
                hex(&cr)
            )
        })?;
        let kb = keys::key_block(suite, master, &cr, &sr);
        let wk = match side {
            Side::Broker => &kb.server,
            Side::Device | Side::Iotls => &kb.client,
        };
        RecordCipher::new(suite.aead, wk)
            .ok_or_else(|| "the derived key has the wrong length".to_string())
    }

    fn master_secret(&self) -> Option<&[u8]> {
        let cr = self.client_random?;
        self.keys
            .iter()
            .find(|k| k.client_random == cr)
            .map(|k| k.master_secret.as_slice())
    }

    /// Handles one complete record from direction `d`.
    fn record(&mut self, d: usize, rec: &[u8], out: &mut Vec<Decoded>) {
        let side = self.dirs[d].side;
        let ct = rec[0];
        let version = [rec[1], rec[2]];
        let frag = &rec[5..];
        let index = self.dirs[d].records;
        self.dirs[d].records += 1;
        self.records.push(WireRecord {
            from: side,
            index,
            t_us: 0,
            bytes: rec.to_vec(),
        });

        // Protected records: decrypt first.
        let encrypted = self.dirs[d].encrypted;
        let mut protection: Option<Box<RecordProtection>> = None;
        let plain: Result<Vec<u8>, String> = if encrypted {
            let dir = &mut self.dirs[d];
            let seq = dir.seq;
            dir.seq += 1;
            match &dir.cipher {
                Ok(c) => {
                    protection = c
                        .layout(seq, ct, version, frag)
                        .map(|l| Box::new(calc::protection(c.kind(), side, index, l)));
                    c.decrypt(seq, ct, version, frag).map_err(|e| {
                        format!(
                            "record {index} (sequence number {seq}) could not be decrypted: {e}"
                        )
                    })
                }
                Err(why) => Err(format!(
                    "record {index} is encrypted and cannot be decrypted: {why}"
                )),
            }
        } else {
            Ok(frag.to_vec())
        };

        match ct {
            20 => {
                let kind = EventKind::ChangeCipherSpec {
                    hex: rec.to_vec(),
                    record: index,
                };
                self.emit(out, Phase::Finished, side, kind);
                let cipher = self.make_cipher(side);
                let dir = &mut self.dirs[d];
                dir.encrypted = true;
                dir.seq = 0;
                dir.cipher = cipher;
            }
            21 => match plain {
                Ok(p) if !p.is_empty() && p.len() % 2 == 0 => {
                    for pair in p.chunks_exact(2) {
                        let kind = EventKind::Alert {
                            level: AlertLevel(pair[0]),
                            description: AlertDescription(pair[1]),
                            code: pair[1],
                            encrypted,
                            hex: rec.to_vec(),
                            record: index,
                            protection: protection.clone(),
                        };
                        self.emit(out, Phase::Close, side, kind);
                    }
                }
                Ok(p) => {
                    let reason = format!(
                        "alert record {index} holds {} bytes; an alert is 2 bytes (level, description)",
                        p.len()
                    );
                    self.phase = Phase::Close;
                    self.undecodable(out, side, rec, reason);
                }
                Err(reason) => {
                    self.phase = Phase::Close;
                    self.undecodable(out, side, rec, format!("alert: {reason}"));
                }
            },
            22 => match plain {
                Ok(p) => {
                    let wire = encrypted.then_some((rec, protection));
                    self.handshake_bytes(d, &p, index, wire, out)
                }
                Err(reason) => self.undecodable(out, side, rec, format!("handshake: {reason}")),
            },
            23 => {
                let (plaintext, mqtt) = match plain {
                    Ok(p) if encrypted => {
                        if d == 1 && self.dirs[1].mqtt.protocol_level().is_none() {
                            if let Some(l) = self.dirs[0].mqtt.protocol_level() {
                                self.dirs[1].mqtt.set_protocol_level(l);
                            }
                        }
                        let packets = if self.dirs[d].resync {
                            self.resync(d, &p)
                        } else {
                            self.dirs[d].mqtt.push(&p)
                        };
                        (Some(p), packets)
                    }
                    Ok(_) => (None, Vec::new()),
                    Err(reason) => {
                        self.dirs[d]
                            .mqtt
                            .stop(format!("MQTT decoding stopped: {reason}"));
                        (None, Vec::new())
                    }
                };
                let mut mqtt = mqtt;
                let not_listed = mqtt.len().saturating_sub(crate::trace::MAX_MQTT_LISTED);
                mqtt.truncate(crate::trace::MAX_MQTT_LISTED);
                let kind = EventKind::AppData {
                    ciphertext: rec.to_vec(),
                    plaintext,
                    record: index,
                    mqtt,
                    mqtt_not_listed: not_listed as u32,
                    protection,
                };
                self.emit(out, Phase::Mqtt, side, kind);
            }
            _ => {
                // header_problem() lets only 20..=23 through.
                self.undecodable(out, side, rec, format!("unknown record type {ct}"));
            }
        }
    }

    /// After a gap: decodes `plain` as the start of a fresh MQTT stream, and takes it up only if
    /// it begins with at least one whole, valid packet; otherwise nothing is decoded from it.
    fn resync(&mut self, d: usize, plain: &[u8]) -> Vec<crate::trace::MqttPacket> {
        let dir = &mut self.dirs[d];
        let mut fresh = MqttStream::new();
        if let Some(l) = dir.mqtt.protocol_level() {
            fresh.set_protocol_level(l);
        }
        let packets = fresh.push(plain);
        if fresh.stopped().is_some() || packets.is_empty() {
            return Vec::new();
        }
        dir.mqtt = fresh;
        dir.resync = false;
        packets
    }

    /// Appends handshake plaintext and emits every message it completes.
    fn handshake_bytes(
        &mut self,
        d: usize,
        plain: &[u8],
        index: u32,
        wire: Option<(&[u8], Option<Box<RecordProtection>>)>,
        out: &mut Vec<Decoded>,
    ) {
        let side = self.dirs[d].side;
        self.dirs[d].hs.extend_from_slice(plain);
        loop {
            let dir = &mut self.dirs[d];
            if dir.hs.len() < 4 {
                return;
            }
            let len =
                ((dir.hs[1] as usize) << 16) | ((dir.hs[2] as usize) << 8) | dir.hs[3] as usize;
            if len > MAX_HANDSHAKE_MESSAGE {
                let bytes = std::mem::take(&mut dir.hs);
                dir.dead = true;
                dir.buf.clear();
                let reason = format!(
                    "a handshake message claims {len} bytes, more than iotls accepts \
                     ({MAX_HANDSHAKE_MESSAGE}); ignoring the rest of this direction"
                );
                self.undecodable(out, side, &bytes, reason);
                return;
            }
            if dir.hs.len() < 4 + len {
                return;
            }
            let msg: Vec<u8> = dir.hs.drain(..4 + len).collect();
            self.message(side, msg, index, wire.clone(), out);
        }
    }

    fn message(
        &mut self,
        side: Side,
        msg: Vec<u8>,
        index: u32,
        wire: Option<(&[u8], Option<Box<RecordProtection>>)>,
        out: &mut Vec<Decoded>,
    ) {
        let m = handshake::decode(&msg);
        self.learn(side, m.msg_type, &m.facts);
        let phase = handshake_phase(m.msg_type, side, self.phase);
        let signature = self.signature_calc(side, &msg).map(Box::new);
        let (ciphertext, protection) = match wire {
            Some((rec, p)) => (Some(rec.to_vec()), p),
            None => (None, None),
        };
        let kind = EventKind::Handshake {
            msg: HandshakeType(m.msg_type),
            msg_type: m.msg_type,
            hex: msg.clone(),
            record: index,
            encrypted: ciphertext.is_some(),
            ciphertext,
            fields: m.fields,
            signature,
            protection,
        };
        self.emit(out, phase, side, kind);
        if m.msg_type == 20 {
            if let Some(vd) = &m.facts.verify_data {
                if let Some(check) = self.finished_check(side, vd) {
                    // iotls's own recomputation from the key log, not the receiver's verdict.
                    self.emit(out, Phase::Finished, Side::Iotls, check);
                }
            }
        }
        let key_exchange = m.msg_type == 16 && side == Side::Device;
        self.transcript.push((side, msg));
        if key_exchange && !self.scheduled {
            // Both sides can derive the keys now; so can iotls, from the key log.
            if let Some(schedule) = self.key_schedule() {
                self.scheduled = true;
                out.push(Decoded {
                    phase: Phase::KeyExchange,
                    side: Side::Iotls,
                    kind: EventKind::KeySchedule(Box::new(schedule)),
                });
            }
        }
    }

    fn learn(&mut self, side: Side, msg_type: u8, f: &Facts) {
        match (msg_type, side) {
            (1, Side::Device) => {
                self.client_random = f.random;
                self.client_ems = f.extended_master_secret;
                self.sni = f.sni.clone();
            }
            (2, Side::Broker) => {
                self.server_random = f.random;
                self.server_ems = f.extended_master_secret;
                self.suite = f.cipher_suite;
                self.version = f.version;
                self.alpn = f.alpn.first().cloned();
            }
            (12, Side::Broker) => self.kx_group = f.named_group,
            _ => {}
        }
    }

    /// The receiver's check of a Finished message, recomputed from the key log.
    fn finished_check(&self, sender: Side, received: &[u8]) -> Option<EventKind> {
        let master = self.master_secret()?;
        let suite = keys::suite_params(self.suite?)?;
        let (check, label) = match sender {
            Side::Device => (CheckId::ClientFinished, "client finished"),
            Side::Broker | Side::Iotls => (CheckId::ServerFinished, "server finished"),
        };
        let transcript: Vec<u8> = self
            .transcript
            .iter()
            .flat_map(|(_, m)| m.iter().copied())
            .collect();
        let th = keys::transcript_hash(suite.hash, &transcript);
        let expected = keys::verify_data(suite.hash, master, label, &transcript);
        let ok = expected == received;
        let hash = suite.hash.name();
        let first = self
            .transcript
            .first()
            .map(|(_, m)| names::handshake_name(m[0]));
        let last = self
            .transcript
            .last()
            .map(|(_, m)| names::handshake_name(m[0]));
        let span = match (first, last) {
            (Some(a), Some(b)) => format!("{a} … {b}"),
            _ => "nothing".to_string(),
        };
        // The sentence is `words/reasons.toml`'s, filled from this recomputation.
        let count = self.transcript.len().to_string();
        let values = [
            ("label", label),
            ("hash", hash),
            ("count", count.as_str()),
            ("span", span.as_str()),
            ("sender", sender.name()),
        ];
        let reason = crate::narrate::words::reason(
            if ok {
                "finished_recomputed_ok"
            } else {
                "finished_recomputed_mismatch"
            },
            &values,
        );
        let hash_fact = match suite.hash {
            keys::PrfHash::Sha256 => "transcript_sha256",
            keys::PrfHash::Sha384 => "transcript_sha384",
        };
        let failure = (!ok).then(|| crate::trace::Failure {
            side: Some(Side::Iotls),
            check: Some(check),
            ..crate::trace::Failure::new(crate::trace::FailureCode::FinishedMismatch)
        });
        let finished = FinishedCalc {
            label: label.into(),
            prf_hash: suite.hash.id().into(),
            transcript: calc::transcript_spans(&self.transcript),
            transcript_len: transcript.len(),
            transcript_hash: th.clone(),
            expected: expected.clone(),
            received: received.to_vec(),
            reproduce: calc::finished_command(suite.hash, label),
        };
        Some(EventKind::Check {
            check,
            ok,
            reason,
            about: Some(HandshakeType::FINISHED),
            failure: failure.map(Box::new),
            facts: vec![
                Fact::new(
                    "transcript_messages",
                    format!("{} ({span})", self.transcript.len()),
                ),
                Fact::new("transcript_length", format!("{} bytes", transcript.len())),
                Fact::new(hash_fact, hex(&th)),
                Fact::new("expected_verify_data", hex(&expected)),
                Fact::new("received_verify_data", hex(received)),
            ],
            signature: None,
            finished: Some(Box::new(finished)),
        })
    }

    /// iotls's view of a ServerKeyExchange or CertificateVerify signature, from the wire: what it
    /// covers, its digest, the public key of the sender's certificate.
    fn signature_calc(&self, side: Side, msg: &[u8]) -> Option<crate::trace::SignatureCalc> {
        let leaf = |from: Side| {
            self.transcript
                .iter()
                .find(|(s, m)| *s == from && m.first() == Some(&11))
                .and_then(|(_, m)| calc::leaf_of(m))
        };
        match (msg.first(), side) {
            (Some(12), Side::Broker) => {
                let (params, scheme, sig) = calc::parse_ske(msg)?;
                let signed = [
                    self.client_random?.as_slice(),
                    self.server_random?.as_slice(),
                    params,
                ]
                .concat();
                let spans = calc::ske_spans(params.len());
                Some(calc::signature(
                    Side::Broker,
                    spans,
                    &signed,
                    scheme,
                    sig,
                    leaf(Side::Broker)?,
                ))
            }
            (Some(15), Side::Device) => {
                let (scheme, sig) = calc::parse_cv(msg)?;
                let signed: Vec<u8> = self
                    .transcript
                    .iter()
                    .flat_map(|(_, m)| m.iter().copied())
                    .collect();
                let spans = calc::transcript_spans(&self.transcript);
                Some(calc::signature(
                    Side::Device,
                    spans,
                    &signed,
                    scheme,
                    sig,
                    leaf(Side::Device)?,
                ))
            }
            _ => None,
        }
    }

    /// iotls's key schedule, once the randoms, the suite and the key log's master secret are known.
    fn key_schedule(&self) -> Option<crate::trace::KeySchedule> {
        let code = self.suite?;
        let suite = keys::suite_params(code)?;
        let client_random = self.client_random.as_ref()?;
        let server_random = self.server_random.as_ref()?;
        let ems = self.client_ems && self.server_ems;
        Some(calc::key_schedule(&calc::ScheduleInputs {
            suite,
            cipher_suite: names::cipher_suite_name(code),
            master_secret: self.master_secret()?,
            client_random,
            server_random,
            ems_transcript: ems.then_some(self.transcript.as_slice()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_is_undecodable_once() {
        let mut d = Dissector::new(Vec::new());
        let out = d.push(Side::Device, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(out.len(), 1);
        match &out[0].kind {
            EventKind::Undecodable { reason, hex, .. } => {
                assert!(reason.contains("0x47"), "{reason}");
                assert!(reason.contains("GET / HTTP/1.1"), "{reason}");
                assert!(hex.starts_with(b"GET"));
            }
            other => panic!("{other:?}"),
        }
        assert!(d.push(Side::Device, b"more junk").is_empty());
        assert!(d.finish().is_empty());
        assert!(d.summary().is_none());
    }

    #[test]
    fn absurd_record_length_is_undecodable() {
        let mut d = Dissector::new(Vec::new());
        // Handshake record, TLS 1.2, length 0xffff (> 2^14 + 2048).
        let out = d.push(Side::Broker, &[0x16, 0x03, 0x03, 0xff, 0xff, 0x00]);
        assert_eq!(out.len(), 1);
        assert!(
            matches!(&out[0].kind, EventKind::Undecodable { reason, .. } if reason.contains("65535")),
            "{:?}",
            out[0]
        );
    }

    #[test]
    fn truncated_record_reported_by_finish() {
        let mut d = Dissector::new(Vec::new());
        assert!(d
            .push(Side::Device, &[0x16, 0x03, 0x01, 0x00, 0x10, 0x01])
            .is_empty());
        let out = d.finish();
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0].kind,
            EventKind::Undecodable { reason, .. } if reason.contains("6 of 21 bytes")));
    }

    #[test]
    fn plaintext_alert_is_decoded() {
        let mut d = Dissector::new(Vec::new());
        let out = d.push(Side::Broker, &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].phase, Phase::Close);
        match &out[0].kind {
            EventKind::Alert {
                level,
                description,
                code,
                encrypted,
                record,
                ..
            } => {
                assert_eq!(
                    (*level, *description),
                    (AlertLevel::FATAL, AlertDescription::UNKNOWN_CA)
                );
                assert_eq!((*code, *encrypted, *record), (48, false, 0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn handshake_message_spanning_records_and_records_split_anywhere() {
        // A ServerHelloDone (4 bytes) and a Finished-shaped unknown message split across records.
        let msgs = [0x0e, 0, 0, 0, 0x63, 0, 0, 2, 0xaa, 0xbb];
        let mut wire = Vec::new();
        for part in [&msgs[..3], &msgs[3..7], &msgs[7..]] {
            wire.extend_from_slice(&[0x16, 0x03, 0x03, 0x00, part.len() as u8]);
            wire.extend_from_slice(part);
        }
        for chunk in [1, 2, 5, 7, wire.len()] {
            let mut d = Dissector::new(Vec::new());
            let mut out = Vec::new();
            for c in wire.chunks(chunk) {
                out.extend(d.push(Side::Broker, c));
            }
            let got: Vec<_> = out
                .iter()
                .map(|e| match &e.kind {
                    EventKind::Handshake { msg, record, .. } => (msg.name(), *record),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(
                got,
                [
                    ("ServerHelloDone".to_string(), 1),
                    ("Unknown(99)".to_string(), 2)
                ]
            );
            assert_eq!(d.handshake_messages().len(), 2);
        }
    }
}
