//! Captures taken elsewhere (pcap or pcapng): packets → TCP connections → the bytes each end sent.
//!
//! `pcap-parser` reads the file (and a pcapng Decryption Secrets Block, if there is one),
//! `etherparse` the link, IP and TCP headers of each packet. Each TCP connection is reassembled per
//! direction in sequence order: retransmitted bytes are dropped, segments that arrive early wait
//! for the bytes before them. The two directions' bytes are kept in the order the packets were
//! captured, which is the order the dissector needs (causal order).

use super::keylog;
use super::ReplayError;
use crate::tls::dissect::KeyLogEntry;
use crate::trace::Side;
use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::pcapng::Block;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// What a capture holds.
#[derive(Debug, Default)]
pub struct Capture {
    /// The TCP connections whose first bytes are a TLS record, in the order they started.
    pub sessions: Vec<Connection>,
    /// Every TCP connection that carried data, TLS or not.
    pub tcp_connections: usize,
    /// The first bytes of the first connection that was not TLS (for the error message).
    pub first_non_tls: Option<Vec<u8>>,
    /// Key-log lines from the capture's Decryption Secrets Blocks (pcapng).
    pub secrets: Vec<KeyLogEntry>,
    /// Warnings about the capture as a whole.
    pub notes: Vec<String>,
}

/// One TCP connection: the device is the end that opened it.
#[derive(Debug, Clone)]
pub struct Connection {
    pub device: SocketAddr,
    pub broker: SocketAddr,
    /// Capture time of its first packet, microseconds since the Unix epoch.
    pub start_us: u64,
    /// What each end sent, in capture order (consecutive bytes of one end merged).
    pub chunks: Vec<Chunk>,
    /// Warnings about this connection (retransmissions dropped, bytes missing from the capture).
    pub notes: Vec<String>,
}

/// Bytes one end sent, with the capture time of the packet that completed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub from: Side,
    pub data: Vec<u8>,
    /// Microseconds since the Unix epoch.
    pub t_us: u64,
}

/// The link types iotls reads, for the error message.
const LINK_TYPES: &str = "Ethernet, Linux cooked (SLL, SLL2), raw IPv4/IPv6, BSD loopback";

/// One TCP segment, as captured.
struct Segment {
    t_us: u64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
}

/// An interface of a pcapng section: its link type and timestamp resolution.
struct Interface {
    link: Linktype,
    /// Timestamp units per second.
    resolution: u64,
    offset: i64,
}

