//! A hostile peer over the real network: a node that serves blocks whose
//! seals do not verify. The honest node must refuse the block in its import
//! queue's verifier (before the body), hold it against the peer that sent
//! it (`sc-network-sync` lowers the reputation by 2^29 for a verification
//! failure and drops the peer; three within the decay time ban it), and
//! never import a junk block.
//!
//! The hostile peer is a debug `mlpow-node` started with
//! `MLPOW_TEST_ACCEPT_ANY_SEAL=1` (`mlpow_consensus::hostile`): it accepts
//! any seal through its mining RPC, imports the block and announces it.

mod common;

use common::*;
use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClient};
use serde_json::Value;
use std::{
	process::{Command, Stdio},
	time::{Duration, Instant},
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// `sc-network-sync`'s reputation change for a block that fails verification.
const VERIFICATION_FAIL: i32 = -(1 << 29);

async fn peer_id(client: &WsClient) -> String {
	client.request("system_localPeerId", rpc_params![]).await.unwrap()
}

async fn peers(client: &WsClient) -> Vec<String> {
	let peers: Vec<Value> = client.request("system_peers", rpc_params![]).await.unwrap();
	peers.iter().filter_map(|p| p["peerId"].as_str().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_junk_seals_is_refused_and_penalised() {
	let tmp = tempfile::tempdir().unwrap();
	let mut hostile = Node::start_with_env(
		&tmp.path().join("hostile"),
		free_port(),
		free_port(),
		&["--dev"],
		&[("MLPOW_TEST_ACCEPT_ANY_SEAL", "1")],
	);
	let hostile_rpc = hostile.connect(TIMEOUT).await;
	let hostile_id = peer_id(&hostile_rpc).await;
	let boot = format!("/ip4/127.0.0.1/tcp/{}/p2p/{hostile_id}", hostile.p2p_port);

	// The honest node knows only the hostile one, and logs its sync and its
	// peer store's reputation changes.
	let mut honest = Node::start_on(
		&tmp.path().join("honest"),
		free_port(),
		free_port(),
		&["--chain", "dev", "--bootnodes", boot.as_str(), "-lsync=debug,sub-libp2p::peerstore=trace"],
	);
	let honest_rpc = honest.connect(TIMEOUT).await;
	let deadline = Instant::now() + scaled(TIMEOUT);
	while !peers(&honest_rpc).await.contains(&hostile_id) {
		assert!(Instant::now() < deadline, "the nodes never connected:\n{}", honest.proc.log_tail());
		tokio::time::sleep(Duration::from_millis(200)).await;
	}

	// A junk block: the hostile node imports it and announces it.
	let first = junk_block(&hostile_rpc, TIMEOUT).await;
	hostile.proc.wait_for_log("accepts EVERY seal", TIMEOUT).await;
	let report = format!("Report {hostile_id}: {VERIFICATION_FAIL:+}");
	honest.proc.wait_for_log(&report, TIMEOUT).await;
	honest.proc.wait_for_log(&format!("{hostile_id} disconnected"), TIMEOUT).await;
	// More junk while the peer is back: none of it gets in either.
	for _ in 0..3 {
		junk_block(&hostile_rpc, TIMEOUT).await;
		tokio::time::sleep(Duration::from_secs(1)).await;
	}
	tokio::time::sleep(Duration::from_secs(3)).await;

	let log = std::fs::read_to_string(&honest.proc.log).unwrap();
	// Refused by the import queue's verifier, with the seal's error, naming
	// the peer: the check that runs before the block body is looked at.
	assert!(
		log.lines().any(|l| l.contains("Verification failed for block")
			&& l.contains(&format!("received from ({hostile_id})"))
			&& l.contains("invalid MatMul seal")),
		"no verification failure naming the hostile peer:\n{}",
		honest.proc.log_tail()
	);
	// The failure cost the peer 2^29 of reputation, for that reason.
	assert!(
		log.lines().any(|l| l.contains(&report) && l.contains("Block verification failed")),
		"no reputation report for the failure:\n{}",
		honest.proc.log_tail()
	);
	// Nothing the hostile peer served was imported.
	let best = best_number(&honest_rpc).await;
	assert_eq!(best, 0, "the honest node imported a junk block");
	let none: Option<Value> = honest_rpc.request("chain_getHeader", rpc_params![first]).await.unwrap();
	assert!(none.is_none());
	assert!(best_number(&hostile_rpc).await >= 4, "the hostile node imported its own junk");
}

/// The debug builds' test switches (accept any seal; a test clock; slow
/// imports) exist in every debug node, and debug builds are the documented
/// way to run one: on a chain that is not a development chain, the shipped
/// local testnet here, the node refuses to start with any of them, and says
/// why.
#[test]
fn the_test_switches_are_refused_off_development_chains() {
	let tmp = tempfile::tempdir().unwrap();
	let clock = tmp.path().join("clock");
	std::fs::write(&clock, "3000").unwrap();
	for (name, env, value) in [
		("accept-any-seal", "MLPOW_TEST_ACCEPT_ANY_SEAL", "1"),
		("test-clock", mlpow_consensus::test_switches::STAMP_SPACING_FILE_ENV, clock.to_str().unwrap()),
		("slow-import", mlpow_consensus::test_switches::IMPORT_DELAY_FILE_ENV, clock.to_str().unwrap()),
		// A file that is not there yet: it could be written once the node runs.
		("later", mlpow_consensus::test_switches::IMPORT_DELAY_FILE_ENV, "/nonexistent/mlpow-later"),
	] {
		let (base, log_path) = (tmp.path().join(name), tmp.path().join(format!("{name}.log")));
		let (rpc, p2p) = (free_port().to_string(), free_port().to_string());
		let mut child = Command::new(node_bin())
			.args(["--chain", "local", "--base-path", base.to_str().unwrap(), "--rpc-port", &rpc, "--port", &p2p])
			.env(env, value)
			.stdout(Stdio::null())
			.stderr(std::fs::File::create(&log_path).unwrap())
			.spawn()
			.unwrap();
		let deadline = Instant::now() + scaled(TIMEOUT);
		let status = loop {
			if let Some(status) = child.try_wait().unwrap() {
				break status;
			}
			if Instant::now() > deadline {
				child.kill().unwrap();
				panic!("{env}: a node on the local testnet kept running with the switch set");
			}
			std::thread::sleep(Duration::from_millis(100));
		};
		let log = std::fs::read_to_string(&log_path).unwrap();
		assert!(!status.success(), "{env}: {log}");
		assert!(log.contains("refused on a chain that is not a development chain"), "{env}: {log}");
	}
}
