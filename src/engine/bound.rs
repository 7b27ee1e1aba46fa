//! The recording bound of `serve`: a session's recording keeps the handshake, the first
//! [`HEAD_RECORDS`] and the last [`TAIL_RECORDS`] TLS records of each direction, and stands for
//! what it did not keep with one [`Raw::Gap`] (a `gap` event in the trace), so a device that
//! publishes 150 MB does not grow the broker. Lessons and `connect` keep every record.
//!
//! While the head is being recorded, bytes go into the recording as they come and the bound only
//! follows where each record ends (a 5-byte header and a count, no copy). Once a direction has
//! sent its ChangeCipherSpec and [`HEAD_RECORDS`] records (or [`HEAD_CAP`] records without one),
//! or [`HEAD_EVENTS`] other observations were recorded, what follows goes into a ring that holds
//! whole records and events in order: the oldest leave it, counted in the gap, once it holds more
//! than [`TAIL_RECORDS`] records of one direction or [`TAIL_EVENTS`] events. A record that was in
//! progress when the head ended is finished in the head, so the gap lies between whole records in
//! both directions and the dissector can carry on decrypting after it (the record sequence numbers
//! move on by the skipped counts).
//!
//! The events a session's outcome is decided by (a denied policy decision, a failed check, a
//! verdict, a close, an error) are not lost with the records around them: the first
//! [`KEPT_DECISIVE`] of them that leave the ring are kept and placed right after the gap.

use super::observe::Raw;
use crate::trace::{EventKind, GapSide, Side};
use std::collections::VecDeque;

/// Records of each direction kept from the start of a `serve` session (after its handshake).
pub const HEAD_RECORDS: u32 = 32;
/// Records of each direction kept from the end of a `serve` session.
pub const TAIL_RECORDS: usize = 32;
/// A direction that never sends ChangeCipherSpec ends its head here all the same.
pub const HEAD_CAP: u32 = 4 * HEAD_RECORDS;
/// Events (policy decisions, …) kept in the head, and in the tail.
pub const HEAD_EVENTS: usize = 256;
pub const TAIL_EVENTS: usize = 256;
/// Decisive events (refusals, failed checks, closes) kept from the gap.
pub const KEPT_DECISIVE: usize = 16;

/// Where one direction's byte stream is, record by record.
#[derive(Debug, Default)]
struct Cut {
    /// Header bytes of the record in progress (fewer than 5 while it is incomplete).
    hdr: [u8; 5],
    hdr_len: usize,
    /// Fragment bytes the record in progress still needs (after its header).
    left: usize,
    /// Complete records so far.
    records: u32,
    /// The direction sent ChangeCipherSpec.
    ccs: bool,
    /// After the head ended: the record in progress began in the head and finishes there.
    finishing: bool,
    /// In the tail: the bytes of the record in progress.
    cur: Vec<u8>,
}

impl Cut {
    fn at_boundary(&self) -> bool {
        self.hdr_len == 0 && self.left == 0
    }

    /// Consumes bytes of `data` up to the end of the record in progress (or all of it); returns
    /// how many, and whether a record ended there.
    fn step(&mut self, data: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while self.hdr_len < 5 {
            let Some(&b) = data.get(i) else {
                return (i, false);
            };
            self.hdr[self.hdr_len] = b;
            self.hdr_len += 1;
            i += 1;
            if self.hdr_len == 5 {
                self.left = u16::from_be_bytes([self.hdr[3], self.hdr[4]]) as usize;
            }
        }
        let take = self.left.min(data.len() - i);
        self.left -= take;
        i += take;
        if self.left == 0 {
            if self.hdr[0] == 20 {
                self.ccs = true;
            }
            self.hdr_len = 0;
            self.records += 1;
            (i, true)
        } else {
            (i, false)
        }
    }
}

fn di(side: Side) -> usize {
    match side {
        Side::Broker => 1,
        Side::Device | Side::Iotls => 0,
    }
}

fn side_of(d: usize) -> Side {
    if d == 1 {
        Side::Broker
    } else {
        Side::Device
    }
}

