//! The attacks on the retarget and on governance (SECURITY.md), each driven
//! through the real pallet in the mock runtime: the launch-time bound on
//! timestamps, a hostile governance majority, and a miner that stamps the
//! most harmful legal timestamps.

use crate::{mock::*, Error, Event};
use frame_support::{assert_noop, assert_ok, traits::OnTimestampSet};
use mlpow_primitives::{ChallengeParams, U256};

fn root() -> RuntimeOrigin {
	RuntimeOrigin::root()
}

fn difficulty() -> f64 {
	MlPow::difficulty().low_u128() as f64
}

#[test]
fn timestamps_before_the_launch_time_are_refused() {
	new_test_ext().execute_with(|| {
		assert_eq!(crate::LaunchTime::<Test>::get(), LAUNCH_MS);
		assert!(MlPow::check_timestamp(LAUNCH_MS).is_ok());
		assert!(MlPow::check_timestamp(LAUNCH_MS + 1).is_ok());
		// Block 1 stamped in the past (50 ms after 1970, or a second before
		// launch) would anchor the retarget there.
		assert!(MlPow::check_timestamp(50).is_err());
		assert!(MlPow::check_timestamp(LAUNCH_MS - 1).is_err());
		let refused = std::panic::catch_unwind(|| MlPow::on_timestamp_set(LAUNCH_MS - 1));
		assert!(refused.is_err(), "the timestamp inherent must fail the block");
		MlPow::on_timestamp_set(LAUNCH_MS);
	});
}

#[test]
fn a_difficulty_change_is_bounded_by_a_factor_of_two() {
	new_test_ext().execute_with(|| {
		run_block(None, TARGET_MS);
		let d = GENESIS_DIFFICULTY;
		assert_noop!(MlPow::set_difficulty(root(), U256::from(2 * d + 1)), Error::<Test>::DifficultyStepTooLarge);
		assert_noop!(MlPow::set_difficulty(root(), U256::from(d / 2 - 1)), Error::<Test>::DifficultyStepTooLarge);
		// The absolute bounds still come first.
		assert_noop!(MlPow::set_difficulty(root(), U256::MAX), Error::<Test>::DifficultyOutOfBounds);
		assert_ok!(MlPow::set_difficulty(root(), U256::from(2 * d)));
		run_block(None, TARGET_MS);
		assert_eq!(MlPow::difficulty(), U256::from(2 * d));
	});
}

#[test]
fn difficulty_changes_are_a_half_life_apart() {
	new_test_ext().execute_with(|| {
		run_block(None, TARGET_MS);
		assert_ok!(MlPow::set_difficulty(root(), U256::from(GENESIS_DIFFICULTY / 2)));
		// Not again in the same block, nor in the next 15.
		for _ in 0..16 {
			let d = MlPow::difficulty();
			assert_noop!(MlPow::set_difficulty(root(), d), Error::<Test>::DifficultySetTooRecently);
			run_block(None, TARGET_MS);
		}
		// 16 blocks (the half-life) later, again.
		assert_ok!(MlPow::set_difficulty(root(), MlPow::difficulty()));
		assert!(events_contain_difficulty_set());
	});
}

fn events_contain_difficulty_set() -> bool {
	System::events().iter().any(|r| matches!(r.event, RuntimeEvent::MlPow(Event::DifficultySet { .. })))
}

