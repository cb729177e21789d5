//! The CUDA backend: one lane per GPU, each with its own context, two
//! streams and device buffers.
//!
//! Per batch of nonces, all on the device (consensus/SPEC.md, "What a miner
//! does"):
//! 1. `mlpow_generate` writes every nonce's activations `A` (BLAKE3 XOF);
//! 2. cuBLASLt multiplies them by the epoch's weights with int8 tensor cores
//!    (IMMA, the TN layout: both operands k-contiguous), exact i32 results;
//! 3. `mlpow_hash_tiles` hashes every tile of the product and appends the
//!    winners to a small buffer, the only thing copied back.
//!
//! The weights `Bt` are generated on the device when the weights seed
//! changes and stay resident for the epoch. Batches alternate between two
//! streams with their own buffers, so one batch's hashing overlaps the next
//! one's GEMM. Every winner is re-verified on the host with
//! `mlpow-primitives` before it is reported: a seal that fails is a device
//! or kernel fault, and the lane stops with an error rather than submit it.
//!
//! Libraries are loaded at run time (cudarc's dynamic loading): the NVIDIA
//! driver (`libcuda.so.1`), NVRTC (`libnvrtc.so.13` or `.12`) and cuBLASLt
//! (`libcublasLt.so.13` or `.12`). Each is probed before first use, because
//! cudarc panics on a missing library; a missing one is a clear error here.

use crate::{
	backend::{Job, Lane, SearchReport, Winner},
	kernels::{self, ContextKeys, Words8, MIN_COMPUTE_CAPABILITY},
};
use anyhow::{anyhow, bail, Context as _};
use cudarc::{
	cublaslt::{result as lt, sys as lt_sys},
	driver::{
		result as drv, sys as drv_sys, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut,
		LaunchConfig, PushKernelArg,
	},
	nvrtc,
};
use mlpow_primitives::{stream::job_seed, verify, ChallengeParams, Hash32, Seal};
use std::{ffi::c_void, ops::Range, sync::Arc};

/// Winners kept per batch. At any sane difficulty a batch has none or one;
/// more than this means the difficulty is far below the batch's ticket
/// count, and the extra winners are dropped (logged).
const WINNER_CAPACITY: u32 = 256;

/// cuBLASLt's scratch space; its heuristics pick kernels that fit.
const GEMM_WORKSPACE: usize = 32 << 20;

/// Threads per block for both kernels (each thread is independent).
const THREADS: u32 = 256;

/// A GPU as the driver describes it.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
	pub ordinal: usize,
	pub name: String,
	pub compute_capability: (i32, i32),
	pub memory_bytes: usize,
	pub multiprocessors: i32,
}

impl DeviceInfo {
	/// Why this device cannot mine, if it cannot.
	pub fn unsupported_reason(&self) -> Option<String> {
		(self.compute_capability < MIN_COMPUTE_CAPABILITY).then(|| {
			format!(
				"compute capability {}.{} is below {}.{}, the first with int8 tensor cores",
				self.compute_capability.0,
				self.compute_capability.1,
				MIN_COMPUTE_CAPABILITY.0,
				MIN_COMPUTE_CAPABILITY.1
			)
		})
	}
}

impl std::fmt::Display for DeviceInfo {
	fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
		write!(
			f,
			"cuda:{} {} (compute {}.{}, {} SMs, {:.1} GiB)",
			self.ordinal,
			self.name,
			self.compute_capability.0,
			self.compute_capability.1,
			self.multiprocessors,
			self.memory_bytes as f64 / (1u64 << 30) as f64
		)
	}
}

/// Is the NVIDIA driver library loadable? Nothing else in cudarc's driver
/// API may be called before this says yes.
fn driver_loadable() -> bool {
	// SAFETY: only tries to dlopen the library's candidate names.
	unsafe { drv_sys::is_culib_present() }
}

