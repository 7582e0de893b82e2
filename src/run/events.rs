//! The JSON of the node's events: one object per event, as `meshnode ctl listen` streams them and as the
//! `meshnode::event` log lines carry them. This module is the schema; README.md (section "The control interface")
//! lists it for users.
//!
//! Every object has `"event"` (a snake_case name). Peers are 16 hex digits (`peer`, `from`, `to`, `holder`) with
//! `nickname` beside them: the nickname the node knows for that peer, `""` when it knows none. Message ids are 16
//! hex digits, fingerprints are five groups of four hex digits (as `ctl fingerprint` prints them), every enumerated
//! value is a snake_case string, and no value is ever Rust `Debug` text.
//!
//! | `event` | other keys |
//! |---|---|
//! | `message` | `from`, `nickname`, `kind` (`private`, `broadcast`, `channel`), `channel` (name, or `null`), `id`, `text` |
//! | `delivered` | `to`, `nickname`, `id` |
//! | `delivery_failed` | `to`, `nickname`, `id`, `reason` (`expired`, `outbox_full`, `refused`) |
//! | `peer_appeared` | `peer`, `nickname` |
//! | `peer_gone` | `peer`, `nickname` |
//! | `neighbour_up`, `neighbour_down` | `link` (number), `peer`, `nickname` |
//! | `channel_unreadable` | `channel`, `from`, `nickname` |
//! | `nickname_conflict` | `peer`, `nickname` (the one claimed), `holder`, `holder_nickname` |
//! | `session_established` | `peer`, `nickname`, `fingerprint` |
//! | `session_rekeyed` | `peer`, `nickname`, `direction` (`send`, `receive`), `epoch` (number) |
//! | `session_renewal_started`, `session_renewed` | `peer`, `nickname` |
//! | `session_expired` | `peer`, `nickname`, `reason` (`age`, `messages`, `idle`) |
//! | `session_closed` | `peer`, `nickname`, `by` (`local`, `remote`), `reason` (`user`, `replaced`, `evicted`, `shutdown`) |
//! | `untrusted_identity` | `peer`, `nickname`, `pinned`, `presented` (fingerprints), `hint` |
//! | `decrypt_failed` | `peer`, `nickname` |
//! | `handshake_failed` | `peer`, `nickname`, `reason` (`noise`, `rejected`, `node_id_mismatch`, `untrusted`, `pin_store_full`, `timeout`, `unexpected_message`) |
//!
//! The control server adds `{"event":"lagged","missed":N}` when a listener fell behind, and `ctl --json listen`
//! prints `{"event":"listening"}` first.
//!
//! Invariant: every variant `mesh` has today maps to its own object above. `mesh`'s enums are `#[non_exhaustive]`,
//! so a wildcard arm remains for variants a newer `mesh` may add: it yields `{"event":"other"}` (or `"other"` for
//! a reason) and never Debug text; the tests build every variant and check that none reaches it.

use mesh::identity::NodeId;
use mesh::node::{DeliveryFailure, Event, MessageKind};
use mesh::session::{
    CloseOrigin, CloseReason, Direction, ExpiryReason, HandshakeFailure, SessionEvent,
};
use serde_json::{json, Value};

/// The `event` name, or the value of an enumerated field, for something this version of meshnode does not know.
pub const UNKNOWN: &str = "other";

