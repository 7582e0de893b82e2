//! Session limits and their clock (PROTOCOL.md §6.5, §6.8, §6.9): [`SessionConfig`] with every limit as a named
//! default, and [`due`], the one function that decides what a session must do at a given instant.
//!
//! Invariant: every time- or count-based rule of a session lives in [`due`], one commented branch per rule, and
//! [`next_deadline`] names the earliest instant at which [`due`] could answer differently, so the runtime's
//! timer never needs to poll and a spurious wake-up finds nothing to do.

use alloc::vec::Vec;

use crate::time::{Duration, Instant};

/// Sealed frames a sender sends in one epoch before moving to the next (PROTOCOL.md §6.5).
pub const REKEY_AFTER_MESSAGES: u64 = 250;
/// Age of an epoch after which the sender moves to the next (PROTOCOL.md §6.5).
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(15 * 60);
/// How long a receiver keeps the previous epoch's key (PROTOCOL.md §6.5).
pub const EPOCH_GRACE: Duration = Duration::from_secs(30);
/// Hard limit on a session's age (PROTOCOL.md §6.9).
pub const MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Hard limit on a session's messages, both directions (PROTOCOL.md §6.9).
pub const MAX_MESSAGES: u64 = 1000;
/// Percentage of either hard limit at which renewal starts (PROTOCOL.md §6.9).
pub const RENEW_AT_PERCENT: u64 = 80;
/// A session with no frame either way for this long expires (PROTOCOL.md §6.9).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long a replaced session still decrypts (PROTOCOL.md §6.9).
pub const RENEWAL_GRACE: Duration = Duration::from_secs(60);
/// Time before a handshake message is resent (PROTOCOL.md §6.8).
pub const HANDSHAKE_RETRY: Duration = Duration::from_secs(5);
/// Resends of a handshake message before giving up (PROTOCOL.md §6.8).
pub const HANDSHAKE_RETRIES: u32 = 3;
/// Size of the per-peer HANDSHAKE_1 token bucket (PROTOCOL.md §6.8).
pub const HANDSHAKE_BURST: u32 = 2;
/// One token comes back every this long (PROTOCOL.md §6.8).
pub const HANDSHAKE_REFILL: Duration = Duration::from_secs(2);
/// Handshakes in progress at once (PROTOCOL.md §6.8).
pub const MAX_HANDSHAKES: usize = 16;
/// Peers with session state (PROTOCOL.md §6.10).
pub const MAX_PEERS: usize = 64;
/// Messages waiting per peer for a session (PROTOCOL.md §6.9).
pub const MAX_QUEUED_PER_PEER: usize = 32;
/// Pinned identities (PROTOCOL.md §6.7).
pub const MAX_PINS: usize = 1024;
/// Padding buckets (PROTOCOL.md §6.6).
pub const PADDING_BUCKETS: [usize; 6] = [32, 64, 128, 256, 512, 1024];
/// TTL of originated frames (PROTOCOL.md §4.3).
pub const DEFAULT_TTL: u8 = crate::wire::DEFAULT_TTL;
/// Send nonces reserved at a time when sessions are persisted (PROTOCOL.md §6.11): each reservation costs one
/// durable write before the first nonce of the block goes on air; 128 makes that about 8 writes per direction in a
/// session's 1000 messages (acknowledgements included), and a crash skips at most 128 nonces of 2^64.
pub const NONCE_RESERVATION: u64 = 128;
/// UNKNOWN_SESSION replies per peer: at most one per this interval (PROTOCOL.md §5.5).
pub const UNKNOWN_SESSION_INTERVAL: Duration = Duration::from_secs(1);

