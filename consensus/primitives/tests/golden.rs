//! Recomputes `consensus/vectors/golden.json` two ways:
//! 1. an independent transcription of SPEC.md written here with nothing but
//!    the `blake3` crate and naive loops (context strings spelled out, not
//!    imported), so a change to the library's constants or streams fails;
//! 2. the library's own API (`verify`, `Search`, `compute_tile`).
//!
//! Every miner backend (CPU, CUDA) and the runtime are tested against this
//! same file (`runtime/tests/header_vectors.rs` checks the headers and the
//! runtime API encodings with the real `sp_runtime` and runtime types).
//! The file's fields: `consensus/vectors/README.md`.

use mlpow_vectors::format::*;

use mlpow_primitives::{
	mine::{EpochWeights, Search},
	stream, verify, ChallengeParams, Seal, VerifyError, U256,
};

const GOLDEN: &str = mlpow_vectors::GOLDEN;

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
	/// SPEC "Parameters": the first rule broken, in SPEC's order.
	pub fn params_error(p: &super::Params) -> Option<&'static str> {
		let dims = [p.m, p.k, p.n, p.t];
		let rules = [
			(p.version != 1, "UnsupportedVersion"),
			(dims.contains(&0), "ZeroDimension"),
			(dims.iter().any(|d| d % 16 != 0), "NotMultipleOf16"),
			(p.k > 65536, "InnerDimensionTooLarge"),
			(p.m > 65536 || p.n > 65536, "OuterDimensionTooLarge"),
			(p.t > 128, "TileTooLarge"),
			(!p.m.is_multiple_of(p.t) || !p.n.is_multiple_of(p.t), "TileDoesNotDivide"),
			(p.t as u64 * p.t as u64 * p.k as u64 > 1 << 24, "VerificationTooExpensive"),
			(p.epoch_length == 0 || p.epoch_length > 1_000_000, "BadEpochLength"),
			(p.r != 0, "BadRank"),
		];
		rules.iter().find(|r| r.0).map(|r| r.1)
	}
	/// SPEC "Verification", steps 1 to 6: the digest, or the error's name.
	pub fn verify(p: &super::Params, ws: &[u8; 32], pre: &[u8; 32], d: &str, seal: &[u8]) -> Result<[u8; 32], String> {
		if let Some(e) = params_error(p) {
			return Err(format!("BadParams({e})"));
		}
		let d = primitive_types::U256::from_dec_str(d).unwrap();
		if d.is_zero() {
			return Err("ZeroDifficulty".into());
		}
		if seal.len() != 16 {
			return Err("MalformedSeal".into());
		}
		let nonce = u64::from_le_bytes(seal[..8].try_into().unwrap());
		let i = u32::from_le_bytes(seal[8..12].try_into().unwrap());
		let j = u32::from_le_bytes(seal[12..].try_into().unwrap());
		if i >= p.m / p.t || j >= p.n / p.t {
			return Err("TileOutOfRange".into());
		}
		let js = derive("mlpow v1 job seed", &[pre, ws]);
		let dg = digest(&js, nonce, i, j, &tile(p, ws, &js, nonce, i, j));
		if wins(&dg, d) {
			Ok(dg)
		} else {
			Err("AboveTarget".into())
		}
	}
}

