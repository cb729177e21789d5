//! One product of operands lent from device memory, on the lane's GPU:
//! the device half of `Session::matmul_device` (docs/in-process-cuda.md,
//! stage 1). The session plans the call (which blocks are mined, with
//! which nonce and salt seeds, under which work); this runs the plan:
//!
//! 1. the descriptions checked (arithmetic, then the driver), and both
//!    operands' values range-checked on the device;
//! 2. each block of the output: a mined piece (cut, committed, mined on
//!    the device, its product added in place) or a plain product
//!    (cuBLASLt on the lent memory where it takes the layout, else the
//!    fallback kernel); a piece that fails is multiplied plainly;
//! 3. Freivalds' check of the whole output on the device: on a failure
//!    (a device or kernel fault) the output is recomputed plainly and
//!    checked again, and the call fails only if that fails too.
//!
//! Until the caller's stream is joined (stage 1.2) the call orders itself
//! by synchronizing the context before it reads and its stream before it
//! returns: correct for any stream of the caller's, not yet overlapped.

use super::{commit_piece, lent_memory};
use crate::{
	backend::{Job, Winner},
	cuda::{
		gemm::Gemm,
		launch::alloc,
		operand::{check_product, DeviceMatrix, DeviceOut},
		CudaLane,
	},
	jobs::{plan::Block, JobError},
	kernels::Words8,
};
use anyhow::anyhow;
use cudarc::driver::{CudaSlice, CudaStream};
use std::{collections::HashMap, sync::Arc};

/// A mined block's nonce and the salt seeds of its two pieces (secret,
/// fresh for each piece).
#[derive(Clone, Debug)]
pub struct MinedPiece {
	pub nonce: u64,
	pub seeds: ([u8; 32], [u8; 32]),
}

/// What the session decided for one call: the work its pieces mine (if
/// any), and the output's blocks in order (depth innermost, as
/// `Block::split` makes them), each mined or plain.
#[derive(Clone, Debug)]
pub struct DevicePlan {
	pub work: Option<Job>,
	pub blocks: Vec<(Block, Option<MinedPiece>)>,
}

/// What one call did.
#[derive(Debug, Default)]
pub struct DeviceOutcome {
	pub macs_mined: u64,
	pub macs_plain: u64,
	pub nonces: u64,
	pub tickets: u64,
	/// Each with a seal the primitives verified.
	pub winners: Vec<Winner>,
	/// Whether the output failed its check and was recomputed plainly.
	pub redone: bool,
}

/// Strided cuBLASLt GEMMs by shape and leading dimensions, made on first
/// use (a model calls a few shapes again and again).
#[derive(Default)]
pub struct GemmCache(HashMap<[usize; 6], Option<Gemm>>);

/// At most this many shapes are kept prepared.
const GEMMS: usize = 32;

fn refused(e: impl std::fmt::Display) -> JobError {
	JobError::Invalid(e.to_string())
}

fn device(e: anyhow::Error) -> JobError {
	JobError::Device(format!("{e:#}"))
}

