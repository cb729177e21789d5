//! A lane per GPU: its context, kernels, resident weights, and the two
//! streams whose batches overlap (generate, GEMM, hash).

use super::{
	commit,
	device::{compile_kernels, devices, libraries_loadable, DeviceInfo},
	gemm::Gemm,
	inproc,
	launch::{alloc, launch_config, HashTiles},
	v2, WINNER_CAPACITY,
};
use crate::{
	backend::{Job, Lane, Multiplied, SearchReport, Winner},
	kernels::{ContextKeys, Transcript, Words8},
};
use anyhow::{anyhow, bail, Context as _};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, PushKernelArg};
use mlpow_primitives::{stream::job_seed, v2::mine::Operand, verify, ChallengeParams, Hash32, Seal, PUZZLE_V2};
use std::{ops::Range, sync::Arc};

/// One lane per selected GPU. `ordinals`: the `--devices` list, or `None`
/// for every supported device. Errors say why no lane could be opened.
pub fn lanes(ordinals: Option<&[usize]>) -> anyhow::Result<Vec<Box<dyn Lane>>> {
	let all = devices()?;
	let chosen: Vec<DeviceInfo> = match ordinals {
		Some(list) => list
			.iter()
			.map(|&o| {
				let d = all.get(o).ok_or_else(|| anyhow!("no device cuda:{o}: there are {} device(s)", all.len()))?;
				if let Some(why) = d.unsupported_reason() {
					bail!("{d} cannot mine: {why}");
				}
				Ok(d.clone())
			})
			.collect::<anyhow::Result<_>>()?,
		None => {
			let (ok, bad): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| d.unsupported_reason().is_none());
			for d in &bad {
				log::warn!("skipping {d}: {}", d.unsupported_reason().unwrap_or_default());
			}
			if ok.is_empty() {
				bail!("no CUDA device can mine (each is below compute capability 7.5)");
			}
			ok
		}
	};
	libraries_loadable()?;
	let mut lanes: Vec<Box<dyn Lane>> = Vec::new();
	for d in chosen {
		lanes.push(Box::new(CudaLane::open(d.clone()).with_context(|| format!("opening {d}"))?));
	}
	Ok(lanes)
}

/// The epoch's weights, resident on the device.
struct Epoch {
	params: ChallengeParams,
	seed: Hash32,
	bt: CudaSlice<i8>,
}

/// One stream's buffers for a batch of `batch` nonces, and the GEMM
/// prepared for that shape.
struct Slot {
	stream: Arc<CudaStream>,
	a: CudaSlice<i8>,
	c: CudaSlice<i32>,
	winners: CudaSlice<u32>,
	gemm: Gemm,
	/// The batch enqueued on this slot and not yet collected.
	pending: Option<(u64, u32)>,
}

/// Buffers for one parameter set.
struct Batches {
	params: ChallengeParams,
	batch: u32,
	slots: [Slot; 2],
}

pub struct CudaLane {
	pub(super) info: DeviceInfo,
	pub(super) ctx: Arc<CudaContext>,
	generate: CudaFunction,
	hash_tiles: CudaFunction,
	keys: ContextKeys,
	epoch: Option<Epoch>,
	batches: Option<Batches>,
	pub(super) v2: v2::Pipeline,
	pub(super) commit: commit::Commit,
	/// Kernels for operands the caller keeps on the device.
	pub(super) ops: inproc::DeviceOps,
	/// Plain products of lent operands, prepared per shape and strides.
	pub(super) gemms: inproc::call::GemmCache,
}

impl CudaLane {
	/// Opens `info`'s device: a context, the kernels compiled for it, and
	/// puzzle v2's transcript kernel as `MLPOW_V2_KERNEL` names it
	/// ([`Transcript::choose`]).
	pub fn open(info: DeviceInfo) -> anyhow::Result<Self> {
		let setting = std::env::var(Transcript::ENV).ok();
		let transcript = Transcript::choose(setting.as_deref(), info.compute_capability)?;
		Self::open_with(info, transcript)
	}

