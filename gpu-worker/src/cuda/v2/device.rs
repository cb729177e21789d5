//! A useful nonce on pieces that were cut and committed on the device
//! (`inproc::commit_piece`): a model's CUDA tensors mined where they lie
//! (docs/in-process-cuda.md, stage 1.5). The same kernels as
//! [`Pipeline::multiply`], on operands that never leave the device; what
//! comes back to the host is the commitment trees (when the pieces were
//! committed), the winners, and each winner's two opened blocks (`t` rows
//! each) for its seal. The transcript kernel writes the product straight
//! into the caller's output (stored or added, a short depth remainder
//! folded in: [`InPlace`]).
//!
//! As on the host path, every seal is verified by the primitives before it
//! is returned: checking winners protects seals, not products (tickets
//! hash the noisy product's transcript, so a wrong correction would never
//! show in one). Products are checked by Freivalds on the device, once a
//! call's output is complete (`inproc::DeviceOps::holds`).

use super::{collect_winners, enqueue_useful, InPlace, NonceInputs, Operands, Pipeline};
use crate::{backend::Job, backend::Winner, kernels::Words8};
use anyhow::{anyhow, ensure};
use cudarc::driver::{CudaSlice, CudaStream};
use mlpow_primitives::{
	v2::{
		commit::MerkleTree,
		noise::{Commitments, Mode},
		seal::encode_chosen,
	},
	verify, Hash32, Seal, PUZZLE_V2,
};
use std::sync::Arc;

/// A puzzle piece (`rows x k`, row-major, salted) in device memory of the
/// lane's own, and its commitment: the Merkle tree of its `t`-row blocks.
pub(in crate::cuda) struct DevicePiece {
	pub buf: CudaSlice<i8>,
	pub rows: u32,
	pub k: u32,
	pub t: u32,
	pub tree: MerkleTree,
}

impl DevicePiece {
	/// Block `block`'s `t` rows, read from the device, and its path.
	fn opening(&self, stream: &Arc<CudaStream>, block: u32) -> anyhow::Result<(Vec<i8>, Vec<Hash32>)> {
		let len = (self.t * self.k) as usize;
		let at = block as usize * len;
		ensure!(at + len <= self.buf.len(), "block {block} is past the piece's {} rows", self.rows);
		let mut rows = vec![0i8; len];
		stream
			.memcpy_dtoh(&self.buf.slice(at..at + len), &mut rows)
			.map_err(|e| anyhow!("reading an opened block: {e:?}"))?;
		Ok((rows, self.tree.path(block)))
	}
}

impl Pipeline {
	/// One useful nonce of `work` on the pieces `a` (`m x k`) and `bt`
	/// (`n x k`), which live on this lane's device, its winners returned.
	/// `into`: where the product goes (a block of the caller's output, no
	/// larger than the piece, or a whole product's buffer, and a remainder
	/// of the caller's depth to fold in, the caller vouching for all of
	/// them); complete when this returns.
	pub(in crate::cuda) fn multiply_device(
		&mut self,
		work: &Job,
		a: &DevicePiece,
		bt: &DevicePiece,
		nonce: u64,
		into: InPlace,
	) -> anyhow::Result<Vec<Winner>> {
		let p = work.params;
		ensure!(p.version == PUZZLE_V2, "useful work needs puzzle v2");
		ensure!(
			(a.rows, a.k, a.t, bt.rows, bt.k, bt.t) == (p.m, p.k, p.t, p.n, p.k, p.t),
			"pieces of {} x {} and {} x {} (t = {}, {}) are not a nonce of {p:?}",
			a.rows,
			a.k,
			bt.rows,
			bt.k,
			a.t,
			bt.t
		);
		self.ensure_slots(&p)?;
		let (ctx, k, device) = (&self.ctx, &self.k, self.device.as_str());
		let target = Words8::target_be(work.difficulty).ok_or_else(|| anyhow!("difficulty 0 has no target"))?;
		let roots = (a.tree.root(), bt.tree.root());
		let commitments = Commitments { a: roots.0, bt: roots.1 };
		let inputs = NonceInputs::new(&work.pre_hash, &p, Mode::Chosen, &commitments, nonce);
		let Some((_, slots)) = &mut self.slots else { anyhow::bail!("no v2 buffers") };
		let slot = &mut slots[0];
		let stream = slot.stream.clone();
		// The caller's output was written on the lane's default stream
		// (plain blocks, earlier pieces): the slot's kernels wait for it,
		// explicitly rather than through some read-back on the way.
		stream.join(&ctx.default_stream()).map_err(|e| anyhow!("ordering after the caller's output: {e:?}"))?;
		slot.pending = Some((nonce, 1));
		let ops = Operands { a: &a.buf, bt: &bt.buf, raw: false };
		let scratch = enqueue_useful(ctx, k, slot, &p, &ops, &inputs, &target, into.out, into.fold);
		// Reading the winners waits for the slot's stream: the product is
		// complete after this. If that fails, the slot's kernels may still
		// be writing the caller's output: they are waited for before the
		// error goes back (the caller may reuse the memory at once).
		let wins = scratch.and_then(|scratch| {
			let wins = collect_winners(slot, device);
			drop(scratch);
			wins
		});
		let wins = match wins {
			Ok(wins) => wins,
			Err(e) => {
				if let Err(sync) = stream.synchronize() {
					log::error!("{device}: waiting for a failed nonce's kernels: {sync:?}");
				}
				return Err(e);
			}
		};
		slot.pending = None;
		let mut winners = Vec::new();
		for (_, i, j) in wins {
			let id = Seal { nonce, tile_i: i, tile_j: j };
			let ((a_rows, a_path), (bt_rows, bt_path)) = (a.opening(&stream, i)?, bt.opening(&stream, j)?);
			let seal = encode_chosen(&id, (&roots.0, &roots.1), &a_rows, &a_path, &bt_rows, &bt_path);
			verify::verify(&p, &work.weights_seed, &work.pre_hash, work.difficulty, &seal)
				.map_err(|e| anyhow!("{device}: the device found {id:?}, which does not verify ({e:?})"))?;
			winners.push(Winner { id, seal });
		}
		winners.sort_by_key(|w| (w.id.tile_i, w.id.tile_j));
		Ok(winners)
	}
}
