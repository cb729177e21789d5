//! End to end, with the real binaries: a dev node and a CPU worker mine
//! blocks; every seal verifies with the primitives; the author is paid; the
//! mining RPC answers stale, malformed, invalid and valid seals correctly;
//! the chain survives a restart; and blocks with tampered seals are refused
//! on import.

mod common;

use common::*;
use jsonrpsee::{core::client::ClientT, rpc_params};
use mlpow_primitives::{
	mine::{EpochWeights, Search},
	Seal,
};
use mlpow_runtime::genesis_config_presets::{BLOCK_REWARD, ENDOWMENT};
use mlpow_work::{codes, Accepted, WorkItem};
use serde_json::Value;
use sp_keyring::Sr25519Keyring;
use std::time::Duration;

const BLOCKS: u32 = 5;
const START: Duration = Duration::from_secs(180);
const MINING: Duration = Duration::from_secs(300);

/// A block's seal and what it was checked against.
struct Sealed {
	seal: Vec<u8>,
	pre_hash: [u8; 32],
	challenge: mlpow_runtime_api::Challenge,
	difficulty: mlpow_primitives::U256,
}

impl Sealed {
	fn verifies(&self, seal: &[u8]) -> bool {
		let c = &self.challenge;
		mlpow_primitives::verify(&c.params, &c.weights_seed, &self.pre_hash, self.difficulty, seal).is_ok()
	}
}

/// Every block in `1..=upto` carries a seal that verifies, with the rules
/// read at its parent, through the primitives crate; and names Alice.
async fn check_seals(client: &jsonrpsee::ws_client::WsClient, upto: u32) -> Vec<Sealed> {
	let mut seals = vec![];
	for n in 1..=upto {
		let hash = block_hash(client, n).await;
		let header = header_at(client, Some(hash)).await;
		let (pre_hash, seal) = split_seal(&header);
		let challenge = challenge_at(client, header.parent_hash).await;
		let difficulty = difficulty_at(client, header.parent_hash).await;
		mlpow_primitives::verify(&challenge.params, &challenge.weights_seed, &pre_hash.0, difficulty, &seal)
			.unwrap_or_else(|e| panic!("block {n}: seal does not verify: {e}"));
		assert_eq!(author_of(&header), Some(Sr25519Keyring::Alice.to_account_id()), "block {n} author");
		seals.push(Sealed { seal, pre_hash: pre_hash.0, challenge, difficulty });
	}
	seals
}

/// Mines a winning seal for `work` in-process with the reference miner.
fn mine(work: &WorkItem) -> Seal {
	let weights = EpochWeights::generate(&work.params, &work.weights_seed.0).unwrap();
	let mut search = Search::new(&weights, &work.pre_hash.0, work.difficulty.0).unwrap();
	let mut nonce = 0u64;
	loop {
		if let Some(v) = search.search(nonce..nonce + 64) {
			return v.seal;
		}
		nonce += 64;
	}
}

