//! The header and runtime-API vectors of `consensus/vectors/golden.json`
//! and, for puzzle v2, of `consensus/vectors/v2.json` (its `headers` and
//! `verify_cases`), checked with the chain's own types and code:
//! `mlpow_runtime::Header` (`sp_runtime::generic::Header<u32, BlakeTwo256>`)
//! with sp-runtime's `DigestItem`, and the runtime's API dispatch
//! (`MlpowApi_challenge`, `MlpowApi_verify_seal`, `DifficultyApi_difficulty`:
//! the names and bytes a node's `state_call` uses).
//! `consensus/primitives/tests/golden.rs` and `v2_vectors.rs` check the same
//! vectors with a hand-written SCALE encoder and another BLAKE2.

use codec::{Decode, Encode};
use mlpow_primitives::{ChallengeParams, VerifyError};
use mlpow_runtime::{AccountId, Header, Runtime};
use mlpow_runtime_api::{Challenge, SealCheck};
use serde_json::Value;
use sp_consensus_pow::POW_ENGINE_ID;
use sp_core::{H256, U256};
use sp_keyring::Sr25519Keyring;
use sp_runtime::{generic::DigestItem, traits::Header as _, Digest};

const GOLDEN: &str = mlpow_vectors::GOLDEN;

fn golden() -> Value {
	serde_json::from_str(GOLDEN).expect("golden.json parses")
}