	/// [`Self::open`] with the transcript kernel given.
	pub fn open_with(info: DeviceInfo, transcript: Transcript) -> anyhow::Result<Self> {
		let ctx = CudaContext::new(info.ordinal).map_err(|e| anyhow!("creating a context: {e:?}"))?;
		let ptx = compile_kernels(info.compute_capability)?;
		let module = ctx.load_module(ptx).map_err(|e| anyhow!("loading the kernels: {e:?}"))?;
		let function = |name: &str| module.load_function(name).map_err(|e| anyhow!("kernel {name}: {e:?}"));
		Ok(Self {
			generate: function("mlpow_generate")?,
			hash_tiles: function("mlpow_hash_tiles")?,
			v2: v2::Pipeline::new(&ctx, &module, info.to_string(), transcript)?,
			commit: commit::Commit::load(&module)?,
			ops: inproc::DeviceOps::load(&module)?,
			gemms: Default::default(),
			info,
			ctx,
			keys: ContextKeys::new(),
			epoch: None,
			batches: None,
		})
	}

	pub fn info(&self) -> &DeviceInfo {
		&self.info
	}

	/// Nonces per GEMM for `params`: enough rows to fill the GPU (at least
	/// 8192 of `A`), while both slots' products stay within a quarter of
	/// the device's memory.
	fn nonces_per_batch(&self, params: &ChallengeParams) -> u32 {
		let c_bytes = params.m as u64 * params.n as u64 * 4;
		let by_memory = (self.info.memory_bytes as u64 / 8 / c_bytes.max(1)).max(1);
		let by_rows = (8192u64).div_ceil(params.m as u64).max(1);
		by_rows.min(by_memory).min(1024) as u32
	}

	/// Makes the epoch's weights resident, generating them only when the
	/// parameters or the weights seed changed.
	fn ensure_epoch(&mut self, params: &ChallengeParams, seed: &Hash32) -> anyhow::Result<()> {
		if self.epoch.as_ref().is_some_and(|e| e.params == *params && e.seed == *seed) {
			return Ok(());
		}
		self.epoch = None;
		let len = params.n as usize * params.k as usize;
		let stream = self.ctx.default_stream();
		let mut bt = alloc::<i8>(&self.ctx, &stream, len, "the weights")?;
		let blocks = (len / 64) as u64;
		let cfg = launch_config(blocks)?;
		let seed_words = Words8::le(seed);
		let mut launch = stream.launch_builder(&self.generate);
		launch.arg(&mut bt).arg(&blocks).arg(&blocks).arg(&self.keys.weights).arg(&seed_words).arg(&0i32).arg(&0u64);
		// SAFETY: the arguments match `mlpow_generate`'s signature, and `bt`
		// holds `blocks` 64-byte blocks.
		unsafe { launch.launch(cfg) }.map_err(|e| anyhow!("generating the weights: {e:?}"))?;
		stream.synchronize().map_err(|e| anyhow!("generating the weights: {e:?}"))?;
		log::info!(
			"{}: weights {}x{} int8 ({} MiB) resident for seed {}",
			self.info,
			params.n,
			params.k,
			len >> 20,
			mlpow_work::short_hex(seed)
		);
		self.epoch = Some(Epoch { params: *params, seed: *seed, bt });
		Ok(())
	}

	/// Allocates both slots' buffers for `params`, when they changed.
	fn ensure_batches(&mut self, params: &ChallengeParams) -> anyhow::Result<()> {
		if self.batches.as_ref().is_some_and(|b| b.params == *params) {
			return Ok(());
		}
		self.batches = None;
		let batch = self.nonces_per_batch(params);
		let (m, k, n) = (params.m as usize, params.k as usize, params.n as usize);
		let rows = batch as usize * m;
		let slot = |ctx: &Arc<CudaContext>| -> anyhow::Result<Slot> {
			let stream = ctx.new_stream().map_err(|e| anyhow!("creating a stream: {e:?}"))?;
			Ok(Slot {
				a: alloc::<i8>(ctx, &stream, rows * k, "the activations")?,
				c: alloc::<i32>(ctx, &stream, rows * n, "the product")?,
				winners: alloc::<u32>(ctx, &stream, 1 + 3 * WINNER_CAPACITY as usize, "the winners")?,
				gemm: Gemm::new(ctx, &stream, rows, n, k)?,
				pending: None,
				stream,
			})
		};
		let slots = [slot(&self.ctx)?, slot(&self.ctx)?];
		log::info!(
			"{}: {batch} nonce(s) per batch ({}x{}x{} int8 GEMM, {} MiB of products per slot)",
			self.info,
			rows,
			n,
			k,
			(rows * n * 4) >> 20
		);
		self.batches = Some(Batches { params: *params, batch, slots });
		Ok(())
	}

