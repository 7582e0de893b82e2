//! Replay protection for one receive direction (PROTOCOL.md §6.6): an RFC 6479 sliding window of 1024 nonces
//! kept in a ring of 17 `u64` words.
//!
//! Invariant: [`ReplayWindow::will_accept`] is read-only and is asked before decryption; [`ReplayWindow::mark`]
//! is called only after the AEAD succeeded, so a forged frame can never move the window. Every nonce within
//! [`WINDOW`] of the highest marked one is remembered exactly; older ones are refused as too old.

/// Words in the ring: 16 full words of history plus the word holding the highest nonce.
const WORDS: usize = 17;
/// Bits per word.
const BITS: u64 = 64;
/// How far below the highest marked nonce a nonce may still be accepted (PROTOCOL.md §6.6).
pub const WINDOW: u64 = 1024;

/// Why a nonce is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// More than [`WINDOW`] below the highest accepted nonce.
    TooOld,
    /// Already accepted once.
    Replay,
}

/// The window of one receive direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    ring: [u64; WORDS],
    /// The highest nonce marked so far, `None` before the first.
    highest: Option<u64>,
}

fn word_index(n: u64) -> usize {
    // `% WORDS` keeps the index below 17, so the cast cannot truncate.
    ((n / BITS) % WORDS as u64) as usize
}

fn bit(n: u64) -> u64 {
    1u64 << (n % BITS)
}

impl ReplayWindow {
    /// An empty window: every nonce is acceptable.
    pub fn new() -> Self {
        Self::default()
    }

    /// A window that refuses every nonce up to `highest` (as if all of them had been marked) and accepts every
    /// one above: how a receiver resumes when it cannot know which nonces below its stored highest it accepted.
    pub fn restored(highest: Option<u64>) -> Self {
        let Some(h) = highest else {
            return Self::new();
        };
        let mut ring = [u64::MAX; WORDS];
        if let Some(w) = ring.get_mut(word_index(h)) {
            // Bits above `h` in its word stand for nonces not yet seen.
            let keep = h % BITS;
            *w = if keep == BITS - 1 {
                u64::MAX
            } else {
                (1u64 << (keep + 1)) - 1
            };
        }
        ReplayWindow {
            ring,
            highest: Some(h),
        }
    }