fn unhex(s: &Value) -> Vec<u8> {
	let s = s.as_str().expect("a hex string");
	assert!(s.len().is_multiple_of(2), "{s}");
	(0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn h256(s: &Value) -> H256 {
	H256::from_slice(&unhex(s))
}

fn hash32(s: &Value) -> [u8; 32] {
	unhex(s).try_into().expect("32 bytes")
}

fn u256(s: &Value) -> U256 {
	U256::from_dec_str(s.as_str().expect("a decimal string")).expect("a U256")
}

fn u64_dec(s: &Value) -> u64 {
	s.as_str().expect("u64 values are decimal strings").parse().expect("a u64")
}

use mlpow_vectors::params;

/// Runs a runtime API as a node's `state_call` does, on a state whose
/// mlpow pallet holds this challenge and difficulty.
fn call(method: &str, args: &[u8], challenge: Challenge, difficulty: U256) -> Vec<u8> {
	sp_io::TestExternalities::default().execute_with(|| {
		pallet_mlpow::Params::<Runtime>::put(challenge.params);
		pallet_mlpow::WeightsSeed::<Runtime>::put(challenge.weights_seed);
		pallet_mlpow::EpochIndex::<Runtime>::put(challenge.epoch_index);
		pallet_mlpow::Difficulty::<Runtime>::put(difficulty);
		mlpow_runtime::api::dispatch(method, args).unwrap_or_else(|| panic!("the runtime has no API {method}"))
	})
}

#[test]
fn headers_encode_and_hash_as_the_runtime_header_type() {
	let alice: AccountId = Sr25519Keyring::Alice.to_account_id();
	let headers = golden()["headers"].as_array().unwrap().clone();
	assert_eq!(headers.len(), 4, "one header per compact mode of the block number");
	for h in &headers {
		let name = h["name"].as_str().unwrap();
		let logs: Vec<DigestItem> = h["digest"]
			.as_array()
			.unwrap()
			.iter()
			.map(|log| {
				let item = match log["kind"].as_str().unwrap() {
					"PreRuntime" => {
						assert_eq!(log["engine_id"].as_str().unwrap().as_bytes(), &POW_ENGINE_ID);
						let data = unhex(&log["data"]);
						// The author, as the pallet reads it to pay the reward.
						assert_eq!(AccountId::decode(&mut &data[..]).unwrap(), alice, "{name}");
						DigestItem::PreRuntime(POW_ENGINE_ID, data)
					}
					"RuntimeEnvironmentUpdated" => DigestItem::RuntimeEnvironmentUpdated,
					other => panic!("{name}: unexpected digest item {other}"),
				};
				assert_eq!(item.encode(), unhex(&log["scale"]), "{name}");
				item
			})
			.collect();
		let mut header = Header {
			parent_hash: h256(&h["parent_hash"]),
			number: h["number"].as_u64().unwrap() as u32,
			state_root: h256(&h["state_root"]),
			extrinsics_root: h256(&h["extrinsics_root"]),
			digest: Digest { logs },
		};
		assert_eq!(header.encode(), unhex(&h["unsealed_scale"]), "{name}");
		assert_eq!(header.hash(), h256(&h["pre_hash"]), "{name}");
		let authors: Vec<AccountId> =
			header.digest.logs.iter().filter_map(|l| l.pre_runtime_try_to(&POW_ENGINE_ID)).collect();
		assert!(authors.len() <= 1 && authors.iter().all(|a| *a == alice), "{name}");

		let seal = unhex(&h["seal"]["bytes"]);
		let seal_item = DigestItem::Seal(POW_ENGINE_ID, seal.clone());
		assert_eq!(seal_item.encode(), unhex(&h["seal_item_scale"]), "{name}");
		header.digest.push(seal_item);
		assert_eq!(header.encode(), unhex(&h["sealed_scale"]), "{name}");
		assert_eq!(header.hash(), h256(&h["block_hash"]), "{name}");

		// What an importing node does: decode, pop the last item (the
		// seal), hash the rest.
		let mut imported = Header::decode(&mut &unhex(&h["sealed_scale"])[..]).unwrap();
		assert_eq!(imported.digest_mut().pop(), Some(DigestItem::Seal(POW_ENGINE_ID, seal.clone())));
		assert_eq!(imported.hash(), h256(&h["pre_hash"]), "{name}");

		// And the runtime accepts the seal for it.
		let challenge =
			Challenge { params: params(&h["params"]), weights_seed: hash32(&h["weights_seed"]), epoch_index: 0 };
		let args = (hash32(&h["pre_hash"]), seal).encode();
		let result = call("MlpowApi_verify_seal", &args, challenge, u256(&h["difficulty"]));
		let want: Result<SealCheck, VerifyError> = Ok(SealCheck { digest: hash32(&h["seal"]["digest"]) });
		assert_eq!(result, want.encode(), "{name}");
	}
}

#[test]
fn challenge_and_difficulty_apis_return_the_recorded_bytes() {
	let file = golden();
	for c in file["challenges"].as_array().unwrap() {
		let challenge = Challenge {
			params: params(&c["params"]),
			weights_seed: hash32(&c["weights_seed"]),
			epoch_index: u64_dec(&c["epoch_index"]),
		};
		let scale = unhex(&c["scale"]);
		assert_eq!(challenge.encode(), scale, "{}", c["name"]);
		assert_eq!(Challenge::decode(&mut &scale[..]).unwrap(), challenge);
		assert_eq!(call("MlpowApi_challenge", &[], challenge, U256::one()), scale, "{}", c["name"]);
	}
	let any = Challenge { params: ChallengeParams::DEV, weights_seed: [0; 32], epoch_index: 0 };
	for d in file["difficulties"].as_array().unwrap() {
		let scale = unhex(&d["scale"]);
		assert_eq!(u256(&d["value"]).encode(), scale, "{}", d["value"]);
		assert_eq!(call("DifficultyApi_difficulty", &[], any, u256(&d["value"])), scale, "{}", d["value"]);
	}
}

#[test]
fn verify_seal_returns_the_recorded_bytes() {
	let file = golden();
	for e in file["verify_errors"].as_array().unwrap() {
		let scale = unhex(&e["scale"]);
		let error = VerifyError::decode(&mut &scale[..]).unwrap();
		assert_eq!(format!("{error:?}"), e["error"].as_str().unwrap());
		assert_eq!(error.encode(), scale);
	}
	let cases = file["verify_cases"].as_array().unwrap();
	assert!(cases.len() >= 14, "a case for every VerifyError and the boundary");
	for c in cases {
		let name = c["name"].as_str().unwrap();
		let args = unhex(&c["args_scale"]);
		assert_eq!((hash32(&c["pre_hash"]), unhex(&c["seal"])).encode(), args, "{name}");
		let challenge =
			Challenge { params: params(&c["params"]), weights_seed: hash32(&c["weights_seed"]), epoch_index: 0 };
		let result = call("MlpowApi_verify_seal", &args, challenge, u256(&c["difficulty"]));
		assert_eq!(result, unhex(&c["result_scale"]), "{name}");
		let decoded = Result::<SealCheck, VerifyError>::decode(&mut &result[..]).unwrap();
		match decoded {
			Ok(check) => assert_eq!((check.digest, c["outcome"].as_str()), (hash32(&c["digest"]), Some("Ok"))),
			Err(e) => assert_eq!(format!("{e:?}"), c["outcome"].as_str().unwrap(), "{name}"),
		}
	}
}

#[test]
fn v2_headers_encode_and_hash_as_the_runtime_header_type() {
	let file = mlpow_vectors::v2();
	let headers = file["headers"].as_array().unwrap();
	assert_eq!(headers.len(), 3, "seal lengths with one-, two- and four-byte Compact prefixes");
	for h in headers {
		let name = h["name"].as_str().unwrap();
		let logs: Vec<DigestItem> = h["digest"]
			.as_array()
			.unwrap()
			.iter()
			.map(|log| {
				let item = match log["kind"].as_str().unwrap() {
					"PreRuntime" => DigestItem::PreRuntime(POW_ENGINE_ID, unhex(&log["data"])),
					"RuntimeEnvironmentUpdated" => DigestItem::RuntimeEnvironmentUpdated,
					other => panic!("{name}: unexpected digest item {other}"),
				};
				assert_eq!(item.encode(), unhex(&log["scale"]), "{name}");
				item
			})
			.collect();
		let mut header = Header {
			parent_hash: h256(&h["parent_hash"]),
			number: h["number"].as_u64().unwrap() as u32,
			state_root: h256(&h["state_root"]),
			extrinsics_root: h256(&h["extrinsics_root"]),
			digest: Digest { logs },
		};
		assert_eq!(header.encode(), unhex(&h["unsealed_scale"]), "{name}");
		assert_eq!(header.hash(), h256(&h["pre_hash"]), "{name}");

		let seal = unhex(&h["seal"]["bytes"]);
		let seal_item = DigestItem::Seal(POW_ENGINE_ID, seal.clone());
		let item = seal_item.encode();
		assert_eq!(item[..item.len() - seal.len()], unhex(&h["seal_item_head"])[..], "{name}");
		assert_eq!(item[item.len() - seal.len()..], seal[..], "{name}");
		header.digest.push(seal_item);
		assert_eq!(header.encode(), unhex(&h["sealed_scale"]), "{name}");
		assert_eq!(header.hash(), h256(&h["block_hash"]), "{name}");

		// An importing node: decode, pop the seal, hash the rest.
		let mut imported = Header::decode(&mut &unhex(&h["sealed_scale"])[..]).unwrap();
		assert_eq!(imported.digest_mut().pop(), Some(DigestItem::Seal(POW_ENGINE_ID, seal.clone())));
		assert_eq!(imported.hash(), h256(&h["pre_hash"]), "{name}");

		// The runtime accepts the seal for it, and returns its v2 ticket.
		let challenge =
			Challenge { params: params(&h["params"]), weights_seed: hash32(&h["weights_seed"]), epoch_index: 0 };
		let args = (hash32(&h["pre_hash"]), seal).encode();
		let result = call("MlpowApi_verify_seal", &args, challenge, u256(&h["difficulty"]));
		let want: Result<SealCheck, VerifyError> = Ok(SealCheck { digest: hash32(&h["seal"]["ticket"]) });
		assert_eq!(result, want.encode(), "{name}");
	}
}

#[test]
fn v2_verify_seal_returns_the_recorded_bytes() {
	let file = mlpow_vectors::v2();
	let cases = file["verify_cases"].as_array().unwrap();
	for c in cases {
		let name = c["name"].as_str().unwrap();
		let seal = unhex(&c["seal"]);
		let args = (hash32(&c["pre_hash"]), seal.clone()).encode();
		assert_eq!(args, [unhex(&c["args_scale_head"]), seal].concat(), "{name}");
		let challenge =
			Challenge { params: params(&c["params"]), weights_seed: hash32(&c["weights_seed"]), epoch_index: 0 };
		let result = call("MlpowApi_verify_seal", &args, challenge, u256(&c["difficulty"]));
		assert_eq!(result, unhex(&c["result_scale"]), "{name}");
		match Result::<SealCheck, VerifyError>::decode(&mut &result[..]).unwrap() {
			Ok(check) => {
				assert_eq!((check.digest, c["outcome"].as_str()), (hash32(&c["digest"]), Some("Ok")), "{name}")
			}
			Err(e) => assert_eq!(format!("{e:?}"), c["outcome"].as_str().unwrap(), "{name}"),
		}
	}
	assert!(cases.iter().any(|c| params(&c["params"]) == ChallengeParams::GPU_V2), "GPU-sized seals");
}