/// The JSON object of `event`; `nickname` gives the nickname known for a peer (`""` for none).
pub fn event_json(event: &Event, nickname: &dyn Fn(NodeId) -> String) -> Value {
    let peer = |name: &str, id: &NodeId| json!({"event": name, "peer": id.to_string(), "nickname": nickname(*id)});
    match event {
        Event::MessageReceived {
            from,
            kind,
            id,
            payload,
        } => {
            let (kind, channel) = match kind {
                MessageKind::Private => ("private", None),
                MessageKind::Broadcast => ("broadcast", None),
                MessageKind::Channel(c) => ("channel", Some(c.as_str())),
                _ => (UNKNOWN, None),
            };
            json!({"event": "message", "from": from.to_string(), "nickname": nickname(*from), "kind": kind,
                   "channel": channel, "id": message_id(id.0), "text": String::from_utf8_lossy(payload)})
        }
        Event::DeliveryConfirmed { to, id } => {
            json!({"event": "delivered", "to": to.to_string(), "nickname": nickname(*to), "id": message_id(id.0)})
        }
        Event::DeliveryFailed { to, id, reason } => {
            let reason = match reason {
                DeliveryFailure::Expired => "expired",
                DeliveryFailure::OutboxFull => "outbox_full",
                DeliveryFailure::Refused => "refused",
                _ => UNKNOWN,
            };
            json!({"event": "delivery_failed", "to": to.to_string(), "nickname": nickname(*to),
                   "id": message_id(id.0), "reason": reason})
        }
        Event::PeerAppeared { peer, nickname } => {
            json!({"event": "peer_appeared", "peer": peer.to_string(), "nickname": nickname})
        }
        Event::PeerGone { peer: id } => peer("peer_gone", id),
        Event::NeighbourUp { link, peer: id } => {
            let mut v = peer("neighbour_up", id);
            v["link"] = json!(link.0);
            v
        }
        Event::NeighbourDown { link, peer: id } => {
            let mut v = peer("neighbour_down", id);
            v["link"] = json!(link.0);
            v
        }
        Event::ChannelUnreadable { channel, from } => {
            json!({"event": "channel_unreadable", "channel": channel, "from": from.to_string(),
                   "nickname": nickname(*from)})
        }
        Event::NicknameConflict {
            peer,
            nickname: claimed,
            holder,
        } => {
            json!({"event": "nickname_conflict", "peer": peer.to_string(), "nickname": claimed,
                   "holder": holder.to_string(), "holder_nickname": nickname(*holder)})
        }
        Event::Session(e) => session_json(e, nickname),
        _ => json!({"event": UNKNOWN}),
    }
}

fn session_json(event: &SessionEvent, nickname: &dyn Fn(NodeId) -> String) -> Value {
    let base = |name: &str, id: &NodeId| json!({"event": name, "peer": id.to_string(), "nickname": nickname(*id)});
    let with = |mut v: Value, fields: Value| {
        if let (Value::Object(v), Value::Object(fields)) = (&mut v, fields) {
            v.extend(fields);
        }
        v
    };
    match event {
        SessionEvent::Established { peer, remote } => with(
            base("session_established", peer),
            json!({"fingerprint": remote.fingerprint().to_string()}),
        ),
        SessionEvent::Rekeyed {
            peer,
            direction,
            epoch,
        } => with(
            base("session_rekeyed", peer),
            json!({"direction": direction_name(*direction), "epoch": epoch}),
        ),
        SessionEvent::RenewalStarted { peer } => base("session_renewal_started", peer),
        SessionEvent::Renewed { peer } => base("session_renewed", peer),
        SessionEvent::Expired { peer, reason } => with(
            base("session_expired", peer),
            json!({"reason": expiry_name(*reason)}),
        ),
        SessionEvent::Closed { peer, by, reason } => with(
            base("session_closed", peer),
            json!({"by": origin_name(*by), "reason": close_name(*reason)}),
        ),
        SessionEvent::UntrustedIdentity {
            peer,
            pinned,
            presented,
        } => with(
            base("untrusted_identity", peer),
            json!({
                "pinned": pinned.to_string(),
                "presented": presented.to_string(),
                "hint": format!(
                    "{peer} presented keys other than the ones pinned for it, so no session was made; compare the \
                     presented fingerprint with the peer's own `meshnode ctl fingerprint` out of band, and only \
                     if they match run `meshnode ctl trust {peer}`"
                ),
            }),
        ),
        SessionEvent::DecryptFailed { peer } => base("decrypt_failed", peer),
        SessionEvent::HandshakeFailed { peer, reason } => with(
            base("handshake_failed", peer),
            json!({"reason": handshake_failure_name(*reason)}),
        ),
        _ => json!({"event": UNKNOWN}),
    }
}

fn message_id(id: u64) -> String {
    format!("{id:016x}")
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Send => "send",
        Direction::Receive => "receive",
    }
}

fn expiry_name(r: ExpiryReason) -> &'static str {
    match r {
        ExpiryReason::Age => "age",
        ExpiryReason::Messages => "messages",
        ExpiryReason::Idle => "idle",
    }
}

fn origin_name(o: CloseOrigin) -> &'static str {
    match o {
        CloseOrigin::Local => "local",
        CloseOrigin::Remote => "remote",
    }
}

fn close_name(r: CloseReason) -> &'static str {
    match r {
        CloseReason::User => "user",
        CloseReason::Replaced => "replaced",
        CloseReason::Evicted => "evicted",
        CloseReason::Shutdown => "shutdown",
    }
}

