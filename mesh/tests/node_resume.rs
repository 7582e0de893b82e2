//! Early resends (PROTOCOL.md §7.7): work for a peer that was lost with a link goes out again as soon as the peer is
//! reachable again (its hello binds it, a PEER_SYNC or announce teaches a route to it, or a new session replaces one
//! it lost), not when the 2 s message retry or the 5 s handshake retry fires. Each test checks delivery within
//! `BOUND` of simulated time after the link comes back, and exactly once.

mod node_medium;

use mesh::node::{Event, MessageId, NodeConfig, RelayPolicy};
use mesh::session::SessionEvent;
use mesh::time::{Duration, Instant};
use node_medium::{confirmed, received, Medium};

/// Hello, peer sync and one or two round trips on the 5 ms medium take tens of milliseconds; the retry timers
/// that fired without early resends are 2 s (messages) and 5 s (handshakes).
const BOUND: Duration = Duration::from_millis(300);

fn configs(n: usize, persist: bool, tweak: impl Fn(&mut NodeConfig)) -> Vec<NodeConfig> {
    (0..n)
        .map(|i| {
            let mut c = node_medium::config(i, RelayPolicy::Managed);
            c.session.persist = persist;
            tweak(&mut c);
            c
        })
        .collect()
}

/// `n` nodes in a line, settled (hellos, announces) for 3 s.
fn line(n: usize, persist: bool) -> Medium {
    line_with(n, persist, |_| {})
}

fn line_with(n: usize, persist: bool, tweak: impl Fn(&mut NodeConfig)) -> Medium {
    let mut m = Medium::with_configs(configs(n, persist, tweak));
    for i in 0..n - 1 {
        m.connect(i, i + 1);
    }
    m.run_for(Duration::from_secs(3));
    m
}

/// Sends `payload` from `from` to `to` and checks it is delivered and confirmed (a session exists afterwards).
fn warm_up(m: &mut Medium, from: usize, to: usize) {
    let now = m.now;
    let peer = m.id(to);
    let id = m.nodes[from].send(peer, b"warm", now).unwrap();
    m.run_for(Duration::from_secs(3));
    assert_eq!(received(&m.take_events(to), b"warm"), 1);
    assert_eq!(confirmed(&m.take_events(from), id), 1);
}

/// Steps the medium 1 ms at a time until node `at` delivers `payload`; the simulated time that took. Events are
/// kept in `log`.
fn time_to_delivery(
    m: &mut Medium,
    at: usize,
    payload: &[u8],
    limit: Duration,
    log: &mut Vec<Event>,
) -> Option<Duration> {
    let start = m.now;
    while m.now < start + limit {
        m.run_for(Duration::from_millis(1));
        let events = m.take_events(at);
        let got = received(&events, payload) > 0;
        log.extend(events);
        if got {
            return Some(m.now.saturating_since(start));
        }
    }
    None
}

/// Runs 30 s more and checks that `payload` was delivered exactly once in all (`log` included) and `id`
/// confirmed exactly once.
fn exactly_once(
    m: &mut Medium,
    from: usize,
    to: usize,
    payload: &[u8],
    id: MessageId,
    log: &[Event],
) {
    m.run_for(Duration::from_secs(30));
    let at_to: Vec<Event> = log.iter().cloned().chain(m.take_events(to)).collect();
    assert_eq!(received(&at_to, payload), 1, "delivered exactly once");
    assert_eq!(confirmed(&m.take_events(from), id), 1, "confirmed once");
    assert!(m.stores[from].outbox.is_empty());
}

fn established(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Session(SessionEvent::Established { .. } | SessionEvent::Renewed { .. })
            )
        })
        .count()
}

#[test]
fn a_message_sent_while_the_link_was_down_goes_out_when_it_comes_back() {
    let mut m = line(2, false);
    warm_up(&mut m, 0, 1);
    let b = m.id(1);
    m.disconnect(0);
    m.run_for(Duration::from_millis(200));
    let now = m.now;
    let id = m.nodes[0].send(b, b"away", now).unwrap();
    m.run_for(Duration::from_millis(500));
    assert_eq!(received(&m.take_events(1), b"away"), 0);
    m.connect(0, 1);
    let mut log = Vec::new();
    let t = time_to_delivery(&mut m, 1, b"away", Duration::from_secs(10), &mut log);
    assert!(
        t.is_some_and(|t| t < BOUND),
        "delivered {t:?} after the link came back"
    );
    assert_eq!(m.nodes[0].stats().early_resends, 1);
    assert_eq!(m.nodes[0].stats().retries, 0, "no timer fired");
    exactly_once(&mut m, 0, 1, b"away", id, &log);
}

