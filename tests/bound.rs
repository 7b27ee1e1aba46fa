//! `serve`'s recording bound: a long session keeps its handshake, its first and its last records,
//! and says what it left out with a `gap` event; the records after the gap still decrypt, and
//! the pcapng export still reads in tshark.
//!
//! Peers: `mosquitto_pub` (the device) and `tshark`. The bytes the device sent are counted by the
//! test's own relay, not taken from iotls.

mod common;

use common::peer_available;
use common::peers::{default_pki, tempdir, wait_bounded, Owned, Relay, Serve, SESSION};
use iotls::engine::bound::{HEAD_RECORDS, TAIL_RECORDS};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Splits a direction's bytes into TLS records (the test's own cutter).
fn records(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while b.len() >= 5 {
        let n = 5 + u16::from_be_bytes([b[3], b[4]]) as usize;
        assert!(n <= b.len(), "the relay saw a record cut short");
        out.push(&b[..n]);
        b = &b[n..];
    }
    assert!(b.is_empty(), "bytes after the last whole record");
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The button publishes `message` (`-f FILE` or `-m TEXT`) `repeat` times at QoS 1 to `topic`
/// with `mosquitto_pub`, which must succeed within [`SESSION`].
fn publish_repeated(
    dir: &std::path::Path,
    port: &str,
    topic: &str,
    message: [&std::ffi::OsStr; 2],
    repeat: usize,
) {
    let mut publisher = Owned(
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", port, "--cafile"])
            .arg(dir.join("root.pem"))
            .arg("--cert")
            .arg(dir.join("button.pem"))
            .arg("--key")
            .arg(dir.join("button.key"))
            .args(["-i", "pizza-button-1", "-t", topic, "-q", "1"])
            .args(message)
            .args(["--repeat", &repeat.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto_pub"),
    );
    let status = wait_bounded(&mut publisher.0, SESSION).expect("mosquitto_pub ends");
    assert!(status.success(), "mosquitto_pub: {status:?}");
}

const MESSAGES: usize = 1500;
const PAYLOAD: usize = 8 * 1024;

#[test]
fn a_long_serve_session_keeps_its_ends_and_counts_the_gap_exactly() {
    let test = "a_long_serve_session_keeps_its_ends";
    if !peer_available("mosquitto_pub", test) || !peer_available("tshark", test) {
        return;
    }
    let dir = tempdir("bound-gap");
    default_pki(&dir);
    let pcap = dir.join("long.pcapng");
    let mut serve = Serve::start_with(&dir, 1, &["--pcap".as_ref(), pcap.as_os_str()]);
    let relay = Relay::start(&serve.addr);
    let port = relay.addr.rsplit(':').next().unwrap().to_string();
    let payload = dir.join("payload.bin");
    // 8 KiB of text: one PUBLISH fits one TLS record.
    std::fs::write(
        &payload,
        &"order 42: margherita. ".repeat(PAYLOAD / 22 + 1).as_bytes()[..PAYLOAD],
    )
    .unwrap();
    let topic = format!("iotbutton/{}", iotls::pki::BUTTON_SERIAL);
    publish_repeated(
        &dir,
        &port,
        &topic,
        ["-f".as_ref(), payload.as_os_str()],
        MESSAGES,
    );
    let (up, down) = relay.finish();
    let line_len;
    let t: Value = {
        let t = serve
            .wait_for_trace(SESSION, |_| true)
            .unwrap_or_else(|| panic!("no trace\n{}", serve.show_now()));
        line_len = serve.trace_lines()[0].len();
        std::fs::write(dir.join("long.jsonl"), &serve.trace_lines()[0]).unwrap();
        t
    };
    assert_eq!(serve.finish(SESSION), Some(0), "{}", serve.show());

    // What the device sent, by the test's own count.
    let sent = records(&up);
    assert!(
        sent.len() > MESSAGES,
        "{} records for {MESSAGES} publishes",
        sent.len()
    );
    let kept: Vec<&Value> = t["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["from"] == "device")
        .collect();
    let gaps: Vec<&Value> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "gap")
        .collect();
    assert_eq!(gaps.len(), 1, "one gap");
    let g = &gaps[0]["device"];
    let skipped = g["records"].as_u64().unwrap() as usize;
    let from = g["from_record"].as_u64().unwrap() as usize;
    // The kept records are the first ones and the last TAIL_RECORDS, byte for byte.
    assert_eq!(kept.len() + skipped, sent.len(), "kept + left out = sent");
    assert_eq!(kept.len() - from, TAIL_RECORDS, "the tail");
    assert!(from >= HEAD_RECORDS as usize, "the head: {from}");
    for (i, r) in kept.iter().enumerate() {
        let at = if i < from { i } else { i + skipped };
        assert_eq!(r["index"].as_u64().unwrap() as usize, at);
        assert_eq!(r["hex"].as_str().unwrap(), hex(sent[at]), "record {at}");
    }
    let skipped_bytes: usize = sent[from..from + skipped].iter().map(|r| r.len()).sum();
    assert_eq!(g["bytes"].as_u64().unwrap() as usize, skipped_bytes);
    // The broker's PUBACKs were bounded too, and counted exactly.
    let answered = records(&down);
    let b = &gaps[0]["broker"];
    let broker_kept = t["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["from"] == "broker")
        .count();
    assert_eq!(
        broker_kept + b["records"].as_u64().unwrap() as usize,
        answered.len()
    );

    // After the gap every record still decrypts, and the PUBLISHes in it decode.
    let tail_publishes: Vec<&Value> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["kind"] == "app_data"
                && e["side"] == "device"
                && e["record"].as_u64().unwrap() as usize >= from + skipped
        })
        .collect();
    // The last record is the device's close_notify, decrypted too.
    let close_notify = t["events"].as_array().unwrap().iter().any(|e| {
        e["kind"] == "alert"
            && e["side"] == "device"
            && e["description"] == "close_notify"
            && e["record"].as_u64().unwrap() as usize == sent.len() - 1
    });
    assert!(close_notify, "the device's close_notify decrypts");
    assert_eq!(tail_publishes.len(), TAIL_RECORDS - 1);
    for e in &tail_publishes {
        assert!(e["plaintext"].is_string(), "decrypted: {}", e["record"]);
    }
    let decoded: Vec<&Value> = tail_publishes
        .iter()
        .flat_map(|e| e["mqtt"].as_array().unwrap())
        .collect();
    // All but the DISCONNECT's record and the close_notify's.
    assert!(
        decoded
            .iter()
            .filter(|p| p["packet"] == "PUBLISH" && p["topic"] == topic.as_str())
            .count()
            >= TAIL_RECORDS - 2,
        "the last PUBLISHes decode: {decoded:?}"
    );
    assert!(decoded.iter().any(|p| p["packet"] == "DISCONNECT"));
    assert_eq!(t["outcome"]["ok"], true, "{}", t["outcome"]);
    // The session's JSON line is bounded: it holds about 64 records of each direction (each
    // about nine times over: the record, its ciphertext and plaintext in hex, the MQTT packet),
    // not the 12 MB on the wire.
    let total: usize = up.len() + down.len();
    assert!(total > 12_000_000, "{total} bytes on the wire");
    assert!(
        line_len < 6_000_000,
        "the JSON line holds {line_len} bytes for {total} on the wire"
    );

    // replay reads the gapped trace back and says what is missing.
    let replay = common::peers::iotls([
        "replay".as_ref(),
        dir.join("long.jsonl").as_os_str(),
        "--plain".as_ref(),
    ]);
    assert_eq!(replay.code, Some(0), "{}", replay.show());
    assert!(
        replay.stdout.contains(&format!("{skipped} + ")) && replay.stdout.contains("not kept"),
        "{}",
        replay.show()
    );

    // tshark reads the gapped capture: the segments left out are "not captured", the first one
    // after the gap says why, and the sequence numbers count every byte the device sent.
    let out = Command::new("tshark")
        .arg("-r")
        .arg(numbered(&pcap))
        .args([
            "-T",
            "fields",
            "-e",
            "frame.comment",
            "-e",
            "tcp.analysis.lost_segment",
        ])
        .args(["-e", "tcp.srcport", "-e", "tcp.seq", "-e", "tcp.flags.fin"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let noted: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("did not keep"))
        .collect();
    assert_eq!(noted.len(), 2, "one note per direction:\n{text}");
    assert!(
        noted[0].contains(&format!("{skipped} record(s)")),
        "{}",
        noted[0]
    );
    let device_fin = text
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f.len() >= 5 && f[2] != "8883" && f[4] == "1")
        .expect("the device's FIN");
    assert_eq!(
        device_fin[3].parse::<usize>().unwrap(),
        1 + up.len(),
        "the device's FIN is after every byte it sent"
    );
    let mqtt = Command::new("tshark")
        .arg("-r")
        .arg(numbered(&pcap))
        .args([
            "-Y",
            "mqtt.msgtype == 3",
            "-T",
            "fields",
            "-e",
            "mqtt.topic",
        ])
        .output()
        .expect("run tshark");
    let publishes = String::from_utf8_lossy(&mqtt.stdout)
        .lines()
        .filter(|l| l.contains(&topic))
        .count();
    assert!(publishes >= 10, "tshark decrypts the head's PUBLISHes");
}

/// `serve --pcap FILE` writes FILE-1.pcapng for its first session.
fn numbered(p: &std::path::Path) -> std::path::PathBuf {
    iotls::export::numbered(p, 1)
}

/// PUBLISHes of 20 KiB take two records each, so the gap cuts through the MQTT stream and the
/// records after it do not begin with a packet. Nothing after the gap is mis-decoded: the records
/// decrypt, no PUBLISH is made up from the middle of one, and decoding resumes at the DISCONNECT,
/// the first record that begins with a whole packet.
#[test]
fn packets_cut_by_the_gap_are_not_guessed_at() {
    let test = "packets_cut_by_the_gap_are_not_guessed_at";
    if !peer_available("mosquitto_pub", test) {
        return;
    }
    let dir = tempdir("bound-cut");
    default_pki(&dir);
    let mut serve = Serve::start(&dir, 1);
    let port = serve.addr.rsplit(':').next().unwrap().to_string();
    let payload = dir.join("payload.bin");
    std::fs::write(&payload, vec![b'p'; 20 * 1024]).unwrap();
    let topic = format!("iotbutton/{}", iotls::pki::BUTTON_SERIAL);
    publish_repeated(
        &dir,
        &port,
        &topic,
        ["-f".as_ref(), payload.as_os_str()],
        200,
    );
    let t = serve
        .wait_for_trace(SESSION, |_| true)
        .unwrap_or_else(|| panic!("no trace\n{}", serve.show_now()));
    let events = t["events"].as_array().unwrap();
    let gap_at = events
        .iter()
        .position(|e| e["kind"] == "gap")
        .expect("a gap");
    let after: Vec<&Value> = events[gap_at..]
        .iter()
        .filter(|e| e["kind"] == "app_data" && e["side"] == "device")
        .collect();
    assert!(after.len() >= TAIL_RECORDS - 2, "{} records", after.len());
    let mut packets = Vec::new();
    for e in &after {
        assert!(
            e["plaintext"].is_string(),
            "record {} decrypts",
            e["record"]
        );
        packets.extend(
            e["mqtt"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["packet"].clone()),
        );
    }
    assert_eq!(
        packets,
        [json!("DISCONNECT")],
        "only the DISCONNECT after the gap"
    );
    // Every PUBLISH that was decoded (before the gap) is whole: the right topic and length.
    for e in events.iter().filter(|e| e["kind"] == "app_data") {
        for p in e["mqtt"].as_array().unwrap() {
            if p["packet"] == "PUBLISH" {
                assert_eq!(p["topic"], topic.as_str());
                assert_eq!(p["payload"].as_str().map(str::len), Some(20 * 1024));
            }
        }
    }
    assert_eq!(t["outcome"]["ok"], true, "{}", t["outcome"]);
    assert_eq!(serve.finish(SESSION), Some(0));
}

/// `serve --reproduce` of a gapped session: reproduce.sh (openssl and python3, independent of
/// iotls's code) checks every kept record, those after the gap with their sequence numbers moved
/// on by the records left out.
#[test]
fn reproduce_checks_the_records_after_the_gap() {
    let test = "reproduce_checks_the_records_after_the_gap";
    if !peer_available("mosquitto_pub", test)
        || !peer_available("openssl", test)
        || !peer_available("python3", test)
    {
        return;
    }
    let dir = tempdir("bound-reproduce");
    default_pki(&dir);
    let calc = dir.join("calc");
    let mut serve = Serve::start_with(&dir, 1, &["--reproduce".as_ref(), calc.as_os_str()]);
    let port = serve.addr.rsplit(':').next().unwrap().to_string();
    let topic = format!("iotbutton/{}", iotls::pki::BUTTON_SERIAL);
    publish_repeated(
        &dir,
        &port,
        &topic,
        ["-m".as_ref(), "one margherita".as_ref()],
        80,
    );
    let t = serve
        .wait_for_trace(SESSION, |_| true)
        .unwrap_or_else(|| panic!("no trace\n{}", serve.show_now()));
    assert_eq!(serve.finish(SESSION), Some(0), "{}", serve.show());
    let gap = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "gap")
        .expect("a gap");
    let first_after =
        gap["device"]["from_record"].as_u64().unwrap() + gap["device"]["records"].as_u64().unwrap();
    let out = dir.join("reproduce.txt");
    let mut script = Owned(
        Command::new("bash")
            .arg(calc.join("session-1").join("reproduce.sh"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bash"),
    );
    let status = wait_bounded(&mut script.0, Duration::from_secs(240)).expect("reproduce.sh ends");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(status.success(), "reproduce.sh: {status:?}\n{text}");
    assert!(!text.lines().any(|l| l.starts_with("FAIL")), "{text}");
    let after = format!("ok   record device {first_after} ");
    assert!(
        text.lines().any(|l| l.starts_with(&after)),
        "the first record after the gap is checked: {after}\n{text}"
    );
}
