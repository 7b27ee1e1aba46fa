//! The `iotls` command line.

use clap::{Parser, Subcommand};
use iotls::engine;
use iotls::export::{self, ExportArgs, Exports};
use iotls::render;
use iotls::trace::exit;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Sessions `serve` keeps waiting for stdout before it drops their output (counted).
const OUTPUT_QUEUE: usize = 64;

/// Exit codes, shown in `--help` and README.md.
const EXIT_CODES: &str = "Exit codes (tour --plain/--json, connect, serve --sessions N):
  0  everything the device asked was carried out (an MQTT 3.1.1 PUBACK counts as acknowledged)
  2  command-line usage error
  3  set-up error: a file that cannot be read or used, an address, a port
  4  TLS failure: the handshake did not complete (a check failed, an alert, a timeout, not TLS)
  5  MQTT refusal, or the broker closed the connection after the handshake
  6  lesson check: the run contradicted the lesson's [expect] (each mismatch is named)
The terminal UI exits 0 when you quit (130 on SIGINT, 143 on SIGTERM, 129 on SIGHUP). replay exits 0 whatever it shows, 3 for input it cannot read.";

#[derive(Parser)]
#[command(
    name = "iotls",
    version,
    about = "Watch a real mutual-TLS 1.2 + MQTT session between an IoT device and its broker, step by step",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a real session (the embedded pizza-button default, or a lesson) and step through it.
    Tour(TourArgs),
    /// Connect iotls's device to a real broker and show what happens.
    Connect(ConnectArgs),
    /// Run iotls's broker so a real device (or openssl s_client) can connect, and show each session.
    Serve(ServeArgs),
    /// Write the default PKI (root, issuing CA, broker, buttons) as PEM files.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Describe the certificates in a PEM file.
    Inspect {
        /// PEM file with one or more certificates.
        file: PathBuf,
    },
    /// Open a saved trace, or dissect a capture (pcap, pcapng) and re-verify it offline.
    Replay(ReplayArgs),
    /// Lessons (walkthrough files, docs/walkthrough-format.md): check that one runs as it claims.
    Lesson {
        #[command(subcommand)]
        command: LessonCommand,
    },
    /// AWS-IoT-style policies: evaluate one request offline, or audit a policy document.
    Policy {
        #[command(subcommand)]
        command: iotls::policy::cli::PolicyCommand,
    },
}

#[derive(Subcommand)]
enum LessonCommand {
    /// Validate a lesson, run it (under MQTT 3.1.1 and 5 unless it pins one) and compare the run
    /// with its [expect]: exit 0 when met, 6 naming each mismatch, 3 for a lesson that cannot be used.
    Check {
        /// A built-in lesson's id or a lesson file (.toml).
        lesson: String,
        /// Override a walkthrough key before it is checked: KEY=VALUE (a TOML value, else a string);
        /// repeatable, e.g. --set device.server_name=evil.example.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Run under MQTT 5 only.
        #[arg(long)]
        mqtt5: bool,
    },
}

#[derive(clap::Args)]
struct TourArgs {
    /// Lesson to run: a built-in lesson's id (see `iotls tour --list`) or a lesson file (.toml);
    /// default: the pizza button ordering on its own topic.
    lesson: Option<String>,
    /// Break it: override a walkthrough key, KEY=VALUE (the value as TOML, else a string);
    /// repeatable, e.g. --set device.server_name=evil.example or --set device.trust=[].
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Narrate as plain text (the default when stdout is not a terminal).
    #[arg(long, conflicts_with = "json")]
    plain: bool,
    /// Print the trace as JSON (format iotls-trace/2).
    #[arg(long)]
    json: bool,
    /// List the lessons.
    #[arg(long)]
    list: bool,
    /// The device speaks MQTT 5 instead of MQTT 3.1.1 (see how a refusal looks in each).
    #[arg(long)]
    mqtt5: bool,
    /// Colour theme of the terminal UI.
    #[arg(long, value_enum, default_value_t = iotls::ui::Theme::Default)]
    theme: iotls::ui::Theme,
    /// In the terminal UI, run the whole session at full speed first and then step through the
    /// recording (by default the session is live: each flight leaves when you step to it).
    #[arg(long)]
    recorded: bool,
    #[command(flatten)]
    exports: ExportArgs,
}