/// Reads `path` as pcap or pcapng and reassembles its TCP connections.
pub fn read(path: &Path) -> Result<Capture, ReplayError> {
    let file = path.display().to_string();
    let input = std::fs::File::open(path).map_err(|source| ReplayError::Read {
        file: file.clone(),
        source,
    })?;
    let bad = |problem: String| ReplayError::Input {
        file: file.clone(),
        problem,
        hint: "give a capture written by dumpcap, tshark, tcpdump or Wireshark",
    };
    let mut reader = pcap_parser::create_reader(1 << 16, input).map_err(|e| match e {
        PcapError::HeaderNotRecognized => bad("not a pcap or pcapng capture".into()),
        PcapError::Eof => bad("the file is empty".into()),
        PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
            bad("the capture is truncated: its header is incomplete".into())
        }
        other => bad(format!("cannot read the capture: {other}")),
    })?;

    let mut cap = Capture::default();
    let mut segments: Vec<Segment> = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut legacy: Option<(Linktype, bool)> = None;
    let mut packets = 0usize;
    let mut not_understood = 0usize;
    let mut cut_short = 0usize;
    let mut fragments = 0usize;
    let mut unsupported: Vec<Linktype> = Vec::new();
    let mut last_t = 0u64;
    loop {
        let (offset, block) = match reader.next() {
            Ok(x) => x,
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                reader
                    .refill()
                    .map_err(|e| bad(format!("cannot read the capture: {e}")))?;
                continue;
            }
            Err(PcapError::BufferTooSmall) => {
                let bigger = reader.data().len().max(1 << 16) * 2;
                if bigger > 1 << 28 || !reader.grow(bigger) {
                    return Err(bad("a block is larger than iotls reads (256 MiB)".into()));
                }
                reader
                    .refill()
                    .map_err(|e| bad(format!("cannot read the capture: {e}")))?;
                continue;
            }
            Err(PcapError::UnexpectedEof) => {
                return Err(bad(format!(
                    "the capture is truncated: it ends in the middle of a block, after {packets} \
                     packet(s)"
                )))
            }
            Err(e) => {
                return Err(bad(format!(
                    "the capture is damaged after {packets} packet(s): {e}"
                )))
            }
        };
        // (link type, capture time, bytes, cut short by the snap length)
        let mut packet: Option<(Linktype, u64, Vec<u8>, bool)> = None;
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                // 0xa1b23c4d (either byte order): nanosecond timestamps.
                let nanos = matches!(h.magic_number, 0xa1b2_3c4d | 0x4d3c_b2a1);
                legacy = Some((h.network, nanos));
            }
            PcapBlockOwned::Legacy(b) => {
                if let Some((link, nanos)) = legacy {
                    let frac = if nanos {
                        b.ts_usec as u64 / 1000
                    } else {
                        b.ts_usec as u64
                    };
                    let t = b.ts_sec as u64 * 1_000_000 + frac;
                    let cut = b.caplen < b.origlen;
                    let len = (b.caplen as usize).min(b.data.len());
                    packet = Some((link, t, b.data[..len].to_vec(), cut));
                }
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces.clear(),
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => interfaces.push(Interface {
                link: idb.linktype,
                resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                offset: idb.ts_offset(),
            }),
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                if let Some(i) = interfaces.get(epb.if_id as usize) {
                    let (sec, frac) = epb.decode_ts(i.offset as u64, i.resolution);
                    let t = sec as u64 * 1_000_000
                        + (frac as u128 * 1_000_000 / i.resolution as u128) as u64;
                    let len = (epb.caplen as usize).min(epb.data.len());
                    let cut = epb.caplen < epb.origlen;
                    packet = Some((i.link, t, epb.data[..len].to_vec(), cut));
                } else {
                    not_understood += 1;
                }
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                // No timestamp: it is taken to follow the packet before it.
                if let Some(i) = interfaces.first() {
                    let cut = (spb.data.len() as u32) < spb.origlen;
                    packet = Some((i.link, last_t, spb.data.to_vec(), cut));
                }
            }
            PcapBlockOwned::NG(Block::DecryptionSecrets(dsb)) => {
                if dsb.secrets_type == pcap_parser::pcapng::SecretsType::TlsKeyLog {
                    let text = String::from_utf8_lossy(dsb.data);
                    let (entries, _) = keylog::parse_lenient(&text);
                    cap.secrets.extend(entries);
                }
            }
            PcapBlockOwned::NG(_) => {}
        }
        reader.consume(offset);
        let Some((link, t, data, cut)) = packet else {
            continue;
        };
        packets += 1;
        last_t = t;
        if cut {
            cut_short += 1;
        }
        match tcp_segment(link, t, &data) {
            Parsed::Segment(s) => segments.push(s),
            Parsed::Other => {}
            Parsed::Fragment => fragments += 1,
            Parsed::Broken => not_understood += 1,
            Parsed::Unsupported => {
                if !unsupported.contains(&link) {
                    unsupported.push(link);
                }
            }
        }
    }
    if packets == 0 {
        return Err(bad("the capture holds no packets".into()));
    }
    if segments.is_empty() && !unsupported.is_empty() {
        let names: Vec<String> = unsupported.iter().map(|l| format!("{l:?}")).collect();
        return Err(ReplayError::Input {
            file,
            problem: format!(
                "its packets have link type {}, which iotls does not read",
                names.join(", ")
            ),
            hint: "capture on an Ethernet, loopback or Linux 'any' interface",
        });
    }
    if cut_short > 0 {
        cap.notes.push(format!(
            "{cut_short} packet(s) were cut short by the capture's snap length: their bytes are \
             missing (capture with -s 0)"
        ));
    }
    if fragments > 0 {
        cap.notes.push(format!(
            "{fragments} IP fragment(s) were left out (iotls does not reassemble IP fragments)"
        ));
    }
    if not_understood > 0 {
        cap.notes.push(format!(
            "{not_understood} packet(s) could not be read as IP/TCP and were left out"
        ));
    }
    if !unsupported.is_empty() {
        let names: Vec<String> = unsupported.iter().map(|l| format!("{l:?}")).collect();
        cap.notes.push(format!(
            "packets of link type {} were left out (iotls reads {LINK_TYPES})",
            names.join(", ")
        ));
    }
    // Interfaces may interleave out of order; the dissector needs the order things happened.
    segments.sort_by_key(|s| s.t_us);
    let connections = reassemble(segments);
    cap.tcp_connections = connections.len();
    for c in connections {
        let first = c.chunks.first().map(|c| c.data.as_slice()).unwrap_or(&[]);
        if looks_like_tls(first) {
            cap.sessions.push(c);
        } else if cap.first_non_tls.is_none() {
            cap.first_non_tls = Some(first[..first.len().min(40)].to_vec());
        }
    }
    Ok(cap)
}

