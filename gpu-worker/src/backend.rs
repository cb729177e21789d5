//! The interface between the mining loop and the hardware that multiplies.
//!
//! A backend opens one or more [`Lane`]s: independent searchers, each driven
//! by its own OS thread (a CPU core, or later one GPU with its stream). The
//! loop hands a lane a [`Job`] and a nonce range; the lane searches it and
//! reports how many nonces it finished and which seals won. A lane must stop
//! early when `cancelled()` turns true (new work arrived), so stale work is
//! dropped within one nonce (CPU) or one batch (GPU).
//!
//! Lanes own their per-epoch state (the weights `Bt`): they compare the
//! job's `(params, weights_seed)` with what they hold and regenerate only
//! when it changes, which on a GPU means the weights stay resident in device
//! memory for the whole epoch.

pub use mlpow_primitives::v2::denoise::AddInto;
use mlpow_primitives::{v2::mine::Operand, ChallengeParams, Hash32, Seal, U256};
use std::{ops::Range, sync::Arc};

/// Everything needed to search for seals of one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
	/// The node's work version, quoted back when submitting.
	pub version: u64,
	pub pre_hash: Hash32,
	pub number: u64,
	pub difficulty: U256,
	pub params: ChallengeParams,
	pub weights_seed: Hash32,
}

/// What a lane did with a nonce range.
#[derive(Debug, Default)]
pub struct SearchReport {
	/// Nonces fully searched (every tile hashed).
	pub nonces_done: u64,
	/// Winning tickets, in the order found.
	pub winners: Vec<Winner>,
}

/// A winning ticket: which one (nonce and tile, for logs and tests) and the
/// seal bytes that prove it: 16 bytes under puzzle v1; under v2, 17 for
/// seeded matrices, more with the openings of chosen ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Winner {
	pub id: Seal,
	pub seal: Vec<u8>,
}

impl Winner {
	/// A v1 winner: its seal is its id's 16 bytes.
	pub fn v1(id: Seal) -> Self {
		Self { id, seal: id.to_bytes().to_vec() }
	}
}

/// What a lane returns for one piece of a useful job: the exact product of
/// the piece's matrices and the winning tickets of the nonce it was mined at.
#[derive(Debug)]
pub struct Multiplied {
	/// `A * Bt^T`, `m x n` row-major.
	pub product: Vec<i32>,
	/// Winners, each seal carrying the openings of the piece's matrices.
	pub winners: Vec<Winner>,
}

/// One independent searcher.
pub trait Lane: Send {
	/// For logs: "cpu thread 3", "cuda:0 H100".
	fn name(&self) -> String;

	/// How many nonces to hand this lane at a time for `params`: enough to
	/// amortise its per-batch overhead, few enough to notice new work fast.
	fn batch_size(&self, params: &ChallengeParams) -> u64;

	/// Searches `nonces` for `job`, stopping early once `cancelled()`.
	fn search(&mut self, job: &Job, nonces: Range<u64>, cancelled: &dyn Fn() -> bool) -> anyhow::Result<SearchReport>;

	/// Whether this lane mines useful jobs ([`Lane::multiply`]).
	fn can_multiply(&self) -> bool {
		false
	}

	/// Mines `nonce` of `work` (puzzle v2) on the chosen matrices `a`
	/// (`m x k`) and `bt` (`n x k`), committed for `work`'s parameters
	/// ([`crate::chosen`]), and returns their exact product with the
	/// winning tickets. Lanes that cannot say so.
	fn multiply(&mut self, work: &Job, a: Arc<Operand>, bt: Arc<Operand>, nonce: u64) -> anyhow::Result<Multiplied> {
		let _ = (work, a, bt, nonce);
		anyhow::bail!("{} does not run useful jobs", self.name())
	}

	/// [`Lane::multiply`], with the exact product added into a block of the
	/// caller's matrix rather than returned (the block's rows and columns
	/// from the product's first; a padded piece's others are dropped).
	/// Returns the winners. On an error `into` is left as it was, so the
	/// caller can multiply the block another way. The CPU lane removes the
	/// noise straight into `into`; other lanes add their product.
	fn multiply_into(
		&mut self,
		work: &Job,
		a: Arc<Operand>,
		bt: Arc<Operand>,
		nonce: u64,
		into: AddInto,
	) -> anyhow::Result<Vec<Winner>> {
		let (m, n) = (work.params.m as usize, work.params.n as usize);
		anyhow::ensure!(
			into.fits(m, n),
			"a {} x {} block does not fit a {m} x {n} piece or its output",
			into.rows,
			into.cols
		);
		let Multiplied { product, winners } = self.multiply(work, a, bt, nonce)?;
		anyhow::ensure!(
			product.len() == m * n,
			"{} returned {} values for a {m} x {n} piece",
			self.name(),
			product.len()
		);
		for (x, row) in into.out.chunks_mut(into.stride).take(into.rows).enumerate() {
			for (d, s) in row[..into.cols].iter_mut().zip(&product[x * n..][..into.cols]) {
				*d = d.wrapping_add(*s);
			}
		}
		Ok(winners)
	}