#[derive(clap::Args)]
struct ConnectArgs {
    /// Broker address: HOST or HOST:PORT (default port 8883; IPv6 as [::1]:8883). Port 443 offers
    /// ALPN x-amzn-mqtt-ca, as AWS IoT needs there, unless --alpn is given.
    addr: String,
    /// Device certificate chain (PEM, leaf first).
    #[arg(long)]
    cert: PathBuf,
    /// Device private key (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(long)]
    key: PathBuf,
    /// Root certificate(s) the device trusts for the broker (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// Server name to ask for (SNI) and to check the broker's certificate against; default: HOST.
    #[arg(long)]
    server_name: Option<String>,
    /// MQTT client id; default: the certificate's CN.
    #[arg(long)]
    client_id: Option<String>,
    /// Topic to publish one message to after CONNECT.
    #[arg(long)]
    topic: Option<String>,
    /// Message to publish (default: a button click).
    #[arg(long, requires = "topic")]
    message: Option<String>,
    /// QoS of the publish: 0 (nothing comes back) or 1 (PUBACK). AWS IoT has no QoS 2.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1), requires = "topic")]
    qos: u8,
    /// Publish with the retain flag.
    #[arg(long, requires = "topic")]
    retain: bool,
    /// Subscribe to this filter (QoS 1) before publishing; repeatable.
    #[arg(long, value_name = "FILTER")]
    subscribe: Vec<String>,
    /// Stay connected this many seconds at the end, collecting messages delivered on the subscriptions.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    listen: u64,
    /// Keep-alive asked for in CONNECT, seconds (AWS IoT accepts 30 to 1200; 0 = none).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    keepalive: u16,
    /// Offer this application protocol in the ClientHello (ALPN); repeatable, in order of preference.
    /// Default: none, or x-amzn-mqtt-ca on port 443.
    #[arg(long, value_name = "PROTO")]
    alpn: Vec<String>,
    /// Stop after the TLS handshake (for peers that do not speak MQTT, e.g. openssl s_server).
    #[arg(long, conflicts_with_all = ["topic", "subscribe", "listen"])]
    tls_only: bool,
    /// Speak MQTT 5 (refusals then come back as reason code 0x87 instead of a closed connection).
    #[arg(long)]
    mqtt5: bool,
    /// Print the trace as JSON instead of narrating it.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    exports: ExportArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Port to listen on (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Broker certificate chain (PEM); default: the embedded PKI's broker.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Broker private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Root certificate(s) of the CAs whose device certificates the broker accepts (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Registry file (things, certificates, CAs, policies); see docs/policy.md.
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Directory of PEM files from `iotls pki init` (created if missing), used when --cert is not given.
    #[arg(long, default_value = "iotls-pki")]
    pki: PathBuf,
    /// Serve this many connections, then exit (0 = forever).
    #[arg(long, default_value_t = 0)]
    sessions: u32,
    /// The most connections served at once; more are refused at accept (0 = the open-file limit
    /// less 64).
    #[arg(long, default_value_t = 0)]
    max_connections: u32,
    /// Seconds a device may take for its TLS handshake, then for its whole CONNECT, and a
    /// subscriber for reading a delivery before it is disconnected as a slow consumer.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    deadline: u32,
    /// Accept this application protocol (ALPN), like AWS IoT's port 443 (x-amzn-mqtt-ca); repeatable.
    /// A device offering none of them is refused (alert no_application_protocol); one that sends no
    /// ALPN at all is accepted.
    #[arg(long, value_name = "PROTO")]
    alpn: Vec<String>,
    /// Print each session's trace as JSON instead of narrating it.
    #[arg(long, conflicts_with = "ui")]
    json: bool,
    /// CA mode: admit any device certificate issued by a registered CA (--ca, default: the PKI's
    /// issuing CA); its CN is the thing name, and it is attached to --policy.
    #[arg(long, requires = "policy", conflicts_with = "registry")]
    ca_mode: bool,
    /// CA mode: the policy document (AWS IoT JSON) every admitted certificate is attached to.
    #[arg(long, value_name = "FILE", requires = "ca_mode")]
    policy: Option<PathBuf>,
    /// Show the room: one row per session as sessions end; Enter steps through one, q quits.
    #[arg(long)]
    ui: bool,
    /// Colour theme of the room view (--ui).
    #[arg(long, value_enum, default_value_t = iotls::ui::Theme::Default, requires = "ui")]
    theme: iotls::ui::Theme,
    #[command(flatten)]
    exports: ExportArgs,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// A trace (`tour --json`, `connect --json`, `serve --json`) or a capture (pcap, pcapng).
    file: PathBuf,
    /// The session to show (from 1) when the file holds several; default: list them.
    #[arg(long)]
    session: Option<usize>,
    /// Key log to decrypt a capture (NSS format: CLIENT_RANDOM <client random> <master secret>).
    #[arg(long)]
    keylog: Option<PathBuf>,
    /// Root certificate(s) (PEM) to re-verify both certificate chains against.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Registry file: re-evaluate the policy decision of each CONNECT, PUBLISH and SUBSCRIBE.
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Re-verify a saved trace offline too (a capture always is).
    #[arg(long)]
    reverify: bool,
    /// Narrate as plain text (the default when stdout is not a terminal).
    #[arg(long, conflicts_with = "json")]
    plain: bool,
    /// Print the trace as JSON (several sessions: one per line).
    #[arg(long)]
    json: bool,
    /// Write every input of the session's calculations and DIR/reproduce.sh, which redoes them
    /// with openssl and python3 (several sessions: DIR-1, DIR-2, …).
    #[arg(long, value_name = "DIR")]
    reproduce: Option<PathBuf>,
    /// Colour theme of the terminal UI.
    #[arg(long, value_enum, default_value_t = iotls::ui::Theme::Default)]
    theme: iotls::ui::Theme,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Write root.pem, issuing-ca.pem, broker.pem/.key, button.pem/.key, … into DIR (keys mode 0600).
    Init {
        /// Directory to create or fill.
        dir: PathBuf,
        /// Replace existing files (each is removed, then created anew; symbolic links are refused).
        #[arg(long)]
        force: bool,
        /// Also issue N room identities (device-001 … , 1 to 500) with room-policy.json,
        /// registry.json and devices.csv (docs/workshop.md).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(iotls::pki::MAX_ROOM_DEVICES)))]
        devices: Option<u16>,
        /// Another name for the broker's certificate (SAN): the room's LAN IP or host name. Repeatable.
        #[arg(long, value_name = "NAME|IP")]
        san: Vec<iotls::pki::BrokerName>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<u8, String> = match cli.command {
        None => tour(TourArgs {
            lesson: None,
            set: Vec::new(),
            plain: false,
            json: false,
            list: false,
            mqtt5: false,
            theme: iotls::ui::Theme::Default,
            recorded: false,
            exports: ExportArgs::default(),
        }),
        Some(Command::Tour(a)) => tour(a),
        Some(Command::Connect(a)) => connect(a),
        Some(Command::Serve(a)) => serve(a),
        Some(Command::Pki {
            command:
                PkiCommand::Init {
                    dir,
                    force,
                    devices,
                    san,
                },
        }) => pki_init(&dir, force, devices, san),
        Some(Command::Inspect { file }) => inspect(&file).map(|()| exit::OK),
        Some(Command::Replay(a)) => replay(a),
        Some(Command::Lesson {
            command: LessonCommand::Check { lesson, set, mqtt5 },
        }) => lesson_check(&lesson, &set, mqtt5),
        Some(Command::Policy { command }) => {
            return ExitCode::from(iotls::policy::cli::run(command) as u8)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("iotls: {e}");
            ExitCode::from(exit::SETUP)
        }
    }
}

fn tour(a: TourArgs) -> Result<u8, String> {
    if a.list {
        for id in engine::lessons::names() {
            let l = iotls::walkthrough::load(id, &[]).map_err(|e| e.to_string())?;
            println!("{id:<21} {}", l.title);
            if !l.concepts.is_empty() {
                println!("{:<21} teaches: {}", "", l.concepts.join(", "));
            }
        }
        return Ok(exit::OK);
    }
    let arg = a.lesson.unwrap_or_else(|| "pizza-button".to_string());
    let lesson = match iotls::walkthrough::load(&arg, &a.set) {
        Ok(l) => l,
        Err(e) => return refused(e.into()),
    };
    let x = &a.exports;
    let exporting = x.keylog.is_some() || x.pcap.is_some() || x.reproduce.is_some();
    if lesson.operations.is_some() && (exporting || !x.export.is_empty()) {
        eprintln!(
            "iotls: {} is a lesson of operations, not a session: it has no key log, \
             capture, page or calculations to export (--json prints its trace)",
            lesson.id
        );
        return Ok(exit::USAGE);
    }
    let exports = match Exports::new(&a.exports, export::Command::Tour) {
        Ok(x) => x,
        Err(e) => return export_refused(e),
    };
    let version = match lesson_version(&lesson, a.mqtt5) {
        Ok(v) => v,
        Err(e) => return refused(e),
    };
    // A session lesson in a terminal is live; a lesson of operations is not a session.
    let terminal_ui = !a.json && !a.plain && std::io::stdout().is_terminal();
    if terminal_ui && lesson.operations.is_none() && !a.recorded {
        return tour_live(lesson, version, a.theme, &exports, (&arg, &a.set, a.mqtt5));
    }
    let trace = match lesson.run(Some(version)) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    if a.json || a.plain || !std::io::stdout().is_terminal() {
        if a.json {
            println!("{}", render::json(&trace));
        } else {
            print!("{}", render::plain::render(&trace));
            for (_, say) in lesson.emphasis_for(&trace) {
                println!("» {say}");
            }
        }
        tell_mismatches(&lesson, &trace, version);
        exports.write(&trace, None).map_err(|e| e.to_string())?;
        return Ok(trace.outcome.exit_code());
    } else {
        let opts = iotls::ui::UiOptions {
            theme: a.theme,
            // https://no-color.org: present and not empty.
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            replayed: false,
        };
        // SSLKEYLOGFILE gets every session run; the files of the flags, the one on screen at quit.
        exports
            .append_env_keylog(&trace)
            .map_err(|e| e.to_string())?;
        let current = std::rc::Rc::new(std::cell::RefCell::new(Current { version, lesson }));
        let rerun = || {
            let c = current.borrow();
            let t = c.lesson.run(Some(c.version)).map_err(|e| e.to_string())?;
            exports.append_env_keylog(&t).map_err(|e| e.to_string())?;
            Ok(t)
        };
        let breakit = break_it(&arg, &a.set, a.mqtt5, &current, &exports);
        let shown = iotls::ui::run_lesson(
            trace,
            rerun,
            opts,
            |t| {
                let c = current.borrow();
                lesson_notes(&c.lesson, c.version, t, true)
            },
            breakit,
        )
        .map_err(|e| format!("terminal UI: {e}"))?;
        exports
            .write_files(&shown, None)
            .map_err(|e| e.to_string())?;
    }
    // Quitting the terminal UI is not a verdict; a signal that ended it gives 128 + its number.
    Ok(iotls::ui::signal_exit_code().unwrap_or(exit::OK))
}

/// The live tour: each flight leaves when the learner steps to it, the button sends the order.
/// The exports are written when the learner quits, with what happened up to then; quitting is
/// not a verdict (exit 0).
fn tour_live(
    lesson: iotls::walkthrough::Lesson,
    version: engine::mqtt_io::Version,
    theme: iotls::ui::Theme,
    exports: &Exports,
    (arg, sets, mqtt5): (&str, &[String], bool),
) -> Result<u8, String> {
    let start = || {
        let scenario = lesson
            .scenario(Some(version))
            .map_err(engine::EngineError::from)?;
        engine::live::LiveSession::start(&scenario)
    };
    let first = match start() {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let opts = iotls::ui::UiOptions {
        theme,
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        replayed: false,
    };
    // The lesson `r` and the lesson's texts use: this one, until a break-it swap replaces it.
    let current = std::rc::Rc::new(std::cell::RefCell::new(Current {
        version,
        lesson: lesson.clone(),
    }));
    // SSLKEYLOGFILE gets every session's key as soon as it is made; the files of the flags, the
    // session on screen at quit.
    let keylog_error = std::cell::RefCell::new(None);
    let rerun = || {
        let c = current.borrow();
        let t = c.lesson.run(Some(c.version)).map_err(|e| e.to_string())?;
        exports.append_env_keylog(&t).map_err(|e| e.to_string())?;
        Ok(t)
    };
    let breakit = break_it(arg, sets, mqtt5, &current, exports);
    let shown = iotls::ui::run_live(
        first,
        || start().map_err(|e| e.to_string()),
        rerun,
        |t| {
            if let Err(e) = exports.append_env_keylog(t) {
                keylog_error.borrow_mut().get_or_insert(e.to_string());
            }
        },
        opts,
        // What the run contradicts is told once it is over: a live session is not yet.
        |t, finished| {
            let c = current.borrow();
            lesson_notes(&c.lesson, c.version, t, finished)
        },
        breakit,
    )
    .map_err(|e| format!("terminal UI: {e}"))?;
    if let Some(e) = keylog_error.into_inner() {
        return Err(e);
    }
    exports
        .write_files(&shown, None)
        .map_err(|e| e.to_string())?;
    Ok(iotls::ui::signal_exit_code().unwrap_or(exit::OK))
}

/// The lesson the tour runs now, and its MQTT version: the one started, or the one a break-it
/// swap made of it.
struct Current {
    lesson: iotls::walkthrough::Lesson,
    version: engine::mqtt_io::Version,
}

/// Break it in the tour: the swaps the lesson offers, each checked to load (one that does not is
/// not offered), and how to run the lesson with one — for real, at full speed, from the lesson as
/// started (`arg` with the command line's `--set`s) plus the swap's. The broken lesson becomes the
/// current one.
fn break_it<'a>(
    arg: &'a str,
    sets: &'a [String],
    mqtt5: bool,
    current: &'a std::rc::Rc<std::cell::RefCell<Current>>,
    exports: &'a Exports,
) -> iotls::ui::BreakIt<'a> {
    use iotls::walkthrough::{self, breakit};
    let (lesson, version) = {
        let c = current.borrow();
        (c.lesson.clone(), c.version)
    };
    if lesson.operations.is_some() {
        return iotls::ui::BreakIt::nothing(&format!(
            "Nothing to swap: {} is a lesson of operations, not one session between a device \
             and a broker; each operation is shown as the library answered it.",
            lesson.id
        ));
    }
    let with = |swap: &[String]| -> Vec<String> { sets.iter().chain(swap).cloned().collect() };
    let swaps = breakit::swaps(&lesson, version)
        .into_iter()
        .filter_map(|s| {
            let all = with(&s.sets);
            let broken = walkthrough::load(arg, &all).ok()?;
            let v5 = mqtt5 && broken.mqtt.is_none();
            Some(iotls::ui::Swap {
                label: s.label,
                command: format!(
                    "iotls tour {arg}{} {}",
                    if v5 { " --mqtt5" } else { "" },
                    breakit::command_line(&all)
                ),
                sets: s.sets,
            })
        })
        .collect();
    iotls::ui::BreakIt {
        swaps,
        none: format!("Nothing to swap in {}.", lesson.id),
        run: Box::new(move |swap: &iotls::ui::Swap| {
            let broken = walkthrough::load(arg, &with(&swap.sets)).map_err(|e| e.to_string())?;
            let v = broken.mqtt.unwrap_or(version);
            let t = broken.run(Some(v)).map_err(|e| e.to_string())?;
            exports.append_env_keylog(&t).map_err(|e| e.to_string())?;
            *current.borrow_mut() = Current {
                lesson: broken,
                version: v,
            };
            Ok(t)
        }),
    }
}

