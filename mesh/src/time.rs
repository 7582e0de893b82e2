//! Time as the core sees it: an [`Instant`] handed in by the caller and a [`Duration`], both in milliseconds.
//!
//! Invariant: nothing in `mesh` reads a clock. Every operation that depends on time takes `now: Instant`; the
//! runtime maps its clock (tokio, virtual simulator time, a test's literal numbers) onto milliseconds since an
//! epoch of its choosing. Arithmetic saturates, so a hostile or buggy input can never overflow.

use core::fmt;
use core::ops::{Add, Sub};

/// A point in time: milliseconds since an epoch chosen by the runtime.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    millis: u64,
}

/// A span of time in milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

impl Instant {
    /// The runtime's epoch.
    pub const ZERO: Instant = Instant { millis: 0 };

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant { millis }
    }

    /// An instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Instant {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Milliseconds since the epoch.
    pub const fn total_millis(self) -> u64 {
        self.millis
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration {
            millis: self.millis.saturating_sub(earlier.millis),
        }
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { millis: 0 };
    /// The longest representable span; used for "never".
    pub const MAX: Duration = Duration { millis: u64::MAX };

    /// A span of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration { millis }
    }

    /// A span of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            millis: secs.saturating_mul(1000),
        }
    }

    /// The span in milliseconds.
    pub const fn total_millis(self) -> u64 {
        self.millis
    }

    /// The span in whole seconds, rounded down.
    pub const fn secs(self) -> u64 {
        self.millis / 1000
    }

    /// `self * num / den`, saturating, for percentages of limits. `den == 0` gives `Duration::MAX`.
    pub const fn mul_ratio(self, num: u64, den: u64) -> Duration {
        if den == 0 {
            return Duration::MAX;
        }
        let wide = (self.millis as u128) * (num as u128) / (den as u128);
        Duration {
            millis: if wide > u64::MAX as u128 {
                u64::MAX
            } else {
                wide as u64
            },
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_add(rhs.millis),
        }
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_sub(rhs.millis),
        }
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration {
            millis: self.millis.saturating_add(rhs.millis),
        }
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T+{}.{:03}s", self.millis / 1000, self.millis % 1000)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.millis / 1000, self.millis % 1000)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(u64::MAX - 1);
        assert_eq!((t + Duration::from_secs(5)).total_millis(), u64::MAX);
        assert_eq!(
            Instant::from_millis(3) - Instant::from_millis(10),
            Duration::ZERO
        );
        assert_eq!(Instant::ZERO - Duration::from_millis(1), Instant::ZERO);
    }

    #[test]
    fn ratio_of_limits() {
        assert_eq!(
            Duration::from_secs(3600).mul_ratio(80, 100),
            Duration::from_secs(2880)
        );
        assert_eq!(Duration::MAX.mul_ratio(2, 1), Duration::MAX);
        assert_eq!(Duration::from_secs(1).mul_ratio(1, 0), Duration::MAX);
    }
}
