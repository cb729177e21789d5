//! Puzzle v2 on a real GPU, through the lane's public interface, against
//! the v2 golden vectors and the CPU reference miner. Without a usable GPU
//! every test prints why and returns (tests/kernels_on_host_v2.rs runs the
//! kernels' arithmetic on the CPU in CI).
//!
//! On a GPU machine: `cargo nextest run -p mlpow-worker --test
//! cuda_device_v2 --no-capture`, or the test binary from
//! `scripts/gpu-bundle.sh` (gpu-worker/README.md, "Tests").

#[path = "support/gpu.rs"]
mod support_gpu;

use mlpow_primitives::{
	kernel,
	v2::{noise, Job as V2Job, Miner},
	ChallengeParams, Hash32, Seal, U256,
};
use mlpow_worker::{
	backend::{Job, Lane},
	chosen::{commit_a, commit_bt},
	kernels::Transcript,
};
use serde_json::Value;
use support_gpu::gpu_each_transcript;

fn h32(v: &Value) -> Hash32 {
	hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn blake3_i32(v: &[i32]) -> String {
	hex::encode(blake3::hash(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).as_bytes())
}

fn work(params: ChallengeParams, weights_seed: Hash32, pre_hash: Hash32, difficulty: U256) -> Job {
	Job { version: 1, pre_hash, number: 1, difficulty, params, weights_seed }
}

/// The difficulty whose target is the median of `tickets`: about half the
/// tickets win, so a wrong ticket lands on the wrong side half the time.
fn median_difficulty(tickets: &[Hash32]) -> U256 {
	let mut values: Vec<U256> = tickets.iter().map(|t| U256::from_big_endian(t)).collect();
	values.sort();
	let median = values[values.len() / 2].max(U256::one());
	U256::MAX / median
}

#[test]
fn v2_golden_vectors_reproduce_on_the_device() {
	for (kernel, mut lane) in gpu_each_transcript("v2_golden_vectors_reproduce_on_the_device") {
		golden_vectors_on(&mut lane, &format!("{kernel:?}"));
	}
}

fn golden_vectors_on(lane: &mut mlpow_worker::cuda::CudaLane, kernel: &str) {
	let file: Value = mlpow_vectors::v2();
	for c in file["cases"].as_array().unwrap() {
		let name = &format!("{kernel}: {}", c["name"].as_str().unwrap());
		let p = mlpow_vectors::params(&c["params"]);
		let nonce: u64 = c["nonce"].as_str().unwrap().parse().unwrap();
		let tickets: Vec<Hash32> = c["tickets"].as_array().unwrap().iter().map(h32).collect();
		let d = median_difficulty(&tickets);
		let target = mlpow_primitives::ticket::target(d).unwrap();
		let want: Vec<(u32, u32)> = tickets
			.iter()
			.enumerate()
			.filter(|(_, t)| U256::from_big_endian(*t) <= target)
			.map(|(idx, _)| (idx as u32 / p.tiles_n(), idx as u32 % p.tiles_n()))
			.collect();
		let w = work(p, h32(&c["weights_seed"]), h32(&c["pre_hash"]), d);
		let got: Vec<(u32, u32)> = if c["mode"].as_u64() == Some(1) {
			let bytes = |k: &str| -> Vec<i8> {
				hex::decode(c[k].as_str().unwrap()).unwrap().iter().map(|&b| b as i8).collect()
			};
			let out = lane
				.multiply(&w, commit_a(&p, bytes("a")).unwrap(), commit_bt(&p, bytes("bt")).unwrap(), nonce)
				.unwrap();
			assert_eq!(blake3_i32(&out.product), c["product_blake3"].as_str().unwrap(), "{name}: product");
			out.winners.iter().map(|w| (w.id.tile_i, w.id.tile_j)).collect()
		} else if nonce == u64::MAX {
			// A search range cannot hold nonce 2^64 - 1 (mining never
			// reaches it); tests/kernels_on_host_v2.rs covers the case.
			continue;
		} else {
			let report = lane.search(&w, nonce..nonce + 1, &|| false).unwrap();
			report.winners.iter().map(|w| (w.id.tile_i, w.id.tile_j)).collect()
		};
		assert_eq!(got, want, "{name}: winners at the median ticket");
	}
}

fn matrix(len: usize, label: &str) -> Vec<i8> {
	let mut out = vec![0i8; len];
	noise::stream_rows("mlpow worker v2 device tests", blake3::hash(label.as_bytes()).as_bytes(), 1, 0, &mut out);
	out
}

#[test]
fn v2_mining_equals_the_cpu_reference() {
	for (kernel, mut lane) in gpu_each_transcript("v2_mining_equals_the_cpu_reference") {
		mining_equals_the_reference_on(&mut lane, kernel);
	}
}

fn mining_equals_the_reference_on(lane: &mut mlpow_worker::cuda::CudaLane, kernel: Transcript) {
	let (pre, ws) = ([3u8; 32], [8u8; 32]);
	// Besides the common shapes: one k-step (fewer than the pipeline's
	// prefetch), the largest tile, and three limbs of the fused
	// correction (k / r = 128).
	for (m, k, n, t, r) in [
		(256, 256, 384, 16, 64),
		(160, 512, 288, 32, 128),
		(1024, 4096, 1024, 16, 64),
		(160, 32, 288, 16, 32),
		(256, 512, 256, 128, 32),
		(128, 16384, 128, 16, 128),
	] {
		let p = ChallengeParams { version: 2, m, k, n, t, r, epoch_length: 10 };
		p.validate().unwrap();
		let d = U256::from(p.tickets_per_nonce() / 2);
		// Seeded: every winner of four nonces, as the reference finds them.
		let job = V2Job::seeded(&p, &pre, &ws).unwrap();
		let mut miner = Miner::new(&job, &pre, d).unwrap();
		let want: Vec<Seal> = (10..14).flat_map(|nonce| miner.try_nonce(nonce)).map(|w| w.verified.seal).collect();
		let report = lane.search(&work(p, ws, pre, d), 10..14, &|| false).unwrap();
		assert_eq!(report.nonces_done, 4);
		let got: Vec<Seal> = report.winners.iter().map(|w| w.id).collect();
		assert_eq!(got, want, "{kernel:?} {p:?}: seeded winners");
		// Chosen: the exact product and the winners with their openings.
		let (a, bt) = (matrix((m * k) as usize, "A"), matrix((n * k) as usize, "Bt"));
		let chosen = V2Job::chosen(&p, a.clone(), bt.clone()).unwrap();
		let mut miner = Miner::new(&chosen, &pre, d).unwrap();
		let want = miner.try_nonce(99);
		let out = lane
			.multiply(&work(p, ws, pre, d), commit_a(&p, a.clone()).unwrap(), commit_bt(&p, bt.clone()).unwrap(), 99)
			.unwrap();
		let mut product = vec![0; (m * n) as usize];
		kernel::gemm(&a, &bt, m as usize, n as usize, k as usize, &mut product);
		assert!(out.product == product, "{kernel:?} {p:?}: the useful product");
		assert_eq!(
			out.winners.iter().map(|w| w.seal.clone()).collect::<Vec<_>>(),
			want.iter().map(|w| w.seal.clone()).collect::<Vec<_>>(),
			"{kernel:?} {p:?}: chosen winners and their openings"
		);
	}
}

/// The GPU preset: too large for the CPU reference, so every winner is
/// checked by the lane's own host re-verification, and the useful product
/// by its Freivalds check.
#[test]
fn v2_gpu_preset_mines_and_multiplies() {
	for (kernel, mut lane) in gpu_each_transcript("v2_gpu_preset_mines_and_multiplies") {
		eprint!("{kernel:?}: ");
		gpu_preset_on(&mut lane);
	}
}

fn gpu_preset_on(lane: &mut mlpow_worker::cuda::CudaLane) {
	let p = ChallengeParams { version: 2, m: 8192, k: 4096, n: 8192, t: 16, r: 64, epoch_length: 1000 };
	p.validate().unwrap();
	// About four winners per nonce.
	let d = U256::from(p.tickets_per_nonce() / 4);
	let report = lane.search(&work(p, [1; 32], [2; 32], d), 0..3, &|| false).unwrap();
	assert_eq!(report.nonces_done, 3);
	assert!(!report.winners.is_empty(), "about 12 winners expected");
	let (a, bt) = (matrix((p.m * p.k) as usize, "big A"), matrix((p.n * p.k) as usize, "big Bt"));
	let out =
		lane.multiply(&work(p, [1; 32], [2; 32], d), commit_a(&p, a).unwrap(), commit_bt(&p, bt).unwrap(), 5).unwrap();
	assert_eq!(out.product.len(), (p.m * p.n) as usize);
	eprintln!("{} winners over 3 nonces, {} in the useful nonce", report.winners.len(), out.winners.len());
}

/// Chosen-mode commitments computed on the device (kernels/commit.cu), as
/// the in-process miner will commit a model's CUDA tensors: every leaf,
/// every path and the root equal the primitives', over shapes with one
/// leaf, padded leaf counts, short and many chunks, and the GPU preset.
#[test]
fn commitments_computed_on_the_device_equal_the_primitives() {
	use mlpow_primitives::v2::commit::{leaf, MerkleTree};
	let Some(mut lane) = support_gpu::gpu("commitments_computed_on_the_device_equal_the_primitives") else { return };
	for (rows, k, t) in [(16, 32, 16), (48, 64, 16), (80, 768, 16), (128, 4096, 128), (8192, 4096, 16)] {
		let matrix = matrix((rows * k) as usize, &format!("commit {rows}x{k}/{t}"));
		let tree = lane.debug_commit(&matrix, rows, k, t).unwrap();
		let want = MerkleTree::build(&matrix, t as usize, k as usize);
		let leaves = (rows / t) as usize;
		let width = leaves.next_power_of_two();
		assert_eq!(tree.len(), 2 * width - 1, "{rows}x{k}/{t}: the tree's size");
		for (i, block) in matrix.chunks_exact((t * k) as usize).enumerate() {
			assert_eq!(tree[i], leaf(block), "{rows}x{k}/{t}: leaf {i}");
		}
		assert_eq!(*tree.last().unwrap(), want.root(), "{rows}x{k}/{t}: the root");
		for i in 0..leaves {
			// The path from the device's levels: the sibling at each level.
			let (mut start, mut w, mut at, mut path) = (0, width, i, Vec::new());
			while w > 1 {
				path.push(tree[start + (at ^ 1)]);
				(start, w, at) = (start + w, w / 2, at / 2);
			}
			assert_eq!(path, want.path(i as u32), "{rows}x{k}/{t}: the path of leaf {i}");
		}
	}
}

/// A useful job's `Bt` piece stays on the device between nonces, found by
/// its commitment (a registered weight's piece, reused by every call): the
/// second and third nonce on it upload only `A`, and every product is
/// exact; a piece of other values is uploaded afresh.
#[test]
fn a_useful_jobs_bt_is_uploaded_once_per_commitment() {
	for (kernel, mut lane) in gpu_each_transcript("a_useful_jobs_bt_is_uploaded_once_per_commitment") {
		let p = ChallengeParams { version: 2, m: 256, k: 256, n: 384, t: 16, r: 64, epoch_length: 10 };
		let w = work(p, [8; 32], [3; 32], U256::from(p.tickets_per_nonce()));
		let bt_values = matrix((p.n * p.k) as usize, "resident Bt");
		let bt = commit_bt(&p, bt_values.clone()).unwrap();
		let before = lane.debug_resident_hits();
		for nonce in 0..3u64 {
			let a = matrix((p.m * p.k) as usize, &format!("A {nonce}"));
			let out = lane.multiply(&w, commit_a(&p, a.clone()).unwrap(), bt.clone(), nonce).unwrap();
			let mut product = vec![0; (p.m * p.n) as usize];
			kernel::gemm(&a, &bt_values, p.m as usize, p.n as usize, p.k as usize, &mut product);
			assert!(out.product == product, "{kernel:?}: nonce {nonce}'s product");
		}
		assert_eq!(lane.debug_resident_hits() - before, 2, "{kernel:?}: the piece uploaded once");
		let other = matrix((p.n * p.k) as usize, "another Bt");
		let a = matrix((p.m * p.k) as usize, "A 3");
		lane.multiply(&w, commit_a(&p, a).unwrap(), commit_bt(&p, other).unwrap(), 3).unwrap();
		assert_eq!(lane.debug_resident_hits() - before, 2, "{kernel:?}: another piece is another upload");
	}
}
