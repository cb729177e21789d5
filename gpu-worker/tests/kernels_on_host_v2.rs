//! The puzzle v2 CUDA kernels' arithmetic, run on the CPU:
//! `tests/host_kernels_v2.cpp` compiles `kernels/v2.cu` and
//! `kernels/v2_wgmma.cu` with the host C++ compiler and runs either
//! transcript kernel (mma.sync, or Hopper's wgmma) block by block, lane by
//! lane, with the tensor-core instructions emulated from the PTX ISA
//! (`wgmma.mma_async` by `tests/wgmma_emulation.hpp`). For both kernels the
//! states, tickets, winners, noisy and denoised products must equal the v2
//! golden vectors and the Rust reference miner's.

#[path = "support/host_cxx.rs"]
mod host_cxx;

use mlpow_primitives::{
	v2::{
		noise::{self, Selections},
		transcript::{ticket_key, State},
		Job, Miner,
	},
	ChallengeParams, Hash32, Seal, U256,
};
use mlpow_worker::kernels::{correction_limbs, Words8};
use serde_json::Value;
use std::{fmt::Write as _, path::PathBuf, process::Command, sync::OnceLock};

fn harness() -> &'static PathBuf {
	static BIN: OnceLock<PathBuf> = OnceLock::new();
	BIN.get_or_init(|| host_cxx::compile("host_kernels_v2.cpp"))
}

fn ctx(context: &str) -> String {
	let w = Words8::context_key(context);
	hex::encode(w.0.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
}

fn i8_hex(v: &[i8]) -> String {
	hex::encode(v.iter().map(|&x| x as u8).collect::<Vec<u8>>())
}

fn i32s(hex_text: &str) -> Vec<i32> {
	hex::decode(hex_text).unwrap().chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// Where the matrices come from.
enum Source<'a> {
	Seeded { job_seed: Hash32, weights_seed: Hash32 },
	Chosen { a: &'a [i8], bt: &'a [i8] },
}

/// One nonce through the kernels.
struct Input<'a> {
	params: ChallengeParams,
	noise_seed: Hash32,
	difficulty: U256,
	nonce_index: u32,
	source: Source<'a>,
	/// Where the product goes; `None`: the whole `m x n` product, stored.
	out: Option<OutSpec<'a>>,
}

/// A block of an output buffer of `(rows + 2) x ldc`, prefilled with
/// [`prefill`] (the 2 rows past the block are a guard), that the product
/// is stored or added into, with a remainder of `q` columns folded in
/// (`rows x q` of A, `cols x q` of Bt).
#[derive(Clone, Copy)]
struct OutSpec<'a> {
	ldc: u64,
	rows: u32,
	cols: u32,
	accumulate: bool,
	fold: Option<(u32, &'a [i8], &'a [i8])>,
}

/// What the harness fills the output buffer with before the kernel runs.
fn prefill(len: usize) -> Vec<i32> {
	(0..len as u64).map(|i| i.wrapping_mul(2654435761) as u32 as i32).collect()
}

/// A chosen-mode nonce of `a` and `bt` under `p`, as the reference miner
/// sees it: the job, the exact product and the noise seed.
struct Chosen {
	job: Job,
	exact: Vec<i32>,
	noise_seed: Hash32,
}

impl Chosen {
	fn new(p: ChallengeParams, pre: &Hash32, (a, bt): (Vec<i8>, Vec<i8>), nonce: u64) -> Self {
		let job = Job::chosen(&p, a, bt).unwrap();
		let mut miner = Miner::new(&job, pre, U256::from(3)).unwrap();
		miner.try_nonce(nonce);
		let exact = miner.denoised().unwrap();
		let noise_seed = noise::noise_seed(pre, &p, job.mode(), &job.commitments(), nonce);
		Self { job, exact, noise_seed }
	}

	/// The harness's input for the nonce, its product going to `out`.
	fn input<'a>(&'a self, out: Option<OutSpec<'a>>) -> Input<'a> {
		Input {
			params: *self.job.params(),
			noise_seed: self.noise_seed,
			difficulty: U256::from(3),
			nonce_index: 0,
			source: Source::Chosen { a: self.job.a(), bt: self.job.bt() },
			out,
		}
	}
}

