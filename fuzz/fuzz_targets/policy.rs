//! Policy documents from arbitrary bytes: the strict JSON reader (src/json.rs) and the policy
//! parser; a document that parses is evaluated against fixed requests of every action and linted.
//! The same text is also read as a registry file.
#![no_main]

use std::sync::OnceLock;

use iotls::pki::{DefaultPki, BUTTON_THING};
use iotls::policy::{self, lint, resource_arn, Action, Policy, Registry, RequestContext};
use libfuzzer_sys::fuzz_target;

/// The button's certificate and a request context with its certificate variables, its thing and
/// a source address, as the broker builds it.
fn context() -> &'static RequestContext {
    static CTX: OnceLock<RequestContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let pki = DefaultPki::generate().expect("the default PKI");
        let der = pki.button.leaf().to_vec();
        let registry = Registry::pizza_default(&der, BUTTON_THING);
        let mut ctx = registry.context_for(&der, BUTTON_THING, Some([192, 0, 2, 7].into()));
        ctx.connect_attrs = vec!["PersistentConnect".into(), "LastWill".into()];
        ctx.last_will_topic = Some("iotbutton/last-will".into());
        ctx
    })
}

const RESOURCES: [&str; 6] = [
    "iotbutton/G030JF055364XVRB",
    "pizza-button-0042",
    "room/+/hello",
    "a/#",
    "$aws/things/pizza-button-0042/shadow/update",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = iotls::json::from_str_strict(text);
    let _ = Registry::from_json("fuzz", text);
    let Ok(p) = Policy::parse("fuzz", "fuzz.json", text) else {
        return;
    };
    for f in lint(&p) {
        assert!(!f.message.is_empty());
    }
    let ctx = context();
    let policies = [p];
    for action in Action::ALL {
        for r in RESOURCES {
            let arn = resource_arn(policy::DEFAULT_REGION, policy::DEFAULT_ACCOUNT, action, r);
            let d = policy::evaluate(&policies, action, &arn, ctx);
            let _ = d.lines();
            let _ = d.detail();
        }
    }
});
