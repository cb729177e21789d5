//! Puzzle v2 on a GPU (consensus/SPEC-v2.md, kernels/v2.cu).
//!
//! Per nonce, on one of two streams: the host draws the noise seed, the
//! selections (a sequential shuffle, microseconds) and the ticket key, and
//! uploads the selections; the device generates `E_L` and `G_L`, writes the
//! noisy operands, and runs the transcript kernel, which leaves nothing in
//! memory but the winners. Seeded matrices are generated on the device and
//! stay resident: `Bt` for the epoch, `A` for the header. A useful job's
//! matrices are uploaded (a `Bt` piece once while it stays resident), the
//! column sums of the correction and their int8 limbs computed first, and
//! the transcript kernel's useful entry computes the correction `D` from
//! them and writes the exact product.
//!
//! Every winner is re-verified on the host with `mlpow-primitives`, and a
//! useful job's product is checked on the host with Freivalds' test before
//! it is returned: a device that computes wrongly stops with an error, and
//! never submits a bad seal or hands back a wrong product.

use super::{launch::alloc, WINNER_CAPACITY};
use crate::{
	backend::{Job, Multiplied, SearchReport, Winner},
	kernels::{Transcript as TranscriptKernel, Words8},
};
use anyhow::{anyhow, bail};
use cudarc::driver::{
	sys as drv_sys, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtrMut, LaunchConfig,
	PushKernelArg,
};
use mlpow_primitives::{
	stream::job_seed,
	v2::{
		self,
		mine::Operand,
		noise::{self, Commitments, Mode, Selections},
		transcript::ticket_key,
	},
	verify, ChallengeParams, Hash32, Seal,
};
use std::sync::Arc;

#[cfg(feature = "test-hooks")]
mod debug;
pub(super) mod device;
mod resident;
mod useful;
#[cfg(feature = "test-hooks")]
pub use debug::V2Debug;
use useful::enqueue_useful;
use useful::Correction;
pub(super) use useful::{InPlace, ProductOut, FOLD_MAX};

/// The transcript kernel's block tile (`V2_BM`, `V2_BN` in kernels/v2.cu).
const BLOCK: u32 = 128;
/// Its threads per block (`V2_THREADS`).
const BLOCK_THREADS: u32 = 256;
/// Threads per block of the element-wise kernels: 128, so that one of their
/// blocks fits on a multiprocessor beside a transcript block (which holds
/// most of its registers), and the next nonce's memory-bound noise runs in
/// the gaps of this nonce's compute-bound product (the slots' streams).
const THREADS: u32 = 128;

/// Why these parameters cannot run on the transcript kernel, if they
/// cannot: its tiles of `t` must divide its 128 x 128 blocks.
pub fn unsupported(p: &ChallengeParams) -> Option<String> {
	(!BLOCK.is_multiple_of(p.t)).then(|| format!("the CUDA v2 kernel needs a tile edge dividing 128 (t = {})", p.t))
}

