//! Exports as a colleague or Wireshark opens them: the pcapng decrypts in tshark with no key log
//! option (its Decryption Secrets Block), the key log decrypts a capture without one, the pages
//! show this session, and bad paths are set-up errors that name the file.
//!
//! tshark and editcap are real peers (Debian's `tshark`, which brings `wireshark-common`).

mod common;

use common::peer_available;
use common::peers::{collect, default_pki, iotls, iotls_connect, tempdir, Run, Serve, SESSION};
use common::tmux::Tmux;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const TOPIC: &str = "iotbutton/G030JF055364XVRB";

/// `tshark -r FILE ARGS…`: its stdout (it must succeed).
fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark -r {} {args:?} failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The lines tshark printed for one field of the frames a filter selects (empty lines left out).
fn fields(file: &Path, filter: &str, field: &str, extra: &[&str]) -> Vec<String> {
    let mut args = extra.to_vec();
    args.extend(["-Y", filter, "-T", "fields", "-e", field]);
    tshark(file, &args)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn trace_of(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("a JSON trace ({e}):\n{}", run.show()))
}

/// The handshake message types of the trace, in order.
fn handshake_types(t: &serde_json::Value) -> Vec<String> {
    t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "handshake")
        .map(|e| e["msg_type"].to_string())
        .collect()
}