/// Every limit of the session layer. `Default` gives the values of PROTOCOL.md.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// [`REKEY_AFTER_MESSAGES`].
    pub rekey_after_messages: u64,
    /// [`REKEY_AFTER_TIME`].
    pub rekey_after_time: Duration,
    /// [`EPOCH_GRACE`].
    pub epoch_grace: Duration,
    /// [`MAX_AGE`].
    pub max_age: Duration,
    /// [`MAX_MESSAGES`].
    pub max_messages: u64,
    /// [`RENEW_AT_PERCENT`].
    pub renew_at_percent: u64,
    /// [`IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// [`RENEWAL_GRACE`].
    pub renewal_grace: Duration,
    /// [`HANDSHAKE_RETRY`].
    pub handshake_retry: Duration,
    /// [`HANDSHAKE_RETRIES`].
    pub handshake_retries: u32,
    /// [`HANDSHAKE_BURST`].
    pub handshake_burst: u32,
    /// [`HANDSHAKE_REFILL`].
    pub handshake_refill: Duration,
    /// [`MAX_HANDSHAKES`].
    pub max_handshakes: usize,
    /// [`MAX_PEERS`].
    pub max_peers: usize,
    /// [`MAX_QUEUED_PER_PEER`].
    pub max_queued_per_peer: usize,
    /// [`MAX_PINS`].
    pub max_pins: usize,
    /// [`PADDING_BUCKETS`]; empty turns padding off.
    pub padding_buckets: Vec<usize>,
    /// [`DEFAULT_TTL`].
    pub default_ttl: u8,
    /// Emit session snapshots for durable storage (PROTOCOL.md §6.11): off unless the runtime stores them.
    pub persist: bool,
    /// [`NONCE_RESERVATION`].
    pub nonce_reservation: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            rekey_after_messages: REKEY_AFTER_MESSAGES,
            rekey_after_time: REKEY_AFTER_TIME,
            epoch_grace: EPOCH_GRACE,
            max_age: MAX_AGE,
            max_messages: MAX_MESSAGES,
            renew_at_percent: RENEW_AT_PERCENT,
            idle_timeout: IDLE_TIMEOUT,
            renewal_grace: RENEWAL_GRACE,
            handshake_retry: HANDSHAKE_RETRY,
            handshake_retries: HANDSHAKE_RETRIES,
            handshake_burst: HANDSHAKE_BURST,
            handshake_refill: HANDSHAKE_REFILL,
            max_handshakes: MAX_HANDSHAKES,
            max_peers: MAX_PEERS,
            max_queued_per_peer: MAX_QUEUED_PER_PEER,
            max_pins: MAX_PINS,
            padding_buckets: PADDING_BUCKETS.to_vec(),
            default_ttl: DEFAULT_TTL,
            persist: false,
            nonce_reservation: NONCE_RESERVATION,
        }
    }
}

impl SessionConfig {
    /// Total time a handshake may take: the first send plus every retry.
    pub fn handshake_lifetime(&self) -> Duration {
        Duration::from_millis(
            self.handshake_retry
                .total_millis()
                .saturating_mul(u64::from(self.handshake_retries) + 1),
        )
    }
}

/// What a session is, as far as its limits are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clock {
    /// When the handshake completed.
    pub established: Instant,
    /// Last frame sent or accepted.
    pub last_activity: Instant,
    /// TRANSPORT frames sent plus accepted.
    pub messages: u64,
    /// When the send direction entered its epoch.
    pub tx_epoch_started: Instant,
    /// Sealed frames sent in the current send epoch.
    pub tx_in_epoch: u64,
    /// Replaced by a newer session: decrypt-only until this instant.
    pub retired_until: Option<Instant>,
    /// A renewal handshake with this peer is in progress.
    pub renewing: bool,
    /// A hard limit was reached: only idle expiry (or the renewal's outcome) remains.
    pub hard_limit: bool,
    /// A due renewal could not start; it is retried from this instant.
    pub renewal_retry_at: Option<Instant>,
}

/// What [`due`] asks the caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing now.
    Nothing,
    /// Erase this replaced session: its renewal grace is over.
    GraceEnded,
    /// Erase: no frame either way for `idle_timeout`.
    Idle,
    /// Never send again on this session (age limit); renew if not renewing.
    HardLimitAge,
    /// Never send again on this session (message limit); renew if not renewing.
    HardLimitMessages,
    /// Start a renewal handshake.
    StartRenewal,
    /// Move the send direction to the next epoch before sealing.
    Rekey,
}

