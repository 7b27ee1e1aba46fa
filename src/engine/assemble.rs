//! From raw observations to a [`Trace`]: decode the bytes with the dissector, keep every hook event
//! where it happened, describe the certificates, and say how the session ended.

use super::device::DeviceReport;
use super::observe::Raw;
use crate::pki::describe;
use crate::tls::dissect::{Dissector, KeyLogEntry};
use crate::trace::{
    CertInfo, CertRole, CertRoleKind, CheckId, Event, EventKind, HandshakeType, Phase, Side, Trace,
    WireRecord, FORMAT,
};

/// Which ends of the connection are iotls's own, i.e. whose checks the trace can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observer {
    pub device: bool,
    pub broker: bool,
}

impl Observer {
    /// The tour: both ends are iotls's.
    pub const BOTH: Observer = Observer {
        device: true,
        broker: true,
    };
    /// `connect`: iotls is the device.
    pub const DEVICE: Observer = Observer {
        device: true,
        broker: false,
    };
    /// `serve`: iotls is the broker.
    pub const BROKER: Observer = Observer {
        device: false,
        broker: true,
    };
    /// `replay` of a capture: neither end is iotls's, so no side is credited with a check.
    pub const NONE: Observer = Observer {
        device: false,
        broker: false,
    };

    pub fn is(&self, side: Side) -> bool {
        match side {
            Side::Device => self.device,
            Side::Broker => self.broker,
            Side::Iotls => true,
        }
    }
}

