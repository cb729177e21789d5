//! The challenge parameters held on chain, and the rules that keep them safe.
//!
//! Every parameter set the chain can ever use passes [`ChallengeParams::validate`].
//! Its bounds are what make the other invariants true for *any* accepted set:
//! sums never leave `i32`, verification stays cheap, and tiles cut the product
//! exactly.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Puzzle v1: seed-generated matrices, one hashed `t x t` tile per ticket.
pub const PUZZLE_V1: u32 = 1;

/// Puzzle v2: any matrices in the 7-bit range (the miner's own or seeded),
/// low-rank noise, and a chunked transcript per tile (`SPEC.md`, "Puzzle v2").
pub const PUZZLE_V2: u32 = 2;

/// The versions this crate implements (`SPEC.md`, "Versioning"); v1 stays
/// valid for the blocks mined under it.
pub const PUZZLE_VERSIONS: [u32; 2] = [PUZZLE_V1, PUZZLE_V2];

/// The version new parameter sets default to in tools and presets.
pub const PUZZLE_VERSION: u32 = PUZZLE_V1;

/// Every matrix dimension and the tile edge are multiples of this, the edge of
/// an int8 tensor-core fragment, so GPU kernels never need ragged edges.
pub const DIM_MULTIPLE: u32 = 16;

/// Largest inner dimension. Each int8 x int8 product has magnitude at most
/// `128 * 128 = 2^14`, so a sum of `k <= 2^16` of them stays within
/// `2^30 < i32::MAX` in any summation order.
pub const MAX_K: u32 = 1 << 16;

/// Largest `m` and `n`. Not a consensus-safety bound but a sanity one: the
/// product of one nonce must fit a miner's memory (`m * n * 4` bytes).
pub const MAX_MN: u32 = 1 << 16;

/// Largest tile edge; keeps the verifier's tile buffer at most 64 KiB.
pub const MAX_T: u32 = 128;

/// Upper bound on `t * t * k`, the multiply-accumulates one verification
/// costs. 2^24 MACs is a few milliseconds natively and tens of milliseconds
/// in the Wasm runtime (see BENCHMARKS.md).
pub const MAX_VERIFY_MACS: u64 = 1 << 24;

/// v2: smallest and largest noise rank `r`, which is also the transcript's
/// chunk length along `k`. At least 32 so a chunk is whole int8 tensor-core
/// k-steps (`mma` and `wgmma` take 32 of `k`); at most 128 so one selection
/// byte indexes a noise column without bias (`r` is a power of two).
pub const MIN_R: u32 = 32;
/// See [`MIN_R`].
pub const MAX_R: u32 = 128;

/// v2: the most bytes of matrix rows one seal may open (`2 * t * k`: `t`
/// rows of `A` and `t` rows of `Bt`). 512 KiB keeps a block's header
/// within what sync requests carry comfortably; `t = 16, k = 4096` opens 128 KiB.
pub const MAX_OPENED_BYTES: u64 = 1 << 19;

/// Longest weight epoch, in blocks.
pub const MAX_EPOCH_LENGTH: u32 = 1_000_000;

/// The puzzle's shape. `A` is `m x k`, the weights `Bt` are `n x k` (stored
/// transposed), the product `C = A * Bt^T` is `m x n`, cut into `t x t`
/// tiles, each one lottery ticket. In v1 `A` is fresh per nonce and `Bt` per
/// epoch; in v2 the miner may choose both, and noise of rank `r` makes every
/// nonce's product fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ChallengeParams {
	/// Puzzle version: [`PUZZLE_V1`] or [`PUZZLE_V2`].
	pub version: u32,
	/// Rows of `A` and of the product.
	pub m: u32,
	/// Inner dimension.
	pub k: u32,
	/// Columns of the product (rows of `Bt`).
	pub n: u32,
	/// Tile edge.
	pub t: u32,
	/// v2: the noise rank and transcript chunk length. Must be 0 in v1.
	pub r: u32,
	/// Blocks per weight epoch.
	pub epoch_length: u32,
}

