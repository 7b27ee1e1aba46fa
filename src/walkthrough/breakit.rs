//! Break it: the swaps the tour's `b` menu offers for a session lesson, each a label in plain
//! words and the `--set` overrides it stands for. They are derived from what the lesson really
//! has (its `[pki]` names, its registry's things and certificates, its device's actions), so a
//! lesson of your own gets the swaps that make sense for it.

use super::Lesson;
use crate::engine::mqtt_io::Version;

/// One way to break a lesson: what it does, in plain words, and the `--set`s that do it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swap {
    pub label: String,
    /// `KEY=VALUE` overrides, as `iotls tour LESSON --set …` takes them.
    pub sets: Vec<String>,
}

/// The swaps that apply to a lesson run under `version`. A lesson of operations has none.
pub fn swaps(lesson: &Lesson, version: Version) -> Vec<Swap> {
    let mut out = Vec::new();
    if lesson.operations.is_some() {
        return out;
    }
    let spec = &lesson.spec;
    let pki = spec.pki.clone().unwrap_or_default();
    let device = spec.device.clone().unwrap_or_default();
    let identity = device.identity.clone().unwrap_or_default();
    let trust = device.trust.clone().unwrap_or_default();
    let cert = pki.get(&identity);

    // The device trusts a root it should not: a self-signed CA of the PKI it does not trust.
    if let Some((name, c)) = pki
        .iter()
        .find(|(n, c)| c.ca == Some(true) && c.issuer.is_none() && !trust.contains(n))
    {
        out.push(Swap {
            label: format!(
                "the device trusts another root: {}",
                c.cn.clone().unwrap_or_else(|| name.clone())
            ),
            sets: vec![format!("device.trust=[\"{name}\"]")],
        });
    }
    // The device's certificate expired yesterday (one made by the lesson, not a file).
    if cert.is_some_and(|c| c.pem.is_none()) {
        out.push(Swap {
            label: format!("the device's certificate ({identity}) expired yesterday"),
            sets: vec![format!("pki.{identity}.not_after=-1d")],
        });
    }
    let registry = spec
        .broker
        .as_ref()
        .and_then(|b| b.registry.clone())
        .unwrap_or_default();
    // Another registered thing's name as the client id.
    let client_id = device.client_id.clone().unwrap_or_default();
    if let Some(t) = registry
        .things
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|t| t.name != client_id)
    {
        out.push(Swap {
            label: format!(
                "the device connects with another thing's client id: {}",
                t.name
            ),
            sets: vec![format!("device.client_id={}", t.name)],
        });
    }
    // The first publish on another certificate's topic: the serial numbers in the topic swapped.
    let own = cert.and_then(|c| c.serial_number.clone());
    let others: Vec<String> = pki
        .iter()
        .filter(|(n, c)| **n != identity && c.ca != Some(true))
        .filter_map(|(_, c)| c.serial_number.clone())
        .filter(|s| Some(s) != own.as_ref())
        .collect();
    let actions = device.actions.clone().unwrap_or_default();
    if let (Some(own), Some((i, topic))) = (
        own.as_ref(),
        actions
            .iter()
            .enumerate()
            .find_map(|(i, a)| a.publish.clone().map(|t| (i, t))),
    ) {
        let swapped = if topic.contains(own.as_str()) {
            others.first().map(|o| {
                (
                    "the device publishes to the neighbour's topic",
                    topic.replace(own.as_str(), o),
                )
            })
        } else {
            others.iter().find(|o| topic.contains(o.as_str())).map(|o| {
                (
                    "the device publishes to its own topic",
                    topic.replace(o.as_str(), own),
                )
            })
        };
        if let Some((label, t)) = swapped {
            out.push(Swap {
                label: format!("{label}: {t}"),
                sets: vec![format!("device.actions.{i}.publish={t}")],
            });
        }
    }
    // The device's certificate loses its policies in the registry.
    if let Some(j) = registry
        .certificates
        .as_deref()
        .unwrap_or_default()
        .iter()
        .position(|c| {
            c.cert.as_deref() == Some(identity.as_str())
                && c.policies.as_ref().is_some_and(|p| !p.is_empty())
        })
    {
        out.push(Swap {
            label: "no policy attached to the device's certificate".to_string(),
            sets: vec![format!("broker.registry.certificates.{j}.policies=[]")],
        });
    }
    // The other MQTT version.
    let on = lesson.mqtt.unwrap_or(version);
    out.push(if on == Version::V5 {
        Swap {
            label: "the device speaks MQTT 3.1.1 instead of 5".to_string(),
            sets: vec!["device.mqtt=3.1.1".to_string()],
        }
    } else {
        Swap {
            label: "the device speaks MQTT 5: a refusal comes back with a reason code".to_string(),
            sets: vec!["device.mqtt=5".to_string()],
        }
    });
    out
}