    /// The highest nonce marked so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `n` would be accepted. Changes nothing.
    pub fn will_accept(&self, n: u64) -> Result<(), ReplayError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if n > highest {
            return Ok(());
        }
        if highest - n > WINDOW {
            return Err(ReplayError::TooOld);
        }
        match self.ring.get(word_index(n)) {
            Some(word) if word & bit(n) == 0 => Ok(()),
            _ => Err(ReplayError::Replay),
        }
    }

    /// Records `n` as accepted. Call only after [`Self::will_accept`] said yes and the AEAD succeeded.
    pub fn mark(&mut self, n: u64) {
        match self.highest {
            Some(highest) if n <= highest => {}
            Some(highest) => {
                // Clear the words the window slides over, at most the whole ring.
                let old_word = highest / BITS;
                let new_word = n / BITS;
                let steps = (new_word - old_word).min(WORDS as u64);
                for i in 1..=steps {
                    if let Some(w) = self.ring.get_mut(word_index((old_word + i) * BITS)) {
                        *w = 0;
                    }
                }
                self.highest = Some(n);
            }
            None => {
                self.ring = [0; WORDS];
                self.highest = Some(n);
            }
        }
        if let Some(w) = self.ring.get_mut(word_index(n)) {
            *w |= bit(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;

    fn accept(w: &mut ReplayWindow, n: u64) -> Result<(), ReplayError> {
        w.will_accept(n)?;
        w.mark(n);
        Ok(())
    }

    #[test]
    fn restored_window_refuses_everything_up_to_highest_and_nothing_above() {
        for h in [0u64, 5, 63, 64, 1000, 1023, 1024, 5000] {
            let mut w = ReplayWindow::restored(Some(h));
            for n in h.saturating_sub(1100)..=h {
                assert!(w.will_accept(n).is_err(), "h {h} n {n}");
            }
            // Above it, in any order, each once.
            for n in [h + 3, h + 1, h + 64, h + 2, h + 70, h + 65] {
                assert_eq!(accept(&mut w, n), Ok(()), "h {h} n {n}");
                assert_eq!(accept(&mut w, n), Err(ReplayError::Replay));
            }
        }
        assert_eq!(ReplayWindow::restored(None), ReplayWindow::new());
    }

    #[test]
    fn fresh_window_accepts_anything_once() {
        for n in [0, 1, 63, 64, 1023, 1024, u64::MAX - 1] {
            let mut w = ReplayWindow::new();
            assert_eq!(accept(&mut w, n), Ok(()));
            assert_eq!(accept(&mut w, n), Err(ReplayError::Replay));
        }
    }

    #[test]
    fn will_accept_is_read_only() {
        let mut w = ReplayWindow::new();
        w.mark(5);
        let before = w.clone();
        for n in 0..3000 {
            let _ = w.will_accept(n);
        }
        assert_eq!(w, before);
    }

    #[test]
    fn in_order_then_replays() {
        let mut w = ReplayWindow::new();
        for n in 0..5000 {
            assert_eq!(accept(&mut w, n), Ok(()), "{n}");
        }
        for n in 3975..5000 {
            assert_eq!(w.will_accept(n), Err(ReplayError::Replay), "{n}");
        }
        assert_eq!(w.will_accept(3974), Err(ReplayError::TooOld));
    }

    #[test]
    fn window_edge_is_exactly_1024() {
        let mut w = ReplayWindow::new();
        w.mark(2000);
        assert_eq!(w.will_accept(2000 - WINDOW), Ok(()));
        assert_eq!(w.will_accept(2000 - WINDOW - 1), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 2000 - WINDOW), Ok(()));
        assert_eq!(w.will_accept(2000 - WINDOW), Err(ReplayError::Replay));
    }

    #[test]
    fn big_jumps_clear_the_ring() {
        let mut w = ReplayWindow::new();
        for n in 0..1100 {
            w.mark(n);
        }
        w.mark(1_000_000);
        for n in (1_000_000 - WINDOW)..1_000_000 {
            assert_eq!(w.will_accept(n), Ok(()), "{n}");
        }
        assert_eq!(w.will_accept(1_000_000), Err(ReplayError::Replay));
    }

    /// Exhaustive comparison with a set-based model over every jump size a word boundary can produce.
    #[test]
    fn matches_a_set_model_for_every_offset_pattern() {
        let mut state = 0x1234_5678_u64;
        for round in 0..200u64 {
            let mut w = ReplayWindow::new();
            let mut seen = BTreeSet::new();
            let mut highest: Option<u64> = None;
            for _ in 0..400 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = state >> 33;
                let base = highest.unwrap_or(round * 7);
                let n = match r % 4 {
                    0 => base + (r >> 8) % 200,
                    1 => base.saturating_sub((r >> 8) % 1100),
                    2 => base + (r >> 8) % 3000,
                    _ => base.saturating_sub(WINDOW + (r >> 8) % 3),
                };
                let model = match highest {
                    Some(h) if n <= h && h - n > WINDOW => Err(ReplayError::TooOld),
                    _ if seen.contains(&n) => Err(ReplayError::Replay),
                    _ => Ok(()),
                };
                assert_eq!(
                    w.will_accept(n),
                    model,
                    "round {round} n {n} highest {highest:?}"
                );
                if model.is_ok() {
                    w.mark(n);
                    seen.insert(n);
                    highest = Some(highest.map_or(n, |h| h.max(n)));
                }
            }
        }
    }

    #[test]
    fn every_position_in_every_word() {
        for top in 1024..(1024 + 2 * 64 * WORDS as u64) {
            let mut w = ReplayWindow::new();
            w.mark(top);
            for n in (top - WINDOW)..top {
                assert_eq!(w.will_accept(n), Ok(()), "top {top} n {n}");
            }
            w.mark(top - 1);
            w.mark(top - WINDOW);
            assert_eq!(w.will_accept(top - 1), Err(ReplayError::Replay));
            assert_eq!(w.will_accept(top - WINDOW), Err(ReplayError::Replay));
            assert_eq!(w.will_accept(top - 2), Ok(()));
        }
    }
}