fn grid(items: u64) -> anyhow::Result<LaunchConfig> {
	let blocks =
		u32::try_from(items.div_ceil(THREADS as u64)).map_err(|_| anyhow!("{items} threads do not fit one launch"))?;
	Ok(LaunchConfig { grid_dim: (blocks.max(1), 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 })
}

fn padded(x: u32) -> u32 {
	x.div_ceil(BLOCK) * BLOCK
}

struct Kernels {
	generate: CudaFunction,
	noisy: CudaFunction,
	column_sums: CudaFunction,
	limbs: CudaFunction,
	slab: CudaFunction,
	/// Seeded nonces' transcript kernel, and useful ones'.
	transcript: CudaFunction,
	transcript_useful: CudaFunction,
	ctx_a: Words8,
	ctx_bt: Words8,
	ctx_noise_a: Words8,
	ctx_noise_bt: Words8,
}

impl Kernels {
	fn load(module: &Arc<CudaModule>, transcript: TranscriptKernel) -> anyhow::Result<Self> {
		let function = |name: &str| module.load_function(name).map_err(|e| anyhow!("kernel {name}: {e:?}"));
		Ok(Self {
			generate: function("mlpow_generate")?,
			noisy: function("mlpow2_noisy")?,
			column_sums: function("mlpow2_column_sums")?,
			limbs: function("mlpow2_limbs")?,
			slab: function("mlpow2_slab")?,
			transcript: function(transcript.entry())?,
			transcript_useful: function(transcript.useful_entry())?,
			ctx_a: Words8::context_key(noise::CTX_A),
			ctx_bt: Words8::context_key(noise::CTX_BT),
			ctx_noise_a: Words8::context_key(noise::CTX_NOISE_A),
			ctx_noise_bt: Words8::context_key(noise::CTX_NOISE_BT),
		})
	}

	/// `len` bytes of the stream xof(context, seed) into `out`.
	fn stream(
		&self,
		stream: &Arc<CudaStream>,
		out: &mut CudaSlice<i8>,
		len: usize,
		context: &Words8,
		seed: &Words8,
	) -> anyhow::Result<()> {
		let blocks = (len / 64) as u64;
		let mut launch = stream.launch_builder(&self.generate);
		launch.arg(out).arg(&blocks).arg(&blocks).arg(context).arg(seed).arg(&0i32).arg(&0u64);
		// SAFETY: matches `mlpow_generate`; `out` holds at least `len`
		// bytes, a whole number of 64-byte blocks (every v2 length is a
		// multiple of 16 * 32).
		unsafe { launch.launch(grid(blocks)?) }.map_err(|e| anyhow!("generating a stream: {e:?}"))?;
		Ok(())
	}
}

/// One stream's buffers: the noise and noisy operands of one nonce at a
/// time, the selections of a whole batch.
struct Slot {
	stream: Arc<CudaStream>,
	el: CudaSlice<i8>,
	gl: CudaSlice<i8>,
	/// Per nonce of the batch, `s` then `s'` (`2k` bytes): uploaded in one
	/// copy per batch, since a copy from pageable host memory waits for the
	/// stream's work before it starts.
	sel: CudaSlice<u8>,
	/// `A'` and `Bt'`, zero rows up to whole blocks.
	a_noisy: CudaSlice<i8>,
	bt_noisy: CudaSlice<i8>,
	winners: CudaSlice<u32>,
	/// Nonces enqueued and not yet collected: (first, count).
	pending: Option<(u64, u32)>,
}

impl Slot {
	fn new(ctx: &Arc<CudaContext>, p: &ChallengeParams, batch: u32) -> anyhow::Result<Self> {
		let stream = ctx.new_stream().map_err(|e| anyhow!("creating a stream: {e:?}"))?;
		let (m, n, k, r) = (p.m as usize, p.n as usize, p.k as usize, p.r as usize);
		Ok(Self {
			el: alloc(ctx, &stream, m * r, "the noise of A")?,
			gl: alloc(ctx, &stream, n * r, "the noise of Bt")?,
			sel: alloc(ctx, &stream, 2 * k * batch as usize, "the selections")?,
			a_noisy: alloc(ctx, &stream, padded(p.m) as usize * k, "the noisy A")?,
			bt_noisy: alloc(ctx, &stream, padded(p.n) as usize * k, "the noisy Bt")?,
			winners: alloc(ctx, &stream, 1 + 3 * WINNER_CAPACITY as usize, "the winners")?,
			pending: None,
			stream,
		})
	}
}

/// A matrix on the device and what it was made from.
struct Resident {
	params: ChallengeParams,
	seed: Hash32,
	data: CudaSlice<i8>,
}

/// What one nonce needs besides the matrices.
struct NonceInputs {
	seed: Words8,
	sel: Selections,
	key: Words8,
}

impl NonceInputs {
	fn new(pre_hash: &Hash32, p: &ChallengeParams, mode: Mode, c: &Commitments, nonce: u64) -> Self {
		let seed = noise::noise_seed(pre_hash, p, mode, c, nonce);
		Self {
			seed: Words8::le(&seed),
			sel: Selections::generate(&seed, p.k, p.r),
			key: Words8::le(&ticket_key(&seed)),
		}
	}
}

/// A lane's v2 pipeline: its kernels, resident seeded matrices and both
/// slots.
pub(super) struct Pipeline {
	ctx: Arc<CudaContext>,
	k: Kernels,
	/// For messages: the GPU.
	device: String,
	weights: Option<Resident>,
	activations: Option<Resident>,
	slots: Option<(ChallengeParams, [Slot; 2])>,
	/// Useful jobs' `Bt` pieces kept between nonces, by commitment.
	resident_bt: resident::ResidentBt,
}

/// Where the clean matrices come from for one nonce.
struct Operands<'a> {
	a: &'a CudaSlice<i8>,
	bt: &'a CudaSlice<i8>,
	/// Raw stream bytes (seeded) rather than values (chosen).
	raw: bool,
}

