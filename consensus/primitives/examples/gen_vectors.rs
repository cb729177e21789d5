//! Regenerates the golden vectors:
//! `cargo run --release -p mlpow-primitives --example gen-vectors > consensus/vectors/golden.json`
//!
//! Only after a deliberate consensus change (with SPEC.md changed alongside),
//! or a change of the file's layout: `tests/golden.rs` recomputes this file
//! independently and fails on any difference. The fields are described in
//! `consensus/vectors/README.md`.

use blake2::{digest::consts::U32, Blake2b, Digest};
use codec::Encode;
use mlpow_primitives::{
	mine::{EpochWeights, Search},
	stream::{job_seed, weights_seed, MatrixStream},
	ticket::TileHasher,
	verify::compute_tile,
	ChallengeParams, Hash32, ParamsError, Seal, VerifyError, U256,
};
use mlpow_vectors::format::*;

/// The dev chain's genesis difficulty (`runtime/src/genesis.rs`): the
/// challenge of block 1 on a fresh dev chain, used by the header vectors.
const DEV_GENESIS_DIFFICULTY: u64 = 200_000;

/// Alice's sr25519 public key (`//Alice`), the author in the header vectors.
const ALICE: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

fn hex32(b: &[u8]) -> String {
	hex::encode(b)
}

fn arbitrary(what: &str) -> Hash32 {
	*blake3::hash(what.as_bytes()).as_bytes()
}

fn blake2_256(data: &[u8]) -> Hash32 {
	Blake2b::<U32>::digest(data).into()
}

