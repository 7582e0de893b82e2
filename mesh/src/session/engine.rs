//! The machinery behind [`Sessions`]: frame handlers per kind, handshake progress and retransmission, the limit
//! rules applied to each peer, and frame construction.
//!
//! Invariant: handlers check in order of cost (header, rate limit, body parse, replay window, AEAD or Noise) and
//! change state only after the last check passed; every frame leaves through `push_frame` with a fresh random
//! frame id from the seeded RNG and the configured TTL.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::*;

impl Sessions {
    pub(super) fn count(&mut self, e: SessionError) -> SessionError {
        self.drops.count(e);
        e
    }

    fn push_frame(&mut self, to: NodeId, frame: Vec<u8>) {
        if self.transmits.len() >= MAX_OUTPUT {
            self.transmits.pop_front();
            self.drops.output_overflow += 1;
        }
        self.transmits.push_back(Outgoing { to, frame });
    }

    fn push_event(&mut self, ev: SessionEvent) {
        if self.events.len() >= MAX_OUTPUT {
            self.events.pop_front();
            self.drops.output_overflow += 1;
        }
        self.events.push_back(ev);
    }

    fn header(&mut self, kind: Kind, dst: NodeId) -> Header {
        Header {
            kind,
            ttl: self.cfg.default_ttl.min(wire::MAX_TTL),
            frame_id: self.rng.next_u32(),
            src: self.id,
            dst,
        }
    }

    pub(super) fn push_handshake(
        &mut self,
        kind: Kind,
        peer: NodeId,
        session_id: u8,
        noise: &[u8],
    ) {
        let header = self.header(kind, peer);
        let body = wire::Handshake { session_id, noise };
        let mut frame = alloc::vec![0u8; HEADER_LEN + body.buffer_len()];
        let (h, b) = frame.split_at_mut(HEADER_LEN);
        header.emit(h);
        body.emit(b);
        self.push_frame(peer, frame);
    }

    fn seed(&mut self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        seed
    }

    /// Makes sure `peer` has an entry, evicting per §6.10 if the table is full.
    pub(super) fn ensure_peer(&mut self, peer: NodeId, now: Instant) -> Result<(), SessionError> {
        match self.table.make_room(&peer) {
            Err(()) => return Err(self.count(SessionError::TableFull)),
            Ok(Some((victim, mut entry))) => {
                if let Some(s) = entry.current.as_mut() {
                    if !s.hard_limit {
                        let header = self.header(Kind::Close, victim);
                        let code = [CloseReason::Evicted.code()];
                        if let Some(f) = s.tx.seal(&header, s.id, &code, &self.cfg.padding_buckets)
                        {
                            self.push_frame(victim, f);
                        }
                    }
                    self.push_event(SessionEvent::Closed {
                        peer: victim,
                        by: CloseOrigin::Local,
                        reason: CloseReason::Evicted,
                    });
                }
            }
            Ok(None) => {}
        }
        let bucket = TokenBucket::new(&self.cfg, now);
        self.table.entry(peer, bucket);
        Ok(())
    }

    pub(super) fn can_send(&self, peer: &NodeId) -> bool {
        self.table
            .get(peer)
            .and_then(|p| p.current.as_ref())
            .is_some_and(|s| !s.hard_limit)
    }

    /// Seals on `current` (which must be able to send) and queues the frame.
    pub(super) fn seal_and_push(
        &mut self,
        peer: NodeId,
        kind: Kind,
        plaintext: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        let header = self.header(kind, peer);
        let p = self.table.get_mut(&peer).ok_or(SessionError::NoSession)?;
        let s = p.current.as_mut().ok_or(SessionError::NoSession)?;
        let frame =
            s.tx.seal(&header, s.id, plaintext, &self.cfg.padding_buckets)
                .ok_or(SessionError::NonceExhausted)?;
        s.last_activity = now;
        s.tx_frames += 1;
        s.tx_bytes += plaintext.len() as u64;
        if kind == Kind::Transport {
            s.messages += 1;
        }
        self.push_frame(peer, frame);
        Ok(())
    }