/// Why a parameter set was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen)]
pub enum ParamsError {
	/// `version` is not one of [`PUZZLE_VERSIONS`].
	UnsupportedVersion,
	/// A dimension or the tile edge is zero.
	ZeroDimension,
	/// A dimension or the tile edge is not a multiple of [`DIM_MULTIPLE`].
	NotMultipleOf16,
	/// `k` exceeds [`MAX_K`]: sums could overflow `i32`.
	InnerDimensionTooLarge,
	/// `m` or `n` exceeds [`MAX_MN`].
	OuterDimensionTooLarge,
	/// `t` exceeds [`MAX_T`].
	TileTooLarge,
	/// `t` does not divide both `m` and `n`.
	TileDoesNotDivide,
	/// `t * t * k` exceeds [`MAX_VERIFY_MACS`].
	VerificationTooExpensive,
	/// `epoch_length` is zero or exceeds [`MAX_EPOCH_LENGTH`].
	BadEpochLength,
	/// v1 with `r != 0`, or v2 with `r` not a power of two in
	/// `MIN_R..=MAX_R` dividing `k`, or with `k > r * r`.
	BadRank,
	/// v2 with `2 * t * k` above [`MAX_OPENED_BYTES`].
	OpeningTooLarge,
}

impl ParamsError {
	/// Every error, in declaration order (their SCALE index is their position).
	pub const ALL: [ParamsError; 11] = [
		Self::UnsupportedVersion,
		Self::ZeroDimension,
		Self::NotMultipleOf16,
		Self::InnerDimensionTooLarge,
		Self::OuterDimensionTooLarge,
		Self::TileTooLarge,
		Self::TileDoesNotDivide,
		Self::VerificationTooExpensive,
		Self::BadEpochLength,
		Self::BadRank,
		Self::OpeningTooLarge,
	];
}

impl core::fmt::Display for ParamsError {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		let s = match self {
			Self::UnsupportedVersion => "unsupported puzzle version",
			Self::ZeroDimension => "a dimension or the tile edge is zero",
			Self::NotMultipleOf16 => "m, k, n and t must be multiples of 16",
			Self::InnerDimensionTooLarge => "k exceeds 65536 (int32 sums could overflow)",
			Self::OuterDimensionTooLarge => "m or n exceeds 65536",
			Self::TileTooLarge => "tile edge t exceeds 128",
			Self::TileDoesNotDivide => "t must divide both m and n",
			Self::VerificationTooExpensive => "t*t*k exceeds the verification bound 2^24",
			Self::BadEpochLength => "epoch length must be in 1..=1000000",
			Self::BadRank => "r must be 0 in v1, and in v2 a power of two in 32..=128 that divides k, with k <= r*r",
			Self::OpeningTooLarge => "v2 openings 2*t*k exceed 2^19 bytes",
		};
		f.write_str(s)
	}
}

#[cfg(feature = "std")]
impl std::error::Error for ParamsError {}

impl ChallengeParams {
	/// The development set: tiny, so a CPU finds blocks in seconds.
	pub const DEV: Self = Self { version: PUZZLE_V1, m: 64, k: 64, n: 64, t: 16, r: 0, epoch_length: 100 };

	/// A GPU-sized set: one nonce is an 8192 x 4096 x 8192 int8 GEMM.
	pub const GPU: Self = Self { version: PUZZLE_V1, m: 8192, k: 4096, n: 8192, t: 16, r: 0, epoch_length: 1000 };

	/// The development set under v2: two transcript chunks of 32.
	pub const DEV_V2: Self = Self { version: PUZZLE_V2, r: 32, ..Self::DEV };

	/// The GPU-sized set under v2: 64 transcript chunks of 64.
	pub const GPU_V2: Self = Self { version: PUZZLE_V2, r: 64, ..Self::GPU };

