//! Launchers for kernels/device.cu: what the in-process miner does with
//! operands the caller keeps on the device (a model's CUDA tensors), each
//! the device twin of a host function the job path uses
//! (gpu-worker/docs/in-process-cuda.md, stage 1):
//!
//! | here                    | on the host                          |
//! |-------------------------|--------------------------------------|
//! | [`DeviceOps::first_out_of_range`] | the range check of `Session::matmul` |
//! | [`DeviceOps::piece`]    | `jobs::plan::padded` + `salt_a`/`salt_bt` |
//! | [`DeviceOps::holds`]    | `freivalds::holds_with`              |
//! | [`DeviceOps::gemm`]     | `kernel::gemm` (a plain product)     |
//!
//! Memory a caller lends is described by [`DeviceMatrix`] / [`DeviceOut`]
//! and checked twice before a kernel reads it: the description's
//! arithmetic ([`operand`](super::operand)), then the driver's account of
//! the address ([`lent_memory`]): device memory of this lane's GPU and
//! context, the whole span mapped (in one allocation or adjacent ones).

use super::{
	commit::Commit,
	launch::{alloc, launch_config},
	operand::{DeviceMatrix, DeviceOut, OutOfRange},
	v2::device::DevicePiece,
};
use crate::{
	jobs::JobError,
	kernels::{Words8, CTX_PIECE_SALT},
};
use anyhow::{anyhow, ensure};
use cudarc::driver::{sys, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtrMut, PushKernelArg};
use mlpow_primitives::v2::commit::MerkleTree;
use std::sync::Arc;

/// Threads that share one row of Freivalds' check (`mlpow2_fv_part`): a
/// warp, reading consecutive columns.
const FV_PARTS: u32 = 32;

/// The kernels of device.cu and the salt's context key.
pub(super) struct DeviceOps {
	range: CudaFunction,
	piece: CudaFunction,
	fv_x: CudaFunction,
	fv_bt: CudaFunction,
	fv_part: CudaFunction,
	fv_rows: CudaFunction,
	gemm: CudaFunction,
	salt_key: Words8,
}

/// Where a lent matrix stands, as the driver sees it: refused unless the
/// `span` bytes from `ptr` are device (or managed) memory of GPU `ordinal`,
/// in this (the primary) context or none, and mapped from end to end.
/// Host memory, another GPU's or context's, or a span past what is mapped
/// are errors that say which.
///
/// What this guards against is a fault: a kernel reading unmapped memory
/// leaves the context unusable, for the model sharing it too. It cannot
/// tell a tensor from its neighbours: a caching allocator (PyTorch's) hands
/// out pieces of larger allocations, and the driver knows only those. The
/// description's shape and strides bound what the kernels read; the caller
/// vouches for them.
pub(super) fn lent_memory(ptr: u64, span: u64, ordinal: usize, what: &str) -> Result<(), JobError> {
	use sys::{CUmemorytype, CUpointer_attribute as Attr, CUresult};
	let refuse = |why: String| Err(JobError::Invalid(why));
	let Some(end) = ptr.checked_add(span) else { return refuse(format!("{what} reaches past the address space")) };
	// The driver's answer for one address: an address it does not know is
	// the caller's mistake; any other failure (a context already broken)
	// is the device's.
	let attribute = |attr: Attr, at: u64| -> Result<u64, JobError> {
		let mut value = 0u64;
		// SAFETY: a 64-bit out-parameter, the size of every attribute
		// asked for (a CUmemorytype or an ordinal widens into it, a context
		// handle fills it).
		let r = unsafe { sys::cuPointerGetAttribute(&mut value as *mut u64 as *mut core::ffi::c_void, attr, at) };
		match r {
			CUresult::CUDA_SUCCESS => Ok(value),
			CUresult::CUDA_ERROR_INVALID_VALUE => {
				Err(JobError::Invalid(format!("{what} at {at:#x} is not memory the CUDA driver knows: host memory?")))
			}
			other => Err(JobError::Device(format!("asking the driver about {what}: {other:?}"))),
		}
	};
	let mut current: sys::CUcontext = std::ptr::null_mut();
	// SAFETY: one out-parameter.
	unsafe { sys::cuCtxGetCurrent(&mut current) };
	// The range may be mapped in several pieces (the driver's virtual
	// memory management, which PyTorch's expandable segments use): each is
	// checked, up to a bound on the walk.
	let mut at = ptr;
	for _ in 0..4096 {
		let kind = match attribute(Attr::CU_POINTER_ATTRIBUTE_MEMORY_TYPE, at) {
			Ok(kind) => kind as u32,
			Err(JobError::Invalid(_)) if at != ptr => {
				return refuse(format!(
					"{what} reaches {span} bytes from {ptr:#x}, past the end of its allocation at {at:#x}"
				))
			}
			Err(e) => return Err(e),
		};
		if kind != CUmemorytype::CU_MEMORYTYPE_DEVICE as u32 && kind != CUmemorytype::CU_MEMORYTYPE_UNIFIED as u32 {
			return refuse(format!(
				"{what} at {at:#x} is host memory (CUDA memory type {kind}); give a tensor on the GPU"
			));
		}
		let on = attribute(Attr::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, at)? as u32 as usize;
		if on != ordinal {
			return refuse(format!("{what} is on GPU {on}; this miner runs on GPU {ordinal}"));
		}
		let context = attribute(Attr::CU_POINTER_ATTRIBUTE_CONTEXT, at)?;
		if context != 0 && context != current as u64 {
			return refuse(format!(
				"{what} belongs to another CUDA context on GPU {on}: use the primary context (the CUDA runtime's)"
			));
		}
		let (mut base, mut size) = (0 as sys::CUdeviceptr, 0usize);
		// SAFETY: two out-parameters of the sizes the driver writes.
		let r = unsafe { sys::cuMemGetAddressRange_v2(&mut base, &mut size, at) };
		if r != CUresult::CUDA_SUCCESS {
			return refuse(format!("{what} at {at:#x}: no allocation holds it ({r:?})"));
		}
		let mapped_to = base.saturating_add(size as u64);
		if end <= mapped_to {
			return Ok(());
		}
		if mapped_to <= at {
			return refuse(format!(
				"{what} reaches {span} bytes from {ptr:#x}, past the end of its allocation ({size} bytes from {base:#x})"
			));
		}
		at = mapped_to;
	}
	refuse(format!("{what} spans more than 4096 separate mappings: refused"))
}