fn set(name: &str, p: ChallengeParams, difficulty: u64, anchor: Hash32, epoch_index: u64, small: bool) -> VectorSet {
	let ws = weights_seed(&anchor, epoch_index);
	let pre_hash = arbitrary(&format!("pre_hash {name}"));
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
		params: Params::from_challenge(&p),
		params_scale: hex::encode(p.encode()),
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

/// `sp_runtime::generic::DigestItem`, as far as this chain uses it: the
/// variants' SCALE indices are sp-runtime's `DigestItemType`.
#[derive(Encode, Clone)]
enum DigestItem {
	#[codec(index = 5)]
	Seal([u8; 4], Vec<u8>),
	#[codec(index = 6)]
	PreRuntime([u8; 4], Vec<u8>),
	#[codec(index = 8)]
	RuntimeEnvironmentUpdated,
}

/// `sp_runtime::generic::Header<u32, BlakeTwo256>`, field for field.
#[derive(Encode)]
struct Header {
	parent_hash: Hash32,
	#[codec(compact)]
	number: u32,
	state_root: Hash32,
	extrinsics_root: Hash32,
	digest: Vec<DigestItem>,
}

fn digest_log(item: &DigestItem) -> DigestLog {
	let scale = hex::encode(item.encode());
	match item {
		DigestItem::PreRuntime(id, data) | DigestItem::Seal(id, data) => DigestLog {
			kind: if matches!(item, DigestItem::Seal(..)) { "Seal" } else { "PreRuntime" }.into(),
			engine_id: Some(String::from_utf8(id.to_vec()).unwrap()),
			data: Some(hex::encode(data)),
			scale,
		},
		DigestItem::RuntimeEnvironmentUpdated => {
			DigestLog { kind: "RuntimeEnvironmentUpdated".into(), engine_id: None, data: None, scale }
		}
	}
}

/// A header sealed with the first winning seal of the dev chain's genesis
/// challenge, as a miner of the block after its parent would.
fn header(name: &str, number: u32, digest: Vec<DigestItem>, weights: &EpochWeights) -> HeaderVector {
	let p = *weights.params();
	let mut h = Header {
		parent_hash: arbitrary(&format!("parent_hash {name}")),
		number,
		state_root: arbitrary(&format!("state_root {name}")),
		extrinsics_root: arbitrary(&format!("extrinsics_root {name}")),
		digest: digest.clone(),
	};
	let unsealed = h.encode();
	let pre_hash = blake2_256(&unsealed);
	let d = U256::from(DEV_GENESIS_DIFFICULTY);
	let v = Search::new(weights, &pre_hash, d).unwrap().search(0..10_000_000).expect("a winner");
	let seal_item = DigestItem::Seal(*b"pow_", v.seal.to_bytes().to_vec());
	h.digest.push(seal_item.clone());
	let sealed = h.encode();
	HeaderVector {
		name: name.into(),
		parent_hash: hex32(&h.parent_hash),
		number,
		state_root: hex32(&h.state_root),
		extrinsics_root: hex32(&h.extrinsics_root),
		digest: digest.iter().map(digest_log).collect(),
		unsealed_scale: hex::encode(&unsealed),
		pre_hash: hex32(&pre_hash),
		params: Params::from_challenge(&p),
		weights_seed: hex32(weights.seed()),
		difficulty: d.to_string(),
		job_seed: hex32(&job_seed(&pre_hash, weights.seed())),
		seal: SealVector {
			nonce: v.seal.nonce,
			tile_i: v.seal.tile_i,
			tile_j: v.seal.tile_j,
			bytes: hex::encode(v.seal.to_bytes()),
			digest: hex32(&v.digest),
		},
		seal_item_scale: hex::encode(seal_item.encode()),
		sealed_scale: hex::encode(&sealed),
		block_hash: hex32(&blake2_256(&sealed)),
	}
}

fn headers() -> Vec<HeaderVector> {
	let weights = EpochWeights::generate(&ChallengeParams::DEV, &weights_seed(&[0; 32], 0)).unwrap();
	let alice: Hash32 = hex::decode(ALICE).unwrap().try_into().unwrap();
	// The payload is the SCALE of an AccountId32: its 32 bytes, no length.
	let author = DigestItem::PreRuntime(*b"pow_", alice.encode());
	vec![
		// Compact block numbers in each of SCALE's four modes.
		header("block-1", 1, vec![author.clone()], &weights),
		header("two-byte-number", 1_000, vec![author.clone()], &weights),
		header(
			"four-byte-number-runtime-upgrade",
			1_000_000,
			vec![author, DigestItem::RuntimeEnvironmentUpdated],
			&weights,
		),
		header("big-number-no-author", u32::MAX, vec![], &weights),
	]
}

fn challenge(s: &VectorSet) -> ChallengeVector {
	let ws: Hash32 = hex::decode(&s.weights_seed).unwrap().try_into().unwrap();
	ChallengeVector {
		name: s.name.clone(),
		params: s.params,
		weights_seed: s.weights_seed.clone(),
		epoch_index: s.epoch_index,
		scale: hex::encode((s.params.challenge(), ws, s.epoch_index).encode()),
	}
}

fn difficulties() -> Vec<DifficultyVector> {
	let ascending: Vec<u8> = (1..=32).collect();
	[
		U256::from(1_000),
		U256::from(DEV_GENESIS_DIFFICULTY),
		U256::one() << 192,
		U256::from_big_endian(&ascending),
		U256::MAX,
	]
	.iter()
	.map(|d| DifficultyVector { value: d.to_string(), scale: hex::encode(d.encode()) })
	.collect()
}

fn all_errors() -> Vec<VerifyError> {
	let mut all: Vec<VerifyError> = ParamsError::ALL.into_iter().map(VerifyError::BadParams).collect();
	all.extend([VerifyError::ZeroDifficulty, VerifyError::MalformedSeal, VerifyError::TileOutOfRange]);
	all.extend([VerifyError::AboveTarget, VerifyError::OpeningOutOfRange, VerifyError::OpeningMismatch]);
	all
}

fn verify_case(name: &str, s: &VectorSet, p: ChallengeParams, difficulty: U256, seal: &[u8]) -> VerifyCase {
	let h = |x: &str| -> Hash32 { hex::decode(x).unwrap().try_into().unwrap() };
	let (ws, pre) = (h(&s.weights_seed), h(&s.pre_hash));
	let result = mlpow_primitives::verify(&p, &ws, &pre, difficulty, seal).map(|v| v.digest);
	VerifyCase {
		name: name.into(),
		params: Params::from_challenge(&p),
		weights_seed: s.weights_seed.clone(),
		pre_hash: s.pre_hash.clone(),
		difficulty: difficulty.to_string(),
		seal: hex::encode(seal),
		outcome: match &result {
			Ok(_) => "Ok".into(),
			Err(e) => format!("{e:?}"),
		},
		digest: result.as_ref().ok().map(|d| hex32(d)),
		args_scale: hex::encode((pre, seal.to_vec()).encode()),
		result_scale: hex::encode(result.encode()),
	}
}

/// The winning ticket's value `v` wins iff `v <= floor(MAX / d)` iff
/// `d <= floor(MAX / v)`. A difficulty whose target equals `v` exactly
/// exists only if `v` is one of the values `floor(MAX / d)`, which a digest
/// hits with probability about `d^2 / 2^256`: so the boundary is pinned by
/// the largest winning difficulty and the next one up.
fn target_boundary(s: &VectorSet) -> (TargetBoundary, U256) {
	let v = U256::from_big_endian(&hex::decode(&s.winning_seal.digest).unwrap());
	let d = U256::MAX / v;
	let boundary = TargetBoundary {
		set: s.name.clone(),
		digest: s.winning_seal.digest.clone(),
		digest_value: v.to_string(),
		max_winning_difficulty: d.to_string(),
		target_at_max: (U256::MAX / d).to_string(),
		target_above_max: (U256::MAX / (d + 1)).to_string(),
	};
	(boundary, d)
}

fn verify_cases(s: &VectorSet, boundary: U256) -> Vec<VerifyCase> {
	let p = s.params.challenge();
	let d = U256::from_dec_str(&s.difficulty).unwrap();
	let win = hex::decode(&s.winning_seal.seal).unwrap();
	let w = &s.winning_seal;
	let at = |i: u32, j: u32| Seal { nonce: w.nonce, tile_i: i, tile_j: j }.to_bytes().to_vec();
	let with = |f: fn(&mut ChallengeParams)| {
		let mut q = p;
		f(&mut q);
		q
	};
	let losing = &s.tiles.iter().find(|t| !t.wins).expect("a losing tile");
	let lose = Seal { nonce: losing.nonce, tile_i: losing.tile_i, tile_j: losing.tile_j }.to_bytes();
	let mut long = win.clone();
	long.push(0);
	vec![
		verify_case("winning seal", s, p, d, &win),
		// Checks run in SPEC order: bad parameters beat a zero difficulty and an empty seal.
		verify_case("version 0, zero difficulty, empty seal", s, with(|q| q.version = 0), U256::zero(), &[]),
		verify_case("k = 0", s, with(|q| q.k = 0), d, &win),
		verify_case("m = 72", s, with(|q| q.m = 72), d, &win),
		verify_case("k = 65552", s, with(|q| q.k = 65_552), d, &win),
		verify_case("n = 65552", s, with(|q| q.n = 65_552), d, &win),
		verify_case("t = 144", s, with(|q| (q.m, q.n, q.t) = (288, 288, 144)), d, &win),
		verify_case("t = 48 does not divide m = 64", s, with(|q| q.t = 48), d, &win),
		verify_case("t*t*k = 2^25", s, with(|q| (q.m, q.k, q.n, q.t) = (128, 2048, 128, 128)), d, &win),
		verify_case("epoch_length = 0", s, with(|q| q.epoch_length = 0), d, &win),
		verify_case("epoch_length = 1000001", s, with(|q| q.epoch_length = 1_000_001), d, &win),
		verify_case("v1 with r = 32", s, with(|q| q.r = 32), d, &win),
		verify_case("zero difficulty, 15-byte seal", s, p, U256::zero(), &win[..15]),
		verify_case("empty seal", s, p, d, &[]),
		verify_case("15-byte seal", s, p, d, &win[..15]),
		verify_case("17-byte seal", s, p, d, &long),
		verify_case("tile_i = m/t", s, p, d, &at(p.tiles_m(), 0)),
		verify_case("tile_j = n/t", s, p, d, &at(0, p.tiles_n())),
		verify_case("tile_i = 2^32 - 1", s, p, d, &at(u32::MAX, 0)),
		verify_case("losing tile", s, p, d, &lose),
		verify_case("winning seal at the largest winning difficulty", s, p, boundary, &win),
		verify_case("winning seal at one more", s, p, boundary + 1, &win),
	]
}

fn main() {
	let p = |m, k, n, t, epoch_length| ChallengeParams { version: 1, m, k, n, t, r: 0, epoch_length };
	let anchor = |name: &str| arbitrary(&format!("anchor {name}"));
	// Difficulties are high enough that flipping any bit of a winning seal
	// or pre-hash loses (tests/golden.rs checks every flip). The dev set is
	// epoch 0 of a dev chain: zero anchor, the genesis weights seed.
	let sets = vec![
		set("dev", ChallengeParams::DEV, 5000, [0; 32], 0, true),
		set("non-square", p(32, 80, 96, 16, 10), 5000, anchor("non-square"), 5, true),
		set("tile-32", p(64, 48, 128, 32, 1), 3000, anchor("tile-32"), 1_000_000_007, true),
		set("gpu", ChallengeParams::GPU, 3000, anchor("gpu"), 2, false),
	];
	let (boundary, boundary_difficulty) = target_boundary(&sets[0]);
	let file = VectorFile {
		comment: "MatMul PoW golden vectors; rules in consensus/SPEC.md, fields in consensus/vectors/README.md; \
			regenerate only with a consensus change"
			.into(),
		genesis_weights_seed: EpochSeed {
			epoch_anchor: hex32(&[0; 32]),
			epoch_index: 0,
			weights_seed: hex32(&weights_seed(&[0; 32], 0)),
		},
		headers: headers(),
		challenges: sets.iter().map(challenge).collect(),
		difficulties: difficulties(),
		verify_errors: all_errors()
			.iter()
			.map(|e| ErrorEncoding { error: format!("{e:?}"), scale: hex::encode(e.encode()) })
			.collect(),
		verify_cases: verify_cases(&sets[0], boundary_difficulty),
		target_boundary: boundary,
		sets,
	};
	println!("{}", one_line_leaves(&serde_json::to_string_pretty(&file).unwrap()));
}

/// serde_json's pretty output with each object below the top two levels
/// that holds no array put on one line (a ticket, a case, a parameter set):
/// keeps the file short enough to read. serde_json indents by two spaces,
/// puts every value on its own line and escapes newlines inside strings.
fn one_line_leaves(pretty: &str) -> String {
	let lines: Vec<&str> = pretty.lines().collect();
	let indent = |l: &str| l.len() - l.trim_start().len();
	let mut out = Vec::new();
	let mut i = 0;
	while i < lines.len() {
		let line = lines[i];
		if line.ends_with('{') && indent(line) >= 4 {
			let close = (i + 1..lines.len())
				.find(|&j| indent(lines[j]) == indent(line) && lines[j].trim_start().starts_with('}'))
				.expect("a closing brace");
			if !lines[i + 1..close].iter().any(|l| l.ends_with('[')) {
				let inner: Vec<&str> = lines[i + 1..close].iter().map(|l| l.trim()).collect();
				out.push(format!("{line} {} {}", inner.join(" "), lines[close].trim()));
				i = close + 1;
				continue;
			}
		}
		out.push(line.to_string());
		i += 1;
	}
	out.join("\n")
}
