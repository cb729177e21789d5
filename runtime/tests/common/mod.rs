//! The genesis state of the runtime's presets, for tests that run the real
//! runtime natively.

use mlpow_runtime::{genesis_config_presets as genesis, RuntimeGenesisConfig, System};
use sp_genesis_builder::PresetId;
use sp_runtime::BuildStorage;

/// The genesis state of preset `name`, at block 1 (so events are kept).
pub fn ext(name: &str) -> sp_io::TestExternalities {
	let patch = genesis::preset(&PresetId::from(name)).expect("known preset");
	let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
	json_patch(&mut config, serde_json::from_slice(&patch).unwrap());
	let config: RuntimeGenesisConfig = serde_json::from_value(config).unwrap();
	let mut ext = sp_io::TestExternalities::new(config.build_storage().unwrap());
	ext.execute_with(|| System::set_block_number(1));
	ext
}

fn json_patch(base: &mut serde_json::Value, patch: serde_json::Value) {
	match (base, patch) {
		(serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
			for (k, v) in patch {
				json_patch(base.entry(k).or_insert(serde_json::Value::Null), v);
			}
		}
		(base, patch) => *base = patch,
	}
}