    /// Starts a handshake (first session or renewal) as initiator.
    pub(super) fn start_handshake(
        &mut self,
        peer: NodeId,
        now: Instant,
    ) -> Result<(), SessionError> {
        if self.table.handshakes() >= self.cfg.max_handshakes {
            return Err(self.count(SessionError::TooManyHandshakes));
        }
        let start = (self.rng.next_u32() & 0xff) as u8;
        let p = self.table.get(&peer).ok_or(SessionError::NoSession)?;
        let sid = (0..=255u8)
            .map(|i| start.wrapping_add(i))
            .find(|id| !p.id_in_use(*id))
            .ok_or(SessionError::TooManyHandshakes)?;
        let seed = self.seed();
        let hs = Handshake::initiate(
            &self.identity,
            peer,
            sid,
            seed,
            now,
            self.cfg.handshake_retry,
        )
        .map_err(SessionError::Handshake)?;
        let msg = hs.last_sent.clone();
        if let Some(p) = self.table.get_mut(&peer) {
            p.next = Some(hs);
            p.answered_first = None;
        }
        self.push_handshake(Kind::Handshake1, peer, sid, &msg);
        Ok(())
    }

    fn fail_handshake(&mut self, peer: NodeId, reason: HandshakeFailure) {
        self.push_event(SessionEvent::HandshakeFailed { peer, reason });
        let Some(p) = self.table.get_mut(&peer) else {
            return;
        };
        p.next = None;
        p.answered_first = None;
        // §6.9: a session at its hard limit whose renewal failed expires.
        if let Some(s) = p.current.as_ref().filter(|s| s.hard_limit) {
            let why = if s.messages >= self.cfg.max_messages {
                ExpiryReason::Messages
            } else {
                ExpiryReason::Age
            };
            p.current = None;
            p.queue.clear();
            self.push_event(SessionEvent::Expired { peer, reason: why });
        }
        if let Some(p) = self.table.get_mut(&peer) {
            if p.current.is_none() {
                p.queue.clear();
            }
        }
    }

    /// Resends the last handshake message or gives up (§6.8).
    pub(super) fn handshake_timer(&mut self, peer: NodeId, now: Instant) {
        let (retry, max) = (self.cfg.handshake_retry, self.cfg.handshake_retries);
        let Some(h) = self.table.get_mut(&peer).and_then(|p| p.next.as_mut()) else {
            return;
        };
        if now < h.next_retry {
            return;
        }
        if h.retries >= max {
            self.fail_handshake(peer, HandshakeFailure::Timeout);
            return;
        }
        h.retries += 1;
        h.next_retry = now + retry;
        let (kind, sid, msg) = h.last_message();
        self.push_handshake(kind, peer, sid, &msg);
    }

    /// Applies the limit rules of `timers::due` to the sessions of `peer`.
    pub(super) fn apply_rules(&mut self, peer: NodeId, now: Instant) {
        if let Some(p) = self.table.get_mut(&peer) {
            if let Some(prev) = &p.previous {
                if due(&self.cfg, &prev.clock(false), now) != Due::Nothing {
                    p.previous = None;
                }
            }
        }
        for _ in 0..4 {
            let Some(p) = self.table.get_mut(&peer) else {
                return;
            };
            let renewing = p.next.is_some();
            let Some(s) = p.current.as_mut() else {
                return;
            };
            match due(&self.cfg, &s.clock(renewing), now) {
                Due::Nothing | Due::GraceEnded => return,
                Due::Idle => {
                    p.current = None;
                    p.queue.clear();
                    self.push_event(SessionEvent::Expired {
                        peer,
                        reason: ExpiryReason::Idle,
                    });
                    return;
                }
                Due::HardLimitAge | Due::HardLimitMessages => {
                    s.hard_limit = true;
                    if !renewing {
                        if self.start_handshake(peer, now).is_ok() {
                            self.push_event(SessionEvent::RenewalStarted { peer });
                        } else {
                            let reason = HandshakeFailure::Timeout;
                            self.fail_handshake(peer, reason);
                        }
                    }
                    return;
                }
                Due::StartRenewal => {
                    if self.start_handshake(peer, now).is_ok() {
                        self.push_event(SessionEvent::RenewalStarted { peer });
                    } else if let Some(s) =
                        self.table.get_mut(&peer).and_then(|p| p.current.as_mut())
                    {
                        // Could not start now (handshake cap, rate limit): retry later instead of on every
                        // poll, and let the other rules (rekey) run meanwhile.
                        s.renewal_retry_at = Some(now + self.cfg.handshake_retry);
                    }
                }
                Due::Rekey => {
                    s.tx.rekey(now);
                    let epoch = s.tx.epoch();
                    self.push_event(SessionEvent::Rekeyed {
                        peer,
                        direction: Direction::Send,
                        epoch,
                    });
                }
            }
        }
    }