impl DeviceOps {
	pub(super) fn load(module: &Arc<CudaModule>) -> anyhow::Result<Self> {
		let function = |name: &str| module.load_function(name).map_err(|e| anyhow!("kernel {name}: {e:?}"));
		Ok(Self {
			range: function("mlpow2_range")?,
			piece: function("mlpow2_piece")?,
			fv_x: function("mlpow2_fv_x")?,
			fv_bt: function("mlpow2_fv_bt")?,
			fv_part: function("mlpow2_fv_part")?,
			fv_rows: function("mlpow2_fv_rows")?,
			gemm: function("mlpow_gemm_i8")?,
			salt_key: Words8::context_key(CTX_PIECE_SALT),
		})
	}

	/// The first element of `m` (row-major order) outside -64..63: its row,
	/// column and value; `None` when all are inside. With `copy`, the
	/// values checked are also written there, row-major (a registered
	/// weight's own copy: exactly what was checked). Waits for the stream.
	///
	/// # Safety
	/// `m` describes memory of this context that stays valid and unwritten
	/// until this returns.
	pub(super) unsafe fn first_out_of_range(
		&self,
		ctx: &Arc<CudaContext>,
		stream: &Arc<CudaStream>,
		m: &DeviceMatrix,
		copy: Option<&mut CudaSlice<i8>>,
	) -> anyhow::Result<Option<OutOfRange>> {
		ensure!(m.rows > 0 && m.cols > 0, "an empty matrix has no range to check");
		let mut first = alloc::<u64>(ctx, stream, 1, "the range check's flag")?;
		stream.memcpy_htod(&[u64::MAX], &mut first).map_err(|e| anyhow!("setting the range flag: {e:?}"))?;
		let items = u64::from(m.rows) * u64::from(m.cols);
		let cols = u64::from(m.cols);
		let (copy_ptr, copy_sync) = match copy {
			Some(copy) => {
				ensure!(copy.len() as u64 >= items, "a copy of {} bytes for {items} values", copy.len());
				let (ptr, sync) = copy.device_ptr_mut(stream);
				(ptr, Some(sync))
			}
			None => (0, None),
		};
		let mut launch = stream.launch_builder(&self.range);
		launch.arg(&m.ptr).arg(&items).arg(&cols).arg(&m.row_stride).arg(&m.col_stride).arg(&mut first).arg(&copy_ptr);
		// SAFETY: matches `mlpow2_range`; the caller vouches for `m`;
		// `copy_ptr` is null or holds `items` bytes (checked).
		unsafe { launch.launch(launch_config(items)?) }.map_err(|e| anyhow!("checking the range: {e:?}"))?;
		drop(copy_sync);
		let key = stream.clone_dtoh(&first).map_err(|e| anyhow!("reading the range flag: {e:?}"))?[0];
		Ok((key != u64::MAX).then(|| {
			let idx = key >> 8;
			((idx / cols) as u32, (idx % cols) as u32, key as u8 as i8)
		}))
	}

