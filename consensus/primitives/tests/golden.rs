//! Recomputes `consensus/vectors/golden.json` two ways:
//! 1. an independent transcription of SPEC.md written here with nothing but
//!    the `blake3` crate and naive loops (context strings spelled out, not
//!    imported), so a change to the library's constants or streams fails;
//! 2. the library's own API (`verify`, `Search`, `compute_tile`).
//!
//! Every miner backend (CPU, CUDA) and the runtime are tested against this
//! same file.

#[path = "support/vectors_format.rs"]
mod vectors_format;

use mlpow_primitives::{
	mine::{EpochWeights, Search},
	stream, verify, ChallengeParams, Seal, VerifyError, U256,
};
use vectors_format::*;

const GOLDEN: &str = include_str!("../../vectors/golden.json");

fn load() -> VectorFile {
	serde_json::from_str(GOLDEN).expect("golden.json parses")
}

fn h32(s: &str) -> [u8; 32] {
	hex::decode(s).unwrap().try_into().unwrap()
}

/// A set's verification inputs: params, weights seed, pre-hash, difficulty.
fn inputs(s: &VectorSet) -> (ChallengeParams, [u8; 32], [u8; 32], U256) {
	(s.params.challenge(), h32(&s.weights_seed), h32(&s.pre_hash), U256::from_dec_str(&s.difficulty).unwrap())
}

/// SPEC.md, transcribed independently of the library.
mod spec {
	pub fn derive(ctx: &str, parts: &[&[u8]]) -> [u8; 32] {
		blake3::derive_key(ctx, &parts.concat())
	}
	pub fn rows(ctx: &str, material: &[&[u8]], k: u32, first_row: u32, rows: u32) -> Vec<i8> {
		let mut h = blake3::Hasher::new_derive_key(ctx);
		h.update(&material.concat());
		let mut r = h.finalize_xof();
		r.set_position(first_row as u64 * k as u64);
		let mut out = vec![0u8; (rows * k) as usize];
		r.fill(&mut out);
		out.into_iter().map(|b| b as i8).collect()
	}
	pub fn tile(p: &super::Params, ws: &[u8; 32], js: &[u8; 32], nonce: u64, i: u32, j: u32) -> Vec<i32> {
		let a = rows("mlpow v1 activations", &[js, &nonce.to_le_bytes()], p.k, i * p.t, p.t);
		let b = rows("mlpow v1 weights", &[ws], p.k, j * p.t, p.t);
		let (t, k) = (p.t as usize, p.k as usize);
		let mut c = vec![0i32; t * t];
		for r in 0..t {
			for col in 0..t {
				c[r * t + col] = (0..k).map(|x| a[r * k + x] as i32 * b[col * k + x] as i32).sum();
			}
		}
		c
	}
	pub fn tile_key(js: &[u8; 32], nonce: u64, i: u32, j: u32) -> [u8; 32] {
		derive("mlpow v1 tile key", &[js, &nonce.to_le_bytes(), &i.to_le_bytes(), &j.to_le_bytes()])
	}
	pub fn digest(js: &[u8; 32], nonce: u64, i: u32, j: u32, tile: &[i32]) -> [u8; 32] {
		let bytes: Vec<u8> = tile.iter().flat_map(|v| v.to_le_bytes()).collect();
		*blake3::keyed_hash(&tile_key(js, nonce, i, j), &bytes).as_bytes()
	}
	pub fn wins(digest: &[u8; 32], difficulty: primitive_types::U256) -> bool {
		primitive_types::U256::from_big_endian(digest) <= primitive_types::U256::MAX / difficulty
	}
}

#[test]
fn vectors_match_an_independent_transcription_of_the_spec() {
	let file = load();
	assert!(file.sets.len() >= 4);
	for s in &file.sets {
		let p = &s.params;
		assert_eq!(hex::encode(codec::Encode::encode(&p.challenge())), s.params_scale, "{}", s.name);
		let anchor = h32(&s.epoch_anchor);
		let ws = spec::derive("mlpow v1 weights seed", &[&anchor, &s.epoch_index.to_le_bytes()]);
		assert_eq!(hex::encode(ws), s.weights_seed, "{}", s.name);
		let pre = h32(&s.pre_hash);
		let js = spec::derive("mlpow v1 job seed", &[&pre, &ws]);
		assert_eq!(hex::encode(js), s.job_seed, "{}", s.name);
		let wrow = spec::rows("mlpow v1 weights", &[&ws], p.k, p.n - 1, 1);
		let arow = spec::rows("mlpow v1 activations", &[&js, &0u64.to_le_bytes()], p.k, p.m - 1, 1);
		let prefix = |v: &[i8]| hex::encode(v[..32].iter().map(|&x| x as u8).collect::<Vec<_>>());
		assert_eq!(prefix(&wrow), s.weights_last_row_prefix, "{}", s.name);
		assert_eq!(prefix(&arow), s.activations_nonce0_last_row_prefix, "{}", s.name);
		let d = U256::from_dec_str(&s.difficulty).unwrap();
		for tv in &s.tiles {
			let tile = spec::tile(p, &ws, &js, tv.nonce, tv.tile_i, tv.tile_j);
			assert_eq!(tile[0], tv.first, "{} {tv:?}", s.name);
			assert_eq!(tile.iter().fold(0i32, |a, v| a.wrapping_add(*v)), tv.sum, "{} {tv:?}", s.name);
			assert_eq!(hex::encode(spec::tile_key(&js, tv.nonce, tv.tile_i, tv.tile_j)), tv.tile_key);
			let dg = spec::digest(&js, tv.nonce, tv.tile_i, tv.tile_j, &tile);
			assert_eq!(hex::encode(dg), tv.digest, "{} {tv:?}", s.name);
			assert_eq!(spec::wins(&dg, d), tv.wins, "{} {tv:?}", s.name);
		}
		let w = &s.winning_seal;
		let mut seal = w.nonce.to_le_bytes().to_vec();
		seal.extend_from_slice(&w.tile_i.to_le_bytes());
		seal.extend_from_slice(&w.tile_j.to_le_bytes());
		assert_eq!(hex::encode(&seal), w.seal);
		let tile = spec::tile(p, &ws, &js, w.nonce, w.tile_i, w.tile_j);
		let dg = spec::digest(&js, w.nonce, w.tile_i, w.tile_j, &tile);
		assert_eq!(hex::encode(dg), w.digest, "{}", s.name);
		assert!(spec::wins(&dg, d), "{}", s.name);
	}
}

