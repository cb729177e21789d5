//! The timestamp rules of the composed runtime: no block before the chain
//! spec's launch time (the attack where block 1 is stamped in 1970 to anchor
//! the retarget there).

mod common;

use common::ext;
use mlpow_runtime::{genesis_config_presets as genesis, Runtime, RuntimeOrigin};
use sp_genesis_builder::{DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};

/// Block 1's timestamp inherent, as the block's author set it.
fn stamp_block_one(name: &str, millis: u64) -> std::thread::Result<()> {
	let mut ext = ext(name);
	// The externalities are dropped after a panic, never reused.
	std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
		ext.execute_with(|| {
			pallet_timestamp::Pallet::<Runtime>::set(RuntimeOrigin::none(), millis).expect("inherent dispatch");
		})
	}))
}

#[test]
fn block_one_stamped_before_the_launch_time_is_invalid() {
	for name in [DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET] {
		let launch = genesis::LAUNCH_TIME_MS;
		ext(name).execute_with(|| assert_eq!(pallet_mlpow::LaunchTime::<Runtime>::get(), launch, "{name}"));
		// 50 ms after 1970: what the attack stamps. The inherent panics, so
		// the block does not execute and no node imports it.
		assert!(stamp_block_one(name, 50).is_err(), "{name}: 1970");
		assert!(stamp_block_one(name, launch - 1).is_err(), "{name}: a millisecond early");
		assert!(stamp_block_one(name, launch).is_ok(), "{name}: at launch");
		assert!(stamp_block_one(name, launch + 3_600_000).is_ok(), "{name}: an hour after");
	}
}