/// The start of a TLS record: a record type (ChangeCipherSpec … ApplicationData) and an SSL/TLS
/// major version.
fn looks_like_tls(b: &[u8]) -> bool {
    b.len() >= 3 && (20..=23).contains(&b[0]) && b[1] == 3 && b[2] <= 4
}

enum Parsed {
    Segment(Segment),
    /// Not TCP (UDP, ARP, …).
    Other,
    Fragment,
    Broken,
    Unsupported,
}

/// The TCP segment in a packet of link type `link`, if it holds one.
fn tcp_segment(link: Linktype, t_us: u64, data: &[u8]) -> Parsed {
    let sliced = match link {
        Linktype::ETHERNET => SlicedPacket::from_ethernet(data),
        Linktype::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        // SLL2: protocol type in the first two bytes, 20-byte header.
        Linktype::LINUX_SLL2 if data.len() >= 20 => SlicedPacket::from_ether_type(
            EtherType(u16::from_be_bytes([data[0], data[1]])),
            &data[20..],
        ),
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => SlicedPacket::from_ip(data),
        // BSD loopback: a 4-byte address family, then the IP packet.
        Linktype::NULL | Linktype::LOOP if data.len() >= 4 => SlicedPacket::from_ip(&data[4..]),
        Linktype::LINUX_SLL2 | Linktype::NULL | Linktype::LOOP => return Parsed::Broken,
        _ => return Parsed::Unsupported,
    };
    let Ok(p) = sliced else {
        return Parsed::Broken;
    };
    let (src, dst, fragmented) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.is_payload_fragmented(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.is_payload_fragmented(),
        ),
        _ => return Parsed::Other,
    };
    if fragmented {
        return Parsed::Fragment;
    }
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        return Parsed::Other;
    };
    Parsed::Segment(Segment {
        t_us,
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload().to_vec(),
    })
}

/// One direction of a connection being reassembled.
#[derive(Default)]
struct Stream {
    /// Sequence number of the first data byte (after the SYN).
    isn: Option<u32>,
    /// Bytes delivered so far (the next expected offset from `isn`).
    next: u64,
    /// Segments that arrived before the bytes that precede them: offset → (bytes, time).
    early: BTreeMap<u64, (Vec<u8>, u64)>,
    retransmitted: usize,
    /// A FIN or RST was seen from this end.
    ended: bool,
}

struct Reassembly {
    conn: Connection,
    /// The opening SYN was seen, so the device is known for sure.
    opened: bool,
    streams: [Stream; 2],
}

