use crate::{mock::*, Challenge, Error, Event};
use frame_support::{assert_noop, assert_ok};
use mlpow_primitives::{stream::weights_seed, ChallengeParams, U256};
use sp_runtime::DispatchError;

fn events() -> Vec<Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| if let RuntimeEvent::MlPow(e) = r.event { Some(e) } else { None })
		.collect()
}

fn root() -> RuntimeOrigin {
	RuntimeOrigin::root()
}

/// Genesis writes the storage version the code declares, so a later layout
/// change (and its migration) starts from a known version.
#[test]
fn genesis_writes_the_current_storage_version() {
	use frame_support::traits::{GetStorageVersion, StorageVersion};
	new_test_ext().execute_with(|| {
		assert_eq!(MlPow::on_chain_storage_version(), crate::STORAGE_VERSION);
		assert_eq!(MlPow::in_code_storage_version(), StorageVersion::new(1));
	});
}

#[test]
fn genesis_sets_the_challenge_of_block_one() {
	new_test_ext().execute_with(|| {
		assert_eq!(MlPow::difficulty(), U256::from(GENESIS_DIFFICULTY));
		assert_eq!(
			MlPow::challenge(),
			Challenge { params: PARAMS, weights_seed: weights_seed(&[0; 32], 0), epoch_index: 0 }
		);
		assert_eq!(crate::EpochEnd::<Test>::get(), 5);
		assert_eq!(crate::TargetBlockTime::<Test>::get(), TARGET_MS);
	});
}

#[test]
fn author_in_pre_runtime_digest_is_rewarded() {
	new_test_ext().execute_with(|| {
		run_block(Some(7), TARGET_MS);
		assert_eq!(Balances::free_balance(7), REWARD);
		assert!(events().contains(&Event::Rewarded { author: 7, amount: REWARD }));
		run_block(Some(7), TARGET_MS);
		assert_eq!(Balances::free_balance(7), 2 * REWARD);
		// No digest, no reward, and no stale author carried over.
		run_block(None, TARGET_MS);
		assert_eq!(Balances::free_balance(7), 2 * REWARD);
		assert_eq!(Balances::total_issuance(), 2 * REWARD);
	});
}

#[test]
fn undecodable_author_digest_is_ignored() {
	new_test_ext().execute_with(|| {
		let n = System::block_number() + 1;
		let mut digest = sp_runtime::Digest::default();
		digest.push(sp_runtime::DigestItem::PreRuntime(sp_consensus_pow::POW_ENGINE_ID, vec![1, 2]));
		System::initialize(&n, &parent_hash_of(n), &digest);
		<MlPow as frame_support::traits::Hooks<u64>>::on_initialize(n);
		<MlPow as frame_support::traits::Hooks<u64>>::on_finalize(n);
		assert_eq!(Balances::total_issuance(), 0);
	});
}

#[test]
fn epochs_roll_over_with_a_seed_from_the_parent_hash() {
	new_test_ext().execute_with(|| {
		let first = MlPow::challenge();
		for _ in 0..4 {
			run_block(None, TARGET_MS);
			assert_eq!(MlPow::challenge(), first, "the challenge must not change mid-epoch");
		}
		// Block 5 ends epoch 0: block 6 is mined under epoch 1.
		run_block(None, TARGET_MS);
		let next = MlPow::challenge();
		assert_eq!(next.epoch_index, 1);
		let anchor: [u8; 32] = parent_hash_of(5).0;
		assert_eq!(next.weights_seed, weights_seed(&anchor, 1));
		assert_eq!(crate::EpochEnd::<Test>::get(), 10);
		assert!(events().iter().any(|e| matches!(e, Event::EpochStarted { epoch_index: 1, ends_at: 10, .. })));
	});
}

#[test]
fn scheduled_params_apply_only_at_the_epoch_boundary() {
	new_test_ext().execute_with(|| {
		let new = ChallengeParams { m: 128, n: 256, epoch_length: 3, ..ChallengeParams::DEV };
		run_block(None, TARGET_MS);
		assert_ok!(MlPow::schedule_params(root(), new));
		assert!(events().contains(&Event::ParamsScheduled { params: new, at_block: 5 }));
		for _ in 2..5 {
			run_block(None, TARGET_MS);
			assert_eq!(MlPow::challenge().params, PARAMS);
		}
		run_block(None, TARGET_MS);
		assert_eq!(MlPow::challenge().params, new);
		assert!(events().contains(&Event::ParamsApplied { params: new }));
		// The new epoch has the new length.
		assert_eq!(crate::EpochEnd::<Test>::get(), 8);
		assert_eq!(crate::PendingParams::<Test>::get(), None);
	});
}