    fn check_pin(&mut self, peer: NodeId, remote: &PublicIdentity) -> Result<(), HandshakeFailure> {
        match self.pins.check(peer, remote) {
            PinCheck::Pinned => Ok(()),
            PinCheck::New if self.pins.has_room_for(&peer) => Ok(()),
            PinCheck::New => Err(HandshakeFailure::PinStoreFull),
            PinCheck::Mismatch { pinned, presented } => {
                self.push_event(SessionEvent::UntrustedIdentity {
                    peer,
                    pinned,
                    presented,
                });
                Err(HandshakeFailure::Untrusted)
            }
        }
    }

    /// Installs a finished handshake as `current`; the old `current` becomes `previous` (decrypt-only).
    fn establish(
        &mut self,
        peer: NodeId,
        id: u8,
        remote: PublicIdentity,
        keys: handshake::SplitKeys,
        confirm: Option<Vec<u8>>,
        now: Instant,
    ) {
        let first_pin = self.pins.get(&peer).is_none();
        if self.pins.pin_new(peer, &remote) && first_pin && self.cfg.persist {
            self.persisted.pin(peer, remote);
        }
        let mut tx = Sender::new(keys.send.clone(), now);
        if self.cfg.persist {
            tx.set_reservation_block(self.cfg.nonce_reservation);
        }
        let session = Session::new(
            id,
            remote,
            tx,
            Receiver::new(keys.recv.clone()),
            now,
            confirm,
        );
        drop(keys);
        let grace = now + self.cfg.renewal_grace;
        let Some(p) = self.table.get_mut(&peer) else {
            return;
        };
        p.next = None;
        p.answered_first = None;
        let renewed = match p.current.take() {
            Some(mut old) => {
                old.retired_until = Some(grace);
                p.previous = Some(Box::new(old));
                true
            }
            None => false,
        };
        p.current = Some(session);
        let queued: Vec<Queued> = p.queue.drain(..).collect();
        self.push_event(if renewed {
            SessionEvent::Renewed { peer }
        } else {
            SessionEvent::Established { peer, remote }
        });
        for q in queued {
            // Cannot fail on a session established just now (it has a current slot and nonce 0), but a failure
            // must never vanish silently: it is counted like any refused send.
            if let Err(e) = self.seal_and_push(peer, q.kind, &q.plaintext, now) {
                self.count(e);
            }
        }
        self.apply_rules(peer, now);
    }

    pub(super) fn on_first(
        &mut self,
        peer: NodeId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        let hs = wire::Handshake::parse(body)?;
        // A resent HANDSHAKE_1 we already answered: resend HANDSHAKE_2, no new state, no token.
        if let Some(p) = self.table.get(&peer) {
            if let (Some(h), Some(first)) = (&p.next, &p.answered_first) {
                if !h.initiator && h.session_id == hs.session_id && first.as_slice() == hs.noise {
                    let msg = h.last_sent.clone();
                    self.push_handshake(Kind::Handshake2, peer, hs.session_id, &msg);
                    return Ok(());
                }
            }
            // Crossed handshakes (§6.8): the smaller node id keeps its own.
            if p.next.as_ref().is_some_and(|h| h.initiator) && self.id < peer {
                return Err(SessionError::CrossedHandshake);
            }
        }
        self.ensure_peer(peer, now)?;
        let replacing = self.table.get(&peer).is_some_and(|p| p.next.is_some());
        if !replacing && self.table.handshakes() >= self.cfg.max_handshakes {
            self.table.prune();
            return Err(SessionError::TooManyHandshakes);
        }
        let cfg = self.cfg.clone();
        let p = self.table.get_mut(&peer).ok_or(SessionError::NoSession)?;
        if !p.bucket.take(&cfg, now) {
            self.table.prune();
            return Err(SessionError::RateLimited);
        }
        let seed = self.seed();
        let h = match Handshake::respond(
            &self.identity,
            peer,
            hs.session_id,
            hs.noise,
            seed,
            now,
            cfg.handshake_retry,
        ) {
            Ok(h) => h,
            Err(e) => {
                self.table.prune();
                return Err(SessionError::Handshake(e));
            }
        };
        let msg = h.last_sent.clone();
        if let Some(p) = self.table.get_mut(&peer) {
            // Our own handshake, if any, is abandoned (crossed, larger id) or superseded by the peer's.
            p.next = Some(h);
            p.answered_first = Some(hs.noise.to_vec());
        }
        self.push_handshake(Kind::Handshake2, peer, hs.session_id, &msg);
        Ok(())
    }

