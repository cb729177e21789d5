//! Several real nodes on one chain, over real sockets: competing miners fork
//! and converge on the heaviest chain; a node killed with SIGKILL resyncs
//! without losing a block; a node joining late syncs the whole chain,
//! checking every seal; a fork below the reorg limit (`--max-reorg-depth`)
//! is refused even when it is heavier.

mod common;

use common::*;
use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClient};
use mlpow_primitives::U256;
use sp_core::H256;
use sp_runtime::traits::{BlakeTwo256, Hash as _};
use std::{
	io::{Read, Write},
	path::Path,
	time::{Duration, Instant},
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The multiaddress other nodes dial to reach `node`.
async fn peer_addr(client: &WsClient, node: &Node) -> String {
	let id: String = client.request("system_localPeerId", rpc_params![]).await.unwrap();
	format!("/ip4/127.0.0.1/tcp/{}/p2p/{id}", node.p2p_port)
}

async fn best_hash(client: &WsClient) -> H256 {
	header_at(client, None).await.hash()
}

/// The sum of the difficulties of blocks `1..=tip` on the chain ending at
/// `tip`: what `sc-consensus-pow` compares (every block's difficulty is the
/// one its parent's state sets).
async fn total_difficulty(client: &WsClient, tip: H256) -> U256 {
	let mut total = U256::zero();
	let mut header = header_at(client, Some(tip)).await;
	while header.number > 0 {
		total += difficulty_at(client, header.parent_hash).await;
		header = header_at(client, Some(header.parent_hash)).await;
	}
	total
}

/// The last seal of `tip`'s header, for the tie rule.
async fn seal_hash(client: &WsClient, tip: H256) -> H256 {
	BlakeTwo256::hash(&split_seal(&header_at(client, Some(tip)).await).1)
}

/// Waits until `nodes` all report the same best block; returns it.
async fn converge(nodes: &mut [(&WsClient, &mut Node)], timeout: Duration) -> H256 {
	let deadline = Instant::now() + timeout;
	loop {
		let mut bests = Vec::new();
		for (client, node) in nodes.iter_mut() {
			node.proc.assert_running();
			bests.push(best_hash(client).await);
		}
		if bests.windows(2).all(|w| w[0] == w[1]) {
			return bests[0];
		}
		assert!(Instant::now() < deadline, "no common best block after {timeout:?}: {bests:?}");
		tokio::time::sleep(Duration::from_millis(200)).await;
	}
}

/// One Prometheus metric of a node, read over HTTP.
fn metric(port: u16, line_prefix: &str) -> Option<u64> {
	let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
	stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
	let mut body = String::new();
	stream.read_to_string(&mut body).ok()?;
	body.lines().find(|l| l.starts_with(line_prefix))?.rsplit(' ').next()?.parse().ok()
}

fn dir(root: &Path, name: &str) -> std::path::PathBuf {
	root.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_miners_fork_then_converge_on_the_heaviest_chain() {
	let tmp = tempfile::tempdir().unwrap();
	// Two mining nodes of the dev chain that do not know each other yet.
	let mut a = Node::start_dev(&dir(tmp.path(), "a"), &[]);
	let mut b = Node::start_dev(&dir(tmp.path(), "b"), &[]);
	let ca = a.connect(TIMEOUT).await;
	let cb = b.connect(TIMEOUT).await;
	// The two branches end at different heights. (With no miner left to
	// announce a new block, Substrate's sync would never fetch a fork whose
	// tip is exactly as high as its own best block; on a live network the
	// next block announced settles it.) Which branch is heavier is up to the
	// lottery: the longer one usually, the shorter one sometimes.
	let mut wa = start_worker(&a, 1);
	let mut wb = start_worker(&b, 1);
	wait_for_block(&ca, &mut a, 4, TIMEOUT).await;
	wa.stop();
	let height_a = best_number(&ca).await;
	wait_for_block(&cb, &mut b, height_a + 2, TIMEOUT).await;
	wb.stop();

	// Two chains from the same genesis: a fork from block #1 on.
	let (tip_a, tip_b) = (best_hash(&ca).await, best_hash(&cb).await);
	assert_ne!(block_hash(&ca, 1).await, block_hash(&cb, 1).await, "the partitioned miners built the same block");
	let (td_a, td_b) = (total_difficulty(&ca, tip_a).await, total_difficulty(&cb, tip_b).await);
	let winner = if td_a != td_b {
		if td_a > td_b {
			tip_a
		} else {
			tip_b
		}
	} else if seal_hash(&ca, tip_a).await < seal_hash(&cb, tip_b).await {
		tip_a
	} else {
		tip_b
	};
	let height_b = best_number(&cb).await;
	println!("fork: A #{height_a} total difficulty {td_a} (tip {tip_a:?}), B #{height_b} {td_b} (tip {tip_b:?})");

	// Connect them: both must settle on the heavier chain.
	let addr = peer_addr(&ca, &a).await;
	let _: Option<()> = cb.request("system_addReservedPeer", rpc_params![addr]).await.unwrap();
	let best = converge(&mut [(&ca, &mut a), (&cb, &mut b)], TIMEOUT).await;
	assert_eq!(best, winner, "both nodes follow the chain with more total difficulty");
	let loser = if winner == tip_a { &cb } else { &ca };
	let reorged_tip = if winner == tip_a { tip_b } else { tip_a };
	let loser_header = header_at(loser, Some(reorged_tip)).await;
	assert_ne!(
		block_hash(loser, loser_header.number).await,
		reorged_tip,
		"the losing node reorganised away from its own chain"
	);

	// Mining goes on from the common chain, and both follow.
	let mut wb = start_worker(&b, 1);
	let height = header_at(&ca, None).await.number;
	wait_for_block(&ca, &mut a, height + 2, TIMEOUT).await;
	wait_for_block(&cb, &mut b, height + 2, TIMEOUT).await;
	wb.stop();
	converge(&mut [(&ca, &mut a), (&cb, &mut b)], TIMEOUT).await;
	assert_eq!(block_hash(&ca, height).await, best);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_resyncs_and_a_late_joiner_checks_every_seal() {
	let tmp = tempfile::tempdir().unwrap();
	let mut miner = Node::start_dev(&dir(tmp.path(), "miner"), &[]);
	let cm = miner.connect(TIMEOUT).await;
	let _worker = start_worker(&miner, 1);
	let boot = peer_addr(&cm, &miner).await;

	// A full node (not an authority: `--chain dev`, not `--dev`).
	let follower_base = dir(tmp.path(), "follower");
	let follower_rpc = free_port();
	let follower_p2p = free_port();
	let follower_args = ["--chain", "dev", "--bootnodes", boot.as_str()];
	let mut follower = Node::start_on(&follower_base, follower_rpc, follower_p2p, &follower_args);
	let cf = follower.connect(TIMEOUT).await;
	wait_for_block(&cf, &mut follower, 5, TIMEOUT).await;

	// SIGKILL it mid-run (blocks keep arriving), then restart it on the same
	// base path: every block it had is still there, and it catches up.
	let before = header_at(&cf, None).await.number;
	let mut had = Vec::new();
	for n in 1..=before {
		had.push(block_hash(&cf, n).await);
	}
	follower.proc.child.kill().unwrap();
	follower.proc.child.wait().unwrap();
	drop(cf);
	let mut follower = Node::start_on(&follower_base, follower_rpc, follower_p2p, &follower_args);
	let cf = follower.connect(TIMEOUT).await;
	for (n, hash) in (1..=before).zip(&had) {
		assert_eq!(block_hash(&cf, n).await, *hash, "block #{n} survived the SIGKILL");
	}
	let target = header_at(&cm, None).await.number + 2;
	wait_for_block(&cf, &mut follower, target, TIMEOUT).await;
	assert_eq!(block_hash(&cf, target).await, block_hash(&cm, target).await);
	assert_eq!(block_hash(&cm, before).await, had[before as usize - 1], "the miner has the same chain");

	// A node that joins late, from an empty database, syncs the whole chain,
	// and its verifier checked the seal of every block it imported.
	let prometheus = free_port();
	let prometheus_arg = prometheus.to_string();
	let late_args = ["--chain", "dev", "--bootnodes", boot.as_str(), "--prometheus-port", prometheus_arg.as_str()];
	let mut late = Node::start_on(&dir(tmp.path(), "late"), free_port(), free_port(), &late_args);
	let cl = late.connect(TIMEOUT).await;
	let tip = header_at(&cm, None).await.number;
	wait_for_block(&cl, &mut late, tip, TIMEOUT).await;
	assert_eq!(block_hash(&cl, tip).await, block_hash(&cm, tip).await);
	let valid = metric(prometheus, "mlpow_seal_checks_total{result=\"valid\"").expect("seal-check metric");
	let invalid = metric(prometheus, "mlpow_seal_checks_total{result=\"invalid\"").unwrap_or(0);
	println!("late joiner: synced to #{tip}, seals checked: {valid} valid, {invalid} invalid");
	assert!(valid >= tip as u64, "checked {valid} seals for {tip} blocks");
	assert_eq!(invalid, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_below_the_reorg_limit_is_refused() {
	let tmp = tempfile::tempdir().unwrap();
	// A keeps at most 2 blocks reorganisable; B is an ordinary node.
	let mut a = Node::start_dev(&dir(tmp.path(), "a"), &["--max-reorg-depth", "2"]);
	let mut b = Node::start_dev(&dir(tmp.path(), "b"), &[]);
	let ca = a.connect(TIMEOUT).await;
	let cb = b.connect(TIMEOUT).await;
	let mut wa = start_worker(&a, 1);
	wait_for_block(&ca, &mut a, 4, TIMEOUT).await;
	wa.stop();
	let tip_a = best_hash(&ca).await;
	let td_a = total_difficulty(&ca, tip_a).await;
	// B mines alone until its chain is heavier than A's.
	let mut wb = start_worker(&b, 1);
	let deadline = Instant::now() + TIMEOUT;
	loop {
		let tip = best_hash(&cb).await;
		if total_difficulty(&cb, tip).await > td_a && header_at(&cb, None).await.number >= 6 {
			break;
		}
		assert!(Instant::now() < deadline, "B never outweighed A");
		tokio::time::sleep(Duration::from_millis(200)).await;
	}
	wb.stop();
	let tip_b = best_hash(&cb).await;
	let finalized_a: H256 = ca.request("chain_getFinalizedHead", rpc_params![]).await.unwrap();
	assert_ne!(finalized_a, block_hash(&ca, 0).await, "A has finalized part of its chain");

	let addr = peer_addr(&ca, &a).await;
	let _: Option<()> = cb.request("system_addReservedPeer", rpc_params![addr]).await.unwrap();
	// A is offered B's heavier chain and refuses it, saying why: it forks
	// off below A's finalized block.
	a.proc.wait_for_log("Potential long-range attack: block not in finalized chain", TIMEOUT).await;
	assert_eq!(best_hash(&ca).await, tip_a, "A kept its own chain");
	let still: H256 = ca.request("chain_getFinalizedHead", rpc_params![]).await.unwrap();
	assert_eq!(still, finalized_a);
	assert_eq!(best_hash(&cb).await, tip_b, "B kept its heavier chain");
}