/// Nonces per slot per round: about 2^31 multiply-accumulates.
pub(super) fn nonces_per_batch(p: &ChallengeParams) -> u32 {
	(1u64 << 31).div_ceil(p.macs_per_nonce().max(1)).clamp(1, 256) as u32
}

impl Pipeline {
	pub(super) fn new(
		ctx: &Arc<CudaContext>,
		module: &Arc<CudaModule>,
		device: String,
		transcript: TranscriptKernel,
	) -> anyhow::Result<Self> {
		let k = Kernels::load(module, transcript)?;
		Ok(Self {
			ctx: ctx.clone(),
			k,
			device,
			weights: None,
			activations: None,
			slots: None,
			resident_bt: Default::default(),
		})
	}

	#[cfg(feature = "test-hooks")]
	pub(super) fn resident_hits(&self) -> u64 {
		self.resident_bt.hits
	}

	/// Makes both slots' buffers ready for `p`: allocated when the
	/// parameters changed, and idle. A slot left with work in flight (a
	/// call that failed half-way) is waited for and its winners dropped, so
	/// they are never read as the next call's, and nothing it still reads
	/// is freed under it.
	fn ensure_slots(&mut self, p: &ChallengeParams) -> anyhow::Result<()> {
		if let Some(why) = unsupported(p) {
			bail!("{why}");
		}
		if let Some((_, slots)) = &mut self.slots {
			for slot in slots.iter_mut() {
				if slot.pending.take().is_some() {
					slot.stream.synchronize().map_err(|e| anyhow!("finishing a failed batch: {e:?}"))?;
				}
			}
		}
		if !self.slots.as_ref().is_some_and(|(sp, _)| sp == p) {
			self.slots = None;
			self.resident_bt.clear();
			let ctx = &self.ctx;
			let batch = nonces_per_batch(p);
			self.slots = Some((*p, [Slot::new(ctx, p, batch)?, Slot::new(ctx, p, batch)?]));
		}
		Ok(())
	}

	/// [`Self::ensure_slots`], and the header's seeded matrices resident,
	/// each made only when what it depends on changed.
	fn ensure(&mut self, job: &Job) -> anyhow::Result<()> {
		let p = job.params;
		self.ensure_slots(&p)?;
		let (ctx, k) = (&self.ctx, &self.k);
		let stream = ctx.default_stream();
		let fresh = |r: &Option<Resident>, seed: &Hash32| r.as_ref().is_some_and(|r| r.params == p && r.seed == *seed);
		if !fresh(&self.weights, &job.weights_seed) {
			self.weights = None;
			let len = p.n as usize * p.k as usize;
			let mut data = alloc(ctx, &stream, len, "the v2 weights")?;
			k.stream(&stream, &mut data, len, &k.ctx_bt, &Words8::le(&job.weights_seed))?;
			self.weights = Some(Resident { params: p, seed: job.weights_seed, data });
		}
		let js = job_seed(&job.pre_hash, &job.weights_seed);
		if !fresh(&self.activations, &js) {
			self.activations = None;
			let len = p.m as usize * p.k as usize;
			let mut data = alloc(ctx, &stream, len, "the v2 activations")?;
			k.stream(&stream, &mut data, len, &k.ctx_a, &Words8::le(&js))?;
			self.activations = Some(Resident { params: p, seed: js, data });
		}
		stream.synchronize().map_err(|e| anyhow!("generating the seeded matrices: {e:?}"))
	}
}