async fn submit(
	client: &jsonrpsee::ws_client::WsClient,
	version: u64,
	seal: &str,
) -> Result<Accepted, jsonrpsee::core::client::Error> {
	client.request("mlpow_submitSeal", rpc_params![version, seal]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_chain_mines_verifies_rewards_and_restarts() {
	let dir = tempfile::tempdir().unwrap();
	let base = dir.path().join("chain");
	let mut node = Node::start_dev(&base, &[]);
	let client = node.connect(START).await;

	// No worker yet: the node has work, and refuses junk.
	let work: WorkItem = {
		let deadline = std::time::Instant::now() + START;
		loop {
			match client.request::<WorkItem, _>("mlpow_getWork", rpc_params![]).await {
				Ok(w) => break w,
				Err(e) => {
					assert!(std::time::Instant::now() < deadline, "no work: {e}");
					tokio::time::sleep(Duration::from_millis(200)).await;
				}
			}
		}
	};
	assert_eq!(work.number, 1);
	let r = submit(&client, work.version, "0xzz").await;
	assert_eq!(error_code(&r), Some(codes::MALFORMED), "garbage hex: {r:?}");
	let r = submit(&client, work.version, "0x0102").await;
	assert_eq!(error_code(&r), Some(codes::MALFORMED), "short seal: {r:?}");
	// One byte more than any seal may have (about 513 KiB), as valid hex:
	// refused on its length, never decoded.
	let r = submit(&client, work.version, &format!("0x{}", "ab".repeat(mlpow_primitives::MAX_SEAL_LEN + 1))).await;
	assert_eq!(error_code(&r), Some(codes::MALFORMED), "oversized seal: {r:?}");
	let r = submit(&client, work.version + 1000, &format!("0x{}", "00".repeat(16))).await;
	assert_eq!(error_code(&r), Some(codes::STALE), "unknown version: {r:?}");
	// A well-formed seal that loses the lottery (tile out of range: certain).
	let out_of_range = Seal { nonce: 1, tile_i: 1_000, tile_j: 0 };
	let r = submit(&client, work.version, &mlpow_work::encode_hex(&out_of_range.to_bytes())).await;
	assert_eq!(error_code(&r), Some(codes::INVALID), "tile out of range: {r:?}");

	// A valid seal, mined here, makes block 1.
	let seal = mine(&work);
	let accepted = submit(&client, work.version, &mlpow_work::encode_hex(&seal.to_bytes())).await.expect("valid seal");
	assert_eq!(accepted.number, 1);
	assert_eq!(block_hash(&client, 1).await.0, accepted.block_hash.0);
	// The same seal again: its work is gone.
	let r = submit(&client, work.version, &mlpow_work::encode_hex(&seal.to_bytes())).await;
	assert_eq!(error_code(&r), Some(codes::STALE), "resubmitted seal: {r:?}");

	// Now the real worker takes over.
	let mut worker = start_worker(&node, 1);
	wait_for_block(&client, &mut node, 1 + BLOCKS, MINING).await;
	worker.assert_running();
	let best = best_number(&client).await;
	let seals = check_seals(&client, best).await;
	println!("mined {best} blocks; every seal verifies");

	// Alice (the dev default --author) got every block's reward, at the
	// state of the best block we checked.
	let at = block_hash(&client, best).await;
	let alice = free_balance(&client, &Sr25519Keyring::Alice.to_account_id(), Some(at)).await;
	assert_eq!(alice, ENDOWMENT + best as u128 * BLOCK_REWARD, "Alice's balance at block {best}");

	// Kill the node under the running worker; restart it on the same base
	// path and port. The chain must be intact, and the worker must find the
	// node again by itself and go on mining.
	let tip = best_number(&client).await;
	let tip_hash = block_hash(&client, tip).await;
	drop(client);
	let rpc_port = node.rpc_port;
	node.proc.stop();
	let mut node = Node::start_dev_on(&base, rpc_port, &[]);
	let client = node.connect(START).await;
	assert!(best_number(&client).await >= tip, "best block after restart");
	assert_eq!(block_hash(&client, tip).await, tip_hash, "block {tip} after restart");
	wait_for_block(&client, &mut node, tip + 2, MINING).await;
	worker.assert_running();
	check_seals(&client, tip + 2).await;
	let worker_log = std::fs::read_to_string(&worker.log).unwrap();
	assert!(worker_log.contains("reconnecting"), "the worker should have reconnected:\n{}", worker.log_tail());
	println!("node restarted at block {tip}; the worker reconnected and mined on");
	worker.stop();
	drop(client);
	node.proc.stop();

	// Import: the exported chain imports into a fresh database; the same
	// chain with one tampered seal does not.
	let blocks = export_blocks(&["--dev"], &base, 1, 3);
	assert_eq!(blocks.len(), 3);

	let imported = import(dir.path(), "control", &["--dev"], &blocks);
	assert!(imported.0, "the untampered chain must import:\n{}", imported.1);

	let first = &seals[0];
	let original = Seal::from_bytes(&first.seal).unwrap();
	// A neighbouring nonce or tile could win by chance (odds 1/difficulty):
	// take the first one that does not, so each case is a real bad seal.
	let wrong_nonce = (1..)
		.map(|d| Seal { nonce: original.nonce.wrapping_add(d), ..original }.to_bytes().to_vec())
		.find(|s| !first.verifies(s))
		.unwrap();
	let tiles = first.challenge.params.tiles_n();
	let wrong_tile = (1..tiles)
		.map(|d| Seal { tile_j: (original.tile_j + d) % tiles, ..original }.to_bytes().to_vec())
		.find(|s| !first.verifies(s))
		.expect("some other tile loses");
	let other = seals[1].seal.clone();
	assert!(!first.verifies(&other));
	// A junk seal on a junk body (an undecodable extrinsic): the import
	// queue's verifier checks the seal first, so the body is never decoded
	// or executed, and the failure is a verification failure, which the
	// sync layer holds against the peer that sent the block. The control,
	// the same body under the block's real seal, fails on the body instead:
	// also in the verifier, before execution, since the body is not the one
	// the header's extrinsics root commits to.
	// One extrinsic of one byte, 0xff (SCALE: compact length 1, then the byte),
	// which no runtime call decodes.
	let junk_body = |block: &mut Value| block["block"]["extrinsics"] = Value::Array(vec!["0x04ff".into()]);
	let mut junk = blocks.clone();
	junk_body(&mut junk[0]);
	set_seal(&mut junk[0], &wrong_nonce);
	let (ok, log) = import(dir.path(), "junk-seal-junk-body", &["--dev"], &junk);
	assert!(!ok, "junk seal and body: import must fail:\n{log}");
	assert!(log.contains("block verification failed") && log.contains("invalid MatMul seal"), "a seal error:\n{log}");
	let mut control = blocks.clone();
	junk_body(&mut control[0]);
	let (ok, log) = import(dir.path(), "junk-body", &["--dev"], &control);
	assert!(!ok, "junk body: import must fail:\n{log}");
	assert!(
		log.contains("block verification failed")
			&& log.contains("not the one the header's extrinsics root commits to")
			&& !log.contains("MatMul seal"),
		"a body error, before execution:\n{log}"
	);
	println!("junk seal: refused by the verifier before the body was read");

	let cases = [
		("wrong nonce", wrong_nonce),
		("wrong tile", wrong_tile),
		("seal for another pre-hash", other),
		("truncated seal", first.seal[..15].to_vec()),
	];
	for (what, bad) in cases {
		let mut tampered = blocks.clone();
		set_seal(&mut tampered[0], &bad);
		let (ok, log) = import(dir.path(), what.replace(' ', "-").as_str(), &["--dev"], &tampered);
		assert!(!ok, "{what}: import must fail:\n{log}");
		assert!(log.contains("invalid MatMul seal"), "{what}: expected a seal error:\n{log}");
		println!("{what}: rejected on import");
	}
}

/// A node whose RPC is exposed (`--rpc-external`) serves safe methods only
/// (unless told `--rpc-methods unsafe`): it must refuse the mining methods
/// that take seals or push work, and still answer the read-only
/// `mlpow_getWork`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_mining_methods_are_refused_on_an_external_rpc() {
	let dir = tempfile::tempdir().unwrap();
	// Exposed on every interface, with Substrate's default `--rpc-methods
	// auto`, which means safe methods only for an external RPC server.
	let mut node = Node::start_dev(&dir.path().join("chain"), &["--rpc-external"]);
	let client = node.connect(START).await;
	// -32601 is what Substrate answers for unsafe methods on a safe RPC.
	let r = submit(&client, 1, &format!("0x{}", "00".repeat(16))).await;
	let err = r.expect_err("submitSeal must be refused");
	assert!(err.to_string().contains("unsafe"), "{err}");
	let sub = jsonrpsee::core::client::SubscriptionClientT::subscribe::<WorkItem, _>(
		&client,
		"mlpow_subscribeWork",
		rpc_params![],
		"mlpow_unsubscribeWork",
	)
	.await;
	let Err(err) = sub else { panic!("subscribeWork must be refused") };
	assert!(err.to_string().contains("unsafe"), "{err}");
	// Reading work is safe.
	let deadline = std::time::Instant::now() + START;
	loop {
		match client.request::<WorkItem, _>("mlpow_getWork", rpc_params![]).await {
			Ok(w) => {
				assert_eq!(w.number, 1);
				break;
			}
			Err(e) => assert!(std::time::Instant::now() < deadline, "getWork: {e}"),
		}
		tokio::time::sleep(Duration::from_millis(200)).await;
	}
}
