//! The golden-vector file format (`consensus/vectors/golden.json`), shared by
//! the generator (`examples/gen_vectors.rs`) and the tests that check it.
//! Byte strings are lowercase hex; U256 values are decimal strings.

#![allow(dead_code)]

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct VectorFile {
	pub comment: String,
	pub sets: Vec<VectorSet>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
pub struct Params {
	pub version: u32,
	pub m: u32,
	pub k: u32,
	pub n: u32,
	pub t: u32,
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
			epoch_length: self.epoch_length,
		}
	}
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct VectorSet {
	pub name: String,
	pub params: Params,
	/// SCALE encoding of the params (24 bytes).
	pub params_scale: String,
	/// Hash of the block before the epoch, and the epoch index.
	pub epoch_anchor: String,
	pub epoch_index: u64,
	pub weights_seed: String,
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