/// How a swap is written on the command line: `--set KEY=VALUE`, quoted for a shell when the
/// value needs it.
pub fn command_line(sets: &[String]) -> String {
    sets.iter()
        .map(|s| {
            if s.chars()
                .any(|c| !(c.is_ascii_alphanumeric() || "._-/=:+,@".contains(c)))
            {
                format!("--set '{s}'")
            } else {
                format!("--set {s}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets_of(id: &str, v: Version) -> Vec<Vec<String>> {
        let l = super::super::load(id, &[]).expect("loads");
        swaps(&l, v).into_iter().map(|s| s.sets).collect()
    }

    #[test]
    fn pizza_button_swaps_name_its_own_keys() {
        let s = sets_of("pizza-button", Version::V4);
        assert_eq!(
            s,
            vec![
                vec![r#"device.trust=["rogue-root"]"#.to_string()],
                vec!["pki.button.not_after=-1d".to_string()],
                vec!["device.client_id=pizza-button-2".to_string()],
                vec!["device.actions.0.publish=iotbutton/G030JF055365XVRC".to_string()],
                vec!["broker.registry.certificates.0.policies=[]".to_string()],
                vec!["device.mqtt=5".to_string()],
            ]
        );
    }

    #[test]
    fn the_neighbour_gets_its_own_topic_and_the_other_version() {
        let s = sets_of("neighbour", Version::V5);
        assert!(s.contains(&vec!["device.client_id=pizza-button-1".to_string()]));
        assert!(s.contains(&vec!["pki.neighbour.not_after=-1d".to_string()]));
        assert!(s.contains(&vec![
            "device.actions.0.publish=iotbutton/G030JF055365XVRC".to_string()
        ]));
        assert!(s.contains(&vec![
            "broker.registry.certificates.1.policies=[]".to_string()
        ]));
        assert!(s.contains(&vec!["device.mqtt=3.1.1".to_string()]));
    }

    #[test]
    fn every_swap_of_every_built_in_lesson_loads_and_runs() {
        for id in super::super::ids() {
            let l = super::super::load(id, &[]).expect("loads");
            for s in swaps(&l, Version::V4) {
                let broken = super::super::load(id, &s.sets).unwrap_or_else(|e| {
                    panic!("{id}: {} ({:?}) does not load: {e}", s.label, s.sets)
                });
                if let Err(e) = broken.run(Some(broken.mqtt.unwrap_or(Version::V4))) {
                    panic!("{id}: {} ({:?}) does not run: {e}", s.label, s.sets);
                }
            }
        }
    }

    #[test]
    fn a_lesson_of_operations_has_nothing_to_swap() {
        let l = super::super::load("public-key-basics", &[]).expect("loads");
        assert!(swaps(&l, Version::V4).is_empty());
    }

    #[test]
    fn command_line_quotes_what_a_shell_would_break() {
        assert_eq!(
            command_line(&[r#"device.trust=["rogue-root"]"#.to_string()]),
            r#"--set 'device.trust=["rogue-root"]'"#
        );
        assert_eq!(
            command_line(&["pki.button.not_after=-1d".to_string()]),
            "--set pki.button.not_after=-1d"
        );
    }
}