	/// The GPU lane behind this one, for products of operands that live in
	/// its memory (`Session::matmul_device`); `None` for lanes that have no
	/// device memory.
	fn cuda(&mut self) -> Option<&mut crate::cuda::CudaLane> {
		None
	}

	/// The benchmark's yardstick: multiply-accumulates per second of this
	/// lane's plain int8 GEMM at the shape it mines `params` with (no
	/// matrix generation, no hashing), timed for about `seconds`.
	fn plain_gemm_macs_per_sec(&mut self, params: &ChallengeParams, seconds: f64) -> anyhow::Result<f64>;
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{chosen, cpu};
	use mlpow_primitives::stream::weights_seed;

	/// A lane that multiplies by handing back a fixed product (the default
	/// [`Lane::multiply_into`] is what every lane but the CPU's runs).
	struct Fixed(Vec<i32>);

	impl Lane for Fixed {
		fn name(&self) -> String {
			"fixed".into()
		}
		fn batch_size(&self, _: &ChallengeParams) -> u64 {
			1
		}
		fn search(&mut self, _: &Job, _: Range<u64>, _: &dyn Fn() -> bool) -> anyhow::Result<SearchReport> {
			Ok(SearchReport::default())
		}
		fn multiply(&mut self, _: &Job, _: Arc<Operand>, _: Arc<Operand>, _: u64) -> anyhow::Result<Multiplied> {
			Ok(Multiplied { product: self.0.clone(), winners: vec![] })
		}
		fn plain_gemm_macs_per_sec(&mut self, _: &ChallengeParams, _: f64) -> anyhow::Result<f64> {
			Ok(1.0)
		}
	}

	fn work() -> Job {
		let params = ChallengeParams::DEV_V2;
		Job {
			version: 1,
			pre_hash: [5; 32],
			number: 1,
			difficulty: U256::from(2),
			params,
			weights_seed: weights_seed(&[1; 32], 0),
		}
	}

	fn operands(p: &ChallengeParams) -> (Arc<Operand>, Arc<Operand>) {
		let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
		let a = (0..m * k).map(|i| (i % 128) as i8 - 64).collect();
		let bt = (0..n * k).map(|i| (i * 7 % 128) as i8 - 64).collect();
		(chosen::commit_a(p, a).unwrap(), chosen::commit_bt(p, bt).unwrap())
	}

	/// The default adds the product's block in place and refuses, touching
	/// nothing, a block that does not fit or a product of the wrong size.
	#[test]
	fn the_default_multiply_into_adds_the_block_or_touches_nothing() {
		let (w, (a, bt)) = (work(), operands(&work().params));
		let (m, n) = (64, 64);
		let product: Vec<i32> = (0..m * n).map(|v| v as i32).collect();
		let stride = 70;
		let before = vec![1i32; 66 * stride];
		let mut out = before.clone();
		let into = AddInto { out: &mut out[stride + 2..], stride, rows: 63, cols: 60 };
		Fixed(product.clone()).multiply_into(&w, a.clone(), bt.clone(), 0, into).unwrap();
		for (i, (&got, &was)) in out.iter().zip(&before).enumerate() {
			let (x, y) = ((i.wrapping_sub(stride + 2)) / stride, (i.wrapping_sub(stride + 2)) % stride);
			let inside = i >= stride + 2 && x < 63 && y < 60;
			assert_eq!(got, if inside { was + product[x * n + y] } else { was }, "element {i}");
		}
		for (lane_product, rows, cols) in [(product.clone(), 65, 60), (product.clone(), 63, 71), (vec![0; 5], 63, 60)] {
			let mut out = before.clone();
			let into = AddInto { out: &mut out[stride + 2..], stride, rows, cols };
			assert!(Fixed(lane_product).multiply_into(&w, a.clone(), bt.clone(), 0, into).is_err());
			assert_eq!(out, before);
		}
	}

	/// The CPU lane's own path: a piece committed for other parameters is
	/// refused before anything is written.
	#[test]
	fn the_cpu_lane_touches_nothing_when_it_cannot_mine() {
		let w = work();
		let other = ChallengeParams { m: 32, n: 32, ..w.params };
		let (a, bt) = operands(&other);
		let mut lane = cpu::lanes(1).pop().unwrap();
		let before = vec![3i32; 64 * 64];
		let mut out = before.clone();
		let into = AddInto { out: &mut out, stride: 64, rows: 64, cols: 64 };
		let err = lane.multiply_into(&w, a, bt, 0, into).unwrap_err().to_string();
		assert!(err.contains("other shape"), "{err}");
		assert_eq!(out, before);
	}
}
