//! One whole recorded session (iotls's engine: tap, verifier wrappers, key log, policy events,
//! dissection and decryption into a trace) against the same session with plain rustls and no
//! observation, in the same run. Prints medians and the ratio (target ≤ 1.10). Also the same
//! recorded session with both ends behind a live tour's gate, opened (every flight released at
//! once): what gating costs when nothing waits, and that it changes no byte on the wire.
//!
//! Run: `cargo bench --bench session` (or `-- 300` for 300 sessions of each kind).

use bytes::BytesMut;
use iotls::engine::authz::{Connection, MqttAction};
use iotls::engine::mqtt_io::{read_msg, write_msg, Msg, Version::V4};
use iotls::engine::{self, live, Scenario};
use iotls::pki::DefaultPki;
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::ServerName;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(5);

/// The same session with plain rustls: same PKI, same configs (built per session, as the engine
/// does), same MQTT exchange and the same policy decisions — nothing recorded, nothing decoded.
async fn plain_session(s: &Scenario) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(s.broker.client_roots[0].clone()).unwrap();
    let cv = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let mut scfg = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_client_cert_verifier(cv)
        .with_single_cert(
            s.broker.identity.chain.clone(),
            s.broker.identity.key.clone_key(),
        )
        .unwrap();
    scfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    let mut droots = RootCertStore::empty();
    droots.add(s.device.trust[0].clone()).unwrap();
    let sv = WebPkiServerVerifier::builder_with_provider(Arc::new(droots), provider.clone())
        .build()
        .unwrap();
    let mut ccfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(sv)
        .with_client_auth_cert(
            s.device.identity.chain.clone(),
            s.device.identity.key.clone_key(),
        )
        .unwrap();
    ccfg.resumption = Resumption::disabled();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let authz = s.broker.authorizer.clone();
    let broker = tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(Arc::new(scfg))
            .accept(tcp)
            .await
            .unwrap();
        let cert = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        assert!(authz.admit(&cert).allowed);
        let mut conn = Connection {
            cert_der: cert,
            client_id: String::new(),
            source_ip: peer.ip(),
            connect_attrs: Vec::new(),
            last_will_topic: None,
            basis: Default::default(),
        };
        let mut buf = BytesMut::new();
        let mut version = None;
        loop {
            match read_msg(&mut tls, &mut buf, &mut version, T).await {
                Ok(Msg::Connect { client_id, .. }) => {
                    conn.client_id = client_id.clone();
                    assert!(
                        authz
                            .authorize(&conn, MqttAction::Connect, &client_id)
                            .allowed
                    );
                    write_msg(
                        &mut tls,
                        V4,
                        &Msg::ConnAck {
                            code: 0,
                            session_present: false,
                        },
                    )
                    .await
                    .unwrap();
                }
                Ok(Msg::Publish { topic, pkid, .. }) => {
                    assert!(authz.authorize(&conn, MqttAction::Publish, &topic).allowed);
                    write_msg(&mut tls, V4, &Msg::PubAck { pkid, code: 0 })
                        .await
                        .unwrap();
                }
                _ => break,
            }
        }
        let _ = tls.shutdown().await;
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(s.device.server_name.clone()).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(ccfg))
        .connect(name, tcp)
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let connect = Msg::Connect {
        client_id: s.device.client_id.clone(),
        clean_session: true,
        keep_alive: 30,
        will: None,
    };
    write_msg(&mut tls, V4, &connect).await.unwrap();
    assert!(matches!(
        read_msg(&mut tls, &mut buf, &mut Some(V4), T).await,
        Ok(Msg::ConnAck { code: 0, .. })
    ));
    let engine::DeviceAction::Publish { topic, payload, .. } = &s.device.actions[0] else {
        unreachable!()
    };
    let publish = Msg::Publish {
        topic: topic.clone(),
        payload: payload.clone(),
        qos: 1,
        retain: false,
        pkid: 1,
    };
    write_msg(&mut tls, V4, &publish).await.unwrap();
    assert!(matches!(
        read_msg(&mut tls, &mut buf, &mut Some(V4), T).await,
        Ok(Msg::PubAck { .. })
    ));
    write_msg(&mut tls, V4, &Msg::Disconnect { code: 0 })
        .await
        .unwrap();
    let _ = tls.shutdown().await;
    broker.await.unwrap();
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let pki = DefaultPki::generate().unwrap();
    let scenario = Scenario::from_pki(&pki);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Warm up both paths.
    for _ in 0..10 {
        rt.block_on(plain_session(&scenario));
        assert!(
            rt.block_on(engine::run_async(&scenario))
                .unwrap()
                .outcome
                .ok
        );
    }
    let (mut plain, mut recorded, mut decoded, mut gated, mut assembly) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut events = 0;
    // Bytes on the wire per session and records, recorded and through the open gate: (fewest,
    // most) over the run. ECDSA signatures are DER, so a session's size varies by a few bytes.
    let (mut wire, mut wire_gated) = (Wire::default(), Wire::default());
    let open = live::Gate::open();
    for _ in 0..10 {
        rt.block_on(live::record_gated(&scenario, &open, live::LIVE_DEADLINE))
            .unwrap();
    }
    // Interleave so both see the same machine conditions.
    for _ in 0..n {
        let t = Instant::now();
        rt.block_on(plain_session(&scenario));
        plain.push(t.elapsed());
        let t = Instant::now();
        let recording = rt.block_on(engine::record_async(&scenario)).unwrap();
        recorded.push(t.elapsed());
        let trace = recording.assemble();
        decoded.push(t.elapsed());
        assert!(trace.outcome.ok);
        events = trace.events.len();
        wire.add(&trace);
        // The same session with each end's writes passing through the gate, every flight
        // released at once (a live tour whose learner never pauses).
        let t = Instant::now();
        let recording = rt
            .block_on(live::record_gated(&scenario, &open, live::LIVE_DEADLINE))
            .unwrap();
        gated.push(t.elapsed());
        let t = Instant::now();
        let trace = recording.assemble();
        // What the live UI pays per change: it re-assembles the trace from a snapshot.
        assembly.push(t.elapsed());
        assert!(trace.outcome.ok);
        wire_gated.add(&trace);
    }
    let (p, r, d, g, a) = (
        median(&mut plain),
        median(&mut recorded),
        median(&mut decoded),
        median(&mut gated),
        median(&mut assembly),
    );
    let us = |x: Duration| x.as_secs_f64() * 1e6;
    println!("sessions per kind:                   {n}");
    println!("plain rustls session, median:        {:>8.1} µs", us(p));
    println!("observed + recorded session, median: {:>8.1} µs", us(r));
    println!(
        "… + decoded into a trace, median:    {:>8.1} µs  ({events} events)",
        us(d)
    );
    println!(
        "ratio recorded / plain:              {:>8.3}  (target ≤ 1.10, aim 1.05)",
        us(r) / us(p)
    );
    println!(
        "ratio recorded and decoded / plain:  {:>8.3}",
        us(d) / us(p)
    );
    println!("gated (open gate) + recorded, median:{:>8.1} µs", us(g));
    println!(
        "ratio gated / recorded:              {:>8.3}  (gating when nothing waits)",
        us(g) / us(r)
    );
    println!(
        "ratio gated / plain:                 {:>8.3}",
        us(g) / us(p)
    );
    println!(
        "assembly of a trace (live UI, per change), median: {:>8.1} µs",
        us(a)
    );
    println!("on the wire per session, recorded:   {wire}");
    println!("on the wire per session, gated:      {wire_gated}");
}

/// Bytes and records on the wire (both directions) per session: fewest and most over the run.
#[derive(Default)]
struct Wire {
    bytes: Option<(usize, usize)>,
    records: Option<(usize, usize)>,
}

impl Wire {
    fn add(&mut self, t: &iotls::trace::Trace) {
        let b: usize = t.records.iter().map(|r| r.bytes.len()).sum();
        let r = t.records.len();
        let widen = |v: Option<(usize, usize)>, x: usize| {
            Some(v.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))))
        };
        self.bytes = widen(self.bytes, b);
        self.records = widen(self.records, r);
    }
}

impl std::fmt::Display for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (b0, b1) = self.bytes.unwrap_or_default();
        let (r0, r1) = self.records.unwrap_or_default();
        write!(f, "{b0}–{b1} bytes in {r0}–{r1} records")
    }
}
