//! Built-in chain specs (`dev`, `local`) and JSON specs from files.

use mlpow_runtime::{SS58_PREFIX, TOKEN_DECIMALS, TOKEN_SYMBOL, WASM_BINARY};
use sc_service::ChainType;
use sp_genesis_builder::{DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};

pub type ChainSpec = sc_service::GenericChainSpec;

/// `tokenSymbol`, `tokenDecimals` and `ss58Format`, as Polkadot.js reads them.
pub fn properties() -> sc_chain_spec::Properties {
	let mut p = sc_chain_spec::Properties::new();
	p.insert("tokenSymbol".into(), TOKEN_SYMBOL.into());
	p.insert("tokenDecimals".into(), TOKEN_DECIMALS.into());
	p.insert("ss58Format".into(), SS58_PREFIX.into());
	p
}

fn wasm() -> Result<&'static [u8], String> {
	WASM_BINARY.ok_or_else(|| "the Wasm runtime was not built (SKIP_WASM_BUILD is set?)".to_string())
}

fn spec(name: &str, id: &str, chain_type: ChainType, preset: &str) -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm()?, None)
		.with_name(name)
		.with_id(id)
		.with_chain_type(chain_type)
		.with_genesis_config_preset_name(preset)
		.with_properties(properties())
		.build())
}

/// One node mining alone: 3 s blocks, Alice as sudo and default author.
pub fn development() -> Result<ChainSpec, String> {
	spec("MatMul PoW Development", "mlpow_dev", ChainType::Development, DEV_RUNTIME_PRESET)
}

/// The local testnet's bootnode: a node on this machine's port 30333 with
/// the well-known network key `0x00…01` (`--node-key
/// 0000000000000000000000000000000000000000000000000000000000000001 --port
/// 30333`, see chain-specs/README.md). Public key, local use only.
pub const LOCAL_BOOTNODE: &str = "/ip4/127.0.0.1/tcp/30333/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp";

/// A local testnet for several nodes and miners: 6 s blocks, a council
/// and no sudo, one bootnode on 127.0.0.1:30333.
pub fn local_testnet() -> Result<ChainSpec, String> {
	let mut spec = spec("MatMul PoW Local Testnet", "mlpow_local", ChainType::Local, LOCAL_TESTNET_RUNTIME_PRESET)?;
	let bootnode = LOCAL_BOOTNODE.parse().map_err(|e| format!("bootnode {LOCAL_BOOTNODE}: {e}"))?;
	spec.add_boot_node(bootnode);
	Ok(spec)
}

/// `dev`, `local`, or a path to a JSON chain spec.
pub fn load(id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
	Ok(match id {
		"dev" | "" => Box::new(development()?),
		"local" => Box::new(local_testnet()?),
		path => Box::new(ChainSpec::from_json_file(std::path::PathBuf::from(path))?),
	})
}
