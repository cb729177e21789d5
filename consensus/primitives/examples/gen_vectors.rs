//! Regenerates the golden vectors:
//! `cargo run --release -p mlpow-primitives --example gen-vectors > consensus/vectors/golden.json`
//!
//! Only after a deliberate consensus change (with SPEC.md changed alongside):
//! `tests/golden.rs` recomputes this file independently and fails on any
//! difference.

#[path = "../tests/support/vectors_format.rs"]
mod format;

use format::*;
use mlpow_primitives::{
	mine::{EpochWeights, Search},
	stream::{job_seed, weights_seed, MatrixStream},
	ticket::TileHasher,
	verify::compute_tile,
	ChallengeParams, Seal, U256,
};

fn hex32(b: &[u8]) -> String {
	hex::encode(b)
}

fn set(name: &str, p: ChallengeParams, difficulty: u64, epoch_index: u64, small: bool) -> VectorSet {
	let anchor = *blake3::hash(format!("anchor {name}").as_bytes()).as_bytes();
	let ws = weights_seed(&anchor, epoch_index);
	let pre_hash = *blake3::hash(format!("pre_hash {name}").as_bytes()).as_bytes();
	let js = job_seed(&pre_hash, &ws);
	let d = U256::from(difficulty);
	let hasher = TileHasher::new();

	let mut wrow = vec![0i8; 32];
	MatrixStream::weights(&ws, p.k).read_rows(p.n - 1, &mut wrow);
	let mut arow = vec![0i8; 32];
	MatrixStream::activations(&js, 0, p.k).read_rows(p.m - 1, &mut arow);
	let bytes = |v: &[i8]| hex::encode(v.iter().map(|&x| x as u8).collect::<Vec<u8>>());

	let (lm, ln) = (p.tiles_m() - 1, p.tiles_n() - 1);
	let picks = [(0u64, 0u32, 0u32), (0, lm, ln), (1, lm / 2, ln / 3), (u64::MAX, lm, 0), (7, 0, ln)];
	let tiles = picks
		.iter()
		.map(|&(nonce, i, j)| {
			let tile = compute_tile(&p, &ws, &js, &Seal { nonce, tile_i: i, tile_j: j });
			let digest = hasher.digest(&js, nonce, i, j, tile.chunks(p.t as usize));
			TileVector {
				nonce,
				tile_i: i,
				tile_j: j,
				tile_key: hex32(&hasher.tile_key(&js, nonce, i, j)),
				first: tile[0],
				sum: tile.iter().fold(0i32, |s, v| s.wrapping_add(*v)),
				digest: hex32(&digest),
				wins: mlpow_primitives::meets_target(&digest, d),
			}
		})
		.collect();

	let (product, winner) = if small {
		let w = EpochWeights::generate(&p, &ws).unwrap();
		let mut s = Search::new(&w, &pre_hash, d).unwrap();
		s.compute(0);
		let bytes: Vec<u8> = s.product().iter().flat_map(|v| v.to_le_bytes()).collect();
		let product = Some(hex32(blake3::hash(&bytes).as_bytes()));
		let v = s.search(0..1_000_000).expect("a winner within a million nonces");
		(product, (v, true))
	} else {
		// Scan nonce 0's tiles in order, one tile at a time (the full product
		// of a GPU-sized set is too big for a test).
		let v = (0..p.tiles_m())
			.flat_map(|i| (0..p.tiles_n()).map(move |j| (i, j)))
			.find_map(|(i, j)| {
				let seal = Seal { nonce: 0, tile_i: i, tile_j: j };
				mlpow_primitives::verify(&p, &ws, &pre_hash, d, &seal.to_bytes()).ok()
			})
			.expect("a winning tile in nonce 0");
		(None, (v, false))
	};
	let (v, first) = winner;
	VectorSet {
		name: name.into(),
		params: Params { version: p.version, m: p.m, k: p.k, n: p.n, t: p.t, epoch_length: p.epoch_length },
		params_scale: hex::encode(codec::Encode::encode(&p)),
		epoch_anchor: hex32(&anchor),
		epoch_index,
		weights_seed: hex32(&ws),
		pre_hash: hex32(&pre_hash),
		job_seed: hex32(&js),
		difficulty: d.to_string(),
		weights_last_row_prefix: bytes(&wrow),
		activations_nonce0_last_row_prefix: bytes(&arow),
		tiles,
		product_nonce0_blake3: product,
		winning_seal: WinningSeal {
			nonce: v.seal.nonce,
			tile_i: v.seal.tile_i,
			tile_j: v.seal.tile_j,
			seal: hex::encode(v.seal.to_bytes()),
			digest: hex32(&v.digest),
			first_over_all_nonces: first,
		},
	}
}

fn main() {
	let p = |m, k, n, t, epoch_length| ChallengeParams { version: 1, m, k, n, t, epoch_length };
	let file = VectorFile {
		comment: "MatMul PoW golden vectors; rules in consensus/SPEC.md; regenerate only with a consensus change"
			.into(),
		sets: vec![
			// Difficulties are high enough that flipping any bit of a winning
			// seal or pre-hash loses (tests/golden.rs checks every flip).
			set("dev", ChallengeParams::DEV, 5000, 0, true),
			set("non-square", p(32, 80, 96, 16, 10), 5000, 5, true),
			set("tile-32", p(64, 48, 128, 32, 1), 3000, 1_000_000_007, true),
			set("gpu", ChallengeParams::GPU, 3000, 2, false),
		],
	};
	println!("{}", serde_json::to_string_pretty(&file).unwrap());
}
