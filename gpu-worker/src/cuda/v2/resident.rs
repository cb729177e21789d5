//! Useful jobs' `Bt` pieces kept on the device between nonces, by their
//! commitment: a weight registered with a session (`session::Weight`)
//! commits each of its pieces once, and every call multiplied on a GPU
//! then uploads only its activations, not the weight again (issue 26,
//! step 3: prepared weights resident across nonces). A piece's Merkle root
//! commits to every byte of it (and, with its length, to its shape), so
//! the same root is the same piece: nothing is trusted that a hash does not
//! bind.
//!
//! Bounded: the least recently used pieces go first once the copies would
//! pass a quarter of the device's free memory (at most 2 GiB), and a
//! weight larger than that is simply uploaded at each call, as before.
//! Pieces salted afresh for each nonce (the job API's) never repeat, and
//! cost one upload each, as before.

use crate::cuda::launch::alloc;
use anyhow::anyhow;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use mlpow_primitives::Hash32;
use std::{collections::VecDeque, sync::Arc};

/// At most this many bytes of resident pieces.
const MAX_BYTES: usize = 2 << 30;

#[derive(Default)]
pub(super) struct ResidentBt {
	/// Most recently used last.
	pieces: VecDeque<(Hash32, usize, Arc<CudaSlice<i8>>)>,
	bytes: usize,
	/// Uploads saved (tests).
	pub hits: u64,
}

impl ResidentBt {
	/// `bt` (committed with root `root`) on the device: the copy made
	/// before, or one uploaded now on `stream` (and kept if it fits).
	pub fn get(
		&mut self,
		ctx: &Arc<CudaContext>,
		stream: &Arc<CudaStream>,
		root: Hash32,
		bt: &[i8],
	) -> anyhow::Result<Arc<CudaSlice<i8>>> {
		let found = self.pieces.iter().position(|(r, len, _)| *r == root && *len == bt.len());
		if let Some(entry) = found.and_then(|at| self.pieces.remove(at)) {
			let copy = entry.2.clone();
			self.pieces.push_back(entry);
			self.hits += 1;
			return Ok(copy);
		}
		let mut copy = alloc::<i8>(ctx, stream, bt.len(), "a useful job's Bt")?;
		stream.memcpy_htod(bt, &mut copy).map_err(|e| anyhow!("uploading a useful job's Bt: {e:?}"))?;
		let copy = Arc::new(copy);
		let free = ctx.mem_get_info().map(|(free, _)| free).unwrap_or(0);
		let budget = MAX_BYTES.min(free / 4);
		if bt.len() <= budget {
			while self.bytes + bt.len() > budget {
				let Some((_, len, _)) = self.pieces.pop_front() else { break };
				self.bytes -= len;
			}
			self.bytes += bt.len();
			self.pieces.push_back((root, bt.len(), copy.clone()));
		}
		Ok(copy)
	}

	/// Drops every copy (the puzzle's shape changed: no piece repeats).
	pub fn clear(&mut self) {
		self.pieces.clear();
		self.bytes = 0;
	}
}