/// A lesson's emphasis texts and quiz questions for a run, and, once the run is over, at its last
/// step, what the run contradicts in the lesson's `[expect]`.
fn lesson_notes(
    lesson: &iotls::walkthrough::Lesson,
    version: engine::mqtt_io::Version,
    t: &iotls::trace::Trace,
    over: bool,
) -> iotls::ui::LessonNotes {
    let quizzes = lesson
        .quiz_for(t)
        .into_iter()
        .map(|(event, q)| iotls::ui::Quiz {
            event,
            question: q.question.clone(),
            choices: q.choices.clone(),
            answer: q.answer,
            explain: q.explain.as_ref().map(|e| walkthrough_fill(e, t)),
        })
        .collect();
    let mut said = lesson.emphasis_for(t);
    if over {
        // At the last step, where the outcome shows: what this run contradicts, if anything.
        let last = t.events.len().saturating_sub(1);
        for m in lesson.check_expect(t, version) {
            said.push((
                last,
                format!("This run contradicts the lesson's claim: {m}"),
            ));
        }
    }
    (said, quizzes)
}

/// Export flags that cannot be carried out: 2 for an unknown format, 3 for a file.
fn export_refused(e: export::ExportError) -> Result<u8, String> {
    match e {
        export::ExportError::Usage(m) => {
            eprintln!("iotls: {m}");
            Ok(exit::USAGE)
        }
        other => Err(other.to_string()),
    }
}

