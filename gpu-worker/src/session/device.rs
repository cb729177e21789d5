//! [`Session::matmul_device`]: the product of operands that live in the
//! GPU's memory (a model's CUDA tensors), mined there. The session plans
//! the call as [`Session::matmul`] does (the current work, pieces of the
//! puzzle's shape, each mined when it fills enough of one); the CUDA lane
//! runs the plan on the device (`CudaLane::matmul_device`), and the
//! session counts what mined and sends the winners on.
//!
//! The operands are never copied to the host: only commitment trees,
//! winners and their opened blocks come back. The multiplier is held for
//! the whole call (GPU work serialises on the device anyway).

use super::{lock, Session};
use crate::{
	cuda::{
		operand::{check_product, DeviceMatrix, DeviceOut},
		DevicePlan, DeviceRhs, DeviceWeight, MinedPiece,
	},
	jobs::{
		plan::{Block, PuzzleShape},
		JobError,
	},
	miner::Found,
};
use std::sync::atomic::Ordering;

impl Session {
	/// `out = A * B` for `a` (`rows x depth`) and `bt` (`cols x depth`,
	/// `B`'s transpose: a PyTorch `Linear.weight` as it is), all in the
	/// memory of the session's GPU; mined on the current work where that
	/// is worth it. Values outside -64..63, shapes that disagree, memory
	/// that is not this GPU's, or a multiplier without a GPU are refused
	/// with the reason before anything is written.
	///
	/// `stream`: the CUDA stream (a handle of the primary context; 0 or 1
	/// for the legacy default stream) the operands were written on, which
	/// the call waits for before it reads; `None` waits for the whole
	/// device.
	///
	/// # Safety
	/// The descriptions are of memory of the GPU's primary context (the
	/// CUDA runtime's, PyTorch's) that stays valid until this returns;
	/// nothing writes `a` or `bt`, or reads or writes `out`, meanwhile;
	/// `stream` is a live stream of that context.
	pub unsafe fn matmul_device(
		&self,
		a: &DeviceMatrix,
		bt: &DeviceMatrix,
		out: &DeviceOut,
		stream: Option<u64>,
	) -> Result<(), JobError> {
		check_product(a, bt, out).map_err(|e| JobError::Invalid(e.0))?;
		// SAFETY: the caller's promise, passed on.
		unsafe { self.device_call(a, DeviceRhs::Lent(*bt), out, stream) }
	}

	/// `bt` (`cols x depth`: `B` transposed, as [`Self::matmul_device`]
	/// takes it) registered as a weight on the session's GPU: copied into
	/// the miner's own device memory and checked once; its puzzle pieces
	/// are committed by the first product that mines them and reused by
	/// every later one ([`Self::matmul_device_by`]), so a call commits only
	/// its activations. Later changes to the caller's memory are not seen.
	///
	/// # Safety
	/// `bt` describes memory of the GPU's primary context, valid and
	/// unwritten until this returns; `stream` as in
	/// [`Self::matmul_device`].
	pub unsafe fn register_weight_device(
		&self,
		bt: &DeviceMatrix,
		stream: Option<u64>,
	) -> Result<DeviceWeight, JobError> {
		let mut guard = lock(&self.multiplier);
		let lane = guard.as_mut().and_then(|m| m.cuda()).ok_or_else(needs_gpu)?;
		// SAFETY: the caller's promise, passed on.
		unsafe { lane.register_weight(bt, stream) }
	}

	/// `out = A * B` for `a` (`rows x depth`) in the GPU's memory and a
	/// weight registered with [`Self::register_weight_device`], as
	/// [`Self::matmul_device`] does it.
	///
	/// # Safety
	/// As [`Self::matmul_device`], for `a` and `out`.
	pub unsafe fn matmul_device_by(
		&self,
		a: &DeviceMatrix,
		weight: &DeviceWeight,
		out: &DeviceOut,
		stream: Option<u64>,
	) -> Result<(), JobError> {
		let (depth, cols) = weight.shape();
		if a.cols as usize != depth || out.cols as usize != cols {
			return Err(JobError::Invalid(format!(
				"A is {} x {} and the weight {depth} x {cols}, the output {} x {}: they do not multiply",
				a.rows, a.cols, out.rows, out.cols
			)));
		}
		// SAFETY: the caller's promise, passed on.
		unsafe { self.device_call(a, DeviceRhs::Weight(weight), out, stream) }
	}

