//! ASERT difficulty retargeting, in difficulty form.
//!
//! This is the absolutely scheduled exponentially rising targets algorithm
//! that Bitcoin Cash adopted in November 2020 ("aserti3-2d", specified by
//! Mark Lundeberg and Jonathan Toomim, analysed in Toomim's "BCH DAA"
//! simulations). We chose it over LWMA because:
//! - it has one state (an anchor block) and no window, so it cannot
//!   oscillate the way windowed averages do after a hashrate step;
//! - it is absolutely scheduled: the difficulty depends only on how far the
//!   chain is ahead of or behind the ideal schedule since the anchor, so
//!   errors never accumulate and a run of manipulated timestamps is undone
//!   as soon as honest ones return;
//! - its integer approximation of `2^x` is published and deterministic, which
//!   is what consensus code needs.
//!
//! BCH works on targets; we work on difficulty (`target = MAX / difficulty`),
//! so the sign of the exponent flips: a chain ahead of schedule (blocks too
//! fast) raises the difficulty.
//!
//! ```text
//! next = anchor_difficulty * 2^((T * (h - h_a) - (t - t_a)) / tau)
//! ```
//!
//! with `T` the target block time, `h`/`t` the height and timestamp of the
//! block just finalised, `h_a`/`t_a` those of the anchor, and `tau` the
//! half-life: being `tau` behind schedule halves the difficulty.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use mlpow_primitives::U256;
use scale_info::TypeInfo;
use sp_core::U512;

/// The block that ASERT's schedule counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen)]
pub struct Anchor {
	/// Height of the anchor block.
	pub height: u64,
	/// Its timestamp, in milliseconds.
	pub timestamp: u64,
	/// The difficulty in force right after it.
	pub difficulty: U256,
}

/// Fixed-point precision of the exponent: 16 fractional bits, as aserti3-2d.
const RADIX_BITS: u32 = 16;
const RADIX: i128 = 1 << RADIX_BITS;

/// `65536 * 2^(frac / 65536)` for `frac` in `0..65536`, by aserti3-2d's cubic
/// approximation (relative error at most 0.0118 % over the whole range; the
/// test `pow2_frac_error_is_tiny_everywhere` checks every input).
fn pow2_frac(frac: u64) -> u64 {
	debug_assert!(frac < 1 << RADIX_BITS);
	let f = frac as u128;
	let poly = 195_766_423_245_049u128 * f + 971_821_376u128 * f * f + 5_127u128 * f * f * f + (1u128 << 47);
	(1u64 << RADIX_BITS) + (poly >> 48) as u64
}

/// The difficulty for the block after the one at `height`/`timestamp`.
///
/// `target_ms` and `half_life_ms` must be non-zero (the pallet's bounds
/// guarantee it; zero is treated as one). The result is clamped to
/// `[min, max]`. Total: no input panics. For the inputs the runtime passes
/// (`target_ms <= 3_600_000 < 2^22`) nothing saturates: `ahead_ms` stays
/// within `2^86` and `ahead_ms * 2^16` within `2^103`. The saturating
/// arithmetic only matters for inputs no chain reaches (a target above
/// 2^47 ms), where it sends the exponent to a clamp instead of wrapping.
pub fn next_difficulty(
	anchor: &Anchor,
	height: u64,
	timestamp: u64,
	target_ms: u64,
	half_life_ms: u64,
	min: U256,
	max: U256,
) -> U256 {
	let target_ms = target_ms.max(1) as i128;
	let half_life_ms = half_life_ms.max(1) as i128;
	let blocks = height.saturating_sub(anchor.height) as i128;
	// Signed: timestamps are only guaranteed to increase, not to pass the anchor's.
	let elapsed = timestamp as i128 - anchor.timestamp as i128;
	// |ideal - elapsed| < 2^64 * 2^22 and RADIX = 2^16: fits i128 with room
	// for the runtime's targets (see above); saturating beyond them.
	let ahead_ms = target_ms.saturating_mul(blocks).saturating_sub(elapsed);
	let exponent = ahead_ms.saturating_mul(RADIX) / half_life_ms;

	// Split into whole doublings and a fraction in [0, 1): floor semantics.
	let shifts = exponent >> RADIX_BITS;
	let frac = (exponent & (RADIX - 1)) as u64;

	let scaled: U512 = anchor.difficulty.full_mul(U256::from(pow2_frac(frac)));
	let value = if shifts >= 0 {
		let up = shifts as u128;
		if up > 512 {
			return max;
		}
		// Multiplying by 2^shifts then dividing by RADIX: shift by the difference.
		let net = up as i64 - RADIX_BITS as i64;
		shift_u512(scaled, net)
	} else {
		let down = (-shifts) as u128;
		if down > 512 {
			return min;
		}
		shift_u512(scaled, -(down as i64) - RADIX_BITS as i64)
	};
	clamp(value, min, max)
}

