//! The CUDA backend on a real GPU, against the golden vectors and the CPU
//! reference miner. Without a usable GPU every test here prints why and
//! returns: they need the device, and CI has none (tests/kernels_on_host.rs
//! covers the kernels' arithmetic there).
//!
//! On a GPU machine: `cargo nextest run -p mlpow-worker --features test-hooks
//! --test cuda_device --no-capture`, or, with no Rust there, the test
//! binary from `scripts/gpu-bundle.sh` (gpu-worker/README.md, "Tests").

#[path = "support/gpu.rs"]
mod support_gpu;

use mlpow_primitives::{
	mine::{EpochWeights, Search},
	verify, ChallengeParams, Hash32, Seal, U256,
};
use mlpow_vectors::VectorFile;
use mlpow_worker::backend::{Job, Lane};
use support_gpu::gpu;

const GOLDEN: &str = mlpow_vectors::GOLDEN;

fn h32(s: &str) -> Hash32 {
	hex::decode(s).unwrap().try_into().unwrap()
}

fn job(params: ChallengeParams, weights_seed: Hash32, pre_hash: Hash32, difficulty: U256) -> Job {
	Job { version: 1, pre_hash, number: 1, difficulty, params, weights_seed }
}

#[test]
fn golden_vectors_reproduce_on_the_device() {
	let Some(mut lane) = gpu("golden_vectors_reproduce_on_the_device") else { return };
	eprintln!("on {}", lane.info());
	let file: VectorFile = serde_json::from_str(GOLDEN).unwrap();
	for s in &file.sets {
		let p = s.params.challenge();
		let d = U256::from_dec_str(&s.difficulty).unwrap();
		let j = job(p, h32(&s.weights_seed), h32(&s.pre_hash), d);
		for tv in &s.tiles {
			let digests = lane.debug_digests(&j, tv.nonce).unwrap();
			let got = digests[(tv.tile_i * p.tiles_n() + tv.tile_j) as usize];
			assert_eq!(hex::encode(got), tv.digest, "{}: tile {tv:?}", s.name);
		}
		let w = &s.winning_seal;
		let seal = Seal { nonce: w.nonce, tile_i: w.tile_i, tile_j: w.tile_j };
		let digests = lane.debug_digests(&j, w.nonce).unwrap();
		assert_eq!(hex::encode(digests[(w.tile_i * p.tiles_n() + w.tile_j) as usize]), w.digest, "{}", s.name);
		if w.first_over_all_nonces {
			// The mining path finds exactly the recorded first winner.
			let report = lane.search(&j, 0..w.nonce + 1, &|| false).unwrap();
			assert_eq!(report.nonces_done, w.nonce + 1);
			assert_eq!(report.winners.first().map(|w| w.id), Some(seal), "{}", s.name);
		} else {
			let report = lane.search(&j, w.nonce..w.nonce + 1, &|| false).unwrap();
			assert!(report.winners.iter().any(|w| w.id == seal), "{}: {:?}", s.name, report.winners);
		}
		if let Some(want) = &s.product_nonce0_blake3 {
			let c = lane.debug_product(&j, 0).unwrap();
			let bytes: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
			assert_eq!(&hex::encode(blake3::hash(&bytes).as_bytes()), want, "{}: product of nonce 0", s.name);
		}
		eprintln!("golden set {}: ok", s.name);
	}
}

/// Products, digests and winners equal the CPU reference miner's, for
/// shapes that exercise every tiling case (non-square, multi-chunk tiles,
/// long k), with batches that end short.
#[test]
fn device_mining_equals_the_cpu_reference() {
	let Some(mut lane) = gpu("device_mining_equals_the_cpu_reference") else { return };
	for (m, k, n, t) in
		[(64, 64, 64, 16), (96, 16, 144, 48), (128, 16, 256, 128), (32, 4096, 48, 16), (256, 512, 128, 32)]
	{
		let p = ChallengeParams { version: 1, m, k, n, t, r: 0, epoch_length: 1 };
		let (ws, pre) = ([m as u8; 32], [n as u8; 32]);
		let d = U256::from(p.tickets_per_nonce() * 3);
		let j = job(p, ws, pre, d);
		let weights = EpochWeights::generate(&p, &ws).unwrap();
		let mut reference = Search::new(&weights, &pre, d).unwrap();
		for nonce in [0, 1 << 33, u64::MAX] {
			reference.compute(nonce);
			assert_eq!(lane.debug_product(&j, nonce).unwrap(), reference.product(), "{p:?} nonce {nonce}");
			let digests = lane.debug_digests(&j, nonce).unwrap();
			for i in 0..p.tiles_m() {
				for jj in 0..p.tiles_n() {
					assert_eq!(digests[(i * p.tiles_n() + jj) as usize], reference.tile_digest(nonce, i, jj));
				}
			}
		}
		let range = 1000..1000 + 3 * lane.batch_size(&p) + 5;
		let report = lane.search(&j, range.clone(), &|| false).unwrap();
		assert_eq!(report.nonces_done, range.end - range.start);
		let expected: Vec<Seal> = range.flat_map(|nonce| reference.try_nonce(nonce)).map(|v| v.seal).collect();
		assert_eq!(report.winners.iter().map(|w| w.id).collect::<Vec<_>>(), expected, "{p:?}");
		assert!(!expected.is_empty());
		for w in &report.winners {
			verify::verify(&p, &ws, &pre, d, &w.seal).expect("every device winner verifies");
		}
	}
}