#[test]
fn a_handshake_started_while_the_peer_was_away_completes_when_it_comes_back() {
    let mut m = line(2, false);
    let b = m.id(1);
    m.disconnect(0);
    let now = m.now;
    let id = m.nodes[0].send(b, b"first contact", now).unwrap();
    assert_eq!(m.nodes[0].stats().handshakes, 1);
    m.run_for(Duration::from_secs(1));
    m.connect(0, 1);
    let mut log = Vec::new();
    let t = time_to_delivery(
        &mut m,
        1,
        b"first contact",
        Duration::from_secs(10),
        &mut log,
    );
    assert!(
        t.is_some_and(|t| t < BOUND),
        "delivered {t:?} after the link came back"
    );
    let s = m.nodes[0].stats();
    assert_eq!(s.early_handshakes, 1);
    assert_eq!(
        s.early_resends, 0,
        "the message waits in the session layer's queue for the handshake, not twice"
    );
    // `handshakes` counts HANDSHAKE_1 frames: the first and its early resend, no timer retry.
    assert_eq!(s.handshakes, 2);
    assert_eq!(established(&log), 1, "the same handshake, resent");
    exactly_once(&mut m, 0, 1, b"first contact", id, &log);
}

#[test]
fn a_peer_behind_a_neighbour_that_comes_back_gets_its_message_at_once() {
    // 0 - 1 - 2: the first link drops while 0 sends to 2; when it comes back, 1's PEER_SYNC teaches 0 the route
    // to 2 again.
    let mut m = line(3, false);
    warm_up(&mut m, 0, 2);
    let c = m.id(2);
    m.disconnect(0);
    let now = m.now;
    let id = m.nodes[0].send(c, b"via 1", now).unwrap();
    m.run_for(Duration::from_millis(500));
    m.connect(0, 1);
    let mut log = Vec::new();
    let t = time_to_delivery(&mut m, 2, b"via 1", Duration::from_secs(10), &mut log);
    assert!(
        t.is_some_and(|t| t < BOUND),
        "delivered {t:?} after the link came back"
    );
    assert_eq!(m.nodes[0].stats().early_resends, 1);
    exactly_once(&mut m, 0, 2, b"via 1", id, &log);
}

#[test]
fn an_ack_lost_with_the_link_is_answered_by_the_resend_and_not_delivered_twice() {
    let mut m = line(2, false);
    warm_up(&mut m, 0, 1);
    let b = m.id(1);
    let now = m.now;
    let id = m.nodes[0].send(b, b"once", now).unwrap();
    let mut log = Vec::new();
    assert!(time_to_delivery(&mut m, 1, b"once", Duration::from_secs(1), &mut log).is_some());
    // The link drops with the ACK on it.
    m.disconnect(0);
    m.run_for(Duration::from_millis(300));
    assert_eq!(confirmed(&m.take_events(0), id), 0);
    m.connect(0, 1);
    m.run_for(BOUND);
    assert_eq!(
        confirmed(&m.take_events(0), id),
        1,
        "confirmed by the resend"
    );
    assert!(m.nodes[1].stats().duplicate_messages >= 1);
    assert_eq!(m.nodes[0].stats().early_resends, 1);
    m.run_for(Duration::from_secs(30));
    log.extend(m.take_events(1));
    assert_eq!(received(&log, b"once"), 1, "delivered exactly once");
}

/// Kills node 1 while node 0 sends to it, keeps it dead for a second, restarts it from its store (`keep_sessions`:
/// with its stored sessions, else without), and returns the time from its link coming back to delivery.
fn receiver_restart(keep_sessions: bool) -> (Medium, Option<Duration>, MessageId, Vec<Event>) {
    let mut m = line(2, true);
    warm_up(&mut m, 0, 1);
    let b = m.id(1);
    m.disconnect(0);
    let now = m.now;
    let id = m.nodes[0].send(b, b"while dead", now).unwrap();
    m.run_for(Duration::from_secs(1));
    if !keep_sessions {
        m.stores[1].sessions.clear();
    }
    m.restart(1, 99);
    m.connect(0, 1);
    let mut log = Vec::new();
    let t = time_to_delivery(&mut m, 1, b"while dead", Duration::from_secs(10), &mut log);
    log.extend(m.take_events(1));
    (m, t, id, log)
}

