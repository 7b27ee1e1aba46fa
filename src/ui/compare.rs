//! Break it: what changed between two runs. Runs are compared by the structure of their steps —
//! who sent which message or packet, which check gave which verdict, which policy decision — never
//! by bytes, keys or times, which differ in every run.

use super::steps::{self, Step};
use crate::trace::{EventKind, MqttPacketType, Side, Trace};

/// One step, in the words the comparison uses: `device → broker: ClientHello`,
/// `broker: check client_chain ✘`, `broker: policy iot:Publish IMPLICIT_DENY`.
pub fn step_key(trace: &Trace, step: &Step) -> String {
    let Some(e) = step.event(trace) else {
        return "(no event)".into();
    };
    let arrow = |label: &str| {
        if e.side == Side::Iotls {
            format!("iotls: {label}")
        } else {
            format!("{} → {}: {label}", e.side.name(), e.side.peer().name())
        }
    };
    match &e.kind {
        EventKind::Check { check, ok, .. } => {
            format!("{}: check {check} {}", e.side.name(), mark(*ok))
        }
        EventKind::Policy(p) => format!(
            "{}: policy {} {}",
            e.side.name(),
            p.action.iot_name(),
            p.decision.as_str()
        ),
        EventKind::AppData { .. } => match step.packet(trace) {
            Some(p) => {
                // A refusal's code is part of what happened; a success's words differ between
                // MQTT 3.1.1 and 5 (Connection Accepted, Success) and are not.
                let refused = match p.reason_code {
                    Some(c) if p.packet == MqttPacketType::ConnAck => c != 0,
                    Some(c) => c >= 0x80,
                    None => p.reason_codes.iter().any(|c| *c >= 0x80),
                };
                match (&p.code, refused) {
                    (Some(words), true) => arrow(&format!("MQTT {} {words}", p.packet.name())),
                    _ => arrow(&format!("MQTT {}", p.packet.name())),
                }
            }
            None => arrow("application data"),
        },
        EventKind::Undecodable { .. } => arrow("bytes that are not TLS"),
        _ => match steps::shape(trace, step) {
            steps::Shape::Arrow { label, .. } => arrow(&label),
            steps::Shape::Note { label, ok, .. } => match ok {
                Some(ok) => format!("{}: {label} {}", e.side.name(), mark(ok)),
                None => format!("{}: {label}", e.side.name()),
            },
            steps::Shape::Span { label, ok } => match ok {
                Some(ok) => format!("{label} {}", mark(ok)),
                None => label,
            },
        },
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✔"
    } else {
        "✘"
    }
}

/// Where two runs first part: the step's number (from 0) and what each run did there (`None`:
/// that run had ended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub step: usize,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The first step at which `after` differs from `before`; `None` when every step is alike.
pub fn first_difference(before: &Trace, after: &Trace) -> Option<Difference> {
    let a: Vec<String> = steps::steps(before)
        .iter()
        .map(|s| step_key(before, s))
        .collect();
    let b: Vec<String> = steps::steps(after)
        .iter()
        .map(|s| step_key(after, s))
        .collect();
    let n = a.len().max(b.len());
    (0..n).find(|i| a.get(*i) != b.get(*i)).map(|i| Difference {
        step: i,
        before: a.get(i).cloned(),
        after: b.get(i).cloned(),
    })
}

/// The comparison screen after a break-it run: the swap, where the runs part, both outcomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// The swap in plain words.
    pub label: String,
    /// Its `--set`s as the command line takes them.
    pub command: String,
    pub difference: Option<Difference>,
    /// Each run's outcome line.
    pub before: String,
    pub after: String,
    /// What the run before was, when it is not simply the one that was on screen.
    pub note: Option<String>,
}

impl Comparison {
    pub fn new(label: &str, command: &str, before: &Trace, after: &Trace) -> Comparison {
        Comparison {
            label: label.to_string(),
            command: command.to_string(),
            difference: first_difference(before, after),
            before: outcome_line(before),
            after: outcome_line(after),
            note: None,
        }
    }

    /// The comparison as lines of text (the overlay's content).
    pub fn lines(&self) -> Vec<String> {
        let mut v = vec![
            format!("Swapped: {}", self.label),
            format!("  {}", self.command),
            String::new(),
        ];
        if let Some(n) = &self.note {
            v.push(format!("  {n}"));
            v.push(String::new());
        }
        match &self.difference {
            Some(d) => {
                let said =
                    |s: &Option<String>| s.clone().unwrap_or_else(|| "(the run had ended)".into());
                v.push(format!("First difference, step {}:", d.step + 1));
                v.push(format!("  before: {}", said(&d.before)));
                v.push(format!("  now:    {}", said(&d.after)));
            }
            None => v.push("Every step is alike: the swap changed no step of the run.".into()),
        }
        v.push(String::new());
        v.push("Outcome before:".into());
        v.push(format!("  {}", self.before));
        v.push("Outcome now:".into());
        v.push(format!("  {}", self.after));
        v
    }
}

/// A run's outcome in one line, with its failure code when it failed.
pub fn outcome_line(t: &Trace) -> String {
    let mark = if t.outcome.ok { "✔" } else { "✘" };
    match &t.outcome.failure {
        Some(f) => format!("{mark} {} [{}]", t.outcome.summary, f.code.as_str()),
        None => format!("{mark} {}", t.outcome.summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::mqtt_io::Version;

    fn run(id: &str, sets: &[&str], v: Version) -> Trace {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let l = crate::walkthrough::load(id, &sets).expect("loads");
        l.run(Some(v)).expect("runs")
    }

    #[test]
    fn an_expired_button_first_differs_at_the_brokers_client_chain_check() {
        let before = run("pizza-button", &[], Version::V4);
        let after = run("pizza-button", &["pki.button.not_after=-1d"], Version::V4);
        let d = first_difference(&before, &after).expect("the runs differ");
        assert_eq!(d.before.as_deref(), Some("broker: check client_chain ✔"));
        assert_eq!(d.after.as_deref(), Some("broker: check client_chain ✘"));
        let c = Comparison::new("expired", "--set pki.button.not_after=-1d", &before, &after);
        assert!(c.before.starts_with('✔'), "{}", c.before);
        assert!(
            c.after.starts_with('✘') && c.after.contains("[expired]"),
            "{}",
            c.after
        );
    }

    #[test]
    fn the_neighbour_on_mqtt_5_first_differs_at_the_refusal() {
        let before = run("neighbour", &[], Version::V4);
        let after = run("neighbour", &["device.mqtt=5"], Version::V4);
        let d = first_difference(&before, &after).expect("the runs differ");
        let now = d.after.clone().unwrap_or_default();
        assert!(now.contains("MQTT PUBACK 0x87"), "{d:?}");
        // Everything before it is alike: the same handshake, CONNECT and the same denial.
        let a = steps::steps(&after);
        assert!(a[..d.step]
            .iter()
            .any(|s| step_key(&after, s) == "broker: policy iot:Publish IMPLICIT_DENY"));
    }

    #[test]
    fn two_runs_of_the_same_lesson_do_not_differ() {
        let a = run("pizza-button", &[], Version::V4);
        let b = run("pizza-button", &[], Version::V4);
        assert_eq!(first_difference(&a, &b), None);
    }
}