	/// Enqueues nonces `first .. first + count` on slot `s`: generate, GEMM,
	/// hash. Returns at once; [`Self::collect`] waits for the winners.
	fn enqueue(&mut self, s: usize, first: u64, count: u32, js: &Hash32, target: Words8) -> anyhow::Result<()> {
		let epoch = self.epoch.as_ref().ok_or_else(|| anyhow!("no weights"))?;
		let batches = self.batches.as_mut().ok_or_else(|| anyhow!("no buffers"))?;
		let p = batches.params;
		let slot = &mut batches.slots[s];
		let stream = slot.stream.clone();
		let job = Words8::le(js);

		let blocks_per_nonce = p.m as u64 * p.k as u64 / 64;
		let blocks = blocks_per_nonce * count as u64;
		let mut launch = stream.launch_builder(&self.generate);
		launch
			.arg(&mut slot.a)
			.arg(&blocks)
			.arg(&blocks_per_nonce)
			.arg(&self.keys.activations)
			.arg(&job)
			.arg(&1i32)
			.arg(&first);
		// SAFETY: matches `mlpow_generate`; `a` holds `batch >= count` nonces'
		// activations.
		unsafe { launch.launch(launch_config(blocks)?) }.map_err(|e| anyhow!("generating activations: {e:?}"))?;

		// A short batch (the last of a range) still multiplies a full one:
		// the extra rows are stale and their tiles are never hashed.
		slot.gemm.run(&stream, &epoch.bt, &slot.a, &mut slot.c)?;

		stream.memset_zeros(&mut slot.winners).map_err(|e| anyhow!("clearing the winners: {e:?}"))?;
		let launch = HashTiles {
			c: &slot.c,
			winners: &mut slot.winners,
			params: &p,
			tile_key: &self.keys.tile,
			job: &job,
			first,
			count,
			target: &target,
			digests: 0,
		};
		// SAFETY: `c` holds `count` products of `p`'s shape; no digests.
		unsafe { launch.launch(&self.hash_tiles, &stream) }?;
		slot.pending = Some((first, count));
		Ok(())
	}

	/// Waits for slot `s`'s batch and returns its winners as seals.
	fn collect(&mut self, s: usize) -> anyhow::Result<Option<(u32, Vec<Seal>)>> {
		let batches = self.batches.as_mut().ok_or_else(|| anyhow!("no buffers"))?;
		let slot = &mut batches.slots[s];
		let Some((first, count)) = slot.pending.take() else { return Ok(None) };
		let words = slot.stream.clone_dtoh(&slot.winners).map_err(|e| anyhow!("reading the winners: {e:?}"))?;
		slot.stream.synchronize().map_err(|e| anyhow!("mining a batch: {e:?}"))?;
		let found = words[0];
		if found > WINNER_CAPACITY {
			log::warn!(
				"{}: {found} winners in one batch, {WINNER_CAPACITY} kept: the difficulty is far too low",
				self.info
			);
		}
		let seals = words[1..]
			.chunks_exact(3)
			.take(found.min(WINNER_CAPACITY) as usize)
			.map(|w| Seal { nonce: first + w[0] as u64, tile_i: w[1], tile_j: w[2] })
			.collect();
		Ok(Some((count, seals)))
	}

	/// Product of the last batch on slot 0 (tests: compare with the CPU).
	#[cfg(feature = "test-hooks")]
	pub fn debug_product(&mut self, job: &Job, nonce: u64) -> anyhow::Result<Vec<i32>> {
		self.prepare(job)?;
		let js = job_seed(&job.pre_hash, &job.weights_seed);
		self.enqueue(0, nonce, 1, &js, Words8([0; 8]))?;
		self.collect(0)?;
		let slot = &self.batches.as_ref().ok_or_else(|| anyhow!("no buffers"))?.slots[0];
		let len = (job.params.m * job.params.n) as usize;
		let c = slot.stream.clone_dtoh(&slot.c.slice(..len)).map_err(|e| anyhow!("reading C: {e:?}"))?;
		Ok(c)
	}