fn renew_threshold(cfg: &SessionConfig) -> (Duration, u64) {
    let pct = cfg.renew_at_percent.min(100);
    let msgs = (u128::from(cfg.max_messages) * u128::from(pct) / 100) as u64;
    (cfg.max_age.mul_ratio(pct, 100), msgs)
}

/// The one place where the limits of a session are decided, in priority order.
pub(crate) fn due(cfg: &SessionConfig, c: &Clock, now: Instant) -> Due {
    let age = now.saturating_since(c.established);
    let (renew_age, renew_msgs) = renew_threshold(cfg);
    // Rule 1 (§6.9): a replaced session only decrypts, for `renewal_grace`, and is then erased.
    if let Some(until) = c.retired_until {
        return if now >= until {
            Due::GraceEnded
        } else {
            Due::Nothing
        };
    }
    // Rule 2 (§6.9): no frame either way for `idle_timeout` → expire.
    if now.saturating_since(c.last_activity) >= cfg.idle_timeout {
        return Due::Idle;
    }
    // Rule 3 (§6.9): at 100 % of max_age the session never sends again.
    if age >= cfg.max_age {
        return Due::HardLimitAge;
    }
    // Rule 4 (§6.9): at 100 % of max_messages likewise.
    if c.messages >= cfg.max_messages {
        return Due::HardLimitMessages;
    }
    // Rule 5 (§6.9): from renew_at_percent of either limit, start a renewal (once); one that could not start
    // (too many handshakes in progress) waits for its retry instant, and meanwhile the rules below still apply.
    let renewal_may_start = c.renewal_retry_at.is_none_or(|at| now >= at);
    if !c.renewing && renewal_may_start && (age >= renew_age || c.messages >= renew_msgs) {
        return Due::StartRenewal;
    }
    // Rule 6 (§6.5): the send epoch is full or old → REKEY before the next seal.
    if c.tx_in_epoch >= cfg.rekey_after_messages
        || now.saturating_since(c.tx_epoch_started) >= cfg.rekey_after_time
    {
        return Due::Rekey;
    }
    Due::Nothing
}

/// The earliest instant after which [`due`] may answer something else than now (count-based rules change only
/// with traffic, which the caller evaluates at once).
pub(crate) fn next_deadline(cfg: &SessionConfig, c: &Clock) -> Instant {
    if let Some(until) = c.retired_until {
        return until;
    }
    let (renew_age, _) = renew_threshold(cfg);
    let mut t = c.last_activity + cfg.idle_timeout;
    if c.hard_limit {
        return t;
    }
    t = t.min(c.established + cfg.max_age);
    if !c.renewing {
        // A retry instant is set only while a renewal is due (by age or by count), so it is the renewal's
        // deadline; otherwise the age threshold is (count thresholds move only with traffic).
        t = t.min(c.renewal_retry_at.unwrap_or(c.established + renew_age));
    }
    t.min(c.tx_epoch_started + cfg.rekey_after_time)
}