/// A governance majority that doubles the difficulty at every chance it
/// gets, against a constant hashrate. Before the bounds one call could set
/// `MaxDifficulty` (2^192 tickets a block: the chain stops, and only a new
/// block could undo it). Now each doubling slows blocks, the chain falls
/// behind ASERT's schedule, and the retarget takes the doubling back within
/// about a half-life: blocks keep coming at about twice the target time.
#[test]
fn hostile_governance_cannot_halt_the_chain() {
	new_test_ext().execute_with(|| {
		// Blocks take their expected time exactly: difficulty / hashrate.
		let hashrate = GENESIS_DIFFICULTY as f64 / TARGET_MS as f64;
		run_block(None, TARGET_MS);
		let (mut times, mut raises) = (Vec::new(), 0);
		for _ in 0..2_000 {
			let doubled = MlPow::difficulty().saturating_mul(U256::from(2));
			if MlPow::set_difficulty(root(), doubled).is_ok() {
				raises += 1;
			}
			// And re-sets the target block time in every block: had that
			// skipped the block's retarget step (it once did), the doublings
			// would never be undone.
			assert_ok!(MlPow::set_target_block_time(root(), TARGET_MS));
			let dt = (difficulty() / hashrate).round() as u64;
			run_block(None, dt);
			times.push(dt as f64 / TARGET_MS as f64);
		}
		let late = &times[1_000..];
		let mean = late.iter().sum::<f64>() / late.len() as f64;
		let worst = late.iter().cloned().fold(0.0, f64::max);
		println!(
			"hostile governance: {raises} doublings in 2000 blocks; block time then {mean:.2} x target on \
			 average, {worst:.2} x at worst"
		);
		assert!(raises >= 100, "the attack must really be tried ({raises} doublings)");
		assert!(mean < 2.5, "mean block time {mean} x target");
		assert!(worst < 4.0, "worst block time {worst} x target");
	});
}

/// Runs `blocks` blocks at a constant hashrate, stamping each with
/// `stamp(block index, real time, parent stamp)`, clamped to what a node
/// accepts: at least `MinimumPeriod` (50 ms) after the parent, at most 30 s
/// ahead of real time. Returns the difficulty after each block, relative to
/// the one that holds the target block time.
fn run_with_stamps(blocks: usize, mut stamp: impl FnMut(usize, u64, u64) -> u64) -> Vec<f64> {
	let hashrate = GENESIS_DIFFICULTY as f64 / TARGET_MS as f64;
	let mut real = Now::get();
	let mut parent = real;
	let mut out = Vec::with_capacity(blocks);
	for i in 0..blocks {
		real += (difficulty() / hashrate).round() as u64;
		let chosen = stamp(i, real, parent).clamp(parent + 50, real + 30_000);
		Now::set(chosen);
		parent = chosen;
		run_block_at_current_time();
		out.push(difficulty() / GENESIS_DIFFICULTY as f64);
	}
	out
}

/// `run_block` without moving the clock (the caller set it).
fn run_block_at_current_time() {
	use frame_support::traits::Hooks;
	let n = System::block_number() + 1;
	System::initialize(&n, &parent_hash_of(n), &Default::default());
	MlPow::on_initialize(n);
	MlPow::on_finalize(n);
}