    pub(super) fn on_second(
        &mut self,
        peer: NodeId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        let hs = wire::Handshake::parse(body)?;
        let Some(p) = self.table.get_mut(&peer) else {
            return Err(SessionError::UnexpectedHandshake);
        };
        let ours = p
            .next
            .as_ref()
            .is_some_and(|h| h.initiator && h.session_id == hs.session_id);
        if !ours {
            // A resent HANDSHAKE_2 for a session we finished: our HANDSHAKE_3 was lost; resend it.
            let resend = p
                .current
                .as_ref()
                .filter(|s| s.id == hs.session_id)
                .and_then(|s| s.confirm.clone());
            return match resend {
                Some(third) => {
                    self.push_handshake(Kind::Handshake3, peer, hs.session_id, &third);
                    Ok(())
                }
                None => Err(SessionError::UnexpectedHandshake),
            };
        }
        let Some(h) = p.next.as_mut() else {
            return Err(SessionError::UnexpectedHandshake);
        };
        let result = h
            .read_second(&self.identity, hs.noise)
            .map(|(remote, third, keys)| (remote, (third, keys)));
        let (remote, (third, keys)) = self.vet_handshake_read(peer, result)?;
        self.push_handshake(Kind::Handshake3, peer, hs.session_id, &third);
        self.establish(peer, hs.session_id, remote, keys, Some(third), now);
        Ok(())
    }

    pub(super) fn on_third(
        &mut self,
        peer: NodeId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        let hs = wire::Handshake::parse(body)?;
        let h = self
            .table
            .get_mut(&peer)
            .and_then(|p| p.next.as_mut())
            .filter(|h| !h.initiator && h.session_id == hs.session_id)
            .ok_or(SessionError::UnexpectedHandshake)?;
        let result = h.read_third(&self.identity, hs.noise);
        let (remote, keys) = self.vet_handshake_read(peer, result)?;
        self.establish(peer, hs.session_id, remote, keys, None, now);
        Ok(())
    }

    /// Vets the result of reading handshake message 2 or 3: a message that did not verify changes nothing (the
    /// handshake waits for the genuine one); any other failure, or keys other than the peer's pin, ends it.
    fn vet_handshake_read<T>(
        &mut self,
        peer: NodeId,
        result: Result<(PublicIdentity, T), HandshakeFailure>,
    ) -> Result<(PublicIdentity, T), SessionError> {
        let (remote, rest) = match result {
            Ok(v) => v,
            Err(e @ HandshakeFailure::Rejected) => return Err(SessionError::Handshake(e)),
            Err(e) => {
                self.fail_handshake(peer, e);
                return Err(SessionError::Handshake(e));
            }
        };
        if let Err(e) = self.check_pin(peer, &remote) {
            self.fail_handshake(peer, e);
            return Err(SessionError::Handshake(e));
        }
        Ok((remote, rest))
    }

