//! One useful (chosen-mode) nonce on the device: the noise and noisy
//! operands, the column sums of the correction and its int8 limbs, and the
//! transcript kernel, which hashes the tickets and writes the exact product
//! where the caller says ([`ProductOut`]: a whole product of ours, or a
//! block of a caller's output, stored or added in place). Shared by the
//! host path ([`Pipeline::multiply`]) and the device path
//! ([`Pipeline::multiply_device`](super::Pipeline::multiply_device)).

use super::{
	enqueue_noise, enqueue_transcript, grid, padded, upload_selections, Kernels, NonceInputs, Operands, Slot,
	Transcript,
};
use crate::{
	cuda::{
		launch::alloc,
		operand::{DeviceMatrix, DeviceOut},
	},
	kernels::{correction_limbs, Words8},
};
use anyhow::{anyhow, ensure};
use cudarc::driver::{CudaContext, CudaSlice, DevicePtr, DeviceRepr, PushKernelArg};
use mlpow_primitives::ChallengeParams;
use std::sync::Arc;

/// Where a useful nonce's exact product goes (`V2Out` in kernels/v2.cu):
/// the top-left `rows x cols` of the piece's product at `ptr`, rows `ldc`
/// elements apart, stored or (`accumulate`, a kernel that fuses the
/// correction only) added to what is there.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::cuda) struct ProductOut {
	pub ptr: u64,
	pub ldc: u64,
	pub rows: u32,
	pub cols: u32,
	pub accumulate: u32,
	reserved: u32,
}

// SAFETY: `#[repr(C)]`, the layout of `struct V2Out` (two 64-bit fields,
// four 32-bit ones: 32 bytes, no padding; kernels/v2.cu asserts the same).
unsafe impl DeviceRepr for ProductOut {}
const _: () = assert!(std::mem::size_of::<ProductOut>() == 32 && std::mem::offset_of!(ProductOut, rows) == 16);

impl ProductOut {
	/// No product (seeded mining).
	pub const NONE: Self = Self { ptr: 0, ldc: 0, rows: 0, cols: 0, accumulate: 0, reserved: 0 };

	/// A whole `m x n` product at `ptr`, stored.
	pub fn whole(ptr: u64, p: &ChallengeParams) -> Self {
		Self { ptr, ldc: u64::from(p.n), rows: p.m, cols: p.n, accumulate: 0, reserved: 0 }
	}

	/// A block of a caller's output, stored (`accumulate` false: the
	/// block's first piece along the depth) or added.
	pub fn block(out: &DeviceOut, accumulate: bool) -> Self {
		Self { ptr: out.ptr, ldc: out.ldc, rows: out.rows, cols: out.cols, accumulate: accumulate.into(), reserved: 0 }
	}
}

/// Where a piece's product goes in a caller's output, and what of the
/// caller's depth it folds in besides (`A` and `Bt` blocks of the same
/// rows and columns, at most [`FOLD_MAX`] deep, that no piece covers).
#[derive(Clone, Copy, Debug)]
pub(in crate::cuda) struct InPlace<'a> {
	pub out: ProductOut,
	pub fold: Option<(&'a DeviceMatrix, &'a DeviceMatrix)>,
}

/// The most columns of a caller's depth a piece folds into its correction
/// (one k-step of the kernel): what a piece leaves over when the depth is
/// a little more than a piece's `k - 2` (2 columns of a 4096-deep layer at
/// `k = 4096`).
pub(in crate::cuda) const FOLD_MAX: u32 = 32;

/// The fused correction's inputs (`V2Corr` in kernels/v2.cu): the limbs of
/// A's side and Bt's, how many, and whether a remainder is folded in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Correction {
	pub a: u64,
	pub b: u64,
	pub limbs: u32,
	pub extra: u32,
}

// SAFETY: `#[repr(C)]`, the layout of `struct V2Corr` (two 64-bit fields,
// two 32-bit ones: 24 bytes, no padding; kernels/v2.cu asserts the same).
unsafe impl DeviceRepr for Correction {}
const _: () = assert!(std::mem::size_of::<Correction>() == 24 && std::mem::offset_of!(Correction, limbs) == 16);

impl Correction {
	/// None (seeded mining).
	pub const NONE: Self = Self { a: 0, b: 0, limbs: 0, extra: 0 };
}

/// What a useful nonce's kernels read besides the operands: alive until
/// its stream has run them.
pub(super) struct UsefulScratch {
	_u: CudaSlice<i32>,
	_v: CudaSlice<i32>,
	_inv_a: CudaSlice<u8>,
	_inv_bt: CudaSlice<u8>,
	_limbs: (CudaSlice<i8>, CudaSlice<i8>),
}