fn handshake_failure_name(r: HandshakeFailure) -> &'static str {
    match r {
        HandshakeFailure::Noise => "noise",
        HandshakeFailure::Rejected => "rejected",
        HandshakeFailure::NodeIdMismatch => "node_id_mismatch",
        HandshakeFailure::Untrusted => "untrusted",
        HandshakeFailure::PinStoreFull => "pin_store_full",
        HandshakeFailure::Timeout => "timeout",
        HandshakeFailure::UnexpectedMessage => "unexpected_message",
        _ => UNKNOWN,
    }
}

/// One of every event `mesh` has today, with every value of every enumerated field: what the tests (here and in
/// `ctl`) check the JSON and the human lines against.
#[cfg(test)]
pub fn every_event() -> Vec<Event> {
    use mesh::identity::Identity;
    use mesh::node::{LinkId, MessageId};
    use rand_chacha::rand_core::SeedableRng;

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let a = Identity::generate(&mut rng);
    let b = Identity::generate(&mut rng);
    let peer = a.node_id();
    let other = b.node_id();
    let id = MessageId(0x0102_0304_0506_0708);
    let mut events = vec![
        Event::MessageReceived {
            from: peer,
            kind: MessageKind::Private,
            id,
            payload: b"hi".to_vec(),
        },
        Event::MessageReceived {
            from: peer,
            kind: MessageKind::Broadcast,
            id,
            payload: b"to all".to_vec(),
        },
        Event::MessageReceived {
            from: peer,
            kind: MessageKind::Channel("general".into()),
            id,
            payload: b"on general".to_vec(),
        },
        Event::DeliveryConfirmed { to: peer, id },
        Event::PeerAppeared {
            peer,
            nickname: "alice".into(),
        },
        Event::PeerGone { peer },
        Event::NeighbourUp {
            link: LinkId(3),
            peer,
        },
        Event::NeighbourDown {
            link: LinkId(3),
            peer,
        },
        Event::ChannelUnreadable {
            channel: "general".into(),
            from: peer,
        },
        Event::NicknameConflict {
            peer: other,
            nickname: "alice".into(),
            holder: peer,
        },
    ];
    for reason in [
        DeliveryFailure::Expired,
        DeliveryFailure::OutboxFull,
        DeliveryFailure::Refused,
    ] {
        events.push(Event::DeliveryFailed {
            to: peer,
            id,
            reason,
        });
    }
    let mut session = vec![
        SessionEvent::Established {
            peer,
            remote: *a.public(),
        },
        SessionEvent::RenewalStarted { peer },
        SessionEvent::Renewed { peer },
        SessionEvent::UntrustedIdentity {
            peer,
            pinned: a.public().fingerprint(),
            presented: b.public().fingerprint(),
        },
        SessionEvent::DecryptFailed { peer },
    ];
    for direction in [Direction::Send, Direction::Receive] {
        session.push(SessionEvent::Rekeyed {
            peer,
            direction,
            epoch: 4,
        });
    }
    for reason in [
        ExpiryReason::Age,
        ExpiryReason::Messages,
        ExpiryReason::Idle,
    ] {
        session.push(SessionEvent::Expired { peer, reason });
    }
    for by in [CloseOrigin::Local, CloseOrigin::Remote] {
        for reason in [
            CloseReason::User,
            CloseReason::Replaced,
            CloseReason::Evicted,
            CloseReason::Shutdown,
        ] {
            session.push(SessionEvent::Closed { peer, by, reason });
        }
    }
    for reason in [
        HandshakeFailure::Noise,
        HandshakeFailure::Rejected,
        HandshakeFailure::NodeIdMismatch,
        HandshakeFailure::Untrusted,
        HandshakeFailure::PinStoreFull,
        HandshakeFailure::Timeout,
        HandshakeFailure::UnexpectedMessage,
    ] {
        session.push(SessionEvent::HandshakeFailed { peer, reason });
    }
    events.extend(session.into_iter().map(Event::Session));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(id: NodeId) -> String {
        // Some ids have a nickname and others none, as on a real node.
        if id.0[0] % 2 == 0 {
            "alice".into()
        } else {
            String::new()
        }
    }

    /// Every string in `v`, recursively.
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(m) => m.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_event_has_its_own_shape_and_no_debug_text() {
        let mut names = std::collections::BTreeSet::new();
        for e in every_event() {
            let v = event_json(&e, &nick);
            let name = v["event"].as_str().unwrap_or_default().to_string();
            assert!(!name.is_empty() && name != UNKNOWN, "{e:?} -> {v}");
            let mut all = Vec::new();
            strings(&v, &mut all);
            for s in &all {
                assert_ne!(s, UNKNOWN, "{e:?} -> {v}");
                // Debug renderings of mesh's types look like `Name { field: .. }` or `Name(..)`.
                assert!(
                    !s.contains('{') && !s.contains("NodeId") && !s.contains("Fingerprint"),
                    "{e:?} -> {v}"
                );
            }
            // Every object names its peer with the nickname beside it.
            let obj = v.as_object().unwrap();
            assert!(obj.contains_key("nickname"), "{v}");
            for key in ["peer", "from", "to", "holder"] {
                if let Some(id) = obj.get(key) {
                    let id = id.as_str().unwrap();
                    assert_eq!(id.len(), 16, "{v}");
                    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
                }
            }
            names.insert(name);
        }
        let expected = [
            "message",
            "delivered",
            "delivery_failed",
            "peer_appeared",
            "peer_gone",
            "neighbour_up",
            "neighbour_down",
            "channel_unreadable",
            "nickname_conflict",
            "session_established",
            "session_rekeyed",
            "session_renewal_started",
            "session_renewed",
            "session_expired",
            "session_closed",
            "untrusted_identity",
            "decrypt_failed",
            "handshake_failed",
        ];
        assert_eq!(
            names,
            expected.iter().map(|s| s.to_string()).collect(),
            "event names"
        );
    }

    #[test]
    fn session_events_carry_their_fields() {
        let events = every_event();
        let find = |name: &str, pred: &dyn Fn(&Value) -> bool| {
            events
                .iter()
                .map(|e| event_json(e, &nick))
                .find(|v| v["event"] == name && pred(v))
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let v = find("session_established", &|_| true);
        let fp = v["fingerprint"].as_str().unwrap();
        assert_eq!(fp.len(), 24, "{v}");
        assert_eq!(fp.split(' ').count(), 5, "{v}");
        let v = find("session_rekeyed", &|v| v["direction"] == "receive");
        assert_eq!(v["epoch"], 4);
        for reason in ["age", "messages", "idle"] {
            find("session_expired", &|v| v["reason"] == reason);
        }
        for by in ["local", "remote"] {
            for reason in ["user", "replaced", "evicted", "shutdown"] {
                find("session_closed", &|v| {
                    v["by"] == by && v["reason"] == reason
                });
            }
        }
        for reason in [
            "noise",
            "rejected",
            "node_id_mismatch",
            "untrusted",
            "pin_store_full",
            "timeout",
            "unexpected_message",
        ] {
            find("handshake_failed", &|v| v["reason"] == reason);
        }
        let v = find("untrusted_identity", &|_| true);
        let peer = v["peer"].as_str().unwrap();
        assert_ne!(v["pinned"], v["presented"]);
        let hint = v["hint"].as_str().unwrap();
        assert!(
            hint.contains(&format!("meshnode ctl trust {peer}")),
            "{hint}"
        );
        for reason in ["expired", "outbox_full", "refused"] {
            find("delivery_failed", &|v| v["reason"] == reason);
        }
    }

    #[test]
    fn messages_name_their_kind_and_channel() {
        let events = every_event();
        let msgs: Vec<Value> = events
            .iter()
            .map(|e| event_json(e, &nick))
            .filter(|v| v["event"] == "message")
            .collect();
        let kinds: Vec<(&str, Value)> = msgs
            .iter()
            .map(|v| (v["kind"].as_str().unwrap(), v["channel"].clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("private", Value::Null),
                ("broadcast", Value::Null),
                ("channel", json!("general")),
            ]
        );
        assert_eq!(msgs[2]["text"], "on general");
        assert_eq!(msgs[0]["id"], "0102030405060708");
        let v = event_json(
            &Event::ChannelUnreadable {
                channel: "ops".into(),
                from: NodeId([2; 8]),
            },
            &nick,
        );
        assert_eq!(
            v,
            json!({"event": "channel_unreadable", "channel": "ops", "from": "0202020202020202",
                   "nickname": "alice"})
        );
    }
}
