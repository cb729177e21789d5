//! Property: no peer set without work stops honest mining or finality.
//!
//! The attack as a live review found it (issue 22, finding 1): a peer
//! advertises a long fork that forks below the honest node's finalized
//! block: one valid block #1, then junk-sealed blocks on it. Such a fork can
//! never be imported, and `sc-network-sync` judged "major syncing" by the
//! median of its peers' claimed best *numbers*, so one such peer among two
//! froze an honest miner (no proposals) and its finality for good; the
//! failed import cost the peer nothing.
//!
//! Here the honest node runs the shipped dev chain with its default reorg
//! depth and mines with a real worker; the attacker is a real node on the
//! same chain whose fork is 100 blocks longer than the honest chain when it
//! connects. The honest node must keep producing and finalizing blocks,
//! refuse the fork as forking below finality, and hold it against the peer.

mod common;

use common::*;
use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClient};
use sp_core::H256;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(180);

async fn finalized_number(client: &WsClient) -> u32 {
	let hash: H256 = client.request("chain_getFinalizedHead", rpc_params![]).await.unwrap();
	header_at(client, Some(hash)).await.number
}

/// Waits until `check` holds of the node's (best, finalized) numbers.
async fn wait_for(client: &WsClient, node: &mut Node, what: &str, check: impl Fn(u32, u32) -> bool) -> (u32, u32) {
	let deadline = Instant::now() + scaled(TIMEOUT);
	loop {
		node.proc.assert_running();
		let (best, finalized) = (best_number(client).await, finalized_number(client).await);
		if check(best, finalized) {
			return (best, finalized);
		}
		assert!(
			Instant::now() < deadline,
			"{what}: best #{best}, finalized #{finalized} after {TIMEOUT:?}\n{}",
			node.proc.log_tail()
		);
		tokio::time::sleep(Duration::from_millis(250)).await;
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_advertising_a_fork_below_finality_stops_neither_mining_nor_finality() {
	let tmp = tempfile::tempdir().unwrap();

	// The honest miner, alone, until its finalized block is past #1.
	let mut honest = Node::start_on(
		&tmp.path().join("honest"),
		free_port(),
		free_port(),
		&["--dev", "-lsync=debug,sub-libp2p::peerstore=trace"],
	);
	let ch = honest.connect(TIMEOUT).await;
	let _worker = start_worker(&honest, 1);

	// The attacker's fork from the same genesis: a valid block #1, mined
	// apart, then (restarted as a node that accepts any seal) junk on it.
	let attacker_dir = tmp.path().join("attacker");
	let mut attacker = Node::start_dev(&attacker_dir, &[]);
	let ca = attacker.connect(TIMEOUT).await;
	let mut wa = start_worker(&attacker, 1);
	wait_for_block(&ca, &mut attacker, 1, TIMEOUT).await;
	wa.stop();
	drop(ca);
	attacker.proc.stop();
	let mut attacker = Node::start_with_env(
		&attacker_dir,
		free_port(),
		free_port(),
		&["--dev"],
		&[("MLPOW_TEST_ACCEPT_ANY_SEAL", "1")],
	);
	let ca = attacker.connect(TIMEOUT).await;

	let (best, _) = wait_for(&ch, &mut honest, "the honest miner finalizes", |_, f| f >= 2).await;
	while best_number(&ca).await < best + 100 {
		junk_block(&ca, TIMEOUT).await;
	}
	let claimed = best_number(&ca).await;
	assert_ne!(block_hash(&ca, 1).await, block_hash(&ch, 1).await, "the attacker's fork forks at #1");

	// The attacker connects, and keeps being dialled (a reserved peer).
	let id: String = ca.request("system_localPeerId", rpc_params![]).await.unwrap();
	let addr = format!("/ip4/127.0.0.1/tcp/{}/p2p/{id}", attacker.p2p_port);
	let _: Option<()> = ch.request("system_addReservedPeer", rpc_params![addr]).await.unwrap();
	let (best, finalized) = (best_number(&ch).await, finalized_number(&ch).await);
	println!("attacker claims #{claimed}; the honest node is at #{best}, finalized #{finalized}");

	// The honest node mines and finalizes on: ten more blocks of its own
	// and finality past where it stood, with the attacker's claim in place.
	let (best_after, finalized_after) =
		wait_for(&ch, &mut honest, "mining and finality go on", |b, f| b >= best + 10 && f >= finalized + 5).await;
	assert!(best_number(&ca).await >= claimed, "the attacker's claim stood throughout");
	// Dialling the attacker, syncing and verifying its fork can take longer
	// than ten blocks on a loaded machine: wait for the refusal and the
	// penalty rather than read the log once.
	honest.proc.wait_for_log("forks below finality", TIMEOUT).await;
	honest.proc.wait_for_log(&format!("Report {id}: -"), TIMEOUT).await;
	// And the node goes on after the attacker was met, not only before.
	let (best_after, finalized_after) =
		wait_for(&ch, &mut honest, "mining and finality go on after the refusal", |b, f| {
			b >= best_after + 3 && f > finalized_after
		})
		.await;
	let log = std::fs::read_to_string(&honest.proc.log).unwrap();
	// The fork was offered, and refused as forking below finality, naming the peer.
	assert!(
		log.lines().any(|l| l.contains("Verification failed for block")
			&& l.contains(&format!("received from ({id})"))
			&& l.contains("forks below finality")),
		"the attacker's fork was never offered and refused:\n{}",
		honest.proc.log_tail()
	);
	// And it cost the peer reputation.
	assert!(log.lines().any(|l| l.contains(&format!("Report {id}: -"))), "the attacker was never penalised");
	println!(
		"with the attacker claiming #{claimed}: best #{best} -> #{best_after}, finalized #{finalized} -> \
		 #{finalized_after}; the claim was {}",
		if log.contains("Peers claim a chain well ahead") {
			"seen by sync and set aside by the verified-sync oracle"
		} else {
			"dropped with its peer before the miner asked"
		}
	);
}