	/// Checks every rule in `SPEC.md` ("Parameters"). Cheap and total.
	pub fn validate(&self) -> Result<(), ParamsError> {
		if !PUZZLE_VERSIONS.contains(&self.version) {
			return Err(ParamsError::UnsupportedVersion);
		}
		let dims = [self.m, self.k, self.n, self.t];
		if dims.contains(&0) {
			return Err(ParamsError::ZeroDimension);
		}
		if dims.iter().any(|d| !d.is_multiple_of(DIM_MULTIPLE)) {
			return Err(ParamsError::NotMultipleOf16);
		}
		if self.k > MAX_K {
			return Err(ParamsError::InnerDimensionTooLarge);
		}
		if self.m > MAX_MN || self.n > MAX_MN {
			return Err(ParamsError::OuterDimensionTooLarge);
		}
		if self.t > MAX_T {
			return Err(ParamsError::TileTooLarge);
		}
		if !self.m.is_multiple_of(self.t) || !self.n.is_multiple_of(self.t) {
			return Err(ParamsError::TileDoesNotDivide);
		}
		if self.verify_macs() > MAX_VERIFY_MACS {
			return Err(ParamsError::VerificationTooExpensive);
		}
		if self.epoch_length == 0 || self.epoch_length > MAX_EPOCH_LENGTH {
			return Err(ParamsError::BadEpochLength);
		}
		if self.version == PUZZLE_V1 {
			if self.r != 0 {
				return Err(ParamsError::BadRank);
			}
			return Ok(());
		}
		// `k <= r*r`: a ticket's transcript has `k / r` chunks of `r` steps.
		// With more chunks than steps a chunk, a miner may feed zero inputs
		// and trade the chunks' MACs for the additions that carry the state
		// (SECURITY.md, "Puzzle v2"), so `k` is bounded by `r` squared.
		if !self.r.is_power_of_two()
			|| !(MIN_R..=MAX_R).contains(&self.r)
			|| !self.k.is_multiple_of(self.r)
			|| self.k > self.r * self.r
		{
			return Err(ParamsError::BadRank);
		}
		if self.opened_bytes() > MAX_OPENED_BYTES {
			return Err(ParamsError::OpeningTooLarge);
		}
		Ok(())
	}

	/// v2: bytes of matrix rows a chosen-matrix seal opens, `2 * t * k`.
	pub fn opened_bytes(&self) -> u64 {
		2 * self.t as u64 * self.k as u64
	}

	/// v2: transcript chunks per tile, `k / r` (0 when `r == 0`).
	pub fn chunks(&self) -> u32 {
		self.k.checked_div(self.r).unwrap_or(0)
	}

	/// Multiply-accumulates to verify one seal (one tile): `t * t * k`.
	pub fn verify_macs(&self) -> u64 {
		self.t as u64 * self.t as u64 * self.k as u64
	}

	/// Tile rows in the product, `m / t` (0 when `t == 0`).
	pub fn tiles_m(&self) -> u32 {
		self.m.checked_div(self.t).unwrap_or(0)
	}

	/// Tile columns in the product, `n / t` (0 when `t == 0`).
	pub fn tiles_n(&self) -> u32 {
		self.n.checked_div(self.t).unwrap_or(0)
	}

	/// Lottery tickets bought by one nonce: `(m / t) * (n / t)`.
	pub fn tickets_per_nonce(&self) -> u64 {
		self.tiles_m() as u64 * self.tiles_n() as u64
	}

	/// Multiply-accumulates in one nonce's full product: `m * n * k`.
	pub fn macs_per_nonce(&self) -> u64 {
		self.m as u64 * self.n as u64 * self.k as u64
	}