/// A session that could not start: the message on stderr, and the exit code — 2 for what the
/// command line asked wrongly (an unknown lesson, options that do not go together), 3 for set-up.
fn refused(e: engine::EngineError) -> Result<u8, String> {
    use engine::EngineError as E;
    match e {
        E::UnknownLesson { .. }
        | E::Usage(_)
        | E::ServerName(_)
        | E::Lesson(iotls::walkthrough::WalkError::Set(_)) => {
            eprintln!("iotls: {e}");
            Ok(exit::USAGE)
        }
        other => Err(other.to_string()),
    }
}

fn walkthrough_fill(text: &str, trace: &iotls::trace::Trace) -> String {
    iotls::walkthrough::expect::fill(text, trace)
}

/// The MQTT version a lesson runs under: the one it pins, else MQTT 5 with `--mqtt5`.
fn lesson_version(
    lesson: &iotls::walkthrough::Lesson,
    mqtt5: bool,
) -> Result<engine::mqtt_io::Version, engine::EngineError> {
    use engine::mqtt_io::Version;
    match (lesson.mqtt, mqtt5) {
        (Some(Version::V4), true) => Err(engine::EngineError::Usage(format!(
            "lesson {} is about MQTT 3.1.1 (device.mqtt = \"3.1.1\"); --mqtt5 does not apply \
             (--set device.mqtt=5 changes the lesson)",
            lesson.id
        ))),
        (Some(v), _) => Ok(v),
        (None, true) => Ok(Version::V5),
        (None, false) => Ok(Version::V4),
    }
}