/// The retarget simulation with a miner that picks the most harmful legal
/// timestamp for every block it mines: how far can it move the difficulty?
/// Timestamps are bounded below by the parent's (plus 50 ms) and above by
/// the importing nodes' clocks (plus 30 s), and ASERT depends only on how
/// far the chain is from its schedule, so the answer is bounded by 30 s of
/// schedule: a factor `2^(30 s / half-life)`, whatever share of blocks the
/// miner has.
#[test]
fn harmful_timestamps_move_the_difficulty_a_bounded_amount() {
	let half_life_ms = 16.0 * TARGET_MS as f64;
	let bound = (30_000.0 / half_life_ms).exp2();
	let mut report = Vec::new();
	for (label, share) in [("a third of the blocks", 3usize), ("every block", 1)] {
		for late in [true, false] {
			if share == 1 && !late {
				// A miner with every block that stamps early only raises
				// its own difficulty, without bound: self-harm, not an attack.
				continue;
			}
			let rel = new_test_ext().execute_with(|| {
				run_block(None, TARGET_MS); // anchors the schedule at block 1
				run_with_stamps(1_500, |i, real, parent| {
					let attacker = i % share == 0;
					match (attacker, late) {
						// As late as nodes accept: the chain looks behind schedule.
						(true, true) => real + 30_000,
						// As early as the parent allows: it looks ahead.
						(true, false) => parent + 50,
						(false, _) => real,
					}
				})
			});
			// Over the whole run: the first blocks, where a shift of the
			// schedule shows at once, matter most.
			let lo = rel.iter().cloned().fold(f64::MAX, f64::min);
			let hi = rel.iter().cloned().fold(0.0, f64::max);
			let tail = &rel[rel.len() - 500..];
			let tail_mean = tail.iter().sum::<f64>() / tail.len() as f64;
			report.push(format!(
				"{label} stamped {}: difficulty between {lo:.3} and {hi:.3} of the honest value, \
				 {tail_mean:.3} on average over the last 500 blocks",
				if late { "30 s ahead" } else { "at parent + 50 ms" }
			));
			if late {
				// Lowering the difficulty (the harmful direction): bounded by 30 s of schedule.
				assert!(lo >= 1.0 / bound - 0.02, "{label}: difficulty fell to {lo}, bound {:.3}", 1.0 / bound);
			} else {
				// Early stamps are undone by the next honest block.
				assert!(hi <= 1.10, "{label}: difficulty rose to {hi}");
			}
		}
	}
	println!("most harmful legal timestamps (30 s future limit, half-life {} s):", half_life_ms / 1000.0);
	for line in report {
		println!("  {line}");
	}
}

/// Difficulty counts tickets, and new parameters change what a ticket costs
/// (`t*t*k` MACs): at the boundary the difficulty is rescaled so a block is
/// the same work, and block times stay on target across the change for a
/// miner whose speed in MACs per second does not change.
#[test]
fn a_parameter_change_keeps_block_times_on_target() {
	new_test_ext().execute_with(|| {
		let rate = GENESIS_DIFFICULTY as f64 * PARAMS.macs_per_ticket() as f64 / TARGET_MS as f64;
		let block_ms = || (difficulty() * crate::Params::<Test>::get().macs_per_ticket() as f64 / rate).round() as u64;
		run_block(None, TARGET_MS);
		// `k` doubles at the next boundary: tickets cost twice as much.
		let bigger = ChallengeParams { k: PARAMS.k * 2, ..PARAMS };
		assert_ok!(MlPow::schedule_params(root(), bigger));
		let boundary = crate::EpochEnd::<Test>::get();
		while System::block_number() < boundary {
			run_block(None, block_ms());
		}
		assert_eq!(crate::Params::<Test>::get(), bigger);
		let half = U256::from(GENESIS_DIFFICULTY / 2);
		assert_eq!(MlPow::difficulty(), half, "half the tickets, each twice the work");
		assert!(System::events()
			.iter()
			.any(|r| r.event == RuntimeEvent::MlPow(Event::DifficultyRescaled { difficulty: half })));
		let times: Vec<f64> = (0..32)
			.map(|_| {
				let dt = block_ms();
				run_block(None, dt);
				dt as f64 / TARGET_MS as f64
			})
			.collect();
		println!("block times after k doubled: {times:.3?} x target");
		assert!(times.iter().all(|t| (t - 1.0).abs() < 0.01), "{times:?}");
	});
}

/// Below the tickets one nonce yields, a block stops being a lottery: one
/// product would hold a winner almost surely, and the fastest machine would
/// win every block. The difficulty's floor is the larger of `MinDifficulty`
/// and that, for the retarget and governance alike.
#[test]
fn the_difficulty_never_falls_below_one_nonces_tickets() {
	new_test_ext().execute_with(|| {
		// 1024 x 64 x 1024 with t = 16: 4096 tickets a nonce, far above the
		// mock's MinDifficulty of 16.
		let wide = ChallengeParams { m: 1024, n: 1024, ..PARAMS };
		assert_eq!(wide.tickets_per_nonce(), 4096);
		assert_ok!(MlPow::schedule_params(root(), wide));
		let boundary = crate::EpochEnd::<Test>::get();
		while System::block_number() < boundary {
			run_block(None, TARGET_MS);
		}
		// Hour-long blocks drive the retarget down as far as it goes.
		for _ in 0..50 {
			run_block(None, 3_600_000);
		}
		assert_eq!(MlPow::difficulty(), U256::from(4096));
		assert_noop!(MlPow::set_difficulty(root(), U256::from(4095)), Error::<Test>::DifficultyOutOfBounds);
	});
}

