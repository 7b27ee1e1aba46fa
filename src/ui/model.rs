//! What the screens show, computed from the trace alone: the detail pane's rows, the order of
//! the certificates and the one a step is about. The state (`app`) and the views both use these;
//! nothing here draws, and nothing here knows the state.
//!
//! The layers: model (this, `steps`, `compare`) → state (`app`) → keys (`keys`) → view (`view`).

use crate::narrate::{self, calc};
use crate::trace::{CertInfo, CertRoleKind, CheckId, EventKind, HandshakeType, Side, Trace};
use crate::ui::steps::Step;

/// A chain as the pane draws it: the certificates a side presented, continued through every
/// known certificate whose subject is the previous one's issuer, up to a self-signed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub title: String,
    /// The check that judges this chain, e.g. `server_chain`.
    pub check: Option<CheckId>,
    /// Indices into `trace.certificates`, leaf first.
    pub path: Vec<usize>,
    /// Whether the path ends at a trust anchor (a self-signed certificate or one configured as an
    /// anchor).
    pub anchored: bool,
    /// When no certificate is named like the last one's issuer: that issuer.
    pub missing_issuer: Option<String>,
}

pub fn has_anchor_role(c: &CertInfo) -> bool {
    c.roles.iter().any(|r| r.kind == CertRoleKind::TrustAnchor)
}

fn is_anchor(c: &CertInfo) -> bool {
    has_anchor_role(c) || c.self_signed
}

/// Indices of the certificates a side presented, leaf first.
pub fn chain_indices(trace: &Trace, side: Side) -> Vec<usize> {
    let mut v: Vec<(usize, usize)> = trace
        .certificates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let r = c
                .roles
                .iter()
                .find(|r| r.side == side && r.kind == CertRoleKind::Chain)?;
            Some((r.index, i))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, i)| i).collect()
}

fn walk(trace: &Trace, leaf: usize) -> (Vec<usize>, bool, Option<String>) {
    let certs = &trace.certificates;
    let mut path = vec![leaf];
    loop {
        let c = &certs[*path.last().unwrap_or(&leaf)];
        if c.self_signed {
            return (path, true, None);
        }
        let next = certs
            .iter()
            .enumerate()
            .filter(|(i, n)| !path.contains(i) && n.subject == c.issuer)
            .max_by_key(|(_, n)| is_anchor(n))
            .map(|(i, _)| i);
        match next {
            Some(n) => path.push(n),
            None => {
                let anchored = is_anchor(c) && path.len() > 1;
                return (path, anchored, (!anchored).then(|| c.issuer.clone()));
            }
        }
    }
}

/// The chains of a trace: the broker's, the device's, then any certificates on neither path.
pub fn groups(trace: &Trace) -> Vec<Group> {
    let mut used = vec![false; trace.certificates.len()];
    let mut out = Vec::new();
    for (side, title, check) in [
        (
            Side::Broker,
            "Broker's chain · checked by the device",
            CheckId::ServerChain,
        ),
        (
            Side::Device,
            "Device's chain · checked by the broker",
            CheckId::ClientChain,
        ),
    ] {
        let Some(&leaf) = chain_indices(trace, side).first() else {
            continue;
        };
        let (path, anchored, missing_issuer) = walk(trace, leaf);
        for &i in &path {
            used[i] = true;
        }
        // Certificates the side sent that are not on the path (sent but unused) still count.
        for i in chain_indices(trace, side) {
            used[i] = true;
        }
        out.push(Group {
            title: title.to_string(),
            check: Some(check),
            path,
            anchored,
            missing_issuer,
        });
    }
    let rest: Vec<usize> = (0..trace.certificates.len())
        .filter(|i| !used[*i])
        .collect();
    if !rest.is_empty() {
        out.push(Group {
            title: "Other certificates".into(),
            check: None,
            path: rest,
            anchored: false,
            missing_issuer: None,
        });
    }
    out
}

/// Certificates in the order the pane lists them (selection moves along this).
pub fn order(trace: &Trace) -> Vec<usize> {
    let mut seen = Vec::new();
    for g in groups(trace) {
        for i in g.path {
            if !seen.contains(&i) {
                seen.push(i);
            }
        }
    }
    seen
}