/// SCALE, written out by hand from SPEC "SCALE encodings" (no `codec`).
mod scale {
	pub fn compact(n: u64) -> Vec<u8> {
		match n {
			0..=63 => vec![(n as u8) << 2],
			64..=16_383 => ((n as u16) << 2 | 0b01).to_le_bytes().to_vec(),
			16_384..=1_073_741_823 => ((n as u32) << 2 | 0b10).to_le_bytes().to_vec(),
			_ => {
				let bytes = n.to_le_bytes();
				let len = 8 - n.leading_zeros() as usize / 8;
				let mut out = vec![(((len - 4) as u8) << 2) | 0b11];
				out.extend_from_slice(&bytes[..len]);
				out
			}
		}
	}
	/// A `Vec<u8>`: compact length, then the bytes.
	pub fn bytes(b: &[u8]) -> Vec<u8> {
		[compact(b.len() as u64), b.to_vec()].concat()
	}
	/// `DigestItem::PreRuntime` (tag 6) or `Seal` (tag 5): tag, 4-byte engine id, bytes.
	pub fn engine_item(tag: u8, engine: &[u8; 4], data: &[u8]) -> Vec<u8> {
		[vec![tag], engine.to_vec(), bytes(data)].concat()
	}
	/// `VerifyError`: variant index, then `ParamsError`'s index for `BadParams`.
	pub fn verify_error(name: &str) -> Vec<u8> {
		const PARAMS: [&str; 11] = [
			"UnsupportedVersion",
			"ZeroDimension",
			"NotMultipleOf16",
			"InnerDimensionTooLarge",
			"OuterDimensionTooLarge",
			"TileTooLarge",
			"TileDoesNotDivide",
			"VerificationTooExpensive",
			"BadEpochLength",
			"BadRank",
			"OpeningTooLarge",
		];
		const OTHERS: [&str; 6] = [
			"ZeroDifficulty",
			"MalformedSeal",
			"TileOutOfRange",
			"AboveTarget",
			"OpeningOutOfRange",
			"OpeningMismatch",
		];
		if let Some(inner) = name.strip_prefix("BadParams(").and_then(|r| r.strip_suffix(')')) {
			return vec![0, PARAMS.iter().position(|p| *p == inner).expect("a ParamsError") as u8];
		}
		vec![1 + OTHERS.iter().position(|p| *p == name).expect("a VerifyError") as u8]
	}
	/// `Result<SealCheck, VerifyError>`: 0 then the 32-byte digest, or 1 then the error.
	pub fn verify_result(r: &Result<[u8; 32], String>) -> Vec<u8> {
		match r {
			Ok(d) => [&[0u8][..], d].concat(),
			Err(e) => [vec![1], verify_error(e)].concat(),
		}
	}
}

