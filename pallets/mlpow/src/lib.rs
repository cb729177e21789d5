//! # pallet-mlpow
//!
//! On-chain state of the MatMul proof of work:
//! - the **difficulty** for the next block, retargeted after every block by
//!   ASERT ([`asert`]) from block timestamps;
//! - the **challenge**: the puzzle parameters (`m, k, n, t`, epoch length)
//!   and the epoch's weights seed. Parameter changes are only ever
//!   *scheduled*; they take effect at the next epoch boundary, so a block
//!   being mined under the old parameters never becomes invalid mid-epoch;
//! - the **block reward**, minted to the account in the block's `pow_`
//!   pre-runtime digest (the miner's payout address);
//! - **governance**: extrinsics, gated by a configurable `EnsureOrigin`, that
//!   retune all of the above within bounds.
//!
//! The node reads everything it needs for block `N` at the state of block
//! `N - 1` through runtime APIs: the difficulty (`DifficultyApi`) and the
//! challenge (`MlpowApi::challenge`, which is [`Pallet::challenge`]). So every
//! transition (retarget, new epoch, new parameters) happens in
//! `on_finalize` of the block before the one it applies to.
//!
//! Epochs: epoch 0 covers blocks `1 ..= L0`; each later epoch starts right
//! after the block stored in [`EpochEnd`] and lasts its own `epoch_length`.
//! Its weights seed is `weights_seed(anchor, epoch_index)` from
//! `mlpow-primitives`, where the anchor is the all-zero hash for epoch 0 and,
//! for later epochs, the parent hash of the last block of the previous epoch
//! (the newest block hash a runtime knows while finalising a block).

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod asert;
mod difficulty;
pub mod migrations;
pub mod weights;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hardening;

pub use pallet::*;
pub use weights::WeightInfo;

use mlpow_primitives::{ChallengeParams, Hash32, U256};

pub use mlpow_runtime_api::Challenge;

/// The layout version of this pallet's storage (see [`migrations`]).
pub const STORAGE_VERSION: frame_support::traits::StorageVersion = frame_support::traits::StorageVersion::new(1);

