//! Who governs the composed runtime: Root, or two thirds of the council,
//! and nobody else. These run the real runtime (natively) on the genesis
//! state of its presets; the pallet's own tests cover the bounds checks.

mod common;

use codec::Encode;
use common::ext;
use frame_support::{assert_noop, assert_ok, dispatch::GetDispatchInfo, traits::Hooks};
use mlpow_primitives::U256;
use mlpow_runtime::{
	genesis_config_presets as genesis, AccountId, Council, CouncilCollective, MlPow, Runtime, RuntimeCall,
	RuntimeEvent, RuntimeOrigin, System,
};
use sp_genesis_builder::{DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};
use sp_keyring::Sr25519Keyring::{Alice, Bob, Dave};
use sp_runtime::{
	traits::{Dispatchable, Hash as _},
	DispatchError,
};

fn signed(who: sp_keyring::Sr25519Keyring) -> RuntimeOrigin {
	RuntimeOrigin::signed(who.to_account_id())
}

fn set_difficulty(d: u64) -> RuntimeCall {
	RuntimeCall::MlPow(pallet_mlpow::Call::set_difficulty { difficulty: U256::from(d) })
}

/// Every governance call of the pallet, each with an in-range value.
fn governance_calls() -> Vec<RuntimeCall> {
	use pallet_mlpow::Call;
	vec![
		set_difficulty(300_000),
		RuntimeCall::MlPow(Call::set_target_block_time { milliseconds: 4_000 }),
		RuntimeCall::MlPow(Call::set_block_reward { reward: 5 * mlpow_runtime::UNIT }),
		RuntimeCall::MlPow(Call::schedule_params { params: mlpow_primitives::ChallengeParams::DEV }),
	]
}

/// The council, in genesis order (the pallet keeps it sorted).
fn council_members() -> Vec<AccountId> {
	let mut members = pallet_collective::Members::<Runtime, CouncilCollective>::get();
	let order = genesis::council();
	members.sort_by_key(|m| order.iter().position(|o| o == m));
	members
}

fn members_origin(yes: u32, of: u32) -> RuntimeOrigin {
	pallet_collective::RawOrigin::<AccountId, CouncilCollective>::Members(yes, of).into()
}

#[test]
fn dev_has_sudo_local_has_only_the_council() {
	ext(DEV_RUNTIME_PRESET).execute_with(|| {
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(Alice.to_account_id()));
		assert_eq!(council_members(), genesis::council());
	});
	ext(LOCAL_TESTNET_RUNTIME_PRESET).execute_with(|| {
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), None);
		assert_eq!(council_members(), genesis::council());
		// With no key, sudo is refused to everyone, Alice included.
		let call = Box::new(set_difficulty(300_000));
		assert!(pallet_sudo::Pallet::<Runtime>::sudo(signed(Alice), call).is_err());
	});
}

#[test]
fn root_and_two_thirds_of_the_council_govern_nobody_else_does() {
	ext(LOCAL_TESTNET_RUNTIME_PRESET).execute_with(|| {
		for call in governance_calls() {
			for origin in
				[signed(Alice), signed(Dave), RuntimeOrigin::none(), members_origin(1, 3), members_origin(1, 2)]
			{
				let label = format!("{call:?} by {origin:?}");
				let err = call.clone().dispatch(origin).expect_err(&label).error;
				assert_eq!(err, DispatchError::BadOrigin, "{label}");
			}
			for origin in [members_origin(2, 3), members_origin(3, 3), RuntimeOrigin::root()] {
				// Difficulty changes must be a half-life apart; each origin
				// here is tried as if it were the first.
				pallet_mlpow::DifficultySetAt::<Runtime>::kill();
				assert_ok!(call.clone().dispatch(origin));
			}
		}
		// The council's own membership follows the same rule.
		let reshuffle = RuntimeCall::Council(pallet_collective::Call::set_members {
			new_members: vec![Alice.to_account_id(), Bob.to_account_id()],
			prime: None,
			old_count: 3,
		});
		assert_eq!(reshuffle.clone().dispatch(signed(Alice)).unwrap_err().error, DispatchError::BadOrigin);
		assert_ok!(reshuffle.dispatch(members_origin(2, 3)));
		assert_eq!(pallet_collective::Members::<Runtime, CouncilCollective>::get().len(), 2);
	});
}

/// The same motion the JavaScript end-to-end test makes through
/// Polkadot.js: Alice proposes with threshold 2 (a proposer's vote is not
/// implied), Alice and Bob vote aye, anyone closes.
#[test]
fn a_council_motion_retunes_the_difficulty() {
	ext(LOCAL_TESTNET_RUNTIME_PRESET).execute_with(|| {
		let call = set_difficulty(250_000);
		let len = call.encoded_size() as u32;
		let hash = <Runtime as frame_system::Config>::Hashing::hash_of(&call);
		let weight = call.get_dispatch_info().call_weight;

		// A non-member cannot even propose.
		assert_noop!(
			Council::propose(signed(Dave), 2, Box::new(call.clone()), len),
			pallet_collective::Error::<Runtime, CouncilCollective>::NotMember
		);
		assert_ok!(Council::propose(signed(Alice), 2, Box::new(call.clone()), len));
		assert_ok!(Council::vote(signed(Alice), hash, 0, true));
		// One aye of three is not enough to close early.
		assert_noop!(
			Council::close(signed(Dave), hash, 0, weight, len),
			pallet_collective::Error::<Runtime, CouncilCollective>::TooEarly
		);
		assert_ok!(Council::vote(signed(Bob), hash, 0, true));
		assert_ok!(Council::close(signed(Dave), hash, 0, weight, len));

		let events: Vec<_> = System::events().into_iter().map(|r| r.event).collect();
		assert!(events
			.contains(&RuntimeEvent::MlPow(pallet_mlpow::Event::DifficultySet { difficulty: U256::from(250_000) })));
		let executed = events.iter().any(|e| {
			matches!(e, RuntimeEvent::Council(pallet_collective::Event::Executed { proposal_hash, result })
				if *proposal_hash == hash && result.is_ok())
		});
		assert!(executed, "{events:#?}");

		// The next block is mined at exactly the new difficulty.
		MlPow::on_finalize(1);
		assert_eq!(MlPow::difficulty(), U256::from(250_000));
	});
}
