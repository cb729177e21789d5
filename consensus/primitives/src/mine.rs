//! The reference miner: for each nonce, the full product and every tile.
//!
//! This is the honest strategy the puzzle is priced for: one nonce costs
//! `m * n * k` multiply-accumulates and buys `(m/t) * (n/t)` tickets, i.e.
//! `t * t * k` MACs per ticket. The CPU mining backend drives it from several
//! threads; GPU backends must find exactly the winners it finds.

use crate::{
	kernel::Kernel,
	params::{ChallengeParams, ParamsError},
	seal::Seal,
	stream::{job_seed, MatrixStream},
	ticket::{target, TileHasher},
	verify::{Verified, VerifyError},
	Hash32, U256,
};
use alloc::{vec, vec::Vec};

/// One epoch's weights `Bt` (`n x k`), generated once and shared by every
/// nonce and every header of the epoch.
pub struct EpochWeights {
	params: ChallengeParams,
	seed: Hash32,
	bt: Vec<i8>,
}

impl EpochWeights {
	/// Generates the weights of `params`' shape from `weights_seed` (validating `params`).
	pub fn generate(params: &ChallengeParams, weights_seed: &Hash32) -> Result<Self, ParamsError> {
		params.validate()?;
		let mut bt = vec![0i8; params.n as usize * params.k as usize];
		MatrixStream::weights(weights_seed, params.k).read_rows(0, &mut bt);
		Ok(Self { params: *params, seed: *weights_seed, bt })
	}

	/// The parameters the weights were generated for.
	pub fn params(&self) -> &ChallengeParams {
		&self.params
	}

	/// The weights seed they come from.
	pub fn seed(&self) -> &Hash32 {
		&self.seed
	}

	/// The weights, row `c` being column `c` of `B`.
	pub fn bt(&self) -> &[i8] {
		&self.bt
	}
}

/// One nonce's `A` (`m x k`) and `C` (`m x n`): allocated once and handed
/// from one [`Search`] to the next, so a miner that starts a search per
/// batch of nonces does not allocate (and zero) them every batch.
#[derive(Default)]
pub struct Buffers {
	a: Vec<i8>,
	c: Vec<i32>,
}

/// Mining state for one header: its job seed, its target and the
/// [`Buffers`] for one nonce's `A` and `C`.
pub struct Search<'w> {
	weights: &'w EpochWeights,
	job_seed: Hash32,
	target: U256,
	kernel: Kernel,
	hasher: TileHasher,
	a: Vec<i8>,
	c: Vec<i32>,
}

impl<'w> Search<'w> {
	/// A search over `weights` for the header with `pre_hash`, at `difficulty` (non-zero).
	pub fn new(weights: &'w EpochWeights, pre_hash: &Hash32, difficulty: U256) -> Result<Self, VerifyError> {
		Self::with_buffers(weights, pre_hash, difficulty, Buffers::default())
	}

	/// Like [`Self::new`], reusing `buffers` (resized only if the
	/// parameters changed; their contents are overwritten before use).
	pub fn with_buffers(
		weights: &'w EpochWeights,
		pre_hash: &Hash32,
		difficulty: U256,
		buffers: Buffers,
	) -> Result<Self, VerifyError> {
		let target = target(difficulty).ok_or(VerifyError::ZeroDifficulty)?;
		let p = weights.params;
		let Buffers { mut a, mut c } = buffers;
		a.resize(p.m as usize * p.k as usize, 0);
		c.resize(p.m as usize * p.n as usize, 0);
		Ok(Self {
			weights,
			job_seed: job_seed(pre_hash, &weights.seed),
			target,
			kernel: Kernel::best(),
			hasher: TileHasher::new(),
			a,
			c,
		})
	}

	/// Gives the buffers back for the next search.
	pub fn into_buffers(self) -> Buffers {
		Buffers { a: self.a, c: self.c }
	}

	/// Uses a specific kernel (benchmarks and tests).
	pub fn with_kernel(mut self, kernel: Kernel) -> Self {
		self.kernel = kernel;
		self
	}

	/// The header's job seed (SPEC.md, "Seeds").
	pub fn job_seed(&self) -> &Hash32 {
		&self.job_seed
	}

	/// Computes the full product for `nonce`; [`Self::product`] then reads it.
	pub fn compute(&mut self, nonce: u64) {
		let p = self.weights.params;
		MatrixStream::activations(&self.job_seed, nonce, p.k).read_rows(0, &mut self.a);
		self.kernel.gemm(&self.a, &self.weights.bt, p.m as usize, p.n as usize, p.k as usize, &mut self.c);
	}

	/// The product of the last [`Self::compute`], `m x n` row-major.
	pub fn product(&self) -> &[i32] {
		&self.c
	}

	/// Digest of tile `(i, j)` of the last computed product.
	pub fn tile_digest(&self, nonce: u64, i: u32, j: u32) -> Hash32 {
		let p = self.weights.params;
		let (t, n) = (p.t as usize, p.n as usize);
		let rows = (0..t).map(|r| &self.c[(i as usize * t + r) * n + j as usize * t..][..t]);
		self.hasher.digest(&self.job_seed, nonce, i, j, rows)
	}

	/// Mines one nonce: the full product, then every tile in row-major tile
	/// order. Returns the winning tiles (usually none).
	pub fn try_nonce(&mut self, nonce: u64) -> Vec<Verified> {
		self.compute(nonce);
		let p = self.weights.params;
		let mut wins = Vec::new();
		for i in 0..p.tiles_m() {
			for j in 0..p.tiles_n() {
				let digest = self.tile_digest(nonce, i, j);
				if U256::from_big_endian(&digest) <= self.target {
					wins.push(Verified { seal: Seal { nonce, tile_i: i, tile_j: j }, digest });
				}
			}
		}
		wins
	}

	/// The first winner over `nonces`, in nonce then tile order.
	pub fn search(&mut self, nonces: core::ops::Range<u64>) -> Option<Verified> {
		nonces.into_iter().find_map(|nonce| self.try_nonce(nonce).into_iter().next())
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::stream::weights_seed;

	/// Buffers handed from one search to the next (even from one of other
	/// parameters, so of another size, and full of its numbers) give the
	/// same winners as fresh ones.
	#[test]
	fn reused_buffers_give_the_same_winners() {
		let small = ChallengeParams::DEV;
		let wide = ChallengeParams { n: 128, ..small };
		let seed = weights_seed(&[3; 32], 0);
		let (ws, ww) = (EpochWeights::generate(&small, &seed).unwrap(), EpochWeights::generate(&wide, &seed).unwrap());
		let difficulty = U256::from(8);
		let mut first = Search::new(&ww, &[1; 32], difficulty).unwrap();
		first.try_nonce(0);
		let mut reused = Search::with_buffers(&ws, &[2; 32], difficulty, first.into_buffers()).unwrap();
		let mut fresh = Search::new(&ws, &[2; 32], difficulty).unwrap();
		for nonce in 0..8 {
			let (r, f) = (reused.try_nonce(nonce), fresh.try_nonce(nonce));
			assert_eq!(r.iter().map(|v| v.seal).collect::<Vec<_>>(), f.iter().map(|v| v.seal).collect::<Vec<_>>());
			assert_eq!(reused.product(), fresh.product());
		}
	}
}
