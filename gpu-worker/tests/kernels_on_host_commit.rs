//! The chosen-mode commitment kernels' arithmetic, run on the CPU:
//! `tests/host_commit.cpp` compiles `kernels/commit.cu` with the host C++
//! compiler and runs its three passes (chunk chaining values, leaves, tree
//! levels) over every index. Every chunk value, leaf, tree level and root
//! must equal what the Rust primitives (`v2::commit`, the `blake3` crate)
//! and the worker's `chosen::commit_a` / `commit_bt` compute, and the roots
//! the v2 golden vectors record. No GPU needed; NVRTC compiling the same
//! source is `tests/kernels_compile.rs`.

#[path = "support/host_cxx.rs"]
mod host_cxx;

use blake3::hazmat::HasherExt;
use mlpow_primitives::{
	v2::{
		commit::{self, MerkleTree},
		noise,
	},
	ChallengeParams, Hash32,
};
use mlpow_worker::{chosen, kernels::Words8};
use serde_json::Value;
use std::{path::PathBuf, process::Command, sync::OnceLock};

fn harness() -> &'static PathBuf {
	static BIN: OnceLock<PathBuf> = OnceLock::new();
	BIN.get_or_init(|| host_cxx::compile("host_commit.cpp"))
}

fn key_hex(context: &str) -> String {
	hex::encode(Words8::context_key(context).0.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
}

fn as_bytes(v: &[i8]) -> Vec<u8> {
	v.iter().map(|&x| x as u8).collect()
}

/// What the harness printed for one matrix.
#[derive(Debug, Default)]
struct HostCommit {
	chunks: usize,
	/// Pass 1: `cvs[leaf][chunk]`.
	cvs: Vec<Vec<Hash32>>,
	/// Pass 2.
	leaves: Vec<Hash32>,
	/// Pass 3: `levels[l]` is tree level `l + 1` (level 0 being the leaves).
	levels: Vec<Vec<Hash32>>,
	root: Hash32,
}

fn h32(hex_text: &str) -> Hash32 {
	hex::decode(hex_text).unwrap().try_into().unwrap()
}

/// `matrix` (`rows x k`) through the kernels with `t`-row leaves;
/// `mutation`: one of the harness's (see host_commit.cpp).
fn run(matrix: &[i8], rows: u32, k: u32, t: u32, mutation: Option<&str>) -> HostCommit {
	let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
		.join(format!("host_commit-{}.bin", std::thread::current().name().unwrap_or("main").replace("::", "-")));
	std::fs::write(&file, as_bytes(matrix)).unwrap();
	let out = Command::new(harness())
		.args([rows, k, t].map(|x| x.to_string()))
		.args([key_hex(commit::CTX_LEAF), key_hex(commit::CTX_NODE)])
		.arg(&file)
		.args(mutation)
		.output()
		.expect("running the harness");
	assert!(out.status.success(), "harness: {}", String::from_utf8_lossy(&out.stderr));
	let mut got = HostCommit::default();
	for line in String::from_utf8(out.stdout).unwrap().lines() {
		let f: Vec<&str> = line.split(' ').collect();
		let num = |i: usize| f[i].parse::<usize>().unwrap();
		match f[0] {
			"chunks" => got.chunks = num(1),
			"cv" => {
				if num(2) == 0 {
					got.cvs.push(Vec::new());
				}
				assert_eq!((got.cvs.len() - 1, got.cvs.last().unwrap().len()), (num(1), num(2)), "cv order");
				got.cvs.last_mut().unwrap().push(h32(f[3]));
			}
			"leaf" => {
				assert_eq!(got.leaves.len(), num(1), "leaf order");
				got.leaves.push(h32(f[2]));
			}
			"node" => {
				if got.levels.len() < num(1) {
					got.levels.push(Vec::new());
				}
				assert_eq!((got.levels.len(), got.levels.last().unwrap().len()), (num(1), num(2)), "node order");
				got.levels.last_mut().unwrap().push(h32(f[3]));
			}
			"root" => got.root = h32(f[1]),
			other => panic!("unexpected harness line {other}"),
		}
	}
	got
}

/// The chaining value of chunk `c` of a leaf of `chunks` chunks, from the
/// `blake3` crate: a non-root subtree of one chunk at offset `c * 1024` in
/// derive_key mode, or for a leaf of one chunk the leaf hash itself.
fn chunk_cv(block: &[u8], c: usize, chunks: usize) -> Hash32 {
	if chunks == 1 {
		return blake3::derive_key(commit::CTX_LEAF, block);
	}
	let mut h = blake3::Hasher::new_derive_key(commit::CTX_LEAF);
	h.set_input_offset(c as u64 * 1024);
	h.update(&block[c * 1024..block.len().min((c + 1) * 1024)]);
	h.finalize_non_root()
}

/// The tree's levels above the leaves, from the primitives' `node` over the
/// leaves padded with `EMPTY` (as `MerkleTree::from_leaves` builds them).
fn reference_levels(leaves: &[Hash32]) -> Vec<Vec<Hash32>> {
	let mut level = leaves.to_vec();
	level.resize(leaves.len().next_power_of_two(), commit::EMPTY);
	let mut out = Vec::new();
	while level.len() > 1 {
		level = level.chunks_exact(2).map(|p| commit::node(&p[0], &p[1])).collect();
		out.push(level.clone());
	}
	out
}

/// Valid v2 parameters with these `t` and `k` and `rows` rows on both
/// sides, so the worker's `commit_a` and `commit_bt` accept the matrix.
fn params(rows: u32, k: u32, t: u32) -> ChallengeParams {
	let r = [32, 64, 128].into_iter().find(|&r| k.is_multiple_of(r) && k <= r * r).expect("a rank for k");
	let p = ChallengeParams { version: 2, m: rows, k, n: rows, t, r, epoch_length: 1 };
	p.validate().unwrap_or_else(|e| panic!("{p:?}: {e:?}"));
	p
}

/// Runs the kernels on `matrix` and checks every pass; returns the root.
fn check(matrix: &[i8], rows: u32, k: u32, t: u32, what: &str) -> Hash32 {
	let got = run(matrix, rows, k, t, None);
	let (leaf_bytes, leaves) = ((t * k) as usize, (rows / t) as usize);
	let chunks = leaf_bytes.div_ceil(1024);
	let what = format!("{what} ({rows} x {k}, t = {t}: {leaves} leaves of {chunks} chunks)");
	assert_eq!(got.chunks, chunks, "{what}: chunks per leaf");
	assert_eq!(got.cvs.len(), leaves, "{what}: chunk values");
	let bytes = as_bytes(matrix);
	for (i, block) in bytes.chunks_exact(leaf_bytes).enumerate() {
		let want: Vec<Hash32> = (0..chunks).map(|c| chunk_cv(block, c, chunks)).collect();
		assert_eq!(got.cvs[i], want, "{what}: chunk values of leaf {i}");
		assert_eq!(got.leaves[i], blake3::derive_key(commit::CTX_LEAF, block), "{what}: leaf {i}");
		assert_eq!(got.leaves[i], commit::leaf(&matrix[i * leaf_bytes..][..leaf_bytes]), "{what}: leaf {i}");
	}
	assert_eq!(got.leaves.len(), leaves, "{what}: leaves");
	assert_eq!(got.levels, reference_levels(&got.leaves), "{what}: tree levels");
	assert_eq!(got.levels.len() as u32, commit::depth(leaves as u32), "{what}: depth");

	let tree = MerkleTree::build(matrix, t as usize, k as usize);
	assert_eq!(got.root, tree.root(), "{what}: root");
	for i in 0..leaves {
		let path: Vec<Hash32> = (0..got.levels.len()).map(|l| sibling(&got, i, l)).collect();
		assert_eq!(path, tree.path(i as u32), "{what}: path of leaf {i}");
	}
	let p = params(rows, k, t);
	assert_eq!(got.root, chosen::commit_a(&p, matrix.to_vec()).unwrap().root(), "{what}: commit_a");
	assert_eq!(got.root, chosen::commit_bt(&p, matrix.to_vec()).unwrap().root(), "{what}: commit_bt");
	got.root
}

/// The sibling of leaf `i`'s ancestor at tree level `l` (level 0: the
/// leaves, whose padding slots are all-zero hashes).
fn sibling(got: &HostCommit, i: usize, l: usize) -> Hash32 {
	let j = (i >> l) ^ 1;
	let level = if l == 0 { &got.leaves } else { &got.levels[l - 1] };
	level.get(j).copied().unwrap_or(commit::EMPTY)
}

/// A deterministic 7-bit matrix.
fn matrix(len: usize, label: &str) -> Vec<i8> {
	let mut out = vec![0i8; len];
	noise::stream_rows("mlpow worker commit kernel tests", blake3::hash(label.as_bytes()).as_bytes(), 1, 0, &mut out);
	out
}

/// (rows, k, t) and why each is there.
const SHAPES: [(u32, u32, u32, &str); 12] = [
	(16, 64, 16, "one leaf of exactly one chunk"),
	(16, 32, 16, "one leaf of one partial chunk"),
	(48, 32, 16, "3 leaves (padded to 4) of half a chunk"),
	(80, 64, 16, "5 leaves (padded to 8, a node over two pads) of one chunk"),
	(32, 96, 16, "2 chunks, the last partial"),
	(96, 96, 48, "5 chunks, the last partial, t = 48"),
	(32, 448, 16, "7 chunks: subtrees of 4, 2 and 1 left pending"),
	(48, 768, 16, "12 chunks: subtrees of 8 and 4"),
	(48, 4096, 16, "the GPU preset's leaf: 64 chunks"),
	(128, 1024, 128, "one leaf of 128 chunks, t = 128"),
	(64, 16384, 16, "256 chunks, the most v2 allows (2*t*k = 512 KiB)"),
	(528, 32, 16, "33 leaves, padded to 64: six levels"),
];

#[test]
fn commit_kernels_match_the_primitives_on_every_shape() {
	for (rows, k, t, why) in SHAPES {
		let m = matrix((rows * k) as usize, why);
		check(&m, rows, k, t, why);
	}
	// Extremes: every byte 0xc0 (-64) or 0x3f (63).
	for (fill, rows, k, t) in [(-64i8, 48, 768, 16), (63, 80, 64, 16)] {
		check(&vec![fill; (rows * k) as usize], rows, k, t, &format!("all {fill}"));
	}
}

/// The golden vectors' chosen cases: their `A` and `Bt` through the
/// kernels give the recorded `commit_a` and `commit_bt`.
#[test]
fn commit_kernels_reproduce_the_golden_commitments() {
	let file: Value = mlpow_vectors::v2();
	let mut checked = 0;
	for c in file["cases"].as_array().unwrap().iter().filter(|c| c["mode"].as_u64() == Some(1)) {
		let name = c["name"].as_str().unwrap();
		let p = mlpow_vectors::params(&c["params"]);
		let bytes = |key: &str| -> Vec<i8> {
			hex::decode(c[key].as_str().unwrap()).unwrap().iter().map(|&b| b as i8).collect()
		};
		let root_a = check(&bytes("a"), p.m, p.k, p.t, &format!("{name}: A"));
		assert_eq!(hex::encode(root_a), c["commit_a"].as_str().unwrap(), "{name}: commit_a");
		let root_bt = check(&bytes("bt"), p.n, p.k, p.t, &format!("{name}: Bt"));
		assert_eq!(hex::encode(root_bt), c["commit_bt"].as_str().unwrap(), "{name}: commit_bt");
		checked += 1;
	}
	assert_eq!(checked, 8, "every chosen case");
}

/// The comparisons can fail: mutated copies of the kernels (host_commit.cpp)
/// change exactly what they should, and the checks above would see it.
#[test]
fn mutated_commit_kernels_are_caught() {
	for (rows, k, t, why) in SHAPES {
		let m = matrix((rows * k) as usize, why);
		let good = run(&m, rows, k, t, None);
		let leaves = good.leaves.len();
		let differ = |a: &[Hash32], b: &[Hash32]| a.iter().zip(b).filter(|(x, y)| x != y).count();

		// No ROOT flag: every leaf is a root compression in commit.cu.
		let no_root = run(&m, rows, k, t, Some("no-root"));
		assert_eq!(differ(&no_root.leaves, &good.leaves), leaves, "no-root, {why}: every leaf");
		assert_ne!(no_root.root, good.root, "no-root, {why}: root");

		// Counter 0 everywhere: chunk 0 of a leaf is unchanged (its counter
		// is 0), every later chunk and so every leaf of several chunks not.
		let zero = run(&m, rows, k, t, Some("zero-counter"));
		let changed_cvs: usize = zero.cvs.iter().zip(&good.cvs).map(|(a, b)| differ(a, b)).sum();
		assert_eq!(changed_cvs, leaves * (good.chunks - 1), "zero-counter, {why}: chunk values");
		let changed = differ(&zero.leaves, &good.leaves);
		assert_eq!(changed, if good.chunks > 1 { leaves } else { 0 }, "zero-counter, {why}: leaves");
		assert_eq!(zero.root != good.root, good.chunks > 1, "zero-counter, {why}: root");

		// Padding slots read instead of taken as zeros: only a leaf count
		// that is not a power of two has any.
		let pad = run(&m, rows, k, t, Some("no-padding"));
		assert_eq!(pad.leaves, good.leaves, "no-padding, {why}: leaves");
		assert_eq!(pad.root != good.root, !leaves.is_power_of_two(), "no-padding, {why}: root");
		println!(
			"{why}: no-root changes {leaves} of {leaves} leaves; zero-counter {changed_cvs} chunk values and \
			 {changed} leaves; no-padding {} the root",
			if pad.root != good.root { "changes" } else { "keeps (no padding)" }
		);
	}
}
