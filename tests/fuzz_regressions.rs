//! The fuzz targets' inputs in the normal test suite: every committed seed (`fuzz/seeds/<target>/`)
//! and every input that once crashed a target (`fuzz/regressions/<target>/`, one file each, named
//! after the bug) goes through the same library code as the target, with the same checks, so a
//! fixed crash stays fixed without the nightly toolchain. The one crash found so far: the
//! walkthrough target's `extends` naming a file that does not exist gave an error without the
//! lesson's file and line (`fuzz/regressions/walkthrough/`). A new one goes into
//! `fuzz/regressions/<target>/` with its fix (CONTRIBUTING.md, "Fuzzing").

use iotls::mqtt::{Packet, Version};
use iotls::policy::{self, Action, Policy, Registry, RequestContext};
use iotls::tls::dissect::{Dissector, KeyLogEntry};
use iotls::trace::Side;
use std::path::Path;

/// Every file of `fuzz/seeds/<target>` and `fuzz/regressions/<target>`.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).expect("readable");
            out.push((e.path().display().to_string(), bytes));
        }
    }
    out.sort();
    out
}

#[test]
fn tls_dissect_inputs() {
    let all = inputs("tls_dissect");
    assert!(!all.is_empty(), "the seeds are committed");
    for (name, data) in all {
        // The target's format: flags, optional key-log entry, frames [side][len u16][bytes].
        let (flags, mut rest) = data.split_first().map(|(f, r)| (*f, r)).unwrap_or((0, &[]));
        let mut keys = Vec::new();
        if flags & 1 == 1 && rest.len() >= 80 {
            let mut client_random = [0u8; 32];
            client_random.copy_from_slice(&rest[..32]);
            keys.push(KeyLogEntry {
                client_random,
                master_secret: rest[32..80].to_vec(),
            });
            rest = &rest[80..];
        }
        let mut d = Dissector::new(keys);
        let mut events = 0;
        while let Some((&ctrl, r)) = rest.split_first() {
            let side = if ctrl & 1 == 0 {
                Side::Device
            } else {
                Side::Broker
            };
            let (len, r) = match r {
                [a, b, r @ ..] => (u16::from_be_bytes([*a, *b]) as usize, r),
                _ => (r.len(), &r[r.len()..]),
            };
            let len = len.min(r.len());
            events += d.push(side, &r[..len]).len();
            rest = &r[len..];
        }
        events += d.finish().len();
        assert!(events > 0, "{name}: a real session decodes to events");
    }
}

#[test]
fn mqtt_codec_inputs() {
    for (name, data) in inputs("mqtt_codec") {
        for v in [Version::V4, Version::V5] {
            if let Ok((p, _)) = Packet::decode(&data, v) {
                let mut out = Vec::new();
                p.encode(v, &mut out).expect("what decodes encodes");
                let (again, _) = Packet::decode(&out, v).expect("what encodes decodes");
                assert_eq!(p, again, "{name}: round trip as {v:?}");
            }
        }
    }
}

#[test]
fn policy_inputs() {
    let ctx = RequestContext::new("pizza-button-1");
    for (name, data) in inputs("policy") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let _ = Registry::from_json("fuzz", text);
        let Ok(p) = Policy::parse("fuzz", &name, text) else {
            continue;
        };
        let _ = policy::lint(&p);
        for action in Action::ALL {
            let arn = policy::resource_arn(
                policy::DEFAULT_REGION,
                policy::DEFAULT_ACCOUNT,
                action,
                "iotbutton/G030JF055364XVRB",
            );
            let d = policy::evaluate(std::slice::from_ref(&p), action, &arn, &ctx);
            let _ = (d.lines(), d.detail());
        }
    }
}

#[test]
fn pem_describe_inputs() {
    for (_, data) in inputs("pem_describe") {
        let _ = iotls::pki::describe(&data, Vec::new(), 1_790_000_000);
        if let Ok(certs) = iotls::pki::parse_certs(&data) {
            for c in &certs {
                let d = iotls::pki::describe(c, Vec::new(), 1_790_000_000);
                assert!(!d.subject.is_empty());
                let _ = iotls::policy::CertVars::from_der(c);
            }
        }
        let _ = iotls::pki::parse_key(&data);
    }
}

/// The walkthrough target's inputs: the lesson files load (they are the repository's own); any
/// other input is refused with a message naming the file, never a panic.
#[test]
fn walkthrough_inputs() {
    let all = inputs("walkthrough");
    assert!(!all.is_empty(), "the seeds are committed");
    let mut loaded = 0;
    for (name, data) in all {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        match iotls::walkthrough::load_str("fuzz.toml", text, &[]) {
            Ok(lesson) => {
                assert!(!lesson.id.is_empty(), "{name}");
                loaded += 1;
                let sets: Vec<String> = text.lines().take(1).map(str::to_string).collect();
                let _ = iotls::walkthrough::load_str("fuzz.toml", text, &sets);
            }
            Err(e) => assert!(e.to_string().contains("fuzz.toml"), "{name}: {e}"),
        }
    }
    assert!(
        loaded >= 19,
        "every lesson file among the seeds loads ({loaded})"
    );
}
