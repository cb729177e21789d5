//! The CUDA kernels' arithmetic, run on the CPU: `tests/host_kernels.cpp`
//! compiles `kernels/mine.cu` (and `blake3.cuh`) with the host C++ compiler
//! and runs every kernel body over every index. Its matrices, tile digests
//! and winners must equal the Rust reference miner's and the golden
//! vectors'. This catches any BLAKE3, stream or tiling mistake in the device
//! code without a GPU; `tests/cuda_device.rs` runs the same checks on one.

#[path = "support/host_cxx.rs"]
mod host_cxx;

use mlpow_primitives::{
	mine::{EpochWeights, Search},
	stream::{job_seed, MatrixStream},
	ChallengeParams, Hash32, Seal, U256,
};
use mlpow_vectors::VectorFile;
use mlpow_worker::kernels::{ContextKeys, Words8};
use std::{path::PathBuf, process::Command, sync::OnceLock};

const GOLDEN: &str = mlpow_vectors::GOLDEN;

fn harness() -> &'static PathBuf {
	static BIN: OnceLock<PathBuf> = OnceLock::new();
	BIN.get_or_init(|| host_cxx::compile("host_kernels.cpp"))
}

fn hex32(w: &Words8) -> String {
	hex::encode(w.0.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
}

/// What the harness printed for one run.
#[derive(Default)]
struct HostRun {
	bt: Vec<u8>,
	a: Vec<Vec<u8>>,
	/// (b, i, j, digest) in tile order.
	digests: Vec<(u64, u32, u32, Hash32)>,
	/// (b, i, j) in the order found.
	winners: Vec<(u64, u32, u32)>,
}

fn run_host(p: &ChallengeParams, weights_seed: &Hash32, js: &Hash32, first: u64, count: u32, d: U256) -> HostRun {
	let keys = ContextKeys::new();
	let target = mlpow_primitives::ticket::target(d).expect("non-zero difficulty").to_big_endian();
	let out = Command::new(harness())
		.args([p.m, p.k, p.n, p.t].map(|x| x.to_string()))
		.arg(hex::encode(weights_seed))
		.arg(hex::encode(js))
		.arg(first.to_string())
		.arg(count.to_string())
		.arg(hex::encode(target))
		.args([hex32(&keys.weights), hex32(&keys.activations), hex32(&keys.tile)])
		.output()
		.expect("running the harness");
	assert!(out.status.success(), "harness: {}", String::from_utf8_lossy(&out.stderr));
	let mut run = HostRun::default();
	let mut reported = None;
	for line in String::from_utf8(out.stdout).unwrap().lines() {
		let f: Vec<&str> = line.split(' ').collect();
		let num = |i: usize| f[i].parse::<u64>().unwrap();
		match f[0] {
			"bt" => run.bt = hex::decode(f[1]).unwrap(),
			"a" => run.a.push(hex::decode(f[2]).unwrap()),
			"digest" => {
				run.digests.push((num(1), num(2) as u32, num(3) as u32, hex::decode(f[4]).unwrap().try_into().unwrap()))
			}
			"winner" => run.winners.push((num(1), num(2) as u32, num(3) as u32)),
			"winners" => reported = Some(num(1) as usize),
			other => panic!("unexpected harness line {other}"),
		}
	}
	assert_eq!(reported, Some(run.winners.len()), "the winner count and the kept winners agree below capacity");
	run
}

/// Runs the harness over `count` nonces from `first` and checks it against
/// the reference miner: weights, activations, every digest, every winner.
/// Returns the host run's winners as seals, in nonce then tile order.
fn check_against_reference(
	p: &ChallengeParams,
	ws: &Hash32,
	pre: &Hash32,
	first: u64,
	count: u32,
	d: U256,
) -> Vec<Seal> {
	let js = job_seed(pre, ws);
	let run = run_host(p, ws, &js, first, count, d);
	let weights = EpochWeights::generate(p, ws).unwrap();
	let as_bytes = |v: &[i8]| v.iter().map(|&x| x as u8).collect::<Vec<u8>>();
	assert_eq!(run.bt, as_bytes(weights.bt()), "weights for {p:?}");

	let mut search = Search::new(&weights, pre, d).unwrap();
	let mut expected_winners = Vec::new();
	let tiles_per_nonce = (p.tiles_m() * p.tiles_n()) as usize;
	assert_eq!(run.digests.len(), count as usize * tiles_per_nonce);
	for b in 0..count as u64 {
		let nonce = first + b;
		let mut a = vec![0i8; (p.m * p.k) as usize];
		MatrixStream::activations(&js, nonce, p.k).read_rows(0, &mut a);
		assert_eq!(run.a[b as usize], as_bytes(&a), "activations of nonce {nonce}");
		expected_winners.extend(search.try_nonce(nonce).into_iter().map(|v| v.seal));
		for &(rb, i, j, digest) in &run.digests[b as usize * tiles_per_nonce..][..tiles_per_nonce] {
			assert_eq!(rb, b);
			assert_eq!(digest, search.tile_digest(nonce, i, j), "digest of nonce {nonce} tile ({i}, {j}) for {p:?}");
		}
	}
	let mut got: Vec<Seal> =
		run.winners.iter().map(|&(b, i, j)| Seal { nonce: first + b, tile_i: i, tile_j: j }).collect();
	got.sort_by_key(|s| (s.nonce, s.tile_i, s.tile_j));
	assert_eq!(got, expected_winners, "winners for {p:?}");
	got
}

#[test]
fn golden_vectors_reproduce_through_the_kernel_code() {
	let file: VectorFile = serde_json::from_str(GOLDEN).unwrap();
	let mut checked = 0;
	for s in &file.sets {
		let p = s.params.challenge();
		if p.macs_per_nonce() > 1 << 26 {
			// The GPU preset: 2^38 MACs a nonce is for tests/cuda_device.rs.
			continue;
		}
		let h = |x: &str| -> Hash32 { hex::decode(x).unwrap().try_into().unwrap() };
		let (ws, pre) = (h(&s.weights_seed), h(&s.pre_hash));
		let d = U256::from_dec_str(&s.difficulty).unwrap();
		// Every nonce up to the recorded first winner, compared with the
		// reference miner: the kernels must find that winner first.
		let w = &s.winning_seal;
		let winners = check_against_reference(&p, &ws, &pre, 0, w.nonce as u32 + 1, d);
		assert_eq!(winners.first(), Some(&Seal { nonce: w.nonce, tile_i: w.tile_i, tile_j: w.tile_j }), "{}", s.name);
		// The golden tiles (some at nonces like 2^64 - 1).
		let js = job_seed(&pre, &ws);
		for tv in &s.tiles {
			let run = run_host(&p, &ws, &js, tv.nonce, 1, d);
			let got = run.digests.iter().find(|x| (x.1, x.2) == (tv.tile_i, tv.tile_j)).unwrap().3;
			assert_eq!(hex::encode(got), tv.digest, "{} golden tile {tv:?}", s.name);
		}
		checked += 1;
	}
	assert_eq!(checked, 3, "dev, non-square and tile-32 run on the host");
}

/// Tiles of several BLAKE3 chunks: 9 (t = 48, a tree that is not a power
/// of two), 16 (t = 64) and 64 (t = 128, the largest), at a difficulty
/// where about a quarter of the tiles win.
#[test]
fn multi_chunk_tiles_hash_like_the_reference() {
	for (m, k, n, t) in [(96, 16, 144, 48), (64, 32, 128, 64), (128, 16, 256, 128), (32, 2048, 48, 16)] {
		let p = ChallengeParams { version: 1, m, k, n, t, r: 0, epoch_length: 1 };
		p.validate().unwrap();
		let winners = check_against_reference(&p, &[t as u8; 32], &[k as u8; 32], 1 << 40, 6, U256::from(4));
		assert!(!winners.is_empty(), "some tile of {p:?} wins at difficulty 4");
	}
}
