//! v2 seal verification, cheapest checks first (SPEC.md, "Verifying a v2 seal").
//!
//! Total over arbitrary seal bytes. Memory: the seal itself (at most
//! `MAX_OPENED_BYTES` of rows plus paths), `2 * t * k` bytes of noisy rows,
//! `2 * t * r` of noise factors, `2 * k` of selections and `2 * t * t` words
//! of tile and folds. Time: one tile's `t * t * k` MACs, plus hashing the
//! opened rows once for the Merkle check.

use super::{
	commit::{leaf, root_from_path},
	fused::{Fused, Shape},
	noise::{self, in_range, Commitments, Mode, Selections},
	seal::{decode, Openings},
	transcript::{ticket, ticket_key},
};
use crate::{
	params::ChallengeParams,
	stream::job_seed,
	ticket::meets_target,
	verify::{Verified, VerifyError},
	Hash32, U256,
};
use alloc::{vec, vec::Vec};

/// Verifies a v2 seal for the header with `pre_hash`, under the parameters,
/// weights seed and difficulty read at its parent. Total, like
/// [`crate::verify`] (which dispatches here for v2 parameters): invalid or
/// non-v2 parameters and difficulty zero are errors.
pub fn verify_v2(
	params: &ChallengeParams,
	weights_seed: &Hash32,
	pre_hash: &Hash32,
	difficulty: U256,
	seal_bytes: &[u8],
) -> Result<Verified, VerifyError> {
	params.validate().map_err(VerifyError::BadParams)?;
	if params.version != crate::params::PUZZLE_V2 {
		return Err(VerifyError::BadParams(crate::ParamsError::UnsupportedVersion));
	}
	if difficulty.is_zero() {
		return Err(VerifyError::ZeroDifficulty);
	}
	let seal = decode(params, seal_bytes).ok_or(VerifyError::MalformedSeal)?;
	let id = seal.id;
	if id.tile_i >= params.tiles_m() || id.tile_j >= params.tiles_n() {
		return Err(VerifyError::TileOutOfRange);
	}
	let (t, k, r) = (params.t, params.k, params.r as usize);
	let (mut a, mut bt) = (vec![0i8; t as usize * k as usize], vec![0i8; t as usize * k as usize]);
	let (mode, commits) = match seal.openings {
		None => {
			let job = job_seed(pre_hash, weights_seed);
			noise::seeded_a(&job, k, id.tile_i * t, &mut a);
			noise::seeded_bt(weights_seed, k, id.tile_j * t, &mut bt);
			(Mode::Seeded, Commitments { a: job, bt: *weights_seed })
		}
		Some(o) => {
			check_openings(&o, id.tile_i, id.tile_j, &mut a, &mut bt)?;
			(Mode::Chosen, Commitments { a: o.commit_a, bt: o.commit_bt })
		}
	};
	let seed = noise::noise_seed(pre_hash, params, mode, &commits, id.nonce);
	let sel = Selections::generate(&seed, k, params.r);
	let mut left = vec![0i8; t as usize * r];
	noise::noise_a_rows(&seed, params.r, id.tile_i * t, &mut left);
	noise::add_noise(&mut a, &left, &sel.a, r);
	noise::noise_bt_rows(&seed, params.r, id.tile_j * t, &mut left);
	noise::add_noise(&mut bt, &left, &sel.bt, r);
	// The tile's transcript with the miner's fused kernel on a t x t
	// product (the fastest this CPU has natively; the portable one in Wasm),
	// which the tests hold to `transcript::tile_transcript`.
	let (tu, ku) = (t as usize, k as usize);
	let mut tile = vec![0i32; tu * tu];
	let mut state = [[0u32; 16]];
	Fused::best().run(&a, &bt, Shape { m: tu, n: tu, k: ku, t: tu, r }, &mut tile, &mut state);
	let state = state[0];
	let digest = ticket(&ticket_key(&seed), id.tile_i, id.tile_j, &state);
	if meets_target(&digest, difficulty) {
		Ok(Verified { seal: id, digest })
	} else {
		Err(VerifyError::AboveTarget)
	}
}

/// Range-checks the opened rows into `a` and `bt` (cheap), then checks
/// both Merkle paths (one hash of each block).
fn check_openings(o: &Openings, i: u32, j: u32, a: &mut [i8], bt: &mut [i8]) -> Result<(), VerifyError> {
	for (dst, src) in [(&mut *a, o.a_rows), (&mut *bt, o.bt_rows)] {
		for (d, &b) in dst.iter_mut().zip(src) {
			*d = b as i8;
			if !in_range(*d) {
				return Err(VerifyError::OpeningOutOfRange);
			}
		}
	}
	let path =
		|bytes: &[u8]| -> Vec<Hash32> { bytes.chunks_exact(32).map(|c| c.try_into().expect("chunks of 32")).collect() };
	if root_from_path(leaf(a), i, &path(o.a_path)) != o.commit_a
		|| root_from_path(leaf(bt), j, &path(o.bt_path)) != o.commit_bt
	{
		return Err(VerifyError::OpeningMismatch);
	}
	Ok(())
}
