//! The simulator's plain values: virtual time (`SimInstant`), per-link parameters, the medium's configuration with
//! its validation, the statistics counters and the simulator's error type.
//!
//! Invariant: a `MediumConfig` that `validate` accepted has every bound at least 1 and every link parameter in
//! range (loss in 0..=1, ATT MTU in 23..=517), so the medium never divides by zero or builds an unusable link.

use core::ops::Add;
use core::time::Duration;

use crate::{ATT_MTU_MAX, ATT_MTU_MIN};

/// A point in virtual time: microseconds since the simulation's fixed epoch (zero). The medium never reads a clock;
/// callers pass the time in, either virtual (jump to `next_wakeup`) or paced to a real clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimInstant(u64);

impl SimInstant {
    /// The epoch: where every simulation starts.
    pub const ZERO: SimInstant = SimInstant(0);

    /// `us` microseconds after the epoch.
    pub const fn from_micros(us: u64) -> Self {
        SimInstant(us)
    }

    /// `ms` milliseconds after the epoch (saturating).
    pub const fn from_millis(ms: u64) -> Self {
        SimInstant(ms.saturating_mul(1_000))
    }

    /// `s` seconds after the epoch (saturating).
    pub const fn from_secs(s: u64) -> Self {
        SimInstant(s.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: SimInstant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for SimInstant {
    type Output = SimInstant;

    /// Saturates at the end of time rather than wrapping.
    fn add(self, rhs: Duration) -> SimInstant {
        SimInstant(self.0.saturating_add(micros(rhs)))
    }
}

/// A duration in whole microseconds, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// How one link (one edge of the topology) behaves; both directions alike.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkParams {
    /// Probability (0..=1) that a packet, or an advertisement heard while scanning, is lost.
    pub loss: f64,
    /// Fixed one-way delay from leaving the sender's queue to arriving.
    pub latency: Duration,
    /// Extra delay drawn uniformly from 0..=jitter per packet; packets never overtake each other.
    pub jitter: Duration,
    /// The ATT MTU the link negotiates (23..=517); packets carry at most `att_mtu - 3` bytes.
    pub att_mtu: u16,
    /// Signal strength a scanner reports for advertisements heard over this edge, in dBm.
    pub rssi: i8,
}

impl Default for LinkParams {
    /// A clean short-range link: no loss, 5 ms latency, 2 ms jitter, ATT MTU 247, -60 dBm.
    fn default() -> Self {
        LinkParams {
            loss: 0.0,
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(2),
            att_mtu: 247,
            rssi: -60,
        }
    }
}

impl LinkParams {
    /// Checks the loss probability and the ATT MTU.
    pub fn validate(&self) -> Result<(), SimError> {
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(SimError::InvalidConfig(format!(
                "link loss {} is not a probability in 0..=1",
                self.loss
            )));
        }
        if !(ATT_MTU_MIN..=ATT_MTU_MAX).contains(&self.att_mtu) {
            return Err(SimError::InvalidConfig(format!(
                "link ATT MTU {} is outside {ATT_MTU_MIN}..={ATT_MTU_MAX}",
                self.att_mtu
            )));
        }
        Ok(())
    }
}

/// How the medium behaves apart from the topology; every bound is per node or per link direction.
#[derive(Clone, Debug, PartialEq)]
pub struct MediumConfig {
    /// Packets a link direction's controller buffer holds before `send` fails with `QueueFull`.
    pub queue_capacity: usize,
    /// Drain rate of that buffer: one packet leaves every `tx_interval` (1.25 ms ≈ 6 packets per 7.5 ms
    /// connection event). A packet sent to an idle buffer leaves at once.
    pub tx_interval: Duration,
    /// Time from `connect` to `LinkUp` (or `ConnectFailed`) at both ends.
    pub connect_delay: Duration,
    /// A scanning node hears each advertiser in range once per `scan_interval` (first time at a random offset).
    pub scan_interval: Duration,
    /// Links one radio holds at most (connecting or up); more fail with `TooManyLinks` or `ConnectFailed`.
    pub max_links: usize,
    /// Events a radio holds unpolled; more are dropped and counted in `NodeStats::events_dropped`.
    pub event_queue_capacity: usize,
    /// When set, every link is dropped (`Timeout` at both ends) after a lifetime drawn uniformly from
    /// 0..=2×this mean, as a random fault.
    pub random_link_lifetime: Option<Duration>,
}

impl Default for MediumConfig {
    fn default() -> Self {
        MediumConfig {
            queue_capacity: 16,
            tx_interval: Duration::from_micros(1_250),
            connect_delay: Duration::from_millis(30),
            scan_interval: Duration::from_millis(500),
            max_links: 8,
            event_queue_capacity: 4_096,
            random_link_lifetime: None,
        }
    }
}

impl MediumConfig {
    /// Checks that every bound is at least 1 and the scan interval is not zero.
    pub fn validate(&self) -> Result<(), SimError> {
        let bounds = [
            ("queue_capacity", self.queue_capacity),
            ("max_links", self.max_links),
            ("event_queue_capacity", self.event_queue_capacity),
        ];
        for (name, value) in bounds {
            if value == 0 {
                return Err(SimError::InvalidConfig(format!(
                    "{name} must be at least 1"
                )));
            }
        }
        if micros(self.scan_interval) == 0 {
            return Err(SimError::InvalidConfig(
                "scan_interval must be at least 1 µs".into(),
            ));
        }
        if self.random_link_lifetime.is_some_and(|d| micros(d) == 0) {
            return Err(SimError::InvalidConfig(
                "random_link_lifetime must be at least 1 µs".into(),
            ));
        }
        Ok(())
    }
}

/// Counters of one node, or (from `Medium::total_stats`) of all nodes summed. Packet counters are charged to the
/// sending node, except `received`.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeStats {
    /// Packets accepted by `send`.
    pub sent: u64,
    /// Packets this node sent that arrived.
    pub delivered: u64,
    /// Packets this node received.
    pub received: u64,
    /// Packets this node sent that the medium lost at random (the link's `loss`).
    pub lost_random: u64,
    /// Packets this node sent that were queued or in flight when their link went down.
    pub lost_link_down: u64,
    /// `send` calls refused because the link's queue was full (the packet was not taken).
    pub rejected_queue_full: u64,
    /// Events dropped because this radio's event queue was full.
    pub events_dropped: u64,
    /// Links that came up at this node (either role).
    pub links_up: u64,
    /// `LinkDown` events raised at this node, failed connects included.
    pub links_down: u64,
    /// Times this node crashed.
    pub crashes: u64,
}