/// A new epoch's weights replace the old ones; parameters change buffers.
#[test]
fn weights_follow_the_seed_and_buffers_follow_the_params() {
	let Some(mut lane) = gpu("weights_follow_the_seed_and_buffers_follow_the_params") else { return };
	let p = ChallengeParams { version: 1, m: 64, k: 128, n: 64, t: 16, r: 0, epoch_length: 1 };
	for (seed, params) in [([1; 32], p), ([2; 32], p), ([2; 32], ChallengeParams { k: 256, ..p }), ([1; 32], p)] {
		let j = job(params, seed, [3; 32], U256::from(1000));
		let weights = EpochWeights::generate(&params, &seed).unwrap();
		let mut reference = Search::new(&weights, &[3; 32], U256::from(1000)).unwrap();
		reference.compute(5);
		assert_eq!(lane.debug_product(&j, 5).unwrap(), reference.product());
	}
}

/// Parameters too large for the device are an error, not a crash.
#[test]
fn oversized_parameters_are_a_clear_error() {
	let Some(mut lane) = gpu("oversized_parameters_are_a_clear_error") else { return };
	// 65536 x 65536 i32 products: 16 GiB a nonce, two slots; far above a
	// quarter of any current GPU, so the batch is one nonce and either fits
	// or fails with "out of device memory".
	let p = ChallengeParams { version: 1, m: 65536, k: 256, n: 65536, t: 16, r: 0, epoch_length: 1 };
	let j = job(p, [0; 32], [0; 32], U256::from(1000));
	match lane.search(&j, 0..1, &|| false) {
		Ok(r) => assert_eq!(r.nonces_done, 1),
		Err(e) => assert!(format!("{e:#}").contains("memory"), "{e:#}"),
	}
	// And the lane still mines afterwards.
	let small = job(ChallengeParams::DEV, [0; 32], [0; 32], U256::from(100));
	assert_eq!(lane.search(&small, 0..10, &|| false).unwrap().nonces_done, 10);
}

/// Puzzle v2, stage by stage: the device's noisy operands, then its tile
/// states, against the CPU reference, naming the first difference, so a
/// failure on a GPU says whether the noise or the transcript kernel is at
/// fault (tests/cuda_device_v2.rs checks the end results).
#[test]
fn v2_noisy_operands_and_tile_states_equal_the_cpu_reference() {
	use mlpow_primitives::v2::{noise, Job as V2Job, Miner, Mode};
	let Some(mut lane) = gpu("v2_noisy_operands_and_tile_states_equal_the_cpu_reference") else { return };
	let (pre, ws, nonce) = ([5u8; 32], [6u8; 32], 3);
	for (m, k, n, t, r) in [(64, 64, 64, 16, 32), (256, 256, 384, 16, 64), (128, 128, 256, 64, 128)] {
		let p = ChallengeParams { version: 2, m, k, n, t, r, epoch_length: 10 };
		p.validate().unwrap();
		let got = lane.debug_v2(&job(p, ws, pre, U256::one()), nonce).unwrap();
		let reference = V2Job::seeded(&p, &pre, &ws).unwrap();
		let seed = noise::noise_seed(&pre, &p, Mode::Seeded, &reference.commitments(), nonce);
		let sel = noise::Selections::generate(&seed, k, r);
		let (m, n, k, r) = (m as usize, n as usize, k as usize, r as usize);
		let (mut e_l, mut g_l) = (vec![0i8; m * r], vec![0i8; n * r]);
		noise::noise_a_rows(&seed, r as u32, 0, &mut e_l);
		noise::noise_bt_rows(&seed, r as u32, 0, &mut g_l);
		let (mut a_noisy, mut bt_noisy) = (vec![0i8; m * k], vec![0i8; n * k]);
		noise::noisy_copy(&mut a_noisy, reference.a(), &e_l, &sel.a, r);
		noise::noisy_copy(&mut bt_noisy, reference.bt(), &g_l, &sel.bt, r);
		for (name, device, cpu) in [("A'", &got.a_noisy, &a_noisy), ("Bt'", &got.bt_noisy, &bt_noisy)] {
			if let Some(i) = device.iter().zip(cpu.iter()).position(|(x, y)| x != y) {
				panic!(
					"{p:?}: {name} differs first at row {}, column {}: device {}, CPU {}",
					i / k,
					i % k,
					device[i],
					cpu[i]
				);
			}
		}
		let mut miner = Miner::new(&reference, &pre, U256::one()).unwrap();
		miner.try_nonce(nonce);
		let want = miner.states();
		assert_eq!(got.states.len(), want.len(), "{p:?}: tiles");
		let bad: Vec<usize> = (0..want.len()).filter(|&i| got.states[i] != want[i]).collect();
		if let Some(&first) = bad.first() {
			let tiles_n = p.tiles_n() as usize;
			panic!(
				"{p:?}: {} of {} tile states differ; first tile ({}, {}): device {:08x?}, CPU {:08x?}",
				bad.len(),
				want.len(),
				first / tiles_n,
				first % tiles_n,
				got.states[first],
				want[first]
			);
		}
	}
}