#[test]
fn vectors_match_the_library() {
	for s in &load().sets {
		let (p, ws, pre, d) = inputs(s);
		assert_eq!(stream::weights_seed(&h32(&s.epoch_anchor), s.epoch_index), ws);
		assert_eq!(stream::job_seed(&pre, &ws), h32(&s.job_seed));
		for tv in &s.tiles {
			let seal = Seal { nonce: tv.nonce, tile_i: tv.tile_i, tile_j: tv.tile_j }.to_bytes();
			match verify(&p, &ws, &pre, d, &seal) {
				Ok(v) => assert!(tv.wins && hex::encode(v.digest) == tv.digest, "{} {tv:?}", s.name),
				Err(e) => assert!(!tv.wins && e == VerifyError::AboveTarget, "{} {tv:?} {e:?}", s.name),
			}
			// Difficulty 1: every tile wins, and verify reports its digest.
			let v = verify(&p, &ws, &pre, U256::one(), &seal).unwrap();
			assert_eq!(hex::encode(v.digest), tv.digest);
		}
		let w = &s.winning_seal;
		let v = verify(&p, &ws, &pre, d, &hex::decode(&w.seal).unwrap()).expect("winning seal verifies");
		assert_eq!(hex::encode(v.digest), w.digest);
		assert_eq!(v.seal, Seal { nonce: w.nonce, tile_i: w.tile_i, tile_j: w.tile_j });

		if let Some(want) = &s.product_nonce0_blake3 {
			let weights = EpochWeights::generate(&p, &ws).unwrap();
			let mut search = Search::new(&weights, &pre, d).unwrap();
			search.compute(0);
			let bytes: Vec<u8> = search.product().iter().flat_map(|v| v.to_le_bytes()).collect();
			assert_eq!(&hex::encode(blake3::hash(&bytes).as_bytes()), want, "{}", s.name);
			// The reference miner finds exactly the recorded first winner.
			assert!(w.first_over_all_nonces);
			let found = search.search(0..w.nonce + 1).expect("miner finds the winner");
			assert_eq!(found.seal, v.seal, "{}", s.name);
			assert_eq!(found.digest, v.digest);
		}
	}
}

/// Flipping a bit of a winning seal or of the pre-hash makes a fresh ticket:
/// it wins only with probability 1/difficulty. So every flip must fail, except
/// a rare one that is a genuine winner in its own right, which the independent
/// transcription must confirm (and there can be only a handful).
#[test]
fn flipping_any_bit_of_a_winning_seal_or_pre_hash_fails() {
	for s in &load().sets {
		let (p, ws, pre, d) = inputs(s);
		let seal: Vec<u8> = hex::decode(&s.winning_seal.seal).unwrap();
		let original = verify(&p, &ws, &pre, d, &seal).unwrap();
		let mut genuine = 0;
		let mut check = |pre: &[u8; 32], bad: &[u8], what: String| match verify(&p, &ws, pre, d, bad) {
			Err(VerifyError::AboveTarget | VerifyError::TileOutOfRange) => {}
			Ok(v) => {
				assert_ne!(v.digest, original.digest, "{what}");
				let js = spec::derive("mlpow v1 job seed", &[pre, &ws]);
				let (n, i, j) = (v.seal.nonce, v.seal.tile_i, v.seal.tile_j);
				let dg = spec::digest(&js, n, i, j, &spec::tile(&s.params, &ws, &js, n, i, j));
				assert!(dg == v.digest && spec::wins(&dg, d), "{what}: verify accepted a losing ticket");
				genuine += 1;
			}
			other => panic!("{what}: {other:?}"),
		};
		for bit in 0..seal.len() * 8 {
			let mut bad = seal.clone();
			bad[bit / 8] ^= 1 << (bit % 8);
			check(&pre, &bad, format!("{}: seal bit {bit}", s.name));
		}
		for bit in 0..256 {
			let mut bad = pre;
			bad[bit / 8] ^= 1 << (bit % 8);
			check(&bad, &seal, format!("{}: pre-hash bit {bit}", s.name));
		}
		// 384 fresh tickets at difficulty >= 3000: expect ~0.1 genuine wins.
		assert!(genuine <= 2, "{}: {genuine} flipped seals won", s.name);
		// A seal for this header does not carry over to another epoch's weights.
		let mut other_ws = ws;
		other_ws[0] ^= 1;
		assert_eq!(verify(&p, &other_ws, &pre, d, &seal), Err(VerifyError::AboveTarget));
		// Truncated or extended seals are malformed.
		assert_eq!(verify(&p, &ws, &pre, d, &seal[..15]), Err(VerifyError::MalformedSeal));
		let mut long = seal.clone();
		long.push(0);
		assert_eq!(verify(&p, &ws, &pre, d, &long), Err(VerifyError::MalformedSeal));
	}
}