/// Uploads the selections of a batch's nonces to `slot`, in one copy.
fn upload_selections(slot: &mut Slot, batch: &[NonceInputs]) -> anyhow::Result<()> {
	let bytes: Vec<u8> = batch.iter().flat_map(|i| i.sel.a.iter().chain(&i.sel.bt).copied()).collect();
	let stream = slot.stream.clone();
	let mut dst = slot.sel.slice_mut(..bytes.len());
	stream.memcpy_htod(&bytes, &mut dst).map_err(|e| anyhow!("uploading the selections: {e:?}"))
}

/// Enqueues the noise of nonce `index` of the batch on `slot`: `E_L` and
/// `G_L` generated, the noisy operands written (its selections uploaded
/// beforehand by [`upload_selections`]).
fn enqueue_noise(
	k: &Kernels,
	slot: &mut Slot,
	p: &ChallengeParams,
	ops: &Operands,
	inputs: &NonceInputs,
	index: usize,
) -> anyhow::Result<()> {
	let (m, n, kk, r) = (p.m as usize, p.n as usize, p.k as usize, p.r as usize);
	let stream = slot.stream.clone();
	k.stream(&stream, &mut slot.el, m * r, &k.ctx_noise_a, &inputs.seed)?;
	k.stream(&stream, &mut slot.gl, n * r, &k.ctx_noise_bt, &inputs.seed)?;
	let raw = ops.raw as i32;
	let sel_a = slot.sel.slice(2 * kk * index..2 * kk * index + kk);
	let sel_bt = slot.sel.slice(2 * kk * index + kk..2 * kk * (index + 1));
	for (dst, src, left, sel, rows) in
		[(&mut slot.a_noisy, ops.a, &slot.el, &sel_a, m), (&mut slot.bt_noisy, ops.bt, &slot.gl, &sel_bt, n)]
	{
		let groups = (rows * kk / 16) as u64;
		let mut launch = stream.launch_builder(&k.noisy);
		launch.arg(dst).arg(src).arg(&raw).arg(left).arg(sel).arg(&groups).arg(&p.k).arg(&p.r);
		// SAFETY: matches `mlpow2_noisy`: `src` holds `rows x k`, `dst` at
		// least that, `left` `rows x r`, `sel` `k` bytes.
		unsafe { launch.launch(grid(groups)?) }.map_err(|e| anyhow!("adding the noise: {e:?}"))?;
	}
	Ok(())
}

/// One launch of the transcript kernel on a slot's noisy operands.
struct Transcript<'a> {
	inputs: &'a NonceInputs,
	target: &'a Words8,
	/// The nonce's index in its batch, as winners report it.
	nonce_index: u32,
	/// Device pointer for every tile's state (16 words a tile), or 0.
	states: drv_sys::CUdeviceptr,
	/// Where the exact product goes (a useful job), or nowhere.
	out: ProductOut,
	/// The correction's limbs (a useful job).
	corr: Correction,
}

/// Enqueues the transcript kernel on `slot`'s noisy operands.
fn enqueue_transcript(k: &Kernels, slot: &mut Slot, p: &ChallengeParams, t: &Transcript) -> anyhow::Result<()> {
	let Transcript { inputs, target, nonce_index, states, out, corr } = *t;
	let cfg = LaunchConfig {
		grid_dim: (padded(p.n) / BLOCK, padded(p.m) / BLOCK, 1),
		block_dim: (BLOCK_THREADS, 1, 1),
		shared_mem_bytes: 0,
	};
	let stream = slot.stream.clone();
	let kernel = if out.ptr == 0 { &k.transcript } else { &k.transcript_useful };
	let mut launch = stream.launch_builder(kernel);
	launch
		.arg(&slot.a_noisy)
		.arg(&slot.bt_noisy)
		.arg(&p.m)
		.arg(&p.n)
		.arg(&p.k)
		.arg(&p.r)
		.arg(&p.t)
		.arg(&inputs.key)
		.arg(target)
		.arg(&nonce_index)
		.arg(&mut slot.winners)
		.arg(&WINNER_CAPACITY)
		.arg(&states)
		.arg(&out)
		.arg(&corr);
	// SAFETY: matches `mlpow2_transcript`; the noisy operands are padded to
	// the grid's blocks; `t` divides 128 (checked in `ensure`); the caller
	// vouches for `states` (16 words a tile), `out` (its rows and columns
	// at most m x n, `ldc` apart) and the limbs (`v2_corr_width` bytes a
	// row: `limbs * 2r`, 32 more with a folded remainder; rows padded to
	// the grid's blocks).
	unsafe { launch.launch(cfg) }.map_err(|e| anyhow!("the transcript kernel: {e:?}"))?;
	Ok(())
}