/// Governance cannot raise the floor past its 2x bound through the
/// parameters either: a set whose single nonce yields more than twice the
/// tickets a block needs is refused when scheduled, and dropped at the
/// boundary if the difficulty has fallen that far since.
#[test]
fn parameters_cannot_raise_the_floor_past_twice_the_difficulty() {
	new_test_ext().execute_with(|| {
		run_block(None, TARGET_MS);
		// 16384 x 64 x 16384, t = 16: 2^20 tickets a nonce, against 100,000.
		let huge = ChallengeParams { m: 16_384, n: 16_384, ..PARAMS };
		assert_noop!(MlPow::schedule_params(root(), huge), Error::<Test>::FloorTooHigh);
		// 4096 x 64 x 8192: 131,072 tickets a nonce, within reach now...
		let wide = ChallengeParams { m: 4_096, n: 8_192, ..PARAMS };
		assert_ok!(MlPow::schedule_params(root(), wide));
		// ...but the four hour-long blocks before the boundary lower the
		// difficulty (each by the most one block may, 2^(-5/16)) to about
		// 42,000, below half the set's floor, and the set is dropped there.
		let boundary = crate::EpochEnd::<Test>::get();
		while System::block_number() < boundary {
			run_block(None, 3_600_000);
		}
		assert_eq!(crate::Params::<Test>::get(), PARAMS);
		assert!(System::events()
			.iter()
			.any(|r| r.event == RuntimeEvent::MlPow(Event::ScheduledParamsDropped { params: wide })));
	});
}

/// A new target block time takes effect after its block's own retarget
/// step, which still uses the old target; the schedule restarts from there.
#[test]
fn a_target_block_time_change_does_not_skip_the_retarget() {
	new_test_ext().execute_with(|| {
		run_block(None, TARGET_MS);
		let before = MlPow::difficulty();
		assert_ok!(MlPow::set_target_block_time(root(), 2 * TARGET_MS));
		assert_eq!(crate::TargetBlockTime::<Test>::get(), TARGET_MS, "not before the block is finalised");
		// A block twice as slow as the old target: its step lowers the difficulty.
		run_block(None, 2 * TARGET_MS);
		assert!(MlPow::difficulty() < before);
		assert_eq!(crate::TargetBlockTime::<Test>::get(), 2 * TARGET_MS);
	});
}

/// A genesis whose launch time is 0 (no bound on block 1's timestamp) does
/// not build: it says why. (A spec that leaves the field out gets the
/// default, the project's launch date, not 0.)
#[test]
#[should_panic(expected = "launchTimeMs must be set")]
fn a_genesis_without_a_launch_time_is_refused() {
	use sp_runtime::BuildStorage;
	let _ = crate::mock::RuntimeGenesisConfig {
		system: Default::default(),
		balances: Default::default(),
		ml_pow: crate::GenesisConfig {
			difficulty: U256::from(crate::mock::GENESIS_DIFFICULTY),
			params: crate::mock::PARAMS,
			target_block_time_ms: crate::mock::TARGET_MS,
			block_reward: crate::mock::REWARD,
			launch_time_ms: 0,
			_config: Default::default(),
		},
	}
	.build_storage();
}

#[test]
fn a_genesis_that_names_no_launch_time_gets_the_default_one() {
	assert_eq!(crate::GenesisConfig::<Test>::default().launch_time_ms, crate::DEFAULT_LAUNCH_TIME_MS);
}