	/// Multiply-accumulates one ticket costs, `t * t * k`: the unit that
	/// turns a difficulty (expected tickets per block) into work (expected
	/// MACs per block). At most `2^24` for valid parameters (rule 8).
	pub fn macs_per_ticket(&self) -> u64 {
		self.t as u64 * self.t as u64 * self.k as u64
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn with(f: impl FnOnce(&mut ChallengeParams)) -> ChallengeParams {
		let mut p = ChallengeParams::DEV;
		f(&mut p);
		p
	}

	#[test]
	fn presets_are_valid() {
		assert_eq!(ChallengeParams::DEV.validate(), Ok(()));
		assert_eq!(ChallengeParams::GPU.validate(), Ok(()));
		assert_eq!(ChallengeParams::DEV_V2.validate(), Ok(()));
		assert_eq!(ChallengeParams::GPU_V2.validate(), Ok(()));
	}

	#[test]
	fn encoding_is_fixed_width() {
		assert_eq!(ChallengeParams::DEV.encode().len(), 28);
		assert_eq!(ChallengeParams::max_encoded_len(), 28);
	}

	#[test]
	fn rejects_each_broken_invariant() {
		use ParamsError::*;
		let cases: &[(ChallengeParams, ParamsError)] = &[
			(with(|p| p.version = 0), UnsupportedVersion),
			(with(|p| p.version = 3), UnsupportedVersion),
			(with(|p| p.r = 32), BadRank),
			(with(|p| p.version = PUZZLE_V2), BadRank),
			(with(|p| *p = ChallengeParams { r: 16, ..ChallengeParams::DEV_V2 }), BadRank),
			(with(|p| *p = ChallengeParams { r: 48, ..ChallengeParams::DEV_V2 }), BadRank),
			(with(|p| *p = ChallengeParams { r: 256, k: 256, ..ChallengeParams::DEV_V2 }), BadRank),
			(with(|p| *p = ChallengeParams { r: 64, k: 96, ..ChallengeParams::DEV_V2 }), BadRank),
			// k above r*r: 33 chunks of 32 steps.
			(with(|p| *p = ChallengeParams { r: 32, k: 1056, ..ChallengeParams::DEV_V2 }), BadRank),
			(with(|p| *p = ChallengeParams { t: 32, k: 16384, r: 128, ..ChallengeParams::DEV_V2 }), OpeningTooLarge),
			(with(|p| p.m = 0), ZeroDimension),
			(with(|p| p.k = 0), ZeroDimension),
			(with(|p| p.n = 0), ZeroDimension),
			(with(|p| p.t = 0), ZeroDimension),
			(with(|p| p.m = 72), NotMultipleOf16),
			(with(|p| p.k = 65), NotMultipleOf16),
			(with(|p| p.n = 8), NotMultipleOf16),
			(with(|p| p.t = 24), NotMultipleOf16),
			(with(|p| p.k = MAX_K + 16), InnerDimensionTooLarge),
			(with(|p| p.k = u32::MAX - 15), InnerDimensionTooLarge),
			(with(|p| p.m = MAX_MN + 16), OuterDimensionTooLarge),
			(with(|p| p.n = u32::MAX - 15), OuterDimensionTooLarge),
			(with(|p| p.t = 144), TileTooLarge),
			(with(|p| p.t = 48), TileDoesNotDivide),
			(
				with(|p| {
					p.m = 80;
					p.n = 64;
					p.t = 32
				}),
				TileDoesNotDivide,
			),
			(
				with(|p| {
					p.t = 64;
					p.k = 8192
				}),
				VerificationTooExpensive,
			),
			(with(|p| p.epoch_length = 0), BadEpochLength),
			(with(|p| p.epoch_length = MAX_EPOCH_LENGTH + 1), BadEpochLength),
		];
		for (p, want) in cases {
			assert_eq!(p.validate(), Err(*want), "{p:?}");
		}
	}

	#[test]
	fn bounds_are_inclusive() {
		assert_eq!(with(|p| p.epoch_length = MAX_EPOCH_LENGTH).validate(), Ok(()));
		assert_eq!(
			with(|p| {
				p.t = 128;
				p.m = 128;
				p.n = 128;
				p.k = 1024
			})
			.validate(),
			Ok(())
		);
		assert_eq!(
			with(|p| {
				p.m = MAX_MN;
				p.n = MAX_MN
			})
			.validate(),
			Ok(())
		);
		// t=16, k=2^16 sits exactly on both the overflow and the cost bound.
		assert_eq!(with(|p| p.k = MAX_K).validate(), Ok(()));
		assert_eq!(with(|p| p.k = MAX_K).verify_macs(), MAX_VERIFY_MACS);
		// v2: r at both ends, and openings exactly at their bound.
		let v2 = ChallengeParams::DEV_V2;
		assert_eq!(ChallengeParams { k: 128, r: 128, ..v2 }.validate(), Ok(()));
		assert_eq!(ChallengeParams { r: 32, ..v2 }.validate(), Ok(()));
		assert_eq!(ChallengeParams { k: 16384, r: 128, ..v2 }.validate(), Ok(()));
		assert_eq!(ChallengeParams { k: 16384, r: 128, ..v2 }.opened_bytes(), MAX_OPENED_BYTES);
		// k = r*r exactly.
		assert_eq!(ChallengeParams { k: 1024, r: 32, ..v2 }.validate(), Ok(()));
	}
}
