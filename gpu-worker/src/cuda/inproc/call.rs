//! One product of operands lent from device memory, on the lane's GPU:
//! the device half of `Session::matmul_device` (docs/in-process-cuda.md,
//! stage 1). The session plans the call (which blocks are mined, with
//! which nonce and salt seeds, under which work); this runs the plan:
//!
//! 1. the descriptions checked (arithmetic, then the driver), and the
//!    lent operands' values range-checked on the device (a registered
//!    weight was checked when it was copied);
//! 2. each block of the output: a mined piece (cut, committed, mined on
//!    the device, its product stored or added in place by the transcript
//!    kernel, a remainder of at most 32 columns of depth folded in) or a
//!    plain product (cuBLASLt on the lent memory where it takes the
//!    layout, else the fallback kernel); a piece that fails is multiplied
//!    plainly (its tile from depth 0, since it may have written already);
//! 3. Freivalds' check of the whole output on the device: on a failure
//!    (a device or kernel fault) the output is recomputed plainly and
//!    checked again, and the call fails only if that fails too.
//!
//! The call waits for the caller's stream (or, if it names none, the whole
//! device) before it reads, and for its own work before it returns (it
//! reads Freivalds' verdict): correct for any stream of the caller's, and
//! not overlapped with the caller's later kernels.

use super::{commit_piece, lent_memory, weight::DeviceWeight};
use crate::{
	backend::{Job, Winner},
	cuda::{
		gemm::{Gemm, Lent},
		launch::alloc,
		operand::{check_product, DeviceMatrix, DeviceOut},
		v2::{InPlace, ProductOut, FOLD_MAX},
		CudaLane,
	},
	jobs::{plan::Block, JobError},
	kernels::Words8,
};
use anyhow::anyhow;
use cudarc::driver::{sys, CudaContext, CudaSlice, CudaStream};
use std::{collections::HashMap, ops::Range, sync::Arc};

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
	/// The CUDA stream the caller's operands were written on (a handle; 0
	/// or 1 for the legacy default stream, 2 for the per-thread one): the
	/// call waits for it before reading. `None`: it waits for the whole
	/// device.
	pub caller_stream: Option<u64>,
}

/// The right-hand operand of a call: `Bt` lent for the call, or a weight
/// registered before ([`CudaLane::register_weight`]).
#[derive(Clone, Copy, Debug)]
pub enum DeviceRhs<'a> {
	Lent(DeviceMatrix),
	Weight(&'a DeviceWeight),
}

/// Where a mined block's `Bt` piece comes from.
enum BtPiece<'a> {
	/// Cut and committed now from this lent block.
	Lent(&'a DeviceMatrix),
	/// The weight's piece for this block, made once.
	Weight(&'a DeviceWeight, &'a Block),
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

/// Strided cuBLASLt GEMMs by shape, leading dimensions and alignment,
/// made on first use (a model calls a few shapes again and again); a shape
/// cuBLASLt has nothing for is remembered as such.
#[derive(Default)]
pub struct GemmCache(HashMap<[usize; 7], Option<Gemm>>);

/// At most this many shapes are kept prepared, each with its own scratch.
const GEMMS: usize = 16;
/// The scratch space of a GEMM on lent memory (the model's GPU memory is
/// the model's: 16 of them hold 64 MiB).
const LENT_WORKSPACE: usize = 4 << 20;

/// An operand changed between its range check and its copy into a piece:
/// the caller broke `matmul_device`'s contract.
#[derive(Debug)]
struct OperandChanged;

impl std::fmt::Display for OperandChanged {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.write_str("an operand changed while it was being multiplied (a value outside -64..63 appeared)")
	}
}

impl std::error::Error for OperandChanged {}

fn device(e: anyhow::Error) -> JobError {
	JobError::Device(format!("{e:#}"))
}

/// The calling thread's CUDA context, put back when the call ends (the
/// caller's framework may have another current).
pub(super) struct Restore(sys::CUcontext);

impl Drop for Restore {
	fn drop(&mut self) {
		// SAFETY: a context that was current on this thread (or null).
		unsafe { sys::cuCtxSetCurrent(self.0) };
	}
}