/// Enqueues one chosen-mode nonce on `slot`: the noise and noisy operands,
/// the column sums and their int8 limbs (`mlpow2_limbs`, and `fold`'s
/// values after them, `mlpow2_slab`), then the transcript kernel, which
/// computes the correction `D` from them, writes the exact product into
/// `out` and records the winners in the slot (cleared here). The caller
/// marks the slot pending and keeps the scratch until the winners are
/// read.
#[allow(clippy::too_many_arguments)]
pub(super) fn enqueue_useful(
	ctx: &Arc<CudaContext>,
	k: &Kernels,
	slot: &mut Slot,
	p: &ChallengeParams,
	ops: &Operands,
	inputs: &NonceInputs,
	target: &Words8,
	out: ProductOut,
	fold: Option<(&DeviceMatrix, &DeviceMatrix)>,
) -> anyhow::Result<UsefulScratch> {
	let (m, n, r) = (p.m as usize, p.n as usize, p.r as usize);
	ensure!(out.ptr != 0 && out.rows <= p.m && out.cols <= p.n && out.ldc >= u64::from(out.cols), "{out:?} for {p:?}");
	if let Some((a, bt)) = fold {
		ensure!(
			a.rows == out.rows && bt.rows == out.cols && a.cols == bt.cols && a.cols > 0 && a.cols <= FOLD_MAX,
			"a remainder of {} x {} and {} x {} does not fold into {out:?}",
			a.rows,
			a.cols,
			bt.rows,
			bt.cols
		);
	}
	let stream = slot.stream.clone();
	let up = |e| anyhow!("uploading a useful nonce's selections: {e:?}");
	let mut u = alloc::<i32>(ctx, &stream, m * r, "the column sums of A")?;
	let mut v = alloc::<i32>(ctx, &stream, n * r, "the column sums of Bt'")?;
	let invert = |sel: &[u8]| {
		let mut inv = vec![0u8; sel.len()];
		for (z, &q) in sel.iter().enumerate() {
			inv[z / r * r + q as usize] = (z % r) as u8;
		}
		inv
	};
	let inv_a = stream.clone_htod(&invert(&inputs.sel.a)).map_err(up)?;
	let inv_bt = stream.clone_htod(&invert(&inputs.sel.bt)).map_err(up)?;
	slot.stream.memset_zeros(&mut slot.winners).map_err(|e| anyhow!("clearing the winners: {e:?}"))?;
	// Noise and noisy operands first (Bt' feeds the column sums); the
	// transcript kernel after the limbs, on the same stream.
	upload_selections(slot, core::slice::from_ref(inputs))?;
	enqueue_noise(k, slot, p, ops, inputs, 0)?;
	for (dst, src, inv, rows) in [(&mut u, ops.a, &inv_bt, m), (&mut v, &slot.bt_noisy, &inv_a, n)] {
		let total = (rows * r) as u64;
		let mut launch = stream.launch_builder(&k.column_sums);
		launch.arg(dst).arg(src).arg(inv).arg(&total).arg(&p.k).arg(&p.r);
		// SAFETY: matches `mlpow2_column_sums`: `src` has `rows x k`
		// values, `inv` `k` bytes, `dst` `rows x r` words.
		unsafe { launch.launch(grid(total)?) }.map_err(|e| anyhow!("column sums: {e:?}"))?;
	}
	let count = correction_limbs(p.k, p.r);
	let extra = u32::from(fold.is_some());
	let width = count * 2 * p.r + extra * FOLD_MAX;
	let side = |side: i32, sums: &CudaSlice<i32>, noise: &CudaSlice<i8>, rows: usize, rem: Option<&DeviceMatrix>| {
		// Rows padded to the grid's blocks (the kernel reads whole
		// blocks; what it reads past `rows` reaches no output).
		let mut dst = alloc::<i8>(ctx, &stream, padded(rows as u32) as usize * width as usize, "the limbs")?;
		let total = (rows * r) as u64;
		let mut launch = stream.launch_builder(&k.limbs);
		launch.arg(&mut dst).arg(&width).arg(sums).arg(noise).arg(&total).arg(&p.r).arg(&count).arg(&side);
		// SAFETY: matches `mlpow2_limbs`: `sums` and `noise` hold `rows x
		// r` values, `dst` rows of `width` bytes, `count x 2r` of them
		// written.
		unsafe { launch.launch(grid(total)?) }.map_err(|e| anyhow!("the correction's limbs: {e:?}"))?;
		if let Some(rem) = rem {
			let total = u64::from(rem.rows) * u64::from(rem.cols);
			let (col0, negate) = (count * 2 * p.r, i32::from(side == 0));
			let mut launch = stream.launch_builder(&k.slab);
			launch
				.arg(&mut dst)
				.arg(&width)
				.arg(&col0)
				.arg(&rem.ptr)
				.arg(&rem.row_stride)
				.arg(&rem.col_stride)
				.arg(&rem.cols)
				.arg(&negate)
				.arg(&total);
			// SAFETY: matches `mlpow2_slab`: `rem` (checked to fit the
			// rows and the 32 columns after the limbs) is the caller's
			// to vouch for.
			unsafe { launch.launch(grid(total)?) }.map_err(|e| anyhow!("the folded remainder: {e:?}"))?;
		}
		anyhow::Ok(dst)
	};
	let (rem_a, rem_bt) = fold.map_or((None, None), |(a, bt)| (Some(a), Some(bt)));
	let (ca, cb) = (side(0, &u, &slot.el, m, rem_a)?, side(1, &v, &slot.gl, n, rem_bt)?);
	{
		// The limbs' addresses, their guards held until the launch.
		let ((a, _ga), (b, _gb)) = (ca.device_ptr(&stream), cb.device_ptr(&stream));
		let corr = Correction { a, b, limbs: count, extra };
		let launch = Transcript { inputs, target, nonce_index: 0, states: 0, out, corr };
		enqueue_transcript(k, slot, p, &launch)?;
	}
	Ok(UsefulScratch { _u: u, _v: v, _inv_a: inv_a, _inv_bt: inv_bt, _limbs: (ca, cb) })
}

#[cfg(test)]
mod tests {
	use super::FOLD_MAX;

	/// The remainder's step is one k-step of the kernels (`V2_BK`): the
	/// host folds no more than the kernels read.
	#[test]
	fn a_fold_is_one_kernel_k_step() {
		let defined = format!("#define V2_BK {FOLD_MAX}\n");
		assert!(crate::kernels::V2_CU.contains(&defined), "kernels/v2.cu: {defined}");
	}
}