fn run_name(lesson: &iotls::walkthrough::Lesson, v: engine::mqtt_io::Version) -> &'static str {
    if lesson.operations.is_some() {
        return "operations";
    }
    match v {
        engine::mqtt_io::Version::V4 => "MQTT 3.1.1",
        engine::mqtt_io::Version::V5 => "MQTT 5",
    }
}

/// On stderr: where the run contradicted the lesson's [expect] (after `--set`, that is the point).
fn tell_mismatches(
    lesson: &iotls::walkthrough::Lesson,
    trace: &iotls::trace::Trace,
    version: engine::mqtt_io::Version,
) {
    let m = lesson.check_expect(trace, version);
    if m.is_empty() {
        return;
    }
    let why = if lesson.overridden {
        " (you changed it with --set)"
    } else {
        ""
    };
    eprintln!(
        "iotls: this run of {} ({}) contradicts the lesson's [expect]{why}:",
        lesson.id,
        run_name(lesson, version)
    );
    for x in m {
        eprintln!("iotls:   {x}");
    }
}

/// `iotls lesson check`: validate, run under each version the lesson allows, compare with [expect].
fn lesson_check(arg: &str, sets: &[String], mqtt5: bool) -> Result<u8, String> {
    let lesson = match iotls::walkthrough::load(arg, sets) {
        Ok(l) => l,
        Err(e) => return refused(e.into()),
    };
    if lesson.spec.expect.is_none() {
        return Err(format!(
            "{}: the lesson has no [expect]: nothing to check the run against",
            lesson.file
        ));
    }
    let versions = if mqtt5 {
        vec![lesson_version(&lesson, true).map_err(|e| e.to_string())?]
    } else {
        lesson.versions()
    };
    let mut failed = false;
    for v in versions {
        let trace = match lesson.run(Some(v)) {
            Ok(t) => t,
            Err(e) => return refused(e),
        };
        let m = lesson.check_expect(&trace, v);
        if m.is_empty() {
            println!(
                "{} ({}): [expect] met: {}",
                lesson.id,
                run_name(&lesson, v),
                trace.outcome.summary
            );
        } else {
            failed = true;
            println!(
                "{} ({}): [expect] NOT met: {}",
                lesson.id,
                run_name(&lesson, v),
                trace.outcome.summary
            );
            for x in m {
                println!("  {x}");
            }
        }
    }
    Ok(if failed { exit::EXPECT } else { exit::OK })
}

