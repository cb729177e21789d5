//! The pallets whose benchmarks the runtime carries (feature
//! `runtime-benchmarks`), as `benchmark pallet` lists and runs them through
//! the `Benchmark` runtime API (`apis.rs`).

use crate::Runtime;

// The system and baseline benchmarks need nothing of the runtime beyond
// what frame-system already has.
impl frame_system_benchmarking::Config for Runtime {}
impl frame_benchmarking::baseline::Config for Runtime {}

frame_benchmarking::define_benchmarks!(
	[frame_benchmarking, BaselineBench::<Runtime>]
	[frame_system, SystemBench::<Runtime>]
	[pallet_balances, Balances]
	[pallet_timestamp, Timestamp]
	[pallet_sudo, Sudo]
	[pallet_collective, Council]
	[pallet_mlpow, MlPow]
);
