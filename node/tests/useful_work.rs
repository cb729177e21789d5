//! Puzzle v2 on matrices a miner chose, across real nodes: a dev chain whose
//! genesis parameters are v2; the test mines blocks on its own matrices (the
//! reference miner, through the node's mining RPC), keeps their exact product,
//! and a second node checks every block's openings as it syncs. A block whose
//! openings are missing, truncated or not what was committed is refused on
//! import, before its body is executed.

mod common;

use common::*;
use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClient};
use mlpow_primitives::{
	kernel,
	v2::{noise, seal::encoded_len, Job, Miner, Mode},
	ChallengeParams,
};
use mlpow_work::{codes, Accepted, WorkItem};
use serde_json::Value;
use sp_core::H256;
use std::{path::Path, time::Duration};

const TIMEOUT: Duration = Duration::from_secs(240);

/// The dev chain spec with puzzle v2 (`ChallengeParams::DEV_V2`) from genesis.
fn v2_dev_spec(path: &Path) {
	let out = std::process::Command::new(node_bin())
		.args(["build-spec", "--chain", "dev", "--disable-default-bootnode"])
		.output()
		.unwrap();
	assert!(out.status.success(), "build-spec: {}", String::from_utf8_lossy(&out.stderr));
	let mut spec: Value = serde_json::from_slice(&out.stdout).unwrap();
	spec["genesis"]["runtimeGenesis"]["patch"]["mlPow"]["params"] =
		serde_json::to_value(ChallengeParams::DEV_V2).unwrap();
	std::fs::write(path, serde_json::to_vec(&spec).unwrap()).unwrap();
}

/// A 7-bit matrix from a labelled stream: the "model layer" of this test.
fn matrix(len: usize, label: u8) -> Vec<i8> {
	let mut out = vec![0i8; len];
	noise::stream_rows("useful work test", &[label; 32], 1, 0, &mut out);
	out
}

async fn get_work(client: &WsClient) -> WorkItem {
	let deadline = std::time::Instant::now() + scaled(TIMEOUT);
	loop {
		let r: Result<WorkItem, _> = client.request("mlpow_getWork", rpc_params![]).await;
		if error_code(&r) != Some(codes::NO_WORK) {
			return r.unwrap();
		}
		assert!(std::time::Instant::now() < deadline, "no work");
		tokio::time::sleep(Duration::from_millis(100)).await;
	}
}