#[test]
fn scheduled_params_can_be_cancelled() {
	new_test_ext().execute_with(|| {
		assert_noop!(MlPow::cancel_scheduled_params(root()), Error::<Test>::NothingScheduled);
		let new = ChallengeParams { m: 128, ..ChallengeParams::DEV };
		assert_ok!(MlPow::schedule_params(root(), new));
		assert_ok!(MlPow::cancel_scheduled_params(root()));
		for _ in 0..5 {
			run_block(None, TARGET_MS);
		}
		assert_eq!(MlPow::challenge().params, PARAMS);
	});
}

#[test]
fn governance_calls_need_the_governance_origin() {
	new_test_ext().execute_with(|| {
		let signed = RuntimeOrigin::signed(1);
		let bad = DispatchError::BadOrigin;
		assert_noop!(MlPow::set_difficulty(signed.clone(), U256::from(1000)), bad);
		assert_noop!(MlPow::set_target_block_time(signed.clone(), 1000), bad);
		assert_noop!(MlPow::set_block_reward(signed.clone(), 100), bad);
		assert_noop!(MlPow::schedule_params(signed.clone(), ChallengeParams::DEV), bad);
		assert_noop!(MlPow::cancel_scheduled_params(signed), bad);
		assert_noop!(MlPow::set_difficulty(RuntimeOrigin::none(), U256::from(1000)), bad);
	});
}

#[test]
fn out_of_range_values_are_rejected() {
	new_test_ext().execute_with(|| {
		assert_noop!(MlPow::set_difficulty(root(), U256::from(15)), Error::<Test>::DifficultyOutOfBounds);
		assert_noop!(MlPow::set_difficulty(root(), U256::MAX), Error::<Test>::DifficultyOutOfBounds);
		assert_noop!(MlPow::set_target_block_time(root(), 499), Error::<Test>::TargetBlockTimeOutOfBounds);
		assert_noop!(MlPow::set_target_block_time(root(), 3_600_001), Error::<Test>::TargetBlockTimeOutOfBounds);
		assert_noop!(MlPow::set_block_reward(root(), 1_000_001), Error::<Test>::RewardOutOfBounds);
		// Non-zero but below the existential deposit could never be minted.
		assert_noop!(MlPow::set_block_reward(root(), 9), Error::<Test>::RewardOutOfBounds);
		assert_ok!(MlPow::set_block_reward(root(), 0));

		let dev = ChallengeParams::DEV;
		let cases = [
			(ChallengeParams { version: 3, ..dev }, Error::<Test>::UnsupportedVersion),
			(ChallengeParams { r: 32, ..dev }, Error::<Test>::BadRank),
			(ChallengeParams { r: 48, ..ChallengeParams::DEV_V2 }, Error::<Test>::BadRank),
			(ChallengeParams { k: 96, r: 64, ..ChallengeParams::DEV_V2 }, Error::<Test>::BadRank),
			(ChallengeParams { k: 2_048, r: 32, ..ChallengeParams::DEV_V2 }, Error::<Test>::BadRank),
			(ChallengeParams { t: 32, k: 16_384, r: 128, ..ChallengeParams::DEV_V2 }, Error::<Test>::OpeningTooLarge),
			(ChallengeParams { m: 0, ..dev }, Error::<Test>::ZeroDimension),
			(ChallengeParams { k: 72, ..dev }, Error::<Test>::NotMultipleOf16),
			(ChallengeParams { k: 65_536 + 16, ..dev }, Error::<Test>::InnerDimensionTooLarge),
			(ChallengeParams { t: 144, m: 144 * 2, n: 144 * 2, ..dev }, Error::<Test>::TileTooLarge),
			(ChallengeParams { t: 48, ..dev }, Error::<Test>::TileDoesNotDivide),
			(ChallengeParams { t: 128, m: 128, n: 128, k: 2048, ..dev }, Error::<Test>::VerificationTooExpensive),
			(ChallengeParams { epoch_length: 0, ..dev }, Error::<Test>::BadEpochLength),
			// Valid for consensus, but above this chain's miner-friendly bound.
			(ChallengeParams { m: 32_768, ..dev }, Error::<Test>::OuterDimensionTooLarge),
		];
		for (params, err) in cases {
			assert_noop!(MlPow::schedule_params(root(), params), err);
		}
		assert_eq!(crate::PendingParams::<Test>::get(), None);
	});
}