fn connect(a: ConnectArgs) -> Result<u8, String> {
    let exports = match Exports::new(&a.exports, export::Command::Connect) {
        Ok(x) => x,
        Err(e) => return export_refused(e),
    };
    let opts = engine::connect::ConnectOptions {
        addr: a.addr,
        cert: a.cert,
        key: a.key,
        ca: a.ca,
        server_name: a.server_name,
        client_id: a.client_id,
        topic: a.topic,
        message: a.message,
        tls_only: a.tls_only,
        mqtt5: a.mqtt5,
        alpn: a.alpn,
        qos: a.qos,
        retain: a.retain,
        subscribe: a.subscribe,
        listen: a.listen,
        keep_alive: a.keepalive,
    };
    // Pre-flight warnings go to stderr, before the session's output.
    let trace = match engine::connect::run_with(&opts, |f| eprintln!("iotls: {f}")) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    if a.json {
        println!("{}", render::json(&trace));
    } else {
        print!("{}", render::plain::render(&trace));
    }
    exports.write(&trace, None).map_err(|e| e.to_string())?;
    Ok(trace.outcome.exit_code())
}

fn serve(a: ServeArgs) -> Result<u8, String> {
    let exports = match Exports::new(&a.exports, export::Command::Serve) {
        Ok(x) => x,
        Err(e) => return export_refused(e),
    };
    let opts = engine::serve::ServeOptions {
        bind: a.bind,
        port: a.port,
        cert: a.cert,
        key: a.key,
        ca: a.ca,
        registry: a.registry,
        sessions: a.sessions,
        pki_dir: Some(a.pki),
        max_connections: a.max_connections,
        deadline_secs: a.deadline,
        alpn: a.alpn,
        ca_mode: a.ca_mode,
        policy: a.policy,
    };
    if a.ui {
        if a.exports.keylog.is_some()
            || a.exports.pcap.is_some()
            || !a.exports.export.is_empty()
            || a.exports.reproduce.is_some()
        {
            eprintln!("iotls: serve --ui does not write exports yet: run serve without --ui (or --json) to write --keylog/--pcap/--export/--reproduce");
            return Ok(exit::USAGE);
        }
        return serve_ui(opts, a.theme);
    }
    // The broker runs on its own thread; sessions reach this one through a bounded queue, so a
    // slow (or stopped) reader of stdout never stalls the broker: when the queue is full, a
    // session's output is dropped and counted, the session itself was served.
    let (out, sessions) = std::sync::mpsc::sync_channel::<iotls::trace::Trace>(OUTPUT_QUEUE);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let broker = {
        let (stop, dropped) = (stop.clone(), dropped.clone());
        std::thread::spawn(move || {
            engine::serve::run(&opts, |trace| {
                use std::sync::atomic::Ordering::Relaxed;
                if out.try_send(trace.clone()).is_err() {
                    dropped.fetch_add(1, Relaxed);
                }
                !stop.load(Relaxed)
            })
        })
    };
    let json = a.json;
    // The exit code of the first session that was not ok (serve --sessions N).
    let mut code = exit::OK;
    let mut session = 0u32;
    let mut export_failed = false;
    let mut reported_drops = 0;
    for trace in sessions {
        use std::io::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let text = if json {
            // JSON Lines: one complete trace per line, nothing else on stdout.
            serde_json::to_string(&trace).unwrap_or_default()
        } else {
            // Others may read this log: no master secrets, no payloads (--json has everything).
            render::plain::render(&trace.without_secrets())
        };
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // Nobody reads stdout any more (e.g. `| head -1`): end cleanly.
            stop.store(true, Relaxed);
            break;
        }
        let drops = dropped.load(Relaxed);
        if drops > reported_drops {
            eprintln!("iotls: {drops} session(s) not printed: stdout was read too slowly (the sessions were served)");
            reported_drops = drops;
        }
        if code == exit::OK {
            code = trace.outcome.exit_code();
        }
        // Exports per session, numbered in the order the sessions were printed.
        session += 1;
        match exports.write(&trace, Some(session)) {
            Ok(files) if !files.is_empty() => {
                let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                eprintln!("session {session}: wrote {}", files.join(", "));
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("iotls: session {session}: {e}");
                export_failed = true;
            }
        }
    }
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        // stdout is gone: the broker stops when its next session ends; do not wait for it.
        return Ok(code);
    }
    match broker.join() {
        Ok(Err(e)) => return refused(e),
        Ok(Ok(())) => {}
        Err(_) => return Err("the broker thread stopped unexpectedly".into()),
    }
    if export_failed {
        return Ok(exit::SETUP);
    }
    Ok(code)
}

