//! Weights of the mlpow pallet's extrinsics and hooks.
//!
//! How these were set: every call and hook here does a fixed amount of work
//! (no loops over user data), so its weight is its storage accesses, priced
//! by the runtime's `DbWeight` (counted by hand below, per function), plus
//! a compute part, measured by the `measure_compute` test in `tests.rs`:
//!
//! ```text
//! cargo test --release -p pallet-mlpow -- --ignored --nocapture measure_compute
//! ```
//!
//! Median native times on the development machine (2-core x86_64, mock
//! runtime with in-memory storage, 2000 runs each, commit after `fe69754`):
//!
//! | call or hook | measured | charged |
//! |---|---|---|
//! | `set_difficulty` | 1.4 us | 10 us |
//! | `set_target_block_time` | 1.3 us | 10 us |
//! | `set_block_reward` | 1.2 us | 10 us |
//! | `schedule_params` | 1.9 us | 10 us |
//! | `cancel_scheduled_params` | 1.4 us | 10 us |
//! | `on_initialize` (with author) | 0.3 us | 2 us |
//! | `on_finalize` (reward, retarget, new epoch with new params) | 8.1 us | 50 us |
//!
//! The charge is 6-7x the native measurement, because the chain executes
//! the Wasm build (this logic runs in Wasm; storage and hashing go through
//! native host functions) on machines slower than this one. For scale,
//! pallet-sudo 50.0.0's own benchmarked weights for `set_key`, a call of the
//! same shape (one storage write, one event), are 7.2 us of Wasm on
//! Substrate's reference hardware (its `weights.rs`). Proof size: every item is `MaxEncodedLen`-bounded
//! and at most a few hundred bytes; 1 KiB is charged per function.
//! `benchmarking.rs` has frame-benchmarking benchmarks of the same paths
//! (`cargo test -p pallet-mlpow --features runtime-benchmarks` runs them in
//! the mock; not in CI, because the feature rebuilds the whole FRAME stack),
//! ready for a benchmarking CLI when the node gets one.

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, RuntimeDbWeight, Weight},
};

/// Weight functions needed by the pallet.
pub trait WeightInfo {
	fn set_difficulty() -> Weight;
	fn set_target_block_time() -> Weight;
	fn set_block_reward() -> Weight;
	fn schedule_params() -> Weight;
	fn cancel_scheduled_params() -> Weight;
	fn on_initialize_no_author() -> Weight;
	fn on_initialize_with_author() -> Weight;
	/// The worst case of `on_finalize`: reward, retarget and a new epoch.
	fn on_finalize_new_epoch() -> Weight;
}

/// Proof size charged per call or hook, in bytes.
const PROOF_BYTES: u64 = 1_024;

/// `micros` of compute (see the table above) and the proof size.
fn compute(micros: u64) -> Weight {
	Weight::from_parts(micros * 1_000_000, PROOF_BYTES)
}

/// The formulas, priced with database weights `D`.
pub struct Priced<D>(PhantomData<D>);

/// Weights priced with the runtime's database weights.
pub type SubstrateWeight<T> = Priced<<T as frame_system::Config>::DbWeight>;

impl<D: Get<RuntimeDbWeight>> WeightInfo for Priced<D> {
	// Reads: Difficulty, Params (the floor), DifficultySetAt, block number.
	// Writes: Reanchor, DifficultySetAt.
	fn set_difficulty() -> Weight {
		compute(10).saturating_add(D::get().reads_writes(4, 2))
	}
	// Writes: PendingTargetBlockTime.
	fn set_target_block_time() -> Weight {
		compute(10).saturating_add(D::get().writes(1))
	}
	// Reads: none (existential deposit is a constant). Writes: BlockReward.
	fn set_block_reward() -> Weight {
		compute(10).saturating_add(D::get().writes(1))
	}
	// Reads: EpochEnd, Params, Difficulty (the floor check). Writes: PendingParams.
	fn schedule_params() -> Weight {
		compute(10).saturating_add(D::get().reads_writes(3, 1))
	}
	// Reads/writes: PendingParams.
	fn cancel_scheduled_params() -> Weight {
		compute(10).saturating_add(D::get().reads_writes(1, 1))
	}
	// Reads: Digest.
	fn on_initialize_no_author() -> Weight {
		compute(2).saturating_add(D::get().reads(1))
	}
	// Reads: Digest. Writes: Author.
	fn on_initialize_with_author() -> Weight {
		compute(2).saturating_add(D::get().reads_writes(1, 1))
	}
	// Reads: Author, BlockReward, the author's account, total issuance,
	// Reanchor, PendingTargetBlockTime, RetargetAnchor, TargetBlockTime,
	// Difficulty, timestamp, LastTimestamp, EpochEnd, Params, PendingParams,
	// EpochIndex, ParentHash.
	// Writes: Author, the author's account, total issuance, Difficulty,
	// TargetBlockTime, RetargetAnchor, LastTimestamp, Params, PendingParams, EpochIndex,
	// WeightsSeed, EpochEnd, events. (Counted from the code after the
	// hardening changes; the compute figure is the earlier measurement.)
	fn on_finalize_new_epoch() -> Weight {
		compute(50).saturating_add(D::get().reads_writes(16, 13))
	}
}

/// For tests: the same formulas with the reference database weights.
impl WeightInfo for () {
	fn set_difficulty() -> Weight {
		Priced::<RocksDbWeight>::set_difficulty()
	}
	fn set_target_block_time() -> Weight {
		Priced::<RocksDbWeight>::set_target_block_time()
	}
	fn set_block_reward() -> Weight {
		Priced::<RocksDbWeight>::set_block_reward()
	}
	fn schedule_params() -> Weight {
		Priced::<RocksDbWeight>::schedule_params()
	}
	fn cancel_scheduled_params() -> Weight {
		Priced::<RocksDbWeight>::cancel_scheduled_params()
	}
	fn on_initialize_no_author() -> Weight {
		Priced::<RocksDbWeight>::on_initialize_no_author()
	}
	fn on_initialize_with_author() -> Weight {
		Priced::<RocksDbWeight>::on_initialize_with_author()
	}
	fn on_finalize_new_epoch() -> Weight {
		Priced::<RocksDbWeight>::on_finalize_new_epoch()
	}
}