/// The certificate a step is about (a Certificate message, a chain check), as a position in
/// [`order`].
pub fn cert_for_step(trace: &Trace, step: Option<&Step>) -> Option<usize> {
    let e = step?.event(trace)?;
    let side = match &e.kind {
        EventKind::Handshake { msg, .. } if *msg == HandshakeType::CERTIFICATE => e.side,
        EventKind::Check { check, .. } => match check {
            CheckId::ServerChain | CheckId::ServerName | CheckId::ServerKxSignature => Side::Broker,
            CheckId::ClientChain | CheckId::CertificateVerify | CheckId::Registry => Side::Device,
            _ => return None,
        },
        _ => return None,
    };
    let leaf = *chain_indices(trace, side).first()?;
    order(trace).iter().position(|&i| i == leaf)
}

/// One selectable row of the detail pane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailRow {
    pub name: String,
    pub value: String,
    pub depth: u8,
    /// Bytes of this row in the hex view: (offset, length).
    pub range: Option<(usize, usize)>,
}

impl DetailRow {
    fn plain(name: &str, value: impl Into<String>) -> DetailRow {
        DetailRow {
            name: name.to_string(),
            value: value.into(),
            depth: 0,
            range: None,
        }
    }
}

/// The selectable rows of a step.
pub fn rows(trace: &Trace, step: &Step) -> Vec<DetailRow> {
    let from_fields = |fields: &[crate::trace::Field]| {
        fields
            .iter()
            .map(|f| DetailRow {
                name: f.name.clone(),
                value: f.value.clone(),
                depth: f.depth,
                range: Some((f.offset, f.len)),
            })
            .collect::<Vec<_>>()
    };
    if let Some(p) = step.packet(trace) {
        if !p.fields.is_empty() {
            return from_fields(&p.fields);
        }
        let mut v = vec![DetailRow::plain("packet", p.packet.name())];
        let opt = [
            ("client_id", p.client_id.clone()),
            ("topic", p.topic.clone()),
            ("payload", p.payload.clone()),
            ("qos", p.qos.map(|q| q.to_string())),
            ("packet id", p.pkid.map(|q| q.to_string())),
            ("retain", p.retain.map(|q| q.to_string())),
            ("code", p.code.clone()),
        ];
        v.extend(
            opt.into_iter()
                .filter_map(|(n, val)| val.map(|val| DetailRow::plain(n, val))),
        );
        return v;
    }
    if let Some(c) = calc_of(trace, step) {
        return c
            .rows
            .into_iter()
            .map(|r| DetailRow {
                name: r.name,
                value: r.value,
                depth: 0,
                range: r.range,
            })
            .collect();
    }
    let Some(e) = step.event(trace) else {
        return Vec::new();
    };
    match &e.kind {
        EventKind::Handshake { fields, .. } => from_fields(fields),
        EventKind::Check { facts, .. } => facts
            .iter()
            .map(|f| DetailRow::plain(&f.name, f.value.clone()))
            .collect(),
        EventKind::Tcp {
            device_addr,
            broker_addr,
        } => {
            vec![
                DetailRow::plain("device", device_addr.clone()),
                DetailRow::plain("broker", broker_addr.clone()),
            ]
        }
        EventKind::ChangeCipherSpec { hex, .. } => {
            let len = hex.len();
            let mut v = vec![DetailRow {
                range: Some((0, 1.min(len))),
                ..DetailRow::plain("content type", "20 = change_cipher_spec")
            }];
            if len >= 5 {
                v.push(DetailRow {
                    range: Some((1, 2)),
                    ..DetailRow::plain("version", "3,3 = TLS 1.2")
                });
                v.push(DetailRow {
                    range: Some((3, 2)),
                    ..DetailRow::plain("length", (len - 5).to_string())
                });
                v.push(DetailRow {
                    range: Some((5, len - 5)),
                    ..DetailRow::plain("message", "1 = switch on encryption")
                });
            }
            v
        }
        EventKind::Alert {
            level,
            description,
            code,
            encrypted,
            hex,
            ..
        } => {
            let level_row = DetailRow::plain("level", format!("{} = {}", level.0, level.name()));
            let desc_row = DetailRow::plain("description", format!("{code} = {description}"));
            if *encrypted {
                // Decrypted, an alert is its two bytes: level, description.
                vec![
                    DetailRow {
                        range: Some((0, 1)),
                        ..level_row
                    },
                    DetailRow {
                        range: Some((1, 1)),
                        ..desc_row
                    },
                ]
            } else if hex.len() == 7 {
                let mut v = record_header_rows(hex);
                v.push(DetailRow {
                    range: Some((5, 1)),
                    ..level_row
                });
                v.push(DetailRow {
                    range: Some((6, 1)),
                    ..desc_row
                });
                v
            } else {
                vec![level_row, desc_row]
            }
        }
        EventKind::AppData {
            ciphertext,
            plaintext,
            record,
            ..
        } => vec![
            DetailRow::plain("record", format!("#{record}")),
            DetailRow::plain("ciphertext", format!("{} bytes", ciphertext.len())),
            DetailRow::plain(
                "plaintext",
                plaintext
                    .as_ref()
                    .map(|p| format!("{} bytes", p.len()))
                    .unwrap_or("not decrypted".into()),
            ),
        ],
        EventKind::Undecodable { hex, reason, .. } => {
            vec![
                DetailRow::plain("bytes", hex.len().to_string()),
                DetailRow::plain("reason", reason.clone()),
            ]
        }
        // Drawn from its calculation (above).
        EventKind::KeySchedule(_) => Vec::new(),
        EventKind::Secret {
            label,
            client_random,
            secret,
        } => vec![
            DetailRow::plain("label", label.clone()),
            DetailRow::plain("client_random", crate::trace::hex(client_random)),
            DetailRow::plain("master secret", crate::trace::hex(secret)),
        ],
        EventKind::Policy(p) => {
            let mut v = vec![
                DetailRow::plain("action", p.action.iot_name()),
                DetailRow::plain("resource", p.resource.clone()),
                DetailRow::plain("decision", p.decision.as_str()),
                DetailRow::plain("enforcement", narrate::enforcement(p.enforcement)),
            ];
            v.extend(p.lines.iter().map(|l| DetailRow::plain("why", l.clone())));
            v
        }
        EventKind::Closed { by, reason, .. } => vec![
            DetailRow::plain("by", by.map(|s| s.name().to_string()).unwrap_or("—".into())),
            DetailRow::plain("reason", reason.clone()),
        ],
        EventKind::Operation(o) => operation_rows(o),
        EventKind::Error { stage, message, .. } => {
            vec![
                DetailRow::plain("stage", stage.title()),
                DetailRow::plain("message", message.clone()),
            ]
        }
        EventKind::Gap {
            device,
            broker,
            events,
            reason,
        } => vec![
            DetailRow::plain(
                "device records",
                format!("{} ({} bytes)", device.records, device.bytes),
            ),
            DetailRow::plain(
                "broker records",
                format!("{} ({} bytes)", broker.records, broker.bytes),
            ),
            DetailRow::plain("other events", events.to_string()),
            DetailRow::plain("reason", reason.clone()),
        ],
        EventKind::Witness { device, what } => {
            use crate::trace::WitnessKind as W;
            let mut v = vec![DetailRow::plain("witness", device.clone())];
            match what {
                W::Connected { client_id } => {
                    v.push(DetailRow::plain("client id", client_id.clone()))
                }
                W::Subscribed { filter, code } => {
                    v.push(DetailRow::plain("filter", filter.clone()));
                    v.push(DetailRow::plain("SUBACK", format!("0x{code:02x}")));
                }
                W::Received { topic, payload } => {
                    v.push(DetailRow::plain("topic", topic.clone()));
                    v.push(DetailRow::plain(
                        "payload",
                        String::from_utf8_lossy(payload).into_owned(),
                    ));
                }
                W::Refused { reason } => v.push(DetailRow::plain("reason", reason.clone())),
                W::Disconnected => {}
            }
            v
        }
    }
}