/// Build the trace. `anchors` are the configured trust anchors (role, DER); `report` is what the
/// in-process device got done (None when the device was not iotls's own).
pub fn assemble(
    scenario: &str,
    started_unix: u64,
    raws: Vec<Raw>,
    anchors: &[(CertRole, Vec<u8>)],
    report: Option<&DeviceReport>,
    observer: Observer,
) -> Trace {
    let keys = raws
        .iter()
        .filter_map(|r| match r {
            Raw::Key {
                client_random,
                master_secret,
            } => Some(KeyLogEntry {
                client_random: **client_random,
                master_secret: master_secret.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut d = Dissector::new(keys);
    let mut b = Builder {
        events: Vec::new(),
        held: Vec::new(),
        observer,
    };
    let mut records: Vec<WireRecord> = Vec::new();
    let mut last_t = 0;
    for raw in raws {
        match raw {
            Raw::Bytes { from, data, t_us } => {
                last_t = t_us;
                // The sender's peer replying means it has consumed what came before.
                b.release_for_reply(from);
                for x in d.push(from, &data) {
                    b.push(x.phase, x.side, x.kind, t_us);
                }
                records.extend(
                    d.take_records()
                        .into_iter()
                        .map(|r| WireRecord { t_us, ..r }),
                );
            }
            Raw::Event {
                phase,
                side,
                kind,
                t_us,
            } => {
                last_t = t_us;
                b.push(phase, side, *kind, t_us);
            }
            Raw::Pending {
                phase,
                side,
                check,
                t_us,
            } => {
                last_t = t_us;
                // The verdict comes after the bytes it judged: its evidence is rebuilt from the
                // handshake messages decoded so far.
                b.push(phase, side, check.resolve(d.handshake_messages()), t_us);
            }
            Raw::Gap {
                sides,
                events,
                t_us,
            } => {
                last_t = t_us;
                let [device, broker] = *sides;
                for x in d.gap(&device, &broker, events) {
                    b.push(x.phase, x.side, x.kind, t_us);
                }
            }
            Raw::Policy { decision, t_us } => {
                last_t = t_us;
                b.push(Phase::Policy, Side::Broker, decision.resolve(), t_us);
            }
            Raw::Key { .. } => {}
        }
    }
    for x in d.finish() {
        b.push(x.phase, x.side, x.kind, last_t);
    }
    records.extend(
        d.take_records()
            .into_iter()
            .map(|r| WireRecord { t_us: last_t, ..r }),
    );
    let events = b.finish();

    let mut certificates = certificates(&events, started_unix as i64);
    for (role, der) in anchors {
        let info = describe(der, vec![*role], started_unix as i64);
        if let Some(existing) = certificates.iter_mut().find(|c| c.sha256 == info.sha256) {
            if !existing.roles.contains(role) {
                existing.roles.push(*role);
            }
        } else {
            certificates.push(info);
        }
    }
    let outcome = super::outcome::outcome(&events, &certificates, report, observer);
    Trace {
        format: FORMAT.to_string(),
        scenario: scenario.to_string(),
        started_unix,
        tls: d.summary(),
        outcome,
        certificates,
        records,
        events,
        replay: None,
        words: Default::default(),
    }
}

/// Puts events in order, holding iotls's own recomputations until the real checks they shadow.
///
/// The dissector recomputes a Finished value the moment its bytes are decoded — before the
/// receiving side has read them. iotls's check is labelled as iotls's and placed after the
/// receiver's own verdicts on that flight: after the receiver's matching check when the receiver
/// is iotls's own (its verdict is in the record), otherwise when the receiver answers.
struct Builder {
    events: Vec<Event>,
    /// (event, the check it shadows, the side that receives the flight)
    held: Vec<(Event, CheckId, Side)>,
    observer: Observer,
}

impl Builder {
    fn push(&mut self, phase: Phase, side: Side, kind: EventKind, t_us: u64) {
        if side == Side::Iotls {
            if let EventKind::Check { check, .. } = &kind {
                let receiver = match check {
                    CheckId::ClientFinished => Side::Broker,
                    _ => Side::Device,
                };
                let check = *check;
                let e = Event {
                    seq: 0,
                    t_us,
                    phase,
                    side,
                    kind,
                };
                self.held.push((e, check, receiver));
                return;
            }
        }
        // A real check that an iotls recomputation shadows: the recomputation follows it.
        let releases: Option<CheckId> = match &kind {
            EventKind::Check { check, .. } => Some(*check),
            _ => None,
        };
        // The receiver closing (or failing) ends its chance to check: release what it never checked.
        let closes = matches!(kind, EventKind::Closed { .. } | EventKind::Error { .. });
        self.append(Event {
            seq: 0,
            t_us,
            phase,
            side,
            kind,
        });
        self.release(|shadows, receiver| receiver == side && (closes || Some(shadows) == releases));
    }

    /// Bytes from `from` are about to be recorded: held checks whose receiver is `from` and is not
    /// iotls's own (so its verdict cannot be in the record) go first.
    fn release_for_reply(&mut self, from: Side) {
        let observed = self.observer.is(from);
        self.release(|_, receiver| receiver == from && !observed);
    }

    /// Appends the held checks for which `due(shadows, receiver)` holds, in the order held.
    fn release(&mut self, due: impl Fn(CheckId, Side) -> bool) {
        let (now, keep) = std::mem::take(&mut self.held)
            .into_iter()
            .partition::<Vec<_>, _>(|(_, shadows, receiver)| due(*shadows, *receiver));
        self.held = keep;
        for (e, _, _) in now {
            self.append(e);
        }
    }

    /// The events, with whatever is still held at the end.
    fn finish(mut self) -> Vec<Event> {
        self.release(|_, _| true);
        self.events
    }

    fn append(&mut self, mut e: Event) {
        e.seq = self.events.len() as u32;
        self.events.push(e);
    }
}

/// Every certificate carried in a Certificate message, described with its place in the chain.
fn certificates(events: &[Event], now: i64) -> Vec<CertInfo> {
    let mut out: Vec<CertInfo> = Vec::new();
    for e in events {
        let EventKind::Handshake { msg, hex, .. } = &e.kind else {
            continue;
        };
        if *msg != HandshakeType::CERTIFICATE {
            continue;
        }
        for (i, der) in certificate_list(hex).into_iter().enumerate() {
            let role = CertRole {
                side: e.side,
                kind: CertRoleKind::Chain,
                index: i,
            };
            let info = describe(der, vec![role], now);
            match out.iter_mut().find(|c| c.sha256 == info.sha256) {
                Some(c) if !c.roles.contains(&role) => c.roles.push(role),
                Some(_) => {}
                None => out.push(info),
            }
        }
    }
    out
}

/// The DER certificates of a Certificate handshake message (header included); malformed → what parsed.
pub fn certificate_list(msg: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let u24 = |b: &[u8]| ((b[0] as usize) << 16) | ((b[1] as usize) << 8) | b[2] as usize;
    if msg.len() < 7 {
        return out;
    }
    let end = (7 + u24(&msg[4..7])).min(msg.len());
    let mut i = 7;
    while i + 3 <= end {
        let n = u24(&msg[i..i + 3]);
        i += 3;
        if i + n > end {
            break;
        }
        out.push(&msg[i..i + n]);
        i += n;
    }
    out
}