#[test]
fn a_restarted_receiver_that_resumed_its_session_gets_the_message_at_link_up() {
    let (mut m, t, id, log) = receiver_restart(true);
    assert!(
        t.is_some_and(|t| t < BOUND),
        "delivered {t:?} after the restart"
    );
    let a_events = m.take_events(0);
    assert_eq!(
        established(&log) + established(&a_events),
        0,
        "no handshake"
    );
    m.events[0] = a_events;
    exactly_once(&mut m, 0, 1, b"while dead", id, &log);
}

#[test]
fn a_restarted_receiver_without_its_session_gets_the_message_after_one_handshake() {
    let (mut m, t, id, log) = receiver_restart(false);
    assert!(
        t.is_some_and(|t| t < BOUND),
        "delivered {t:?} after the restart"
    );
    assert_eq!(established(&log), 1, "one fresh handshake");
    let s = m.nodes[0].stats();
    // Once at link-up (on the session the peer lost, drawing UNKNOWN_SESSION), once on the new session.
    assert_eq!(s.early_resends, 2);
    assert_eq!(s.retries, 0);
    exactly_once(&mut m, 0, 1, b"while dead", id, &log);
}

/// Node 0 sends to 1 while their link is down and restarts from its store; `peer_lost_session`: node 1 restarts
/// too, without its sessions. Returns the time from the link coming back to delivery.
fn sender_restart(peer_lost_session: bool) -> (Medium, Option<Duration>, MessageId, Vec<Event>) {
    let mut m = line(2, true);
    warm_up(&mut m, 0, 1);
    let b = m.id(1);
    m.disconnect(0);
    let now = m.now;
    let id = m.nodes[0].send(b, b"from the store", now).unwrap();
    m.run_for(Duration::from_secs(1));
    assert_eq!(m.stores[0].outbox.len(), 1);
    m.restart(0, 51);
    if peer_lost_session {
        m.stores[1].sessions.clear();
        m.restart(1, 52);
    }
    m.connect(0, 1);
    let mut log = Vec::new();
    let t = time_to_delivery(
        &mut m,
        1,
        b"from the store",
        Duration::from_secs(10),
        &mut log,
    );
    log.extend(m.take_events(1));
    (m, t, id, log)
}

#[test]
fn a_restarted_sender_sends_its_restored_outbox_when_its_neighbour_binds() {
    let (mut m, t, id, log) = sender_restart(false);
    assert!(
        t.is_some_and(|t| t < BOUND),
        "delivered {t:?} after the restart"
    );
    assert_eq!(
        m.nodes[0].stats().handshakes,
        0,
        "the restored session carries it"
    );
    exactly_once(&mut m, 0, 1, b"from the store", id, &log);
}

#[test]
fn a_restarted_sender_whose_peer_lost_the_session_resends_on_the_new_one() {
    let (mut m, t, id, log) = sender_restart(true);
    assert!(
        t.is_some_and(|t| t < BOUND),
        "delivered {t:?} after the restart"
    );
    assert_eq!(established(&log), 1, "one fresh handshake");
    assert_eq!(m.nodes[0].stats().early_resends, 1, "on the new session");
    exactly_once(&mut m, 0, 1, b"from the store", id, &log);
}

/// 0 - 1 - 2 with the link 1 - 2 down: 0's messages to 2 cannot arrive. The link 0 - 1 then goes down and up
/// 100 times in 10 s, and each time 1's PEER_SYNC makes 2 reachable again for 0. Returns node 0's counters
/// after the flapping, and checks exactly-once delivery once 1 - 2 is back.
fn flapping(gap: Duration) -> mesh::node::NodeStats {
    const MESSAGES: usize = 5;
    let mut m = line_with(3, false, |c| c.route.early_resend_gap = gap);
    warm_up(&mut m, 0, 2);
    let c = m.id(2);
    m.disconnect(1);
    let now = m.now;
    let ids: Vec<MessageId> = (0..MESSAGES)
        .map(|i| m.nodes[0].send(c, format!("m{i}").as_bytes(), now).unwrap())
        .collect();
    m.run_for(Duration::from_millis(100));
    let mut link = 0;
    for _ in 0..100 {
        m.disconnect(link);
        m.run_for(Duration::from_millis(40));
        link = m.connect(0, 1);
        m.run_for(Duration::from_millis(60));
    }
    let stats = m.nodes[0].stats();
    let mut at_c = m.take_events(2);
    m.connect(1, 2);
    m.run_for(Duration::from_secs(120));
    at_c.extend(m.take_events(2));
    let at_a = m.take_events(0);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            received(&at_c, format!("m{i}").as_bytes()),
            1,
            "m{i} exactly once"
        );
        assert_eq!(confirmed(&at_a, *id), 1);
    }
    stats
}

