//! A pcapng capture of one session, for Wireshark and tshark.
//!
//! The TCP payloads are the trace's `records`: every TLS record exactly as it was on the socket.
//! iotls records the bytes above TCP, not the packets, so the framing around them is synthesised
//! (docs/exports.md):
//!
//! - IPv4 (or IPv6) and TCP headers with correct lengths and checksums (`etherparse`); the
//!   addresses and the device's port come from the trace's `tcp` event, else 127.0.0.1 (device,
//!   port 49152) and 127.0.0.2 (broker). The broker is always shown on port 8883, where Wireshark
//!   expects MQTT over TLS, so it decodes MQTT without "Decode As"; the real port is in a comment
//!   on the first packet.
//! - A SYN / SYN-ACK / ACK opening, then one segment per record (split if a record were larger
//!   than an IP packet can carry), with sequence and acknowledgement numbers that count every
//!   byte, and a FIN from each side at the end (the side that closed first sends the first).
//! - A session `serve` did not keep whole (a `gap` event): the records left out still count in
//!   the sequence numbers, so Wireshark shows the segments as not captured, and the first segment
//!   after the gap carries a comment saying what is missing.
//! - Times: the session's start (`started_unix`) plus each record's `t_us`.
//!
//! The key log goes into a Decryption Secrets Block (type 0x0000000A, secrets type `TLSK`) before
//! the first packet, so Wireshark decrypts the session with no key log option. The blocks are
//! serialised by the `pcap-parser` crate.

use super::keylog;
use crate::trace::{EventKind, GapSide, Side, Trace, WireRecord};
use etherparse::PacketBuilder;
use pcap_parser::pcapng::{
    DecryptionSecretsBlock, EnhancedPacketBlock, InterfaceDescriptionBlock, SecretsType,
    SectionHeaderBlock,
};
use pcap_parser::{Linktype, OptionCode, PcapNGOption, ToVec};
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The port Wireshark dissects as MQTT over TLS.
pub const MQTT_TLS_PORT: u16 = 8883;
/// The device's port when the trace has no `tcp` event.
const DEVICE_PORT: u16 = 49152;
/// Initial sequence numbers of the synthesised connection.
const DEVICE_ISN: u32 = 0x0001_0000;
const BROKER_ISN: u32 = 0x0002_0000;
/// The most TCP payload one IPv4 packet carries (65,535 − 20 − 20).
pub const MAX_SEGMENT: usize = 65_495;
const WINDOW: u16 = 65_535;
const TTL: u8 = 64;
/// pcapng option code of an interface's description (`if_description`).
const IF_DESCRIPTION: OptionCode = OptionCode(3);

/// One end of the synthesised connection.
struct End {
    addr: SocketAddr,
    isn: u32,
    /// Sequence space used so far after the SYN: payload bytes, and 1 for a FIN.
    used: u32,
}

impl End {
    fn next_seq(&self) -> u32 {
        self.isn.wrapping_add(1).wrapping_add(self.used)
    }
}

/// TCP flags of one synthesised segment.
#[derive(Clone, Copy, Default)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
}