	/// Writes a `height x k` puzzle piece into `piece`: the block `src`
	/// (at most `height x (k - 2)`) in its top-left corner, zeros around
	/// it, and in column `salt_col` (k - 1 for a piece's A, k - 2 for its
	/// Bt) every row's salt from `seed`, which the caller draws fresh and
	/// secret for each piece. A value of `src` outside -64..63 lowers
	/// `first_bad` (a flag the caller set to `u64::MAX`) to its index in the
	/// block, row-major, `<< 8`, or'd with its byte: the piece is checked
	/// as it is copied, so no later write to the caller's memory can put an
	/// unchecked value into it.
	///
	/// # Safety
	/// `src` describes memory of this context, valid until the stream has
	/// run the kernel.
	pub(super) unsafe fn piece(
		&self,
		stream: &Arc<CudaStream>,
		piece: &mut CudaSlice<i8>,
		(height, k): (u32, u32),
		src: &DeviceMatrix,
		(salt_col, seed): (u32, &Words8),
		first_bad: &mut CudaSlice<u64>,
	) -> anyhow::Result<()> {
		ensure!(
			src.rows > 0
				&& src.cols > 0
				&& src.rows <= height
				&& u64::from(src.cols) + 2 <= u64::from(k)
				&& salt_col < k
				&& k - salt_col <= 2,
			"a {} x {} block does not fit a {height} x {k} piece with its salt in column {salt_col}",
			src.rows,
			src.cols
		);
		let items = u64::from(height) * u64::from(k);
		ensure!(piece.len() as u64 >= items, "the piece buffer holds {} bytes, not {height} x {k}", piece.len());
		let mut launch = stream.launch_builder(&self.piece);
		launch
			.arg(piece)
			.arg(&items)
			.arg(&k)
			.arg(&src.ptr)
			.arg(&src.row_stride)
			.arg(&src.col_stride)
			.arg(&src.rows)
			.arg(&src.cols)
			.arg(&salt_col)
			.arg(&self.salt_key)
			.arg(seed)
			.arg(first_bad);
		// SAFETY: matches `mlpow2_piece`; `piece` holds `items` bytes
		// (checked), the caller vouches for `src`.
		unsafe { launch.launch(launch_config(items)?) }.map_err(|e| anyhow!("cutting a piece: {e:?}"))?;
		Ok(())
	}

	/// Freivalds' check that `out` holds `a * bt^T`, with the random vector
	/// of `seed` (`freivalds::vector`): `false` when some row fails (a
	/// wrong product passes with probability at most 2^-32 per seed drawn
	/// at random). Waits for the stream.
	///
	/// # Safety
	/// The three describe memory of this context, valid and unwritten
	/// until this returns; their shapes agree (`operand::check_product`).
	pub(super) unsafe fn holds(
		&self,
		ctx: &Arc<CudaContext>,
		stream: &Arc<CudaStream>,
		a: &DeviceMatrix,
		bt: &DeviceMatrix,
		out: &DeviceOut,
		seed: u64,
	) -> anyhow::Result<bool> {
		ensure!(
			a.rows > 0 && a.cols > 0 && bt.rows > 0 && a.cols == bt.cols && out.rows == a.rows && out.cols == bt.rows,
			"the shapes of a check differ or are empty"
		);
		let (rows, cols, depth) = (u64::from(a.rows), u64::from(bt.rows), u64::from(a.cols));
		let mut x = alloc::<u64>(ctx, stream, cols as usize, "Freivalds' vector")?;
		let mut yvec = alloc::<u64>(ctx, stream, depth as usize, "Freivalds' Bt^T x")?;
		let mut partial = alloc::<u64>(ctx, stream, (rows * u64::from(FV_PARTS)) as usize, "Freivalds' sums")?;
		let mut bad = alloc::<u32>(ctx, stream, 1, "Freivalds' verdict")?;

		let mut launch = stream.launch_builder(&self.fv_x);
		launch.arg(&seed).arg(&cols).arg(&mut x);
		// SAFETY: matches `mlpow2_fv_x`: `x` holds `cols` values.
		unsafe { launch.launch(launch_config(cols)?) }.map_err(|e| anyhow!("Freivalds' vector: {e:?}"))?;
		let mut launch = stream.launch_builder(&self.fv_bt);
		launch.arg(&bt.ptr).arg(&bt.row_stride).arg(&bt.col_stride).arg(&bt.rows).arg(&depth).arg(&x).arg(&mut yvec);
		// SAFETY: matches `mlpow2_fv_bt`: `yvec` holds `depth` values, the
		// caller vouches for `bt`.
		unsafe { launch.launch(launch_config(depth)?) }.map_err(|e| anyhow!("Freivalds' Bt^T x: {e:?}"))?;
		let items = rows * u64::from(FV_PARTS);
		let mut launch = stream.launch_builder(&self.fv_part);
		launch
			.arg(&items)
			.arg(&FV_PARTS)
			.arg(&out.ptr)
			.arg(&out.ldc)
			.arg(&out.cols)
			.arg(&a.ptr)
			.arg(&a.row_stride)
			.arg(&a.col_stride)
			.arg(&a.cols)
			.arg(&x)
			.arg(&yvec)
			.arg(&mut partial);
		// SAFETY: matches `mlpow2_fv_part`: `partial` holds `items` values;
		// the caller vouches for `a` and `out`.
		unsafe { launch.launch(launch_config(items)?) }.map_err(|e| anyhow!("Freivalds' sums: {e:?}"))?;
		let mut launch = stream.launch_builder(&self.fv_rows);
		launch.arg(&rows).arg(&FV_PARTS).arg(&partial).arg(&mut bad);
		// SAFETY: matches `mlpow2_fv_rows`; `bad` was zeroed by `alloc`.
		unsafe { launch.launch(launch_config(rows)?) }.map_err(|e| anyhow!("Freivalds' verdict: {e:?}"))?;
		let bad = stream.clone_dtoh(&bad).map_err(|e| anyhow!("reading Freivalds' verdict: {e:?}"))?[0];
		Ok(bad == 0)
	}

