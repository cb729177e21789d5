//! The checked-in chain specs in `chain-specs/` are what `mlpow-node
//! build-spec` generates now, so they never go stale.
//!
//! Everything is compared exactly except the bytes of the runtime's Wasm:
//! those depend on the compiler that built them (rustup's stable and the
//! Debian fallback of scripts/setup-wasm.sh produce different bytes for the
//! same source). For the code, the test executes both blobs and compares
//! what they say about themselves: `Core_version` (spec name and version,
//! the runtime APIs) and `Metadata_metadata` (every pallet's calls, storage,
//! events, errors, constants and their types). A runtime change that alters
//! any of those, or the genesis state, fails here until
//! `scripts/build-specs.sh` is run.

mod common;

use common::node_bin;
use sc_executor::WasmExecutor;
use serde_json::Value;
use sp_core::traits::{CallContext, CodeExecutor, RuntimeCode, WrappedRuntimeCode};
use sp_runtime::traits::{BlakeTwo256, Hash as _};
use std::{collections::HashMap, path::PathBuf, process::Command};

/// `0x` + hex of `:code`, the raw storage key of the runtime's Wasm.
const CODE_KEY: &str = "0x3a636f6465";

fn checked_in(file: &str) -> Value {
	let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chain-specs").join(file);
	let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
	serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn generated(chain: &str, raw: bool) -> Value {
	let mut cmd = Command::new(node_bin());
	// Without a bootnode in the spec, build-spec would add this machine's
	// own address and node key; scripts/build-specs.sh disables that too.
	cmd.args(["build-spec", "--chain", chain, "--disable-default-bootnode"]);
	if raw {
		cmd.arg("--raw");
	}
	let out = cmd.output().unwrap();
	assert!(out.status.success(), "build-spec --chain {chain}: {}", String::from_utf8_lossy(&out.stderr));
	serde_json::from_slice(&out.stdout).unwrap()
}

/// Takes the Wasm out of a spec (raw or plain), leaving the rest.
fn take_code(spec: &mut Value) -> Vec<u8> {
	let slot = if let Some(top) = spec.pointer_mut("/genesis/raw/top") {
		top.as_object_mut().unwrap().remove(CODE_KEY)
	} else {
		spec.pointer_mut("/genesis/runtimeGenesis").and_then(|g| g.as_object_mut().unwrap().remove("code"))
	};
	let hex = slot.expect("the spec holds the runtime code");
	hex::decode(hex.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

/// What a runtime blob reports about itself when executed.
fn self_description(code: &[u8]) -> (Vec<u8>, Vec<u8>) {
	let executor = WasmExecutor::<sp_io::SubstrateHostFunctions>::builder().build();
	let fetch = WrappedRuntimeCode(code.into());
	let runtime = RuntimeCode { code_fetcher: &fetch, heap_pages: None, hash: BlakeTwo256::hash(code).0.to_vec() };
	let mut ext = sp_io::TestExternalities::default();
	let mut call = |method: &str| {
		let mut e = ext.ext();
		executor
			.call(&mut e, &runtime, method, &[], CallContext::Offchain)
			.0
			.unwrap_or_else(|e| panic!("{method}: {e}"))
	};
	(call("Core_version"), call("Metadata_metadata"))
}

#[test]
fn checked_in_specs_match_what_the_node_generates() {
	let mut stale = Vec::new();
	let mut described = HashMap::new();
	let mut describe = |code: &[u8]| -> (Vec<u8>, Vec<u8>) {
		described.entry(BlakeTwo256::hash(code)).or_insert_with(|| self_description(code)).clone()
	};
	for (chain, raw, file) in [
		("dev", false, "dev.json"),
		("dev", true, "dev-raw.json"),
		("local", false, "local.json"),
		("local", true, "local-raw.json"),
	] {
		let mut want = generated(chain, raw);
		let mut have = checked_in(file);
		let (want_code, have_code) = (take_code(&mut want), take_code(&mut have));
		if want != have {
			stale.push(format!("{file}: genesis state or spec fields differ"));
			continue;
		}
		// Always executed (not only when the bytes differ), so this path is
		// exercised on every run; blobs are described once per distinct hash.
		let (want_version, want_metadata) = describe(&want_code);
		let (have_version, have_metadata) = describe(&have_code);
		if want_version != have_version {
			stale.push(format!("{file}: its runtime reports another version (Core_version)"));
		} else if want_metadata != have_metadata {
			stale.push(format!("{file}: its runtime has other metadata (calls, storage, events or types)"));
		} else if want_code != have_code {
			println!("{file}: Wasm bytes differ (another compiler), same version and metadata");
		}
	}
	assert!(stale.is_empty(), "stale chain specs, run scripts/build-specs.sh:\n{}", stale.join("\n"));
}

#[test]
fn the_local_spec_names_its_bootnode_and_properties() {
	let spec = checked_in("local-raw.json");
	let boot = spec["bootNodes"].as_array().expect("bootNodes");
	assert_eq!(boot.len(), 1);
	assert_eq!(boot[0].as_str().unwrap(), mlpow_node_bootnode());
	assert_eq!(spec["properties"]["ss58Format"], 42);
	assert_eq!(spec["properties"]["tokenSymbol"], "MLP");
	assert_eq!(spec["properties"]["tokenDecimals"], 12);
	assert_eq!(spec["chainType"], "Local");
}

/// The bootnode the local spec should carry: the peer ID of the documented
/// key `0x00…01` on 127.0.0.1:30333, derived by the node itself.
fn mlpow_node_bootnode() -> String {
	let dir = tempfile::tempdir().unwrap();
	let key = dir.path().join("key");
	std::fs::write(&key, "0000000000000000000000000000000000000000000000000000000000000001").unwrap();
	let out = Command::new(node_bin()).args(["key", "inspect-node-key", "--file"]).arg(&key).output().unwrap();
	assert!(out.status.success());
	let peer = String::from_utf8(out.stdout).unwrap();
	format!("/ip4/127.0.0.1/tcp/30333/p2p/{}", peer.trim())
}
