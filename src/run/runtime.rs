//! The node loop of `meshnode run`: one tokio task drives one `NodeDriver` (node + link policy) with one radio
//! backend, answers control calls, and publishes events to `ctl listen` clients.
//!
//! Each turn: run the backend's timers, drain radio events into the node (bounded batch), run the node's timers,
//! put its packets on the air, publish its events; then wait for the earliest of radio readiness, the node's or the
//! radio's deadline, a control call, or shutdown. Invariant: the loop never blocks on I/O other than that wait, every
//! queue it feeds is bounded, and at shutdown sessions are closed and links disconnected before it returns.
//!
//! The store: a peer that appears is recorded (nickname, first and last seen) in the `peers` tree, and at shutdown
//! every known peer's last-seen time is written and the store flushed. Store errors here are logged, never fatal:
//! the node keeps running on what it has in memory. Channels are the exception that must not be lost silently: a
//! join is stored (key sealed, flushed) before it is answered, and a join the store refuses is refused; a leave
//! removes the record first; at start the stored channels are rejoined with their keys, without deriving them again.

use std::sync::Arc;

use mesh::identity::NodeId;
use mesh::node::{Event, NodeError, PayloadKind, SessionState};
use meshnode::store::{unix_now, Store};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::backend::Backend;
use super::control::{resolve_peer, Call, Command, Reply};
use super::driver::NodeDriver;
use super::Clock;

/// Radio events handled per turn at most, so a flood cannot starve timers and control calls.
const EVENT_BATCH: usize = 1_024;

/// The answer to `stats`: every counter a JSON number, grouped by who counts it (README.md, "The control
/// interface", lists the groups).
#[derive(Debug, serde::Serialize)]
pub struct Stats {
    /// The protocol core: [`mesh::node::NodeStats`].
    pub node: mesh::node::NodeStats,
    /// The session layer's refusals by reason: [`mesh::session::DropCounters`].
    pub session_drops: mesh::session::DropCounters,
    /// Packet reassembly over every link so far: [`mesh::link::ReassemblyStats`].
    pub reassembly: mesh::link::ReassemblyStats,
    /// The link policy between node and radio: [`super::driver::DriverStats`].
    pub driver: super::driver::DriverStats,
    /// `udp`, `ble` or `sim`: which counters `radio` holds.
    pub radio_kind: &'static str,
    /// The radio's counters.
    pub radio: super::backend::RadioStats,
    /// The store's peers tree: [`meshnode::store::PeerStats`].
    pub store: meshnode::store::PeerStats,
    /// Events published to listeners (and to the log).
    pub events_published: u64,
    /// Control calls answered.
    pub control_calls: u64,
    /// The node's estimate of the memory it holds, in bytes.
    pub memory_bytes: usize,
}

/// What the loop knows besides the node.
pub struct Loop {
    /// Node and link policy.
    pub driver: NodeDriver,
    /// The radio.
    pub backend: Backend,
    /// The node's store (unlocked; the identity in it is the node's).
    pub store: std::sync::Arc<Store>,
    /// Node time.
    pub clock: Clock,
    /// Event lines for listeners.
    pub events: broadcast::Sender<Arc<str>>,
    /// This node's fingerprint, for `status` and `fingerprint`.
    pub fingerprint: String,
    /// `ble`, `udp` or `sim`.
    pub radio_name: &'static str,
    /// Events published, and events no listener was there for (not an error: counted for `stats`).
    pub events_published: u64,
    /// Control calls answered.
    pub calls_answered: u64,
    /// Why the loop stopped on its own (storage failed), if it did.
    pub fatal: Option<String>,
}

