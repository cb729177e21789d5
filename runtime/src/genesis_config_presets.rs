//! Genesis presets: `development` (one node mining alone, fast blocks),
//! `development_v2` (the same on puzzle v2 from genesis, for the worker's
//! useful mode) and `local_testnet` (several nodes and miners). The node's
//! chain specs are built from these; `chain-specs/` holds them as JSON.
//!
//! Both have the technical council Alice, Bob and Charlie, whose two-thirds
//! motions govern the chain. Only `development` has a sudo key (Alice): on
//! `local_testnet` the council is the only way to retune the chain, as on a
//! real network.

use crate::{AccountId, Balance, RuntimeGenesisConfig, UNIT};
use alloc::vec::Vec;
use frame_support::build_struct_json_patch;
use mlpow_primitives::{ChallengeParams, U256};
use serde_json::Value;
use sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};
use sp_keyring::Sr25519Keyring;

/// The development chain on puzzle v2 from its first block: miners may
/// mine on matrices of their own (the worker's job API) at once, with no
/// governance switch first.
pub const DEV_V2_PRESET: &str = "development_v2";

/// The presets this runtime knows.
pub const PRESETS: [&str; 3] = [DEV_RUNTIME_PRESET, DEV_V2_PRESET, LOCAL_TESTNET_RUNTIME_PRESET];

/// Balance of each endowed development account.
pub const ENDOWMENT: Balance = 1_000_000 * UNIT;
/// Reward per block in both presets.
pub const BLOCK_REWARD: Balance = 10 * UNIT;

/// Dev chain: 3 s blocks. The starting difficulty is low on purpose (one
/// CPU thread mines it in under a second at the dev parameters, see
/// BENCHMARKS.md), so the first blocks come at once on any machine; the
/// retarget then raises it to the real hashrate within a few dozen blocks.
pub const DEV_TARGET_MS: u64 = 3_000;
pub const DEV_DIFFICULTY: u64 = 200_000;
/// Launch time of both presets (2026-11-27 00:00 UTC, in ms since the Unix
/// epoch): no block may be stamped before it. A real network's spec sets its
/// own launch time to when mining is meant to start (SPEC.md, "Timestamps").
pub const LAUNCH_TIME_MS: u64 = 1_795_737_600_000;
/// Local testnet: 6 s blocks for several miners.
pub const LOCAL_TARGET_MS: u64 = 6_000;
pub const LOCAL_DIFFICULTY: u64 = 400_000;

fn genesis(
	endowed: Vec<AccountId>,
	council: Vec<AccountId>,
	sudo: Option<AccountId>,
	difficulty: u64,
	params: ChallengeParams,
	target_block_time_ms: u64,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: pallet_balances::GenesisConfig {
			balances: endowed.into_iter().map(|a| (a, ENDOWMENT)).collect::<Vec<_>>(),
		},
		council: pallet_collective::GenesisConfig { members: council },
		sudo: pallet_sudo::GenesisConfig { key: sudo },
		ml_pow: pallet_mlpow::GenesisConfig {
			difficulty: U256::from(difficulty),
			params,
			target_block_time_ms,
			block_reward: BLOCK_REWARD,
			launch_time_ms: LAUNCH_TIME_MS,
		},
	})
}

fn dev_accounts() -> Vec<AccountId> {
	Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect()
}

/// The genesis council of both presets.
pub fn council() -> Vec<AccountId> {
	[Sr25519Keyring::Alice, Sr25519Keyring::Bob, Sr25519Keyring::Charlie].map(|k| k.to_account_id()).into()
}

/// The JSON patch of preset `id`, or `None` for an unknown name.
pub fn preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_ref() {
		DEV_RUNTIME_PRESET => genesis(
			dev_accounts(),
			council(),
			Some(Sr25519Keyring::Alice.to_account_id()),
			DEV_DIFFICULTY,
			ChallengeParams::DEV,
			DEV_TARGET_MS,
		),
		DEV_V2_PRESET => genesis(
			dev_accounts(),
			council(),
			Some(Sr25519Keyring::Alice.to_account_id()),
			DEV_DIFFICULTY,
			ChallengeParams::DEV_V2,
			DEV_TARGET_MS,
		),
		LOCAL_TESTNET_RUNTIME_PRESET => {
			genesis(dev_accounts(), council(), None, LOCAL_DIFFICULTY, ChallengeParams::DEV, LOCAL_TARGET_MS)
		}
		_ => return None,
	};
	Some(serde_json::to_string(&patch).expect("a JSON value serializes").into_bytes())
}

#[cfg(test)]
mod tests {
	use super::*;

	/// What the node does with a preset: apply the patch over the defaults.
	fn merge(base: &mut Value, patch: Value) {
		match (base, patch) {
			(Value::Object(base), Value::Object(patch)) => {
				for (k, v) in patch {
					merge(base.entry(k).or_insert(Value::Null), v);
				}
			}
			(base, patch) => *base = patch,
		}
	}

	#[test]
	fn presets_build_a_valid_genesis() {
		for name in PRESETS {
			let patch = preset(&PresetId::from(name)).expect("known preset");
			let patch: Value = serde_json::from_slice(&patch).unwrap();
			assert!(patch.get("mlPow").is_some(), "{name}: {patch}");
			let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
			merge(&mut config, patch);
			// Building the state runs every pallet's genesis checks.
			sp_io::TestExternalities::default().execute_with(|| {
				frame_support::genesis_builder_helper::build_state::<RuntimeGenesisConfig>(
					serde_json::to_vec(&config).unwrap(),
				)
				.unwrap();
			});
		}
		assert!(preset(&PresetId::from("nope")).is_none());
	}
}
