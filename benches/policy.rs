//! What a policy decision costs the broker, per request: the way `decide` worked before decisions
//! were recorded as requests (the registry's context built for every request, which reads the
//! device's certificate again, then the evaluation), against `authorize` with the connection's
//! kept `policy::Basis`; and what writing the explanation costs at assembly (before: `lines` and
//! `detail` of the kept decision; now: the evaluation made again, then the same). Both measured in
//! the same run, on the pizza shop's registry and the button's real certificate.
//!
//! Run: `cargo bench --bench policy` (`-- N` for N requests per sample instead of 1,000).

use iotls::engine::authz::{Authorizer, Connection, Explained, MqttAction};
use iotls::engine::policy_authz::PolicyAuthorizer;
use iotls::pki::{DefaultPki, BUTTON_SERIAL, BUTTON_THING};
use iotls::policy::{self, certificate_id, Action};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SAMPLES: usize = 21;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn per_request(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let pki = DefaultPki::generate().expect("PKI");
    let authz = PolicyAuthorizer::pizza_default(&pki);
    let der = pki.button.leaf().to_vec();
    let topic = format!("iotbutton/{BUTTON_SERIAL}");
    let conn = Connection {
        cert_der: der.clone(),
        client_id: BUTTON_THING.into(),
        source_ip: [192, 0, 2, 7].into(),
        connect_attrs: Vec::new(),
        last_will_topic: None,
        basis: Default::default(),
    };
    let r = &authz.registry;

    // Before: the context for every request, then the evaluation (kept whole until assembly).
    let before = |conn: &Connection| {
        let mut ctx = r.context_for(&conn.cert_der, &conn.client_id, Some(conn.source_ip));
        ctx.connect_attrs = conn.connect_attrs.clone();
        ctx.last_will_topic = conn.last_will_topic.clone();
        let policies = r.policies_for(&certificate_id(&conn.cert_der));
        let arn = policy::resource_arn(&r.region, &r.account, Action::Publish, &topic);
        policy::evaluate(&policies, Action::Publish, &arn, &ctx)
    };
    let now = |conn: &Connection| authz.authorize(conn, MqttAction::Publish, &topic);

    let (mut decide_before, mut decide_now) = (Vec::new(), Vec::new());
    let (mut explain_before, mut explain_now) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let kept: Vec<_> = (0..n).map(|_| before(&conn)).collect();
        decide_before.push(t.elapsed());
        let t = Instant::now();
        for d in &kept {
            black_box((d.lines(), d.detail()));
        }
        explain_before.push(t.elapsed());

        let t = Instant::now();
        let kept: Vec<_> = (0..n).map(|_| now(&conn)).collect();
        decide_now.push(t.elapsed());
        let t = Instant::now();
        for v in kept {
            let Explained::Policy(p) = v.event else {
                panic!("a policy decision")
            };
            black_box(p.resolve());
        }
        explain_now.push(t.elapsed());
    }
    let (db, dn) = (median(decide_before), median(decide_now));
    let (eb, en) = (median(explain_before), median(explain_now));
    println!(
        "policy decision on iot:Publish, {n} requests per sample, median of {SAMPLES} samples"
    );
    println!("| | before (context per request) | now (kept basis) | now / before |");
    println!("|---|---|---|---|");
    println!(
        "| decide (broker, per request) | {:.2} µs | {:.2} µs | {:.2} |",
        per_request(db, n),
        per_request(dn, n),
        dn.as_secs_f64() / db.as_secs_f64()
    );
    println!(
        "| explain (assembly, per decision) | {:.2} µs | {:.2} µs | {:.2} |",
        per_request(eb, n),
        per_request(en, n),
        en.as_secs_f64() / eb.as_secs_f64()
    );
    println!(
        "| both | {:.2} µs | {:.2} µs | {:.2} |",
        per_request(db + eb, n),
        per_request(dn + en, n),
        (dn + en).as_secs_f64() / (db + eb).as_secs_f64()
    );
}