fn dir(side: Side) -> usize {
    if side == Side::Broker {
        1
    } else {
        0
    }
}

impl Reassembly {
    fn new(device: SocketAddr, broker: SocketAddr, t_us: u64, opened: bool) -> Self {
        Reassembly {
            conn: Connection {
                device,
                broker,
                start_us: t_us,
                chunks: Vec::new(),
                notes: Vec::new(),
            },
            opened,
            streams: Default::default(),
        }
    }

    fn segment(&mut self, s: Segment) {
        let from = if s.src == self.conn.device {
            Side::Device
        } else {
            Side::Broker
        };
        let st = &mut self.streams[dir(from)];
        if s.syn {
            st.isn = Some(s.seq.wrapping_add(1));
            return;
        }
        if s.fin || s.rst {
            st.ended = true;
        }
        if s.payload.is_empty() {
            return;
        }
        let isn = *st.isn.get_or_insert(s.seq);
        // Before the stream's start: an old retransmission.
        let rel = s.seq.wrapping_sub(isn);
        if rel >= 1 << 31 {
            st.retransmitted += s.payload.len();
            return;
        }
        let rel = rel as u64;
        let end = rel + s.payload.len() as u64;
        if end <= st.next {
            st.retransmitted += s.payload.len();
            return;
        }
        if rel > st.next {
            let keep = st
                .early
                .get(&rel)
                .is_none_or(|(d, _)| d.len() < s.payload.len());
            if keep {
                st.early.insert(rel, (s.payload, s.t_us));
            }
            return;
        }
        let skip = (st.next - rel) as usize;
        st.retransmitted += skip;
        st.next = end;
        let mut out = vec![(s.payload[skip..].to_vec(), s.t_us)];
        // Segments that were waiting for these bytes.
        while let Some((&at, _)) = st.early.first_key_value() {
            if at > st.next {
                break;
            }
            let Some((d, t)) = st.early.remove(&at) else {
                break;
            };
            let e = at + d.len() as u64;
            if e <= st.next {
                st.retransmitted += d.len();
                continue;
            }
            let skip = (st.next - at) as usize;
            st.retransmitted += skip;
            st.next = e;
            // Delivered when the segment that completed them arrived.
            out.push((d[skip..].to_vec(), t.max(s.t_us)));
        }
        for (data, t_us) in out {
            self.deliver(from, data, t_us);
        }
    }

    fn deliver(&mut self, from: Side, data: Vec<u8>, t_us: u64) {
        if let Some(last) = self.conn.chunks.last_mut() {
            if last.from == from {
                last.data.extend_from_slice(&data);
                last.t_us = t_us;
                return;
            }
        }
        self.conn.chunks.push(Chunk { from, data, t_us });
    }

    fn finish(mut self) -> Connection {
        if !self.opened {
            // The capture began after the SYN: if the first "broker" bytes are a ClientHello, the
            // ends were guessed the wrong way round.
            let hello = |b: &[u8]| looks_like_tls(b) && b.get(5) == Some(&1);
            let device_first = self.conn.chunks.iter().find(|c| c.from == Side::Device);
            let broker_first = self.conn.chunks.iter().find(|c| c.from == Side::Broker);
            let swap = broker_first.is_some_and(|c| hello(&c.data))
                && !device_first.is_some_and(|c| hello(&c.data));
            if swap {
                std::mem::swap(&mut self.conn.device, &mut self.conn.broker);
                self.streams.swap(0, 1);
                for c in &mut self.conn.chunks {
                    c.from = c.from.peer();
                }
            }
            self.conn.notes.push(
                "the capture starts after this connection was opened (no SYN): the end that sent \
                 the ClientHello is taken to be the device"
                    .to_string(),
            );
        }
        for (side, st) in [Side::Device, Side::Broker].into_iter().zip(&self.streams) {
            if st.retransmitted > 0 {
                self.conn.notes.push(format!(
                    "{} retransmitted byte(s) from the {} were dropped",
                    st.retransmitted,
                    side.name()
                ));
            }
            if let Some((&at, _)) = st.early.first_key_value() {
                let waiting: usize = st.early.values().map(|(d, _)| d.len()).sum();
                self.conn.notes.push(format!(
                    "bytes {}–{} of what the {} sent are missing from the capture; the {waiting} \
                     byte(s) after them are not shown",
                    st.next,
                    at - 1,
                    side.name()
                ));
            }
        }
        self.conn
    }
}