/// The per-peer HANDSHAKE_1 token bucket (PROTOCOL.md §6.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TokenBucket {
    tokens: u32,
    last_refill: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(cfg: &SessionConfig, now: Instant) -> Self {
        TokenBucket {
            tokens: cfg.handshake_burst,
            last_refill: now,
        }
    }

    /// Takes a token if one is available at `now`.
    pub fn take(&mut self, cfg: &SessionConfig, now: Instant) -> bool {
        let step = cfg.handshake_refill.total_millis().max(1);
        let elapsed = now.saturating_since(self.last_refill).total_millis();
        let earned = elapsed / step;
        if earned > 0 {
            let earned32 = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self
                .tokens
                .saturating_add(earned32)
                .min(cfg.handshake_burst);
            self.last_refill =
                self.last_refill + Duration::from_millis(earned.saturating_mul(step));
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock {
            established: Instant::ZERO,
            last_activity: Instant::ZERO,
            messages: 0,
            tx_epoch_started: Instant::ZERO,
            tx_in_epoch: 0,
            retired_until: None,
            renewal_retry_at: None,
            renewing: false,
            hard_limit: false,
        }
    }

    #[test]
    fn a_renewal_that_could_not_start_waits_and_does_not_block_rekeying() {
        let cfg = SessionConfig::default();
        let t = |s| Instant::from_secs(s);
        let mut c = clock();
        c.messages = 800; // renewal due (80 % of 1000)
        c.last_activity = t(100);
        c.renewal_retry_at = Some(t(105));
        c.tx_in_epoch = 250;
        // Before the retry instant the renewal waits and the rekey rule is reached.
        assert_eq!(due(&cfg, &c, t(100)), Due::Rekey);
        c.tx_in_epoch = 0;
        assert_eq!(due(&cfg, &c, t(100)), Due::Nothing);
        // The deadline is the retry instant, never an instant in the past.
        assert_eq!(next_deadline(&cfg, &c), t(105));
        assert_eq!(due(&cfg, &c, t(105)), Due::StartRenewal);
    }

    #[test]
    fn each_rule_fires_at_its_limit() {
        let cfg = SessionConfig::default();
        let t = |s| Instant::from_secs(s);
        let mut c = clock();
        assert_eq!(due(&cfg, &c, t(0)), Due::Nothing);
        c.tx_in_epoch = 250;
        assert_eq!(due(&cfg, &c, t(0)), Due::Rekey);
        c.tx_in_epoch = 0;
        c.last_activity = t(899);
        assert_eq!(due(&cfg, &c, t(899)), Due::Nothing);
        assert_eq!(due(&cfg, &c, t(900)), Due::Rekey);
        c.messages = 800;
        assert_eq!(due(&cfg, &c, t(1)), Due::StartRenewal);
        c.renewing = true;
        assert_eq!(due(&cfg, &c, t(1)), Due::Nothing);
        c.messages = 1000;
        assert_eq!(due(&cfg, &c, t(1)), Due::HardLimitMessages);
        c.messages = 0;
        c.last_activity = t(3599);
        assert_eq!(due(&cfg, &c, t(3600)), Due::HardLimitAge);
        c.renewing = false;
        assert_eq!(due(&cfg, &c, t(2880)), Due::StartRenewal);
        assert_eq!(due(&cfg, &c, t(2879 + 600)), Due::StartRenewal);
        c.last_activity = t(0);
        assert_eq!(due(&cfg, &c, t(600)), Due::Idle);
        c.retired_until = Some(t(60));
        assert_eq!(due(&cfg, &c, t(59)), Due::Nothing);
        assert_eq!(due(&cfg, &c, t(60)), Due::GraceEnded);
    }

    #[test]
    fn deadline_is_the_earliest_rule() {
        let cfg = SessionConfig::default();
        let c = clock();
        assert_eq!(next_deadline(&cfg, &c), Instant::from_secs(600));
        let mut c2 = c;
        c2.last_activity = Instant::from_secs(3100);
        c2.renewing = true;
        c2.tx_epoch_started = Instant::from_secs(3000);
        assert_eq!(next_deadline(&cfg, &c2), Instant::from_secs(3600));
        assert_eq!(due(&cfg, &c2, next_deadline(&cfg, &c2)), Due::HardLimitAge);
    }

    #[test]
    fn token_bucket_two_then_one_per_two_seconds() {
        let cfg = SessionConfig::default();
        let mut b = TokenBucket::new(&cfg, Instant::ZERO);
        assert!(b.take(&cfg, Instant::ZERO));
        assert!(b.take(&cfg, Instant::ZERO));
        assert!(!b.take(&cfg, Instant::from_millis(1999)));
        assert!(b.take(&cfg, Instant::from_millis(2000)));
        assert!(!b.take(&cfg, Instant::from_millis(2500)));
        assert!(b.take(&cfg, Instant::from_secs(100)));
        assert!(b.take(&cfg, Instant::from_secs(100)));
        assert!(!b.take(&cfg, Instant::from_secs(100)));
    }

    #[test]
    fn defaults_match_the_protocol() {
        let cfg = SessionConfig::default();
        assert_eq!(cfg.handshake_lifetime(), Duration::from_secs(20));
        assert_eq!(renew_threshold(&cfg), (Duration::from_secs(2880), 800));
        assert_eq!(cfg.padding_buckets, [32, 64, 128, 256, 512, 1024]);
        assert_eq!(cfg.default_ttl, 7);
    }
}
