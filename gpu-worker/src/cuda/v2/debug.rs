//! Test-only views into the v2 pipeline (feature `test-hooks`): one seeded
//! nonce's noisy operands and every tile's state, as the device computed
//! them, so that a GPU test can say which stage differs from the CPU
//! reference (the noise, or the transcript kernel, and at which tile),
//! not only that a winner is missing.

use super::{
	enqueue_noise, enqueue_transcript, upload_selections, useful::Correction, NonceInputs, Operands, Pipeline,
	ProductOut, Transcript,
};
use crate::{backend::Job, cuda::launch::alloc, kernels::Words8};
use anyhow::{anyhow, bail};
use cudarc::driver::DevicePtrMut;
use mlpow_primitives::{
	stream::job_seed,
	v2::{
		noise::{Commitments, Mode},
		transcript::State,
	},
};

/// What the device computed for one seeded nonce.
pub struct V2Debug {
	/// `A'` (`m x k`) and `Bt'` (`n x k`).
	pub a_noisy: Vec<i8>,
	pub bt_noisy: Vec<i8>,
	/// Every tile's 16-word state, tiles in row-major order.
	pub states: Vec<State>,
}

impl Pipeline {
	/// Runs seeded nonce `nonce` of `job` on slot 0 and reads back its noisy
	/// operands and tile states.
	pub(in crate::cuda) fn debug_seeded(&mut self, job: &Job, nonce: u64) -> anyhow::Result<V2Debug> {
		self.ensure(job)?;
		let p = job.params;
		let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
		let js = job_seed(&job.pre_hash, &job.weights_seed);
		let inputs =
			NonceInputs::new(&job.pre_hash, &p, Mode::Seeded, &Commitments { a: js, bt: job.weights_seed }, nonce);
		let (Some(a), Some(bt), Some((_, slots))) = (&self.activations, &self.weights, &mut self.slots) else {
			bail!("the seeded matrices are not resident");
		};
		let slot = &mut slots[0];
		let stream = slot.stream.clone();
		let tiles = p.tickets_per_nonce() as usize;
		let mut states = alloc::<u32>(&self.ctx, &stream, tiles * 16, "the tile states")?;
		stream.memset_zeros(&mut slot.winners).map_err(|e| anyhow!("clearing the winners: {e:?}"))?;
		upload_selections(slot, core::slice::from_ref(&inputs))?;
		enqueue_noise(&self.k, slot, &p, &Operands { a: &a.data, bt: &bt.data, raw: true }, &inputs, 0)?;
		{
			let (ptr, _sync) = states.device_ptr_mut(&stream);
			let target = Words8([0; 8]);
			let launch = Transcript {
				inputs: &inputs,
				target: &target,
				nonce_index: 0,
				states: ptr,
				out: ProductOut::NONE,
				corr: Correction::NONE,
			};
			enqueue_transcript(&self.k, slot, &p, &launch)?;
		}
		let read = |e| anyhow!("reading back: {e:?}");
		let words = stream.clone_dtoh(&states).map_err(read)?;
		let a_noisy = stream.clone_dtoh(&slot.a_noisy.slice(..m * k)).map_err(read)?;
		let bt_noisy = stream.clone_dtoh(&slot.bt_noisy.slice(..n * k)).map_err(read)?;
		stream.synchronize().map_err(|e| anyhow!("a debug nonce: {e:?}"))?;
		let states = words.chunks_exact(16).map(|w| core::array::from_fn(|i| w[i])).collect();
		Ok(V2Debug { a_noisy, bt_noisy, states })
	}
}
