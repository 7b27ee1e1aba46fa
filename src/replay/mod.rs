//! `iotls replay FILE`: a saved trace, or a capture taken elsewhere, shown with the same views as a
//! live session.
//!
//! - A saved trace (JSON from `tour --json` / `connect --json`, JSON Lines from `serve --json`)
//!   is shown as it was recorded ([`trace_file`]); asked to (`--reverify`, `--ca`,
//!   `--registry`), iotls re-verifies it offline too.
//! - A capture (pcap or pcapng, [`capture`]) is reassembled into TCP connections; each connection
//!   whose first bytes are a TLS record is a session. Its bytes go through the same dissector and
//!   assembly as a live session's (`engine::assemble` with [`Observer::NONE`]: no end is iotls's,
//!   so no side is credited with a check), decrypted with the key log (`--keylog`, or a pcapng
//!   Decryption Secrets Block), and re-verified offline ([`reverify`]): every check iotls makes is
//!   `side: iotls`, and what it cannot check is listed in the trace's `replay.not_reverified`.
//!
//! Verdicts are findings, not errors: replaying exits 0 whatever they are. Input that cannot be
//! read (not a trace or capture, truncated, no TLS, another trace format) is a [`ReplayError`].

pub mod capture;
pub mod keylog;
pub mod reverify;
pub mod trace_file;

use crate::engine::observe::Raw;
use crate::engine::{assemble, Observer};
use crate::tls::dissect::{Dissector, KeyLogEntry};
use crate::trace::{hex, EventKind, Phase, ReplayInfo, Side, Trace, FORMAT};
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub use reverify::{Offline, Roots};

/// Input `iotls replay` cannot use: one line for people, naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{file}: cannot read it: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {problem} — {hint}")]
    Input {
        file: String,
        problem: String,
        hint: &'static str,
    },
    #[error(
        "{file}: the trace is in format {format}, and this iotls reads {FORMAT} — record it again \
         with this iotls (`--json`)"
    )]
    Format { file: String, format: String },
    /// A certificate or registry file given with `--ca` / `--registry`.
    #[error("{0}")]
    Setup(String),
    /// The command line asked for something the input does not have (exit code 2).
    #[error("{0}")]
    Usage(String),
}

impl ReplayError {
    /// A usage error (exit code 2), not unreadable input (exit code 3).
    pub fn is_usage(&self) -> bool {
        matches!(self, ReplayError::Usage(_))
    }
}

/// What `iotls replay` was asked.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--keylog`: key log for a capture.
    pub keylog: Option<PathBuf>,
    /// `--ca`: roots to re-verify both chains against.
    pub ca: Option<PathBuf>,
    /// `--registry`: re-evaluate the policy decisions.
    pub registry: Option<PathBuf>,
    /// `--reverify`: re-verify a saved trace (implied by `--ca` and `--registry`).
    pub reverify: bool,
}

/// An opened file: its sessions, ready to be shown one by one.
pub struct Replay {
    file: String,
    source: Source,
    offline: Offline,
}

enum Source {
    Traces(Vec<Trace>, bool),
    Capture(capture::Capture, Vec<KeyLogEntry>),
}

/// What a file starts with.
fn is_capture(head: &[u8]) -> bool {
    matches!(
        head,
        [0x0a, 0x0d, 0x0d, 0x0a, ..]
            | [0xa1, 0xb2, 0xc3, 0xd4, ..]
            | [0xd4, 0xc3, 0xb2, 0xa1, ..]
            | [0xa1, 0xb2, 0x3c, 0x4d, ..]
            | [0x4d, 0x3c, 0xb2, 0xa1, ..]
    )
}