/// The bytes shown in the hex view, if the step has any.
pub fn bytes(trace: &Trace, step: &Step) -> Option<Vec<u8>> {
    if let Some(p) = step.packet(trace) {
        return Some(p.hex.clone());
    }
    if let Some(c) = calc_of(trace, step) {
        return c.bytes;
    }
    match &step.event(trace)?.kind {
        EventKind::Handshake { hex, .. } => Some(hex.clone()),
        EventKind::ChangeCipherSpec { hex, .. } => Some(hex.clone()),
        // An encrypted alert decrypts to two bytes, its level and description; a cleartext one
        // is its whole record.
        EventKind::Alert {
            level,
            code,
            encrypted: true,
            ..
        } => Some(vec![level.0, *code]),
        EventKind::Alert { hex, .. } => Some(hex.clone()),
        EventKind::AppData {
            ciphertext,
            plaintext,
            ..
        } => Some(plaintext.as_ref().unwrap_or(ciphertext).clone()),
        EventKind::Undecodable { hex, .. } => Some(hex.clone()),
        EventKind::Operation(o) => {
            let all: Vec<u8> = o
                .values()
                .filter_map(|(_, v)| v.as_bytes())
                .flatten()
                .copied()
                .collect();
            (!all.is_empty()).then_some(all)
        }
        _ => None,
    }
}