/// Reads slot's winners back: (nonce index, i, j).
fn collect_winners(slot: &mut Slot, device: &str) -> anyhow::Result<Vec<(u32, u32, u32)>> {
	let words = slot.stream.clone_dtoh(&slot.winners).map_err(|e| anyhow!("reading the winners: {e:?}"))?;
	slot.stream.synchronize().map_err(|e| anyhow!("mining v2 nonces: {e:?}"))?;
	let found = words[0];
	if found > WINNER_CAPACITY {
		log::warn!("{device}: {found} winners in one batch, {WINNER_CAPACITY} kept: the difficulty is far too low");
	}
	Ok(words[1..].chunks_exact(3).take(found.min(WINNER_CAPACITY) as usize).map(|w| (w[0], w[1], w[2])).collect())
}

impl Pipeline {
	/// Seeded v2 mining of `nonces` for `job`.
	pub(super) fn search(
		&mut self,
		job: &Job,
		nonces: std::ops::Range<u64>,
		cancelled: &dyn Fn() -> bool,
	) -> anyhow::Result<SearchReport> {
		self.ensure(job)?;
		let (k, device) = (&self.k, self.device.as_str());
		let p = job.params;
		let target = Words8::target_be(job.difficulty).ok_or_else(|| anyhow!("difficulty 0 has no target"))?;
		let js = job_seed(&job.pre_hash, &job.weights_seed);
		let commitments = Commitments { a: js, bt: job.weights_seed };
		let batch = nonces_per_batch(&p) as u64;
		let (Some(a), Some(bt), Some((_, slots))) = (&self.activations, &self.weights, &mut self.slots) else {
			bail!("the seeded matrices are not resident");
		};
		let ops = Operands { a: &a.data, bt: &bt.data, raw: true };
		let mut report = SearchReport::default();
		let absorb = |slot: &mut Slot, report: &mut SearchReport| -> anyhow::Result<()> {
			let Some((first, count)) = slot.pending.take() else { return Ok(()) };
			for (b, i, j) in collect_winners(slot, device)? {
				let id = Seal { nonce: first + b as u64, tile_i: i, tile_j: j };
				let seal = v2::seal::encode_seeded(&id);
				// Consensus is the primitives crate: a device result that
				// disagrees with it must never reach the node.
				verify::verify(&p, &job.weights_seed, &job.pre_hash, job.difficulty, &seal)
					.map_err(|e| anyhow!("{device}: the device found {id:?}, which does not verify ({e:?})"))?;
				report.winners.push(Winner { id, seal });
			}
			report.nonces_done += count as u64;
			Ok(())
		};
		let mut first = nonces.start;
		let mut s = 0;
		while first < nonces.end && !cancelled() {
			let count = batch.min(nonces.end - first) as u32;
			absorb(&mut slots[s], &mut report)?;
			let slot = &mut slots[s];
			slot.stream.memset_zeros(&mut slot.winners).map_err(|e| anyhow!("clearing the winners: {e:?}"))?;
			let inputs: Vec<NonceInputs> = (0..count as u64)
				.map(|b| NonceInputs::new(&job.pre_hash, &p, Mode::Seeded, &commitments, first + b))
				.collect();
			upload_selections(slot, &inputs)?;
			for (b, inputs) in (0..count).zip(&inputs) {
				enqueue_noise(k, slot, &p, &ops, inputs, b as usize)?;
				let launch = Transcript {
					inputs,
					target: &target,
					nonce_index: b,
					states: 0,
					out: ProductOut::NONE,
					corr: Correction::NONE,
				};
				enqueue_transcript(k, slot, &p, &launch)?;
			}
			slot.pending = Some((first, count));
			first += count as u64;
			s ^= 1;
		}
		absorb(&mut slots[s], &mut report)?;
		absorb(&mut slots[s ^ 1], &mut report)?;
		report.winners.sort_by_key(|w| (w.id.nonce, w.id.tile_i, w.id.tile_j));
		Ok(report)
	}

