//! Variable share difficulty: each connection's is retargeted toward one
//! share per `interval` (STRATUM.md, "Pool policy"): every 60 s, or after
//! 30 shares, to the miner's rate of work (the share difficulty its shares
//! were credited at, summed, per second) times the interval, moving at
//! most 4x either way, within `1 ..= block difficulty / 64` ([`cap`]).
//!
//! The rate is measured from the difficulty each share was credited at,
//! not from the number of shares: a raise reaches the miner only with its
//! next job, and the shares it finds meanwhile at the old difficulty come
//! as fast as before. Counted as shares at the new difficulty, they made
//! the controller raise again and again until the cap (a miner on a 10 s
//! job went from 50 to the block difficulty in one job, the independent
//! miner's test found); weighed at their own difficulty, they say the same
//! rate of work whatever difficulty is pending.

use mlpow_primitives::U256;
use std::time::{Duration, Instant};

/// Shares after which the difficulty is looked at again.
const RETARGET_SHARES: u32 = 30;
/// Time after which it is looked at again, shares or not.
const RETARGET_AFTER: Duration = Duration::from_secs(60);
/// The most one retarget moves it, either way.
const MAX_STEP: f64 = 4.0;

/// A share difficulty is at most this fraction of the block's.
const BLOCK_SHARES: u64 = 64;

/// The highest share difficulty under a block difficulty of `block`:
/// `block / 64`, at least 1. PPLNS credits the window of `2 * block` of
/// share weight up to the block's own share, which counts whole, while the
/// other miners' work since their last share counts nothing: a miner is
/// credited `(d - mean d) / (2 * block)` more than its work, `d` its share
/// difficulty (`pool/tests/credit_follows_work.rs` measured 8% for a miner
/// at half the block difficulty). With every share difficulty at most
/// `block / 64`, that is under 1/128 of its credit either way. (And never
/// above the block's: a stricter share target would hide blocks.)
pub fn cap(block: U256) -> U256 {
	(block / U256::from(BLOCK_SHARES)).max(U256::one())
}

/// One connection's controller.
#[derive(Clone, Debug)]
pub struct Vardiff {
	interval: Duration,
	difficulty: U256,
	since: Instant,
	shares: u32,
	/// The credited difficulty of those shares, summed.
	weight: f64,
}

impl Vardiff {
	/// Starts at `start` difficulty.
	pub fn new(interval: Duration, start: U256, now: Instant) -> Self {
		Self { interval, difficulty: start.max(U256::one()), since: now, shares: 0, weight: 0.0 }
	}

	/// The difficulty for the next jobs.
	pub fn difficulty(&self) -> U256 {
		self.difficulty
	}

	/// Counts a share, credited at `difficulty`.
	pub fn share(&mut self, difficulty: U256) {
		self.shares += 1;
		self.weight += u256_f64(difficulty);
	}

	/// Whether [`Self::retarget`] would look at the difficulty now.
	pub fn due(&self, now: Instant) -> bool {
		self.shares >= RETARGET_SHARES || now.saturating_duration_since(self.since) >= RETARGET_AFTER
	}

	/// Retargets if it is time: `Some(new difficulty)` when it changed.
	/// `block` caps it ([`cap`]).
	pub fn retarget(&mut self, now: Instant, block: U256) -> Option<U256> {
		if !self.due(now) {
			return None;
		}
		let elapsed = now.saturating_duration_since(self.since).as_secs_f64().max(1e-3);
		// The difficulty that would give one share per interval at the
		// rate of work seen, as a factor of the present one.
		let ideal = self.weight / elapsed * self.interval.as_secs_f64();
		let factor = (ideal / u256_f64(self.difficulty)).clamp(1.0 / MAX_STEP, MAX_STEP);
		// Scaled by 2^16 so that U256 arithmetic keeps the fraction.
		let scaled = U256::from((factor * 65536.0).round() as u64);
		let next = (self.difficulty.saturating_mul(scaled) >> 16).clamp(U256::one(), cap(block));
		self.since = now;
		(self.shares, self.weight) = (0, 0.0);
		(next != self.difficulty).then(|| {
			self.difficulty = next;
			next
		})
	}
}

/// A difficulty as a float (exact below 2^53, close enough above for a
/// rate estimate).
fn u256_f64(x: U256) -> f64 {
	x.0.iter().rev().fold(0.0, |acc, limb| acc * 18_446_744_073_709_551_616.0 + *limb as f64)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn it_moves_toward_the_interval_within_bounds() {
		let (t0, interval) = (Instant::now(), Duration::from_secs(10));
		let mut v = Vardiff::new(interval, U256::from(1000), t0);
		assert_eq!(v.retarget(t0 + Duration::from_secs(5), U256::MAX), None, "too early");
		// 30 shares in 60 s: one per 2 s, five times too many.
		for _ in 0..30 {
			v.share(U256::from(1000));
		}
		assert_eq!(v.retarget(t0 + Duration::from_secs(60), U256::MAX), Some(U256::from(4000)), "capped at 4x");
		// 6 shares in the next 60 s: one per 10 s, on target.
		for _ in 0..6 {
			v.share(U256::from(4000));
		}
		assert_eq!(v.retarget(t0 + Duration::from_secs(120), U256::MAX), None);
		// None in 60 s: a quarter.
		assert_eq!(v.retarget(t0 + Duration::from_secs(180), U256::MAX), Some(U256::from(1000)));
		// Never above a 64th of the block difficulty, never below 1.
		for _ in 0..30 {
			v.share(U256::from(1000));
		}
		assert_eq!(v.retarget(t0 + Duration::from_secs(181), U256::from(128_000)), Some(U256::from(2000)));
		assert_eq!(cap(U256::from(10)), U256::one());
		let mut low = Vardiff::new(interval, U256::zero(), t0);
		assert_eq!(low.difficulty(), U256::one());
		assert_eq!(low.retarget(t0 + Duration::from_secs(60), U256::MAX), None, "stays at 1");
	}

	/// A raise reaches the miner with its next job; the shares it finds
	/// until then, at the old difficulty, do not raise it again.
	#[test]
	fn shares_at_the_old_difficulty_do_not_raise_it_again() {
		let (t0, interval) = (Instant::now(), Duration::from_secs(10));
		let mut v = Vardiff::new(interval, U256::from(50), t0);
		let (mut now, mut raises) = (t0, Vec::new());
		// A miner doing 20,000 tickets a second (400 shares a second at 50,
		// the difficulty of its one long job), retargeted after every 30.
		for _ in 0..100 {
			for _ in 0..30 {
				v.share(U256::from(50));
			}
			now += Duration::from_secs_f64(30.0 / 400.0);
			raises.extend(v.retarget(now, U256::MAX));
		}
		// It settles at 200,000 (one share per 10 s at 20,000 a second),
		// in 4x steps, and stays there.
		assert_eq!(v.difficulty(), U256::from(200_000), "{raises:?}");
		assert!(raises.windows(2).all(|w| w[1] <= w[0] * 4));
		assert_eq!(raises.last(), Some(&U256::from(200_000)));
	}
}
