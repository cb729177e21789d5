//! # mlpow-runtime-api
//!
//! What the runtime tells the outside world about the puzzle. The node calls
//! it at a block's parent to learn what that block must solve; miners get
//! the same through the node's mining RPC; light tools (Polkadot.js
//! `api.call.mlpowApi.*`) can check a seal through the runtime itself, which
//! runs the very `mlpow-primitives` code compiled to Wasm.
//!
//! The difficulty comes through the standard `sp_consensus_pow::DifficultyApi`.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode};
use mlpow_primitives::{ChallengeParams, Hash32, VerifyError};
use scale_info::TypeInfo;

/// The challenge that the next block (the child of the block the API is
/// called at) must solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct Challenge {
	/// Puzzle parameters in force.
	pub params: ChallengeParams,
	/// The epoch's weights seed.
	pub weights_seed: Hash32,
	/// The epoch's index.
	pub epoch_index: u64,
}

/// A seal that passed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct SealCheck {
	/// The winning tile's digest (the ticket value; lower is rarer).
	pub digest: Hash32,
}

sp_api::decl_runtime_apis! {
	/// The MatMul proof-of-work challenge and seal check.
	pub trait MlpowApi {
		/// The challenge for the next block.
		fn challenge() -> Challenge;
		/// Checks `seal` for a header with pre-seal hash `pre_hash` that
		/// would be the next block, at the current difficulty: the same
		/// verification the node runs natively on import.
		fn verify_seal(pre_hash: Hash32, seal: Vec<u8>) -> Result<SealCheck, VerifyError>;
	}
}