/// Binds `ctx` to the calling thread; the guard puts the thread's previous
/// context back.
pub(super) fn enter(ctx: &Arc<CudaContext>) -> Result<Restore, JobError> {
	let mut previous: sys::CUcontext = std::ptr::null_mut();
	// SAFETY: one out-parameter.
	unsafe { sys::cuCtxGetCurrent(&mut previous) };
	let restore = Restore(previous);
	ctx.bind_to_thread().map_err(|e| device(anyhow!("binding the context: {e:?}")))?;
	Ok(restore)
}

/// Waits for a stream when dropped: no path out of a call, errors and
/// panics included, leaves a kernel reading or writing the caller's
/// memory (which the caller may free and reuse at once).
struct Finish(Arc<CudaStream>);

impl Drop for Finish {
	fn drop(&mut self) {
		if let Err(e) = self.0.synchronize() {
			log::error!("waiting for a call's kernels: {e:?}");
		}
	}
}

/// Whether the plain block `next` folds into the piece of the mined block
/// `block` before it: the same output tile, the depth right after, at most
/// [`FOLD_MAX`] of it (the kernel's one extra k-step).
fn folds(block: &Block, next: &Block) -> bool {
	next.rows == block.rows
		&& next.cols == block.cols
		&& next.depth.start == block.depth.end
		&& !next.depth.is_empty()
		&& next.depth.len() <= FOLD_MAX as usize
}

/// Whether `blocks` take each output tile once, its depth from 0 in
/// consecutive blocks (as `Block::split` and the session's merging make
/// them): the first stores, the others add, and a failed in-place piece
/// can be redone from depth 0.
fn depth_ordered(blocks: &[(Block, Option<MinedPiece>)]) -> bool {
	let mut done = std::collections::HashSet::new();
	let mut previous: Option<&Block> = None;
	for (block, _) in blocks {
		let continues = previous.is_some_and(|p| p.rows == block.rows && p.cols == block.cols);
		let ok = if continues {
			previous.is_some_and(|p| p.depth.end == block.depth.start)
		} else {
			block.depth.start == 0 && done.insert((block.rows.clone(), block.cols.clone()))
		};
		if !ok {
			return false;
		}
		previous = Some(block);
	}
	true
}

/// The largest power of two (at most 256) dividing every value: the
/// alignment, in bytes, of addresses and row strides.
fn alignment(values: &[u64]) -> u32 {
	values.iter().fold(256u64, |align, &v| align.min(1 << v.trailing_zeros().min(8))) as u32
}

impl CudaLane {
	/// `out = a * bt^T` on this lane's GPU, as `plan` says: what it did,
	/// winners included (each with a verified seal, to be sent whatever
	/// the result), and whether it succeeded. On an error `out` holds
	/// nothing to be trusted, and no kernel of the call is still running.
	///
	/// # Safety
	/// The three describe memory of this device's primary context that
	/// stays valid until this returns; nothing writes `a` or `bt` or reads
	/// or writes `out` meanwhile.
	pub unsafe fn matmul_device(
		&mut self,
		a: &DeviceMatrix,
		bt: &DeviceRhs,
		out: &DeviceOut,
		plan: &DevicePlan,
	) -> (DeviceOutcome, Result<(), JobError>) {
		let mut outcome = DeviceOutcome::default();
		// SAFETY: the caller's promise, passed on.
		let result = unsafe { self.run(a, bt, out, plan, &mut outcome) };
		(outcome, result)
	}

	/// Waits until the caller's kernels that write what a call reads are
	/// done: its stream's, or, when it named none, the whole device's.
	pub(super) fn wait_for_caller(&self, caller_stream: Option<u64>) -> Result<(), JobError> {
		match caller_stream {
			Some(handle) => {
				// SAFETY: the caller's promise: a stream of this context (or
				// one of the driver's special handles, 0, 1 and 2).
				let r = unsafe { sys::cuStreamSynchronize(handle as sys::CUstream) };
				if r != sys::CUresult::CUDA_SUCCESS {
					return Err(JobError::Device(format!("waiting for the caller's stream {handle:#x}: {r:?}")));
				}
				Ok(())
			}
			None => self.ctx.synchronize().map_err(|e| device(anyhow!("waiting for the caller's work: {e:?}"))),
		}
	}

