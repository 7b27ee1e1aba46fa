//! Walkthroughs as data (docs/walkthrough-format.md): every built-in lesson runs for real and its
//! `[expect]` holds under MQTT 3.1.1 and 5; a lesson file of one's own runs through the binary;
//! `--set` breaks a lesson the way a learner would; bad lesson files get one clear line with the
//! file and line.

mod common;

use common::peers::{iotls, tempdir};
use iotls::engine::{self, mqtt_io::Version};
use iotls::trace::{CheckId, EventKind, Side, Trace};
use iotls::walkthrough::{self, Selector};
use std::path::{Path, PathBuf};

fn lesson_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("walkthroughs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("walkthroughs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn run(lesson: &walkthrough::Lesson, v: Version) -> Trace {
    engine::run(&lesson.scenario(Some(v)).expect("scenario")).expect("session runs")
}

#[test]
fn every_lesson_file_is_built_in_and_meets_its_expect_under_both_mqtt_versions() {
    let files = lesson_files();
    let builtin = walkthrough::ids();
    let mut failures = Vec::new();
    let mut runs = 0;
    for f in &files {
        let id = f.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            builtin.contains(&id.as_str()),
            "walkthroughs/{id}.toml is not built into iotls (walkthrough::BUILTIN)"
        );
        // The file on disk and the built-in copy are the same lesson.
        let lesson = walkthrough::load(&f.display().to_string(), &[]).expect("lesson loads");
        assert_eq!(
            lesson.id,
            id,
            "{}: id differs from the file name",
            f.display()
        );
        assert!(lesson.spec.expect.is_some(), "{id}: no [expect]");
        for v in lesson.versions() {
            // A session, or for a lesson of operations (`operations = "<id>"`) its operations.
            let t = lesson.run(Some(v)).expect("lesson runs");
            runs += 1;
            for m in lesson.check_expect(&t, v) {
                failures.push(format!("{id} ({v:?}): {m}"));
            }
            // Every `say` line fits 80 columns, filled from this run.
            for (_, say) in lesson.emphasis_for(&t) {
                for line in say.lines() {
                    if line.chars().count() > 80 {
                        failures.push(format!("{id}: say line over 80 columns: {line}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // 13 session lessons, each under both versions, and 6 lessons of operations: the harness
    // really ran them.
    assert!(runs >= 32, "only {runs} runs");
}

#[test]
fn every_say_and_quiz_line_as_written_fits_80_columns() {
    let mut long = Vec::new();
    for f in lesson_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let w: walkthrough::Walkthrough = toml::from_str(&text).unwrap();
        let mut texts: Vec<String> = w.emphasis.iter().flatten().map(|e| e.say.clone()).collect();
        for q in w.quiz.iter().flatten() {
            texts.push(q.question.clone());
            texts.extend(q.choices.iter().cloned());
            texts.extend(q.explain.iter().cloned());
        }
        for t in texts {
            for line in t.lines().filter(|l| l.chars().count() > 80) {
                long.push(format!("{}: {line}", f.display()));
            }
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}

#[test]
fn selectors_name_the_step_where_it_happened() {
    let lesson = walkthrough::load("pizza-button", &[]).unwrap();
    let t = run(&lesson, Version::V4);
    let sel = |toml_text: &str| {
        let s: walkthrough::format::SelectorSpec = toml::from_str(toml_text).unwrap();
        Selector::parse(&s).unwrap()
    };
    let i = sel("check = \"client_chain\"")
        .resolve(&t)
        .expect("client_chain");
    assert!(matches!(
        t.events[i].kind,
        EventKind::Check {
            check: CheckId::ClientChain,
            ..
        }
    ));
    assert_eq!(
        t.events[i].side,
        Side::Broker,
        "rustls on the broker made it"
    );
    let i = sel("message = \"CertificateVerify\"\nfrom = \"device\"")
        .resolve(&t)
        .expect("CertificateVerify");
    assert!(
        matches!(&t.events[i].kind, EventKind::Handshake { msg, .. } if msg.name() == "CertificateVerify")
    );
    assert_eq!(t.events[i].side, Side::Device);
    let i = sel("mqtt = \"PUBLISH\"").resolve(&t).expect("PUBLISH");
    assert!(
        matches!(&t.events[i].kind, EventKind::AppData { mqtt, .. } if mqtt.iter().any(|p| p.packet.name() == "PUBLISH"))
    );
    let i = sel("policy = \"iot:Publish\"").resolve(&t).expect("policy");
    assert!(
        matches!(&t.events[i].kind, EventKind::Policy(p) if p.action.iot_name() == "iot:Publish")
    );
    let first_kx = sel("phase = \"key_exchange\"").resolve(&t).expect("phase");
    assert!(t.events[..first_kx]
        .iter()
        .all(|e| e.phase != iotls::trace::Phase::KeyExchange));
    // A step the run never reached resolves to nothing: no policy decision after a refused chain.
    let refused = walkthrough::load("untrusted-device", &[]).unwrap();
    let t = run(&refused, Version::V4);
    assert_eq!(sel("policy = \"iot:Publish\"").resolve(&t), None);
    // The placeholders come from this run's certificate.
    let lesson = walkthrough::load("neighbour", &[]).unwrap();
    let t = run(&lesson, Version::V4);
    let said: Vec<String> = lesson
        .emphasis_for(&t)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert!(
        said.iter().any(|s| s.contains("G030JF055365XVRC")),
        "the neighbour's serial, read from its certificate: {said:?}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_lesson_of_ones_own_runs_through_the_binary_with_its_own_policy_and_an_rsa_key() {
    let dir = tempdir("walk-own");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    // Only topics under shop/: the button's own order topic is now refused.
    write(
        &dir.join("policies"),
        "shop-only.json",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
            {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/shop/*"}]}"#,
    );
    let lesson = write(
        &dir,
        "my-lesson.toml",
        r#"format = "iotls-walkthrough/1"
id = "my-lesson"
extends = "pizza-button"
title = "An RSA button with a policy of my own"

[pki.button]
key = "rsa2048"

[broker.registry]
policies = [{ name = "ShopOnly", file = "policies/shop-only.json" }]
certificates = [{ cert = "button", status = "ACTIVE", things = ["{thing}"], policies = ["ShopOnly"] }]

[[device.actions]]
publish = "shop/{serial}/order"

[expect]
ok = true
"#,
    );
    // Run from another directory: the policy path is the lesson file's.
    let r = iotls([lesson.to_str().unwrap(), "--json"].iter().fold(
        vec!["tour".to_string()],
        |mut v, a| {
            v.push(a.to_string());
            v
        },
    ));
    assert_eq!(r.code, Some(0), "{}", r.show());
    let t: Trace = serde_json::from_str(&r.stdout).expect("a trace");
    assert_eq!(t.scenario, "my-lesson");
    let leaf = t
        .certificates
        .iter()
        .find(|c| {
            c.roles
                .iter()
                .any(|r| r.side == Side::Device && r.index == 0)
        })
        .expect("device certificate");
    assert!(leaf.key.contains("RSA"), "{}", leaf.key);
    let plain = iotls(["tour", lesson.to_str().unwrap(), "--plain"]);
    assert_eq!(plain.code, Some(0), "{}", plain.show());
    assert!(plain.stdout.contains("shop/G030JF055364XVRB/order"));
    let check = iotls(["lesson", "check", lesson.to_str().unwrap()]);
    assert_eq!(check.code, Some(0), "{}", check.show());
    assert!(check.stdout.contains("[expect] met"), "{}", check.show());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn set_breaks_the_name_check_and_the_lesson_says_its_claim_no_longer_holds() {
    let r = iotls([
        "tour",
        "pizza-button",
        "--set",
        "device.server_name=evil.example",
        "--json",
    ]);
    assert_eq!(r.code, Some(4), "{}", r.show());
    let t: Trace = serde_json::from_str(&r.stdout).unwrap();
    let f = t.outcome.failure.expect("a failure");
    assert_eq!(f.code.as_str(), "not_valid_for_name");
    assert_eq!(f.side, Some(Side::Device));
    assert!(
        r.stderr.contains("contradicts the lesson's [expect]"),
        "{}",
        r.show()
    );

    let c = iotls([
        "lesson",
        "check",
        "pizza-button",
        "--set",
        "device.server_name=evil.example",
    ]);
    assert_eq!(c.code, Some(6), "{}", c.show());
    assert!(c.stdout.contains("expect.ok"), "{}", c.show());
    assert!(c.stdout.contains("not_valid_for_name"), "{}", c.show());
}

#[test]
fn set_takes_toml_values_the_wrong_root_trusts_no_real_broker() {
    let r = iotls(["tour", "pizza-button", "--set", "device.trust=[]", "--json"]);
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(
        r.stderr.contains("`device.trust`: trusts no CA"),
        "{}",
        r.show()
    );
    let r = iotls([
        "tour",
        "pizza-button",
        "--set",
        "device.trust=[\"rogue-root\"]",
        "--json",
    ]);
    assert_eq!(r.code, Some(4), "{}", r.show());
    let t: Trace = serde_json::from_str(&r.stdout).unwrap();
    let f = t.outcome.failure.expect("a failure");
    assert_eq!(f.check, Some(CheckId::ServerChain), "{}", r.show());
    // A version pinned by --set is respected; a value of the wrong type is the format's error.
    let r = iotls(["lesson", "check", "mqtt5-vs-311", "--set", "device.mqtt=5"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(r.stdout.contains("(MQTT 5)") && !r.stdout.contains("3.1.1"));
    let r = iotls([
        "tour",
        "pizza-button",
        "--set",
        "device.persistent=7",
        "--plain",
    ]);
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(r.stderr.contains("--set"), "{}", r.show());
    let r = iotls(["tour", "pizza-button", "--set", "nonsense", "--plain"]);
    assert_eq!(r.code, Some(2), "{}", r.show());
}

/// One line on stderr naming the file and line, exit 3.
fn refused_at(name: &str, text: &str, line: usize, words: &str) {
    let dir = tempdir("walk-bad");
    let p = write(&dir, name, text);
    let r = iotls(["tour", p.to_str().unwrap(), "--plain"]);
    assert_eq!(r.code, Some(3), "{}", r.show());
    let err = r.stderr.trim();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let at = format!("{}:{line}:", p.display());
    assert!(err.contains(&at), "expected {at} in: {err}");
    assert!(err.contains(words), "expected {words:?} in: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

const HEAD: &str = "format = \"iotls-walkthrough/1\"\nid = \"x\"\nextends = \"pizza-button\"\n";

#[test]
fn bad_lesson_files_get_one_clear_line_with_file_and_line() {
    refused_at(
        "unknown-key.toml",
        &format!("{HEAD}title = \"t\"\n\n[device]\nserver_nme = \"a\"\n"),
        7,
        "server_nme",
    );
    refused_at(
        "wrong-type.toml",
        &format!("{HEAD}title = \"t\"\n[device]\npersistent = \"yes\"\n"),
        6,
        "bool",
    );
    refused_at(
        "bad-selector.toml",
        &format!(
            "{HEAD}title = \"t\"\n\n[[emphasis]]\nat = {{ check = \"chain\" }}\nsay = \"x\"\n"
        ),
        7,
        "not a check",
    );
    refused_at(
        "unknown-extends.toml",
        "format = \"iotls-walkthrough/1\"\nid = \"x\"\ntitle = \"t\"\nextends = \"pizza-buton\"\n",
        4,
        "no lesson \"pizza-buton\" to extend",
    );
    refused_at(
        "bad-placeholder.toml",
        &format!("{HEAD}title = \"t\"\n[[emphasis]]\nat = {{ phase = \"hello\" }}\nsay = \"{{cert.device.colour}}\"\n"),
        7,
        "not a placeholder",
    );
    refused_at(
        "unknown-var.toml",
        &format!("{HEAD}title = \"t\"\n[device]\nclient_id = \"{{thingy}}\"\n"),
        6,
        "not a variable",
    );
    refused_at(
        "operations.toml",
        "format = \"iotls-walkthrough/1\"\nid = \"x\"\ntitle = \"t\"\noperations = \"forward-sekrecy\"\n",
        4,
        "not a lesson of operations",
    );
}

#[test]
fn a_cycle_of_extends_is_named() {
    let dir = tempdir("walk-cycle");
    write(
        &dir,
        "a.toml",
        "format = \"iotls-walkthrough/1\"\nid = \"a\"\ntitle = \"a\"\nextends = \"b.toml\"\n",
    );
    let b = write(
        &dir,
        "b.toml",
        "format = \"iotls-walkthrough/1\"\nid = \"b\"\ntitle = \"b\"\nextends = \"a.toml\"\n",
    );
    let r = iotls(["lesson", "check", b.to_str().unwrap()]);
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(r.stderr.contains("a.toml:4:"), "{}", r.show());
    assert!(r.stderr.contains("circle"), "{}", r.show());
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.show());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tour_list_shows_every_lesson_with_its_title_and_an_unknown_one_lists_them() {
    let r = iotls(["tour", "--list"]);
    assert_eq!(r.code, Some(0));
    for id in walkthrough::ids() {
        let l = walkthrough::load(id, &[]).unwrap();
        assert!(r.stdout.contains(id) && r.stdout.contains(&l.title), "{id}");
    }
    let r = iotls(["tour", "no-such-lesson"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("mqtt5-vs-311"), "{}", r.show());
}

#[test]
fn the_terminal_ui_shows_a_lessons_emphasis_at_its_step_only() {
    use iotls::ui::{self, Action, AppState};
    use ratatui::{backend::TestBackend, Terminal};
    let lesson = walkthrough::load("neighbour", &[]).unwrap();
    let t = run(&lesson, Version::V4);
    let notes = lesson.emphasis_for(&t);
    let (at, say) = notes.first().cloned().expect("an emphasis the run reached");
    let mut state = AppState::new(&t);
    state.notes = notes;
    let screen = |state: &AppState| {
        let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
        term.draw(|f| ui::render(f, &t, state)).unwrap();
        term.backend().to_string()
    };
    let step = state.steps.iter().position(|s| s.event == at).unwrap();
    state.update(&t, Action::GoTo(step));
    let words: String = say.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
    assert!(screen(&state).contains(&words), "{words:?} at its step");
    state.update(&t, Action::GoTo(0));
    assert!(!screen(&state).contains(&words), "not at the first step");
}

#[test]
fn a_quiz_is_asked_before_its_step_and_a_digit_answers_it() {
    use iotls::ui::{self, Action, AppState, Quiz};
    use ratatui::{backend::TestBackend, Terminal};
    let lesson = walkthrough::load("chain-of-trust", &[]).unwrap();
    let t = run(&lesson, Version::V4);
    let quizzes: Vec<Quiz> = lesson
        .quiz_for(&t)
        .into_iter()
        .map(|(event, q)| Quiz {
            event,
            question: q.question.clone(),
            choices: q.choices.clone(),
            answer: q.answer,
            explain: q.explain.clone(),
        })
        .collect();
    let target_event = quizzes.first().expect("a quiz the run reached").event;
    let question = quizzes[0].question.clone();
    let right = quizzes[0].answer;
    let mut state = AppState::new(&t);
    state.set_lesson(Vec::new(), quizzes);
    let target = state
        .steps
        .iter()
        .position(|s| s.event == target_event)
        .unwrap();
    // Step forward until the question stops us.
    while state.asking.is_none() && state.step + 1 < state.steps.len() {
        state.update(&t, Action::Next);
    }
    assert_eq!(state.asking.map(|(_, s)| s), Some(target));
    assert_eq!(
        state.step + 1,
        target,
        "the step is not shown before the answer"
    );
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    term.draw(|f| ui::render(f, &t, &state)).unwrap();
    let screen = term.backend().to_string();
    let start: String = question.chars().take(30).collect();
    assert!(screen.contains(&start), "{screen}");
    // Small screens draw without a panic.
    for (w, h) in [(20, 5), (1, 1), (80, 24)] {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| ui::render(f, &t, &state)).unwrap();
    }
    // Other keys do nothing while the question is open; a wrong digit answers and says so.
    state.update(&t, Action::Next);
    assert_eq!(state.step + 1, target);
    let wrong = if right == 1 { 2 } else { 1 };
    state.update(&t, Action::Answer(wrong));
    assert_eq!(state.step, target, "answered: the step is revealed");
    assert!(state.asking.is_none());
    assert!(state
        .notes
        .iter()
        .any(|(e, s)| *e == target_event && s.contains(&format!("the answer is {right}"))));
    // Not asked again.
    state.update(&t, Action::Prev);
    state.update(&t, Action::Next);
    assert_eq!(state.step, target);
}

#[test]
fn a_lesson_can_use_certificate_files_from_pki_init() {
    let dir = tempdir("walk-pem");
    let init = iotls(["pki", "init", dir.join("pki").to_str().unwrap()]);
    assert_eq!(init.code, Some(0), "{}", init.show());
    let lesson = write(
        &dir,
        "own.toml",
        r#"format = "iotls-walkthrough/1"
id = "own-files"
extends = "pizza-button"
title = "The PKI from iotls pki init"

[pki.root]
pem = "pki/root.pem"
[pki.issuing]
pem = "pki/issuing-ca.pem"
[pki.broker]
pem = "pki/broker.pem"
key = "pki/broker.key"
[pki.button]
pem = "pki/button.pem"
key = "pki/button.key"
[pki.neighbour]
pem = "pki/neighbour.pem"
key = "pki/neighbour.key"

[broker]
chain = ["broker", "issuing"]
[device]
chain = ["button", "issuing"]

[expect]
ok = true
"#,
    );
    let r = iotls(["tour", lesson.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    let t: Trace = serde_json::from_str(&r.stdout).unwrap();
    // The device presented the very certificate pki init wrote.
    let pem_text = std::fs::read_to_string(dir.join("pki/button.pem")).unwrap();
    let der = pem::parse(&pem_text).unwrap().contents().to_vec();
    assert!(t.certificates.iter().any(|c| c.der == der
        && c.roles
            .iter()
            .any(|r| r.side == Side::Device && r.index == 0)));
    // A certificate file cannot issue others: the lesson says which key is wrong.
    let bad = write(
        &dir,
        "bad.toml",
        "format = \"iotls-walkthrough/1\"\nid = \"b\"\nextends = \"pizza-button\"\ntitle = \"b\"\n\
         [pki.issuing]\npem = \"pki/issuing-ca.pem\"\n",
    );
    let r = iotls(["tour", bad.to_str().unwrap(), "--plain"]);
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(r.stderr.contains("issuer"), "{}", r.show());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_lesson_file_can_run_a_lesson_of_operations_and_its_expect_is_checked() {
    let dir = tempdir("walk-ops");
    let ok = write(
        &dir,
        "keys.toml",
        "format = \"iotls-walkthrough/1\"\nid = \"keys\"\ntitle = \"Keys\"\n\
         operations = \"public-key-basics\"\n[expect]\nok = true\n",
    );
    let r = iotls(["lesson", "check", ok.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(
        r.stdout.contains("keys (operations): [expect] met"),
        "{}",
        r.show()
    );
    let t: Trace = serde_json::from_str(&iotls(["tour", ok.to_str().unwrap(), "--json"]).stdout)
        .expect("a trace");
    assert_eq!(t.scenario, "public-key-basics");
    let wrong = write(
        &dir,
        "wrong.toml",
        "format = \"iotls-walkthrough/1\"\nid = \"w\"\ntitle = \"W\"\n\
         operations = \"public-key-basics\"\n[expect]\nok = false\n",
    );
    let r = iotls(["lesson", "check", wrong.to_str().unwrap()]);
    assert_eq!(r.code, Some(6), "{}", r.show());
    assert!(r.stdout.contains("expect.ok"), "{}", r.show());
    // By id, as before walkthrough files name them.
    let r = iotls(["tour", "forward-secrecy", "--plain"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[words]` is the lesson's: a lesson can rename its device's action, and a value that would not
/// fit one sentence is refused with its key.
#[test]
fn a_lessons_words_name_its_device_and_are_checked() {
    let r = iotls([
        "tour",
        "pizza-button",
        "--set",
        "words.publish=The lamp is switched on",
        "--plain",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(
        r.stdout
            .contains("The lamp is switched on: the device publishes")
            && !r.stdout.contains("The button is pressed"),
        "{}",
        r.show()
    );
    let long = format!("words.payload={}", "x".repeat(41));
    let r = iotls(["tour", "pizza-button", "--set", &long, "--plain"]);
    assert_eq!(r.code, Some(3), "{}", r.show());
    assert!(r.stderr.contains("words.payload"), "{}", r.show());
    let r = iotls([
        "tour",
        "pizza-button",
        "--set",
        "words.colour=red",
        "--plain",
    ]);
    assert_eq!(r.code, Some(3), "an unknown key: {}", r.show());
}