#[test]
fn a_flapping_link_makes_a_bounded_number_of_early_resends() {
    let s = flapping(Duration::from_secs(2));
    // 10 s of flapping, one early round per 2 s gap at most: 6 rounds of 5 messages.
    let bound = 5 * (10 / 2 + 1);
    assert!(
        s.early_resends > 0 && s.early_resends <= bound,
        "{} early resends, bound {bound}",
        s.early_resends
    );
    assert!(s.early_resends_limited > 0, "the gap held some back");
    // All sends of these messages in all: the first, the timer's and the early ones.
    assert!(s.retries + s.early_resends <= bound + 3 * 5, "{s:?}");
    // The gap is what bounds it: without one, every link-up resends every message.
    let unbounded = flapping(Duration::ZERO);
    assert!(
        unbounded.early_resends >= 10 * s.early_resends,
        "{} without a gap vs {}",
        unbounded.early_resends,
        s.early_resends
    );
}

#[test]
fn early_resends_off_leaves_the_retry_timer_in_charge() {
    let mut m = line_with(2, false, |c| c.route.early_resend = false);
    warm_up(&mut m, 0, 1);
    let b = m.id(1);
    m.disconnect(0);
    let now = m.now;
    let sent = m.now;
    let id = m.nodes[0].send(b, b"away", now).unwrap();
    m.run_for(Duration::from_millis(500));
    m.connect(0, 1);
    let mut log = Vec::new();
    let t = time_to_delivery(&mut m, 1, b"away", Duration::from_secs(10), &mut log);
    let at: Option<Instant> = t.map(|t| sent + Duration::from_millis(500) + t);
    assert!(
        at.is_some_and(|at| at >= sent + Duration::from_secs(2)),
        "only the 2 s retry delivers it: {at:?}"
    );
    assert_eq!(m.nodes[0].stats().early_resends, 0);
    exactly_once(&mut m, 0, 1, b"away", id, &log);
}

/// A session closed while its peer is marked as having lost it (UNKNOWN_SESSION, handshake under way) drops the
/// mark: stale marks must not fill the table of marks and stop the resend-on-new-session for other peers.
#[test]
fn closing_a_session_whose_peer_lost_it_clears_the_mark() {
    // Node 0 in the middle of leaves 1, 2, 3; room for two sessions (so two marks); no message retry during the
    // test, so only the new-session trigger can deliver quickly.
    let mut cs = configs(4, false, |_| {});
    cs[0].session.max_peers = 2;
    cs[0].route.ack_timeout = Duration::from_secs(60);
    let mut m = Medium::with_configs(cs);
    for leaf in 1..4 {
        m.connect(0, leaf);
    }
    m.run_for(Duration::from_secs(3));
    warm_up(&mut m, 0, 1);
    warm_up(&mut m, 0, 2);
    // 1 and 2 lose their sessions; node 0's next message to each draws UNKNOWN_SESSION and marks it.
    m.restart(1, 11);
    m.restart(2, 12);
    m.run_for(Duration::from_millis(100));
    let now = m.now;
    for leaf in [1, 2] {
        let to = m.id(leaf);
        m.nodes[0].send(to, b"lost", now).unwrap();
    }
    let mut steps = 0;
    while m.nodes[0].lost_session_marks() < 2 {
        assert!(steps < 200, "both peers marked");
        m.run_for(Duration::from_millis(1));
        steps += 1;
    }
    let now = m.now;
    for leaf in [1, 2] {
        let to = m.id(leaf);
        m.nodes[0].close_session(to, now).unwrap();
    }
    assert_eq!(m.nodes[0].lost_session_marks(), 0, "closed: marks cleared");
    // A third peer that loses its session still gets its message on the new one at once.
    warm_up(&mut m, 0, 3);
    m.restart(3, 13);
    m.run_for(Duration::from_millis(100));
    let before = m.nodes[0].stats().early_resends;
    let now = m.now;
    let c = m.id(3);
    m.nodes[0].send(c, b"after closes", now).unwrap();
    let mut log = Vec::new();
    let t = time_to_delivery(
        &mut m,
        3,
        b"after closes",
        Duration::from_secs(10),
        &mut log,
    );
    assert!(
        t.is_some_and(|t| t < BOUND),
        "delivered {t:?} after the send"
    );
    assert_eq!(
        m.nodes[0].stats().early_resends,
        before + 1,
        "on the new session"
    );
    assert_eq!(m.nodes[0].lost_session_marks(), 0);
}