/// The session as a pcapng file: section header, interface, key log (when the trace holds
/// secrets), and the packets.
pub fn pcapng(trace: &Trace) -> std::io::Result<Vec<u8>> {
    let (device, broker, real_broker) = addresses(trace);
    let start_us = trace.started_unix.saturating_mul(1_000_000);
    let mut out = Vec::new();

    let mut shb = SectionHeaderBlock {
        block_type: 0,
        block_len1: 0,
        bom: 0,
        major_version: 1,
        minor_version: 0,
        section_len: -1,
        options: vec![
            option(
                OptionCode::ShbUserAppl,
                format!("iotls {}", env!("CARGO_PKG_VERSION")),
            ),
            option(
                OptionCode::Comment,
                format!(
                    "iotls session {}: the TCP payloads are the TLS records as they were on the \
                     socket; the TCP/IP framing around them is synthesised by iotls",
                    trace.scenario
                ),
            ),
        ],
        block_len2: 0,
    };
    out.extend(shb.to_vec().map_err(gen_error)?);

    let mut idb = InterfaceDescriptionBlock {
        block_type: 0,
        block_len1: 0,
        linktype: Linktype::RAW,
        reserved: 0,
        snaplen: 0,
        options: vec![option(
            IF_DESCRIPTION,
            "iotls: device and broker, synthesised TCP/IP framing".to_string(),
        )],
        block_len2: 0,
        if_tsresol: 6,
        if_tsoffset: 0,
    };
    out.extend(idb.to_vec().map_err(gen_error)?);

    let secrets = keylog::lines(trace);
    if !secrets.is_empty() {
        let mut dsb = DecryptionSecretsBlock {
            block_type: 0,
            block_len1: 0,
            secrets_type: SecretsType::TlsKeyLog,
            secrets_len: secrets.len() as u32,
            data: secrets.as_bytes(),
            options: Vec::new(),
            block_len2: 0,
        };
        out.extend(dsb.to_vec().map_err(gen_error)?);
    }

    let mut dev = End {
        addr: device,
        isn: DEVICE_ISN,
        used: 0,
    };
    let mut brk = End {
        addr: broker,
        isn: BROKER_ISN,
        used: 0,
    };
    let mut records: Vec<&WireRecord> = trace.records.iter().collect();
    // In the order the bytes were seen (stable: a flight keeps its order).
    records.sort_by_key(|r| r.t_us);
    let opened_at = trace
        .events
        .iter()
        .find_map(|e| matches!(e.kind, EventKind::Tcp { .. }).then_some(e.t_us))
        .into_iter()
        .chain(records.first().map(|r| r.t_us))
        .min()
        .unwrap_or(0);

    let mut packet = |t_us: u64,
                      from: &End,
                      to: &End,
                      flags: Flags,
                      payload: &[u8],
                      comment: Option<String>|
     -> std::io::Result<()> {
        let bytes = segment(from, to, flags, payload)?;
        out.extend(epb(start_us + t_us, &bytes, comment)?);
        Ok(())
    };

    let note = (real_broker.port() != MQTT_TLS_PORT).then(|| {
        format!(
            "synthesised by iotls: the broker was at {real_broker}, shown on port {MQTT_TLS_PORT} \
             so that Wireshark decodes MQTT over TLS"
        )
    });
    let syn = Flags {
        syn: true,
        ..Flags::default()
    };
    let syn_ack = Flags {
        syn: true,
        ack: true,
        ..Flags::default()
    };
    let ack = Flags {
        ack: true,
        ..Flags::default()
    };
    let push = Flags {
        ack: true,
        psh: true,
        ..Flags::default()
    };
    let fin = Flags {
        ack: true,
        fin: true,
        ..Flags::default()
    };
    packet(opened_at, &dev, &brk, syn, &[], note)?;
    packet(opened_at, &brk, &dev, syn_ack, &[], None)?;
    packet(opened_at, &dev, &brk, ack, &[], None)?;

    // Records `serve` did not keep (a `gap` event): their bytes still take their place in the
    // sequence space, so Wireshark sees segments not captured, not garbage.
    let mut gaps: Vec<(Side, GapSide)> = trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Gap { device, broker, .. } => Some([
                (Side::Device, device.clone()),
                (Side::Broker, broker.clone()),
            ]),
            _ => None,
        })
        .flatten()
        .filter(|(_, g)| g.records > 0)
        .collect();
    let mut last = opened_at;
    for r in &records {
        last = last.max(r.t_us);
        let (from, to) = match r.from {
            Side::Broker => (&mut brk, &mut dev),
            _ => (&mut dev, &mut brk),
        };
        let mut comment = None;
        if let Some(k) = gaps
            .iter()
            .position(|(s, g)| *s == r.from && r.index >= g.from_record + g.records)
        {
            let (side, g) = gaps.remove(k);
            from.used = from.used.wrapping_add(g.bytes as u32);
            comment = Some(format!(
                "iotls: before this segment the {} sent {} record(s) ({}–{}, {} bytes) that \
                 iotls serve did not keep (its recording bound); the sequence numbers count them",
                side.name(),
                g.records,
                g.from_record,
                g.from_record + g.records - 1,
                g.bytes
            ));
        }
        for chunk in r.bytes.chunks(MAX_SEGMENT) {
            packet(r.t_us, from, to, push, chunk, comment.take())?;
            from.used = from.used.wrapping_add(chunk.len() as u32);
        }
    }

    // The FINs: the side that closed first sends the first one.
    let closes: Vec<(Side, u64)> = trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Closed { by: Some(s), .. } if *s != Side::Iotls => Some((*s, e.t_us)),
            _ => None,
        })
        .collect();
    let first = closes.first().map(|c| c.0).unwrap_or(Side::Device);
    let closed_at = |side: Side| {
        closes
            .iter()
            .find(|c| c.0 == side)
            .map(|c| c.1)
            .unwrap_or(0)
    };
    let t1 = last.max(closed_at(first));
    let t2 = t1.max(closed_at(first.peer()));
    let (a, b) = match first {
        Side::Broker => (&mut brk, &mut dev),
        _ => (&mut dev, &mut brk),
    };
    packet(t1, a, b, fin, &[], None)?;
    a.used = a.used.wrapping_add(1);
    packet(t2, b, a, fin, &[], None)?;
    b.used = b.used.wrapping_add(1);
    packet(t2, a, b, ack, &[], None)?;
    Ok(out)
}