/// The bound's state; the head itself is the recorder's list of raws.
#[derive(Debug, Default)]
pub(super) struct Bound {
    tail_mode: bool,
    dirs: [Cut; 2],
    head_events: usize,
    /// Whole records (`Raw::Bytes`, with their index) and events, oldest first.
    tail: VecDeque<(Option<u32>, Raw)>,
    tail_records: [usize; 2],
    tail_events: usize,
    gap: [GapSide; 2],
    gap_events: u64,
    kept: Vec<Raw>,
}

impl Bound {
    /// Bytes sent by `from`: the parts that belong to the head are handed to `head`.
    pub(super) fn bytes(
        &mut self,
        from: Side,
        data: &[u8],
        t_us: u64,
        mut head: impl FnMut(&[u8]),
    ) {
        let d = di(from);
        let mut rest = data;
        while !rest.is_empty() {
            if !self.tail_mode {
                let (n, ended) = self.dirs[d].step(rest);
                head(&rest[..n]);
                rest = &rest[n..];
                let (c, other) = (&self.dirs[d], &self.dirs[1 - d]);
                // The head holds the handshake: both ChangeCipherSpecs, unless one never comes.
                let full = c.records >= HEAD_CAP
                    || (c.ccs
                        && c.records >= HEAD_RECORDS
                        && (other.ccs || other.records >= HEAD_CAP));
                if ended && full {
                    self.start_tail();
                }
                continue;
            }
            let c = &mut self.dirs[d];
            if c.finishing {
                let (n, ended) = c.step(rest);
                head(&rest[..n]);
                rest = &rest[n..];
                if ended {
                    c.finishing = false;
                }
                continue;
            }
            let (n, ended) = c.step(rest);
            c.cur.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if ended {
                let record = std::mem::take(&mut c.cur);
                let index = c.records - 1;
                self.tail.push_back((
                    Some(index),
                    Raw::Bytes {
                        from,
                        data: record,
                        t_us,
                    },
                ));
                self.tail_records[d] += 1;
                while self.tail_records[d] > TAIL_RECORDS {
                    self.evict();
                }
            }
        }
    }

    /// An event, verdict or key-log line: handed back when it belongs to the head.
    pub(super) fn other(&mut self, raw: Raw) -> Option<Raw> {
        if matches!(raw, Raw::Key { .. }) {
            // The dissector looks key-log lines up; they are kept wherever they come.
            return Some(raw);
        }
        if !self.tail_mode {
            self.head_events += 1;
            if self.head_events >= HEAD_EVENTS {
                self.start_tail();
            }
            return Some(raw);
        }
        self.tail.push_back((None, raw));
        self.tail_events += 1;
        while self.tail_events > TAIL_EVENTS {
            self.evict();
        }
        None
    }

    fn start_tail(&mut self) {
        self.tail_mode = true;
        for c in &mut self.dirs {
            c.finishing = !c.at_boundary();
        }
    }

    /// The oldest unit of the tail leaves it, into the gap.
    fn evict(&mut self) {
        let Some((index, raw)) = self.tail.pop_front() else {
            return;
        };
        match raw {
            Raw::Bytes { from, data, .. } => {
                let d = di(from);
                self.tail_records[d] -= 1;
                let g = &mut self.gap[d];
                if g.records == 0 {
                    g.from_record = index.unwrap_or(0);
                }
                g.records += 1;
                g.bytes += data.len() as u64;
            }
            other => {
                self.tail_events -= 1;
                self.gap_events += 1;
                if decisive(&other) && self.kept.len() < KEPT_DECISIVE {
                    self.kept.push(other);
                }
            }
        }
    }

    /// Everything after the head: the gap (when something was left out), the decisive events
    /// kept from it, the tail, and the bytes of records that were still in progress.
    pub(super) fn take(&mut self, t_us: u64) -> Vec<Raw> {
        let mut out = Vec::new();
        if self.gap.iter().any(|g| g.records > 0) || self.gap_events > 0 {
            out.push(Raw::Gap {
                sides: Box::new(self.gap.clone()),
                events: self.gap_events,
                t_us: self.tail.front().map(|(_, r)| raw_time(r)).unwrap_or(t_us),
            });
        }
        out.append(&mut self.kept);
        out.extend(std::mem::take(&mut self.tail).into_iter().map(|(_, r)| r));
        for (d, c) in self.dirs.iter_mut().enumerate() {
            if !c.cur.is_empty() {
                // A record cut off by the end of the connection: the dissector reports it.
                out.push(Raw::Bytes {
                    from: side_of(d),
                    data: std::mem::take(&mut c.cur),
                    t_us,
                });
            }
        }
        self.tail_records = [0, 0];
        self.tail_events = 0;
        out
    }
}

