//! Variable share difficulty: each connection's is retargeted toward one
//! share per `interval` (STRATUM.md, "Pool policy"): every 60 s, or after
//! 30 shares, by the ratio of the target interval to the observed one,
//! clamped to 4x either way, and to `1 ..= block difficulty`.

use mlpow_primitives::U256;
use std::time::{Duration, Instant};

/// Shares after which the difficulty is looked at again.
const RETARGET_SHARES: u32 = 30;
/// Time after which it is looked at again, shares or not.
const RETARGET_AFTER: Duration = Duration::from_secs(60);
/// The most one retarget moves it, either way.
const MAX_STEP: f64 = 4.0;

/// One connection's controller.
#[derive(Clone, Debug)]
pub struct Vardiff {
	interval: Duration,
	difficulty: U256,
	since: Instant,
	shares: u32,
}

impl Vardiff {
	/// Starts at `start` difficulty.
	pub fn new(interval: Duration, start: U256, now: Instant) -> Self {
		Self { interval, difficulty: start.max(U256::one()), since: now, shares: 0 }
	}

	/// The difficulty for the next jobs.
	pub fn difficulty(&self) -> U256 {
		self.difficulty
	}

	/// Counts a share.
	pub fn share(&mut self) {
		self.shares += 1;
	}

	/// Whether [`Self::retarget`] would look at the difficulty now.
	pub fn due(&self, now: Instant) -> bool {
		self.shares >= RETARGET_SHARES || now.saturating_duration_since(self.since) >= RETARGET_AFTER
	}

	/// Retargets if it is time: `Some(new difficulty)` when it changed.
	/// `block` caps it (a share target stricter than the block's would
	/// hide blocks).
	pub fn retarget(&mut self, now: Instant, block: U256) -> Option<U256> {
		if !self.due(now) {
			return None;
		}
		let elapsed = now.saturating_duration_since(self.since);
		let factor = if self.shares == 0 {
			1.0 / MAX_STEP
		} else {
			let observed = elapsed.as_secs_f64() / f64::from(self.shares);
			(self.interval.as_secs_f64() / observed.max(1e-3)).clamp(1.0 / MAX_STEP, MAX_STEP)
		};
		// Scaled by 2^16 so that U256 arithmetic keeps the fraction.
		let scaled = U256::from((factor * 65536.0).round() as u64);
		let next = (self.difficulty.saturating_mul(scaled) >> 16).clamp(U256::one(), block.max(U256::one()));
		self.since = now;
		self.shares = 0;
		(next != self.difficulty).then(|| {
			self.difficulty = next;
			next
		})
	}
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
			v.share();
		}
		assert_eq!(v.retarget(t0 + Duration::from_secs(60), U256::MAX), Some(U256::from(4000)), "capped at 4x");
		// 6 shares in the next 60 s: one per 10 s, on target.
		for _ in 0..6 {
			v.share();
		}
		assert_eq!(v.retarget(t0 + Duration::from_secs(120), U256::MAX), None);
		// None in 60 s: a quarter.
		assert_eq!(v.retarget(t0 + Duration::from_secs(180), U256::MAX), Some(U256::from(1000)));
		// Never above the block difficulty, never below 1.
		for _ in 0..30 {
			v.share();
		}
		assert_eq!(v.retarget(t0 + Duration::from_secs(181), U256::from(1500)), Some(U256::from(1500)));
		let mut low = Vardiff::new(interval, U256::zero(), t0);
		assert_eq!(low.difficulty(), U256::one());
		assert_eq!(low.retarget(t0 + Duration::from_secs(60), U256::MAX), None, "stays at 1");
	}
}
