//! Seal verification natively (what import does) against the same check
//! through the runtime API in Wasm (`MlpowApi_verify_seal`, what light tools
//! and `state_call` use), side by side in one run, on the dev genesis state.
//!
//! Run: `cargo bench -p mlpow-node --bench verify_wasm --profile dev`
//! (the dev profile already optimises wasmtime and the primitives; a
//! release build of the whole node is not needed to measure this).
//! `MLPOW_BENCH_ITERS` sets the iterations (default 200).

use codec::{Decode, Encode};
use mlpow_primitives::{
	mine::{EpochWeights, Search},
	VerifyError, U256,
};
use mlpow_runtime_api::{Challenge, SealCheck};
use sc_executor::WasmExecutor;
use sp_core::traits::{CallContext, CodeExecutor, RuntimeCode, WrappedRuntimeCode};
use sp_runtime::{traits::Hash as _, BuildStorage};
use std::time::Instant;

fn main() {
	let iters: u32 = std::env::var("MLPOW_BENCH_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
	let wasm = mlpow_runtime::WASM_BINARY.expect("the Wasm runtime is built");
	let spec = sc_chain_spec::GenericChainSpec::<Option<()>>::builder(wasm, None)
		.with_name("bench")
		.with_id("bench")
		.with_genesis_config_preset_name(sp_genesis_builder::DEV_RUNTIME_PRESET)
		.build();
	let storage = spec.build_storage().expect("dev genesis builds");
	let mut ext = sp_io::TestExternalities::new(storage);
	let executor = WasmExecutor::<sp_io::SubstrateHostFunctions>::builder().build();
	let fetch = WrappedRuntimeCode(wasm.into());
	let code = RuntimeCode {
		code_fetcher: &fetch,
		heap_pages: None,
		hash: sp_runtime::traits::BlakeTwo256::hash(wasm).0.to_vec(),
	};
	let mut call = |method: &str, data: &[u8]| -> Vec<u8> {
		let mut e = ext.ext();
		executor.call(&mut e, &code, method, data, CallContext::Offchain).0.unwrap_or_else(|e| panic!("{method}: {e}"))
	};

	let challenge = Challenge::decode(&mut &call("MlpowApi_challenge", &[])[..]).unwrap();
	let difficulty = U256::decode(&mut &call("DifficultyApi_difficulty", &[])[..]).unwrap();
	let params = challenge.params;
	println!(
		"dev parameters {}x{}x{} t={} ({} MACs per verification), difficulty {difficulty}",
		params.m,
		params.k,
		params.n,
		params.t,
		params.verify_macs()
	);

	// A winning seal, mined natively.
	let pre_hash = [7u8; 32];
	let weights = EpochWeights::generate(&params, &challenge.weights_seed).unwrap();
	let mut search = Search::new(&weights, &pre_hash, difficulty).unwrap();
	let seal = (0u64..).step_by(64).find_map(|n| search.search(n..n + 64)).unwrap().seal.to_bytes().to_vec();

	let args = (pre_hash, seal.clone()).encode();
	let answer: Result<SealCheck, VerifyError> = Decode::decode(&mut &call("MlpowApi_verify_seal", &args)[..]).unwrap();
	assert!(answer.is_ok(), "the runtime must accept a seal the primitives mined: {answer:?}");

	let time = |f: &mut dyn FnMut()| {
		f(); // warm-up
		let start = Instant::now();
		for _ in 0..iters {
			f();
		}
		start.elapsed().as_secs_f64() / iters as f64 * 1e6
	};
	let native = time(&mut || {
		mlpow_primitives::verify(&params, &challenge.weights_seed, &pre_hash, difficulty, &seal).unwrap();
	});
	let wasm_verify = time(&mut || {
		call("MlpowApi_verify_seal", &args);
	});
	let wasm_empty = time(&mut || {
		call("Core_version", &[]);
	});
	println!("native verify (mlpow-primitives):        {native:>10.1} us");
	println!("runtime API verify_seal (Wasm, per call): {wasm_verify:>10.1} us  ({:.1}x native)", wasm_verify / native);
	println!("runtime API Core_version (call overhead): {wasm_empty:>10.1} us");
	println!(
		"verify work inside Wasm (difference):     {:>10.1} us  ({:.1}x native)",
		wasm_verify - wasm_empty,
		(wasm_verify - wasm_empty) / native
	);
}