    pub(super) fn on_sealed(
        &mut self,
        peer: NodeId,
        kind: Kind,
        frame: &[u8],
        body: &[u8],
        now: Instant,
    ) -> Result<Option<Delivered>, SessionError> {
        let sealed = Sealed::parse(body)?;
        let grace = self.cfg.epoch_grace;
        let Some(p) = self.table.get_mut(&peer) else {
            return Err(self.unknown_session(peer, &sealed, now));
        };
        let Some(s) = p.session_mut(sealed.session_id) else {
            if p.next
                .as_ref()
                .is_some_and(|h| h.session_id == sealed.session_id)
            {
                return Err(SessionError::HandshakeIncomplete);
            }
            return Err(self.unknown_session(peer, &sealed, now));
        };
        let rx_epoch = s.rx.epoch();
        let plaintext = match s.rx.open(frame, &sealed, grace, now) {
            Ok(pt) => pt,
            Err(e) => {
                let err = match e {
                    OpenError::StaleEpoch => SessionError::StaleEpoch,
                    OpenError::TooOld => SessionError::TooOld,
                    OpenError::Replay => SessionError::Replay,
                    OpenError::Decrypt => SessionError::Decrypt,
                    OpenError::BadPadding => SessionError::BadPadding,
                };
                if err == SessionError::Decrypt {
                    self.push_event(SessionEvent::DecryptFailed { peer });
                }
                return Err(err);
            }
        };
        s.last_activity = now;
        s.confirm = None;
        s.rx_frames += 1;
        s.rx_bytes += plaintext.len() as u64;
        if kind == Kind::Transport {
            s.messages += 1;
        }
        let new_epoch = s.rx.epoch();
        let session_id = s.id;
        if new_epoch != rx_epoch {
            self.push_event(SessionEvent::Rekeyed {
                peer,
                direction: Direction::Receive,
                epoch: new_epoch,
            });
        }
        if kind == Kind::Close {
            let reason = CloseReason::from_code(plaintext.first().copied().unwrap_or(0));
            if let Some(p) = self.table.get_mut(&peer) {
                if p.current.as_ref().is_some_and(|s| s.id == session_id) {
                    p.current = None;
                    p.queue.clear();
                } else if p.previous.as_ref().is_some_and(|s| s.id == session_id) {
                    p.previous = None;
                }
            }
            self.table.prune();
            self.push_event(SessionEvent::Closed {
                peer,
                by: CloseOrigin::Remote,
                reason,
            });
            return Ok(None);
        }
        self.apply_rules(peer, now);
        Ok(Some(Delivered {
            from: peer,
            kind,
            plaintext,
        }))
    }

    /// Answers a sealed frame with no session by UNKNOWN_SESSION, at most once per peer per second (§5.5).
    fn unknown_session(&mut self, peer: NodeId, sealed: &Sealed<'_>, now: Instant) -> SessionError {
        let interval = timers::UNKNOWN_SESSION_INTERVAL;
        let recent = |t: &Option<Instant>| t.is_some_and(|t| now.saturating_since(t) < interval);
        if let Some(p) = self.table.get_mut(&peer) {
            if recent(&p.last_unknown_reply) {
                return SessionError::UnknownSession;
            }
            p.last_unknown_reply = Some(now);
        } else {
            // No entry is created for a stranger; the per-peer limit then relies on a global one.
            if recent(&self.last_stranger_reply) {
                return SessionError::UnknownSession;
            }
            self.last_stranger_reply = Some(now);
        }
        let header = self.header(Kind::UnknownSession, peer);
        let body = UnknownSession {
            session_id: sealed.session_id,
            epoch_flags: sealed.epoch_flags(),
        };
        let mut frame = alloc::vec![0u8; HEADER_LEN + UnknownSession::LEN];
        let (h, b) = frame.split_at_mut(HEADER_LEN);
        header.emit(h);
        body.emit(b);
        self.push_frame(peer, frame);
        SessionError::UnknownSession
    }

    pub(super) fn on_unknown_session(
        &mut self,
        peer: NodeId,
        body: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        let hint = UnknownSession::parse(body)?;
        let cfg = self.cfg.clone();
        let p = self.table.get_mut(&peer).ok_or(SessionError::NoSession)?;
        if p.session_mut(hint.session_id).is_none() {
            return Err(SessionError::NoSession);
        }
        if p.next.is_some() {
            return Ok(());
        }
        if !p.bucket.take(&cfg, now) {
            return Err(SessionError::RateLimited);
        }
        // A hint only: start a new handshake; the old session is replaced when the new one is established.
        self.start_handshake(peer, now)?;
        self.push_event(SessionEvent::RenewalStarted { peer });
        Ok(())
    }

    pub(super) fn close_with(
        &mut self,
        peer: NodeId,
        reason: CloseReason,
        now: Instant,
    ) -> Result<(), SessionError> {
        if self.table.get(&peer).is_none() {
            return Err(SessionError::NoSession);
        }
        let had_session = self.table.get(&peer).is_some_and(|p| p.current.is_some());
        if had_session && self.can_send(&peer) {
            self.seal_and_push(peer, Kind::Close, &[reason.code()], now)?;
        }
        self.table.remove(&peer);
        if had_session {
            self.push_event(SessionEvent::Closed {
                peer,
                by: CloseOrigin::Local,
                reason,
            });
        }
        Ok(())
    }
}