impl CudaLane {
	/// `out = a * bt^T` on this lane's GPU, as `plan` says.
	///
	/// # Safety
	/// The three describe memory of this device's primary context that
	/// stays valid until this returns; nothing writes `a` or `bt` or reads
	/// or writes `out` meanwhile.
	pub unsafe fn matmul_device(
		&mut self,
		a: &DeviceMatrix,
		bt: &DeviceMatrix,
		out: &DeviceOut,
		plan: &DevicePlan,
	) -> Result<DeviceOutcome, JobError> {
		let spans = check_product(a, bt, out).map_err(refused)?;
		self.ctx.bind_to_thread().map_err(|e| device(anyhow!("binding the context: {e:?}")))?;
		for ((ptr, span), what) in
			[(a.ptr, spans[0]), (bt.ptr, spans[1]), (out.ptr, spans[2])].into_iter().zip(["A", "B", "the output"])
		{
			lent_memory(ptr, span, self.info.ordinal, what).map_err(refused)?;
		}
		// The caller's kernels that write A and Bt are done (stage 1.2 will
		// join its stream instead).
		self.ctx.synchronize().map_err(|e| device(anyhow!("waiting for the caller's work: {e:?}")))?;
		let stream = self.ctx.default_stream();
		for (m, which) in [(a, "A"), (&bt.t(), "B")] {
			// SAFETY: `m` was checked above and is the caller's to vouch for.
			if let Some((i, j, v)) = unsafe { self.ops.first_out_of_range(&self.ctx, &stream, m) }.map_err(device)? {
				return Err(JobError::Invalid(format!("{which} holds {v} at ({i}, {j}): values must be in -64..63")));
			}
		}
		let mut outcome = DeviceOutcome::default();
		for (block, mined) in &plan.blocks {
			let fits = |r: &std::ops::Range<usize>, n: u32| r.start < r.end && r.end <= n as usize;
			if !(fits(&block.rows, a.rows) && fits(&block.cols, bt.rows) && fits(&block.depth, a.cols)) {
				return Err(JobError::Invalid(format!("a block {block:?} outside the product")));
			}
			let r32 = |r: &std::ops::Range<usize>| r.start as u32..r.end as u32;
			let (a_blk, bt_blk) =
				(a.block(r32(&block.rows), r32(&block.depth)), bt.block(r32(&block.cols), r32(&block.depth)));
			let out_blk = out.block(r32(&block.rows), r32(&block.cols));
			let first = block.depth.start == 0;
			let piece = match (mined, &plan.work) {
				// SAFETY: blocks of checked descriptions.
				(Some(m), Some(work)) => {
					match unsafe { self.mine_block(&stream, work, &a_blk, &bt_blk, &out_blk, first, m) } {
						Ok(won) => Some(won),
						Err(e) => {
							log::warn!(
								"{}: cannot mine a piece under work {}, multiplying it plainly: {e:#}",
								self.info,
								work.version
							);
							None
						}
					}
				}
				_ => None,
			};
			match piece {
				Some(winners) => {
					outcome.macs_mined += block.macs();
					outcome.nonces += 1;
					outcome.tickets += plan.work.as_ref().map_or(0, |w| w.params.tickets_per_nonce());
					outcome.winners.extend(winners);
				}
				None => {
					// SAFETY: blocks of checked descriptions.
					unsafe { self.plain(&stream, &a_blk, &bt_blk, &out_blk, !first) }.map_err(device)?;
					outcome.macs_plain += block.macs();
				}
			}
		}
		let seed = crate::freivalds::random_seed();
		// SAFETY: checked descriptions; `out` is complete on `stream`.
		if !unsafe { self.ops.holds(&self.ctx, &stream, a, bt, out, seed) }.map_err(device)? {
			log::error!("{}: a product computed on the device fails its check; computing it again plainly", self.info);
			// SAFETY: as above.
			unsafe { self.plain(&stream, a, bt, out, false) }.map_err(device)?;
			if !unsafe { self.ops.holds(&self.ctx, &stream, a, bt, out, seed ^ 0x9e37_79b9) }.map_err(device)? {
				return Err(JobError::Device("the product fails its check twice; the device computes wrongly".into()));
			}
			outcome.macs_plain += outcome.macs_mined;
			outcome.macs_mined = 0;
			outcome.redone = true;
		}
		stream.synchronize().map_err(|e| device(anyhow!("finishing the product: {e:?}")))?;
		Ok(outcome)
	}