/// Which transcript kernel the harness runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
	/// `mlpow2_transcript` (kernels/v2.cu).
	MmaSync,
	/// `mlpow2_transcript_wgmma` (kernels/v2_wgmma.cu).
	Wgmma,
}

const KERNELS: [Kernel; 2] = [Kernel::MmaSync, Kernel::Wgmma];

impl Kernel {
	fn arg(self) -> &'static str {
		match self {
			Kernel::MmaSync => "mma",
			Kernel::Wgmma => "wgmma",
		}
	}
}

#[derive(Default, Debug)]
struct HostRun {
	/// Row-major over the tiles.
	states: Vec<State>,
	tickets: Vec<Hash32>,
	/// (b, i, j) as found.
	winners: Vec<(u32, u32, u32)>,
	noisy: Vec<i32>,
	product: Vec<i32>,
}

fn run(input: &Input, kernel: Kernel) -> HostRun {
	run_mutated(input, kernel, None)
}

/// `mutation`: the harness's `mutate-sbo` or `mutate-map` (wgmma only).
fn run_mutated(input: &Input, kernel: Kernel, mutation: Option<&str>) -> HostRun {
	let p = input.params;
	let sel = Selections::generate(&input.noise_seed, p.k, p.r);
	let target = mlpow_primitives::ticket::target(input.difficulty).expect("non-zero difficulty").to_big_endian();
	let limbs = correction_limbs(p.k, p.r);
	let spec =
		input.out.unwrap_or(OutSpec { ldc: u64::from(p.n), rows: p.m, cols: p.n, accumulate: false, fold: None });
	let (ldc, rows, cols, accumulate) = (spec.ldc, spec.rows, spec.cols, spec.accumulate);
	let mut text = format!(
		"{} {} {} {} {} 1 {} {limbs} {ldc} {rows} {cols} {}\n",
		p.m,
		p.k,
		p.n,
		p.t,
		p.r,
		input.nonce_index,
		u32::from(accumulate)
	);
	let key = ticket_key(&input.noise_seed);
	for v in [
		hex::encode(target),
		hex::encode(key),
		ctx(noise::CTX_NOISE_A),
		ctx(noise::CTX_NOISE_BT),
		hex::encode(input.noise_seed),
		hex::encode(&sel.a),
		hex::encode(&sel.bt),
	] {
		writeln!(text, "{v}").unwrap();
	}
	match &input.source {
		Source::Seeded { job_seed, weights_seed } => writeln!(
			text,
			"seeded {} {} {} {}",
			ctx(noise::CTX_A),
			hex::encode(job_seed),
			ctx(noise::CTX_BT),
			hex::encode(weights_seed)
		),
		Source::Chosen { a, bt } => writeln!(text, "chosen {} {}", i8_hex(a), i8_hex(bt)),
	}
	.unwrap();
	if let Some((q, a, bt)) = spec.fold {
		writeln!(text, "fold {q} {} {}", i8_hex(a), i8_hex(bt)).unwrap();
	}
	let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
		.join(format!("host_kernels_v2-{}.in", std::thread::current().name().unwrap_or("main").replace("::", "-")));
	std::fs::write(&file, text).unwrap();
	let out =
		Command::new(harness()).arg(&file).arg(kernel.arg()).args(mutation).output().expect("running the harness");
	assert!(out.status.success(), "harness: {}", String::from_utf8_lossy(&out.stderr));
	let mut got = HostRun::default();
	let mut reported = None;
	for line in String::from_utf8(out.stdout).unwrap().lines() {
		let f: Vec<&str> = line.split(' ').collect();
		let num = |i: usize| f[i].parse::<u32>().unwrap();
		match f[0] {
			"state" => {
				let b = hex::decode(f[3]).unwrap();
				got.states.push(core::array::from_fn(|w| u32::from_le_bytes(b[4 * w..4 * w + 4].try_into().unwrap())));
			}
			"ticket" => got.tickets.push(hex::decode(f[3]).unwrap().try_into().unwrap()),
			"winner" => got.winners.push((num(1), num(2), num(3))),
			"winners" => reported = Some(num(1) as usize),
			"noisy" => got.noisy = i32s(f[1]),
			"product" => got.product = i32s(f[1]),
			other => panic!("unexpected harness line {other}"),
		}
	}
	assert_eq!(reported, Some(got.winners.len()), "every winner kept below capacity");
	// The guard rows past the block: untouched. What comes back is the
	// block's rows (the whole product when no block was given).
	let block = rows as usize * ldc as usize;
	let guard = got.product.split_off(block.min(got.product.len()));
	assert_eq!(guard, prefill(block + 2 * ldc as usize)[block..], "the kernel wrote past the block's rows");
	got
}