/// The handshake message types tshark sees, frame by frame, in order.
fn handshake_types_seen(file: &Path) -> Vec<String> {
    tshark(file, &["-T", "fields", "-e", "tls.handshake.type"])
        .lines()
        .flat_map(|l| {
            l.split(',')
                .map(|t| t.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// The ClientHello's random, as the trace decoded it.
fn client_random(t: &serde_json::Value) -> String {
    let hello = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["msg"] == "ClientHello")
        .expect("a ClientHello");
    hello["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "random")
        .expect("its random")["value"]
        .as_str()
        .unwrap()
        .to_string()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn key_log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| l.starts_with("CLIENT_RANDOM "))
        .map(str::to_string)
        .collect()
}

/// What a capture must show: the PUBLISH topic and the CONNECT client id, decrypted.
fn assert_decrypts(file: &Path, extra: &[&str], client_id: &str) {
    assert_eq!(
        fields(file, "mqtt.msgtype==3", "mqtt.topic", extra),
        vec![TOPIC.to_string()],
        "tshark decrypts the PUBLISH in {}",
        file.display()
    );
    assert_eq!(
        fields(file, "mqtt.msgtype==1", "mqtt.clientid", extra),
        vec![client_id.to_string()],
        "tshark decrypts the CONNECT in {}",
        file.display()
    );
}

/// The TCP payloads tshark sees, per sender port, concatenated in hex.
fn payloads_by_port(file: &Path) -> Vec<(String, String)> {
    let mut by: Vec<(String, String)> = Vec::new();
    for line in tshark(
        file,
        &["-T", "fields", "-e", "tcp.srcport", "-e", "tcp.payload"],
    )
    .lines()
    {
        let mut cols = line.split('\t');
        let port = cols.next().unwrap_or_default().to_string();
        let payload = cols.next().unwrap_or_default().replace(':', "");
        match by.iter_mut().find(|(p, _)| *p == port) {
            Some((_, all)) => all.push_str(&payload),
            None => by.push((port, payload)),
        }
    }
    by
}

/// The records of one side in the trace, concatenated in hex.
fn records_of(t: &serde_json::Value, side: &str) -> String {
    t["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["from"] == side)
        .map(|r| r["hex"].as_str().unwrap())
        .collect()
}

#[test]
fn the_tour_capture_decrypts_in_tshark_without_a_key_log_option() {
    if !peer_available("tshark", "the_tour_capture_decrypts_in_tshark") {
        return;
    }
    let dir = tempdir("export-tour");
    let pcap = dir.join("tour.pcapng");
    let keylog = dir.join("tour.keys");
    let run = iotls([
        "tour".as_ref(),
        "--json".as_ref(),
        "--pcap".as_ref(),
        pcap.as_os_str(),
        "--keylog".as_ref(),
        keylog.as_os_str(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    let trace = trace_of(&run);

    // No -o tls.keylog_file: the secrets come from the capture's Decryption Secrets Block.
    assert_decrypts(&pcap, &[], "pizza-button-1");

    // tshark's handshake messages, frame by frame, are the trace's.
    assert_eq!(
        handshake_types_seen(&pcap),
        handshake_types(&trace),
        "tshark's handshake types"
    );

    // The payloads are the records, byte for byte; the broker is on 8883.
    let by_port = payloads_by_port(&pcap);
    let broker = by_port
        .iter()
        .find(|(p, _)| p == "8883")
        .expect("the broker on port 8883");
    let device = by_port
        .iter()
        .find(|(p, _)| p != "8883")
        .expect("the device's port");
    assert_eq!(broker.1, records_of(&trace, "broker"), "the broker's bytes");
    assert_eq!(device.1, records_of(&trace, "device"), "the device's bytes");

    // The synthesised framing holds together: no TCP analysis complaint, good checksums.
    assert!(
        fields(&pcap, "tcp.analysis.flags", "frame.number", &[]).is_empty(),
        "tshark finds no sequence problem:\n{}",
        tshark(&pcap, &["-Y", "tcp.analysis.flags"])
    );
    let sums = fields(
        &pcap,
        "tcp",
        "tcp.checksum.status",
        &["-o", "tcp.check_checksum:TRUE"],
    );
    assert!(
        !sums.is_empty() && sums.iter().all(|s| s == "1"),
        "every TCP checksum is good: {sums:?}"
    );

    // The key log: private, one line, for this session's ClientHello.
    assert_eq!(mode(&keylog), 0o600, "the key log is private");
    assert_eq!(mode(&pcap), 0o600, "the capture holds the key log too");
    let lines = key_log_lines(&keylog);
    assert_eq!(lines.len(), 1, "one CLIENT_RANDOM line: {lines:?}");
    let cols: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(cols.len(), 3, "{lines:?}");
    assert_eq!(cols[1], client_random(&trace), "the ClientHello's random");
    assert_eq!(cols[2].len(), 96, "a 48-byte master secret");
}

#[test]
fn a_capture_without_its_secrets_decrypts_with_only_the_key_log_file() {
    if !peer_available("tshark", "a_capture_without_its_secrets")
        || !peer_available("editcap", "a_capture_without_its_secrets")
    {
        return;
    }
    let dir = tempdir("export-keylog-only");
    let pcap = dir.join("with.pcapng");
    let bare = dir.join("without.pcapng");
    let keylog = dir.join("session.keys");
    let run = iotls([
        "tour".as_ref(),
        "--plain".as_ref(),
        "--pcap".as_ref(),
        pcap.as_os_str(),
        "--keylog".as_ref(),
        keylog.as_os_str(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.show());
    let st = Command::new("editcap")
        .arg("--discard-all-secrets")
        .arg(&pcap)
        .arg(&bare)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run editcap");
    assert!(st.success());

    // Without secrets tshark cannot see MQTT: the Decryption Secrets Block was what it used.
    assert!(
        fields(&bare, "mqtt", "frame.number", &[]).is_empty(),
        "no MQTT without the secrets"
    );
    let opt = format!("tls.keylog_file:{}", keylog.display());
    assert_decrypts(&bare, &["-o", &opt], "pizza-button-1");
}

#[test]
fn connect_against_serve_both_sides_captures_decrypt_one_file_per_served_session() {
    if !peer_available("tshark", "connect_against_serve_both_sides_captures") {
        return;
    }
    let dir = tempdir("export-serve");
    default_pki(&dir);
    let served_pcap = dir.join("served.pcapng");
    let served_keys = dir.join("served.keys");
    let served_md = dir.join("served.md");
    let mut serve = Serve::start_with(
        &dir,
        2,
        &[
            "--pcap".as_ref(),
            served_pcap.as_os_str(),
            "--keylog".as_ref(),
            served_keys.as_os_str(),
            "--export".as_ref(),
            "md".as_ref(),
            served_md.as_os_str(),
        ],
    );
    let mut traces = Vec::new();
    for n in 1..=2 {
        let pcap = dir.join(format!("device{n}.pcapng"));
        let keys = dir.join(format!("device{n}.keys"));
        let page = dir.join(format!("device{n}.md"));
        let run = iotls_connect(
            &dir,
            &serve.addr,
            "button",
            &[
                "--json",
                "--topic",
                TOPIC,
                "--pcap",
                pcap.to_str().unwrap(),
                "--keylog",
                keys.to_str().unwrap(),
                "--export",
                "md",
                page.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, Some(0), "{}\n{}", run.show(), serve.show_now());
        let trace = trace_of(&run);
        assert_decrypts(&pcap, &[], "pizza-button-1");
        assert_eq!(
            handshake_types_seen(&pcap),
            handshake_types(&trace),
            "tshark's handshake types"
        );

        // connect's page: no master secret, but where the key log is.
        let lines = key_log_lines(&keys);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let secret = lines[0].rsplit(' ').next().unwrap().to_string();
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(
            !text.contains(&secret),
            "connect's page leaves the secret out"
        );
        assert!(
            text.contains(&keys.display().to_string()),
            "connect's page says where the key log is"
        );
        traces.push((trace, lines[0].clone()));
    }
    assert_eq!(serve.finish(SESSION), Some(0), "{}", serve.show());

    // serve: one capture per session (FILE-N), each decrypting; the key log gets both lines.
    let served_lines = key_log_lines(&served_keys);
    assert_eq!(mode(&served_keys), 0o600);
    for (trace, line) in &traces {
        assert!(
            served_lines.contains(line),
            "serve's key log has the session of client random {}: {served_lines:?}",
            client_random(trace)
        );
    }
    assert_eq!(served_lines.len(), 2, "{served_lines:?}");
    for n in 1..=2 {
        let pcap = dir.join(format!("served-{n}.pcapng"));
        assert!(
            pcap.exists(),
            "{} was written\n{}",
            pcap.display(),
            serve.show()
        );
        assert_decrypts(&pcap, &[], "pizza-button-1");
        // The broker's view of the same session: the handshake the device's trace recorded.
        let random = fields(&pcap, "tls.handshake.type==1", "tls.handshake.random", &[]);
        assert_eq!(random.len(), 1, "one ClientHello: {random:?}");
        let (trace, _) = traces
            .iter()
            .find(|(t, _)| client_random(t) == random[0].replace(':', ""))
            .unwrap_or_else(|| panic!("a device session with client random {}", random[0]));
        assert_eq!(handshake_types_seen(&pcap), handshake_types(trace));
        let page = std::fs::read_to_string(dir.join(format!("served-{n}.md"))).unwrap();
        assert!(
            page.contains("client_chain"),
            "serve's page shows the broker's checks"
        );
        for (_, line) in &traces {
            let secret = line.rsplit(' ').next().unwrap();
            assert!(!page.contains(secret), "serve's page leaves the secret out");
        }
    }
    assert!(
        serve.stderr.iter().any(|l| l.contains("session 2: wrote")
            && l.contains(&dir.join("served-2.pcapng").display().to_string())),
        "serve says which files each session went to:\n{}",
        serve.show()
    );
}

#[test]
fn sslkeylogfile_is_appended_to_with_one_line_per_session() {
    let dir = tempdir("export-sslkeylogfile");
    let file = dir.join("sslkeys.log");
    std::fs::write(&file, "# lines from an earlier program\n").unwrap();
    let run_with_env = || {
        let child = Command::new(env!("CARGO_BIN_EXE_iotls"))
            .args(["tour", "--plain"])
            .env("SSLKEYLOGFILE", &file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iotls");
        collect(child, SESSION)
    };
    let first = run_with_env();
    assert_eq!(first.code, Some(0), "{}", first.show());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# lines from an earlier program\n"),
        "{text}"
    );
    assert_eq!(key_log_lines(&file).len(), 1, "{text}");
    let second = run_with_env();
    assert_eq!(second.code, Some(0), "{}", second.show());
    let lines = key_log_lines(&file);
    assert_eq!(lines.len(), 2, "a second session appends: {lines:?}");
    assert_ne!(lines[0], lines[1], "each session has its own secret");
    assert_eq!(mode(&file), 0o600, "the key log is made private");
}

#[test]
fn the_pages_show_this_session_self_contained() {
    let dir = tempdir("export-pages");
    let html = dir.join("session.html");
    let md = dir.join("session.md");
    let run = iotls([
        "tour".as_ref(),
        "neighbour".as_ref(),
        "--json".as_ref(),
        "--export".as_ref(),
        "html".as_ref(),
        html.as_os_str(),
        "--export".as_ref(),
        "md".as_ref(),
        md.as_os_str(),
    ]);
    let t: iotls::trace::Trace = serde_json::from_str(&run.stdout).expect("the trace");
    assert_eq!(
        run.code,
        Some(5),
        "the neighbour lesson is refused\n{}",
        run.show()
    );
    let page = std::fs::read_to_string(&html).unwrap();

    // Self-contained: no external asset, no script.
    for bad in ["http://", "https://", "<script", "<link", " src="] {
        assert!(!page.contains(bad), "the HTML page contains {bad:?}");
    }
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<style>"));

    // Every handshake message and every check of this session, with its side.
    for e in &t.events {
        match &e.kind {
            iotls::trace::EventKind::Handshake { msg, .. } => {
                assert!(page.contains(&msg.name()), "the page names {}", msg.name())
            }
            iotls::trace::EventKind::Check { check, .. } => {
                assert!(
                    page.contains(check.as_str()),
                    "the page names the check {check}"
                )
            }
            _ => {}
        }
    }
    assert!(
        page.contains("iotls&#39;s own check"),
        "iotls's checks are labelled"
    );
    assert!(page.contains("IMPLICIT_DENY"), "the refusal is on the page");
    // The narration of the first step, and the annotated ClientHello random with its offset.
    let narration = iotls::narrate::step(&t, 1, None);
    assert!(
        page.contains(narration.split('.').next().unwrap()),
        "{narration}"
    );
    let random = client_random(&serde_json::to_value(&t).unwrap());
    let spaced: Vec<String> = random
        .as_bytes()
        .chunks(2)
        .take(16)
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    assert!(
        page.contains(&spaced.join(" ")),
        "the random's bytes are shown"
    );

    // The tour's page teaches with the master secret.
    let secret = t
        .events
        .iter()
        .find_map(|e| match &e.kind {
            iotls::trace::EventKind::Secret { secret, .. } => Some(iotls::trace::hex(secret)),
            _ => None,
        })
        .expect("a secret");
    assert!(
        page.contains(&secret),
        "the tour's page shows the master secret"
    );

    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains(&iotls::render::plain::verdict_line(&t)),
        "the Markdown page ends with the outcome line"
    );
    for m in &t.outcome.mqtt {
        assert!(text.contains(&iotls::narrate::mqtt_line(m)), "{m:?}");
    }
}

#[test]
fn an_export_path_that_cannot_be_written_is_a_setup_error_naming_it() {
    let run = iotls(["tour", "--plain", "--pcap", "/nonexistent/dir/x.pcapng"]);
    assert_eq!(run.code, Some(3), "{}", run.show());
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    assert!(lines[0].contains("/nonexistent/dir/x.pcapng"), "{lines:?}");
    assert!(run.stdout.is_empty(), "no session was run:\n{}", run.stdout);

    let dir = tempdir("export-bad");
    let run = iotls([
        "serve".as_ref(),
        "--port".as_ref(),
        "0".as_ref(),
        "--pki".as_ref(),
        dir.as_os_str(),
        "--keylog".as_ref(),
        "/nonexistent/dir/keys.log".as_ref(),
    ]);
    assert_eq!(run.code, Some(3), "{}", run.show());
    assert!(
        run.stderr.contains("/nonexistent/dir/keys.log"),
        "{}",
        run.show()
    );
    assert!(!run.stderr.contains("listening on"), "serve did not start");

    let run = iotls(["tour", "--plain", "--export", "pdf", "x.pdf"]);
    assert_eq!(
        run.code,
        Some(2),
        "an unknown format is a usage error\n{}",
        run.show()
    );
    assert!(
        run.stderr.contains("pdf") && run.stderr.contains("html or md"),
        "{}",
        run.show()
    );
}

#[test]
fn the_terminal_tour_writes_the_session_on_screen_when_the_learner_quits() {
    if !peer_available("tmux", "the_terminal_tour_writes_the_session_on_screen")
        || !peer_available("tshark", "the_terminal_tour_writes_the_session_on_screen")
    {
        return;
    }
    let dir = tempdir("export-ui");
    let pcap = dir.join("ui.pcapng");
    let keylog = dir.join("ui.keys");
    let every = dir.join("every.keys");
    let cmd = format!(
        // The recorded tour (each run a whole session); tests/tui_live.rs quits a live one.
        "SSLKEYLOGFILE={} {} tour --recorded --pcap {} --keylog {}; echo IOTLS-EXITED-$?; sleep 30",
        every.display(),
        env!("CARGO_BIN_EXE_iotls"),
        pcap.display(),
        keylog.display()
    );
    let t = Tmux::start("export", 120, 35, &cmd);
    let wait = |what: &dyn Fn() -> bool, about: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !what() {
            assert!(
                std::time::Instant::now() < deadline,
                "{about}; the screen shows:\n{}",
                t.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(&|| t.screen().contains("step 1/"), "the UI never came up");
    assert!(
        !pcap.exists(),
        "nothing is written before the learner quits"
    );
    // A second session (r), then quit: the files hold the session on screen.
    t.key("r");
    wait(
        &|| every.exists() && key_log_lines(&every).len() == 2,
        "SSLKEYLOGFILE never got the second session",
    );
    t.key("q");
    wait(
        &|| t.screen().contains("IOTLS-EXITED-"),
        "iotls did not exit",
    );
    assert!(t.screen().contains("IOTLS-EXITED-0"));
    let shown = key_log_lines(&keylog);
    assert_eq!(
        shown,
        vec![key_log_lines(&every)[1].clone()],
        "--keylog holds the session on screen: the re-run"
    );
    assert_decrypts(&pcap, &[], "pizza-button-1");
}
