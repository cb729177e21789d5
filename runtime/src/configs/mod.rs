//! Every pallet's configuration: how the runtime composes FRAME system,
//! timestamp, balances, transaction payment, sudo, the technical council
//! and the MatMul proof-of-work pallet, with the constants that bound each.

// The `derive_impl` preludes name these types too, so they are in scope.
use crate::{
	AccountId, Balance, Balances, Block, BlockNumber, Hash, MlPow, Nonce, PalletInfo, Runtime, RuntimeCall,
	RuntimeEvent, RuntimeFreezeReason, RuntimeHoldReason, RuntimeOrigin, RuntimeTask, System, Timestamp, MILLI_UNIT,
	SS58_PREFIX, UNIT, VERSION,
};
use frame_support::{
	derive_impl,
	dispatch::DispatchClass,
	parameter_types,
	traits::{ConstU128, ConstU32, ConstU64, ConstU8, EitherOfDiverse, VariantCountOf},
	weights::{
		constants::{RocksDbWeight, WEIGHT_REF_TIME_PER_SECOND},
		IdentityFee, Weight,
	},
};
use frame_system::{
	limits::{BlockLength, BlockWeights},
	EnsureRoot,
};
use mlpow_primitives::U256;
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};
use sp_runtime::Perbill;
use sp_version::RuntimeVersion;

const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);
const MAX_BLOCK_LENGTH: u32 = 5 * 1024 * 1024;

parameter_types! {
	pub const Version: RuntimeVersion = VERSION;
	/// Two seconds of compute per block: blocks come every few seconds and
	/// miners must be able to import them well within that.
	pub RuntimeBlockWeights: BlockWeights = BlockWeights::with_sensible_defaults(
		Weight::from_parts(2u64 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
		NORMAL_DISPATCH_RATIO,
	);
	pub RuntimeBlockLength: BlockLength = BlockLength::builder()
		.max_length(MAX_BLOCK_LENGTH)
		.modify_max_length_for_class(DispatchClass::Normal, |max| *max = NORMAL_DISPATCH_RATIO * *max)
		.build();
	pub const SS58Prefix: u16 = SS58_PREFIX;
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
	type Block = Block;
	type BlockWeights = RuntimeBlockWeights;
	type BlockLength = RuntimeBlockLength;
	type AccountId = AccountId;
	type Nonce = Nonce;
	type Hash = Hash;
	type BlockHashCount = ConstU32<2400>;
	type DbWeight = RocksDbWeight;
	type Version = Version;
	type AccountData = pallet_balances::AccountData<Balance>;
	type SS58Prefix = SS58Prefix;
	type MaxConsumers = ConstU32<16>;
}

impl pallet_timestamp::Config for Runtime {
	type Moment = u64;
	/// Refuses timestamps before the chain's launch time (the rule that
	/// keeps block 1 from anchoring the retarget in the past).
	type OnTimestampSet = MlPow;
	/// PoW blocks can come in quick succession; the timestamp only has to
	/// increase. The retarget, not this, keeps the pace.
	type MinimumPeriod = ConstU64<50>;
	type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
	type MaxLocks = ConstU32<50>;
	type MaxReserves = ();
	type ReserveIdentifier = [u8; 8];
	type Balance = Balance;
	type RuntimeEvent = RuntimeEvent;
	type DustRemoval = ();
	type ExistentialDeposit = ConstU128<MILLI_UNIT>;
	type AccountStore = System;
	type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
	type FreezeIdentifier = RuntimeFreezeReason;
	type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RuntimeFreezeReason = RuntimeFreezeReason;
	type DoneSlashHandler = ();
}

parameter_types! {
	pub FeeMultiplier: Multiplier = Multiplier::from_u32(1);
}

impl pallet_transaction_payment::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	/// Fees are burned: the block reward is what pays miners.
	type OnChargeTransaction = FungibleAdapter<Balances, ()>;
	type OperationalFeeMultiplier = ConstU8<5>;
	type WeightToFee = IdentityFee<Balance>;
	type LengthToFee = IdentityFee<Balance>;
	type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
	type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

/// The technical council: the collective whose motions retune the chain.
pub type CouncilCollective = pallet_collective::Instance1;

/// Who may retune the chain (difficulty, block time, reward, challenge
/// parameters) and change the council itself: Root (sudo on dev chains), or
/// a council motion carried by at least two thirds of the members.
pub type RootOrCouncilTwoThirds = EitherOfDiverse<
	EnsureRoot<AccountId>,
	pallet_collective::EnsureProportionAtLeast<AccountId, CouncilCollective, 2, 3>,
>;

parameter_types! {
	/// A motion may run for a day of 6 s blocks before anyone can close it
	/// as failed; a motion that reaches its threshold closes at once.
	pub const CouncilMotionDuration: BlockNumber = 14_400;
	/// A motion may use at most half a block.
	pub MaxCouncilProposalWeight: Weight = Perbill::from_percent(50) * RuntimeBlockWeights::get().max_block;
}

impl pallet_collective::Config<CouncilCollective> for Runtime {
	type RuntimeOrigin = RuntimeOrigin;
	type Proposal = RuntimeCall;
	type RuntimeEvent = RuntimeEvent;
	type MotionDuration = CouncilMotionDuration;
	type MaxProposals = ConstU32<32>;
	type MaxMembers = ConstU32<32>;
	type DefaultVote = pallet_collective::PrimeDefaultVote;
	type WeightInfo = pallet_collective::weights::SubstrateWeight<Runtime>;
	type SetMembersOrigin = RootOrCouncilTwoThirds;
	type MaxProposalWeight = MaxCouncilProposalWeight;
	type DisapproveOrigin = RootOrCouncilTwoThirds;
	type KillOrigin = RootOrCouncilTwoThirds;
	/// No deposit: only members can propose, and there are few of them.
	type Consideration = ();
}

parameter_types! {
	/// The retarget never goes below this (a few hundred tickets per block
	/// keep block times random enough to be a lottery).
	pub const MinDifficulty: U256 = U256([1_000, 0, 0, 0]);
	/// 2^192: far beyond any hashrate, far from overflow.
	pub const MaxDifficulty: U256 = U256([0, 0, 0, 1]);
}

impl pallet_mlpow::Config for Runtime {
	type Currency = Balances;
	type Time = Timestamp;
	type GovernanceOrigin = RootOrCouncilTwoThirds;
	/// 16 blocks: after a 10x hashrate step the expected block time is back
	/// within 10% of target in 90 blocks (step up) or 55 (step down), as the
	/// pallet's `retarget_converges_and_holds_the_block_time` test prints.
	type HalfLifeBlocks = ConstU32<16>;
	type MaxSolveTimeBlocks = ConstU32<6>;
	type MaxDifficultyStep = ConstU32<2>;
	type MinDifficulty = MinDifficulty;
	type MaxDifficulty = MaxDifficulty;
	type MinTargetBlockTime = ConstU64<500>;
	type MaxTargetBlockTime = ConstU64<3_600_000>;
	type MaxBlockReward = ConstU128<{ 1_000 * UNIT }>;
	/// 16384: Bt of a GPU set (n x k) stays at most 1 GiB at k = 65536.
	type MaxOuterDimension = ConstU32<16_384>;
	type WeightInfo = pallet_mlpow::weights::SubstrateWeight<Runtime>;
}