fn blake2_256(data: &[u8]) -> [u8; 32] {
	use blake2::{digest::consts::U32, Blake2b, Digest};
	Blake2b::<U32>::digest(data).into()
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

/// SPEC "Seeds": epoch 0's anchor is 32 zero bytes, so every epoch-0 set
/// uses the seed that the pallet's genesis stores.
#[test]
fn epoch_zero_uses_the_zero_anchor_and_the_genesis_seed() {
	let file = load();
	let g = &file.genesis_weights_seed;
	assert_eq!((g.epoch_anchor.as_str(), g.epoch_index), (hex::encode([0u8; 32]).as_str(), 0));
	let ws = spec::derive("mlpow v1 weights seed", &[&[0u8; 32], &0u64.to_le_bytes()]);
	assert_eq!(hex::encode(ws), g.weights_seed);
	assert_eq!(stream::weights_seed(&[0; 32], 0), ws);
	for s in file.sets.iter().filter(|s| s.epoch_index == 0) {
		assert_eq!((&s.epoch_anchor, &s.weights_seed), (&g.epoch_anchor, &g.weights_seed), "{}", s.name);
	}
	assert!(file.sets.iter().any(|s| s.epoch_index == 0), "a set for epoch 0");
}

#[test]
fn headers_hash_to_their_pre_hash_and_carry_a_winning_seal() {
	for h in &load().headers {
		let mut items: Vec<Vec<u8>> = Vec::new();
		for log in &h.digest {
			let item = match log.kind.as_str() {
				"PreRuntime" => {
					let engine: [u8; 4] = log.engine_id.as_deref().unwrap().as_bytes().try_into().unwrap();
					scale::engine_item(6, &engine, &hex::decode(log.data.as_deref().unwrap()).unwrap())
				}
				"RuntimeEnvironmentUpdated" => vec![8],
				other => panic!("{}: unexpected digest item {other}", h.name),
			};
			assert_eq!(hex::encode(&item), log.scale, "{}", h.name);
			items.push(item);
		}
		let encode = |items: &[Vec<u8>]| {
			let mut out = h32(&h.parent_hash).to_vec();
			out.extend(scale::compact(h.number as u64));
			out.extend(h32(&h.state_root));
			out.extend(h32(&h.extrinsics_root));
			out.extend(scale::compact(items.len() as u64));
			out.extend(items.concat());
			out
		};
		let unsealed = encode(&items);
		assert_eq!(hex::encode(&unsealed), h.unsealed_scale, "{}", h.name);
		let pre = blake2_256(&unsealed);
		assert_eq!(hex::encode(pre), h.pre_hash, "{}", h.name);

		let ws = h32(&h.weights_seed);
		let js = spec::derive("mlpow v1 job seed", &[&pre, &ws]);
		assert_eq!(hex::encode(js), h.job_seed, "{}", h.name);
		let seal = &h.seal;
		let mut bytes = seal.nonce.to_le_bytes().to_vec();
		bytes.extend(seal.tile_i.to_le_bytes());
		bytes.extend(seal.tile_j.to_le_bytes());
		assert_eq!(hex::encode(&bytes), seal.bytes, "{}", h.name);
		assert_eq!(spec::verify(&h.params, &ws, &pre, &h.difficulty, &bytes), Ok(h32(&seal.digest)), "{}", h.name);
		let d = U256::from_dec_str(&h.difficulty).unwrap();
		assert_eq!(hex::encode(verify(&h.params.challenge(), &ws, &pre, d, &bytes).unwrap().digest), seal.digest);

		let seal_item = scale::engine_item(5, b"pow_", &bytes);
		assert_eq!(hex::encode(&seal_item), h.seal_item_scale, "{}", h.name);
		items.push(seal_item);
		let sealed = encode(&items);
		assert_eq!(hex::encode(&sealed), h.sealed_scale, "{}", h.name);
		assert_eq!(hex::encode(blake2_256(&sealed)), h.block_hash, "{}", h.name);
	}
}

#[test]
fn compact_encoding_covers_every_mode_of_the_header_numbers() {
	let numbers: Vec<u32> = load().headers.iter().map(|h| h.number).collect();
	let first_bytes: Vec<u8> = numbers.iter().map(|&n| scale::compact(n as u64)[0] & 0b11).collect();
	assert_eq!(first_bytes, [0b00, 0b01, 0b10, 0b11], "{numbers:?}");
	for n in [0u64, 1, 63, 64, 16_383, 16_384, (1 << 30) - 1, 1 << 30, u32::MAX as u64, u64::MAX] {
		assert_eq!(scale::compact(n), codec::Encode::encode(&codec::Compact(n)), "{n}");
	}
}

#[test]
fn runtime_api_encodings() {
	let file = load();
	for c in &file.challenges {
		let s = file.sets.iter().find(|s| s.name == c.name).unwrap();
		assert_eq!((&c.params, &c.weights_seed, c.epoch_index), (&s.params, &s.weights_seed, s.epoch_index));
		let p = &c.params;
		let fields = [p.version, p.m, p.k, p.n, p.t, p.r, p.epoch_length];
		let mut want: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
		want.extend(h32(&c.weights_seed));
		want.extend(c.epoch_index.to_le_bytes());
		assert_eq!(hex::encode(&want), c.scale, "{}", c.name);
	}
	for d in &file.difficulties {
		// Four u64 limbs, least significant first, each LE: the number LE.
		let mut be = U256::from_dec_str(&d.value).unwrap().to_big_endian();
		be.reverse();
		assert_eq!(hex::encode(be), d.scale, "{}", d.value);
	}
	assert_eq!(file.verify_errors.len(), 17, "11 ParamsErrors and 6 other VerifyErrors");
	for e in &file.verify_errors {
		assert_eq!(hex::encode(scale::verify_error(&e.error)), e.scale, "{}", e.error);
	}
	let outcomes: std::collections::BTreeSet<&str> = file.verify_cases.iter().map(|c| c.outcome.as_str()).collect();
	// The v2-only errors have their cases in v2.json (tests/v2_vectors.rs).
	let v2_only = ["BadParams(OpeningTooLarge)", "OpeningOutOfRange", "OpeningMismatch"];
	for e in file.verify_errors.iter().filter(|e| !v2_only.contains(&e.error.as_str())) {
		assert!(outcomes.contains(e.error.as_str()), "a verify case fails with {}", e.error);
	}
}

#[test]
fn verify_cases_fail_where_the_spec_says() {
	for c in &load().verify_cases {
		let (ws, pre, seal) = (h32(&c.weights_seed), h32(&c.pre_hash), hex::decode(&c.seal).unwrap());
		let want = spec::verify(&c.params, &ws, &pre, &c.difficulty, &seal);
		let recorded = match &c.digest {
			Some(digest) => {
				assert_eq!(c.outcome, "Ok", "{}", c.name);
				Ok(h32(digest))
			}
			None => Err(c.outcome.clone()),
		};
		assert_eq!(want, recorded, "{}", c.name);
		assert_eq!(hex::encode(scale::verify_result(&want)), c.result_scale, "{}", c.name);
		assert_eq!(hex::encode([&pre[..], &scale::bytes(&seal)].concat()), c.args_scale, "{}", c.name);
		let d = U256::from_dec_str(&c.difficulty).unwrap();
		let got = verify(&c.params.challenge(), &ws, &pre, d, &seal).map(|v| v.digest);
		assert_eq!(hex::encode(codec::Encode::encode(&got)), c.result_scale, "{}: {got:?}", c.name);
		assert_eq!(got.map_err(|e| format!("{e:?}")), want, "{}", c.name);
	}
}

#[test]
fn target_boundary_is_exact() {
	let file = load();
	let b = &file.target_boundary;
	let v = U256::from_big_endian(&h32(&b.digest));
	assert_eq!(v.to_string(), b.digest_value);
	let d = U256::from_dec_str(&b.max_winning_difficulty).unwrap();
	let (at, above) = (U256::MAX / d, U256::MAX / (d + 1));
	assert_eq!((at.to_string(), above.to_string()), (b.target_at_max.clone(), b.target_above_max.clone()));
	assert!(above < v && v <= at, "the digest sits between the two targets");
	let s = file.sets.iter().find(|s| s.name == b.set).unwrap();
	assert_eq!(s.winning_seal.digest, b.digest);
	let (p, ws, pre, _) = inputs(s);
	let seal = hex::decode(&s.winning_seal.seal).unwrap();
	assert!(verify(&p, &ws, &pre, d, &seal).is_ok());
	assert_eq!(verify(&p, &ws, &pre, d + 1, &seal), Err(VerifyError::AboveTarget));
	let cases: Vec<_> = file.verify_cases.iter().filter(|c| c.seal == s.winning_seal.seal).collect();
	for (difficulty, outcome) in [(d, "Ok"), (d + 1, "AboveTarget")] {
		let found = cases.iter().any(|c| c.difficulty == difficulty.to_string() && c.outcome == outcome);
		assert!(found, "a verify case at difficulty {difficulty} with outcome {outcome}");
	}
}

/// JavaScript reads JSON numbers as doubles: every number in the file is a
/// `u32` or an `i32`, and every `u64` or U256 a decimal string.
#[test]
fn every_json_number_fits_in_32_bits() {
	fn walk(v: &serde_json::Value) {
		match v {
			serde_json::Value::Number(n) => {
				let fits = n.as_i64().is_some_and(|x| (i32::MIN as i64..=u32::MAX as i64).contains(&x));
				assert!(fits, "{n} must be a decimal string");
			}
			serde_json::Value::Array(items) => items.iter().for_each(walk),
			serde_json::Value::Object(fields) => fields.values().for_each(walk),
			_ => {}
		}
	}
	walk(&serde_json::from_str(GOLDEN).unwrap());
}