	unsafe fn run(
		&mut self,
		a: &DeviceMatrix,
		rhs: &DeviceRhs,
		out: &DeviceOut,
		plan: &DevicePlan,
		outcome: &mut DeviceOutcome,
	) -> Result<(), JobError> {
		let (bt, weight) = match *rhs {
			DeviceRhs::Lent(bt) => (bt, None),
			DeviceRhs::Weight(w) => {
				if w.ordinal() != self.info.ordinal {
					return Err(JobError::Invalid(format!(
						"the weight was registered on GPU {}; this miner runs on GPU {}",
						w.ordinal(),
						self.info.ordinal
					)));
				}
				(w.matrix(), Some(w))
			}
		};
		let bt = &bt;
		let spans = check_product(a, bt, out).map_err(|e| JobError::Invalid(e.0))?;
		// Every block inside the product before anything runs.
		let inside = |r: &Range<usize>, n: u32| r.start < r.end && r.end <= n as usize;
		if let Some((block, _)) = plan
			.blocks
			.iter()
			.find(|(b, _)| !(inside(&b.rows, a.rows) && inside(&b.cols, bt.rows) && inside(&b.depth, a.cols)))
		{
			return Err(JobError::Device(format!("the call's plan has a block {block:?} outside the product (a bug)")));
		}
		// What stores and what adds (`first`), and the recomputation of a
		// tile after a failed piece, rest on this order.
		if !depth_ordered(&plan.blocks) {
			return Err(JobError::Device(
				"the call's plan does not cover each tile along the depth in order (a bug)".into(),
			));
		}
		let _restore = enter(&self.ctx)?;
		for ((ptr, span), what) in
			[(a.ptr, spans[0]), (bt.ptr, spans[1]), (out.ptr, spans[2])].into_iter().zip(["A", "B", "the output"])
		{
			lent_memory(ptr, span, self.info.ordinal, what)?;
		}
		self.wait_for_caller(plan.caller_stream)?;
		let stream = self.ctx.default_stream();
		let _finish = Finish(stream.clone());
		// A registered weight was checked as it was copied, and nobody
		// writes the copy.
		let lent = [(a, "A"), (&bt.t(), "B")];
		for &(m, which) in &lent[..if weight.is_some() { 1 } else { 2 }] {
			// SAFETY: `m` was checked above and is the caller's to vouch for.
			if let Some((i, j, v)) =
				unsafe { self.ops.first_out_of_range(&self.ctx, &stream, m, None) }.map_err(device)?
			{
				return Err(JobError::Invalid(format!("{which} holds {v} at ({i}, {j}): values must be in -64..63")));
			}
		}
		let mut blocks = plan.blocks.iter().peekable();
		while let Some((block, mined)) = blocks.next() {
			let r32 = |r: &Range<usize>| r.start as u32..r.end as u32;
			// A short plain stretch of the same output tile right after a
			// mined block (the 2 columns a 4096-deep layer leaves over at
			// k = 4096) is folded into the piece's correction: no pass of
			// its own over the output.
			let fold = match (mined, blocks.peek()) {
				(Some(_), Some((next, None))) if plan.work.is_some() && folds(block, next) => {
					blocks.next();
					Some(Block { rows: block.rows.clone(), cols: block.cols.clone(), depth: next.depth.clone() })
				}
				_ => None,
			};
			let (a_blk, bt_blk) =
				(a.block(r32(&block.rows), r32(&block.depth)), bt.block(r32(&block.cols), r32(&block.depth)));
			let folded =
				fold.as_ref().map(|f| (a.block(r32(&f.rows), r32(&f.depth)), bt.block(r32(&f.cols), r32(&f.depth))));
			let out_blk = out.block(r32(&block.rows), r32(&block.cols));
			let first = block.depth.start == 0;
			let piece = match (mined, &plan.work) {
				// SAFETY: blocks of checked descriptions.
				(Some(m), Some(work)) => {
					let bt_piece = match weight {
						Some(w) => BtPiece::Weight(w, block),
						None => BtPiece::Lent(&bt_blk),
					};
					let fold = folded.as_ref().map(|(a, bt)| (a, bt));
					match unsafe { self.mine_block(&stream, work, &a_blk, bt_piece, &out_blk, first, m, fold) } {
						Ok(won) => Some(won),
						Err(e) if e.is::<OperandChanged>() => return Err(JobError::Invalid(e.to_string())),
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
			let folded_macs = fold.as_ref().map_or(0, Block::macs);
			match piece {
				Some(winners) => {
					outcome.macs_mined += block.macs();
					outcome.macs_plain += folded_macs;
					outcome.nonces += 1;
					outcome.tickets += plan.work.as_ref().map_or(0, |w| w.params.tickets_per_nonce());
					outcome.winners.extend(winners);
				}
				None => {
					// The block and what was to be folded into it, plainly. A
					// piece that failed after its kernel wrote in place may
					// have stored or added its product already: the tile is
					// then recomputed from depth 0 (blocks come depth
					// innermost, so that is everything done for it so far).
					let end = fold.as_ref().map_or(block.depth.end, |f| f.depth.end);
					let wrote = mined.is_some() && plan.work.is_some();
					let start = if wrote { 0 } else { block.depth.start };
					let depth = r32(&(start..end));
					let (a_all, bt_all) = (a.block(r32(&block.rows), depth.clone()), bt.block(r32(&block.cols), depth));
					// SAFETY: blocks of checked descriptions.
					unsafe { self.plain(&stream, &a_all, &bt_all, &out_blk, start != 0) }.map_err(device)?;
					outcome.macs_plain += block.macs() + folded_macs;
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
		Ok(())
	}

	/// One mined block: both pieces cut and committed on the device (a
	/// registered weight's `Bt` piece only the first time), the nonce
	/// mined, its product stored (`first`) or added into `out`, with the
	/// product of `fold` (a short stretch of depth after the block's) added
	/// by the same kernel. Returns the winners (seals verified).
	#[allow(clippy::too_many_arguments)]
	unsafe fn mine_block(
		&mut self,
		stream: &Arc<CudaStream>,
		work: &Job,
		a: &DeviceMatrix,
		bt: BtPiece,
		out: &DeviceOut,
		first: bool,
		mined: &MinedPiece,
		fold: Option<(&DeviceMatrix, &DeviceMatrix)>,
	) -> anyhow::Result<Vec<Winner>> {
		let p = work.params;
		let mut flag: CudaSlice<u64> = alloc(&self.ctx, stream, 1, "a range flag")?;
		stream.memcpy_htod(&[u64::MAX], &mut flag).map_err(|e| anyhow!("setting a range flag: {e:?}"))?;
		let (seed_a, seed_bt) = (Words8::le(&mined.seeds.0), Words8::le(&mined.seeds.1));
		let (ops, commit, ctx) = (&self.ops, &self.commit, &self.ctx);
		// SAFETY: a block of a checked description, valid for the call.
		let pa = unsafe { commit_piece(ops, commit, ctx, stream, a, (p.m, p.k, p.t), (p.k - 1, &seed_a), &mut flag)? };
		let pbt = match bt {
			// SAFETY: as above.
			BtPiece::Lent(bt) => Arc::new(unsafe {
				commit_piece(ops, commit, ctx, stream, bt, (p.n, p.k, p.t), (p.k - 2, &seed_bt), &mut flag)?
			}),
			BtPiece::Weight(weight, block) => self.weight_piece(stream, weight, &p, block)?,
		};
		// The values were range-checked before; one that changed since is
		// the caller's broken promise, and nothing of it is mined.
		let key = stream.clone_dtoh(&flag).map_err(|e| anyhow!("reading a range flag: {e:?}"))?[0];
		if key != u64::MAX {
			return Err(anyhow::Error::new(OperandChanged));
		}
		// The transcript kernel writes the product into the caller's block
		// itself: stored for the block's first piece along the depth, added
		// after.
		let into = InPlace { out: ProductOut::block(out, !first), fold };
		self.v2.multiply_device(work, &pa, &pbt, mined.nonce, into)
	}

	/// `out = a * bt^T` (or `+=`, `accumulate`) plainly: cuBLASLt on the
	/// lent memory when both operands are contiguous along the depth (the
	/// layout its int8 kernels take), told the memory's real alignment; the
	/// fallback kernel otherwise, or when cuBLASLt has nothing for it.
	unsafe fn plain(
		&mut self,
		stream: &Arc<CudaStream>,
		a: &DeviceMatrix,
		bt: &DeviceMatrix,
		out: &DeviceOut,
		accumulate: bool,
	) -> anyhow::Result<()> {
		if a.col_stride == 1 && bt.col_stride == 1 {
			let align = alignment(&[a.ptr, bt.ptr, out.ptr, a.row_stride, bt.row_stride, out.ldc * 4]);
			let (m, n, k) = (a.rows as usize, bt.rows as usize, a.cols as usize);
			let key = [m, n, k, a.row_stride as usize, bt.row_stride as usize, out.ldc as usize, align as usize];
			if !self.gemms.0.contains_key(&key) {
				if self.gemms.0.len() >= GEMMS {
					self.gemms.0.clear();
				}
				let lent = Lent { align, workspace: LENT_WORKSPACE };
				match Gemm::strided(&self.ctx, stream, (m, n, k), (key[3], key[4], key[5]), Some(lent)) {
					Ok(gemm) => {
						self.gemms.0.insert(key, Some(gemm));
					}
					// Nothing for this layout: remembered. Anything else (a
					// failed allocation) is tried again next time.
					Err(e) if format!("{e:#}").contains("has no int8 GEMM") => {
						log::debug!("{}: the fallback product for {key:?}: {e:#}", self.info);
						self.gemms.0.insert(key, None);
					}
					Err(e) => log::debug!("{}: no cuBLASLt product for {key:?} now: {e:#}", self.info),
				}
			}
			if let Some(Some(gemm)) = self.gemms.0.get_mut(&key) {
				// SAFETY: the caller vouches for the three; the GEMM was made
				// for exactly these shapes, strides and alignment.
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

#[cfg(test)]
mod tests {
	use super::*;

	fn b(rows: Range<usize>, cols: Range<usize>, depth: Range<usize>) -> Block {
		Block { rows, cols, depth }
	}

	#[test]
	fn a_short_stretch_of_the_same_tile_right_after_folds() {
		let mined = b(0..64, 0..64, 0..62);
		assert!(folds(&mined, &b(0..64, 0..64, 62..64)));
		assert!(folds(&mined, &b(0..64, 0..64, 62..94)), "32 columns: one k-step");
		assert!(!folds(&mined, &b(0..64, 0..64, 62..95)), "33 columns");
		assert!(!folds(&mined, &b(0..64, 0..64, 63..64)), "not adjacent");
		assert!(!folds(&mined, &b(0..64, 0..32, 62..64)), "another tile");
		assert!(!folds(&mined, &b(64..100, 0..64, 62..64)), "another tile");
	}

	#[test]
	fn a_plan_must_take_each_tile_along_the_depth_in_order() {
		let plan = |blocks: Vec<Block>| blocks.into_iter().map(|b| (b, None)).collect::<Vec<_>>();
		let whole = b(0..2, 0..2, 0..10);
		let split = [b(0..2, 0..2, 0..6), b(0..2, 0..2, 6..10), b(2..4, 0..2, 0..10)];
		assert!(depth_ordered(&plan(vec![whole.clone()])));
		assert!(depth_ordered(&plan(split.to_vec())));
		assert!(!depth_ordered(&plan(vec![split[1].clone(), split[0].clone()])), "depth out of order");
		assert!(!depth_ordered(&plan(vec![b(0..2, 0..2, 2..10)])), "not from 0");
		assert!(!depth_ordered(&plan(vec![b(0..2, 0..2, 0..4), b(0..2, 0..2, 5..10)])), "a gap");
		assert!(!depth_ordered(&plan(vec![split[0].clone(), split[2].clone(), split[0].clone()])), "a tile again");
	}
}