/// Opens `path`: a trace file or a capture, told apart by their first bytes.
pub fn open(path: &Path, opts: &Options) -> Result<Replay, ReplayError> {
    let file = path.display().to_string();
    let read_err = |source| ReplayError::Read {
        file: file.clone(),
        source,
    };
    let mut head = [0u8; 4];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(read_err)?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]).map_err(read_err)? {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    let offline = offline(opts)?;
    if is_capture(&head[..n]) {
        let cap = capture::read(path)?;
        let mut keys = cap.secrets.clone();
        let given = match &opts.keylog {
            Some(k) => keylog::read(k)?,
            None => Vec::new(),
        };
        keys.extend(given.iter().cloned());
        if cap.sessions.is_empty() {
            let what = cap
                .first_non_tls
                .as_ref()
                .map(|b| format!(" (the first starts with \"{}\")", printable(b)))
                .unwrap_or_default();
            return Err(ReplayError::Input {
                file,
                problem: if cap.tcp_connections == 0 {
                    "the capture holds no TCP connection that carried data, so no TLS".to_string()
                } else {
                    format!(
                        "the capture holds no TLS: none of its {} TCP connection(s) starts with a \
                         TLS record{what}",
                        cap.tcp_connections
                    )
                },
                hint: "capture the port the device and broker speak TLS on",
            });
        }
        if let Some(k) = &opts.keylog {
            let randoms: Vec<[u8; 32]> = cap.sessions.iter().filter_map(client_random).collect();
            if !given.iter().any(|e| randoms.contains(&e.client_random)) {
                return Err(ReplayError::Input {
                    file: k.display().to_string(),
                    problem: format!(
                        "no key-log line matches a session of {file} ({} line(s), {} TLS \
                         session(s))",
                        given.len(),
                        cap.sessions.len()
                    ),
                    hint: "give the key log written when this capture was taken \
                           (SSLKEYLOGFILE or --keylog), or replay without --keylog to see the \
                           handshakes undecrypted",
                });
            }
        }
        return Ok(Replay {
            file,
            source: Source::Capture(cap, keys),
            offline,
        });
    }
    if opts.keylog.is_some() {
        return Err(ReplayError::Usage(format!(
            "--keylog is for captures; {file} is a trace, which carries the key-log lines it had"
        )));
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|_| ReplayError::Input {
        file: file.clone(),
        problem: "neither a trace (JSON) nor a capture (pcap, pcapng)".into(),
        hint:
            "give a file written by `iotls … --json`, or a capture from dumpcap, tshark or tcpdump",
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(ReplayError::Input {
            file,
            problem: if text.trim().is_empty() {
                "the file is empty".into()
            } else {
                "neither a trace (JSON) nor a capture (pcap, pcapng)".into()
            },
            hint: "give a file written by `iotls … --json`, or a capture from dumpcap, tshark or tcpdump",
        });
    }
    let traces = trace_file::parse(path, &text)?;
    let reverify = opts.reverify || opts.ca.is_some() || opts.registry.is_some();
    Ok(Replay {
        file,
        source: Source::Traces(traces, reverify),
        offline,
    })
}

/// The `--ca` roots and the `--registry`, loaded.
fn offline(opts: &Options) -> Result<Offline, ReplayError> {
    let ca = match &opts.ca {
        Some(p) => Some(Roots {
            certs: crate::pki::load_certs(p).map_err(|e| ReplayError::Setup(e.to_string()))?,
            from: format!("--ca {}", p.display()),
        }),
        None => None,
    };
    let registry = match &opts.registry {
        Some(p) => Some((
            crate::policy::Registry::load(p).map_err(|e| ReplayError::Setup(e.to_string()))?,
            p.display().to_string(),
        )),
        None => None,
    };
    Ok(Offline { ca, registry })
}

/// The client random of a captured session (from its ClientHello), if it has one.
fn client_random(c: &capture::Connection) -> Option<[u8; 32]> {
    let mut d = Dissector::new(Vec::new());
    for chunk in c.chunks.iter().filter(|c| c.from == Side::Device) {
        d.push(Side::Device, &chunk.data);
        if let Some((_, m)) = d.handshake_messages().first() {
            return crate::tls::handshake::decode(m).facts.random;
        }
    }
    None
}

/// The server name a captured session's ClientHello asked for.
fn sni(c: &capture::Connection) -> Option<String> {
    let mut d = Dissector::new(Vec::new());
    for chunk in c.chunks.iter().filter(|c| c.from == Side::Device) {
        d.push(Side::Device, &chunk.data);
        if let Some((_, m)) = d.handshake_messages().first() {
            return crate::tls::handshake::decode(m).facts.sni;
        }
    }
    None
}

/// Up to 40 bytes as text, with `.` for what is not printable.
fn printable(b: &[u8]) -> String {
    b.iter()
        .take_while(|b| **b != b'\r' && **b != b'\n')
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                *b as char
            } else {
                '.'
            }
        })
        .collect()
}