/// `serve --ui`: the broker on its own thread, the room view on this one; sessions reach the view
/// over a channel as they end. Set-up errors (a port in use, a bad file) are reported before the
/// view starts; quitting the view exits 0.
fn serve_ui(opts: engine::serve::ServeOptions, theme: iotls::ui::Theme) -> Result<u8, String> {
    use iotls::ui::room::Feed;
    if !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        eprintln!("iotls: serve --ui needs a terminal (stdin and stdout); without one, use serve or serve --json");
        return Ok(exit::USAGE);
    }
    let (feed, sessions) = std::sync::mpsc::channel::<Feed>();
    let (started, listening) = std::sync::mpsc::channel::<Result<String, engine::EngineError>>();
    std::thread::spawn(move || {
        let mut served = 0u32;
        let mut listened = false;
        let result = engine::serve::run_with(
            &opts,
            |addr| {
                listened = true;
                let _ = started.send(Ok(addr.to_string()));
            },
            |trace| {
                served += 1;
                // The view is gone: stop serving.
                feed.send(Feed::Session(Box::new(trace.clone()))).is_ok()
            },
        );
        match result {
            // Before it listened, the error goes to the command line instead of the view.
            Err(e) if !listened => {
                let _ = started.send(Err(e));
            }
            Err(e) => {
                let _ = feed.send(Feed::Stopped(format!("the broker stopped: {e}")));
            }
            Ok(()) => {
                let s = if served == 1 { "" } else { "s" };
                let _ = feed.send(Feed::Stopped(format!(
                    "served {served} session{s}; the broker stopped"
                )));
            }
        }
    });
    let addr = match listening.recv() {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) => return refused(e),
        Err(_) => return Err("the broker ended before it listened".into()),
    };
    let ui = iotls::ui::UiOptions {
        theme,
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        replayed: false,
    };
    iotls::ui::room::run(addr, sessions, ui).map_err(|e| format!("terminal UI: {e}"))?;
    Ok(iotls::ui::signal_exit_code().unwrap_or(exit::OK))
}

