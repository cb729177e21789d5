//! # mlpow-primitives
//!
//! The MatMul proof-of-work puzzle, exactly as `consensus/SPEC.md` defines it.
//! Every party that decides validity uses this crate: the node's import path
//! (natively), the runtime (`no_std`, compiled to Wasm), and the CPU mining
//! backend. GPU backends reimplement the generation and hashing on the device
//! and are tested against the same golden vectors (`consensus/vectors/`).
//!
//! The layers, bottom up:
//! - [`params`]: the shape of the puzzle and the bounds that keep it safe;
//! - [`seal`]: the 16-byte seal carried in headers;
//! - [`stream`]: seeds and the seekable BLAKE3 streams the matrices come from;
//! - [`kernel`]: exact int8 x int8 -> int32 matrix products;
//! - [`ticket`]: tile digests and the difficulty target;
//! - [`verify`]: the total verification function;
//! - [`mine`]: the reference miner (full product, every tile);
//! - [`v2`]: puzzle v2, tickets from any matrices with noise and a transcript.

#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod kernel;
pub mod mine;
pub mod params;
pub mod seal;
pub mod stream;
pub mod ticket;
pub mod v2;
pub mod verify;

pub use params::{ChallengeParams, ParamsError, PUZZLE_V1, PUZZLE_V2, PUZZLE_VERSION};
pub use primitive_types::U256;
pub use seal::{Seal, SEAL_LEN};
pub use ticket::{meets_target, target, tile_digest};
pub use v2::seal::MAX_LEN as MAX_SEAL_LEN;
pub use verify::{verify, Verified, VerifyError};

/// A 32-byte hash or seed.
pub type Hash32 = [u8; 32];
