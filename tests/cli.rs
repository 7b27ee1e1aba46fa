//! The `iotls` binary as a person uses it: the plain tour, and clear messages for bad input.

use std::process::{Command, Output};

fn iotls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iotls"))
        .args(args)
        .output()
        .expect("run iotls")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("iotls-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn plain_tour_narrates_every_phase_from_client_hello_to_puback() {
    let o = iotls(&["tour", "--plain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut at = 0;
    // In the order a learner reads them.
    for needle in [
        "== Hello ==",
        "device → broker ClientHello",
        "broker → device Certificate",
        "✔ device checks server_chain",
        "device → broker CertificateVerify",
        "✔ broker checks certificate_verify",
        "MQTT CONNECT",
        "✔ ALLOWED iot:Publish",
        "MQTT PUBACK",
        "OK:",
    ] {
        let found = text[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing after byte {at}:\n{text}"));
        at += found + needle.len();
    }
    assert!(text.contains("iotbutton/G030JF055364XVRB"), "{text}");
    assert!(
        text.contains("signed bytes: ") && text.contains(" = 2"),
        "the transcript length is shown:\n{text}"
    );
    assert!(
        !text.contains("signed_message"),
        "the signed bytes stay in the JSON, not the narration"
    );
}

#[test]
fn tour_without_a_terminal_prints_the_plain_form() {
    let o = iotls(&["tour"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("iotls — session pizza-button"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_failing_lesson_says_which_check_failed_and_the_alert() {
    let o = iotls(&["tour", "untrusted-device", "--plain"]);
    // Non-interactive output: the exit code is the session's verdict (4: the TLS handshake failed).
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("✘ broker checks client_chain"), "{text}");
    assert!(text.contains("Alert fatal unknown_ca"), "{text}");
    assert!(text.contains("FAILED:"), "{text}");
}

#[test]
fn an_unknown_lesson_is_one_clear_line_and_exit_2() {
    let o = iotls(&["tour", "pizza-buton"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("unknown lesson \"pizza-buton\""), "{err}");
    assert!(
        err.contains("pizza-button") && err.contains("iotls tour --list"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn pki_init_writes_keys_with_mode_0600_and_never_prints_them() {
    let dir = tempdir("pki");
    let o = iotls(&["pki", "init", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stdout(&o).contains("PRIVATE KEY"),
        "paths only, never key material"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [
            "broker.key",
            "button.key",
            "neighbour.key",
            "rogue-button.key",
        ] {
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
        let mode = std::fs::metadata(dir.join("root.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644);
    }
    // A second init refuses to overwrite, naming the file.
    let again = iotls(&["pki", "init", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(3), "set-up error");
    assert!(
        stderr(&again).contains("already exists (use --force to overwrite)"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_named() {
    let dir = tempdir("mismatch");
    assert!(iotls(&["pki", "init", dir.to_str().unwrap()])
        .status
        .success());
    let cert = dir.join("button.pem");
    let key = dir.join("broker.key");
    let o = iotls(&[
        "connect",
        "127.0.0.1:9",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--ca",
        dir.join("root.pem").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "set-up error");
    let err = stderr(&o);
    assert!(
        err.contains("broker.key") && err.contains("does not match the certificate"),
        "{err}"
    );
    assert!(!err.contains("BEGIN"), "no key material in errors: {err}");
}

#[test]
fn a_malformed_certificate_file_is_named() {
    let dir = tempdir("garbage");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let o = iotls(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "set-up error");
    let err = stderr(&o);
    assert!(
        err.contains("bad.pem") && err.contains("not valid X.509"),
        "{err}"
    );
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "hello\n").unwrap();
    let o = iotls(&["inspect", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "set-up error");
    assert!(
        stderr(&o).contains("empty.pem") && stderr(&o).contains("BEGIN CERTIFICATE"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_endless_file_is_refused_instead_of_read_forever() {
    let o = iotls(&["inspect", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(3), "set-up error");
    let err = stderr(&o);
    assert!(
        err.contains("/dev/zero") && err.contains("larger than"),
        "{err}"
    );
}

/// `--plain` groups the steps: a header opens when the wire moves to another phase, a check or
/// decision recorded later stays under the current header and names its own phase. No header
/// follows one of the same phase, none of the default tour's comes twice, and every step's
/// narration is still there.
#[test]
fn plain_tour_has_one_header_per_phase_run_and_every_step() {
    let o = iotls(&["tour", "--plain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("== ")).collect();
    assert!(headers.len() >= 9, "{text}");
    for pair in headers.windows(2) {
        assert_ne!(pair[0], pair[1], "a header repeated back to back:\n{text}");
    }
    let mut seen = std::collections::HashSet::new();
    for h in &headers {
        assert!(
            seen.insert(*h),
            "{h} comes twice in the default tour:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.contains("✔ device checks server_chain")
                && l.ends_with("(phase: Server authentication)")),
        "a check recorded after the wire moved on names its phase:\n{text}"
    );

    // Every step's narration, word for word, in the plain text of the same session.
    let scenario = iotls::engine::lessons::scenario("pizza-button").unwrap();
    let trace = iotls::engine::run(&scenario).unwrap();
    let plain = iotls::render::plain::render(&trace);
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let all = flat(&plain);
    let mut steps = 0;
    for (i, e) in trace.events.iter().enumerate() {
        let packets: Vec<Option<usize>> = match &e.kind {
            iotls::trace::EventKind::AppData { mqtt, .. } if !mqtt.is_empty() => {
                (0..mqtt.len()).map(Some).collect()
            }
            _ => vec![None],
        };
        for p in packets {
            let story = flat(&iotls::narrate::step(&trace, i, p));
            assert!(all.contains(&story), "step {i} {p:?} is missing: {story}");
            steps += 1;
        }
        assert!(
            plain.contains(&format!("[{:>3}] ", e.seq)),
            "event {} has its line",
            e.seq
        );
    }
    assert!(steps > 25, "{steps}");
}

/// `inspect` on a device certificate tells the subject's serialNumber (what the policy variable
/// reads) from the certificate's serial number.
#[test]
fn inspect_tells_the_two_serials_apart() {
    let dir = tempdir("serials");
    let o = iotls(&["pki", "init", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = iotls(&["inspect", dir.join("button.pem").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let leaf: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("certificate 0"))
        .take_while(|l| !l.starts_with("certificate 1"))
        .collect();
    assert!(
        leaf.iter()
            .any(|l| l.contains("subject") && l.contains("serialNumber=G030JF055364XVRB")),
        "{text}"
    );
    assert!(
        leaf.iter().any(|l| l.trim_start().starts_with("serial ")),
        "{text}"
    );
    assert!(
        leaf.iter().any(|l| l.contains(
            "${iot:Certificate.Subject.SerialNumber} reads the subject's serialNumber \
             (G030JF055364XVRB), not the certificate's serial number"
        )),
        "{text}"
    );
    // A CA certificate has no serialNumber attribute: no such line.
    let ca: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("certificate 1"))
        .collect();
    assert!(!ca.iter().any(|l| l.contains("SerialNumber")), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--plain` prints each calculation in the step where it happens: under the broker's
/// CertificateVerify check the messages it signed, whose lengths add up to the signed length; under
/// the key schedule the trace's master secret and key block; under iotls's Finished checks the
/// expected and received verify_data; under each encrypted record its AAD; each with the
/// reproduce.sh check that redoes it.
#[test]
fn plain_tour_shows_each_calculation_in_its_step() {
    use iotls::trace::{hex, EventKind};
    let scenario = iotls::engine::lessons::scenario("pizza-button").unwrap();
    let trace = iotls::engine::run(&scenario).unwrap();
    let plain = iotls::render::plain::render(&trace);
    // The lines of event `seq`'s step: from its `[seq]` line to the next step.
    let section = |seq: u32| -> String {
        let start = plain
            .find(&format!("[{seq:>3}] "))
            .unwrap_or_else(|| panic!("event {seq}"));
        let rest = &plain[start + 6..];
        let end = rest.find("\n[").unwrap_or(rest.len());
        rest[..end].to_string()
    };
    let redo = |text: &str| -> String {
        let at = text.find("sh DIR/reproduce.sh ").expect("a redo line") + 20;
        let name = text[at..].split_whitespace().next().unwrap().to_string();
        assert!(
            iotls::narrate::calc::CHECKS.contains(&name.as_str()),
            "{name}"
        );
        name
    };
    let mut seen = Vec::new();
    for e in &trace.events {
        match &e.kind {
            EventKind::Check {
                signature: Some(sig),
                ..
            } => {
                let text = section(e.seq);
                let line = text
                    .lines()
                    .find(|l| l.trim_start().starts_with("signed bytes: "))
                    .unwrap_or_else(|| panic!("no signed bytes line:\n{text}"));
                let sum = line
                    .split(": ")
                    .nth(1)
                    .unwrap()
                    .split(" = ")
                    .next()
                    .unwrap();
                let sum: usize = sum.split(" + ").map(|n| n.parse::<usize>().unwrap()).sum();
                assert_eq!(sum, sig.signed_len, "{line}");
                assert!(line.contains(&format!("= {} bytes", sig.signed_len)));
                assert!(text.contains(&hex(&sig.digest)));
                seen.push(redo(&text));
            }
            EventKind::Check {
                finished: Some(f), ..
            } => {
                let text = section(e.seq);
                assert!(
                    text.contains(&format!("expected: {}", hex(&f.expected))),
                    "{text}"
                );
                assert!(
                    text.contains(&format!("received: {}", hex(&f.received))),
                    "{text}"
                );
                seen.push(redo(&text));
            }
            EventKind::KeySchedule(k) => {
                let text = section(e.seq);
                assert!(text.contains(&hex(&k.master_secret.value)), "{text}");
                assert!(text.contains(&hex(&k.key_expansion.key_block)), "{text}");
                assert!(text.contains("never leave rustls"), "{text}");
                seen.push(redo(&text));
            }
            EventKind::AppData {
                protection: Some(p),
                ..
            } => {
                let text = section(e.seq);
                assert!(text.contains(&format!("= {}", hex(&p.aad))), "{text}");
                assert!(text.contains(&hex(&p.tag)), "{text}");
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            "server_kx_signature",
            "key_block",
            "certificate_verify",
            "client_finished",
            "server_finished"
        ]
    );
    // serve's narration for others keeps the key schedule out.
    let shared = iotls::render::plain::render(&trace.without_secrets());
    let k = trace
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::KeySchedule(k) => Some(k.clone()),
            _ => None,
        })
        .unwrap();
    assert!(!shared.contains(&hex(&k.key_expansion.key_block)));
    assert!(!shared.contains(&hex(&k.master_secret.value)));
}
