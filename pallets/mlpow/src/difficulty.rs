//! The difficulty's rules, beside the pallet's storage and calls: ASERT
//! after every block (with governance's re-anchors and target changes), the
//! floor of one nonce's tickets, and the rescale when new parameters change
//! what a ticket costs. SPEC.md, "Chain rules around the seal", states them.

use crate::{
	asert::{self, Anchor},
	pallet::*,
};
use frame_support::traits::{Get, Time};
use frame_system::pallet_prelude::BlockNumberFor;
use mlpow_primitives::{ChallengeParams, U256};
use sp_runtime::traits::SaturatedConversion;

impl<T: Config> Pallet<T> {
	/// The lowest difficulty under parameters `params`: `MinDifficulty`,
	/// or the tickets one nonce yields if that is more. Below one nonce's
	/// tickets a block is no longer a lottery: a single product (one GPU
	/// nonce, 262,144 tickets at the GPU preset) would hold a winner
	/// almost surely, and the fastest machine would win every block.
	pub fn min_difficulty_for(params: &ChallengeParams) -> U256 {
		T::MinDifficulty::get().max(U256::from(params.tickets_per_nonce()))
	}

	/// The lowest difficulty under the parameters in force.
	pub fn min_difficulty() -> U256 {
		Self::min_difficulty_for(&Params::<T>::get())
	}

	/// ASERT on a capped schedule clock: the difficulty of the block after `n`.
	pub(crate) fn retarget(n: BlockNumberFor<T>) {
		let height: u64 = n.saturated_into();
		let now = T::Time::now();
		let parent_time = LastTimestamp::<T>::mutate(|last| last.replace(now));
		let new_target = PendingTargetBlockTime::<T>::take();
		let restart = |difficulty: U256| {
			if let Some(ms) = new_target {
				TargetBlockTime::<T>::put(ms);
			}
			RetargetAnchor::<T>::put(Anchor { height, timestamp: now, difficulty });
		};
		if let Some(difficulty) = Reanchor::<T>::take() {
			Difficulty::<T>::put(difficulty);
			restart(difficulty);
			return;
		}
		let Some(mut anchor) = RetargetAnchor::<T>::get() else {
			// The first block: genesis has no timestamp to count from.
			restart(Difficulty::<T>::get());
			return;
		};
		// This block was mined under the target in force until now.
		let target = TargetBlockTime::<T>::get();
		// Its solve time counts toward the schedule up to
		// `MaxSolveTimeBlocks` targets; the rest moves the schedule's start.
		// Without the cap one timestamp far after its parent's (block 1
		// stamped at the launch time and mined days later, or a fork from
		// genesis made at any later date) put the chain "behind schedule"
		// by the whole gap and floored the difficulty in one block.
		if let Some(parent_time) = parent_time {
			let cap = target.saturating_mul(T::MaxSolveTimeBlocks::get() as u64);
			let excess = now.saturating_sub(parent_time).saturating_sub(cap);
			if excess > 0 {
				anchor.timestamp = anchor.timestamp.saturating_add(excess);
				RetargetAnchor::<T>::put(anchor);
			}
		}
		let half_life = target.saturating_mul(T::HalfLifeBlocks::get() as u64);
		let next = asert::next_difficulty(
			&anchor,
			height,
			now,
			target,
			half_life,
			Self::min_difficulty(),
			T::MaxDifficulty::get(),
		);
		if next != Difficulty::<T>::get() {
			Difficulty::<T>::put(next);
			Self::deposit_event(Event::DifficultyAdjusted { difficulty: next });
		}
		if new_target.is_some() {
			restart(next);
		}
	}

	/// `difficulty` tickets of `old_cost` MACs each, as tickets of
	/// `new_cost` MACs: the same work, rounded down.
	fn rescaled(difficulty: U256, old_cost: u64, new_cost: u64) -> U256 {
		let scaled = difficulty.full_mul(U256::from(old_cost)) / sp_core::U512::from(new_cost.max(1));
		U256::try_from(scaled).unwrap_or(U256::MAX)
	}

	/// Whether one nonce of `params` yields at most twice the tickets a
	/// block needs now, counted in `params`' tickets: the floor that
	/// `params` set may then raise the difficulty at most 2x, the bound
	/// governance has on the difficulty itself.
	pub(crate) fn floor_within_reach(params: &ChallengeParams) -> bool {
		let current = Params::<T>::get();
		let rescaled = Self::rescaled(Difficulty::<T>::get(), current.macs_per_ticket(), params.macs_per_ticket());
		U256::from(params.tickets_per_nonce()) <= rescaled.saturating_mul(U256::from(2))
	}

	/// New parameters change what a ticket costs (`t*t*k` MACs), and the
	/// difficulty counts tickets: rescale it so that a block is the same
	/// work in MACs before and after, and restart ASERT's schedule from
	/// the rescaled value at block `n` (the old anchor's difficulty is in
	/// the old tickets). Without this, doubling `k` would double the
	/// block time until the retarget caught up.
	pub(crate) fn rescale_difficulty(n: BlockNumberFor<T>, old_cost: u64, new_cost: u64) {
		let scaled = Self::rescaled(Difficulty::<T>::get(), old_cost, new_cost);
		let difficulty = scaled.clamp(Self::min_difficulty(), T::MaxDifficulty::get());
		Difficulty::<T>::put(difficulty);
		RetargetAnchor::<T>::put(Anchor { height: n.saturated_into(), timestamp: T::Time::now(), difficulty });
		Self::deposit_event(Event::DifficultyRescaled { difficulty });
	}
}