fn pki_init(
    dir: &std::path::Path,
    force: bool,
    devices: Option<u16>,
    san: Vec<iotls::pki::BrokerName>,
) -> Result<u8, String> {
    let o = iotls::pki::PkiOptions {
        broker_names: san,
        devices: devices.unwrap_or(0),
    };
    for f in iotls::pki::write_room(dir, &o, force)? {
        println!("{}", f.display());
    }
    Ok(exit::OK)
}

/// `iotls replay`: exit 0 whatever the verdicts (they are findings); 3 for input it cannot read.
fn replay(a: ReplayArgs) -> Result<u8, String> {
    let opts = iotls::replay::Options {
        keylog: a.keylog,
        ca: a.ca,
        registry: a.registry,
        reverify: a.reverify,
    };
    let usage = |e: iotls::replay::ReplayError| {
        if e.is_usage() {
            eprintln!("iotls: {e}");
            Ok(exit::USAGE)
        } else {
            Err(e.to_string())
        }
    };
    let r = match iotls::replay::open(&a.file, &opts) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let shown: Vec<usize> = match a.session {
        Some(n) => match r.pick(n) {
            Ok(i) => vec![i],
            Err(e) => return usage(e),
        },
        None => {
            if r.len() > 1 {
                eprintln!(
                    "{} holds {} sessions (show one with --session N):",
                    a.file.display(),
                    r.len()
                );
                for l in r.list() {
                    eprintln!("{l}");
                }
            }
            (0..r.len()).collect()
        }
    };
    if let Some(dir) = &a.reproduce {
        for &i in &shown {
            let to = if shown.len() == 1 {
                dir.clone()
            } else {
                export::numbered(dir, i as u32 + 1)
            };
            let script = export::reproduce::write(&r.trace(i), &to).map_err(|e| {
                format!(
                    "{}: cannot write the reproduce directory: {e}",
                    to.display()
                )
            })?;
            eprintln!("iotls: wrote {}", script.display());
        }
    }
    if a.json {
        if let [one] = shown.as_slice() {
            println!("{}", render::json(&r.trace(*one)));
        } else {
            // JSON Lines, like serve --json: one trace per line.
            for i in shown {
                println!("{}", serde_json::to_string(&r.trace(i)).unwrap_or_default());
            }
        }
    } else if a.plain || !std::io::stdout().is_terminal() {
        for i in shown {
            print!("{}", iotls::replay::plain(&r.trace(i)));
        }
    } else {
        let opts = iotls::ui::UiOptions {
            theme: a.theme,
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            // A saved session: its ending is known, the title shows it from the start.
            replayed: true,
        };
        let file = a.file.display().to_string();
        let rerun = move || -> Result<iotls::trace::Trace, String> {
            Err(format!(
                "this is a replay of {file}: there is no session to run again"
            ))
        };
        iotls::ui::run(r.trace(shown[0]), rerun, opts).map_err(|e| format!("terminal UI: {e}"))?;
        return Ok(iotls::ui::signal_exit_code().unwrap_or(exit::OK));
    }
    Ok(exit::OK)
}

fn inspect(file: &std::path::Path) -> Result<(), String> {
    let certs = iotls::pki::load_certs(file).map_err(|e| e.to_string())?;
    let now = engine::unix_now() as i64;
    for (i, c) in certs.iter().enumerate() {
        let d = iotls::pki::describe(c, Vec::new(), now);
        println!("certificate {i} of {}", file.display());
        println!("  subject      {}", d.subject);
        println!("  issuer       {}", d.issuer);
        println!("  serial       {}", d.serial);
        if let Some(note) = iotls::narrate::serial_number_note(&d.subject) {
            println!("  policy       {note}");
        }
        let left = match d.days_left {
            n if n < 0 => format!("expired {} days ago", -n),
            n => format!("{n} days left"),
        };
        println!("  valid        {} … {} ({left})", d.not_before, d.not_after);
        println!("  key          {}", d.key);
        println!("  signature    {}", d.signature_algorithm);
        if !d.san.is_empty() {
            println!("  SAN          {}", d.san.join(", "));
        }
        if !d.key_usage.is_empty() {
            println!("  key usage    {}", d.key_usage.join(", "));
        }
        if !d.extended_key_usage.is_empty() {
            println!("  EKU          {}", d.extended_key_usage.join(", "));
        }
        if let Some(b) = &d.basic_constraints {
            println!("  constraints  {b}");
        }
        println!("  sha256       {}", d.sha256);
        if d.self_signed {
            println!("  self-signed: a root — trust it only if you know where it came from");
        }
    }
    Ok(())
}