impl NodeStats {
    /// Adds `other`'s counters to these.
    pub fn accumulate(&mut self, other: &NodeStats) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.received += other.received;
        self.lost_random += other.lost_random;
        self.lost_link_down += other.lost_link_down;
        self.rejected_queue_full += other.rejected_queue_full;
        self.events_dropped += other.events_dropped;
        self.links_up += other.links_up;
        self.links_down += other.links_down;
        self.crashes += other.crashes;
    }
}

/// A simulator set-up or harness call that was wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A configuration value is out of range; the message names it.
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// A node index beyond the medium's nodes.
    #[error("no node {node}: the medium has {count} nodes")]
    NoSuchNode {
        /// The index given.
        node: usize,
        /// How many nodes there are.
        count: usize,
    },
    /// The random geometric topology stayed disconnected after every attempt; raise the range.
    #[error("no connected topology of {nodes} nodes with range {range} in {attempts} attempts; raise the range")]
    NotConnected {
        /// Nodes asked for.
        nodes: usize,
        /// Radio range asked for.
        range: f64,
        /// Placements tried.
        attempts: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(SimInstant::from_millis(3).as_micros(), 3_000);
        assert_eq!(SimInstant::from_secs(2), SimInstant::from_micros(2_000_000));
        assert_eq!(
            SimInstant::ZERO + Duration::from_micros(7),
            SimInstant::from_micros(7)
        );
        assert_eq!(
            SimInstant::from_micros(u64::MAX) + Duration::from_secs(1),
            SimInstant::from_micros(u64::MAX)
        );
        assert_eq!(
            SimInstant::from_micros(5).saturating_duration_since(SimInstant::from_micros(9)),
            Duration::ZERO
        );
        assert_eq!(micros(Duration::MAX), u64::MAX);
    }

    #[test]
    fn link_params_validation() {
        assert!(LinkParams::default().validate().is_ok());
        let bad_loss = LinkParams {
            loss: 1.5,
            ..LinkParams::default()
        };
        assert!(bad_loss.validate().unwrap_err().to_string().contains("1.5"));
        let nan = LinkParams {
            loss: f64::NAN,
            ..LinkParams::default()
        };
        assert!(nan.validate().is_err());
        for mtu in [22, 518] {
            let p = LinkParams {
                att_mtu: mtu,
                ..LinkParams::default()
            };
            assert!(p
                .validate()
                .unwrap_err()
                .to_string()
                .contains(&mtu.to_string()));
        }
        for mtu in [23, 517] {
            assert!(LinkParams {
                att_mtu: mtu,
                ..LinkParams::default()
            }
            .validate()
            .is_ok());
        }
    }

    #[test]
    fn medium_config_validation() {
        assert!(MediumConfig::default().validate().is_ok());
        let c = MediumConfig {
            queue_capacity: 0,
            ..MediumConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("queue_capacity"));
        let c = MediumConfig {
            scan_interval: Duration::ZERO,
            ..MediumConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("scan_interval"));
        let c = MediumConfig {
            random_link_lifetime: Some(Duration::ZERO),
            ..MediumConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn stats_accumulate() {
        let mut a = NodeStats {
            sent: 1,
            lost_random: 2,
            ..NodeStats::default()
        };
        a.accumulate(&NodeStats {
            sent: 3,
            crashes: 1,
            ..NodeStats::default()
        });
        assert_eq!((a.sent, a.lost_random, a.crashes), (4, 2, 1));
    }
}