/// An operation's inputs and outputs, one row each; byte values point into the hex view, which
/// shows them one after the other (see [`bytes`]).
fn operation_rows(o: &crate::trace::Operation) -> Vec<DetailRow> {
    let mut at = 0usize;
    o.values()
        .map(|(dir, v)| {
            let name = format!("{dir}: {}", v.name);
            match v.as_bytes() {
                Some(b) => {
                    let row = DetailRow {
                        range: Some((at, b.len())),
                        ..DetailRow::plain(&name, format!("{} bytes", b.len()))
                    };
                    at += b.len();
                    row
                }
                None => DetailRow::plain(&name, v.display(0)),
            }
        })
        .collect()
}

/// The calculation a step shows (a signature check, iotls's key schedule, iotls's Finished
/// recomputation): its rows replace the step's facts, its bytes fill the hex view.
pub fn calc_of(trace: &Trace, step: &Step) -> Option<calc::Calc> {
    if step.packet.is_some() {
        return None;
    }
    calc::of_event(trace, step.event)
}

/// Where each span of a calculation starts in its bytes, and its name: the hex view's marks.
pub fn span_marks(trace: &Trace, step: &Step) -> Vec<(usize, String)> {
    calc_of(trace, step)
        .filter(|c| c.bytes.is_some())
        .map(|c| {
            c.rows
                .into_iter()
                .filter_map(|r| r.range.map(|(o, _)| (o, r.name)))
                .collect()
        })
        .unwrap_or_default()
}

/// The record as it was sent, for a step whose record travelled encrypted: application data, the
/// encrypted Finished, an encrypted alert. `None` for everything sent in the clear.
pub fn record_as_sent<'t>(trace: &'t Trace, step: &Step) -> Option<&'t [u8]> {
    match &step.event(trace)?.kind {
        EventKind::AppData { ciphertext, .. } => Some(ciphertext),
        EventKind::Handshake {
            encrypted: true,
            ciphertext: Some(c),
            ..
        } => Some(c),
        EventKind::Alert {
            encrypted: true,
            hex,
            ..
        } => Some(hex),
        _ => None,
    }
}

/// How the detail pane shows a step: encrypted records as sent (`e`) or decrypted, and whether
/// the session is a replayed one (not run by this tour).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    pub as_sent: bool,
    pub replayed: bool,
}

/// Whether the detail pane shows the step's record as sent (`e`) rather than decrypted.
pub fn showing_sent(trace: &Trace, shown: Shown, step: &Step) -> bool {
    shown.as_sent && record_as_sent(trace, step).is_some()
}

/// The rows the detail pane shows for a step: its decoded fields, or its record as sent.
pub fn shown_rows(trace: &Trace, shown: Shown, step: &Step) -> Vec<DetailRow> {
    let mut v = if showing_sent(trace, shown, step) {
        record_rows(trace, step)
    } else {
        rows(trace, step)
    };
    // A replayed session was not run by this tour: its directory is the one written when it ran.
    if shown.replayed {
        for r in v.iter_mut().filter(|r| r.name == "redo") {
            if let Some(check) = r.value.rsplit(' ').next().map(str::to_string) {
                r.value = format!(
                    "sh DIR/reproduce.sh {check}, DIR being what --reproduce wrote when this \
                     session ran (tour, connect or serve)"
                );
            }
        }
    }
    v
}

/// The bytes the hex view shows for a step: decrypted, or the record as sent.
pub fn shown_bytes(trace: &Trace, shown: Shown, step: &Step) -> Option<Vec<u8>> {
    if showing_sent(trace, shown, step) {
        record_as_sent(trace, step).map(<[u8]>::to_vec)
    } else {
        bytes(trace, step)
    }
}

/// Content type, version and length of a record's 5-byte header.
fn record_header_rows(rec: &[u8]) -> Vec<DetailRow> {
    if rec.len() < 5 {
        return Vec::new();
    }
    let kind = match rec[0] {
        20 => "change_cipher_spec",
        21 => "alert",
        22 => "handshake",
        23 => "application_data",
        _ => "unknown",
    };
    let version = if rec[1..3] == [3, 3] {
        "3,3 = TLS 1.2".to_string()
    } else {
        format!("{},{}", rec[1], rec[2])
    };
    let len = u16::from_be_bytes([rec[3], rec[4]]);
    vec![
        DetailRow {
            range: Some((0, 1)),
            ..DetailRow::plain("content type", format!("{} = {kind}", rec[0]))
        },
        DetailRow {
            range: Some((1, 2)),
            ..DetailRow::plain("version", version)
        },
        DetailRow {
            range: Some((3, 2)),
            ..DetailRow::plain("length", format!("{len} bytes"))
        },
    ]
}