impl Replay {
    /// How many sessions the file holds.
    pub fn len(&self) -> usize {
        match &self.source {
            Source::Traces(t, _) => t.len(),
            Source::Capture(c, _) => c.sessions.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks `--session N` (from 1) against the file.
    pub fn pick(&self, n: usize) -> Result<usize, ReplayError> {
        if n == 0 || n > self.len() {
            return Err(ReplayError::Usage(format!(
                "--session {n}: {} holds {} session(s); pick one from 1 to {}",
                self.file,
                self.len(),
                self.len()
            )));
        }
        Ok(n - 1)
    }

    /// One line per session: number, what it is, how it ended (a trace) or its endpoints and
    /// server name (a capture).
    pub fn list(&self) -> Vec<String> {
        match &self.source {
            Source::Traces(traces, _) => traces
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    format!(
                        "{:>3}  {} — {}",
                        i + 1,
                        t.scenario,
                        crate::render::plain::verdict_line(t)
                    )
                })
                .collect(),
            Source::Capture(cap, _) => cap
                .sessions
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    format!(
                        "{:>3}  device {} → broker {}, SNI {}",
                        i + 1,
                        c.device,
                        c.broker,
                        sni(c).unwrap_or_else(|| "(none)".into())
                    )
                })
                .collect(),
        }
    }

    /// The trace of session `i` (from 0): as recorded, or built from the capture and re-verified.
    pub fn trace(&self, i: usize) -> Trace {
        let of = self.len();
        match &self.source {
            Source::Traces(traces, false) => traces[i].clone(),
            Source::Traces(traces, true) => {
                let mut t = traces[i].clone();
                let mut info = ReplayInfo {
                    source: format!("trace {}, session {} of {of}", self.file, i + 1),
                    ..ReplayInfo::default()
                };
                if t.replay.take().is_some() {
                    // Re-verified before: drop what that added; the dissector's own Finished
                    // recomputations stay.
                    t.events.retain(|e| {
                        e.side != Side::Iotls
                            || matches!(
                                &e.kind,
                                EventKind::Check { check, .. }
                                    if matches!(check, crate::trace::CheckId::ClientFinished
                                        | crate::trace::CheckId::ServerFinished)
                            )
                    });
                }
                reverify::reverify(&mut t, &self.offline, &mut info);
                t.replay = Some(info);
                t
            }
            Source::Capture(cap, keys) => {
                let c = &cap.sessions[i];
                let mut t = session_trace(&self.file, c, i, of, keys);
                let mut info = ReplayInfo {
                    source: format!(
                        "capture {}, session {} of {of}: device {} → broker {}",
                        self.file,
                        i + 1,
                        c.device,
                        c.broker
                    ),
                    ..ReplayInfo::default()
                };
                info.notes.extend(cap.notes.iter().cloned());
                info.notes.extend(c.notes.iter().cloned());
                match client_random(c) {
                    Some(cr) if keys.iter().any(|k| k.client_random == cr) => {}
                    Some(cr) => info.notes.push(format!(
                        "no key-log line matches this session's client random {}{}",
                        hex(&cr),
                        if keys.is_empty() {
                            " (give the key log with --keylog)"
                        } else {
                            ""
                        }
                    )),
                    None => info
                        .notes
                        .push("the device's ClientHello is not in the capture".into()),
                }
                reverify::reverify(&mut t, &self.offline, &mut info);
                t.replay = Some(info);
                t
            }
        }
    }
}

/// A captured session through the dissector and the same assembly as a live one.
fn session_trace(
    file: &str,
    c: &capture::Connection,
    i: usize,
    of: usize,
    keys: &[KeyLogEntry],
) -> Trace {
    let name = Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    let scenario = if of > 1 {
        format!("capture {name} #{}", i + 1)
    } else {
        format!("capture {name}")
    };
    // The capture shows the TCP connection itself (its packets), so it is an event like the
    // engine's.
    let mut raws = vec![Raw::Event {
        phase: Phase::Connect,
        side: Side::Device,
        kind: Box::new(EventKind::Tcp {
            device_addr: c.device.to_string(),
            broker_addr: c.broker.to_string(),
        }),
        t_us: 0,
    }];
    raws.extend(keys.iter().map(|k| Raw::Key {
        client_random: Box::new(k.client_random),
        master_secret: k.master_secret.clone(),
    }));
    raws.extend(c.chunks.iter().map(|ch| Raw::Bytes {
        from: ch.from,
        data: ch.data.clone(),
        t_us: ch.t_us.saturating_sub(c.start_us),
    }));
    assemble(
        &scenario,
        c.start_us / 1_000_000,
        raws,
        &[],
        None,
        Observer::NONE,
    )
}

/// A replayed trace as plain text: what was replayed and what iotls could not re-verify, then
/// the narration every session gets.
pub fn plain(trace: &Trace) -> String {
    let mut out = String::new();
    if let Some(r) = &trace.replay {
        let _ = writeln!(out, "replayed: {}", r.source);
        if let Some(roots) = &r.roots {
            let _ = writeln!(out, "chains re-verified against: {roots}");
        }
        let rechecked: Vec<String> = trace
            .checks()
            .filter(|(e, _, _)| e.side == Side::Iotls)
            .map(|(_, c, ok)| format!("{c} {}", if ok { "✔" } else { "✘" }))
            .collect();
        if !rechecked.is_empty() {
            let _ = writeln!(out, "re-verified by iotls: {}", rechecked.join(", "));
        }
        let decisions: Vec<String> = trace
            .events
            .iter()
            .filter(|e| e.side == Side::Iotls)
            .filter_map(|e| match &e.kind {
                EventKind::Policy(p) => Some(format!(
                    "{} {} {}",
                    p.action,
                    crate::trace::short_arn(&p.resource),
                    p.decision
                )),
                _ => None,
            })
            .collect();
        if !decisions.is_empty() {
            let _ = writeln!(
                out,
                "policies re-evaluated by iotls: {}",
                decisions.join(", ")
            );
        }
        for n in &r.not_reverified {
            let _ = writeln!(out, "not re-verified: {}: {}", n.check, n.reason);
        }
        for n in &r.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let _ = writeln!(out);
    }
    out.push_str(&crate::render::plain::render(trace));
    out
}
