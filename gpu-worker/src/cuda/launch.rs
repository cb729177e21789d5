//! Launch helpers: the tile-hashing kernel's arguments, device allocations
//! that say what they were for, and launch shapes.

use super::{THREADS, WINNER_CAPACITY};
use crate::kernels::Words8;
use anyhow::{anyhow, bail};
use cudarc::driver::{sys as drv_sys, CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use mlpow_primitives::ChallengeParams;
use std::sync::Arc;

/// One launch of `mlpow_hash_tiles`: hash every tile of `count` products in
/// `c` (nonces from `first`), append winners to `winners` and, when `digests`
/// is a non-zero device pointer, write every digest there (8 words a tile).
pub(super) struct HashTiles<'a> {
	pub c: &'a CudaSlice<i32>,
	pub winners: &'a mut CudaSlice<u32>,
	pub params: &'a ChallengeParams,
	pub tile_key: &'a Words8,
	pub job: &'a Words8,
	pub first: u64,
	pub count: u32,
	pub target: &'a Words8,
	pub digests: drv_sys::CUdeviceptr,
}

impl HashTiles<'_> {
	/// Launches it on `stream`.
	///
	/// # Safety
	/// `c` must hold `count` products of `params`' shape, and a non-zero
	/// `digests` must point at `8 * count * tickets_per_nonce` writable words.
	pub(super) unsafe fn launch(self, hash_tiles: &CudaFunction, stream: &Arc<CudaStream>) -> anyhow::Result<()> {
		let p = self.params;
		let tiles = p.tickets_per_nonce() * self.count as u64;
		let mut launch = stream.launch_builder(hash_tiles);
		launch
			.arg(self.c)
			.arg(&tiles)
			.arg(&p.m)
			.arg(&p.n)
			.arg(&p.t)
			.arg(self.tile_key)
			.arg(self.job)
			.arg(&self.first)
			.arg(self.target)
			.arg(self.winners)
			.arg(&WINNER_CAPACITY)
			.arg(&self.digests);
		// SAFETY: the arguments match `mlpow_hash_tiles`' signature; the
		// caller vouches for the buffers' sizes.
		unsafe { launch.launch(launch_config(tiles)?) }.map_err(|e| anyhow!("hashing tiles: {e:?}"))?;
		Ok(())
	}
}

/// `len` elements of device memory, or an error that names what they were
/// for and how much was free.
pub(super) fn alloc<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
	ctx: &Arc<CudaContext>,
	stream: &Arc<CudaStream>,
	len: usize,
	what: &str,
) -> anyhow::Result<CudaSlice<T>> {
	let bytes = len.saturating_mul(std::mem::size_of::<T>());
	let free = ctx.mem_get_info().map(|(free, _)| free).unwrap_or(usize::MAX);
	if bytes > free {
		bail!("out of device memory: {what} need {} MiB, {} MiB free", bytes >> 20, free >> 20);
	}
	stream
		.alloc_zeros::<T>(len)
		.map_err(|e| anyhow!("allocating {} MiB for {what} failed ({e:?}); {} MiB were free", bytes >> 20, free >> 20))
}

/// One thread per item, `THREADS` a block.
pub(super) fn launch_config(items: u64) -> anyhow::Result<LaunchConfig> {
	// A grid's x dimension holds at most 2^31 - 1 blocks.
	let blocks = u32::try_from(items.div_ceil(THREADS as u64))
		.ok()
		.filter(|&b| b <= i32::MAX as u32)
		.ok_or_else(|| anyhow!("{items} threads do not fit one launch"))?;
	Ok(LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 })
}
