//! The retarget against a miner who picks the most harmful legal timestamps,
//! on the real runtime with the genesis state of every shipped preset.
//!
//! The property (SPEC.md, "Retarget"): no timestamp strategy lowers the
//! difficulty by more than a factor `2^(-(6-1)/16)` (about 0.806) per block,
//! because a block's solve time counts toward ASERT's schedule only up to
//! six target block times. So bringing a chain's difficulty from `D` down to
//! the floor `F` takes at least `ceil(16/5 * log2(D/F))` blocks, whose
//! summed difficulty is at least `sum_i D * 2^(-5i/16)`: about 5 blocks'
//! work at `D`, whenever the fork is made and wherever its block 1 is
//! stamped. Before the cap, block 1 stamped at the launch time (legal on any
//! date) and block 2 stamped at the real time put the chain "behind
//! schedule" by the whole gap: the difficulty fell to the floor in one block.

mod common;

use common::ext;
use frame_support::traits::Hooks;
use mlpow_runtime::{genesis_config_presets as genesis, MlPow, Runtime, RuntimeOrigin, System};

/// Per block, the most the difficulty may fall: `2^(-5/16)`, less the
/// relative error of ASERT's fixed-point power (below 1.2e-4 on each of
/// the two difficulties compared).
fn max_fall_per_block() -> f64 {
	(-5.0f64 / 16.0).exp2() * (1.0 - 2.5e-4)
}

/// Whether `next` is within the per-block bound below `prev`, allowing the
/// one unit that rounding down may take off `next`.
fn within_bound(prev: f64, next: f64) -> bool {
	next + 1.0 >= prev * max_fall_per_block()
}

const DAY_MS: u64 = 86_400_000;

/// A timestamp strategy: `(block index, parent's stamp, real time, target) -> stamp`.
type Stamp = fn(u64, u64, u64, u64) -> u64;

/// The chain under test: its preset's genesis, and blocks run through the
/// real pallets (timestamp inherent, then the hooks, as `Executive` does).
struct Chain {
	ext: sp_io::TestExternalities,
	number: u32,
}

impl Chain {
	fn new(preset: &str) -> Self {
		Self { ext: ext(preset), number: 0 }
	}

	/// Runs the next block stamped `millis`, and returns the difficulty it
	/// leaves for the block after it.
	fn block(&mut self, millis: u64) -> f64 {
		self.number += 1;
		let n = self.number;
		self.ext.execute_with(|| {
			let parent = sp_core::H256::from_low_u64_be(n as u64);
			System::set_block_number(n - 1);
			System::initialize(&n, &parent, &Default::default());
			MlPow::on_initialize(n);
			pallet_timestamp::Pallet::<Runtime>::set(RuntimeOrigin::none(), millis).expect("a legal timestamp");
			MlPow::on_finalize(n);
			pallet_timestamp::Pallet::<Runtime>::on_finalize(n);
			System::finalize();
			difficulty()
		})
	}

	fn difficulty(&mut self) -> f64 {
		self.ext.execute_with(difficulty)
	}

	fn floor(&mut self) -> f64 {
		self.ext.execute_with(|| MlPow::min_difficulty().low_u128() as f64)
	}

	fn target_ms(&mut self) -> u64 {
		self.ext.execute_with(pallet_mlpow::TargetBlockTime::<Runtime>::get)
	}
}

fn difficulty() -> f64 {
	MlPow::difficulty().low_u128() as f64
}

/// Block 1 stamped at the spec's launch time although mined nine days later
/// (legal: the launch time is the only lower bound block 1 has), then honest
/// miners at the hashrate the genesis difficulty was set for, stamping the
/// real time. The difficulty dips by at most one capped step and returns.
#[test]
fn block_one_at_the_launch_time_costs_one_capped_step() {
	for preset in genesis::PRESETS {
		let mut chain = Chain::new(preset);
		let d0 = chain.difficulty();
		let target = chain.target_ms();
		let mut real = genesis::LAUNCH_TIME_MS + 9 * DAY_MS;
		chain.block(genesis::LAUNCH_TIME_MS);
		let mut lowest = d0;
		let mut late = Vec::new();
		for i in 0..1_000 {
			// Blocks take their expected time at the genesis hashrate.
			real += (chain.difficulty() / d0 * target as f64).round() as u64;
			let d = chain.block(real);
			lowest = lowest.min(d);
			if i >= 500 {
				late.push(d / d0);
			}
		}
		let mean = late.iter().sum::<f64>() / late.len() as f64;
		println!("{preset}: block 1 at launch, mined 9 days later: lowest difficulty {:.3} of genesis, then {mean:.3} on average", lowest / d0);
		assert!(within_bound(d0, lowest), "{preset}: fell to {lowest} from {d0}");
		assert!((mean - 1.0).abs() < 0.05, "{preset}: settled at {mean} of the genesis difficulty");
	}
}

