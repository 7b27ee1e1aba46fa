//! The built-in lessons: each is a scenario that runs for real and shows one idea of the security
//! model (../shared/SECURITY-MODEL.md), including what a failure looks like.

use super::policy_authz::PolicyAuthorizer;
use super::scenario::{click_payload, DeviceAction, Scenario};
use super::EngineError;
use crate::pki::{DefaultPki, BUTTON_SERIAL, NEIGHBOUR_SERIAL, NEIGHBOUR_THING};
use std::sync::Arc;

/// Lesson names and what each shows.
pub const LESSONS: &[(&str, &str)] = &[
    (
        "pizza-button",
        "the button orders a pizza: mutual TLS, then a publish to its own topic (default)",
    ),
    (
        "untrusted-device",
        "a counterfeit button whose certificate comes from a CA the broker does not trust",
    ),
    (
        "wrong-host",
        "the device asks for another host name than the broker's certificate names",
    ),
    (
        "neighbour",
        "a customer's button publishes to the neighbour's topic: least privilege says no",
    ),
    (
        "inactive-cert",
        "the button's certificate was deactivated in the registry: refused after a good handshake",
    ),
];

/// The scenario of a lesson, with a fresh PKI.
pub fn scenario(name: &str) -> Result<Scenario, EngineError> {
    let pki = DefaultPki::generate()?;
    let mut s = Scenario::from_pki(&pki);
    s.name = name.to_string();
    match name {
        "pizza-button" => {}
        "untrusted-device" => {
            s.device.identity = pki.rogue_button.clone();
        }
        "wrong-host" => {
            s.device.server_name = "mqtt.other-shop.example".into();
        }
        "neighbour" => {
            // The neighbour's own, genuine, registered button — reprogrammed to order on button 1's topic.
            s.device.identity = pki.neighbour.clone();
            s.device.client_id = NEIGHBOUR_THING.into();
            s.device.actions = vec![DeviceAction::Publish {
                topic: format!("iotbutton/{BUTTON_SERIAL}"),
                payload: click_payload(NEIGHBOUR_SERIAL, "SINGLE"),
                qos: 1,
                retain: false,
            }];
        }
        "inactive-cert" => {
            s.broker.authorizer =
                Arc::new(PolicyAuthorizer::pizza_default(&pki).with_button_inactive(&pki));
        }
        other => {
            let names: Vec<&str> = LESSONS.iter().map(|(n, _)| *n).collect();
            return Err(EngineError::UnknownLesson {
                name: other.to_string(),
                known: names.join(", "),
            });
        }
    }
    Ok(s)
}
