//! Seal verification natively (what import does) against the same check
//! through the runtime API in Wasm (`MlpowApi_verify_seal`, what light tools
//! and `state_call` use), side by side in one run: puzzle v1 at the dev and
//! the GPU parameters, and puzzle v2 (seeded, and chosen with its openings)
//! at the GPU shape, set in the dev genesis state.
//!
//! Run: `cargo bench -p mlpow-node --bench verify_wasm --profile dev`
//! (the dev profile already optimises wasmtime and the primitives; a
//! release build of the whole node is not needed to measure this).
//! `MLPOW_BENCH_ITERS` sets the iterations (default 200).

use codec::{Decode, Encode};
use mlpow_primitives::{
	mine::{EpochWeights, Search},
	v2::{noise, seal::encode_seeded, Job},
	ChallengeParams, Seal, VerifyError, U256,
};
use mlpow_runtime_api::{Challenge, SealCheck};
use sc_executor::WasmExecutor;
use sp_core::traits::{CallContext, CodeExecutor, RuntimeCode, WrappedRuntimeCode};
use sp_runtime::{traits::Hash as _, BuildStorage};
use std::time::Instant;

/// A storage key of the mlpow pallet: `twox128("MlPow") ++ twox128(item)`.
fn mlpow_key(item: &str) -> Vec<u8> {
	[sp_io::hashing::twox_128(b"MlPow"), sp_io::hashing::twox_128(item.as_bytes())].concat()
}

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
	let call = |ext: &mut sp_io::TestExternalities, method: &str, data: &[u8]| -> Vec<u8> {
		let mut e = ext.ext();
		executor.call(&mut e, &code, method, data, CallContext::Offchain).0.unwrap_or_else(|e| panic!("{method}: {e}"))
	};
	let time = |f: &mut dyn FnMut()| {
		f(); // warm-up
		let start = Instant::now();
		for _ in 0..iters {
			f();
		}
		start.elapsed().as_secs_f64() / iters as f64 * 1e6
	};

	// The dev genesis: a seal mined natively at the dev difficulty.
	let challenge = Challenge::decode(&mut &call(&mut ext, "MlpowApi_challenge", &[])[..]).unwrap();
	let difficulty = U256::decode(&mut &call(&mut ext, "DifficultyApi_difficulty", &[])[..]).unwrap();
	let pre_hash = [7u8; 32];
	let weights = EpochWeights::generate(&challenge.params, &challenge.weights_seed).unwrap();
	let mut search = Search::new(&weights, &pre_hash, difficulty).unwrap();
	let dev_seal = (0u64..).step_by(64).find_map(|n| search.search(n..n + 64)).unwrap().seal.to_bytes().to_vec();
	let empty = time(&mut || {
		call(&mut ext, "Core_version", &[]);
	});
	println!("runtime API call overhead (Core_version): {empty:.1} us; each row below subtracts it from the Wasm time");
	println!();
	println!("| puzzle, params (m,k,n,t,r) | seal bytes | native verify | Wasm verify_seal (less call overhead) | Wasm / native |");
	println!("|---|---|---|---|---|");

	// The rows: each sets the pallet's parameters (and, for the larger
	// sets, difficulty 1, so any ticket wins and the full path runs) in the
	// genesis state, then times the same seal natively and in Wasm.
	let id = Seal { nonce: 1, tile_i: 3, tile_j: 5 };
	let chosen = ChallengeParams { m: 1024, n: 1024, ..ChallengeParams::GPU_V2 };
	let chosen_job = {
		let (m, n, k) = (chosen.m as usize, chosen.n as usize, chosen.k as usize);
		let (mut a, mut bt) = (vec![0i8; m * k], vec![0i8; n * k]);
		noise::seeded_a(&[4; 32], chosen.k, 0, &mut a);
		noise::seeded_bt(&[5; 32], chosen.k, 0, &mut bt);
		Job::chosen(&chosen, a, bt).unwrap()
	};
	let rows: Vec<(&str, ChallengeParams, U256, Vec<u8>)> = vec![
		("v1, dev", challenge.params, difficulty, dev_seal),
		("v1, GPU", ChallengeParams::GPU, U256::one(), id.to_bytes().to_vec()),
		("v2 seeded, GPU", ChallengeParams::GPU_V2, U256::one(), encode_seeded(&id)),
		("v2 chosen (openings), 1024 rows", chosen, U256::one(), chosen_job.seal(&id)),
	];
	let mut results = vec![];
	for (name, params, d, seal) in rows {
		ext.insert(mlpow_key("Params"), params.encode());
		ext.insert(mlpow_key("Difficulty"), d.encode());
		let args = (pre_hash, seal.clone()).encode();
		let answer: Result<SealCheck, VerifyError> =
			Decode::decode(&mut &call(&mut ext, "MlpowApi_verify_seal", &args)[..]).unwrap();
		assert!(answer.is_ok(), "{name}: the runtime must accept the seal: {answer:?}");
		let ws = challenge.weights_seed;
		let native = time(&mut || {
			mlpow_primitives::verify(&params, &ws, &pre_hash, d, &seal).unwrap();
		});
		let in_wasm = time(&mut || {
			call(&mut ext, "MlpowApi_verify_seal", &args);
		}) - empty;
		println!(
			"| {name}, {},{},{},{},{} | {} | {native:.1} us | {in_wasm:.1} us | {:.1}x |",
			params.m,
			params.k,
			params.n,
			params.t,
			params.r,
			seal.len(),
			in_wasm / native
		);
		results.push((name, native, in_wasm));
	}
	let (_, n1, w1) = results[1];
	for &(name, n, w) in &results[2..] {
		println!("{name} against v1 at the same t and k: native {:.2}x, Wasm {:.2}x", n / n1, w / w1);
	}
}