	/// Plans a call, runs it on the GPU lane, counts what it did and sends
	/// its winners on.
	///
	/// # Safety
	/// As [`Self::matmul_device`].
	unsafe fn device_call(
		&self,
		a: &DeviceMatrix,
		rhs: DeviceRhs,
		out: &DeviceOut,
		stream: Option<u64>,
	) -> Result<(), JobError> {
		let bt_rows = match rhs {
			DeviceRhs::Lent(bt) => bt.rows,
			DeviceRhs::Weight(w) => w.shape().1 as u32,
		};
		let (rows, depth, cols) = (a.rows as usize, a.cols as usize, bt_rows as usize);
		let whole = Block { rows: 0..rows, cols: 0..cols, depth: 0..depth };
		let mut guard = lock(&self.multiplier);
		let lane = guard.as_mut().and_then(|m| m.cuda()).ok_or_else(needs_gpu)?;
		let work = self.work();
		let blocks = match &work {
			Some(work) => merge_plain(
				whole
					.split(PuzzleShape::from(&work.params))
					.into_iter()
					.map(|block| {
						let mined = self.worth_mining(&block, work).then(|| MinedPiece {
							nonce: self.miner.take_nonce(),
							seeds: (self.salt.seed(), self.salt.seed()),
						});
						(block, mined)
					})
					.collect(),
			),
			None => vec![(whole.clone(), None)],
		};
		let plan = DevicePlan { work: work.as_deref().cloned(), blocks, caller_stream: stream };
		let name = lane.info().to_string();
		// SAFETY: the caller vouches for the three, as this function asks.
		let (outcome, result) = unsafe { lane.matmul_device(a, &rhs, out, &plan) };
		drop(guard);
		let c = &self.counters;
		if result.is_ok() {
			c.calls.fetch_add(1, Ordering::Relaxed);
			c.macs.fetch_add(whole.macs(), Ordering::Relaxed);
			c.macs_mined.fetch_add(outcome.macs_mined, Ordering::Relaxed);
			c.macs_plain.fetch_add(outcome.macs_plain, Ordering::Relaxed);
		}
		c.nonces.fetch_add(outcome.nonces, Ordering::Relaxed);
		c.tickets.fetch_add(outcome.tickets, Ordering::Relaxed);
		c.winners.fetch_add(outcome.winners.len() as u64, Ordering::Relaxed);
		// Winners are blocks (or shares): sent even when the call failed
		// after they were found (their seals are verified).
		if let Some(work) = &plan.work {
			for winner in outcome.winners {
				log::info!("{name}: a caller's piece on the device won a ticket (nonce {})", winner.id.nonce);
				let found = Found { version: work.version, number: work.number, winner, job: None };
				self.miner.found(&self.found, &name, found);
			}
		}
		result
	}
}

fn needs_gpu() -> JobError {
	JobError::Invalid(
		"operands in GPU memory need a miner on that GPU (backend=\"cuda\"); this one multiplies on the CPU".into(),
	)
}

/// Consecutive plain blocks of one output tile, adjacent in depth, as one
/// block: one product instead of several, and the first starts at depth 0
/// when the whole tile is plain (aligned as the caller's tensor is, so
/// cuBLASLt takes it; a piece's depth, `k - 2`, is rarely a multiple of
/// 16, and the fallback kernel is slow).
fn merge_plain(blocks: Vec<(Block, Option<MinedPiece>)>) -> Vec<(Block, Option<MinedPiece>)> {
	let mut out: Vec<(Block, Option<MinedPiece>)> = Vec::with_capacity(blocks.len());
	for (block, mined) in blocks {
		if let Some((last, None)) = out.last_mut() {
			if mined.is_none()
				&& last.rows == block.rows
				&& last.cols == block.cols
				&& last.depth.end == block.depth.start
			{
				last.depth.end = block.depth.end;
				continue;
			}
		}
		out.push((block, mined));
	}
	out
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn plain_blocks_of_a_tile_merge_and_mined_ones_stay() {
		let b = |r: std::ops::Range<usize>, d: std::ops::Range<usize>| Block { rows: r, cols: 0..4, depth: d };
		let m = || Some(MinedPiece { nonce: 1, seeds: ([0; 32], [0; 32]) });
		let merged = merge_plain(vec![
			(b(0..4, 0..10), None),
			(b(0..4, 10..20), None),
			(b(0..4, 20..30), m()),
			(b(0..4, 30..35), None),
			(b(4..6, 0..10), None),
			(b(4..6, 10..20), None),
		]);
		let shape: Vec<_> = merged.iter().map(|(b, m)| (b.rows.clone(), b.depth.clone(), m.is_some())).collect();
		assert_eq!(
			shape,
			vec![(0..4, 0..20, false), (0..4, 20..30, true), (0..4, 30..35, false), (4..6, 0..20, false)]
		);
	}
}