	/// One mined block: both pieces cut and committed on the device, the
	/// nonce mined, its product stored (`first`) or added into `out`.
	/// Returns the winners (seals verified).
	#[allow(clippy::too_many_arguments)]
	unsafe fn mine_block(
		&mut self,
		stream: &Arc<CudaStream>,
		work: &Job,
		a: &DeviceMatrix,
		bt: &DeviceMatrix,
		out: &DeviceOut,
		first: bool,
		mined: &MinedPiece,
	) -> anyhow::Result<Vec<Winner>> {
		let p = work.params;
		let mut flag: CudaSlice<u64> = alloc(&self.ctx, stream, 1, "a range flag")?;
		stream.memcpy_htod(&[u64::MAX], &mut flag).map_err(|e| anyhow!("setting a range flag: {e:?}"))?;
		let (seed_a, seed_bt) = (Words8::le(&mined.seeds.0), Words8::le(&mined.seeds.1));
		let (ops, commit, ctx) = (&self.ops, &self.commit, &self.ctx);
		// SAFETY: blocks of checked descriptions, valid for the call.
		let (pa, pbt) = unsafe {
			(
				commit_piece(ops, commit, ctx, stream, a, (p.m, p.k, p.t), (p.k - 1, &seed_a), &mut flag)?,
				commit_piece(ops, commit, ctx, stream, bt, (p.n, p.k, p.t), (p.k - 2, &seed_bt), &mut flag)?,
			)
		};
		// The values were range-checked before; a value that changed since
		// (the caller broke the contract) is not mined.
		let key = stream.clone_dtoh(&flag).map_err(|e| anyhow!("reading a range flag: {e:?}"))?[0];
		anyhow::ensure!(key == u64::MAX, "an operand changed while it was being multiplied");
		let done = self.v2.multiply_device(work, &pa, &pbt, mined.nonce)?;
		// SAFETY: `out` is a block of a checked description; the product is
		// complete (`multiply_device` waited for it).
		unsafe { self.ops.add_block(stream, out, &done.product, p.n, first)? };
		stream.synchronize().map_err(|e| anyhow!("adding a piece's product: {e:?}"))?;
		Ok(done.winners)
	}

	/// `out = a * bt^T` (or `+=`, `accumulate`) plainly: cuBLASLt on the
	/// lent memory when both operands are contiguous along the depth and
	/// aligned as its int8 kernels want, the fallback kernel otherwise (or
	/// when cuBLASLt has nothing for the shape).
	unsafe fn plain(
		&mut self,
		stream: &Arc<CudaStream>,
		a: &DeviceMatrix,
		bt: &DeviceMatrix,
		out: &DeviceOut,
		accumulate: bool,
	) -> anyhow::Result<()> {
		let aligned = |x: u64| x.is_multiple_of(16);
		if a.col_stride == 1
			&& bt.col_stride == 1
			&& [a.ptr, bt.ptr, out.ptr, a.row_stride, bt.row_stride, out.ldc * 4].into_iter().all(aligned)
		{
			let key = [a.rows, bt.rows, a.cols].map(|x| x as usize);
			let key = [key[0], key[1], key[2], a.row_stride as usize, bt.row_stride as usize, out.ldc as usize];
			if self.gemms.0.len() >= GEMMS && !self.gemms.0.contains_key(&key) {
				self.gemms.0.clear();
			}
			let (ctx, info) = (&self.ctx, &self.info);
			let gemm = self.gemms.0.entry(key).or_insert_with(|| {
				Gemm::strided(ctx, stream, (key[0], key[1], key[2]), (key[3], key[4], key[5]))
					.map_err(|e| log::debug!("{info}: the fallback product for {key:?}: {e:#}"))
					.ok()
			});
			if let Some(gemm) = gemm {
				// SAFETY: the caller vouches for the three; the GEMM was made
				// for exactly these shapes and strides.
				match unsafe { gemm.run_raw(stream, bt.ptr, a.ptr, out.ptr, accumulate) } {
					Ok(()) => return Ok(()),
					Err(e) => log::debug!("{}: cuBLASLt refused {key:?}, using the fallback product: {e:#}", self.info),
				}
			}
		}
		// SAFETY: as above.
		unsafe { self.ops.gemm(stream, a, bt, out, accumulate) }
	}
}
