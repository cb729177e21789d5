//! A minimal runtime for the pallet's tests: system, balances, a settable
//! clock, and the pallet with Root as its governance origin.

use crate as pallet_mlpow;
use frame_support::{derive_impl, parameter_types, traits::Time};
use frame_system::EnsureRoot;
use mlpow_primitives::{ChallengeParams, U256};
use sp_runtime::{BuildStorage, Digest, DigestItem};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u128;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		MlPow: pallet_mlpow,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type AccountStore = System;
	type ExistentialDeposit = ExistentialDeposit;
}

parameter_types! {
	pub const ExistentialDeposit: Balance = 10;
	/// The mock clock, in milliseconds.
	pub static Now: u64 = 0;
	pub const MinDifficulty: U256 = U256([16, 0, 0, 0]);
	pub const MaxDifficulty: U256 = U256([0, 0, 0, 1 << 32]);
}

pub struct MockTime;
impl Time for MockTime {
	type Moment = u64;
	fn now() -> u64 {
		Now::get()
	}
}

impl pallet_mlpow::Config for Test {
	type Currency = Balances;
	type Time = MockTime;
	type GovernanceOrigin = EnsureRoot<AccountId>;
	type HalfLifeBlocks = frame_support::traits::ConstU32<16>;
	type MaxSolveTimeBlocks = frame_support::traits::ConstU32<6>;
	type MaxDifficultyStep = frame_support::traits::ConstU32<2>;
	type MinDifficulty = MinDifficulty;
	type MaxDifficulty = MaxDifficulty;
	type MinTargetBlockTime = frame_support::traits::ConstU64<500>;
	type MaxTargetBlockTime = frame_support::traits::ConstU64<3_600_000>;
	type MaxBlockReward = frame_support::traits::ConstU128<1_000_000>;
	type MaxOuterDimension = frame_support::traits::ConstU32<16_384>;
	type WeightInfo = ();
}

pub const TARGET_MS: u64 = 6_000;
pub const GENESIS_DIFFICULTY: u64 = 100_000;
pub const REWARD: Balance = 1_000;
/// The chain's launch time; the mock clock starts there.
pub const LAUNCH_MS: u64 = 1_700_000_000_000;
/// Dev parameters with a short epoch, so tests cross boundaries quickly.
pub const PARAMS: ChallengeParams = ChallengeParams { epoch_length: 5, ..ChallengeParams::DEV };

pub fn new_test_ext() -> sp_io::TestExternalities {
	let storage = RuntimeGenesisConfig {
		system: Default::default(),
		balances: Default::default(),
		ml_pow: pallet_mlpow::GenesisConfig {
			difficulty: U256::from(GENESIS_DIFFICULTY),
			params: PARAMS,
			target_block_time_ms: TARGET_MS,
			block_reward: REWARD,
			launch_time_ms: LAUNCH_MS,
			_config: Default::default(),
		},
	}
	.build_storage()
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| Now::set(LAUNCH_MS));
	ext
}

/// A parent hash that differs per block, so epoch seeds differ.
pub fn parent_hash_of(n: u64) -> sp_core::H256 {
	sp_core::H256::repeat_byte((n % 251) as u8 + 1)
}

/// Runs block `System::block_number() + 1` whose timestamp is `elapsed_ms`
/// after the previous one, authored by `author` (through a `pow_`
/// pre-runtime digest carrying the encoded account, as the node writes it).
pub fn run_block(author: Option<AccountId>, elapsed_ms: u64) -> u64 {
	use frame_support::traits::Hooks;
	let n = System::block_number() + 1;
	let mut digest = Digest::default();
	if let Some(a) = author {
		digest.push(DigestItem::PreRuntime(sp_consensus_pow::POW_ENGINE_ID, codec::Encode::encode(&a)));
	}
	System::reset_events();
	System::initialize(&n, &parent_hash_of(n), &digest);
	MlPow::on_initialize(n);
	Now::set(Now::get() + elapsed_ms);
	MlPow::on_finalize(n);
	n
}