	/// One seeded puzzle-v2 nonce's noisy operands and tile states as the
	/// device computes them (tests: which stage differs from the CPU).
	#[cfg(feature = "test-hooks")]
	pub fn debug_v2(&mut self, job: &Job, nonce: u64) -> anyhow::Result<v2::V2Debug> {
		job.params.validate().map_err(|e| anyhow!("challenge parameters: {e}"))?;
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		self.v2.debug_seeded(job, nonce)
	}

	/// Uploads of a useful job's `Bt` saved so far: pieces found on the
	/// device by their commitment (tests: a registered weight's piece is
	/// uploaded once).
	#[cfg(feature = "test-hooks")]
	pub fn debug_resident_hits(&self) -> u64 {
		self.v2.resident_hits()
	}

	/// The chosen-mode commitment tree of `matrix` (`rows x k`, cut into
	/// `t`-row leaves) as the device computes it from a copy uploaded here:
	/// level 0 (the leaves, padded to a power of two), the levels above, the
	/// root last (tests: the in-process path keeps its operands on the device).
	#[cfg(feature = "test-hooks")]
	pub fn debug_commit(&mut self, matrix: &[i8], rows: u32, k: u32, t: u32) -> anyhow::Result<Vec<Hash32>> {
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		let stream = self.ctx.default_stream();
		let mut dev = alloc::<i8>(&self.ctx, &stream, matrix.len().max(1), "the matrix")?;
		stream.memcpy_htod(matrix, &mut dev).map_err(|e| anyhow!("uploading the matrix: {e:?}"))?;
		self.commit.tree(&self.ctx, &stream, &dev, rows, k, t)
	}

	/// Every tile digest of `nonce` as the device computes it, in tile order
	/// (tests and golden vectors: the mining path never copies digests).
	#[cfg(feature = "test-hooks")]
	pub fn debug_digests(&mut self, job: &Job, nonce: u64) -> anyhow::Result<Vec<Hash32>> {
		use cudarc::driver::DevicePtrMut;
		self.prepare(job)?;
		let p = job.params;
		let js = job_seed(&job.pre_hash, &job.weights_seed);
		self.enqueue(0, nonce, 1, &js, Words8([0; 8]))?;
		self.collect(0)?;
		let tiles = p.tickets_per_nonce();
		let batches = self.batches.as_mut().ok_or_else(|| anyhow!("no buffers"))?;
		let slot = &mut batches.slots[0];
		let stream = slot.stream.clone();
		let mut digests = alloc::<u32>(&self.ctx, &stream, tiles as usize * 8, "the digests")?;
		let (ptr, _sync) = digests.device_ptr_mut(&stream);
		let launch = HashTiles {
			c: &slot.c,
			winners: &mut slot.winners,
			params: &p,
			tile_key: &self.keys.tile,
			job: &Words8::le(&js),
			first: nonce,
			count: 1,
			target: &Words8([0; 8]),
			digests: ptr,
		};
		// SAFETY: `c` holds nonce `nonce`'s product (enqueued above) and
		// `digests` 8 words per tile.
		unsafe { launch.launch(&self.hash_tiles, &stream) }?;
		drop(_sync);
		let words = stream.clone_dtoh(&digests).map_err(|e| anyhow!("reading digests: {e:?}"))?;
		Ok(words
			.chunks_exact(8)
			.map(|w| {
				let mut d = [0u8; 32];
				for (i, x) in w.iter().enumerate() {
					d[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
				}
				d
			})
			.collect())
	}

	fn prepare(&mut self, job: &Job) -> anyhow::Result<()> {
		job.params.validate().map_err(|e| anyhow!("challenge parameters: {e}"))?;
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		self.ensure_epoch(&job.params, &job.weights_seed)?;
		self.ensure_batches(&job.params)
	}
}

impl Lane for CudaLane {
	fn name(&self) -> String {
		format!("cuda:{} {}", self.info.ordinal, self.info.name)
	}

	fn batch_size(&self, params: &ChallengeParams) -> u64 {
		// Eight batches per call: the pipeline drains once per call, and new
		// work is noticed within one batch (cancellation is checked between
		// batches).
		if params.version == PUZZLE_V2 {
			return 8 * v2::nonces_per_batch(params) as u64;
		}
		8 * self.nonces_per_batch(params) as u64
	}

