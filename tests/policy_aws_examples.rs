//! AWS IoT Core's documented policy examples, evaluated: each row cites the page it comes from and
//! expects the answer that page gives.

use iotls::policy::{
    evaluate, lint, resource_arn, Action, Basis, CertVars, Policy, RequestContext, ThingContext,
    DEFAULT_ACCOUNT, DEFAULT_REGION,
};
use std::sync::Arc;

const PUBSUB: &str = "https://docs.aws.amazon.com/iot/latest/developerguide/pub-sub-policy.html";
const CONNECT: &str = "https://docs.aws.amazon.com/iot/latest/developerguide/connect-policy.html";
const CONNECT_PUB: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/connect-and-pub.html";
const THING_EX: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-examples.html";
const THING_VARS: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html";
const CERT_VARS: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/cert-policy-variables.html";
const CERT_LIMITS: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/use-policy-variables.html#policy-limits";
const CERT_EX: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/certificate-policy-examples.html";
const RETAINED: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/retained-message-policy-examples.html";
const BASIC: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/basic-policy-variables.html";
const POLICY_VARS: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-variables.html";
const IAM_VARS: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html";
const MISCONFIG: &str = "https://docs.aws.amazon.com/iot/latest/developerguide/audit-chk-iot-misconfigured-policies.html";
const PERMISSIVE: &str = "https://docs.aws.amazon.com/iot-device-defender/latest/devguide/audit-chk-iot-policy-permissive.html";

/// Wraps statements in a document (the examples' ARNs: us-east-1, 123456789012).
fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

/// A request context.
#[derive(Clone)]
struct Ctx(RequestContext);

impl Ctx {
    fn client(id: &str) -> Ctx {
        let mut c = RequestContext::new(id);
        c.cert = Some(CertVars {
            certificate_id: "ab".repeat(32),
            serial_number: "4660".into(),
            ..CertVars::default()
        });
        Ctx(c)
    }
    /// The client id is the name of a thing attached to the certificate.
    fn thing(id: &str) -> Ctx {
        Ctx::client(id).with_thing(id, true)
    }
    fn with_thing(mut self, name: &str, attached: bool) -> Ctx {
        self.0.thing = Some(ThingContext {
            name: name.into(),
            is_attached: attached,
            ..ThingContext::default()
        });
        self
    }
    fn thing_type(mut self, t: &str) -> Ctx {
        self.0.thing.as_mut().expect("thing").type_name = Some(t.into());
        self
    }
    fn thing_attr(mut self, k: &str, v: &str) -> Ctx {
        self.0
            .thing
            .as_mut()
            .expect("thing")
            .attributes
            .insert(k.into(), v.into());
        self
    }
    fn subject(mut self, attr: &str, values: &[&str]) -> Ctx {
        let cert = self.0.cert.as_mut().expect("cert");
        cert.subject
            .insert(attr.into(), values.iter().map(|s| s.to_string()).collect());
        self
    }
    fn connect_attrs(mut self, a: &[&str]) -> Ctx {
        self.0.connect_attrs = a.iter().map(|s| s.to_string()).collect();
        self
    }
    fn ip(mut self, ip: &str) -> Ctx {
        self.0.source_ip = Some(ip.parse().expect("ip"));
        self
    }
}

struct Case {
    source: &'static str,
    policy: String,
    ctx: Ctx,
    action: Action,
    resource: &'static str,
    want: &'static str,
}

fn case(
    source: &'static str,
    policy: &str,
    ctx: Ctx,
    action: Action,
    resource: &'static str,
    want: &'static str,
) -> Case {
    Case {
        source,
        policy: policy.to_string(),
        ctx,
        action,
        resource,
        want,
    }
}

/// What a broker records for the decision `d` (the request, the answer, the policies and context
/// it was evaluated against) explained as the trace's `policy` event explains it, at assembly: a
/// difference from `d`'s own explanation, if any.
fn compact_differs(p: Policy, c: &Case, d: &iotls::policy::Decision) -> Option<String> {
    use iotls::engine::authz::PendingPolicy;
    use iotls::trace::{EventKind, PolicyAction};
    let action = match c.action {
        Action::Connect => PolicyAction::Connect,
        Action::Publish => PolicyAction::Publish,
        Action::RetainPublish => PolicyAction::RetainPublish,
        Action::Subscribe => PolicyAction::Subscribe,
        Action::Receive => PolicyAction::Receive,
    };
    let basis = Arc::new(Basis::new(vec![Arc::new(p)], &c.ctx.0));
    let EventKind::Policy(e) = PendingPolicy::new(action, d.kind, c.resource, basis).resolve()
    else {
        return Some("the recorded decision is not explained as a policy event".into());
    };
    if e.resource != d.resource {
        return Some(format!(
            "recorded resource {} vs {}",
            e.resource, d.resource
        ));
    }
    if e.lines != d.lines() {
        return Some(format!(
            "explained at assembly:\n{}\nexplained when decided:\n{}",
            e.lines.join("\n"),
            d.lines().join("\n")
        ));
    }
    if e.detail != d.detail() {
        return Some(format!(
            "detail at assembly {} vs when decided {}",
            e.detail,
            d.detail()
        ));
    }
    None
}