/// `value * 2^by` (or `>> -by`), saturating at U512::MAX.
fn shift_u512(value: U512, by: i64) -> U512 {
	if by >= 0 {
		let by = by as u32;
		if by >= 512 || (value != U512::zero() && value.leading_zeros() < by) {
			return U512::MAX;
		}
		value << by
	} else {
		let by = (-by) as u32;
		if by >= 512 {
			U512::zero()
		} else {
			value >> by
		}
	}
}

fn clamp(value: U512, min: U256, max: U256) -> U256 {
	let as_256 = U256::try_from(value).unwrap_or(U256::MAX);
	as_256.clamp(min, max.max(min))
}

#[cfg(test)]
mod tests {
	use super::*;

	const T: u64 = 3_000;
	const TAU: u64 = 16 * T;

	fn anchor(d: u64) -> Anchor {
		Anchor { height: 10, timestamp: 1_000_000, difficulty: U256::from(d) }
	}

	fn next(a: &Anchor, blocks: u64, elapsed: i64) -> U256 {
		let ts = (a.timestamp as i64 + elapsed) as u64;
		next_difficulty(a, a.height + blocks, ts, T, TAU, U256::one(), U256::MAX)
	}

	#[test]
	fn on_schedule_keeps_difficulty() {
		let a = anchor(1_000_000);
		assert_eq!(next(&a, 0, 0), a.difficulty);
		assert_eq!(next(&a, 7, 7 * T as i64), a.difficulty);
	}

	#[test]
	fn one_half_life_doubles_or_halves() {
		let a = anchor(1 << 20);
		// Ahead of schedule by one half-life: twice the difficulty.
		assert_eq!(next(&a, 16, 0), U256::from(1u64 << 21));
		// Behind by one half-life: half.
		assert_eq!(next(&a, 0, TAU as i64), U256::from(1u64 << 19));
		// Behind by two: a quarter.
		assert_eq!(next(&a, 0, 2 * TAU as i64), U256::from(1u64 << 18));
	}

	#[test]
	fn fractional_exponent_is_close_to_real_power() {
		let a = anchor(1 << 30);
		for ahead_blocks in 1..16u64 {
			let got = next(&a, ahead_blocks, 0).low_u64() as f64;
			let want = (1u64 << 30) as f64 * 2f64.powf(ahead_blocks as f64 / 16.0);
			assert!((got / want - 1.0).abs() < 2e-4, "ahead {ahead_blocks}: {got} vs {want}");
		}
	}

	#[test]
	fn pow2_frac_error_is_tiny_everywhere() {
		let mut worst = 0f64;
		for frac in 0..1u64 << RADIX_BITS {
			let exact = 2f64.powf(frac as f64 / 65536.0);
			let got = pow2_frac(frac) as f64 / 65536.0;
			worst = worst.max((got / exact - 1.0).abs());
		}
		assert!(worst < 1.2e-4, "worst relative error {worst}");
		// Monotone, and exactly 65536 at 0 (no error at whole doublings).
		assert_eq!(pow2_frac(0), 65536);
		assert!((1..1u64 << RADIX_BITS).all(|f| pow2_frac(f) >= pow2_frac(f - 1)));
	}

	#[test]
	fn monotone_in_elapsed_time() {
		let a = anchor(123_456_789);
		let mut last = U256::MAX;
		for elapsed in (0..200_000i64).step_by(997) {
			let d = next(&a, 20, elapsed);
			assert!(d <= last);
			last = d;
		}
	}

	#[test]
	fn extremes_saturate_at_the_clamps() {
		let a = anchor(1_000);
		let min = U256::from(10);
		let max = U256::from(1_000_000);
		assert_eq!(next_difficulty(&a, u64::MAX, a.timestamp, T, 1, min, max), max);
		assert_eq!(next_difficulty(&a, a.height, u64::MAX, T, 1, min, max), min);
		// Time going backwards past the anchor is "ahead of schedule".
		assert!(next_difficulty(&a, a.height, 0, T, TAU, min, max) > a.difficulty);
		// Huge anchor difficulty times the factor needs more than 256 bits.
		let big = Anchor { difficulty: U256::MAX, ..a };
		assert_eq!(next_difficulty(&big, big.height + 1, big.timestamp, T, TAU, min, U256::MAX), U256::MAX);
		// Zero target and half-life are treated as one millisecond, not a division by zero.
		let _ = next_difficulty(&a, a.height + 1, a.timestamp, 0, 0, min, max);
		// Targets no runtime allows, with the largest height gap: the
		// intermediate products saturate (to a clamp) instead of overflowing.
		assert_eq!(next_difficulty(&a, u64::MAX, 0, u64::MAX, 1, min, max), max);
		assert_eq!(next_difficulty(&a, a.height, u64::MAX, u64::MAX, 1, min, max), min);
	}
}