fn raw_time(r: &Raw) -> u64 {
    match r {
        Raw::Bytes { t_us, .. }
        | Raw::Event { t_us, .. }
        | Raw::Pending { t_us, .. }
        | Raw::Policy { t_us, .. }
        | Raw::Gap { t_us, .. } => *t_us,
        Raw::Key { .. } => 0,
    }
}

/// An event the outcome may be decided by.
fn decisive(r: &Raw) -> bool {
    match r {
        Raw::Pending { .. } => true,
        Raw::Policy { decision, .. } => decision.kind != crate::policy::DecisionKind::Allowed,
        Raw::Event { kind, .. } => match kind.as_ref() {
            EventKind::Policy(p) => !p.decision.allowed(),
            EventKind::Check { ok, .. } => !ok,
            EventKind::Closed { .. } | EventKind::Error { .. } => true,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ct: u8, len: usize) -> Vec<u8> {
        let mut r = vec![ct, 3, 3, (len >> 8) as u8, len as u8];
        r.extend(std::iter::repeat_n(0xab, len));
        r
    }

    #[test]
    fn the_gap_counts_exactly_what_left_the_ring() {
        let mut b = Bound::default();
        let mut head = Vec::new();
        b.bytes(Side::Broker, &record(20, 1), 0, |_| {});
        // The handshake's ChangeCipherSpec, then 200 records of 100 bytes in odd chunks.
        let mut wire = record(20, 1);
        for _ in 0..200 {
            wire.extend(record(23, 100));
        }
        for chunk in wire.chunks(37) {
            b.bytes(Side::Device, chunk, 0, |h| head.extend_from_slice(h));
        }
        let rest = b.take(0);
        let Raw::Gap { sides, .. } = &rest[0] else {
            panic!("no gap first: {:?}", rest.first());
        };
        let [device, broker] = sides.as_ref();
        // 201 records: the head is the first 32 (the CCS among them), the tail the last 32.
        assert_eq!(head.len(), 6 + 31 * 105);
        assert_eq!(device.from_record, 32);
        assert_eq!(device.records, 201 - 32 - 32);
        assert_eq!(device.bytes, (201 - 64) * 105);
        assert_eq!(broker.records, 0);
        let tail: usize = rest[1..]
            .iter()
            .map(|r| match r {
                Raw::Bytes { data, .. } => data.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(tail, 32 * 105);
        assert_eq!(
            head.len() as u64 + device.bytes + tail as u64,
            wire.len() as u64
        );
    }

    #[test]
    fn a_record_in_progress_when_the_head_ends_is_finished_in_the_head() {
        let mut b = Bound::default();
        let mut head = Vec::new();
        b.bytes(Side::Broker, &record(23, 50)[..20], 0, |h| {
            head.extend_from_slice(h)
        });
        for _ in 0..HEAD_EVENTS {
            let _ = b.other(Raw::Key {
                client_random: Box::new([0; 32]),
                master_secret: Vec::new(),
            });
            let _ = b.other(Raw::Event {
                phase: crate::trace::Phase::Mqtt,
                side: Side::Broker,
                kind: Box::new(EventKind::Tcp {
                    device_addr: String::new(),
                    broker_addr: String::new(),
                }),
                t_us: 0,
            });
        }
        assert!(b.tail_mode);
        b.bytes(Side::Broker, &record(23, 50)[20..], 0, |h| {
            head.extend_from_slice(h)
        });
        b.bytes(Side::Broker, &record(23, 10), 0, |h| {
            head.extend_from_slice(h)
        });
        assert_eq!(head.len(), 55);
        let rest = b.take(0);
        assert!(matches!(&rest[0], Raw::Bytes { data, .. } if data.len() == 15));
    }
}