/// Every CUDA device, or why there are none. Never panics: no driver, a
/// driver that fails to initialise and zero devices are all errors.
pub fn devices() -> anyhow::Result<Vec<DeviceInfo>> {
	if !driver_loadable() {
		bail!("no NVIDIA driver: libcuda.so.1 cannot be loaded (install the driver, or mine with --backend cpu)");
	}
	drv::init().map_err(|e| anyhow!("the NVIDIA driver failed to initialise: {e:?}"))?;
	let count = drv::device::get_count().map_err(|e| anyhow!("cannot count CUDA devices: {e:?}"))?;
	if count <= 0 {
		bail!("the NVIDIA driver reports no CUDA device");
	}
	(0..count as usize)
		.map(|ordinal| {
			let dev = drv::device::get(ordinal as i32).map_err(|e| anyhow!("cuda:{ordinal}: {e:?}"))?;
			let attr = |a| {
				// SAFETY: `dev` is a valid device handle from the driver.
				unsafe { drv::device::get_attribute(dev, a) }.map_err(|e| anyhow!("cuda:{ordinal}: {e:?}"))
			};
			use drv_sys::CUdevice_attribute::*;
			Ok(DeviceInfo {
				ordinal,
				name: drv::device::get_name(dev).map_err(|e| anyhow!("cuda:{ordinal}: {e:?}"))?,
				compute_capability: (
					attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
					attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
				),
				// SAFETY: as above.
				memory_bytes: unsafe { drv::device::total_mem(dev) }.map_err(|e| anyhow!("cuda:{ordinal}: {e:?}"))?,
				multiprocessors: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
			})
		})
		.collect()
}

/// The run-time libraries besides the driver, or which one is missing.
fn libraries_loadable() -> anyhow::Result<()> {
	// SAFETY: only tries to dlopen the libraries' candidate names.
	if !unsafe { nvrtc::sys::is_culib_present() } {
		bail!(
			"NVRTC (libnvrtc.so.13 or .12) cannot be loaded: install the CUDA toolkit's NVRTC \
			 (or `pip install nvidia-cuda-nvrtc`) and put its lib directory on LD_LIBRARY_PATH"
		);
	}
	// SAFETY: as above.
	if !unsafe { lt_sys::is_culib_present() } {
		bail!(
			"cuBLASLt (libcublasLt.so.13 or .12) cannot be loaded: install the CUDA toolkit's cuBLAS \
			 (or `pip install nvidia-cublas`) and put its lib directory on LD_LIBRARY_PATH"
		);
	}
	Ok(())
}

/// Compiles `kernels/mine.cu` for compute capability `cc` with NVRTC.
/// Returns the PTX, or NVRTC's log as the error.
pub fn compile_kernels(cc: (i32, i32)) -> anyhow::Result<nvrtc::Ptx> {
	// SAFETY: only tries to dlopen the library's candidate names.
	if !unsafe { nvrtc::sys::is_culib_present() } {
		bail!("NVRTC (libnvrtc.so.13 or .12) cannot be loaded; put its lib directory on LD_LIBRARY_PATH");
	}
	let opts = nvrtc::CompileOptions {
		options: kernels::nvrtc_options(cc),
		name: Some("mine.cu".into()),
		..Default::default()
	};
	nvrtc::compile_ptx_with_opts(kernels::mine_source(), opts).map_err(|e| match e {
		nvrtc::CompileError::CompileError { log, .. } => {
			anyhow!("NVRTC rejected kernels/mine.cu for compute_{}{}:\n{}", cc.0, cc.1, log.to_string_lossy())
		}
		other => anyhow!("NVRTC failed on kernels/mine.cu: {other:?}"),
	})
}

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
	info: DeviceInfo,
	ctx: Arc<CudaContext>,
	generate: CudaFunction,
	hash_tiles: CudaFunction,
	keys: ContextKeys,
	epoch: Option<Epoch>,
	batches: Option<Batches>,
}