	/// One useful-job nonce: the exact product of the chosen `a` and `bt`
	/// and the winning seals with their openings.
	pub(super) fn multiply(
		&mut self,
		work: &Job,
		a: Arc<Operand>,
		bt: Arc<Operand>,
		nonce: u64,
	) -> anyhow::Result<Multiplied> {
		let p = work.params;
		// A useful job brings its own matrices: the seeded ones are not made.
		self.ensure_slots(&p)?;
		let (ctx, k, device) = (&self.ctx, &self.k, self.device.as_str());
		let target = Words8::target_be(work.difficulty).ok_or_else(|| anyhow!("difficulty 0 has no target"))?;
		// The host side (range checks, Merkle trees) was done when the
		// operands were committed; here they are checked to be for `p`, and
		// later give the openings of winning seals.
		let job = v2::Job::of(&p, a, bt).map_err(|e| anyhow!("useful job: {e}"))?;
		let (m, n) = (p.m as usize, p.n as usize);
		let Some((_, slots)) = &mut self.slots else { bail!("no v2 buffers") };
		let slot = &mut slots[0];
		let stream = slot.stream.clone();
		let mut dev_a = alloc::<i8>(ctx, &stream, job.a().len(), "a useful job's A")?;
		stream.memcpy_htod(job.a(), &mut dev_a).map_err(|e| anyhow!("uploading a useful job's A: {e:?}"))?;
		// A registered weight's piece is uploaded once (by its commitment).
		let commitments = job.commitments();
		let dev_bt = self.resident_bt.get(ctx, &stream, commitments.bt, job.bt())?;
		let inputs = NonceInputs::new(&work.pre_hash, &p, Mode::Chosen, &commitments, nonce);
		let mut out = alloc::<i32>(ctx, &stream, m * n, "the product")?;
		// In flight until the winners are read: a failure before then leaves
		// the slot for `ensure_slots` to wait for.
		slot.pending = Some((nonce, 1));
		let ops = Operands { a: &dev_a, bt: &dev_bt, raw: false };
		let (out_ptr, out_sync) = out.device_ptr_mut(&stream);
		let scratch = enqueue_useful(ctx, k, slot, &p, &ops, &inputs, &target, ProductOut::whole(out_ptr, &p), None)?;
		drop(out_sync);
		let wins = collect_winners(slot, device)?;
		slot.pending = None;
		drop(scratch);
		let product = stream.clone_dtoh(&out).map_err(|e| anyhow!("reading the product: {e:?}"))?;
		stream.synchronize().map_err(|e| anyhow!("a useful job: {e:?}"))?;
		if !crate::freivalds::holds(job.a(), job.bt(), &product, m, n, p.k as usize) {
			bail!("{device}: the product of a useful job fails the host's check; the device computes wrongly");
		}
		let mut winners = Vec::new();
		for (_, i, j) in wins {
			let id = Seal { nonce, tile_i: i, tile_j: j };
			let seal = job.seal(&id);
			verify::verify(&p, &work.weights_seed, &work.pre_hash, work.difficulty, &seal)
				.map_err(|e| anyhow!("{device}: the device found {id:?}, which does not verify ({e:?})"))?;
			winners.push(Winner { id, seal });
		}
		winners.sort_by_key(|w| (w.id.tile_i, w.id.tile_j));
		Ok(Multiplied { product, winners })
	}
}