#[test]
fn set_difficulty_applies_to_the_next_block_and_reanchors() {
	new_test_ext().execute_with(|| {
		run_block(None, TARGET_MS);
		assert_ok!(MlPow::set_difficulty(root(), U256::from(60_000)));
		assert!(events().contains(&Event::DifficultySet { difficulty: U256::from(60_000) }));
		// Applied when this block finalises.
		run_block(None, TARGET_MS);
		assert_eq!(MlPow::difficulty(), U256::from(60_000));
		// On schedule from the new anchor: unchanged.
		run_block(None, TARGET_MS);
		assert_eq!(MlPow::difficulty(), U256::from(60_000));
	});
}

#[test]
fn set_target_block_time_restarts_the_schedule() {
	new_test_ext().execute_with(|| {
		run_block(None, TARGET_MS);
		assert_ok!(MlPow::set_target_block_time(root(), 2 * TARGET_MS));
		run_block(None, 2 * TARGET_MS);
		let d = MlPow::difficulty();
		// Blocks at the new target keep the difficulty.
		for _ in 0..5 {
			run_block(None, 2 * TARGET_MS);
		}
		assert_eq!(MlPow::difficulty(), d);
		// The old pace is now twice too fast.
		run_block(None, TARGET_MS);
		assert!(MlPow::difficulty() > d);
	});
}

#[test]
fn fast_blocks_raise_and_slow_blocks_lower_the_difficulty() {
	new_test_ext().execute_with(|| {
		run_block(None, TARGET_MS); // anchors the schedule
		let start = MlPow::difficulty();
		for _ in 0..10 {
			run_block(None, TARGET_MS / 4);
		}
		let up = MlPow::difficulty();
		assert!(up > start);
		assert!(events().iter().any(|e| matches!(e, Event::DifficultyAdjusted { .. })));
		for _ in 0..10 {
			run_block(None, TARGET_MS * 4);
		}
		assert!(MlPow::difficulty() < up);
	});
}

#[test]
fn difficulty_stays_within_its_bounds() {
	new_test_ext().execute_with(|| {
		run_block(None, TARGET_MS);
		for _ in 0..50 {
			run_block(None, 3_600_000);
		}
		assert_eq!(MlPow::difficulty(), MinDifficulty::get());
	});
}

