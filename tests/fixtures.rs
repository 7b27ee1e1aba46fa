//! The saved traces in `fixtures/traces/` are the view tests' sessions (`src/ui/sample.rs` loads
//! them with `include_str!`): what `iotls tour LESSON --json` writes. This test checks that each
//! still loads as a trace of the current format and tells the same session as a fresh run of its
//! lesson (the same outcome, the same messages, checks, decisions and MQTT packets). After a
//! change to the trace or to one of these lessons, rewrite them with
//!
//! ```sh
//! IOTLS_UPDATE_FIXTURES=1 cargo test --test fixtures
//! ```
//!
//! and review `git diff fixtures/traces`. Needs no peer.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const LESSONS: &[&str] = &["pizza-button", "untrusted-device"];

fn path(lesson: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/traces/{lesson}.json"))
}

fn tour_json(lesson: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_iotls"))
        .args(["tour", lesson, "--json"])
        .output()
        .expect("run iotls tour --json");
    String::from_utf8(out.stdout).expect("UTF-8 JSON")
}

/// What the session consisted of, in an order that does not depend on timing: each event's kind,
/// side and what it is (message, check and verdict, decision, MQTT packets, alert).
fn shape(t: &Value) -> Vec<String> {
    let mut out: Vec<String> = t["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            let what = match e["kind"].as_str() {
                Some("handshake") => e["msg"].to_string(),
                Some("check") => format!("{} {}", e["check"], e["ok"]),
                Some("policy") => format!("{} {}", e["action"], e["decision"]),
                Some("alert") => e["description"].to_string(),
                Some("app_data") => e["mqtt"]
                    .as_array()
                    .map(|p| p.iter().map(|p| p["packet"].to_string()).collect())
                    .unwrap_or_else(Vec::<String>::new)
                    .join(","),
                Some("closed") => e["cause"].to_string(),
                _ => String::new(),
            };
            format!("{} {} {what}", e["kind"], e["side"])
        })
        .collect();
    out.sort();
    out
}

#[test]
fn saved_traces_load_and_tell_what_a_fresh_run_tells() {
    let update = std::env::var_os("IOTLS_UPDATE_FIXTURES").is_some_and(|v| v == "1");
    for lesson in LESSONS {
        let fresh_text = tour_json(lesson);
        if update {
            std::fs::write(path(lesson), &fresh_text).expect("write the fixture");
            continue;
        }
        let saved_text = std::fs::read_to_string(path(lesson)).expect("a saved trace");
        let typed: iotls::trace::Trace =
            serde_json::from_str(&saved_text).expect("loads as a trace");
        assert_eq!(typed.format, iotls::trace::FORMAT, "{lesson}: rewrite it");
        let saved: Value = serde_json::from_str(&saved_text).unwrap();
        let fresh: Value = serde_json::from_str(&fresh_text).expect("tour --json is JSON");
        for key in ["scenario", "words"] {
            assert_eq!(saved[key], fresh[key], "{lesson}: {key}");
        }
        for key in ["ok", "phase", "failure"] {
            let (s, f) = (&saved["outcome"][key], &fresh["outcome"][key]);
            let (s, f) = if key == "failure" {
                (&s["code"], &f["code"])
            } else {
                (s, f)
            };
            assert_eq!(s, f, "{lesson}: outcome.{key}");
        }
        assert_eq!(
            shape(&saved),
            shape(&fresh),
            "{lesson}: the session differs"
        );
    }
}