	fn search(&mut self, job: &Job, nonces: Range<u64>, cancelled: &dyn Fn() -> bool) -> anyhow::Result<SearchReport> {
		if job.params.version == PUZZLE_V2 {
			job.params.validate().map_err(|e| anyhow!("challenge parameters: {e}"))?;
			self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
			return self.v2.search(job, nonces, cancelled);
		}
		self.prepare(job)?;
		let js = job_seed(&job.pre_hash, &job.weights_seed);
		let target = Words8::target_be(job.difficulty).ok_or_else(|| anyhow!("difficulty 0 has no target"))?;
		let batch = self.batches.as_ref().map_or(1, |b| b.batch) as u64;
		let mut report = SearchReport::default();
		let absorb = |lane: &mut Self, s: usize, report: &mut SearchReport| -> anyhow::Result<()> {
			if let Some((count, seals)) = lane.collect(s)? {
				report.nonces_done += count as u64;
				for seal in seals {
					// Consensus is the primitives crate; a device result that
					// disagrees with it must never reach the node.
					verify::verify(&job.params, &job.weights_seed, &job.pre_hash, job.difficulty, &seal.to_bytes())
						.map_err(|e| {
							anyhow!("{}: the device found {seal:?}, which does not verify ({e:?})", lane.info)
						})?;
					report.winners.push(Winner::v1(seal));
				}
			}
			Ok(())
		};
		let mut first = nonces.start;
		let mut s = 0;
		while first < nonces.end && !cancelled() {
			let count = batch.min(nonces.end - first) as u32;
			// Reusing slot `s`: collect what it had first. The other slot's
			// batch keeps the GPU busy meanwhile.
			absorb(self, s, &mut report)?;
			self.enqueue(s, first, count, &js, target)?;
			first += count as u64;
			s ^= 1;
		}
		absorb(self, s, &mut report)?;
		absorb(self, s ^ 1, &mut report)?;
		report.winners.sort_by_key(|w| (w.id.nonce, w.id.tile_i, w.id.tile_j));
		Ok(report)
	}

	fn cuda(&mut self) -> Option<&mut CudaLane> {
		Some(self)
	}

	fn can_multiply(&self) -> bool {
		true
	}

	fn multiply(&mut self, work: &Job, a: Arc<Operand>, bt: Arc<Operand>, nonce: u64) -> anyhow::Result<Multiplied> {
		if work.params.version != PUZZLE_V2 {
			bail!("useful jobs are mined under puzzle v2, not version {}", work.params.version);
		}
		work.params.validate().map_err(|e| anyhow!("challenge parameters: {e}"))?;
		self.ctx.bind_to_thread().map_err(|e| anyhow!("binding the context: {e:?}"))?;
		self.v2.multiply(work, a, bt, nonce)
	}

	/// The same cuBLASLt call mining makes, at the same batch shape, alone.
	fn plain_gemm_macs_per_sec(&mut self, params: &ChallengeParams, seconds: f64) -> anyhow::Result<f64> {
		let job = Job {
			version: 0,
			pre_hash: [0; 32],
			number: 0,
			difficulty: 1u64.into(),
			params: *params,
			weights_seed: [0; 32],
		};
		self.prepare(&job)?;
		let epoch = self.epoch.as_ref().ok_or_else(|| anyhow!("no weights"))?;
		let batches = self.batches.as_mut().ok_or_else(|| anyhow!("no buffers"))?;
		let batch = batches.batch as u64;
		let slot = &mut batches.slots[0];
		let stream = slot.stream.clone();
		// Warm up (kernel selection, clocks), then time.
		slot.gemm.run(&stream, &epoch.bt, &slot.a, &mut slot.c)?;
		stream.synchronize().map_err(|e| anyhow!("{e:?}"))?;
		let start = std::time::Instant::now();
		let mut runs = 0u64;
		while runs == 0 || start.elapsed().as_secs_f64() < seconds {
			for _ in 0..8 {
				slot.gemm.run(&stream, &epoch.bt, &slot.a, &mut slot.c)?;
			}
			stream.synchronize().map_err(|e| anyhow!("{e:?}"))?;
			runs += 8;
		}
		Ok((runs * batch * params.macs_per_nonce()) as f64 / start.elapsed().as_secs_f64())
	}
}