fn blake3_i32(v: &[i32]) -> String {
	hex::encode(blake3::hash(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).as_bytes())
}

fn h32(v: &Value) -> Hash32 {
	hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

#[test]
fn v2_golden_vectors_reproduce_through_the_kernel_code() {
	let file: Value = mlpow_vectors::v2();
	let cases = file["cases"].as_array().unwrap();
	for (kernel, c) in KERNELS.iter().flat_map(|&k| cases.iter().map(move |c| (k, c))) {
		let name = format!("{kernel:?} {}", c["name"].as_str().unwrap());
		let params = mlpow_vectors::params(&c["params"]);
		let bytes =
			|k: &str| -> Vec<i8> { hex::decode(c[k].as_str().unwrap()).unwrap().iter().map(|&b| b as i8).collect() };
		let (a, bt) = if c["mode"].as_u64() == Some(1) { (bytes("a"), bytes("bt")) } else { (vec![], vec![]) };
		let source = if c["mode"].as_u64() == Some(1) {
			Source::Chosen { a: &a, bt: &bt }
		} else {
			Source::Seeded { job_seed: h32(&c["commit_a"]), weights_seed: h32(&c["weights_seed"]) }
		};
		let got = run(
			&Input {
				params,
				noise_seed: h32(&c["noise_seed"]),
				difficulty: U256::one(),
				nonce_index: 0,
				source,
				out: None,
			},
			kernel,
		);
		let states: Vec<String> = got
			.states
			.iter()
			.map(|s| hex::encode(s.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()))
			.collect();
		let want_states: Vec<&str> = c["states"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
		assert_eq!(states, want_states, "{name}: states");
		let tickets: Vec<String> = got.tickets.iter().map(hex::encode).collect();
		let want_tickets: Vec<&str> = c["tickets"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
		assert_eq!(tickets, want_tickets, "{name}: tickets");
		assert_eq!(got.winners.len(), want_tickets.len(), "{name}: every ticket wins at difficulty 1");
		assert_eq!(blake3_i32(&got.noisy), c["noisy_product_blake3"].as_str().unwrap(), "{name}: noisy product");
		assert_eq!(blake3_i32(&got.product), c["product_blake3"].as_str().unwrap(), "{name}: denoised product");
	}
	assert_eq!(cases.len(), 12);
}

/// The v2 header vectors' seals, found by the kernels: for each header
/// whose matrices are in the file (seeded, or a case's chosen ones), the
/// kernels mine the seal's nonce at the header's difficulty, and the first
/// winning tile in row-major order is the seal's, with the same ticket.
/// (The GPU-sized set, `gpu` in the file, is too large for the emulation.)
#[test]
fn v2_header_seals_are_the_kernels_first_winners() {
	let file: Value = mlpow_vectors::v2();
	let mut checked = 0;
	for hd in file["headers"].as_array().unwrap() {
		let name = hd["name"].as_str().unwrap();
		let params = mlpow_vectors::params(&hd["params"]);
		let (pre, ws) = (h32(&hd["pre_hash"]), h32(&hd["weights_seed"]));
		let difficulty = U256::from_dec_str(hd["difficulty"].as_str().unwrap()).unwrap();
		let s = &hd["seal"];
		let nonce: u64 = s["nonce"].as_str().unwrap().parse().unwrap();
		let (i, j) = (s["tile_i"].as_u64().unwrap() as u32, s["tile_j"].as_u64().unwrap() as u32);
		let case = hd["matrices_of_case"]
			.as_str()
			.map(|case| file["cases"].as_array().unwrap().iter().find(|c| c["name"] == case).unwrap());
		let matrix = |c: &Value, k: &str| -> Vec<i8> {
			hex::decode(c[k].as_str().unwrap()).unwrap().iter().map(|&b| b as i8).collect()
		};
		let (a, bt) = match case {
			Some(c) => (matrix(c, "a"), matrix(c, "bt")),
			None => (vec![], vec![]),
		};
		let (mode, commits, source) = match (hd["mode"].as_u64().unwrap(), case) {
			(0, _) => {
				let job_seed = mlpow_primitives::stream::job_seed(&pre, &ws);
				(noise::Mode::Seeded, (job_seed, ws), Source::Seeded { job_seed, weights_seed: ws })
			}
			(1, Some(c)) => {
				// The commitments the seal carries, which are the case's.
				let seal = hex::decode(s["bytes"].as_str().unwrap()).unwrap();
				let commits: (Hash32, Hash32) = (seal[17..49].try_into().unwrap(), seal[49..81].try_into().unwrap());
				assert_eq!(commits, (h32(&c["commit_a"]), h32(&c["commit_bt"])), "{name}");
				(noise::Mode::Chosen, commits, Source::Chosen { a: &a, bt: &bt })
			}
			_ => continue,
		};
		let commitments = noise::Commitments { a: commits.0, bt: commits.1 };
		let noise_seed = noise::noise_seed(&pre, &params, mode, &commitments, nonce);
		let input = Input { params, noise_seed, difficulty, nonce_index: 0, source, out: None };
		for kernel in KERNELS {
			let got = run(&input, kernel);
			let first = got.winners.iter().map(|&(_, i, j)| (i, j)).min();
			assert_eq!(first, Some((i, j)), "{name} {kernel:?}: the first winning tile");
			let idx = (i * params.tiles_n() + j) as usize;
			assert_eq!(hex::encode(got.tickets[idx]), s["ticket"].as_str().unwrap(), "{name} {kernel:?}: ticket");
		}
		checked += 1;
	}
	assert_eq!(checked, 2, "the seeded header and the one on a case's matrices");
}

/// A deterministic 7-bit matrix.
fn matrix(len: usize, label: &str) -> Vec<i8> {
	let mut out = vec![0i8; len];
	noise::stream_rows("mlpow worker v2 kernel tests", blake3::hash(label.as_bytes()).as_bytes(), 1, 0, &mut out);
	out
}

/// The kernels against the reference miner on shapes that span several
/// blocks, do not divide into them, and use every tile size and rank.
#[test]
fn the_kernel_code_mines_like_the_reference_miner() {
	let pre = [9u8; 32];
	let ws = [4u8; 32];
	let mut winners = 0;
	// (m, k, n, t, r): edges off the 128-block grid, every t dividing 128,
	// every rank, several chunks.
	for (m, k, n, t, r) in
		[(144, 256, 272, 16, 64), (256, 128, 160, 32, 32), (128, 256, 192, 64, 128), (256, 64, 128, 128, 32)]
	{
		let p = ChallengeParams { version: 2, m, k, n, t, r, epoch_length: 10 };
		p.validate().unwrap();
		for chosen in [false, true] {
			let job = if chosen {
				Job::chosen(&p, matrix((m * k) as usize, "A"), matrix((n * k) as usize, "Bt")).unwrap()
			} else {
				Job::seeded(&p, &pre, &ws).unwrap()
			};
			let difficulty = U256::from(3);
			let mut miner = Miner::new(&job, &pre, difficulty).unwrap();
			let nonce = 77;
			let wins = miner.try_nonce(nonce);
			let c = job.commitments();
			let noise_seed = noise::noise_seed(&pre, &p, job.mode(), &c, nonce);
			let source = if chosen {
				Source::Chosen { a: job.a(), bt: job.bt() }
			} else {
				Source::Seeded { job_seed: c.a, weights_seed: c.bt }
			};
			let input = Input { params: p, noise_seed, difficulty, nonce_index: 5, source, out: None };
			let want: Vec<Seal> = wins.iter().map(|w| w.verified.seal).collect();
			for kernel in KERNELS {
				let got = run(&input, kernel);
				let what = format!("{kernel:?} {p:?} {:?}", job.mode());
				assert_eq!(got.states, miner.states(), "{what}: states");
				assert_eq!(got.noisy, miner.noisy_product(), "{what}: noisy product");
				assert_eq!(got.product, miner.denoised().unwrap(), "{what}: denoised product");
				let mut seals: Vec<Seal> = got
					.winners
					.iter()
					.map(|&(b, i, j)| Seal { nonce: nonce - 5 + b as u64, tile_i: i, tile_j: j })
					.collect();
				seals.sort_by_key(|s| (s.tile_i, s.tile_j));
				assert_eq!(seals, want, "{what}: winners");
			}
			winners += want.len();
		}
	}
	// A third of the tickets win at difficulty 3: the winner path is exercised.
	assert!(winners > 20, "{winners} winners");
}

/// The fused correction at its widest (both kernels): `k / r` = 64 (the GPU preset's
/// depth and rank, two limbs) and 128 (k = 16384, r = 128: the most
/// `validate` allows, three limbs), on matrices at the ends of the 7-bit range (the
/// column sums `U` and `V` as large as they get) and on ordinary ones, the
/// exact product equal to the reference miner's.
#[test]
fn the_fused_correction_is_exact_with_two_and_three_limbs_at_the_range_ends() {
	let pre = [3u8; 32];
	for (k, r, limbs) in [(4096, 64, 2), (16384, 128, 3)] {
		let p = ChallengeParams { version: 2, m: 128, k, n: 128, t: 16, r, epoch_length: 10 };
		p.validate().unwrap();
		assert_eq!(correction_limbs(k, r), limbs);
		let (len_a, len_bt) = ((p.m * k) as usize, (p.n * k) as usize);
		for (a, bt) in [
			(vec![-64i8; len_a], vec![-64i8; len_bt]),
			(vec![63i8; len_a], vec![-64i8; len_bt]),
			(matrix(len_a, "wide A"), matrix(len_bt, "wide Bt")),
		] {
			let case = Chosen::new(p, &pre, (a, bt), 1);
			for kernel in KERNELS {
				let got = run(&case.input(None), kernel);
				assert_eq!(got.product, case.exact, "{kernel:?} k {k} r {r}: the exact product");
			}
		}
	}
}

/// The fused kernel writes a piece's product into a block of a caller's
/// output where it lies (docs/in-process-cuda.md, 3.5.2): only the block's
/// rows and columns, rows `ldc` apart, stored, or added to what is there
/// (a later piece along the depth); nothing else of the buffer changes;
/// both kernels.
#[test]
fn a_product_lands_in_a_callers_block_stored_or_added() {
	let pre = [6u8; 32];
	let p = ChallengeParams { version: 2, m: 144, k: 256, n: 272, t: 16, r: 64, epoch_length: 10 };
	let operands = (matrix((p.m * p.k) as usize, "A in place"), matrix((p.n * p.k) as usize, "Bt"));
	let case = Chosen::new(p, &pre, operands, 2);
	let exact = &case.exact;
	let (ldc, rows, cols) = (300u64, 130u32, 250u32);
	for (kernel, accumulate) in KERNELS.iter().flat_map(|&k| [(k, false), (k, true)]) {
		let input = case.input(Some(OutSpec { ldc, rows, cols, accumulate, fold: None }));
		let got = run(&input, kernel).product;
		let mut want = prefill(rows as usize * ldc as usize + 2 * ldc as usize);
		want.truncate(rows as usize * ldc as usize);
		for i in 0..rows as usize {
			for j in 0..cols as usize {
				let at = i * ldc as usize + j;
				let value = exact[i * p.n as usize + j];
				want[at] = if accumulate { want[at].wrapping_add(value) } else { value };
			}
		}
		assert!(got == want, "{kernel:?}, accumulate {accumulate}: the output buffer");
	}
}

/// A short remainder of the caller's depth folded into the fused
/// correction (the 2 columns of a 4096-deep layer a piece leaves over at
/// k = 4096, up to a k-step's 32): the block receives the piece's exact
/// product plus the remainder's, stored or added, in one kernel, and the
/// correction's limbs before it are unchanged (three limbs: the shift
/// between limbs must not touch the remainder's step); both kernels.
#[test]
fn a_remainder_of_the_depth_folds_into_the_correction() {
	let pre = [8u8; 32];
	for (p, q) in [
		(ChallengeParams { version: 2, m: 144, k: 256, n: 272, t: 16, r: 64, epoch_length: 10 }, 2u32),
		(ChallengeParams { version: 2, m: 144, k: 256, n: 272, t: 16, r: 64, epoch_length: 10 }, 32),
		(ChallengeParams { version: 2, m: 128, k: 16384, n: 128, t: 16, r: 128, epoch_length: 10 }, 7),
	] {
		let (m, n) = (p.m as usize, p.n as usize);
		let case = Chosen::new(p, &pre, (matrix(m * p.k as usize, "A fold"), matrix(n * p.k as usize, "Bt fold")), 4);
		let exact = &case.exact;
		let (rows, cols, ldc) = (m as u32 - 5, n as u32 - 3, n as u64 + 9);
		// The remainder at the range's ends too (-64 negated is 64).
		let mut rem_a = matrix(rows as usize * q as usize, "A rem");
		let rem_bt = matrix(cols as usize * q as usize, "Bt rem");
		rem_a[0] = -64;
		for accumulate in [false, true] {
			let input = case.input(Some(OutSpec { ldc, rows, cols, accumulate, fold: Some((q, &rem_a, &rem_bt)) }));
			let mut want = prefill(rows as usize * ldc as usize);
			for i in 0..rows as usize {
				for j in 0..cols as usize {
					let extra: i32 = (0..q as usize)
						.map(|z| i32::from(rem_a[i * q as usize + z]) * i32::from(rem_bt[j * q as usize + z]))
						.sum();
					let value = exact[i * n + j].wrapping_add(extra);
					let at = i * ldc as usize + j;
					want[at] = if accumulate { want[at].wrapping_add(value) } else { value };
				}
			}
			for kernel in KERNELS {
				let got = run(&input, kernel).product;
				assert!(got == want, "{kernel:?} k {} r {} q {q} accumulate {accumulate}: the output block", p.k, p.r);
			}
		}
	}
}

/// The wgmma comparison can fail: the harness perturbs the wgmma kernel
/// (16 bytes more stride byte offset in A's descriptor; two registers of
/// the accumulator map swapped) and the states no longer match the
/// reference miner's, while the unperturbed run does.
#[test]
fn a_perturbed_wgmma_kernel_is_caught() {
	let (pre, ws) = ([9u8; 32], [4u8; 32]);
	let p = ChallengeParams { version: 2, m: 144, k: 256, n: 272, t: 16, r: 64, epoch_length: 10 };
	let job = Job::seeded(&p, &pre, &ws).unwrap();
	let difficulty = U256::from(3);
	let mut miner = Miner::new(&job, &pre, difficulty).unwrap();
	let nonce = 77;
	miner.try_nonce(nonce);
	let c = job.commitments();
	let noise_seed = noise::noise_seed(&pre, &p, job.mode(), &c, nonce);
	let input = Input {
		params: p,
		noise_seed,
		difficulty,
		nonce_index: 0,
		source: Source::Seeded { job_seed: c.a, weights_seed: c.bt },
		out: None,
	};
	assert_eq!(run(&input, Kernel::Wgmma).states, miner.states(), "unperturbed");
	for mutation in ["mutate-sbo", "mutate-map"] {
		let got = run_mutated(&input, Kernel::Wgmma, Some(mutation));
		assert_eq!(got.states.len(), miner.states().len(), "{mutation}");
		let differ = got.states.iter().zip(miner.states()).filter(|(a, b)| a != b).count();
		assert!(differ > 0, "{mutation}: the states still match the reference");
		assert_ne!(got.noisy, miner.noisy_product(), "{mutation}: noisy product");
		println!("{mutation}: {differ} of {} tile states differ from the reference", got.states.len());
	}
}
