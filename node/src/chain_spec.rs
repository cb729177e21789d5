//! Built-in chain specs (`dev`, `dev-v2`, `local`) and JSON specs from files.

use mlpow_runtime::{genesis_config_presets::DEV_V2_PRESET, SS58_PREFIX, TOKEN_DECIMALS, TOKEN_SYMBOL, WASM_BINARY};
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

/// The chain-spec property that holds the minimum chain work: a decimal
/// string (or JSON number) of total work, in MACs (the sum of each block's
/// difficulty times `t*t*k`), below which this node never
/// finalizes (see `mlpow_consensus::finality`). Absent means zero, right for
/// a new chain; a network past its first days sets it to the total
/// difficulty of a recent block in each release's spec.
pub const MINIMUM_CHAIN_WORK: &str = "minimumChainWork";

/// The spec's minimum chain work (zero when it sets none).
pub fn minimum_chain_work(spec: &dyn sc_service::ChainSpec) -> Result<mlpow_primitives::U256, String> {
	use mlpow_primitives::U256;
	let bad =
		|v: &serde_json::Value| format!("chain spec property {MINIMUM_CHAIN_WORK} must be a decimal string, not {v}");
	match spec.properties().get(MINIMUM_CHAIN_WORK) {
		None => Ok(U256::zero()),
		Some(serde_json::Value::String(s)) => U256::from_dec_str(s).map_err(|_| bad(&s.as_str().into())),
		Some(v @ serde_json::Value::Number(n)) => n.as_u64().map(U256::from).ok_or_else(|| bad(v)),
		Some(v) => Err(bad(v)),
	}
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

/// The development chain on puzzle v2 from genesis: the worker's job API
/// mines on the matrices people send it from the first block.
pub fn development_v2() -> Result<ChainSpec, String> {
	spec("MatMul PoW Development (puzzle v2)", "mlpow_dev_v2", ChainType::Development, DEV_V2_PRESET)
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

/// Whether `id` names a built-in spec (rather than a file).
pub fn is_built_in(id: &str) -> bool {
	matches!(id, "dev" | "" | "dev-v2" | "local")
}

/// `spec` with its genesis as raw storage, from a cache in `dir`.
///
/// A built-in spec names a genesis preset, and turning that into storage
/// runs the runtime's genesis builder, which compiles the runtime's Wasm
/// twice more (sc-chain-spec's own executor, without wasmtime's cache): most
/// of a debug node's start-up, and more than a minute on a busy machine. The
/// raw form of the same spec has the same genesis (and block hash), so it is
/// written once per spec and runtime and read on every later start. The key
/// covers all a built-in spec is made of: the runtime's Wasm (which holds the
/// genesis presets) and the spec's own fields. (Not the plain spec's JSON:
/// writing that runs the genesis builder too.)
pub fn with_cached_genesis(
	spec: Box<dyn sc_service::ChainSpec>,
	dir: &std::path::Path,
) -> Result<Box<dyn sc_service::ChainSpec>, String> {
	let fields = serde_json::json!({
		"id": spec.id(),
		"name": spec.name(),
		"chainType": spec.chain_type(),
		"properties": spec.properties(),
		"bootNodes": spec.boot_nodes(),
		"protocolId": spec.protocol_id(),
		"forkId": spec.fork_id(),
	});
	let mut material = wasm()?.to_vec();
	material.extend_from_slice(fields.to_string().as_bytes());
	let key = <sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(&material).0;
	let path = dir.join(format!("chain-spec-{}-{}.json", spec.id(), hex::encode(&key[..8])));
	if let Ok(raw) = std::fs::read(&path) {
		if let Ok(cached) = ChainSpec::from_json_bytes(raw) {
			return Ok(Box::new(cached));
		}
	}
	let raw = spec.as_json(true)?;
	// Written whole, then renamed: nodes starting at once never read half a file.
	let write = || -> std::io::Result<()> {
		std::fs::create_dir_all(dir)?;
		let tmp =
			dir.join(format!(".{}.{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
		std::fs::write(&tmp, raw.as_bytes())?;
		std::fs::rename(&tmp, &path)
	};
	if let Err(e) = write() {
		log::warn!("could not cache the raw chain spec at {}: {e}", path.display());
	}
	Ok(Box::new(ChainSpec::from_json_bytes(raw.into_bytes())?))
}

/// `dev`, `dev-v2`, `local`, or a path to a JSON chain spec.
pub fn load(id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
	Ok(match id {
		"dev" | "" => Box::new(development()?),
		"dev-v2" => Box::new(development_v2()?),
		"local" => Box::new(local_testnet()?),
		path => Box::new(ChainSpec::from_json_file(std::path::PathBuf::from(path))?),
	})
}