/// splitmix64: a tiny deterministic generator for the hashrate model.
struct Rng(u64);
impl Rng {
	fn next_f64(&mut self) -> f64 {
		self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
		let mut z = self.0;
		z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
		z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
		z ^= z >> 31;
		((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
	}
	/// A block time: exponential with mean `difficulty / hashrate`.
	fn block_time(&mut self, difficulty: U256, tickets_per_ms: f64) -> u64 {
		let mean = difficulty.low_u128() as f64 / tickets_per_ms;
		((-self.next_f64().ln() * mean).round() as u64).max(1)
	}
}

/// Expected block time at the current difficulty and hashrate, relative to target.
fn expected_ratio(tickets_per_ms: f64) -> f64 {
	MlPow::difficulty().low_u128() as f64 / tickets_per_ms / TARGET_MS as f64
}

fn mean(xs: &[f64]) -> f64 {
	xs.iter().sum::<f64>() / xs.len() as f64
}

fn std_dev(xs: &[f64]) -> f64 {
	let m = mean(xs);
	(xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// Drives the real retarget with a modelled hashrate: block times are
/// exponential with mean `difficulty / hashrate`, as for any lottery with
/// `1/difficulty` odds per ticket. Prints the figures the governance issue
/// asks for and checks them.
#[test]
fn retarget_converges_and_holds_the_block_time() {
	new_test_ext().execute_with(|| {
		let mut rng = Rng(0x6d6c_706f_7721);
		// Hashrate that would make the genesis difficulty exactly on target.
		let base = GENESIS_DIFFICULTY as f64 / TARGET_MS as f64;
		let mut run = |blocks: usize, hashrate: f64| -> (Vec<f64>, Vec<f64>) {
			let (mut times, mut ratios) = (vec![], vec![]);
			for _ in 0..blocks {
				let dt = rng.block_time(MlPow::difficulty(), hashrate);
				run_block(None, dt);
				times.push(dt as f64);
				ratios.push(expected_ratio(hashrate));
			}
			(times, ratios)
		};

		// (a) Steady state: start 4x off, let it settle, then 500 blocks.
		run(200, base * 4.0);
		let (times, steady_ratios) = run(500, base * 4.0);
		let steady_mean = mean(&times) / TARGET_MS as f64;
		let steady_sd = std_dev(&steady_ratios);
		println!("steady state: mean block time {:.3} x target over 500 blocks", steady_mean);
		println!("steady state: expected block time sd {:.3} x target", steady_sd);
		assert!((steady_mean - 1.0).abs() <= 0.05, "steady mean {steady_mean}");

		// (b) 10x step up, then 10x step down.
		for (label, hashrate) in [("10x up", base * 40.0), ("10x down", base * 4.0)] {
			let (times, ratios) = run(400, hashrate);
			let recovered = ratios.iter().position(|r| (r - 1.0).abs() <= 0.10).expect("never recovered");
			let after = &ratios[150..];
			let sd = std_dev(after);
			let later_mean = mean(&times[150..]) / TARGET_MS as f64;
			println!(
				"{label}: expected block time within 10% of target after {} blocks; \
				 then mean {:.3} x target, sd {:.3} (steady sd {:.3})",
				recovered + 1,
				later_mean,
				sd,
				steady_sd
			);
			assert!(recovered < 100, "{label}: took {} blocks", recovered + 1);
			// (c) no oscillation growth: after settling, no more variation than in steady state.
			assert!(sd <= steady_sd * 1.5, "{label}: sd {sd} vs steady {steady_sd}");
			assert!((later_mean - 1.0).abs() <= 0.10, "{label}: mean {later_mean}");
		}
	});
}

/// Times every call and hook of the pallet in the mock runtime (in-memory
/// storage, so the time is the compute part of a weight; storage accesses
/// are priced separately from `DbWeight`, as frame-benchmarking does) and
/// prints the median of many runs: native figures to set beside the Wasm
/// ones `scripts/weights.sh` writes into `weights.rs` (the chain executes
/// the Wasm). A measurement, not a check, so it is ignored by default:
///
/// `cargo test --release -p pallet-mlpow -- --ignored --nocapture measure_compute`
#[test]
#[ignore = "a measurement: run it in release, see the doc comment"]
fn measure_compute() {
	use frame_support::traits::Hooks;
	use std::time::Instant;
	const RUNS: usize = 2_000;

	fn median(mut f: impl FnMut() -> std::time::Duration) -> u128 {
		let mut times: Vec<u128> = (0..RUNS).map(|_| f().as_nanos()).collect();
		times.sort_unstable();
		times[RUNS / 2]
	}
	fn timed(f: impl FnOnce()) -> std::time::Duration {
		let start = Instant::now();
		f();
		start.elapsed()
	}

	let mut rows: Vec<(&str, u128)> = vec![];
	new_test_ext().execute_with(|| {
		run_block(Some(1), TARGET_MS);
		let d = U256::from(GENESIS_DIFFICULTY);
		let params = ChallengeParams { m: 128, ..ChallengeParams::DEV };
		rows.push(("set_difficulty", median(|| timed(|| MlPow::set_difficulty(root(), d).unwrap()))));
		rows.push(("set_target_block_time", median(|| timed(|| MlPow::set_target_block_time(root(), 5_000).unwrap()))));
		rows.push(("set_block_reward", median(|| timed(|| MlPow::set_block_reward(root(), 100).unwrap()))));
		rows.push(("schedule_params", median(|| timed(|| MlPow::schedule_params(root(), params).unwrap()))));
		rows.push((
			"cancel_scheduled_params",
			median(|| {
				crate::PendingParams::<Test>::put(params);
				timed(|| MlPow::cancel_scheduled_params(root()).unwrap())
			}),
		));
		let n = System::block_number() + 1;
		let mut digest = sp_runtime::Digest::default();
		digest.push(sp_runtime::DigestItem::PreRuntime(sp_consensus_pow::POW_ENGINE_ID, codec::Encode::encode(&7u64)));
		System::initialize(&n, &parent_hash_of(n), &digest);
		rows.push((
			"on_initialize_with_author",
			median(|| {
				timed(|| {
					let _ = MlPow::on_initialize(n);
				})
			}),
		));
		rows.push((
			"on_finalize_new_epoch",
			median(|| {
				crate::Author::<Test>::put(7);
				crate::PendingParams::<Test>::put(params);
				crate::EpochEnd::<Test>::put(n);
				Now::set(Now::get() + TARGET_MS);
				timed(|| MlPow::on_finalize(n))
			}),
		));
	});
	println!("{:<28} {:>10}", "call or hook", "median ns");
	for (name, ns) in rows {
		println!("{name:<28} {ns:>10}");
	}
}
