//! Nodes that store their `Action::Persist` records (PROTOCOL.md §6.11, §7.8) and restart from the store alone:
//! sessions resume without a handshake, the outbox survives, and every message is delivered exactly once.

mod node_medium;

use mesh::node::{Event, RelayPolicy};
use mesh::session::SessionEvent;
use mesh::time::Duration;
use node_medium::{confirmed, received, Medium};

fn persisting_line(n: usize) -> Medium {
    let configs = (0..n)
        .map(|i| {
            let mut c = node_medium::config(i, RelayPolicy::Managed);
            c.session.persist = true;
            c
        })
        .collect();
    let mut m = Medium::with_configs(configs);
    for i in 0..n - 1 {
        m.connect(i, i + 1);
    }
    m.run_for(Duration::from_secs(3));
    m
}

fn established(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Session(SessionEvent::Established { .. })))
        .count()
}

#[test]
fn a_restarted_node_resumes_its_session_and_delivers_exactly_once() {
    let mut m = persisting_line(3);
    let (a, c) = (m.id(0), m.id(2));
    let now = m.now;
    let first = m.nodes[0].send(c, b"before", now).unwrap();
    m.run_for(Duration::from_secs(3));
    assert_eq!(received(&m.take_events(2), b"before"), 1);
    assert_eq!(confirmed(&m.take_events(0), first), 1);
    assert!(m.stores[0].sessions.contains_key(&c));
    assert!(m.stores[0].pins.contains_key(&c));
    assert!(
        m.stores[0].outbox.is_empty(),
        "acknowledged messages are forgotten"
    );
    assert!(m.stores[2].seen.keys().any(|(from, _)| *from == a));

    m.restart(0, 99);
    m.run_for(Duration::from_secs(2));
    let now = m.now;
    let second = m.nodes[0].send(c, b"after", now).unwrap();
    m.run_for(Duration::from_secs(3));
    let at_c = m.take_events(2);
    let at_a = m.take_events(0);
    assert_eq!(received(&at_c, b"after"), 1);
    assert_eq!(confirmed(&at_a, second), 1);
    assert_eq!(
        established(&at_c) + established(&at_a),
        0,
        "no new handshake"
    );
    assert_eq!(m.nodes[0].stats().handshakes, 0);
}

#[test]
fn the_outbox_survives_a_restart() {
    let mut m = persisting_line(3);
    let c = m.id(2);
    // The far end drops out; a message is accepted and waits.
    m.disconnect(1);
    let now = m.now;
    let id = m.nodes[0].send(c, b"patience", now).unwrap();
    m.run_for(Duration::from_secs(5));
    assert_eq!(m.stores[0].outbox.len(), 1);
    m.restart(0, 42);
    m.run_for(Duration::from_secs(1));
    m.connect(1, 2);
    m.run_for(Duration::from_secs(120));
    assert_eq!(received(&m.take_events(2), b"patience"), 1);
    assert_eq!(confirmed(&m.take_events(0), id), 1);
    assert!(m.stores[0].outbox.is_empty());
}

#[test]
fn a_receiver_restarted_before_its_ack_arrived_does_not_deliver_twice() {
    let mut m = persisting_line(3);
    let c = m.id(2);
    let now = m.now;
    let id = m.nodes[0].send(c, b"once", now).unwrap();
    // Step until the receiver has it, then kill it at once: its ACK is still on the way and is lost.
    let mut delivered = 0;
    for _ in 0..5_000 {
        m.run_for(Duration::from_millis(1));
        delivered += received(&m.take_events(2), b"once");
        if delivered > 0 {
            break;
        }
    }
    assert_eq!(delivered, 1);
    m.restart(2, 77);
    // The sender resends the same message id; the restarted receiver acknowledges it without delivering it.
    m.run_for(Duration::from_secs(30));
    assert_eq!(received(&m.take_events(2), b"once"), 0);
    assert_eq!(confirmed(&m.take_events(0), id), 1);
    assert!(m.nodes[0].stats().retries >= 1);
    assert!(m.nodes[2].stats().duplicate_messages >= 1);
}

#[test]
fn when_the_peer_lost_the_session_a_new_handshake_carries_the_messages() {
    let mut m = persisting_line(3);
    let c = m.id(2);
    let now = m.now;
    m.nodes[0].send(c, b"first", now).unwrap();
    m.run_for(Duration::from_secs(3));
    assert_eq!(received(&m.take_events(2), b"first"), 1);
    // The far end loses everything it stored: it comes back with its identity and nothing else.
    m.stores[2] = node_medium::Store::default();
    m.restart(2, 5);
    m.run_for(Duration::from_secs(2));
    let now = m.now;
    let ids: Vec<_> = (0..3)
        .map(|i| {
            m.nodes[0]
                .send(c, format!("again {i}").as_bytes(), now)
                .unwrap()
        })
        .collect();
    m.run_for(Duration::from_secs(60));
    let at_c = m.take_events(2);
    let at_a = m.take_events(0);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(received(&at_c, format!("again {i}").as_bytes()), 1);
        assert_eq!(confirmed(&at_a, *id), 1);
    }
    assert_eq!(established(&at_c), 1, "one fresh handshake");
    assert!(m.stores[0].outbox.is_empty());
}