/// Every TCP connection that carried data, in the order it started.
fn reassemble(segments: Vec<Segment>) -> Vec<Connection> {
    // (lower endpoint, higher endpoint) → index into `open`.
    let mut by_ends: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    let mut open: Vec<Reassembly> = Vec::new();
    let mut done: Vec<Reassembly> = Vec::new();
    for s in segments {
        let key = if s.src <= s.dst {
            (s.src, s.dst)
        } else {
            (s.dst, s.src)
        };
        let opening = s.syn && !s.ack;
        if let Some(&i) = by_ends.get(&key) {
            // A new SYN on ends whose connection has ended (or never got going): a new connection.
            let c = &open[i];
            let reused =
                opening && (c.streams.iter().any(|st| st.ended) || !c.conn.chunks.is_empty());
            if !reused {
                open[i].segment(s);
                continue;
            }
        }
        let r = if opening {
            Reassembly::new(s.src, s.dst, s.t_us, true)
        } else if s.syn {
            // SYN-ACK: the destination opened the connection.
            Reassembly::new(s.dst, s.src, s.t_us, true)
        } else {
            Reassembly::new(s.src, s.dst, s.t_us, false)
        };
        if let Some(&i) = by_ends.get(&key) {
            let old = std::mem::replace(&mut open[i], r);
            done.push(old);
            open[i].segment(s);
        } else {
            by_ends.insert(key, open.len());
            let mut r = r;
            r.segment(s);
            open.push(r);
        }
    }
    done.extend(open);
    let mut out: Vec<Connection> = done
        .into_iter()
        .map(Reassembly::finish)
        .filter(|c| !c.chunks.is_empty())
        .collect();
    out.sort_by_key(|c| c.start_us);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(src: &str, dst: &str, seq: u32, flags: &str, payload: &[u8], t: u64) -> Segment {
        Segment {
            t_us: t,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq,
            syn: flags.contains('S'),
            ack: flags.contains('A'),
            fin: flags.contains('F'),
            rst: flags.contains('R'),
            payload: payload.to_vec(),
        }
    }

    const D: &str = "10.0.0.2:40000";
    const B: &str = "10.0.0.1:8883";

    #[test]
    fn in_order_out_of_order_and_retransmitted_bytes() {
        let conns = reassemble(vec![
            seg(D, B, 100, "S", b"", 0),
            seg(B, D, 500, "SA", b"", 1),
            seg(D, B, 101, "A", b"hel", 2),
            // Early: "wor" arrives before "lo ".
            seg(D, B, 107, "A", b"wor", 3),
            seg(D, B, 104, "A", b"lo ", 4),
            // A retransmission and an overlapping one.
            seg(D, B, 101, "A", b"hel", 5),
            seg(D, B, 108, "A", b"orld", 6),
            seg(B, D, 501, "A", b"hi", 7),
            seg(D, B, 112, "FA", b"", 8),
        ]);
        assert_eq!(conns.len(), 1);
        let c = &conns[0];
        assert_eq!(c.device, D.parse().unwrap());
        let got: Vec<(Side, &[u8])> = c.chunks.iter().map(|c| (c.from, &c.data[..])).collect();
        assert_eq!(
            got,
            [
                (Side::Device, &b"hello world"[..]),
                (Side::Broker, &b"hi"[..])
            ]
        );
        assert!(
            c.notes.iter().any(|n| n.contains("5 retransmitted")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn a_gap_is_reported_and_the_ends_found_without_a_syn() {
        // No SYN; the broker's ClientHello-looking bytes come second.
        let hello = [22, 3, 1, 0, 4, 1, 0, 0, 0];
        let conns = reassemble(vec![
            seg(B, D, 900, "A", b"", 0),
            seg(D, B, 7, "A", &hello, 1),
            seg(D, B, 100, "A", b"late", 2),
        ]);
        let c = &conns[0];
        assert_eq!(c.device, D.parse().unwrap());
        assert_eq!(c.chunks[0].data, hello);
        assert!(
            c.notes.iter().any(|n| n.contains("missing")),
            "{:?}",
            c.notes
        );
    }

    /// The same TCP segment in each link type iotls reads.
    #[test]
    fn link_types() {
        use etherparse::{LinuxSllPacketType, PacketBuilder};
        let payload = b"\x16\x03\x01hello";
        let v4 = || PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64);
        let v6 = || PacketBuilder::ipv6([1; 16], [2; 16], 64);
        let write = |b: etherparse::PacketBuilderStep<etherparse::TcpHeader>| {
            let mut out = Vec::new();
            b.write(&mut out, payload).expect("build a packet");
            out
        };
        let ip4 = write(v4().tcp(40000, 8883, 7, 1000));
        let ip6 = write(v6().tcp(40000, 8883, 7, 1000));
        let eth = write(
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
                .tcp(40000, 8883, 7, 1000),
        );
        let eth6 = write(
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv6([1; 16], [2; 16], 64)
                .tcp(40000, 8883, 7, 1000),
        );
        let sll = write(
            PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [0; 8])
                .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
                .tcp(40000, 8883, 7, 1000),
        );
        // SLL2: protocol 0x0800, then 18 more header bytes.
        let sll2 = [&[0x08, 0x00][..], &[0; 18], &ip4].concat();
        let null = [&2u32.to_le_bytes()[..], &ip4].concat();
        let cases: [(Linktype, &[u8], &str); 8] = [
            (Linktype::ETHERNET, &eth, "10.0.0.2:40000"),
            (
                Linktype::ETHERNET,
                &eth6,
                "[101:101:101:101:101:101:101:101]:40000",
            ),
            (Linktype::LINUX_SLL, &sll, "10.0.0.2:40000"),
            (Linktype::LINUX_SLL2, &sll2, "10.0.0.2:40000"),
            (Linktype::RAW, &ip4, "10.0.0.2:40000"),
            (
                Linktype::IPV6,
                &ip6,
                "[101:101:101:101:101:101:101:101]:40000",
            ),
            (Linktype::NULL, &null, "10.0.0.2:40000"),
            (Linktype::IPV4, &ip4, "10.0.0.2:40000"),
        ];
        for (link, data, src) in cases {
            match tcp_segment(link, 5, data) {
                Parsed::Segment(s) => {
                    assert_eq!(s.src.to_string(), src, "{link:?}");
                    assert_eq!(s.dst.port(), 8883, "{link:?}");
                    assert_eq!((s.seq, &s.payload[..]), (7, &payload[..]), "{link:?}");
                }
                _ => panic!("{link:?}: no TCP segment found"),
            }
        }
        assert!(matches!(
            tcp_segment(Linktype(147), 0, &ip4),
            Parsed::Unsupported
        ));
        assert!(matches!(
            tcp_segment(Linktype::ETHERNET, 0, &eth[..20]),
            Parsed::Broken
        ));
    }

    #[test]
    fn a_new_syn_on_the_same_ends_is_a_new_connection() {
        let conns = reassemble(vec![
            seg(D, B, 1, "S", b"", 0),
            seg(D, B, 2, "A", b"one", 1),
            seg(D, B, 5, "FA", b"", 2),
            seg(D, B, 1000, "S", b"", 3),
            seg(D, B, 1001, "A", b"two", 4),
        ]);
        let data: Vec<&[u8]> = conns.iter().map(|c| &c.chunks[0].data[..]).collect();
        assert_eq!(data, [&b"one"[..], &b"two"[..]]);
    }
}