/// Wired as `pallet_timestamp`'s `OnTimestampSet`: a block whose timestamp
/// breaks [`Pallet::check_timestamp`] panics in its timestamp inherent, as
/// `pallet_timestamp` itself does for a timestamp too close to its parent's,
/// so the block is invalid and no node imports it.
impl<T: Config> frame_support::traits::OnTimestampSet<u64> for Pallet<T> {
	fn on_timestamp_set(now: u64) {
		if let Err(e) = Self::check_timestamp(now) {
			panic!("{e}");
		}
	}
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use crate::asert::Anchor;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, Mutate},
			Time,
		},
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::traits::{Saturating, Zero};

	pub type BalanceOf<T> = <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Where block rewards are minted.
		type Currency: Mutate<Self::AccountId>;
		/// Block timestamps (milliseconds), for the retarget.
		type Time: Time<Moment = u64>;
		/// Who may retune difficulty, block time, reward and challenge.
		type GovernanceOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// ASERT half-life, in target block times.
		#[pallet::constant]
		type HalfLifeBlocks: Get<u32>;
		/// The longest solve time a block counts toward ASERT's schedule, in
		/// target block times: a block stamped later than this after its
		/// parent counts as this late. It bounds how much one timestamp can
		/// lower the difficulty (SPEC.md, "Retarget").
		#[pallet::constant]
		type MaxSolveTimeBlocks: Get<u32>;
		/// Largest factor by which one governance change may raise or lower the
		/// difficulty (2: from half to twice the difficulty in force).
		#[pallet::constant]
		type MaxDifficultyStep: Get<u32>;
		/// Lowest difficulty the retarget or governance may set.
		#[pallet::constant]
		type MinDifficulty: Get<U256>;
		/// Highest difficulty the retarget or governance may set.
		#[pallet::constant]
		type MaxDifficulty: Get<U256>;
		/// Bounds of the target block time, in milliseconds.
		#[pallet::constant]
		type MinTargetBlockTime: Get<u64>;
		#[pallet::constant]
		type MaxTargetBlockTime: Get<u64>;
		/// Highest block reward governance may set.
		#[pallet::constant]
		type MaxBlockReward: Get<BalanceOf<Self>>;
		/// Largest `m` or `n` governance may schedule. Tighter than the
		/// consensus rule (2^16) so that a miner's `Bt` and `C` stay a few GiB.
		#[pallet::constant]
		type MaxOuterDimension: Get<u32>;
		/// Weights of this pallet's extrinsics and hooks.
		type WeightInfo: WeightInfo;
	}

	/// Difficulty of the next block.
	#[pallet::storage]
	pub type Difficulty<T> = StorageValue<_, U256, ValueQuery>;

	/// Puzzle parameters in force.
	#[pallet::storage]
	pub type Params<T> = StorageValue<_, ChallengeParams, ValueQuery, DevParams>;

	/// Parameters waiting for the next epoch boundary.
	#[pallet::storage]
	pub type PendingParams<T> = StorageValue<_, ChallengeParams, OptionQuery>;

	/// Weights seed of the current epoch.
	#[pallet::storage]
	pub type WeightsSeed<T> = StorageValue<_, Hash32, ValueQuery>;

	/// Index of the current epoch.
	#[pallet::storage]
	pub type EpochIndex<T> = StorageValue<_, u64, ValueQuery>;

	/// Last block of the current epoch.
	#[pallet::storage]
	pub type EpochEnd<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	/// Target block time, in milliseconds.
	#[pallet::storage]
	pub type TargetBlockTime<T> = StorageValue<_, u64, ValueQuery>;

	/// Reward minted to each block's author.
	#[pallet::storage]
	pub type BlockReward<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

	/// Where ASERT's schedule starts; set by the first block and by every
	/// governance change of difficulty or block time.
	#[pallet::storage]
	pub type RetargetAnchor<T> = StorageValue<_, Anchor, OptionQuery>;

	/// The timestamp of the last block the retarget ran on: the next block's
	/// solve time is measured from it. `None` before block 1.
	#[pallet::storage]
	pub type LastTimestamp<T> = StorageValue<_, u64, OptionQuery>;

	/// A difficulty that governance set during this block; it becomes the new
	/// anchor when the block is finalised.
	#[pallet::storage]
	pub type Reanchor<T> = StorageValue<_, U256, OptionQuery>;

	/// A target block time that governance set during this block; it takes
	/// effect when the block is finalised, after the block's own retarget
	/// step, and restarts the schedule from there.
	#[pallet::storage]
	pub type PendingTargetBlockTime<T> = StorageValue<_, u64, OptionQuery>;

	/// The block in which governance last set the difficulty: the next change
	/// may come `HalfLifeBlocks` blocks later at the earliest.
	#[pallet::storage]
	pub type DifficultySetAt<T: Config> = StorageValue<_, BlockNumberFor<T>, OptionQuery>;

	/// The chain's launch time (milliseconds since the Unix epoch), from the
	/// chain spec: no block may carry an earlier timestamp. Block 1 anchors
	/// the retarget at its own timestamp, so this bounds how far in the past
	/// block 1's miner can put the anchor (see SPEC.md, "Timestamps").
	#[pallet::storage]
	pub type LaunchTime<T> = StorageValue<_, u64, ValueQuery>;

	/// Author of the block being executed, read from its pre-runtime digest.
	#[pallet::storage]
	pub type Author<T: Config> = StorageValue<_, T::AccountId, OptionQuery>;

	pub struct DevParams;
	impl Get<ChallengeParams> for DevParams {
		fn get() -> ChallengeParams {
			ChallengeParams::DEV
		}
	}

	/// The launch time a genesis config gets when it names none:
	/// 2026-11-27 00:00 UTC, in ms since the Unix epoch.
	pub const DEFAULT_LAUNCH_TIME_MS: u64 = 1_795_737_600_000;

	#[pallet::genesis_config]
	pub struct GenesisConfig<T: Config> {
		/// Difficulty of block 1.
		pub difficulty: U256,
		/// Puzzle parameters of epoch 0.
		pub params: ChallengeParams,
		/// Target block time, in milliseconds.
		pub target_block_time_ms: u64,
		/// Reward minted to each block's author.
		pub block_reward: BalanceOf<T>,
		/// Earliest timestamp a block may carry (ms since the Unix epoch).
		pub launch_time_ms: u64,
		#[serde(skip)]
		pub _config: core::marker::PhantomData<T>,
	}

	impl<T: Config> Default for GenesisConfig<T> {
		fn default() -> Self {
			Self {
				difficulty: T::MinDifficulty::get(),
				params: ChallengeParams::DEV,
				target_block_time_ms: 6_000,
				block_reward: Zero::zero(),
				// Not 0 (no bound at all): a spec that leaves the launch time
				// out still refuses timestamps before this project's launch.
				launch_time_ms: DEFAULT_LAUNCH_TIME_MS,
				_config: Default::default(),
			}
		}
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			let params = self.params;
			Pallet::<T>::check_params(&params).expect("genesis challenge parameters must be valid");
			let difficulty = self.difficulty;
			assert!(
				difficulty >= Pallet::<T>::min_difficulty_for(&params) && difficulty <= T::MaxDifficulty::get(),
				"genesis difficulty out of bounds"
			);
			let target = self.target_block_time_ms;
			assert!(
				(T::MinTargetBlockTime::get()..=T::MaxTargetBlockTime::get()).contains(&target),
				"genesis target block time out of bounds"
			);
			assert!(self.block_reward <= T::MaxBlockReward::get(), "genesis block reward above the maximum");
			// Zero would put no lower bound on block 1's timestamp, which then
			// picks the retarget's anchor (SECURITY.md, "The first-week attacks");
			// a spec that leaves it out gets `DEFAULT_LAUNCH_TIME_MS`.
			assert!(
				self.launch_time_ms > 0,
				"genesis mlPow.launchTimeMs must be set: the chain's launch time, in ms since the Unix epoch"
			);
			Difficulty::<T>::put(difficulty);
			Params::<T>::put(params);
			TargetBlockTime::<T>::put(target);
			BlockReward::<T>::put(self.block_reward);
			LaunchTime::<T>::put(self.launch_time_ms);
			EpochIndex::<T>::put(0);
			EpochEnd::<T>::put(BlockNumberFor::<T>::from(params.epoch_length));
			WeightsSeed::<T>::put(mlpow_primitives::stream::weights_seed(&[0; 32], 0));
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// The retarget set the next block's difficulty.
		DifficultyAdjusted { difficulty: U256 },
		/// Governance set the difficulty; the retarget restarts from it.
		DifficultySet { difficulty: U256 },
		/// Governance set the target block time.
		TargetBlockTimeSet { milliseconds: u64 },
		/// Governance set the block reward.
		BlockRewardSet { reward: BalanceOf<T> },
		/// New challenge parameters will apply from the first block after `at_block`.
		ParamsScheduled { params: ChallengeParams, at_block: BlockNumberFor<T> },
		/// A scheduled change was withdrawn.
		ScheduledParamsCancelled,
		/// A new epoch starts with the next block.
		EpochStarted { epoch_index: u64, weights_seed: Hash32, params: ChallengeParams, ends_at: BlockNumberFor<T> },
		/// Scheduled parameters took effect (with the epoch that starts next).
		ParamsApplied { params: ChallengeParams },
		/// Scheduled parameters were dropped at the epoch boundary: by then
		/// their floor (one nonce's tickets) was more than twice the
		/// difficulty rescaled to them.
		ScheduledParamsDropped { params: ChallengeParams },
		/// The parameters changed what a ticket costs; the difficulty was
		/// rescaled to keep a block's work in MACs, and the retarget
		/// restarts from it.
		DifficultyRescaled { difficulty: U256 },
		/// The block's author received the reward.
		Rewarded { author: T::AccountId, amount: BalanceOf<T> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The difficulty is below `MinDifficulty` (or the tickets one nonce
		/// yields, if more) or above `MaxDifficulty`.
		DifficultyOutOfBounds,
		/// The new difficulty is more than `MaxDifficultyStep` times above or
		/// below the difficulty in force.
		DifficultyStepTooLarge,
		/// Governance set the difficulty less than `HalfLifeBlocks` blocks ago.
		DifficultySetTooRecently,
		/// The target block time is outside `MinTargetBlockTime ..= MaxTargetBlockTime`.
		TargetBlockTimeOutOfBounds,
		/// The reward is above `MaxBlockReward`, or non-zero but below the
		/// existential deposit (it could not be minted to a new account).
		RewardOutOfBounds,
		/// Unsupported puzzle version.
		UnsupportedVersion,
		/// A dimension is zero.
		ZeroDimension,
		/// A dimension is not a multiple of 16.
		NotMultipleOf16,
		/// `k` is above 65536: int32 sums could overflow.
		InnerDimensionTooLarge,
		/// `m` or `n` is above `MaxOuterDimension`.
		OuterDimensionTooLarge,
		/// The tile size is above 128.
		TileTooLarge,
		/// The tile size does not divide `m` and `n`.
		TileDoesNotDivide,
		/// Verifying one seal would take more than 2^24 multiply-accumulates.
		VerificationTooExpensive,
		/// Epoch length outside 1 ..= 1,000,000 blocks.
		BadEpochLength,
		/// There is no scheduled change to cancel.
		NothingScheduled,
		/// Under these parameters one nonce yields more than twice the
		/// tickets a block now needs (the difficulty, rescaled to their
		/// ticket cost): the difficulty's floor would jump past the 2x
		/// step governance is allowed.
		FloorTooHigh,
		/// `r` is not 0 under v1, or under v2 not a power of two in 32..=128 dividing `k`, or `k > r*r`.
		BadRank,
		/// v2 openings (`2 * t * k` bytes) above 512 KiB.
		OpeningTooLarge,
	}

	impl<T> From<mlpow_primitives::ParamsError> for Error<T> {
		fn from(e: mlpow_primitives::ParamsError) -> Self {
			use mlpow_primitives::ParamsError as P;
			match e {
				P::UnsupportedVersion => Self::UnsupportedVersion,
				P::ZeroDimension => Self::ZeroDimension,
				P::NotMultipleOf16 => Self::NotMultipleOf16,
				P::InnerDimensionTooLarge => Self::InnerDimensionTooLarge,
				P::OuterDimensionTooLarge => Self::OuterDimensionTooLarge,
				P::TileTooLarge => Self::TileTooLarge,
				P::TileDoesNotDivide => Self::TileDoesNotDivide,
				P::VerificationTooExpensive => Self::VerificationTooExpensive,
				P::BadEpochLength => Self::BadEpochLength,
				P::BadRank => Self::BadRank,
				P::OpeningTooLarge => Self::OpeningTooLarge,
			}
		}
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(_n: BlockNumberFor<T>) -> Weight {
			let mut weight = T::WeightInfo::on_initialize_no_author();
			if let Some(author) = Self::digest_author() {
				Author::<T>::put(author);
				weight = T::WeightInfo::on_initialize_with_author();
			}
			// on_finalize's work is fixed-size: account for it up front.
			weight.saturating_add(T::WeightInfo::on_finalize_new_epoch())
		}

		fn on_finalize(n: BlockNumberFor<T>) {
			Self::reward_author();
			Self::retarget(n);
			if n >= EpochEnd::<T>::get() {
				Self::start_next_epoch(n);
			}
		}
	}

	#[pallet::call(weight(<T as Config>::WeightInfo))]
	impl<T: Config> Pallet<T> {
		/// Sets the next block's difficulty and restarts the retarget's
		/// schedule from it.
		///
		/// Bounded so that no governance majority can halt the chain: the
		/// new value is within `MaxDifficultyStep` (2x) of the difficulty in
		/// force, and changes are at least `HalfLifeBlocks` blocks apart. A
		/// doubling makes blocks come at half speed, so the chain falls
		/// behind ASERT's schedule and the retarget halves the difficulty
		/// again within about one half-life of blocks: the worst a hostile
		/// council can do, doubling at every chance, is to hold blocks at
		/// roughly twice the target time (the pallet's test
		/// `hostile_governance_cannot_halt_the_chain` measures it).
		#[pallet::call_index(0)]
		pub fn set_difficulty(origin: OriginFor<T>, difficulty: U256) -> DispatchResult {
			T::GovernanceOrigin::ensure_origin(origin)?;
			ensure!(
				difficulty >= Self::min_difficulty() && difficulty <= T::MaxDifficulty::get(),
				Error::<T>::DifficultyOutOfBounds
			);
			let current = Difficulty::<T>::get();
			let step = U256::from(T::MaxDifficultyStep::get().max(1));
			ensure!(
				difficulty <= current.saturating_mul(step) && difficulty.saturating_mul(step) >= current,
				Error::<T>::DifficultyStepTooLarge
			);
			let now = frame_system::Pallet::<T>::block_number();
			if let Some(last) = DifficultySetAt::<T>::get() {
				let spacing = BlockNumberFor::<T>::from(T::HalfLifeBlocks::get());
				ensure!(now >= last.saturating_add(spacing), Error::<T>::DifficultySetTooRecently);
			}
			DifficultySetAt::<T>::put(now);
			Reanchor::<T>::put(difficulty);
			Self::deposit_event(Event::DifficultySet { difficulty });
			Ok(())
		}

		/// Sets the target block time (milliseconds). It takes effect when
		/// this block is finalised: the block's own retarget step runs first,
		/// under the old target, and the schedule restarts from its result.
		/// (Were the step skipped, calling this in every block would freeze
		/// the difficulty, and with it undo the bounds of `set_difficulty`.)
		#[pallet::call_index(1)]
		pub fn set_target_block_time(origin: OriginFor<T>, milliseconds: u64) -> DispatchResult {
			T::GovernanceOrigin::ensure_origin(origin)?;
			ensure!(
				(T::MinTargetBlockTime::get()..=T::MaxTargetBlockTime::get()).contains(&milliseconds),
				Error::<T>::TargetBlockTimeOutOfBounds
			);
			PendingTargetBlockTime::<T>::put(milliseconds);
			Self::deposit_event(Event::TargetBlockTimeSet { milliseconds });
			Ok(())
		}

		/// Sets the reward minted to each block's author.
		#[pallet::call_index(2)]
		pub fn set_block_reward(origin: OriginFor<T>, reward: BalanceOf<T>) -> DispatchResult {
			T::GovernanceOrigin::ensure_origin(origin)?;
			ensure!(reward <= T::MaxBlockReward::get(), Error::<T>::RewardOutOfBounds);
			ensure!(reward.is_zero() || reward >= T::Currency::minimum_balance(), Error::<T>::RewardOutOfBounds);
			BlockReward::<T>::put(reward);
			Self::deposit_event(Event::BlockRewardSet { reward });
			Ok(())
		}

		/// Schedules new challenge parameters for the next epoch boundary
		/// (replacing any change already scheduled).
		#[pallet::call_index(3)]
		pub fn schedule_params(origin: OriginFor<T>, params: ChallengeParams) -> DispatchResult {
			T::GovernanceOrigin::ensure_origin(origin)?;
			Self::check_params(&params)?;
			ensure!(Self::floor_within_reach(&params), Error::<T>::FloorTooHigh);
			PendingParams::<T>::put(params);
			Self::deposit_event(Event::ParamsScheduled { params, at_block: EpochEnd::<T>::get() });
			Ok(())
		}

		/// Withdraws the scheduled parameter change.
		#[pallet::call_index(4)]
		pub fn cancel_scheduled_params(origin: OriginFor<T>) -> DispatchResult {
			T::GovernanceOrigin::ensure_origin(origin)?;
			ensure!(PendingParams::<T>::take().is_some(), Error::<T>::NothingScheduled);
			Self::deposit_event(Event::ScheduledParamsCancelled);
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// The challenge for the next block (what `MlpowApi::challenge` returns).
		pub fn challenge() -> Challenge {
			Challenge {
				params: Params::<T>::get(),
				weights_seed: WeightsSeed::<T>::get(),
				epoch_index: EpochIndex::<T>::get(),
			}
		}

		/// The difficulty of the next block (what `DifficultyApi` returns).
		pub fn difficulty() -> U256 {
			Difficulty::<T>::get()
		}

		/// The consensus rules of `mlpow-primitives` plus this chain's bound on `m, n`.
		pub fn check_params(params: &ChallengeParams) -> Result<(), Error<T>> {
			params.validate().map_err(Error::<T>::from)?;
			ensure!(
				params.m <= T::MaxOuterDimension::get() && params.n <= T::MaxOuterDimension::get(),
				Error::<T>::OuterDimensionTooLarge
			);
			Ok(())
		}

		/// The timestamp rule that `pallet_timestamp` leaves out: no block may
		/// be stamped before the chain's launch time. (`pallet_timestamp`
		/// already makes each timestamp at least `MinimumPeriod` after its
		/// parent's, but the genesis block has none, so without this block 1
		/// could be stamped in 1970 and anchor the retarget there.)
		pub fn check_timestamp(now: u64) -> Result<(), &'static str> {
			if now < LaunchTime::<T>::get() {
				return Err("block timestamp is before the chain's launch time");
			}
			Ok(())
		}

		/// The account in the block's `pow_` pre-runtime digest, if it decodes.
		fn digest_author() -> Option<T::AccountId> {
			let digest = frame_system::Pallet::<T>::digest();
			digest.convert_first(|item| item.pre_runtime_try_to::<T::AccountId>(&sp_consensus_pow::POW_ENGINE_ID))
		}

		fn reward_author() {
			let Some(author) = Author::<T>::take() else { return };
			let amount = BlockReward::<T>::get();
			if amount.is_zero() {
				return;
			}
			// Minting can only fail on overflow of total issuance or a reward
			// below the existential deposit; neither may abort a block.
			match T::Currency::mint_into(&author, amount) {
				Ok(minted) => Self::deposit_event(Event::Rewarded { author, amount: minted }),
				Err(e) => log::warn!(target: "mlpow", "block reward not minted: {e:?}"),
			}
		}

		/// Ends the epoch at block `n`: applies scheduled parameters and
		/// derives the next epoch's weights seed.
		fn start_next_epoch(n: BlockNumberFor<T>) {
			let mut params = Params::<T>::get();
			if let Some(pending) = PendingParams::<T>::take() {
				if Self::floor_within_reach(&pending) {
					let (old_cost, new_cost) = (params.macs_per_ticket(), pending.macs_per_ticket());
					params = pending;
					Params::<T>::put(params);
					Self::deposit_event(Event::ParamsApplied { params });
					// Also when only `m` or `n` changed: the new floor may be
					// above the difficulty (by at most 2x, checked above).
					if old_cost != new_cost || Difficulty::<T>::get() < Self::min_difficulty() {
						Self::rescale_difficulty(n, old_cost, new_cost);
					}
				} else {
					// The difficulty fell since the change was scheduled.
					Self::deposit_event(Event::ScheduledParamsDropped { params: pending });
				}
			}
			let epoch_index = EpochIndex::<T>::get().saturating_add(1);
			let anchor = frame_system::Pallet::<T>::parent_hash();
			let mut anchor_bytes = [0u8; 32];
			let raw = anchor.as_ref();
			let len = raw.len().min(32);
			anchor_bytes[..len].copy_from_slice(&raw[..len]);
			let weights_seed = mlpow_primitives::stream::weights_seed(&anchor_bytes, epoch_index);
			let ends_at = n.saturating_add(BlockNumberFor::<T>::from(params.epoch_length));
			EpochIndex::<T>::put(epoch_index);
			WeightsSeed::<T>::put(weights_seed);
			EpochEnd::<T>::put(ends_at);
			Self::deposit_event(Event::EpochStarted { epoch_index, weights_seed, params, ends_at });
		}
	}
}