/// What the step's record decrypted to, when the trace has it.
fn decrypted(trace: &Trace, step: &Step) -> Option<Vec<u8>> {
    match &step.event(trace)?.kind {
        EventKind::AppData { plaintext, .. } => plaintext.clone(),
        EventKind::Handshake { hex, .. } => Some(hex.clone()),
        EventKind::Alert { level, code, .. } => Some(vec![level.0, *code]),
        _ => None,
    }
}

/// How many bytes the step's record decrypted to, when the trace has them.
fn decrypted_len(trace: &Trace, step: &Step) -> Option<usize> {
    match &step.event(trace)?.kind {
        EventKind::AppData { plaintext, .. } => plaintext.as_ref().map(Vec::len),
        EventKind::Handshake { hex, .. } => Some(hex.len()),
        EventKind::Alert { .. } => Some(2),
        _ => None,
    }
}

/// The rows of a record as sent: its header, then for an AEAD suite the explicit nonce, the
/// encrypted content and the tag. The body is split only when its size is exactly nonce +
/// decrypted length + 16-byte tag; otherwise it is one encrypted fragment.
pub fn record_rows(trace: &Trace, step: &Step) -> Vec<DetailRow> {
    let Some(rec) = record_as_sent(trace, step) else {
        return Vec::new();
    };
    if rec.len() < 5 {
        return vec![DetailRow {
            range: Some((0, rec.len())),
            ..DetailRow::plain("record", format!("{} bytes, cut short", rec.len()))
        }];
    }
    let mut v = record_header_rows(rec);
    let body = rec.len() - 5;
    let nonce = trace.tls.as_ref().and_then(|t| {
        if t.cipher_suite.contains("_GCM_") {
            Some(8)
        } else if t.cipher_suite.contains("CHACHA20_POLY1305") {
            Some(0)
        } else {
            None
        }
    });
    const TAG: usize = 16;
    match (nonce, decrypted_len(trace, step)) {
        (Some(nonce), Some(plain)) if body == nonce + plain + TAG => {
            if nonce > 0 {
                v.push(DetailRow {
                    range: Some((5, nonce)),
                    ..DetailRow::plain("explicit nonce", format!("{nonce} bytes, in the clear"))
                });
            }
            v.push(DetailRow {
                range: Some((5 + nonce, plain)),
                ..DetailRow::plain("encrypted content", format!("{plain} bytes"))
            });
            // Next to the ciphertext, what it decrypted to.
            if let Some(d) = decrypted(trace, step) {
                v.push(DetailRow::plain(
                    "decrypted",
                    format!("{} bytes: {}", d.len(), crate::trace::hex(&d)),
                ));
            }
            v.push(DetailRow {
                range: Some((5 + nonce + plain, TAG)),
                ..DetailRow::plain("tag", format!("{TAG} bytes"))
            });
        }
        _ => v.push(DetailRow {
            range: Some((5, body)),
            ..DetailRow::plain("encrypted fragment", format!("{body} bytes"))
        }),
    }
    // How it was protected: the nonce, the additional data, the tag, and the command that
    // decrypts it.
    if let Some(p) = step.event(trace).and_then(calc::protection) {
        for r in calc::record_rows(p) {
            match v.iter_mut().find(|x| x.name == r.name) {
                Some(x) => x.value = format!("{}: {}", x.value, r.value),
                None => v.push(DetailRow::plain(&r.name, r.value)),
            }
        }
        if let Some(x) = v.iter_mut().find(|x| x.name == "explicit nonce") {
            x.value = format!("{}: {}", x.value, crate::trace::hex(&p.explicit_nonce));
        }
    }
    v
}

/// The field whose bytes include `offset`: the deepest (most specific) one.
pub fn field_at(rows: &[DetailRow], offset: usize) -> Option<usize> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.range.is_some_and(|(o, l)| offset >= o && offset < o + l))
        .max_by_key(|(i, r)| (r.depth, usize::MAX - r.range.map(|x| x.1).unwrap_or(0), *i))
        .map(|(i, _)| i)
}