fn check(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let p = Policy::parse("Example", c.source, &c.policy)
            .unwrap_or_else(|e| panic!("row {i}: {e}"));
        let arn = resource_arn(DEFAULT_REGION, DEFAULT_ACCOUNT, c.action, c.resource);
        let d = evaluate(&[&p], c.action, &arn, &c.ctx.0);
        if let Some(why) = compact_differs(p, c, &d) {
            failures.push(format!("row {i} ({}): {why}", c.source));
        }
        if d.kind.as_str() != c.want {
            failures.push(format!(
                "row {i} ({}): {} {} as {:?}: got {}, want {}\n{}",
                c.source,
                c.action,
                c.resource,
                c.ctx.0.client_id,
                d.kind.as_str(),
                c.want,
                d.lines().join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

use Action::*;

#[test]
fn publish_subscribe_examples() {
    let registered5 = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
           {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*"]}"#,
    );
    let unregistered5 = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1","arn:aws:iot:us-east-1:123456789012:client/client2","arn:aws:iot:us-east-1:123456789012:client/client3"]},
           {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"]}"#,
    );
    let rooms = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
           {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/${iot:Connection.Thing.ThingName}/room*"]},
           {"Effect":"Allow","Action":["iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/room*"]}"#,
    );
    let plus_literal = doc(
        r#"{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/some/+/topic"]}"#,
    );
    let star = doc(
        r#"{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/some/*/topic"]}"#,
    );
    let question = doc(
        r#"{"Effect":"Allow","Action":["iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/some/?????/topic"]}"#,
    );
    let deny_bar = doc(
        r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"]},
           {"Effect":"Deny","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/bar"]}"#,
    );
    let sub_a_deny_restricted = r#"{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/a/*"},
           {"Effect":"Deny","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/a/restricted/*"}"#;
    let with_receive = doc(&format!(
        r#"{sub_a_deny_restricted},
           {{"Effect":"Allow","Action":"iot:Receive","NotResource":"arn:aws:iot:us-east-1:123456789012:topic/a/restricted/*"}}"#
    ));
    let deny_receive = doc(
        r#"{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/device/update"},
           {"Effect":"Deny","Action":"iot:Receive","Resource":"arn:aws:iot:us-east-1:123456789012:topic/device/update"}"#,
    );
    check(vec![
        case(
            PUBSUB,
            &registered5,
            Ctx::thing("thing1"),
            Connect,
            "thing1",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &registered5,
            Ctx::thing("thing1"),
            Publish,
            "thing1/a/b",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &registered5,
            Ctx::thing("thing1"),
            Publish,
            "thing2/a",
            "IMPLICIT_DENY",
        ),
        case(
            PUBSUB,
            &registered5,
            Ctx::client("stranger"),
            Connect,
            "stranger",
            "IMPLICIT_DENY",
        ),
        case(
            PUBSUB,
            &unregistered5,
            Ctx::client("client2"),
            Connect,
            "client2",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &unregistered5,
            Ctx::client("client4"),
            Connect,
            "client4",
            "IMPLICIT_DENY",
        ),
        case(
            PUBSUB,
            &unregistered5,
            Ctx::client("client1"),
            Publish,
            "client1/x",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &unregistered5,
            Ctx::client("client1"),
            Publish,
            "client2/x",
            "IMPLICIT_DENY",
        ),
        case(
            PUBSUB,
            &rooms,
            Ctx::thing("thing1"),
            Subscribe,
            "thing1/room1",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &rooms,
            Ctx::thing("thing1"),
            Receive,
            "thing1/room2",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &rooms,
            Ctx::thing("thing1"),
            Subscribe,
            "thing1/kitchen",
            "IMPLICIT_DENY",
        ),
        case(
            PUBSUB,
            &rooms,
            Ctx::thing("thing1"),
            Subscribe,
            "thing2/room1",
            "IMPLICIT_DENY",
        ),
        // "+ is treated as a literal string … only the string some/+/topic matches"
        case(
            PUBSUB,
            &plus_literal,
            Ctx::client("c"),
            Subscribe,
            "some/+/topic",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &plus_literal,
            Ctx::client("c"),
            Subscribe,
            "some/string1/topic",
            "IMPLICIT_DENY",
        ),
        case(
            PUBSUB,
            &star,
            Ctx::client("c"),
            Subscribe,
            "some/string1/topic",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &star,
            Ctx::client("c"),
            Subscribe,
            "some/+/topic",
            "ALLOWED",
        ),
        // `*` is not confined to one level the way `+` is
        case(
            PUBSUB,
            &star,
            Ctx::client("c"),
            Subscribe,
            "some/a/b/topic",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &question,
            Ctx::client("c"),
            Receive,
            "some/abcde/topic",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &question,
            Ctx::client("c"),
            Receive,
            "some/abcdef/topic",
            "IMPLICIT_DENY",
        ),
        case(
            PUBSUB,
            &deny_bar,
            Ctx::client("client1"),
            Publish,
            "client1/foo",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &deny_bar,
            Ctx::client("client1"),
            Publish,
            "client1/bar",
            "EXPLICIT_DENY",
        ),
        // The Subscribe-vs-Receive bypass: `a/#` is not denied by the Deny on `a/restricted/*` …
        case(
            PUBSUB,
            &doc(sub_a_deny_restricted),
            Ctx::client("c"),
            Subscribe,
            "a/#",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &doc(sub_a_deny_restricted),
            Ctx::client("c"),
            Subscribe,
            "a/restricted/x",
            "EXPLICIT_DENY",
        ),
        // … and the documented fix: Receive everywhere except a/restricted/…
        case(
            PUBSUB,
            &with_receive,
            Ctx::client("c"),
            Receive,
            "a/restricted/secret",
            "IMPLICIT_DENY",
        ),
        case(
            PUBSUB,
            &with_receive,
            Ctx::client("c"),
            Receive,
            "a/open",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &deny_receive,
            Ctx::client("c"),
            Subscribe,
            "device/update",
            "ALLOWED",
        ),
        case(
            PUBSUB,
            &deny_receive,
            Ctx::client("c"),
            Receive,
            "device/update",
            "EXPLICIT_DENY",
        ),
    ]);
}

#[test]
fn connect_examples() {
    let deny_two = doc(
        r#"{"Effect":"Deny","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/client1","arn:aws:iot:us-east-1:123456789012:client/client2"]},
           {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"],
            "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}"#,
    );
    let persistent_only = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}"#,
    );
    let no_persistent = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringNotEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}"#,
    );
    let deny_persistent = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*"},
           {"Effect":"Deny","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAnyValue:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}"#,
    );
    let defaults_only = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":[]}}}"#,
    );
    let must_persist = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAnyValue:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}"#,
    );
    let both = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["PersistentConnect","LastWill"]}}},
           {"Effect":"Deny","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}},
           {"Effect":"Deny","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["LastWill"]}}},
           {"Effect":"Deny","Action":["iot:Connect"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":[]}}}"#,
    );
    check(vec![
        case(
            CONNECT,
            &deny_two,
            Ctx::thing("client1"),
            Connect,
            "client1",
            "EXPLICIT_DENY",
        ),
        case(
            CONNECT,
            &deny_two,
            Ctx::thing("sensor"),
            Connect,
            "sensor",
            "ALLOWED",
        ),
        case(
            CONNECT,
            &deny_two,
            Ctx::client("sensor").with_thing("sensor", false),
            Connect,
            "sensor",
            "IMPLICIT_DENY",
        ),
        case(
            CONNECT,
            &deny_two,
            Ctx::client("nothing"),
            Connect,
            "nothing",
            "IMPLICIT_DENY",
        ),
        case(
            CONNECT,
            &persistent_only,
            Ctx::client("c").connect_attrs(&["PersistentConnect"]),
            Connect,
            "c",
            "ALLOWED",
        ),
        case(
            CONNECT,
            &persistent_only,
            Ctx::client("c").connect_attrs(&["LastWill"]),
            Connect,
            "c",
            "IMPLICIT_DENY",
        ),
        case(
            CONNECT,
            &no_persistent,
            Ctx::client("c").connect_attrs(&["PersistentConnect"]),
            Connect,
            "c",
            "IMPLICIT_DENY",
        ),
        case(
            CONNECT,
            &no_persistent,
            Ctx::client("c").connect_attrs(&["LastWill"]),
            Connect,
            "c",
            "ALLOWED",
        ),
        case(
            CONNECT,
            &deny_persistent,
            Ctx::client("c").connect_attrs(&["LastWill", "PersistentConnect"]),
            Connect,
            "c",
            "EXPLICIT_DENY",
        ),
        case(
            CONNECT,
            &deny_persistent,
            Ctx::client("c").connect_attrs(&["LastWill"]),
            Connect,
            "c",
            "ALLOWED",
        ),
        case(
            CONNECT,
            &defaults_only,
            Ctx::client("c"),
            Connect,
            "c",
            "ALLOWED",
        ),
        case(
            CONNECT,
            &defaults_only,
            Ctx::client("c").connect_attrs(&["LastWill"]),
            Connect,
            "c",
            "IMPLICIT_DENY",
        ),
        case(
            CONNECT,
            &must_persist,
            Ctx::client("c"),
            Connect,
            "c",
            "IMPLICIT_DENY",
        ),
        case(
            CONNECT,
            &must_persist,
            Ctx::client("c").connect_attrs(&["PersistentConnect", "LastWill"]),
            Connect,
            "c",
            "ALLOWED",
        ),
        case(
            CONNECT,
            &both,
            Ctx::client("c").connect_attrs(&["PersistentConnect", "LastWill"]),
            Connect,
            "c",
            "ALLOWED",
        ),
        case(
            CONNECT,
            &both,
            Ctx::client("c").connect_attrs(&["PersistentConnect"]),
            Connect,
            "c",
            "EXPLICIT_DENY",
        ),
        case(
            CONNECT,
            &both,
            Ctx::client("c"),
            Connect,
            "c",
            "EXPLICIT_DENY",
        ),
    ]);
}

#[test]
fn thing_examples() {
    let attached = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":["*"],"Condition":{"Bool":{"iot:Connection.Thing.IsAttached":["true"]}}}"#,
    );
    let typed = doc(
        r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/device/stats",
            "Condition":{"StringEquals":{"iot:Connection.Thing.Attributes[attributeName]":"attributeValue","iot:Connection.Thing.ThingTypeName":"Thing_Type_Name"},
                         "Bool":{"iot:Connection.Thing.IsAttached":"true"}}}"#,
    );
    let attr_topic = doc(
        r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.Attributes[attributeName]}/*"}"#,
    );
    let good = || {
        Ctx::thing("t1")
            .thing_type("Thing_Type_Name")
            .thing_attr("attributeName", "attributeValue")
    };
    check(vec![
        case(
            THING_EX,
            &attached,
            Ctx::thing("t1"),
            Connect,
            "t1",
            "ALLOWED",
        ),
        case(
            THING_EX,
            &attached,
            Ctx::client("t1").with_thing("t1", false),
            Connect,
            "t1",
            "IMPLICIT_DENY",
        ),
        case(
            THING_EX,
            &attached,
            Ctx::client("t1"),
            Connect,
            "t1",
            "IMPLICIT_DENY",
        ),
        case(THING_EX, &typed, good(), Publish, "device/stats", "ALLOWED"),
        case(
            THING_EX,
            &typed,
            Ctx::thing("t1")
                .thing_type("Other")
                .thing_attr("attributeName", "attributeValue"),
            Publish,
            "device/stats",
            "IMPLICIT_DENY",
        ),
        case(
            THING_EX,
            &typed,
            Ctx::thing("t1").thing_type("Thing_Type_Name"),
            Publish,
            "device/stats",
            "IMPLICIT_DENY",
        ),
        case(
            THING_EX,
            &attr_topic,
            good(),
            Publish,
            "attributeValue/x",
            "ALLOWED",
        ),
        // "If the device certificate is not associated with the thing, this variable won't be
        // resolved and will result in an access denied error."
        case(
            THING_EX,
            &attr_topic,
            Ctx::client("t1")
                .with_thing("t1", false)
                .thing_attr("attributeName", "attributeValue"),
            Publish,
            "attributeValue/x",
            "IMPLICIT_DENY",
        ),
        // "the value of clientId … must exactly match the thing name"
        case(
            THING_VARS,
            &attr_topic,
            Ctx::client("other")
                .with_thing("t1", true)
                .thing_attr("attributeName", "attributeValue"),
            Publish,
            "attributeValue/x",
            "IMPLICIT_DENY",
        ),
    ]);
}

#[test]
fn certificate_variable_examples() {
    let org_list = doc(
        r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:ClientId}"],
            "Condition":{"ForAllValues:StringEquals":{"iot:Certificate.Subject.Organization.List":["Example Corp","AnyCompany"]}}}"#,
    );
    let country_1 = doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.Country.1}"}"#,
    );
    let country = doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.Country}"}"#,
    );
    let cert_id = doc(
        r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:CertificateId}"]}"#,
    );
    let cn = doc(
        r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.CommonName}"]}"#,
    );
    let cn2 = doc(
        r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/admin/*"],
            "Condition":{"StringEquals":{"iot:Certificate.Subject.CommonName.2":"Administrator"}}}"#,
    );
    let cn_any = doc(
        r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/admin"],
            "Condition":{"ForAnyValue:StringEquals":{"iot:Certificate.Subject.CommonName.List":"Administrator"}}}"#,
    );
    let serial = doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/iotbutton/${iot:Certificate.SerialNumber}"}"#,
    );
    let id = "ab".repeat(32);
    let id: &'static str = Box::leak(id.into_boxed_str());
    check(vec![
        case(
            CERT_VARS,
            &org_list,
            Ctx::client("c1").subject("Organization", &["Example Corp"]),
            Publish,
            "my/topic/c1",
            "ALLOWED",
        ),
        case(
            CERT_VARS,
            &org_list,
            Ctx::client("c1").subject("Organization", &["AnyCompany", "Example Corp"]),
            Publish,
            "my/topic/c1",
            "ALLOWED",
        ),
        case(
            CERT_VARS,
            &org_list,
            Ctx::client("c1").subject("Organization", &["Example Corp", "Other Inc"]),
            Publish,
            "my/topic/c1",
            "IMPLICIT_DENY",
        ),
        // "iot:Certificate.Subject.Country.1 is replaced by the second country name"
        case(
            CERT_VARS,
            &country_1,
            Ctx::client("c").subject("Country", &["US", "CA"]),
            Publish,
            "CA",
            "ALLOWED",
        ),
        // "If you specify an index value that does not exist … authorization fails"
        case(
            CERT_VARS,
            &country_1,
            Ctx::client("c").subject("Country", &["US"]),
            Publish,
            "US",
            "IMPLICIT_DENY",
        ),
        // "By default … return the first value"
        case(
            CERT_VARS,
            &country,
            Ctx::client("c").subject("Country", &["US", "CA"]),
            Publish,
            "US",
            "ALLOWED",
        ),
        case(
            CERT_VARS,
            &country,
            Ctx::client("c").subject("Country", &["US", "CA"]),
            Publish,
            "CA",
            "IMPLICIT_DENY",
        ),
        case(
            CERT_VARS,
            &serial,
            Ctx::client("c"),
            Publish,
            "iotbutton/4660",
            "ALLOWED",
        ),
        case(CERT_EX, &cert_id, Ctx::client("c"), Publish, id, "ALLOWED"),
        case(
            CERT_EX,
            &cert_id,
            Ctx::client("c"),
            Publish,
            "someone-else",
            "IMPLICIT_DENY",
        ),
        case(
            CERT_EX,
            &cn,
            Ctx::client("c").subject("CommonName", &["kitchen-1"]),
            Publish,
            "kitchen-1",
            "ALLOWED",
        ),
        case(
            CERT_EX,
            &cn,
            Ctx::client("c").subject("CommonName", &["kitchen-1"]),
            Publish,
            "kitchen-2",
            "IMPLICIT_DENY",
        ),
        case(
            CERT_EX,
            &cn,
            Ctx::client("c"),
            Publish,
            "kitchen-1",
            "IMPLICIT_DENY",
        ),
        case(
            CERT_EX,
            &cn2,
            Ctx::client("c").subject("CommonName", &["a", "b", "Administrator"]),
            Publish,
            "admin/x",
            "ALLOWED",
        ),
        case(
            CERT_EX,
            &cn2,
            Ctx::client("c").subject("CommonName", &["Administrator"]),
            Publish,
            "admin/x",
            "IMPLICIT_DENY",
        ),
        case(
            CERT_EX,
            &cn_any,
            Ctx::client("c").subject("CommonName", &["x", "Administrator"]),
            Publish,
            "admin",
            "ALLOWED",
        ),
        case(
            CERT_EX,
            &cn_any,
            Ctx::client("c").subject("CommonName", &["x", "y"]),
            Publish,
            "admin",
            "IMPLICIT_DENY",
        ),
        // "If wildcard characters are present in certificate attributes, the policy variable is not replaced"
        case(
            CERT_LIMITS,
            &cn,
            Ctx::client("c").subject("CommonName", &["dev*"]),
            Publish,
            "dev*",
            "IMPLICIT_DENY",
        ),
        case(
            CERT_LIMITS,
            &cn,
            Ctx::client("c").subject("CommonName", &["dev*"]),
            Publish,
            "devices",
            "IMPLICIT_DENY",
        ),
        case(
            CERT_LIMITS,
            &cn,
            Ctx::client("c").subject("CommonName", &["a#b"]),
            Publish,
            "a#b",
            "IMPLICIT_DENY",
        ),
        // "Certificate attributes that contain arrays are limited to five items"
        case(
            CERT_LIMITS,
            &country_5(),
            Ctx::client("c").subject("Country", &["A", "B", "C", "D", "E", "F"]),
            Publish,
            "F",
            "IMPLICIT_DENY",
        ),
        case(
            CERT_LIMITS,
            &country_4(),
            Ctx::client("c").subject("Country", &["A", "B", "C", "D", "E", "F"]),
            Publish,
            "E",
            "ALLOWED",
        ),
    ]);
}

fn country_5() -> String {
    doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.Country.5}"}"#,
    )
}
fn country_4() -> String {
    doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.Country.4}"}"#,
    )
}

#[test]
fn retained_message_examples() {
    let retain = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/device1"]},
           {"Effect":"Allow","Action":["iot:Publish","iot:RetainPublish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/device/sample/configuration"]}"#,
    );
    let will = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/*"],"Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["LastWill"]}}},
           {"Effect":"Allow","Action":["iot:Publish","iot:RetainPublish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/will"]}"#,
    );
    let publish_only = doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/device/sample/configuration"}"#,
    );
    check(vec![
        case(
            RETAINED,
            &retain,
            Ctx::client("device1"),
            Connect,
            "device1",
            "ALLOWED",
        ),
        case(
            RETAINED,
            &retain,
            Ctx::client("device1"),
            Publish,
            "device/sample/configuration",
            "ALLOWED",
        ),
        case(
            RETAINED,
            &retain,
            Ctx::client("device1"),
            RetainPublish,
            "device/sample/configuration",
            "ALLOWED",
        ),
        case(
            RETAINED,
            &retain,
            Ctx::client("device1"),
            RetainPublish,
            "device/other",
            "IMPLICIT_DENY",
        ),
        case(
            RETAINED,
            &publish_only,
            Ctx::client("device1"),
            RetainPublish,
            "device/sample/configuration",
            "IMPLICIT_DENY",
        ),
        case(
            RETAINED,
            &will,
            Ctx::client("anyone").connect_attrs(&["LastWill"]),
            Connect,
            "anyone",
            "ALLOWED",
        ),
        case(
            RETAINED,
            &will,
            Ctx::client("anyone").connect_attrs(&["PersistentConnect"]),
            Connect,
            "anyone",
            "IMPLICIT_DENY",
        ),
        case(
            RETAINED,
            &will,
            Ctx::client("anyone"),
            RetainPublish,
            "will",
            "ALLOWED",
        ),
    ]);
}

#[test]
fn basic_variables_and_literals() {
    let basic = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"]},
           {"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:ClientId}"]}"#,
    );
    let filter = doc(
        r#"{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/my/${iot:ClientId}/topic"]}"#,
    );
    let literal_star = doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/a/${*}"}"#,
    );
    let literal_q = doc(
        r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/a${?}${$}"}"#,
    );
    let old_version = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/my/${iot:ClientId}"}}"#;
    let ip = doc(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32"]}}}"#,
    );
    check(vec![
        case(
            BASIC,
            &basic,
            Ctx::client("100-234-3456"),
            Connect,
            "100-234-3456",
            "ALLOWED",
        ),
        case(
            BASIC,
            &basic,
            Ctx::client("100-234-3456"),
            Publish,
            "my/topic/100-234-3456",
            "ALLOWED",
        ),
        case(
            BASIC,
            &basic,
            Ctx::client("100-234-3456"),
            Publish,
            "my/topic/other",
            "IMPLICIT_DENY",
        ),
        // "A client can connect using + as the client ID … subscribe to … my/+/topic"
        case(
            BASIC,
            &filter,
            Ctx::client("+"),
            Subscribe,
            "my/+/topic",
            "ALLOWED",
        ),
        // A client id is substituted as literal text: `*` in it is not a wildcard.
        case(
            BASIC,
            &basic,
            Ctx::client("*"),
            Publish,
            "my/topic/anything",
            "IMPLICIT_DENY",
        ),
        case(
            POLICY_VARS,
            &literal_star,
            Ctx::client("c"),
            Publish,
            "a/*",
            "ALLOWED",
        ),
        case(
            POLICY_VARS,
            &literal_star,
            Ctx::client("c"),
            Publish,
            "a/b",
            "IMPLICIT_DENY",
        ),
        case(
            POLICY_VARS,
            &literal_q,
            Ctx::client("c"),
            Publish,
            "a?$",
            "ALLOWED",
        ),
        case(
            POLICY_VARS,
            &literal_q,
            Ctx::client("c"),
            Publish,
            "ab$",
            "IMPLICIT_DENY",
        ),
        // Variables are substituted only with Version 2012-10-17.
        case(
            IAM_VARS,
            old_version,
            Ctx::client("c1"),
            Publish,
            "my/c1",
            "IMPLICIT_DENY",
        ),
        case(
            IAM_VARS,
            old_version,
            Ctx::client("c1"),
            Publish,
            "my/${iot:ClientId}",
            "ALLOWED",
        ),
        case(
            BASIC,
            &ip,
            Ctx::client("c").ip("203.0.113.7"),
            Connect,
            "c",
            "ALLOWED",
        ),
        case(
            BASIC,
            &ip,
            Ctx::client("c").ip("2001:db8::1"),
            Connect,
            "c",
            "ALLOWED",
        ),
        case(
            BASIC,
            &ip,
            Ctx::client("c").ip("198.51.100.7"),
            Connect,
            "c",
            "IMPLICIT_DENY",
        ),
        case(BASIC, &ip, Ctx::client("c"), Connect, "c", "IMPLICIT_DENY"),
    ]);
}

#[test]
fn connect_and_publish_example_with_several_policies() {
    // "all policies attached to the certificate are evaluated together": one allows, one denies.
    let allow = Policy::parse(
        "Allow",
        CONNECT_PUB,
        &doc(
            r#"{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}"]},
               {"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}"#,
        ),
    )
    .unwrap();
    let deny = Policy::parse(
        "Deny",
        "test",
        &doc(r#"{"Effect":"Deny","Action":"iot:*","Resource":"arn:aws:iot:*:*:topic/thing1"}"#),
    )
    .unwrap();
    let ctx = Ctx::thing("thing1").0;
    let arn = resource_arn(DEFAULT_REGION, DEFAULT_ACCOUNT, Publish, "thing1");
    assert_eq!(
        evaluate(&[&allow], Publish, &arn, &ctx).kind.as_str(),
        "ALLOWED"
    );
    let d = evaluate(&[&allow, &deny], Publish, &arn, &ctx);
    assert_eq!(d.kind.as_str(), "EXPLICIT_DENY");
    assert_eq!(d.deciding[0].policy, "Deny");
    assert_eq!(
        evaluate(
            &[&allow, &deny],
            Connect,
            &resource_arn(DEFAULT_REGION, DEFAULT_ACCOUNT, Connect, "thing1"),
            &ctx
        )
        .kind
        .as_str(),
        "ALLOWED"
    );
    let none: [&Policy; 0] = [];
    assert_eq!(
        evaluate(&none, Connect, &arn, &ctx).kind.as_str(),
        "IMPLICIT_DENY"
    );
}

fn reasons(policy: &str) -> Vec<&'static str> {
    lint(&Policy::parse("p", "p", policy).unwrap())
        .into_iter()
        .map(|f| f.reason)
        .collect()
}

#[test]
fn device_defender_audit_examples() {
    // MISCONFIG, first example: MQTT wildcard `#` in a Deny.
    let hash_deny = doc(
        r#"{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:111122223333:topicfilter/building/*"},
           {"Effect":"Deny","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:111122223333:topicfilter/building/control_room/#"},
           {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:us-east-1:111122223333:topic/building/*"}"#,
    );
    assert!(
        reasons(&hash_deny).contains(&"POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT"),
        "{MISCONFIG}"
    );
    // MISCONFIG, second example: Deny on building/control_room/* bypassed by building/# + Receive.
    let star_deny = r#"{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:111122223333:topicfilter/building/*"},
           {"Effect":"Deny","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:111122223333:topicfilter/building/control_room/*"},
           {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:us-east-1:111122223333:topic/building/*"}"#;
    let findings = lint(&Policy::parse("p", "p", &doc(star_deny)).unwrap());
    assert_eq!(findings.len(), 1, "{MISCONFIG}: {findings:?}");
    assert_eq!(
        findings[0].reason,
        "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS"
    );
    assert!(
        findings[0].message.contains("`building/#`"),
        "{}",
        findings[0].message
    );
    // The bypass is real in the evaluator too.
    let p = Policy::parse("p", "p", &doc(star_deny)).unwrap();
    let arn = |a, v| {
        format!(
            "arn:aws:iot:us-east-1:111122223333:{}/{v}",
            Action::resource_type(a)
        )
    };
    let c = Ctx::client("c").0;
    assert_eq!(
        evaluate(&[&p], Subscribe, &arn(Subscribe, "building/#"), &c)
            .kind
            .as_str(),
        "ALLOWED"
    );
    assert_eq!(
        evaluate(
            &[&p],
            Receive,
            &arn(Receive, "building/control_room/data1"),
            &c
        )
        .kind
        .as_str(),
        "ALLOWED"
    );
    // Correctly configured: Receive denied as well.
    let fixed = doc(&format!(
        r#"{star_deny},{{"Effect":"Deny","Action":"iot:Receive","Resource":"arn:aws:iot:us-east-1:111122223333:topic/building/control_room/*"}}"#
    ));
    assert_eq!(reasons(&fixed), Vec::<&str>::new(), "{MISCONFIG}");

    // PERMISSIVE: client/${iot:ClientId} without IsAttached is "equivalent to the wildcard *".
    let by_client_id = doc(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"}"#,
    );
    assert_eq!(
        reasons(&by_client_id),
        vec!["ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"],
        "{PERMISSIVE}"
    );
    let any_client = doc(
        r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/*"}"#,
    );
    assert_eq!(
        reasons(&any_client),
        vec!["ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"],
        "{PERMISSIVE}"
    );
    let compliant = doc(
        r#"{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"],
            "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}"#,
    );
    assert_eq!(reasons(&compliant), Vec::<&str>::new(), "{PERMISSIVE}");
    let everything = doc(r#"{"Effect":"Allow","Action":"iot:*","Resource":"*"}"#);
    assert_eq!(
        reasons(&everything),
        vec!["ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"],
        "{PERMISSIVE}"
    );
    let star_star = doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    assert!(!reasons(&star_star).is_empty(), "{PERMISSIVE}");
    // The pizza policy passes every check.
    assert_eq!(
        reasons(iotls::policy::PIZZA_POLICY_JSON),
        Vec::<&str>::new()
    );
}

#[test]
fn explanations_name_policy_statement_substitution_and_variables() {
    let p = Policy::parse(
        "PizzaButtonPolicy",
        "pizza",
        iotls::policy::PIZZA_POLICY_JSON,
    )
    .unwrap();
    let ctx = Ctx::thing("pizza-button-1")
        .subject("SerialNumber", &["G030JF055364XVRB"])
        .0;
    let arn = resource_arn(
        DEFAULT_REGION,
        DEFAULT_ACCOUNT,
        Publish,
        "iotbutton/G030JF055364XVRB",
    );
    let d = evaluate(&[&p], Publish, &arn, &ctx);
    assert_eq!(d.kind.as_str(), "ALLOWED");
    let text = d.lines().join("\n");
    assert!(
        text.contains(
            "Allowed by policy PizzaButtonPolicy statement 2 (Sid \"OrderOnMyOwnTopic\")"
        ),
        "{text}"
    );
    assert!(
        text.contains("topic/iotbutton/G030JF055364XVRB matches"),
        "{text}"
    );
    assert!(text.contains("${iot:Certificate.Subject.SerialNumber} = \"G030JF055364XVRB\" (from the certificate subject)"), "{text}");
    let detail = d.detail();
    assert_eq!(detail["decision"], "ALLOWED");
    assert_eq!(detail["deciding"][0]["statement"], 2);

    // The neighbour's topic: implicit deny, with the substituted resource shown.
    let arn = resource_arn(
        DEFAULT_REGION,
        DEFAULT_ACCOUNT,
        Publish,
        "iotbutton/G030JF055365XVRC",
    );
    let d = evaluate(&[&p], Publish, &arn, &ctx);
    assert_eq!(d.kind.as_str(), "IMPLICIT_DENY");
    let text = d.lines().join("\n");
    assert!(
        text.contains(
            "→ arn:aws:iot:us-east-1:123456789012:topic/iotbutton/G030JF055364XVRB does not match"
        ),
        "{text}"
    );

    // No serial in the certificate: the variable does not resolve and says why.
    let ctx = Ctx::thing("pizza-button-1").0;
    let d = evaluate(&[&p], Publish, &arn, &ctx);
    let text = d.lines().join("\n");
    assert!(
        text.contains("did not resolve: the certificate subject has no SerialNumber"),
        "{text}"
    );
    assert_eq!(d.detail()["variables"][0]["resolved"], false);
}

#[test]
fn unresolved_thing_variables_say_why() {
    let p = Policy::parse(
        "PizzaButtonPolicy",
        "pizza",
        iotls::policy::PIZZA_POLICY_JSON,
    )
    .unwrap();
    let ctx = Ctx::client("pizza-button-1")
        .with_thing("pizza-button-1", false)
        .0;
    let d = evaluate(
        &[&p],
        Connect,
        &resource_arn(DEFAULT_REGION, DEFAULT_ACCOUNT, Connect, "pizza-button-1"),
        &ctx,
    );
    assert_eq!(d.kind.as_str(), "IMPLICIT_DENY");
    let text = d.lines().join("\n");
    assert!(
        text.contains("thing `pizza-button-1` is not attached to this certificate"),
        "{text}"
    );
}