/// A fork from genesis, made at any later date, by an attacker alone who
/// wants its difficulty at the floor as cheaply as possible. Whatever it
/// stamps, each block lowers the difficulty by at most the capped step, so
/// the floor costs at least the bound's blocks and work.
#[test]
fn a_fork_from_genesis_pays_the_bound_to_reach_the_floor() {
	for preset in genesis::PRESETS {
		let strategies: [(&str, Stamp); 4] =
			[
				// Block 1 at launch, every later block at the real time (days later).
				("block 1 at launch, the rest at the real time", |i, parent, real, _| {
					if i == 0 {
						genesis::LAUNCH_TIME_MS
					} else {
						real.max(parent + 50)
					}
				}),
				// Every block exactly at the cap after its parent.
				("each block six targets after its parent", |i, parent, _, target| {
					if i == 0 {
						genesis::LAUNCH_TIME_MS
					} else {
						parent + 6 * target
					}
				}),
				// Every block an hour after its parent.
				("each block an hour after its parent", |i, parent, _, _| {
					if i == 0 {
						genesis::LAUNCH_TIME_MS
					} else {
						parent + 3_600_000
					}
				}),
				// Alternating: one far stamp, one 50 ms stamp.
				("alternating far and near stamps", |i, parent, _, target| {
					if i == 0 {
						genesis::LAUNCH_TIME_MS
					} else if i % 2 == 1 {
						parent + 100 * target
					} else {
						parent + 50
					}
				}),
			];
		for (label, stamp) in strategies {
			let mut chain = Chain::new(preset);
			let (d0, floor, target) = (chain.difficulty(), chain.floor(), chain.target_ms());
			// The bound: each block's difficulty at least the capped step below its parent's.
			let (mut bound_blocks, mut bound_work, mut d) = (0u32, 0.0, d0);
			while d > floor {
				bound_work += d;
				d *= max_fall_per_block();
				bound_blocks += 1;
			}
			let real = genesis::LAUNCH_TIME_MS + 30 * DAY_MS;
			let (mut parent, mut work, mut prev) = (0u64, 0.0, d0);
			let mut reached = None;
			for i in 0..300u32 {
				if reached.is_none() {
					work += prev;
				}
				let t = stamp(i as u64, parent, real, target);
				let d = chain.block(t);
				assert!(
					within_bound(prev, d) || d == floor,
					"{preset}, {label}: block {} lowered the difficulty from {prev} to {d}",
					i + 1
				);
				if d <= floor && reached.is_none() {
					reached = Some(i + 1);
				}
				(parent, prev) = (t, d);
			}
			match reached {
				Some(blocks) => {
					println!(
						"{preset}: {label}: floor ({floor}) after {blocks} blocks and {:.2} blocks' work at the \
						 genesis difficulty (bound: {bound_blocks} blocks, {:.2})",
						work / d0,
						bound_work / d0
					);
					assert!(blocks >= bound_blocks, "{preset}, {label}: {blocks} blocks, bound {bound_blocks}");
					assert!(work >= bound_work * 0.99, "{preset}, {label}: work {work}, bound {bound_work}");
				}
				None => println!("{preset}: {label}: never at the floor in 300 blocks"),
			}
			if label.starts_with("each block six") {
				// The cheapest route reaches the floor, at the bound: it is tight.
				let blocks = reached.expect("the cheapest route reaches the floor");
				assert!(blocks <= bound_blocks + 1, "{preset}: {blocks} blocks, bound {bound_blocks}");
			}
		}
	}
}