/// (device, broker as shown, broker as it really was).
fn addresses(trace: &Trace) -> (SocketAddr, SocketAddr, SocketAddr) {
    let tcp = trace.events.iter().find_map(|e| match &e.kind {
        EventKind::Tcp {
            device_addr,
            broker_addr,
        } => Some((
            device_addr.parse::<SocketAddr>().ok()?,
            broker_addr.parse::<SocketAddr>().ok()?,
        )),
        _ => None,
    });
    match tcp {
        Some((d, b)) if d.is_ipv4() == b.is_ipv4() => {
            let shown = SocketAddr::new(b.ip(), MQTT_TLS_PORT);
            // The two ends of one connection must differ.
            let device = if d == shown {
                SocketAddr::new(d.ip(), DEVICE_PORT)
            } else {
                d
            };
            (device, shown, b)
        }
        _ => {
            let device = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), DEVICE_PORT);
            let broker = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), MQTT_TLS_PORT);
            (device, broker, broker)
        }
    }
}

/// One IP packet: headers built and checksummed by etherparse, then the payload.
fn segment(from: &End, to: &End, flags: Flags, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let ip = match (from.addr.ip(), to.addr.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), TTL),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), TTL),
        _ => {
            return Err(std::io::Error::other(
                "device and broker addresses of different IP versions",
            ))
        }
    };
    // A SYN carries the initial sequence number; it takes up one number itself.
    let seq = if flags.syn { from.isn } else { from.next_seq() };
    let mut tcp = ip.tcp(from.addr.port(), to.addr.port(), seq, WINDOW);
    if flags.syn {
        tcp = tcp.syn();
    }
    if flags.ack {
        tcp = tcp.ack(to.next_seq());
    }
    if flags.psh {
        tcp = tcp.psh();
    }
    if flags.fin {
        tcp = tcp.fin();
    }
    let mut bytes = Vec::with_capacity(tcp.size(payload.len()));
    tcp.write(&mut bytes, payload)
        .map_err(|e| std::io::Error::other(format!("cannot build a packet: {e}")))?;
    Ok(bytes)
}

/// An Enhanced Packet Block on interface 0 at `t_us` microseconds since the epoch.
fn epb(t_us: u64, packet: &[u8], comment: Option<String>) -> std::io::Result<Vec<u8>> {
    let mut b = EnhancedPacketBlock {
        block_type: 0,
        block_len1: 0,
        if_id: 0,
        ts_high: (t_us >> 32) as u32,
        ts_low: t_us as u32,
        caplen: packet.len() as u32,
        origlen: packet.len() as u32,
        data: packet,
        options: comment
            .map(|c| option(OptionCode::Comment, c))
            .into_iter()
            .collect(),
        block_len2: 0,
    };
    b.to_vec().map_err(gen_error)
}

fn option(code: OptionCode, text: String) -> PcapNGOption<'static> {
    let bytes = text.into_bytes();
    PcapNGOption {
        code,
        len: bytes.len() as u16,
        value: Cow::Owned(bytes),
    }
}

fn gen_error(e: impl std::fmt::Debug) -> std::io::Error {
    std::io::Error::other(format!("cannot serialise a pcapng block: {e:?}"))
}
