//! Seal verification: recompute one tile, hash it, compare with the target.
//!
//! [`verify`] is total: any inputs, including arbitrary seal bytes and
//! arbitrary (unvalidated) parameters, give `Ok` or a [`VerifyError`], never a
//! panic. Its memory is bounded by the parameter rules, not by `m * n`:
//! `2 * t * k` bytes of matrix rows plus `t * t` int32s of tile (at most
//! 2 MiB + 64 KiB for any accepted set, as `t >= 16` and `t * t * k <= 2^24`).

use crate::{
	kernel,
	params::{ChallengeParams, ParamsError},
	seal::Seal,
	stream::{job_seed, MatrixStream},
	ticket::{meets_target, TileHasher},
	Hash32, U256,
};
use alloc::{vec, vec::Vec};
use codec::{Decode, DecodeWithMemTracking, Encode};
use scale_info::TypeInfo;

/// Why a seal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub enum VerifyError {
	/// The challenge parameters break a rule (only possible if a caller
	/// passes parameters that the chain never accepted).
	BadParams(ParamsError),
	/// Difficulty zero has no target.
	ZeroDifficulty,
	/// The seal's length or layout is wrong for the puzzle version (v1: exactly
	/// 16 bytes; v2: 17, or the exact length of its openings).
	MalformedSeal,
	/// The seal names a tile outside the `m/t x n/t` grid.
	TileOutOfRange,
	/// The tile's digest is above the target.
	AboveTarget,
	/// v2: an opened row holds a value outside `-64..=63`.
	OpeningOutOfRange,
	/// v2: an opened block of rows does not lead to its commitment.
	OpeningMismatch,
}

impl core::fmt::Display for VerifyError {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		match self {
			Self::BadParams(e) => write!(f, "invalid challenge parameters: {e}"),
			Self::ZeroDifficulty => f.write_str("difficulty is zero"),
			Self::MalformedSeal => f.write_str("malformed seal: wrong length or layout for the puzzle version"),
			Self::TileOutOfRange => f.write_str("seal names a tile outside the product"),
			Self::AboveTarget => f.write_str("tile digest does not meet the difficulty target"),
			Self::OpeningOutOfRange => f.write_str("an opened row holds a value outside -64..=63"),
			Self::OpeningMismatch => f.write_str("opened rows do not match their commitment"),
		}
	}
}

#[cfg(feature = "std")]
impl std::error::Error for VerifyError {}

/// A verified seal and its tile digest (the ticket value; lower is rarer,
/// which `break_tie` and work accounting may use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
	/// Which nonce and tile won.
	pub seal: Seal,
	/// The winning ticket: the tile digest (v1) or the transcript ticket (v2).
	pub digest: Hash32,
}

/// Verifies `seal_bytes` for the header whose pre-seal hash is `pre_hash`,
/// under the parameters, weights seed and difficulty read at its parent.
/// Cheapest checks first; the tile is only computed for a well-formed seal
/// under valid parameters.
pub fn verify(
	params: &ChallengeParams,
	weights_seed: &Hash32,
	pre_hash: &Hash32,
	difficulty: U256,
	seal_bytes: &[u8],
) -> Result<Verified, VerifyError> {
	// v2 parameters go to v2's verifier, which makes the same first checks.
	if params.version == crate::params::PUZZLE_V2 {
		return crate::v2::verify_v2(params, weights_seed, pre_hash, difficulty, seal_bytes);
	}
	params.validate().map_err(VerifyError::BadParams)?;
	if difficulty.is_zero() {
		return Err(VerifyError::ZeroDifficulty);
	}
	let seal = Seal::from_bytes(seal_bytes).ok_or(VerifyError::MalformedSeal)?;
	if seal.tile_i >= params.tiles_m() || seal.tile_j >= params.tiles_n() {
		return Err(VerifyError::TileOutOfRange);
	}
	let job = job_seed(pre_hash, weights_seed);
	let tile = compute_tile(params, weights_seed, &job, &seal);
	let t = params.t as usize;
	let digest = TileHasher::new().digest(&job, seal.nonce, seal.tile_i, seal.tile_j, tile.chunks(t));
	if meets_target(&digest, difficulty) {
		Ok(Verified { seal, digest })
	} else {
		Err(VerifyError::AboveTarget)
	}
}

/// Computes tile `(seal.tile_i, seal.tile_j)` of the product for `seal.nonce`
/// from `t` rows of `A` and `t` rows of `Bt`. `params` must be valid and the
/// tile in range (as [`verify`] checks first).
pub fn compute_tile(params: &ChallengeParams, weights_seed: &Hash32, job_seed: &Hash32, seal: &Seal) -> Vec<i32> {
	let (t, k) = (params.t as usize, params.k as usize);
	let mut a = vec![0i8; t * k];
	let mut b = vec![0i8; t * k];
	MatrixStream::activations(job_seed, seal.nonce, params.k).read_rows(seal.tile_i * params.t, &mut a);
	MatrixStream::weights(weights_seed, params.k).read_rows(seal.tile_j * params.t, &mut b);
	let mut tile = vec![0i32; t * t];
	kernel::gemm(&a, &b, t, t, k, &mut tile);
	tile
}
