//! Chosen-mode commitments computed where the matrix lives
//! (kernels/commit.cu): the Merkle tree of a device matrix's `t`-row
//! blocks, as `mlpow_primitives::v2::commit` builds it on the host, without
//! copying the matrix off the device. Mining a model's CUDA tensors in its
//! own process needs this first: only the tree (a few KiB) comes back.

use super::launch::{alloc, launch_config};
use crate::kernels::Words8;
use anyhow::{anyhow, ensure};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtrMut, PushKernelArg};
use mlpow_primitives::{
	params::{MAX_K, MAX_T},
	v2::commit,
	Hash32,
};
use std::sync::Arc;

/// BLAKE3 chunk size: the leaves are hashed a chunk a thread first.
const CHUNK: u64 = 1024;
/// Words of one hash.
const WORDS: usize = 8;

/// The three commitment kernels and their context keys.
pub(super) struct Commit {
	chunk_cvs: CudaFunction,
	leaves: CudaFunction,
	level: CudaFunction,
	leaf_key: Words8,
	node_key: Words8,
}

impl Commit {
	pub(super) fn load(module: &Arc<CudaModule>) -> anyhow::Result<Self> {
		let function = |name: &str| module.load_function(name).map_err(|e| anyhow!("kernel {name}: {e:?}"));
		Ok(Self {
			chunk_cvs: function("mlpow2_chunk_cvs")?,
			leaves: function("mlpow2_leaves")?,
			level: function("mlpow2_merkle_level")?,
			leaf_key: Words8::context_key(commit::CTX_LEAF),
			node_key: Words8::context_key(commit::CTX_NODE),
		})
	}

	/// The tree over `matrix` (`rows x k`, row-major, on the device) cut
	/// into blocks of `t` rows: level 0 (the leaves, padded with zero
	/// hashes to a power of two), then each level above, the root last.
	pub(super) fn tree(
		&self,
		ctx: &Arc<CudaContext>,
		stream: &Arc<CudaStream>,
		matrix: &CudaSlice<i8>,
		rows: u32,
		k: u32,
		t: u32,
	) -> anyhow::Result<Vec<Hash32>> {
		// What the kernels assume: whole 64-byte blocks (t and k multiples of
		// 16, as valid parameters have them), at least one leaf, and leaves
		// no longer than valid parameters allow (the leaf kernel's stack of
		// chaining values holds that many chunks).
		ensure!(
			rows > 0 && t > 0 && t.is_multiple_of(16) && rows.is_multiple_of(t) && k.is_multiple_of(16),
			"a {rows} x {k} matrix does not cut into {t}-row blocks of whole 64-byte blocks"
		);
		let leaf_bytes = u64::from(t) * u64::from(k);
		ensure!(
			leaf_bytes <= u64::from(MAX_T) * u64::from(MAX_K),
			"leaves of {t} x {k} bytes are longer than any valid parameters make"
		);
		let leaf_bytes = leaf_bytes as u32;
		ensure!(
			matrix.len() >= rows as usize * k as usize,
			"the matrix holds {} bytes, not {rows} x {k}",
			matrix.len()
		);
		let leaves = u64::from(rows / t);
		let chunks = u64::from(leaf_bytes).div_ceil(CHUNK);
		let width = leaves.next_power_of_two();
		let mut cvs = alloc::<u32>(ctx, stream, (leaves * chunks) as usize * WORDS, "the chunk values")?;
		let mut tree = alloc::<u32>(ctx, stream, (2 * width - 1) as usize * WORDS, "the commitment tree")?;

		let total = leaves * chunks;
		let mut launch = stream.launch_builder(&self.chunk_cvs);
		launch.arg(matrix).arg(&total).arg(&leaf_bytes).arg(&self.leaf_key).arg(&mut cvs);
		// SAFETY: matches `mlpow2_chunk_cvs`: `matrix` holds `rows x k`
		// bytes (checked) and device allocations are 256-byte aligned;
		// `cvs` holds 8 words per chunk.
		unsafe { launch.launch(launch_config(total)?) }.map_err(|e| anyhow!("hashing the chunks: {e:?}"))?;
		let chunks32 = chunks as u32;
		let mut launch = stream.launch_builder(&self.leaves);
		launch.arg(&cvs).arg(&leaves).arg(&chunks32).arg(&self.leaf_key).arg(&mut tree);
		// SAFETY: matches `mlpow2_leaves`: `cvs` as written above, `tree`
		// has `width >= leaves` leaf slots first.
		unsafe { launch.launch(launch_config(leaves)?) }.map_err(|e| anyhow!("hashing the leaves: {e:?}"))?;

		// Each level reads the one below it and writes the next, both in
		// `tree`: raw pointers, since one buffer is read and written.
		let (base, sync) = tree.device_ptr_mut(stream);
		let (mut below, mut w) = (0u64, width);
		while w > 1 {
			let above = below + w;
			let below_real = if below == 0 { leaves as u32 } else { w as u32 };
			let nodes = w / 2;
			let (below_ptr, above_ptr) = (base + below * (WORDS * 4) as u64, base + above * (WORDS * 4) as u64);
			let mut launch = stream.launch_builder(&self.level);
			launch.arg(&below_ptr).arg(&below_real).arg(&above_ptr).arg(&nodes).arg(&self.node_key);
			// SAFETY: matches `mlpow2_merkle_level`: `w` hashes from
			// `below`, `w / 2` written at `above`, both inside `tree`
			// (2 * width - 1 hashes); the reads end where the writes begin.
			unsafe { launch.launch(launch_config(nodes)?) }.map_err(|e| anyhow!("hashing the tree: {e:?}"))?;
			(below, w) = (above, nodes);
		}
		drop(sync);
		let words = stream.clone_dtoh(&tree).map_err(|e| anyhow!("reading the commitment tree: {e:?}"))?;
		Ok(words.chunks_exact(WORDS).map(|w| core::array::from_fn(|b| w[b / 4].to_le_bytes()[b % 4])).collect())
	}
}
