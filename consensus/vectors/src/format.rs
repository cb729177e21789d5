//! The format of `golden.json`, shared by its generator
//! (`mlpow-primitives`' `examples/gen_vectors.rs`) and the tests that check
//! it (the primitives', the runtime's, and the worker's CPU and CUDA tests).
//! Every field is described in `consensus/vectors/README.md`.
//!
//! Encodings: byte strings are lowercase hex without `0x`; `u64` and U256
//! values are decimal strings (JavaScript's JSON numbers are doubles, which
//! would round a nonce such as 2^64 - 1); `u32` and `i32` values are JSON
//! numbers.

#![allow(missing_docs)] // each field is documented in consensus/vectors/README.md

use serde::{Deserialize, Serialize};

/// Serde for a `u64` as a decimal string, so the Rust field keeps its type.
pub mod dec_u64 {
	use serde::{de::Error, Deserialize, Deserializer, Serializer};

	pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
		s.serialize_str(&v.to_string())
	}

	pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
		let s = String::deserialize(d)?;
		// Canonical decimal only: no sign, no leading zeros, no spaces.
		if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit()) {
			return Err(D::Error::custom(format!("not a canonical decimal u64: {s:?}")));
		}
		s.parse().map_err(D::Error::custom)
	}
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct VectorFile {
	pub comment: String,
	/// `weights_seed(32 zero bytes, 0)`: what the pallet's genesis stores.
	pub genesis_weights_seed: EpochSeed,
	pub sets: Vec<VectorSet>,
	pub headers: Vec<HeaderVector>,
	pub challenges: Vec<ChallengeVector>,
	pub difficulties: Vec<DifficultyVector>,
	pub verify_errors: Vec<ErrorEncoding>,
	pub verify_cases: Vec<VerifyCase>,
	pub target_boundary: TargetBoundary,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct EpochSeed {
	pub epoch_anchor: String,
	#[serde(with = "dec_u64")]
	pub epoch_index: u64,
	pub weights_seed: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
pub struct Params {
	pub version: u32,
	pub m: u32,
	pub k: u32,
	pub n: u32,
	pub t: u32,
	pub r: u32,
	pub epoch_length: u32,
}

impl Params {
	/// As the primitives' type.
	pub fn challenge(&self) -> mlpow_primitives::ChallengeParams {
		mlpow_primitives::ChallengeParams {
			version: self.version,
			m: self.m,
			k: self.k,
			n: self.n,
			t: self.t,
			r: self.r,
			epoch_length: self.epoch_length,
		}
	}

	pub fn from_challenge(p: &mlpow_primitives::ChallengeParams) -> Self {
		Self { version: p.version, m: p.m, k: p.k, n: p.n, t: p.t, r: p.r, epoch_length: p.epoch_length }
	}
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct VectorSet {
	pub name: String,
	pub params: Params,
	/// SCALE encoding of the params (24 bytes).
	pub params_scale: String,
	/// Hash of the block before the epoch's boundary block (zero for epoch
	/// 0), and the epoch index.
	pub epoch_anchor: String,
	#[serde(with = "dec_u64")]
	pub epoch_index: u64,
	pub weights_seed: String,
	/// Arbitrary 32 bytes standing for a header's pre-seal hash (the
	/// `headers` vectors derive real ones).
	pub pre_hash: String,
	pub job_seed: String,
	pub difficulty: String,
	/// First 32 elements (as bytes) of the last row of Bt.
	pub weights_last_row_prefix: String,
	/// First 32 elements (as bytes) of the last row of A for nonce 0.
	pub activations_nonce0_last_row_prefix: String,
	pub tiles: Vec<TileVector>,
	/// BLAKE3 (plain hash) of the whole product for nonce 0, int32 LE
	/// row-major; only for sets small enough to multiply in a test.
	pub product_nonce0_blake3: Option<String>,
	pub winning_seal: WinningSeal,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct TileVector {
	#[serde(with = "dec_u64")]
	pub nonce: u64,
	pub tile_i: u32,
	pub tile_j: u32,
	pub tile_key: String,
	/// The tile's element (0, 0) and the wrapping sum of its elements, to
	/// tell a wrong product from a wrong hash when porting.
	pub first: i32,
	pub sum: i32,
	pub digest: String,
	pub wins: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct WinningSeal {
	#[serde(with = "dec_u64")]
	pub nonce: u64,
	pub tile_i: u32,
	pub tile_j: u32,
	pub seal: String,
	pub digest: String,
	/// True when this is the first winner in (nonce, tile_i, tile_j) order,
	/// scanning every tile of every nonce from 0 (small sets); false when
	/// only nonce `nonce`'s tiles were scanned in order (GPU-sized sets).
	pub first_over_all_nonces: bool,
}

/// A block header, sealed: how `pre_hash` and the block hash come from it.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct HeaderVector {
	pub name: String,
	pub parent_hash: String,
	pub number: u32,
	pub state_root: String,
	pub extrinsics_root: String,
	/// The digest items before the seal, in order.
	pub digest: Vec<DigestLog>,
	/// SCALE of the header without its seal; `pre_hash` is its BLAKE2b-256.
	pub unsealed_scale: String,
	pub pre_hash: String,
	/// The challenge the header is sealed for (read at its parent).
	pub params: Params,
	pub weights_seed: String,
	pub difficulty: String,
	pub job_seed: String,
	/// The first winning seal for this header, in (nonce, i, j) order.
	pub seal: SealVector,
	/// The seal as the last digest item: `DigestItem::Seal(pow_, seal)`.
	pub seal_item_scale: String,
	/// SCALE of the sealed header; the block hash is its BLAKE2b-256.
	pub sealed_scale: String,
	pub block_hash: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct DigestLog {
	/// `PreRuntime` or `RuntimeEnvironmentUpdated`.
	pub kind: String,
	/// The 4-byte engine id as ASCII (`pow_`), for kinds that carry one.
	pub engine_id: Option<String>,
	/// The item's payload (hex), for kinds that carry one.
	pub data: Option<String>,
	/// The item's SCALE encoding.
	pub scale: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct SealVector {
	#[serde(with = "dec_u64")]
	pub nonce: u64,
	pub tile_i: u32,
	pub tile_j: u32,
	/// The 16 seal bytes.
	pub bytes: String,
	pub digest: String,
}

/// What `MlpowApi::challenge` returns, and its SCALE bytes.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct ChallengeVector {
	pub name: String,
	pub params: Params,
	pub weights_seed: String,
	#[serde(with = "dec_u64")]
	pub epoch_index: u64,
	pub scale: String,
}

/// What `DifficultyApi::difficulty` returns (a U256), and its SCALE bytes.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct DifficultyVector {
	pub value: String,
	pub scale: String,
}

/// One `VerifyError` value (as Rust's `Debug` prints it) and its SCALE bytes.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct ErrorEncoding {
	pub error: String,
	pub scale: String,
}

/// One call of `verify` (and of `MlpowApi::verify_seal` at a parent whose
/// state holds this challenge and difficulty).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct VerifyCase {
	pub name: String,
	pub params: Params,
	pub weights_seed: String,
	pub pre_hash: String,
	pub difficulty: String,
	/// The seal bytes, of any length.
	pub seal: String,
	/// `Ok`, or the `VerifyError` as in `verify_errors`.
	pub outcome: String,
	/// The winning tile's digest, when `Ok`.
	pub digest: Option<String>,
	/// SCALE of `verify_seal`'s arguments `(pre_hash, seal)`.
	pub args_scale: String,
	/// SCALE of `verify_seal`'s result, `Result<SealCheck, VerifyError>`.
	pub result_scale: String,
}

/// The target's boundary: a ticket wins iff its value is at most
/// `floor((2^256 - 1) / difficulty)`.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct TargetBoundary {
	/// The set whose winning seal's digest is used.
	pub set: String,
	pub digest: String,
	/// The digest as a big-endian integer, in decimal.
	pub digest_value: String,
	/// `floor((2^256 - 1) / digest_value)`: the largest difficulty at which
	/// the ticket wins; one more and it loses.
	pub max_winning_difficulty: String,
	/// The targets at `max_winning_difficulty` (>= digest_value) and at one
	/// more (< digest_value).
	pub target_at_max: String,
	pub target_above_max: String,
}