impl CudaLane {
	/// Opens `info`'s device: a context, the kernels compiled for it.
	pub fn open(info: DeviceInfo) -> anyhow::Result<Self> {
		let ctx = CudaContext::new(info.ordinal).map_err(|e| anyhow!("creating a context: {e:?}"))?;
		let ptx = compile_kernels(info.compute_capability)?;
		let module = ctx.load_module(ptx).map_err(|e| anyhow!("loading the kernels: {e:?}"))?;
		let function = |name: &str| module.load_function(name).map_err(|e| anyhow!("kernel {name}: {e:?}"));
		Ok(Self {
			generate: function("mlpow_generate")?,
			hash_tiles: function("mlpow_hash_tiles")?,
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
		// SAFETY: `c` holds `count` products of `p`'s shape; no digests.
		unsafe {
			launch_hash_tiles(
				&self.hash_tiles,
				&stream,
				&slot.c,
				&mut slot.winners,
				&p,
				&self.keys.tile,
				&job,
				first,
				count,
				&target,
				0,
			)
		}?;
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

	/// Every tile digest of `nonce` as the device computes it, in tile order
	/// (tests and golden vectors: the mining path never copies digests).
	pub fn debug_digests(&mut self, job: &Job, nonce: u64) -> anyhow::Result<Vec<Hash32>> {
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
		// SAFETY: `c` holds nonce `nonce`'s product (enqueued above) and
		// `digests` 8 words per tile.
		unsafe {
			launch_hash_tiles(
				&self.hash_tiles,
				&stream,
				&slot.c,
				&mut slot.winners,
				&p,
				&self.keys.tile,
				&Words8::le(&js),
				nonce,
				1,
				&Words8([0; 8]),
				ptr,
			)
		}?;
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
		if job.params.version != mlpow_primitives::PUZZLE_V1 {
			anyhow::bail!("puzzle version {} is not mined by this worker yet (it mines v1)", job.params.version);
		}
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
		8 * self.nonces_per_batch(params) as u64
	}

	fn search(&mut self, job: &Job, nonces: Range<u64>, cancelled: &dyn Fn() -> bool) -> anyhow::Result<SearchReport> {
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

/// Launches `mlpow_hash_tiles` on `stream` over `count` products in `c`
/// (nonces from `first`), appending winners to `winners` and, when
/// `digests` is a non-zero device pointer, writing every digest there.
///
/// # Safety
/// `c` must hold `count` products of `p`'s shape, and a non-zero `digests`
/// must point at `8 * count * tickets_per_nonce` writable words.
#[allow(clippy::too_many_arguments)]
unsafe fn launch_hash_tiles(
	hash_tiles: &CudaFunction,
	stream: &Arc<CudaStream>,
	c: &CudaSlice<i32>,
	winners: &mut CudaSlice<u32>,
	p: &ChallengeParams,
	tile_key: &Words8,
	job: &Words8,
	first: u64,
	count: u32,
	target: &Words8,
	digests: drv_sys::CUdeviceptr,
) -> anyhow::Result<()> {
	let tiles = p.tickets_per_nonce() * count as u64;
	let mut launch = stream.launch_builder(hash_tiles);
	launch
		.arg(c)
		.arg(&tiles)
		.arg(&p.m)
		.arg(&p.n)
		.arg(&p.t)
		.arg(tile_key)
		.arg(job)
		.arg(&first)
		.arg(target)
		.arg(winners)
		.arg(&WINNER_CAPACITY)
		.arg(&digests);
	// SAFETY: the arguments match `mlpow_hash_tiles`' signature; the
	// caller vouches for the buffers' sizes.
	unsafe { launch.launch(launch_config(tiles)?) }.map_err(|e| anyhow!("hashing tiles: {e:?}"))?;
	Ok(())
}

/// `len` elements of device memory, or an error that names what they were
/// for and how much was free.
fn alloc<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
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
fn launch_config(items: u64) -> anyhow::Result<LaunchConfig> {
	let blocks =
		u32::try_from(items.div_ceil(THREADS as u64)).map_err(|_| anyhow!("{items} threads do not fit one launch"))?;
	Ok(LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 })
}

/// A prepared cuBLASLt int8 GEMM: `C (rows x n, i32, row-major) = A (rows x
/// k, i8, row-major) * Bt^T`, with `Bt` (`n x k`, row-major) the weights.
///
/// cuBLASLt is column-major, so it computes the transpose: `C^T (n x rows,
/// column-major, which is C row-major) = op(Bt') * A'`, where `Bt'` is `Bt`
/// seen column-major (`k x n`, transposed by `op = T`) and `A'` is `A` seen
/// column-major (`k x rows`). That is the "TN" layout, both operands
/// contiguous along `k`, which int8 IMMA kernels require.
struct Gemm {
	handle: lt_sys::cublasLtHandle_t,
	desc: lt_sys::cublasLtMatmulDesc_t,
	layouts: [lt_sys::cublasLtMatrixLayout_t; 3],
	algo: lt_sys::cublasLtMatmulAlgo_t,
	workspace: CudaSlice<u8>,
	shape: (usize, usize, usize),
}

// SAFETY: the handles are only used by the lane's thread, one call at a time.
unsafe impl Send for Gemm {}

impl Gemm {
	fn new(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>, rows: usize, n: usize, k: usize) -> anyhow::Result<Self> {
		let err = |what: &'static str| move |e: lt::CublasError| anyhow!("cuBLASLt {what}: {e:?}");
		// Built up in place, so that `Drop` frees whatever was created when a
		// later step fails.
		let mut g = Gemm {
			workspace: alloc::<u8>(ctx, stream, GEMM_WORKSPACE, "the GEMM workspace")?,
			handle: lt::create_handle().map_err(err("create"))?,
			desc: std::ptr::null_mut(),
			layouts: [std::ptr::null_mut(); 3],
			// SAFETY: an opaque array of integers; only written by the
			// heuristic below before use.
			algo: unsafe { std::mem::zeroed() },
			shape: (rows, n, k),
		};
		g.desc =
			lt::create_matmul_desc(lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32I, lt_sys::cudaDataType::CUDA_R_32I)
				.map_err(err("matmul descriptor"))?;
		let transpose: i32 = 1; // CUBLAS_OP_T
						  // SAFETY: `desc` is live; the attribute is an i32-sized enum.
		unsafe {
			lt::set_matmul_desc_attribute(
				g.desc,
				lt_sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
				&transpose as *const i32 as *const c_void,
				std::mem::size_of::<i32>(),
			)
		}
		.map_err(err("transpose A"))?;
		let (r, n64, k64) = (rows as u64, n as u64, k as u64);
		g.layouts[0] =
			lt::create_matrix_layout(lt_sys::cudaDataType::CUDA_R_8I, k64, n64, k as i64).map_err(err("layout Bt"))?;
		g.layouts[1] =
			lt::create_matrix_layout(lt_sys::cudaDataType::CUDA_R_8I, k64, r, k as i64).map_err(err("layout A"))?;
		g.layouts[2] =
			lt::create_matrix_layout(lt_sys::cudaDataType::CUDA_R_32I, n64, r, n as i64).map_err(err("layout C"))?;
		let pref = lt::create_matmul_pref().map_err(err("preference"))?;
		let ws = GEMM_WORKSPACE as u64;
		// SAFETY: `pref` and every descriptor are live; the attribute is a u64.
		let heuristic = unsafe {
			lt::set_matmul_pref_attribute(
				pref,
				lt_sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
				&ws as *const u64 as *const c_void,
				std::mem::size_of::<u64>(),
			)
			.map_err(err("workspace preference"))
			.and_then(|()| {
				lt::get_matmul_algo_heuristic(
					g.handle,
					g.desc,
					g.layouts[0],
					g.layouts[1],
					g.layouts[2],
					g.layouts[2],
					pref,
				)
				.map_err(|e| anyhow!("cuBLASLt has no int8 GEMM for {rows}x{n}x{k} on this GPU: {e:?}"))
			})
		};
		// SAFETY: `pref` is live and not used again.
		let _ = unsafe { lt::destroy_matmul_pref(pref) };
		g.algo = heuristic?.algo;
		Ok(g)
	}

	/// Enqueues `c = a * bt^T` on `stream`.
	fn run(
		&mut self,
		stream: &Arc<CudaStream>,
		bt: &CudaSlice<i8>,
		a: &CudaSlice<i8>,
		c: &mut CudaSlice<i32>,
	) -> anyhow::Result<()> {
		let (rows, n, k) = self.shape;
		if bt.len() < n * k || a.len() < rows * k || c.len() < rows * n {
			bail!("GEMM buffers smaller than {rows}x{n}x{k}");
		}
		let (alpha, beta) = (1i32, 0i32);
		let (bt_ptr, _b) = bt.device_ptr(stream);
		let (a_ptr, _a) = a.device_ptr(stream);
		let (c_ptr, _c) = c.device_ptr_mut(stream);
		let (w_ptr, _w) = self.workspace.device_ptr_mut(stream);
		// SAFETY: the descriptors are live and describe these buffers, whose
		// sizes were checked above; alpha and beta are i32 as the scale
		// type says.
		unsafe {
			lt::matmul(
				self.handle,
				self.desc,
				&alpha as *const i32 as *const c_void,
				&beta as *const i32 as *const c_void,
				bt_ptr as *const c_void,
				self.layouts[0],
				a_ptr as *const c_void,
				self.layouts[1],
				c_ptr as *const c_void,
				self.layouts[2],
				c_ptr as *mut c_void,
				self.layouts[2],
				&self.algo,
				w_ptr as *mut c_void,
				GEMM_WORKSPACE,
				stream.cu_stream() as lt_sys::cudaStream_t,
			)
		}
		.map_err(|e| anyhow!("cuBLASLt int8 GEMM {rows}x{n}x{k}: {e:?}"))
	}
}

impl Drop for Gemm {
	fn drop(&mut self) {
		// SAFETY: each was created in `new` (or is still null) and is
		// destroyed once, here.
		unsafe {
			for l in self.layouts.into_iter().filter(|l| !l.is_null()) {
				let _ = lt::destroy_matrix_layout(l);
			}
			if !self.desc.is_null() {
				let _ = lt::destroy_matmul_desc(self.desc);
			}
			let _ = lt::destroy_handle(self.handle);
		}
	}
}
