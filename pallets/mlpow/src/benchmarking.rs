//! Benchmarks of the governance calls and the worst-case hooks (frame-benchmarking v2).

use super::*;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Inspect, Get, Hooks};
use frame_system::pallet_prelude::BlockNumberFor;

#[benchmarks]
mod benchmarks {
	use super::*;
	use frame_support::traits::EnsureOrigin;

	fn gov<T: Config>() -> T::RuntimeOrigin {
		T::GovernanceOrigin::try_successful_origin().expect("governance origin must be constructible in benchmarks")
	}

	#[benchmark]
	fn set_difficulty() {
		// The difficulty in force: always within the 2x step of itself.
		let d = Difficulty::<T>::get().max(Pallet::<T>::min_difficulty());
		let origin = gov::<T>();
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, d);
		assert_eq!(Reanchor::<T>::get(), Some(d));
	}

	#[benchmark]
	fn set_target_block_time() {
		let ms = T::MinTargetBlockTime::get();
		let origin = gov::<T>();
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, ms);
		assert_eq!(PendingTargetBlockTime::<T>::get(), Some(ms));
	}

	#[benchmark]
	fn set_block_reward() {
		let reward = T::Currency::minimum_balance();
		let origin = gov::<T>();
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, reward);
		assert_eq!(BlockReward::<T>::get(), reward);
	}

	#[benchmark]
	fn schedule_params() {
		let params = ChallengeParams { m: 128, ..ChallengeParams::DEV };
		let origin = gov::<T>();
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, params);
		assert_eq!(PendingParams::<T>::get(), Some(params));
	}

	#[benchmark]
	fn cancel_scheduled_params() {
		PendingParams::<T>::put(ChallengeParams::DEV);
		let origin = gov::<T>();
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin);
		assert_eq!(PendingParams::<T>::get(), None);
	}

	#[benchmark]
	fn on_initialize_no_author() {
		#[block]
		{
			Pallet::<T>::on_initialize(1u32.into());
		}
	}

	#[benchmark]
	fn on_initialize_with_author() {
		let author: T::AccountId = account("author", 0, 0);
		frame_system::Pallet::<T>::deposit_log(sp_runtime::DigestItem::PreRuntime(
			sp_consensus_pow::POW_ENGINE_ID,
			codec::Encode::encode(&author),
		));
		#[block]
		{
			Pallet::<T>::on_initialize(1u32.into());
		}
		assert!(Author::<T>::get().is_some());
	}

	#[benchmark]
	fn on_finalize_new_epoch() {
		let author: T::AccountId = account("author", 0, 0);
		Author::<T>::put(author);
		BlockReward::<T>::put(T::Currency::minimum_balance());
		PendingParams::<T>::put(ChallengeParams { m: 128, ..ChallengeParams::DEV });
		let n: BlockNumberFor<T> = EpochEnd::<T>::get().max(1u32.into());
		RetargetAnchor::<T>::put(asert::Anchor { height: 0, timestamp: 0, difficulty: Difficulty::<T>::get() });
		#[block]
		{
			Pallet::<T>::on_finalize(n);
		}
		assert_eq!(EpochIndex::<T>::get(), 1);
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
