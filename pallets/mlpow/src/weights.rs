//! Weights of the mlpow pallet's extrinsics and hooks.
//!
//! How these were set: every call and hook here does a fixed amount of work
//! (no loops over user data), so its weight is its storage accesses, priced
//! by the runtime's `DbWeight`, plus a compute part. The largest compute
//! item is one BLAKE3 `derive_key` of 40 bytes (the weights seed, well
//! under a microsecond); the rest is SCALE coding of a few fixed-size
//! values and one ASERT evaluation (a handful of 512-bit multiplications).
//! We charge 25 µs of compute per call, several times what dispatches of
//! this size measure on reference hardware, so the weights stay safe on
//! slower machines. Proof size: every item is `MaxEncodedLen`-bounded and
//! at most a few hundred bytes. `benchmarking.rs` holds frame-benchmarking
//! benchmarks of each path (`cargo test -p pallet-mlpow --features
//! runtime-benchmarks` runs them in the mock; not in CI, because the
//! feature rebuilds the whole FRAME stack), to regenerate these figures with
//! a benchmarking CLI when one is added to the node.

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

/// Compute charged per call or hook, in picoseconds.
const COMPUTE_PS: u64 = 25_000_000;
/// Proof size charged per call or hook, in bytes.
const PROOF_BYTES: u64 = 1_024;

fn compute() -> Weight {
	Weight::from_parts(COMPUTE_PS, PROOF_BYTES)
}

/// The formulas, priced with database weights `D`.
pub struct Priced<D>(PhantomData<D>);

/// Weights priced with the runtime's database weights.
pub type SubstrateWeight<T> = Priced<<T as frame_system::Config>::DbWeight>;

impl<D: Get<RuntimeDbWeight>> WeightInfo for Priced<D> {
	// Reads: none. Writes: Reanchor.
	fn set_difficulty() -> Weight {
		compute().saturating_add(D::get().writes(1))
	}
	// Reads: Reanchor, Difficulty. Writes: TargetBlockTime, Reanchor.
	fn set_target_block_time() -> Weight {
		compute().saturating_add(D::get().reads_writes(2, 2))
	}
	// Reads: none (existential deposit is a constant). Writes: BlockReward.
	fn set_block_reward() -> Weight {
		compute().saturating_add(D::get().writes(1))
	}
	// Reads: EpochEnd. Writes: PendingParams.
	fn schedule_params() -> Weight {
		compute().saturating_add(D::get().reads_writes(1, 1))
	}
	// Reads/writes: PendingParams.
	fn cancel_scheduled_params() -> Weight {
		compute().saturating_add(D::get().reads_writes(1, 1))
	}
	// Reads: Digest.
	fn on_initialize_no_author() -> Weight {
		compute().saturating_add(D::get().reads(1))
	}
	// Reads: Digest. Writes: Author.
	fn on_initialize_with_author() -> Weight {
		compute().saturating_add(D::get().reads_writes(1, 1))
	}
	// Reads: Author, BlockReward, the author's account, total issuance,
	// Reanchor, RetargetAnchor, TargetBlockTime, Difficulty, timestamp,
	// EpochEnd, Params, PendingParams, EpochIndex, ParentHash.
	// Writes: Author, the author's account, total issuance, Difficulty,
	// Params, PendingParams, EpochIndex, WeightsSeed, EpochEnd, events.
	fn on_finalize_new_epoch() -> Weight {
		compute().saturating_add(D::get().reads_writes(14, 10))
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