	/// `out = a * bt^T` (or `+=` with `accumulate`) by the plain fallback
	/// kernel: a thread an output, for strides cuBLASLt does not take.
	///
	/// # Safety
	/// As [`Self::holds`], and nothing else writes `out` until the stream
	/// has run the kernel.
	pub(super) unsafe fn gemm(
		&self,
		stream: &Arc<CudaStream>,
		a: &DeviceMatrix,
		bt: &DeviceMatrix,
		out: &DeviceOut,
		accumulate: bool,
	) -> anyhow::Result<()> {
		ensure!(
			a.rows > 0 && a.cols > 0 && bt.rows > 0 && a.cols == bt.cols && out.rows == a.rows && out.cols == bt.rows,
			"the shapes of a product differ or are empty"
		);
		let items = u64::from(out.rows) * u64::from(out.cols);
		let accumulate = i32::from(accumulate);
		let mut launch = stream.launch_builder(&self.gemm);
		launch
			.arg(&a.ptr)
			.arg(&a.row_stride)
			.arg(&a.col_stride)
			.arg(&bt.ptr)
			.arg(&bt.row_stride)
			.arg(&bt.col_stride)
			.arg(&out.ptr)
			.arg(&out.ldc)
			.arg(&items)
			.arg(&out.cols)
			.arg(&a.cols)
			.arg(&accumulate);
		// SAFETY: matches `mlpow_gemm_i8`; the caller vouches for all three.
		unsafe { launch.launch(launch_config(items)?) }.map_err(|e| anyhow!("the plain product: {e:?}"))?;
		Ok(())
	}
}

/// A `height x k` puzzle piece cut from the lent block `src` into a buffer
/// of the lane's ([`DeviceOps::piece`], salted from `seed` in `salt_col`,
/// values outside -64..63 flagged in `first_bad`) and committed where it
/// lies ([`Commit::tree`]): only the tree comes back, and its root is
/// checked against a host tree built from its leaves.
///
/// # Safety
/// As [`DeviceOps::piece`].
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn commit_piece(
	ops: &DeviceOps,
	commit: &Commit,
	ctx: &Arc<CudaContext>,
	stream: &Arc<CudaStream>,
	src: &DeviceMatrix,
	(height, k, t): (u32, u32, u32),
	salt: (u32, &Words8),
	first_bad: &mut CudaSlice<u64>,
) -> anyhow::Result<DevicePiece> {
	ensure!(t > 0 && height.is_multiple_of(t), "a piece of {height} rows does not cut into blocks of {t}");
	let mut buf = alloc::<i8>(ctx, stream, height as usize * k as usize, "a piece")?;
	// SAFETY: the caller vouches for `src`; the tree below waits for the
	// stream.
	unsafe { ops.piece(stream, &mut buf, (height, k), src, salt, first_bad)? };
	let levels = commit.tree(ctx, stream, &buf, height, k, t)?;
	let tree = MerkleTree::from_leaves(levels[..(height / t) as usize].to_vec());
	ensure!(
		levels.last() == Some(&tree.root()),
		"the device's commitment tree disagrees with its own leaves: the device computes wrongly"
	);
	Ok(DevicePiece { buf, rows: height, k, t, tree })
}

pub(super) mod call;
#[cfg(feature = "test-hooks")]
mod debug;
pub(super) mod weight;