impl Loop {
    /// Runs until `shutdown` resolves (or storing the node's state fails: the error is returned); then says
    /// goodbye to peers and closes links.
    pub async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        shutdown: impl std::future::Future<Output = &'static str>,
    ) -> Result<(), String> {
        tokio::pin!(shutdown);
        self.rejoin_stored_channels();
        let mut more = false;
        loop {
            more = self.turn(more);
            if let Some(e) = self.driver.persist_error() {
                self.fatal = Some(format!(
                    "cannot store the node's state: {e}; the node stopped so that no nonce is ever reused and no \
                     accepted message is lost (check the disk and the data directory, then start it again)"
                ));
                break;
            }
            let deadline = self.deadline(more);
            tokio::select! {
                why = &mut shutdown => {
                    tracing::info!(signal = why, "shutting down");
                    break;
                }
                () = self.backend.ready() => {}
                () = sleep_until(deadline) => {}
                call = calls.recv() => {
                    if let Some(call) = call {
                        let now = self.clock.now();
                        let reply = self.handle(call.command, now);
                        self.calls_answered = self.calls_answered.saturating_add(1);
                        let _ = call.reply.send(reply);
                    }
                }
            }
        }
        self.stop();
        match self.fatal.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One turn; returns whether radio events were left for the next one.
    fn turn(&mut self, _more: bool) -> bool {
        self.backend.process(&self.clock);
        let now = self.clock.now();
        let driver = &mut self.driver;
        let mut left = false;
        self.backend.with_radio(|radio| {
            let mut n = 0;
            while let Some(event) = radio.poll_event() {
                driver.on_radio_event(event, radio, now);
                driver.drain_actions(radio);
                n += 1;
                if n >= EVENT_BATCH {
                    left = true;
                    break;
                }
            }
            driver.on_time(now);
            driver.drain_actions(radio);
        });
        self.publish_events();
        left
    }

    fn deadline(&self, more: bool) -> Option<tokio::time::Instant> {
        if more {
            return Some(tokio::time::Instant::now());
        }
        let node = self
            .driver
            .node
            .poll_timeout()
            .map(|t| self.clock.to_tokio(t));
        let radio = self.backend.next_deadline(&self.clock);
        [node, radio].into_iter().flatten().min()
    }

    /// The nickname known for `id`: from its announces, else from the store (a peer that just went away),
    /// else `""`.
    /// The nickname shown beside `id` in events: the peers table's, else (a peer just gone) the store's.
    fn nickname_of(&self, id: NodeId) -> String {
        if let Some(nick) = self.driver.node.peer_nickname(&id) {
            return nick.to_string();
        }
        match self.store.peer(id) {
            Ok(Some(record)) => record.nickname,
            _ => String::new(),
        }
    }

    fn publish_events(&mut self) {
        while let Some(event) = self.driver.node.poll_event() {
            if let Event::PeerAppeared { peer, nickname } = &event {
                if let Err(e) = self.store.record_peer_seen(*peer, nickname, unix_now()) {
                    tracing::warn!(peer = %peer, "cannot record the peer in the store: {e}");
                }
            }
            let value = self.event_json(&event);
            // Message text is private (decrypted, or for members only): never in the log above TRACE.
            tracing::info!(target: "meshnode::event", "{}", log_view(&value));
            tracing::trace!(target: "meshnode::event", "{value}");
            self.events_published = self.events_published.saturating_add(1);
            // No listener is fine: send only fails when nobody subscribes.
            let _ = self.events.send(Arc::from(value.to_string()));
        }
    }

    fn event_json(&self, event: &Event) -> Value {
        let value = super::events::event_json(event, &|id| self.nickname_of(id));
        if value["event"] == super::events::UNKNOWN {
            // A variant added to `mesh` after this version: never put in the JSON, logged in full only at TRACE
            // (it may carry message text).
            tracing::warn!(
                "an event this version of meshnode cannot describe (details at TRACE level)"
            );
            tracing::trace!(?event, "the event this version of meshnode cannot describe");
        }
        value
    }

    fn candidates(&self) -> Vec<(NodeId, String)> {
        let mut c: Vec<(NodeId, String)> = self
            .driver
            .node
            .peers()
            .into_iter()
            .map(|p| (p.id, p.nickname))
            .collect();
        for n in self.driver.node.neighbours() {
            if !c.iter().any(|(id, _)| *id == n.peer) {
                c.push((n.peer, n.nickname));
            }
        }
        c
    }

    fn peer(&self, spec: &str) -> Result<NodeId, String> {
        let node = &self.driver.node;
        resolve_peer(spec, (node.node_id(), node.nickname()), &self.candidates())
    }

    fn handle(&mut self, command: Command, now: mesh::time::Instant) -> Reply {
        let reply = match command {
            Command::Status => Ok(self.status()),
            Command::Fingerprint => Ok(json!({
                "id": self.driver.node.node_id().to_string(),
                "fingerprint": self.fingerprint(),
            })),
            Command::Peers => Ok(self.peers_json(now, false)),
            Command::Sessions => Ok(self.peers_json(now, true)),
            Command::Stats => serde_json::to_value(self.stats())
                .map_err(|e| format!("cannot encode the counters: {e}")),
            Command::Send { peer, text } => {
                let candidates = self.candidates();
                let node = &self.driver.node;
                let id = resolve_peer(&peer, (node.node_id(), node.nickname()), &candidates)?;
                let known = candidates.iter().any(|(c, _)| *c == id);
                let msg = self
                    .driver
                    .node
                    .send(id, text.as_bytes(), now)
                    .map_err(|e| {
                        let max = self.driver.node.max_payload(PayloadKind::Private);
                        send_error(&format!("cannot send to {id}"), e, text.len(), max)
                    })?;
                Ok(send_answer(id, msg.0, known))
            }
            Command::Broadcast { text } => {
                let msg = self
                    .driver
                    .node
                    .broadcast(text.as_bytes(), now)
                    .map_err(|e| {
                        let max = self.driver.node.max_payload(PayloadKind::Broadcast);
                        send_error("cannot broadcast", e, text.len(), max)
                    })?;
                Ok(json!({"id": format!("{:016x}", msg.0), "channel": null}))
            }
            Command::SendChannel { channel, text } => {
                let msg = self
                    .driver
                    .node
                    .send_channel(&channel, text.as_bytes(), now)
                    .map_err(|e| {
                        let max = self.driver.node.max_payload(PayloadKind::Channel);
                        send_channel_error(&channel, e, text.len(), max)
                    })?;
                Ok(json!({"id": format!("{:016x}", msg.0), "channel": channel}))
            }
            Command::Join { key } => {
                let name = key.name().to_string();
                let node = &self.driver.node;
                let max = node.max_channels();
                if !node.has_joined(&name) && node.joined_channels().count() >= max {
                    return Err(format!(
                        "cannot join {name:?}: this node has joined {max} channels, the most it can; leave one first \
                         (`meshnode ctl leave CHANNEL`)"
                    ));
                }
                // Stored (and flushed) before the node uses it and the join is answered: a restart rejoins it.
                self.store
                    .save_channel(&key, max)
                    .map_err(|e| format!("cannot join {name:?}: {e}"))?;
                self.driver
                    .node
                    .join_channel(&name, key)
                    .map_err(|e| format!("cannot join {name:?}: {e}"))?;
                tracing::info!(channel = %name, "joined channel");
                Ok(json!({"channel": name}))
            }
            Command::Leave { channel } => {
                // Forgotten by the store first: a leave answered is not undone by a restart.
                let stored = self
                    .store
                    .remove_channel(&channel)
                    .map_err(|e| format!("cannot leave {channel:?}: {e}"))?;
                match self.driver.node.leave_channel(&channel) {
                    Ok(()) => {}
                    // A stored record the node could not rejoin (damaged): removing it was the leave.
                    Err(_) if stored => {}
                    Err(e) => return Err(format!("cannot leave {channel:?}: {e}")),
                }
                tracing::info!(channel = %channel, "left channel");
                Ok(json!({"channel": channel}))
            }
            Command::Trust { peer } => {
                let id = self.peer(&peer)?;
                self.driver.node.trust(id).map_err(|e| {
                    format!("cannot trust {id}: {e} (trust applies after a handshake was refused for changed keys)")
                })?;
                tracing::warn!(peer = %id, "new keys trusted by the operator");
                Ok(json!({"peer": id.to_string()}))
            }
            Command::Close { peer } => {
                let id = self.peer(&peer)?;
                self.driver
                    .node
                    .close_session(id, now)
                    .map_err(|e| format!("cannot close the session with {id}: {e}"))?;
                Ok(json!({"peer": id.to_string()}))
            }
            Command::CloseAll => {
                self.driver
                    .node
                    .close_all(mesh::session::CloseReason::User, now);
                Ok(json!({"closed": "all"}))
            }
        };
        // A command may have produced packets and events: perform them now.
        let driver = &mut self.driver;
        self.backend.with_radio(|radio| driver.drain_actions(radio));
        self.publish_events();
        reply
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn status(&self) -> Value {
        let peers = self.driver.node.peers();
        let sessions = peers.iter().filter(|p| p.session.is_established()).count();
        json!({
            "id": self.driver.node.node_id().to_string(),
            "nickname": self.driver.node.nickname(),
            "fingerprint": self.fingerprint(),
            "radio": self.radio_name,
            "uptime_s": self.clock.uptime_ms() / 1000,
            "links": self.driver.links_up(),
            "neighbours": self.driver.node.neighbours().len(),
            "peers": peers.len(),
            "sessions": sessions,
        })
    }

    fn peers_json(&self, now: mesh::time::Instant, sessions_only: bool) -> Value {
        let list: Vec<Value> = self
            .driver
            .node
            .peers()
            .into_iter()
            .filter(|p| !sessions_only || p.session != SessionState::None)
            .map(|p| {
                json!({
                    "id": p.id.to_string(),
                    "nickname": p.nickname,
                    "hops": p.hops,
                    "session": p.session.is_established(),
                    "state": p.session.name(),
                    "last_heard_s": now.saturating_since(p.last_heard).total_millis() / 1000,
                    "fingerprint": p.fingerprint.to_string(),
                    "nickname_conflict": p.nickname_conflict,
                })
            })
            .collect();
        Value::Array(list)
    }

    fn stats(&self) -> Stats {
        Stats {
            node: self.driver.node.stats(),
            session_drops: self.driver.node.session_drops(),
            reassembly: self.driver.node.reassembly_stats(),
            driver: self.driver.stats(),
            radio_kind: self.radio_name,
            radio: self.backend.stats(),
            store: self.store.peer_stats(),
            events_published: self.events_published,
            control_calls: self.calls_answered,
            memory_bytes: self.driver.node.memory_bytes(),
        }
    }

    fn stop(&mut self) {
        let now = self.clock.now();
        self.driver
            .node
            .close_all(mesh::session::CloseReason::Shutdown, now);
        let driver = &mut self.driver;
        self.backend.with_radio(|radio| {
            driver.drain_actions(radio);
            driver.disconnect_all(radio);
        });
        // Let the backend put the goodbyes and disconnects on the air.
        self.backend.process(&self.clock);
        self.publish_events();
        tracing::info!("radio stopped, sessions closed");
        self.save_last_seen(now);
    }
}

impl Loop {
    /// Rejoins the channels the store keeps (joined before a restart), with their stored keys: no password, no
    /// derivation. One that cannot be read or joined is logged with the way out and left out; the node runs on.
    fn rejoin_stored_channels(&mut self) {
        let mut joined = Vec::new();
        for stored in self.store.load_channels() {
            let key = match stored {
                Ok(key) => key,
                Err(e) => {
                    tracing::error!("{e}");
                    continue;
                }
            };
            let name = key.name().to_string();
            match self.driver.node.join_channel(&name, key) {
                Ok(()) => joined.push(name),
                Err(e) => tracing::error!(channel = %name,
                    "a stored channel was not rejoined: {e}; leave it (`meshnode ctl leave CHANNEL`) to forget it"),
            }
        }
        if !joined.is_empty() {
            tracing::info!(channels = ?joined, "rejoined the channels joined before the restart");
        }
    }

    /// Writes every known peer's last-seen time (its last announce, in wall-clock seconds) and flushes the store.
    fn save_last_seen(&self, now: mesh::time::Instant) {
        let wall = unix_now();
        for p in self.driver.node.peers() {
            let ago = now.saturating_since(p.last_heard).total_millis() / 1000;
            if let Err(e) = self
                .store
                .record_peer_seen(p.id, &p.nickname, wall.saturating_sub(ago))
            {
                tracing::warn!(peer = %p.id, "cannot record the peer in the store: {e}");
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::warn!("cannot flush the store: {e}");
        }
    }
}

/// The answer to `send`: `queued` is true when the peer is not known yet, and `note` then says what happens.
fn send_answer(to: NodeId, msg: u64, known: bool) -> Value {
    let mut v = json!({"to": to.to_string(), "id": format!("{msg:016x}"), "queued": !known});
    if !known {
        v["note"] = json!(format!(
            "peer {to} is not known yet: the message waits in the outbox and will be delivered when the peer \
             appears (or fails when it expires)"
        ));
    }
    v
}

/// An event as the log shows it at INFO: a message's text replaced by its length in bytes.
fn log_view(event: &Value) -> Value {
    let mut v = event.clone();
    if let Some(map) = v.as_object_mut() {
        if let Some(Value::String(text)) = map.remove("text") {
            map.insert("bytes".into(), json!(text.len()));
        }
    }
    v
}

/// What a user reads when a message of `len` bytes was refused: `what` says what was being done; a message too long
/// is told the limit (`max`) for its kind.
fn send_error(what: &str, e: NodeError, len: usize, max: usize) -> String {
    match e {
        NodeError::MessageTooLong => format!(
            "{what}: the message is {len} bytes and one holds at most {max}; send a shorter one, or split it"
        ),
        other => format!("{what}: {other}"),
    }
}

/// What a user reads when a message on `channel` was refused.
fn send_channel_error(channel: &str, e: NodeError, len: usize, max: usize) -> String {
    match e {
        NodeError::NotJoined => format!(
            "this node has not joined channel {channel:?}, so nothing was sent: run `meshnode ctl join {}` first \
             (it asks for the channel's password)",
            shell_word(channel)
        ),
        other => send_error(&format!("cannot send on channel {channel:?}"), other, len, max),
    }
}

/// `s` as one shell word: as it is when it is plain, else in single quotes.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+:@/,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::super::backend::RadioStats;
    use super::*;

    /// Every counter in `v` (an object of objects and numbers) is a number; returns the names.
    fn counters(v: &Value) -> Vec<String> {
        let map = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {v}"));
        for (k, x) in map {
            assert!(x.is_u64(), "{k} is {x}");
        }
        map.keys().cloned().collect()
    }

    #[test]
    fn stats_are_numbers_grouped_by_who_counts_them() {
        let radios = [
            (
                "udp",
                RadioStats::Udp(hal::udp::UdpStats::default()),
                "datagrams_received",
            ),
            (
                "ble",
                RadioStats::Ble(hal::ble::BleStats::default()),
                "io_failures",
            ),
            (
                "sim",
                RadioStats::Sim(hal::sim::NodeStats::default()),
                "lost_random",
            ),
        ];
        for (kind, radio, key) in radios {
            let stats = Stats {
                node: mesh::node::NodeStats::default(),
                session_drops: mesh::session::DropCounters::default(),
                reassembly: mesh::link::ReassemblyStats::default(),
                driver: super::super::driver::DriverStats::default(),
                radio_kind: kind,
                radio,
                store: meshnode::store::PeerStats::default(),
                events_published: 1,
                control_calls: 2,
                memory_bytes: 3,
            };
            let v = serde_json::to_value(&stats).unwrap();
            let node = counters(&v["node"]);
            for k in [
                "packets_in",
                "frames_out",
                "sessions_established",
                "hop_acks_sent",
            ] {
                assert!(node.iter().any(|n| n == k), "node.{k}");
            }
            assert!(counters(&v["session_drops"]).iter().any(|n| n == "replay"));
            assert!(counters(&v["reassembly"]).iter().any(|n| n == "gaps"));
            assert!(counters(&v["driver"]).iter().any(|n| n == "links_up"));
            assert!(counters(&v["radio"]).iter().any(|n| n == key), "{kind}");
            assert!(counters(&v["store"]).iter().any(|n| n == "records"));
            assert_eq!(v["radio_kind"], kind);
            for k in ["events_published", "control_calls", "memory_bytes"] {
                assert!(v[k].is_u64(), "{k}");
            }
        }
    }

    #[test]
    fn the_log_view_of_a_message_has_its_length_not_its_text() {
        let e = json!({"event": "message", "from": "0102030405060708", "nickname": "a", "kind": "private",
            "channel": null, "id": "0000000000000001", "text": "secret words"});
        let v = log_view(&e);
        assert!(!v.to_string().contains("secret"), "{v}");
        assert_eq!(v["bytes"], 12);
        for k in ["from", "kind", "channel", "id", "nickname"] {
            assert_eq!(v[k], e[k], "{k}");
        }
        let other = json!({"event": "peer_gone", "peer": "0102030405060708", "nickname": ""});
        assert_eq!(log_view(&other), other);
    }

    #[test]
    fn a_send_to_an_unknown_peer_says_it_is_queued() {
        let to = NodeId([1, 2, 3, 4, 5, 6, 7, 8]);
        let v = send_answer(to, 5, true);
        assert_eq!(
            v,
            json!({"to": "0102030405060708", "id": "0000000000000005", "queued": false})
        );
        let v = send_answer(to, 5, false);
        assert_eq!(v["queued"], true);
        assert!(
            v["note"]
                .as_str()
                .unwrap()
                .contains("will be delivered when the peer appears"),
            "{v}"
        );
    }

    #[test]
    fn an_unjoined_channel_says_how_to_join_it() {
        let e = send_channel_error("general", NodeError::NotJoined, 2, 4026);
        assert!(e.contains("meshnode ctl join general` first"), "{e}");
        assert!(e.contains("nothing was sent"), "{e}");
        let e = send_channel_error("my team's", NodeError::NotJoined, 2, 4026);
        assert!(e.contains(r"meshnode ctl join 'my team'\''s'"), "{e}");
        let e = send_channel_error("x", NodeError::MessageTooLong, 5000, 4026);
        assert!(e.contains("5000 bytes and one holds at most 4026"), "{e}");
        let e = send_error("cannot broadcast", NodeError::MessageTooLong, 2000, 1024);
        assert!(
            e.contains("cannot broadcast: the message is 2000 bytes"),
            "{e}"
        );
    }
}
