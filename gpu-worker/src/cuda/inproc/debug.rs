//! The device-operand kernels run on host data uploaded for the purpose
//! (tests/cuda_device_inproc.rs checks each against its host twin on a
//! GPU). A layout is a [`DeviceMatrix`] whose `ptr` is the element offset
//! of (0, 0) in the uploaded slice; the device address is added here.

use super::lent_memory;
use crate::{
	backend::{Job, Winner},
	cuda::{
		launch::alloc,
		operand::{DeviceMatrix, DeviceOut, OutOfRange},
		v2::{InPlace, ProductOut},
		CudaLane,
	},
	kernels::Words8,
};
use anyhow::anyhow;
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr, ValidAsZeroBits};
use std::sync::Arc;

/// A useful nonce on device pieces: the product and its winners, or the
/// operand ("A" or "B") holding a value outside -64..63 and where.
pub type DeviceNonce = (Vec<i32>, Vec<Winner>, Option<(&'static str, OutOfRange)>);

impl CudaLane {
	fn upload<T: DeviceRepr + ValidAsZeroBits + Copy>(
		&self,
		stream: &Arc<CudaStream>,
		data: &[T],
	) -> anyhow::Result<CudaSlice<T>> {
		let mut dev = alloc::<T>(&self.ctx, stream, data.len().max(1), "a test matrix")?;
		stream.memcpy_htod(data, &mut dev).map_err(|e| anyhow!("uploading: {e:?}"))?;
		Ok(dev)
	}

	/// `layout` with its offset made an address inside `buf`.
	fn placed<T>(stream: &Arc<CudaStream>, buf: &CudaSlice<T>, layout: &DeviceMatrix) -> DeviceMatrix {
		DeviceMatrix { ptr: address(stream, buf) + layout.ptr * std::mem::size_of::<T>() as u64, ..*layout }
	}

	/// [`inproc::DeviceOps::first_out_of_range`](super::DeviceOps::first_out_of_range)
	/// over `data` as `layout` describes it.
	pub fn debug_range(&mut self, data: &[i8], layout: &DeviceMatrix) -> anyhow::Result<Option<OutOfRange>> {
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		let stream = self.ctx.default_stream();
		let buf = self.upload(&stream, data)?;
		let m = Self::placed(&stream, &buf, layout);
		lent_memory(m.ptr, m.span("the matrix")?, self.info.ordinal, "the matrix")?;
		// SAFETY: `m` lies inside `buf` (checked by `lent_memory`), alive
		// until this returns.
		unsafe { self.ops.first_out_of_range(&self.ctx, &stream, &m, None) }
	}

	/// A `height x k` piece cut from `data` (the block `layout`), its salt
	/// from `seed` in column `salt_col`, and the first value it copied that
	/// is outside -64..63 (row, column in the block, value).
	pub fn debug_piece(
		&mut self,
		data: &[i8],
		layout: &DeviceMatrix,
		shape: (u32, u32),
		salt_col: u32,
		seed: &[u8; 32],
	) -> anyhow::Result<(Vec<i8>, Option<OutOfRange>)> {
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		let stream = self.ctx.default_stream();
		let buf = self.upload(&stream, data)?;
		let src = Self::placed(&stream, &buf, layout);
		lent_memory(src.ptr, src.span("the block")?, self.info.ordinal, "the block")?;
		let mut piece = alloc::<i8>(&self.ctx, &stream, shape.0 as usize * shape.1 as usize, "the piece")?;
		let mut first = self.upload(&stream, &[u64::MAX])?;
		// SAFETY: `src` lies inside `buf` (checked), alive until the copy
		// back below has waited for the kernel.
		unsafe { self.ops.piece(&stream, &mut piece, shape, &src, (salt_col, &Words8::le(seed)), &mut first)? };
		let piece = stream.clone_dtoh(&piece).map_err(|e| anyhow!("reading the piece: {e:?}"))?;
		let key = stream.clone_dtoh(&first).map_err(|e| anyhow!("reading the flag: {e:?}"))?[0];
		let cols = u64::from(layout.cols);
		Ok((
			piece,
			(key != u64::MAX).then(|| (((key >> 8) / cols) as u32, ((key >> 8) % cols) as u32, key as u8 as i8)),
		))
	}

	/// Freivalds' verdict on `c` (`a.rows x bt.rows`, rows `ldc` apart) as
	/// the product of `a` and `bt` laid out as given, with `seed`'s vector.
	pub fn debug_holds(
		&mut self,
		(a, a_layout): (&[i8], &DeviceMatrix),
		(bt, bt_layout): (&[i8], &DeviceMatrix),
		c: &[i32],
		ldc: u64,
		seed: u64,
	) -> anyhow::Result<bool> {
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		let stream = self.ctx.default_stream();
		let (a_buf, bt_buf, c_buf) = (self.upload(&stream, a)?, self.upload(&stream, bt)?, self.upload(&stream, c)?);
		let (a, bt) = (Self::placed(&stream, &a_buf, a_layout), Self::placed(&stream, &bt_buf, bt_layout));
		let out = DeviceOut { ptr: address(&stream, &c_buf), rows: a.rows, cols: bt.rows, ldc };
		let [sa, sb, sc] = crate::cuda::operand::check_product(&a, &bt, &out)?;
		for (ptr, span, what) in [(a.ptr, sa, "A"), (bt.ptr, sb, "B"), (out.ptr, sc, "the output")] {
			lent_memory(ptr, span, self.info.ordinal, what)?;
		}
		// SAFETY: all three lie inside their buffers (checked), alive
		// until this returns, which waits for the kernels.
		unsafe { self.ops.holds(&self.ctx, &stream, &a, &bt, &out, seed) }
	}

	/// `c` after the fallback kernel's `a * bt^T` is stored in (or added
	/// to, `accumulate`) its `a.rows x bt.rows` corner, rows `ldc` apart.
	pub fn debug_gemm(
		&mut self,
		(a, a_layout): (&[i8], &DeviceMatrix),
		(bt, bt_layout): (&[i8], &DeviceMatrix),
		c: &[i32],
		ldc: u64,
		accumulate: bool,
	) -> anyhow::Result<Vec<i32>> {
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		let stream = self.ctx.default_stream();
		let (a_buf, bt_buf) = (self.upload(&stream, a)?, self.upload(&stream, bt)?);
		let mut c_buf = self.upload(&stream, c)?;
		let (a, bt) = (Self::placed(&stream, &a_buf, a_layout), Self::placed(&stream, &bt_buf, bt_layout));
		let out = DeviceOut { ptr: address_mut(&stream, &mut c_buf), rows: a.rows, cols: bt.rows, ldc };
		let [sa, sb, sc] = crate::cuda::operand::check_product(&a, &bt, &out)?;
		for (ptr, span, what) in [(a.ptr, sa, "A"), (bt.ptr, sb, "B"), (out.ptr, sc, "the output")] {
			lent_memory(ptr, span, self.info.ordinal, what)?;
		}
		// SAFETY: as in `debug_holds`; the copy back waits for the kernel.
		unsafe { self.ops.gemm(&stream, &a, &bt, &out, accumulate)? };
		stream.clone_dtoh(&c_buf).map_err(|e| anyhow!("reading the output: {e:?}"))
	}

	/// One useful nonce of `work` on pieces cut and committed on the device
	/// from the lent blocks `a` (rows of `A`, at most `m x (k - 2)`) and
	/// `bt` (rows of `Bt`, at most `n x (k - 2)`), salted from `seeds`: the
	/// piece's whole `m x n` product read back, its winners, or the first
	/// value outside -64..63 the cutting found in an operand ("A" or "B";
	/// then nothing is mined).
	pub fn debug_multiply_device(
		&mut self,
		work: &Job,
		(a, a_layout): (&[i8], &DeviceMatrix),
		(bt, bt_layout): (&[i8], &DeviceMatrix),
		seeds: (&[u8; 32], &[u8; 32]),
		nonce: u64,
	) -> anyhow::Result<DeviceNonce> {
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		let p = work.params;
		let stream = self.ctx.default_stream();
		let (a_buf, bt_buf) = (self.upload(&stream, a)?, self.upload(&stream, bt)?);
		let (a, bt) = (Self::placed(&stream, &a_buf, a_layout), Self::placed(&stream, &bt_buf, bt_layout));
		for (m, what) in [(&a, "A"), (&bt, "B")] {
			lent_memory(m.ptr, m.span(what)?, self.info.ordinal, what)?;
		}
		// A flag per operand, so that a refusal can say which.
		let (mut first_a, mut first_bt) = (self.upload(&stream, &[u64::MAX])?, self.upload(&stream, &[u64::MAX])?);
		let (seed_a, seed_bt) = (Words8::le(seeds.0), Words8::le(seeds.1));
		let (ops, commit, ctx) = (&self.ops, &self.commit, &self.ctx);
		// SAFETY: both blocks lie inside their buffers (checked), alive until
		// this returns; each commitment waits for its piece.
		let (pa, pbt) = unsafe {
			(
				super::commit_piece(ops, commit, ctx, &stream, &a, (p.m, p.k, p.t), (p.k - 1, &seed_a), &mut first_a)?,
				super::commit_piece(
					ops,
					commit,
					ctx,
					&stream,
					&bt,
					(p.n, p.k, p.t),
					(p.k - 2, &seed_bt),
					&mut first_bt,
				)?,
			)
		};
		for (flag, m, which) in [(&first_a, &a, "A"), (&first_bt, &bt, "B")] {
			let key = stream.clone_dtoh(flag).map_err(|e| anyhow!("reading the flag: {e:?}"))?[0];
			if key != u64::MAX {
				let (idx, cols) = (key >> 8, u64::from(m.cols));
				let bad = ((idx / cols) as u32, (idx % cols) as u32, key as u8 as i8);
				return Ok((Vec::new(), Vec::new(), Some((which, bad))));
			}
		}
		// The product in a whole buffer (a session's call writes it into a
		// block of the caller's output instead: `a_sessions_device_products_...`).
		let mut buf = alloc::<i32>(&self.ctx, &stream, (p.m * p.n) as usize, "the product")?;
		let into = InPlace { out: ProductOut::whole(address_mut(&stream, &mut buf), &p), fold: None };
		let winners = self.v2.multiply_device(work, &pa, &pbt, nonce, into)?;
		let product = stream.clone_dtoh(&buf).map_err(|e| anyhow!("reading the product: {e:?}"))?;
		Ok((product, winners, None))
	}

	/// Whether `lent_memory` takes `span` bytes from `offset` into a
	/// `len`-byte allocation of the driver's own (`cuMemAlloc`, not the
	/// stream-ordered pool, whose chunks hold many allocations), or, with
	/// `host`, from a host buffer's address: the refusals of host memory
	/// and of spans past an allocation, on a real driver.
	pub fn debug_lent_memory(&mut self, len: usize, offset: u64, span: u64, host: bool) -> anyhow::Result<()> {
		use cudarc::driver::result;
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		let host_buf = vec![0i8; len];
		// SAFETY: a plain allocation, freed below; nothing reads it.
		let dev = unsafe { result::malloc_sync(len) }.map_err(|e| anyhow!("allocating: {e:?}"))?;
		let base = if host { host_buf.as_ptr() as u64 } else { dev };
		let verdict = lent_memory(base + offset, span, self.info.ordinal, "the test buffer");
		// SAFETY: allocated above, no kernel uses it.
		unsafe { result::free_sync(dev) }.map_err(|e| anyhow!("freeing: {e:?}"))?;
		Ok(verdict?)
	}
}

/// The device address of a buffer of ours, for a description.
fn address<T>(stream: &Arc<CudaStream>, buf: &CudaSlice<T>) -> u64 {
	let (ptr, _sync) = buf.device_ptr(stream);
	ptr
}

/// The device address of a buffer of ours that a kernel will write.
fn address_mut<T>(stream: &Arc<CudaStream>, buf: &mut CudaSlice<T>) -> u64 {
	let (ptr, _sync) = buf.device_ptr_mut(stream);
	ptr
}