/// Mines one block on `job`'s matrices through the node's mining RPC, and
/// checks the product the miner keeps. Returns the submitted seal.
async fn mine_block(client: &WsClient, job: &Job, want_product: &[i32]) -> Vec<u8> {
	loop {
		let work = get_work(client).await;
		assert_eq!(work.params, *job.params());
		let mut miner = Miner::new(job, &work.pre_hash.0, work.difficulty.0).unwrap();
		let mut nonce = 0;
		let win = loop {
			if let Some(w) = miner.search(nonce..nonce + 64) {
				break w;
			}
			nonce += 64;
		};
		assert_eq!(miner.denoised().unwrap(), want_product, "the miner keeps the exact product");
		assert_eq!(win.seal.len(), encoded_len(job.params(), Mode::Chosen));
		let r: Result<Accepted, _> =
			client.request("mlpow_submitSeal", rpc_params![work.version, mlpow_work::encode_hex(&win.seal)]).await;
		match error_code(&r) {
			None => return win.seal,
			// A block arrived meanwhile (none should: nothing else mines). Again.
			Some(codes::STALE) => continue,
			Some(code) => panic!("seal refused ({code}): {r:?}"),
		}
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_on_chosen_matrices_are_checked_by_every_node() {
	let tmp = tempfile::tempdir().unwrap();
	let spec = tmp.path().join("dev-v2.json");
	v2_dev_spec(&spec);
	let spec = spec.to_str().unwrap();
	let author = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"; // Alice
	let key = "01".repeat(32);
	let chain = ["--chain", spec];
	let base_a = tmp.path().join("a");
	let mut a = Node::start_on(
		&base_a,
		free_port(),
		free_port(),
		&["--chain", spec, "--validator", "--author", author, "--node-key", &key],
	);
	let ca = a.connect(TIMEOUT).await;

	// The miner's own matrices: they stay the same from block to block (a
	// job survives new parents); only the noise changes.
	let p = ChallengeParams::DEV_V2;
	let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
	let job = Job::chosen(&p, matrix(m * k, 1), matrix(n * k, 2)).unwrap();
	let mut product = vec![0i32; m * n];
	kernel::gemm_naive(job.a(), job.bt(), m, n, k, &mut product);
	let mut seals = vec![];
	for _ in 0..3 {
		seals.push(mine_block(&ca, &job, &product).await);
	}
	assert_eq!(best_number(&ca).await, 3);

	// A second node syncs from genesis and checks every opening on import.
	let id: String = ca.request("system_localPeerId", rpc_params![]).await.unwrap();
	let boot = format!("/ip4/127.0.0.1/tcp/{}/p2p/{id}", a.p2p_port);
	let mut b =
		Node::start_on(&tmp.path().join("b"), free_port(), free_port(), &["--chain", spec, "--bootnodes", &boot]);
	let cb = b.connect(TIMEOUT).await;
	wait_for_block(&cb, &mut b, 3, TIMEOUT).await;
	for (number, seal) in (1..=3).zip(&seals) {
		let hash: H256 = block_hash(&ca, number).await;
		assert_eq!(block_hash(&cb, number).await, hash, "block {number}");
		let header = header_at(&cb, Some(hash)).await;
		let (pre_hash, on_b) = split_seal(&header);
		assert_eq!(&on_b, seal, "block {number} carries the openings");
		let challenge = challenge_at(&cb, header.parent_hash).await;
		let difficulty = difficulty_at(&cb, header.parent_hash).await;
		assert_eq!(challenge.params, p);
		mlpow_primitives::verify(&p, &challenge.weights_seed, &pre_hash.0, difficulty, &on_b)
			.unwrap_or_else(|e| panic!("block {number}: {e}"));
	}
	println!("3 blocks on chosen matrices: mined on A with their openings, synced and checked by B");

	// A seal whose openings lie is refused by the mining RPC...
	let work = get_work(&ca).await;
	let mut miner = Miner::new(&job, &work.pre_hash.0, work.difficulty.0).unwrap();
	let mut good = None;
	for nonce in (0..).step_by(64) {
		if let Some(w) = miner.search(nonce..nonce + 64) {
			good = Some(w.seal);
			break;
		}
	}
	let mut lying = good.unwrap();
	lying[17 + 64 + 5] ^= 1; // one opened value of A, still in range
	let r: Result<Accepted, _> =
		ca.request("mlpow_submitSeal", rpc_params![work.version, mlpow_work::encode_hex(&lying)]).await;
	assert_eq!(error_code(&r), Some(codes::INVALID), "{r:?}");
	drop(ca);
	drop(cb);
	a.proc.stop();
	b.proc.stop();

	// ...and a block carrying one is refused on import. The exported chain
	// imports into a fresh database; with block 1's seal tampered it does not.
	let blocks = export_blocks(&chain, &base_a, 1, 3);
	assert_eq!(blocks.len(), 3);
	let (ok, log) = import(tmp.path(), "control", &chain, &blocks);
	assert!(ok, "the untampered chain must import:\n{log}");
	let seal = &seals[0];
	let rows = 16 * p.k as usize;
	let flip = |at: usize| {
		let mut s = seal.clone();
		s[at] ^= 1;
		s
	};
	let cases = [
		("openings withheld", seal[..17].to_vec()),
		("openings truncated", seal[..seal.len() - 32].to_vec()),
		("an opened row of A changed", flip(17 + 64 + 7)),
		("an opened row of Bt changed", flip(17 + 64 + rows + 64 + 3)),
		("a Merkle path changed", flip(17 + 64 + rows + 1)),
		("the commitment to A changed", flip(17)),
	];
	for (what, bad) in cases {
		let mut tampered = blocks.clone();
		set_seal(&mut tampered[0], &bad);
		let (ok, log) = import(tmp.path(), &what.replace(' ', "-"), &chain, &tampered);
		assert!(!ok, "{what}: import must fail:\n{log}");
		assert!(
			log.contains("block verification failed") && log.contains("invalid MatMul seal"),
			"{what}: refused by the seal check, before the body:\n{log}"
		);
		println!("{what}: refused on import");
	}
}
