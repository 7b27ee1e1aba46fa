//! The broker's MQTT state across connections: one session per client id (its subscriptions, the
//! QoS 1 messages kept for it while it is away, which connection has it), the retained messages,
//! and the routing of a publication to every matching subscription.
//!
//! Behaviour follows AWS IoT Core where it documents one, and the MQTT specifications elsewhere:
//! - a second connection with a client id that is connected takes the session over; the older
//!   connection is closed (AWS IoT "differences from the MQTT specifications"; MQTT 3.1.1 §3.1.4);
//! - persistent sessions (clean session 0) keep their subscriptions and the QoS 1 messages that
//!   arrive while the client is away, for one hour after it disconnects (AWS IoT "MQTT persistent
//!   sessions"; MQTT 3.1.1 §3.1.2.4, §4.4);
//! - delivery QoS is the lower of the publication's and the subscription's (MQTT 3.1.1 §3.8.4);
//! - a filter that starts with a wildcard does not match topics that start with `$` (MQTT 3.1.1
//!   §4.7.2; AWS IoT reserves `$aws/…`);
//! - retained messages are kept per topic and sent to later subscribers; an empty retained payload
//!   deletes the topic's retained message (MQTT 3.1.1 §3.3.1.3).

use crate::mqtt::topic::filter_matches;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a persistent session outlives its connection (AWS IoT's default).
pub const SESSION_EXPIRY: Duration = Duration::from_secs(3600);

/// The most QoS 1 messages kept for one session while its client is away; later ones are dropped.
pub const MAX_QUEUED: usize = 100;

/// The most deliveries waiting for one connection; while a subscriber is this far behind, further
/// messages for it are dropped (and counted) instead of growing the broker without bound. A
/// subscriber that stops reading altogether is disconnected by the write deadline of the
/// connection (`broker::WRITE_DEADLINE`).
pub const MAX_PENDING: usize = 1000;

/// The most bytes (topics and payloads) waiting for one connection; past it, further messages
/// for it are dropped and counted as for [`MAX_PENDING`]. One message is always let through, so a
/// payload larger than this still reaches a subscriber that reads.
pub const MAX_PENDING_BYTES: usize = 4 << 20;

/// What the shared state sends one connection, in order: a queue behind a mutex and a wake-up.
/// It allocates nothing while empty — tokio's unbounded channel, used before, allocated a block
/// of 32 slots at once for every connection (≈ 0.8 KiB of each held `serve` connection).
#[derive(Debug, Default)]
struct Queue {
    items: Mutex<VecDeque<ToConn>>,
    ready: tokio::sync::Notify,
}

impl Queue {
    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<ToConn>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending side of a connection's queue (cloned into the shared state).
#[derive(Clone, Debug)]
pub struct Sender(Arc<Queue>);

impl Sender {
    pub fn send(&self, m: ToConn) {
        self.0.items().push_back(m);
        self.0.ready.notify_one();
    }
}

/// The connection's end of its queue.
#[derive(Debug)]
pub struct Inbox(Arc<Queue>);

impl Inbox {
    /// The next message, waiting for one (cancel-safe: a message is taken only when returned).
    pub async fn recv(&mut self) -> Option<ToConn> {
        loop {
            if let Some(m) = self.try_recv() {
                return Some(m);
            }
            self.0.ready.notified().await;
        }
    }

    /// The next message if one waits.
    pub fn try_recv(&mut self) -> Option<ToConn> {
        let mut q = self.0.items();
        let m = q.pop_front();
        if q.is_empty() && q.capacity() > 16 {
            // A burst is over: an idle connection keeps no queue.
            *q = VecDeque::new();
        }
        m
    }
}

/// A new connection queue.
pub fn channel() -> (Sender, Inbox) {
    let q = Arc::new(Queue::default());
    (Sender(Arc::clone(&q)), Inbox(q))
}

/// A connection's side of the queue: the channel and how many deliveries wait in it.
#[derive(Clone, Debug)]
pub struct Outbox {
    pub tx: Sender,
    pending: Arc<AtomicUsize>,
    pending_bytes: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Outbox {
    pub fn new(tx: Sender) -> Self {
        Outbox {
            tx,
            pending: Arc::default(),
            pending_bytes: Arc::default(),
            dropped: Arc::default(),
        }
    }

    /// Queue a delivery, unless [`MAX_PENDING`] deliveries or [`MAX_PENDING_BYTES`] bytes wait
    /// already.
    pub fn deliver(&self, d: Delivery) {
        let waiting = self.pending.load(Ordering::Relaxed);
        let bytes = self.pending_bytes.load(Ordering::Relaxed);
        if waiting >= MAX_PENDING || (waiting > 0 && bytes + d.size() > MAX_PENDING_BYTES) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.pending_bytes.fetch_add(d.size(), Ordering::Relaxed);
        self.tx.send(ToConn::Deliver(Box::new(d)));
    }

    /// The connection took delivery `d` off the queue.
    pub fn took(&self, d: &Delivery) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
        self.pending_bytes.fetch_sub(d.size(), Ordering::Relaxed);
    }

    /// Deliveries dropped so far because the connection was too far behind.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A message on its way to a subscriber.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    /// Sent with the RETAIN flag: a retained message delivered because of a new subscription.
    pub retain: bool,
}

impl Delivery {
    /// What it holds in memory, for [`MAX_PENDING_BYTES`].
    fn size(&self) -> usize {
        self.topic.len() + self.payload.len()
    }
}

/// What the shared state tells a connection.
#[derive(Debug)]
pub enum ToConn {
    /// Boxed: a queued message is a pointer.
    Deliver(Box<Delivery>),
    /// Another connection took the client id over: close.
    TakenOver,
}

#[derive(Debug)]
struct Session {
    /// Filter and granted QoS.
    subs: Vec<(String, u8)>,
    persistent: bool,
    /// The connection that has the session: its id and channel.
    online: Option<(u64, Outbox)>,
    queued: VecDeque<Delivery>,
    offline_since: Option<Instant>,
}

/// What a CONNECT finds.
pub struct Attached {
    /// This connection's id, for [`State::detach`].
    pub conn: u64,
    /// Whether a stored session was resumed (CONNACK's session present).
    pub session_present: bool,
    /// Messages kept for the session while it was away, to send now.
    pub queued: Vec<Delivery>,
}

/// Sessions and retained messages of one broker.
#[derive(Debug, Default)]
pub struct State {
    next_conn: u64,
    sessions: HashMap<String, Session>,
    retained: BTreeMap<String, Delivery>,
    /// The client ids whose sessions have subscriptions: a publication visits these, not every
    /// session (10,000 held devices that never subscribe cost a publish nothing).
    subscribed: HashSet<String>,
    /// When the first away session could expire (`None`: none is away): until then, looking for
    /// expired sessions at every CONNECT and publish would visit every session for nothing.
    next_expiry: Option<Instant>,
}

impl State {
    /// A fresh connection id (for client ids the broker assigns).
    pub fn next_conn(&mut self) -> u64 {
        self.next_conn += 1;
        self.next_conn
    }

    /// Attach a connection to `client_id`'s session: take it over from a connection that has it,
    /// start a new one (clean session, or none stored) or resume a stored one.
    pub fn attach(&mut self, client_id: &str, clean: bool, tx: &Outbox) -> Attached {
        self.expire(Instant::now());
        let conn = self.next_conn();
        if let Some((_, old)) = self
            .sessions
            .get_mut(client_id)
            .and_then(|s| s.online.take())
        {
            old.tx.send(ToConn::TakenOver);
        }
        if clean {
            self.end(client_id);
        }
        let session_present = self.sessions.contains_key(client_id);
        let s = self
            .sessions
            .entry(client_id.to_string())
            .or_insert_with(|| Session {
                subs: Vec::new(),
                persistent: !clean,
                online: None,
                queued: VecDeque::new(),
                offline_since: None,
            });
        s.persistent = !clean;
        s.online = Some((conn, tx.clone()));
        s.offline_since = None;
        Attached {
            conn,
            session_present,
            queued: s.queued.drain(..).collect(),
        }
    }

    /// The connection `conn` ended. A persistent session stays (with the QoS 1 messages it had not
    /// acknowledged, sent again on resumption); another ends. A session another connection has
    /// taken over is not touched.
    pub fn detach(&mut self, client_id: &str, conn: u64, unacked: Vec<Delivery>) {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        if s.online.as_ref().map(|(c, _)| *c) != Some(conn) {
            return;
        }
        if s.persistent {
            let now = Instant::now();
            s.online = None;
            s.offline_since = Some(now);
            let expiry = now + SESSION_EXPIRY;
            self.next_expiry = Some(self.next_expiry.map_or(expiry, |e| e.min(expiry)));
            for d in unacked.into_iter().rev() {
                s.queued.push_front(d);
            }
            s.queued.truncate(MAX_QUEUED);
        } else {
            self.end(client_id);
        }
    }

    /// The session of `client_id` ends, with its subscriptions.
    fn end(&mut self, client_id: &str) {
        self.sessions.remove(client_id);
        self.subscribed.remove(client_id);
    }

    /// Add (or replace) a subscription of `client_id`'s session.
    pub fn subscribe(&mut self, client_id: &str, filter: &str, granted: u8) {
        if let Some(s) = self.sessions.get_mut(client_id) {
            s.subs.retain(|(f, _)| f != filter);
            s.subs.push((filter.to_string(), granted));
            self.subscribed.insert(client_id.to_string());
        }
    }

    /// Remove a subscription; whether it existed.
    pub fn unsubscribe(&mut self, client_id: &str, filter: &str) -> bool {
        let Some(s) = self.sessions.get_mut(client_id) else {
            return false;
        };
        let before = s.subs.len();
        s.subs.retain(|(f, _)| f != filter);
        if s.subs.is_empty() {
            self.subscribed.remove(client_id);
        }
        s.subs.len() != before
    }

    /// Send a publication to every session with a matching subscription, at the lower of its QoS
    /// and the subscription's; keep QoS 1 messages for persistent sessions that are away.
    pub fn route(&mut self, d: &Delivery) {
        self.expire(Instant::now());
        for id in &self.subscribed {
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            let Some(granted) = s
                .subs
                .iter()
                .filter(|(f, _)| filter_matches(f, &d.topic))
                .map(|(_, q)| *q)
                .max()
            else {
                continue;
            };
            let out = Delivery {
                qos: d.qos.min(granted),
                retain: false,
                ..d.clone()
            };
            match &s.online {
                Some((_, outbox)) => outbox.deliver(out),
                None if s.persistent && out.qos > 0 && s.queued.len() < MAX_QUEUED => {
                    s.queued.push_back(out)
                }
                None => {}
            }
        }
    }

    /// Keep `d` as its topic's retained message; an empty payload deletes it.
    pub fn retain(&mut self, d: &Delivery) {
        if d.payload.is_empty() {
            self.retained.remove(&d.topic);
        } else {
            self.retained.insert(d.topic.clone(), d.clone());
        }
    }

    /// The retained messages a new subscription to `filter` receives, at most at `granted` QoS.
    pub fn retained_for(&self, filter: &str, granted: u8) -> Vec<Delivery> {
        self.retained
            .values()
            .filter(|d| filter_matches(filter, &d.topic))
            .map(|d| Delivery {
                qos: d.qos.min(granted),
                retain: true,
                ..d.clone()
            })
            .collect()
    }

    /// Drop persistent sessions that have been away longer than [`SESSION_EXPIRY`].
    fn expire(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|e| now < e) {
            return;
        }
        self.sessions.retain(|_, s| {
            s.offline_since
                .is_none_or(|t| now.duration_since(t) < SESSION_EXPIRY)
        });
        let sessions = &self.sessions;
        self.subscribed.retain(|id| sessions.contains_key(id));
        self.next_expiry = sessions
            .values()
            .filter_map(|s| s.offline_since)
            .min()
            .map(|t| t + SESSION_EXPIRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(topic: &str, qos: u8) -> Delivery {
        Delivery {
            topic: topic.into(),
            payload: b"x".to_vec(),
            qos,
            retain: false,
        }
    }

    fn received(rx: &mut Inbox) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(m) = rx.try_recv() {
            v.push(match m {
                ToConn::Deliver(d) => format!("{} q{}", d.topic, d.qos),
                ToConn::TakenOver => "taken over".into(),
            });
        }
        v
    }

    #[test]
    fn a_second_connection_takes_the_session_over() {
        let mut st = State::default();
        let (tx1, mut rx1) = channel();
        let (tx2, _rx2) = channel();
        let a = st.attach("dev", true, &Outbox::new(tx1));
        st.attach("dev", true, &Outbox::new(tx2));
        assert_eq!(received(&mut rx1), ["taken over"]);
        // The first connection ending does not end the second's session.
        st.detach("dev", a.conn, Vec::new());
        assert!(st.sessions["dev"].online.is_some());
    }

    #[test]
    fn a_persistent_session_keeps_subscriptions_and_qos1_messages_while_away() {
        let mut st = State::default();
        let (tx, _rx) = channel();
        let a = st.attach("p1", false, &Outbox::new(tx));
        assert!(!a.session_present);
        st.subscribe("p1", "p/t", 1);
        st.detach("p1", a.conn, vec![d("p/t", 1)]);
        st.route(&d("p/t", 1));
        st.route(&d("p/t", 0)); // QoS 0 is not kept
        let (tx, mut rx) = channel();
        let b = st.attach("p1", false, &Outbox::new(tx));
        assert!(b.session_present);
        assert_eq!(
            b.queued.len(),
            2,
            "the unacknowledged one and the one sent while away"
        );
        st.route(&d("p/t", 1));
        assert_eq!(received(&mut rx), ["p/t q1"], "the subscription was kept");
        // Clean session ends it.
        let (tx, _rx) = channel();
        assert!(!st.attach("p1", true, &Outbox::new(tx)).session_present);
    }

    #[test]
    fn an_away_session_expires_after_the_expiry_and_not_before() {
        let mut st = State::default();
        let (tx, _rx) = channel();
        let a = st.attach("p1", false, &Outbox::new(tx));
        st.subscribe("p1", "p/t", 1);
        let away = Instant::now();
        st.detach("p1", a.conn, Vec::new());
        st.expire(away + SESSION_EXPIRY - Duration::from_secs(1));
        assert!(st.sessions.contains_key("p1"), "not yet");
        st.expire(away + SESSION_EXPIRY + Duration::from_secs(1));
        assert!(!st.sessions.contains_key("p1"), "expired");
        assert!(
            !st.subscribed.contains("p1"),
            "and gone from the subscribers"
        );
        // Nothing is away any more: no session is looked at until one goes away again.
        assert_eq!(st.next_expiry, None);
        let (tx, _rx) = channel();
        assert!(!st.attach("p1", false, &Outbox::new(tx)).session_present);
    }

    #[test]
    fn a_publication_reaches_exactly_the_sessions_subscribed_to_it() {
        let mut st = State::default();
        let mut inboxes = Vec::new();
        for i in 0..5 {
            let (tx, rx) = channel();
            st.attach(&format!("c{i}"), true, &Outbox::new(tx));
            inboxes.push(rx);
        }
        st.subscribe("c1", "room/#", 1);
        st.subscribe("c3", "room/+/load", 0);
        st.subscribe("c4", "other/#", 1);
        st.route(&d("room/7/load", 1));
        let got: Vec<Vec<String>> = inboxes.iter_mut().map(received).collect();
        assert_eq!(
            got,
            [
                vec![],
                vec!["room/7/load q1".to_string()],
                vec![],
                vec!["room/7/load q0".to_string()],
                vec![]
            ]
        );
        // Unsubscribed, or started again clean: no longer a subscriber.
        assert!(st.unsubscribe("c1", "room/#"));
        let (tx, rx) = channel();
        st.attach("c3", true, &Outbox::new(tx));
        inboxes[3] = rx;
        st.route(&d("room/7/load", 1));
        assert!(inboxes.iter_mut().all(|rx| received(rx).is_empty()));
        assert_eq!(st.subscribed.len(), 1, "only c4 still subscribes");
    }

    #[test]
    fn delivery_qos_is_the_lower_of_published_and_granted() {
        let mut st = State::default();
        let (tx, mut rx) = channel();
        st.attach("s", true, &Outbox::new(tx));
        st.subscribe("s", "t/#", 0);
        st.route(&d("t/x", 1));
        assert_eq!(received(&mut rx), ["t/x q0"]);
    }

    #[test]
    fn big_messages_for_a_subscriber_far_behind_are_bounded_by_bytes() {
        let mut st = State::default();
        let (tx, mut rx) = channel();
        let outbox = Outbox::new(tx);
        st.attach("slow", true, &outbox);
        st.subscribe("slow", "t", 0);
        let big = Delivery {
            payload: vec![0; 128 << 10],
            ..d("t", 0)
        };
        for _ in 0..100 {
            st.route(&big);
        }
        // 4 MiB hold 31 messages of 128 KiB and a topic.
        assert_eq!(received(&mut rx).len(), 31);
        assert_eq!(outbox.dropped(), 69);
        // One message is always let through, however big.
        let (tx, mut rx) = channel();
        st.attach("slow", true, &Outbox::new(tx));
        st.subscribe("slow", "t", 0);
        st.route(&Delivery {
            payload: vec![0; MAX_PENDING_BYTES + 1],
            ..d("t", 0)
        });
        assert_eq!(received(&mut rx).len(), 1);
    }

    #[test]
    fn a_subscriber_far_behind_loses_messages_instead_of_growing_the_broker() {
        let mut st = State::default();
        let (tx, mut rx) = channel();
        let outbox = Outbox::new(tx);
        st.attach("slow", true, &outbox);
        st.subscribe("slow", "t", 1);
        for _ in 0..MAX_PENDING + 5 {
            st.route(&d("t", 1));
        }
        assert_eq!(
            received(&mut rx).len(),
            MAX_PENDING,
            "no more than the bound waits"
        );
        assert_eq!(outbox.dropped(), 5);
        // Once the connection takes them, new ones are queued again.
        for _ in 0..MAX_PENDING {
            outbox.took(&d("t", 1));
        }
        st.route(&d("t", 1));
        assert_eq!(received(&mut rx).len(), 1);
    }

    #[test]
    fn retained_messages_are_kept_replaced_and_deleted() {
        let mut st = State::default();
        st.retain(&d("r/t", 1));
        assert_eq!(st.retained_for("r/#", 0).len(), 1);
        assert!(st.retained_for("r/#", 0)[0].retain);
        assert_eq!(st.retained_for("r/#", 0)[0].qos, 0);
        st.retain(&Delivery {
            payload: Vec::new(),
            ..d("r/t", 1)
        });
        assert!(st.retained_for("r/#", 1).is_empty());
    }
}
