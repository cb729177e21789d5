//! Several real nodes on one chain, over real sockets: competing miners fork
//! and converge on the heaviest chain; a node killed with SIGKILL resyncs
//! without losing a block; a node joining late syncs the whole chain,
//! checking every seal; a fork below the reorg limit (`--max-reorg-depth`)
//! is refused even when it is heavier; a fresh node that first syncs a long
//! light chain does not finalize it, and ends on the heavier one.

mod common;

use common::*;
use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClient};
use mlpow_primitives::U256;
use sp_core::H256;
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

/// The total work of blocks `1..=tip` on the chain ending at `tip`: each
/// block's difficulty times the MACs a ticket costs at its parameters (both
/// as its parent's state sets them). What `sc-consensus-pow` compares, and
/// what `minimumChainWork` is measured in (SPEC.md, "Fork choice").
async fn total_work(client: &WsClient, tip: H256) -> U256 {
	let mut total = U256::zero();
	let mut header = header_at(client, Some(tip)).await;
	while header.number > 0 {
		let cost = challenge_at(client, header.parent_hash).await.params.macs_per_ticket();
		total += difficulty_at(client, header.parent_hash).await * U256::from(cost);
		header = header_at(client, Some(header.parent_hash)).await;
	}
	total
}

/// Waits until `nodes` all report the same best block; returns it.
async fn converge(nodes: &mut [(&WsClient, &mut Node)], timeout: Duration) -> H256 {
	let deadline = Instant::now() + scaled(timeout);
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
	let height_a = header_at(&ca, Some(quiet_tip(&ca).await)).await.number;
	wait_for_block(&cb, &mut b, height_a + 2, TIMEOUT).await;
	wb.stop();

	// Two chains from the same genesis: a fork from block #1 on.
	assert_ne!(block_hash(&ca, 1).await, block_hash(&cb, 1).await, "the partitioned miners built the same block");
	let (tip_a, mut tip_b) = (quiet_tip(&ca).await, quiet_tip(&cb).await);
	let (td_a, mut td_b) = (total_work(&ca, tip_a).await, total_work(&cb, tip_b).await);
	// At exactly equal work each node keeps the chain it saw first (SPEC.md,
	// "Fork choice"), so neither would move: B mines one more block.
	while td_a == td_b {
		let mut wb = start_worker(&b, 1);
		let next = best_number(&cb).await + 1;
		wait_for_block(&cb, &mut b, next, TIMEOUT).await;
		wb.stop();
		tip_b = quiet_tip(&cb).await;
		td_b = total_work(&cb, tip_b).await;
	}
	let winner = if td_a > td_b { tip_a } else { tip_b };
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
	// (It finalizes at once: no settle time after a sync.)
	let mut a = Node::start_dev(&dir(tmp.path(), "a"), &["--max-reorg-depth", "2", "--finality-settle-secs", "0"]);
	let mut b = Node::start_dev(&dir(tmp.path(), "b"), &[]);
	let ca = a.connect(TIMEOUT).await;
	let cb = b.connect(TIMEOUT).await;
	let mut wa = start_worker(&a, 1);
	wait_for_block(&ca, &mut a, 4, TIMEOUT).await;
	wa.stop();
	let tip_a = quiet_tip(&ca).await;
	let td_a = total_work(&ca, tip_a).await;
	// B mines alone until its chain is heavier than A's.
	let mut wb = start_worker(&b, 1);
	let deadline = Instant::now() + scaled(TIMEOUT);
	loop {
		let tip = best_hash(&cb).await;
		if total_work(&cb, tip).await > td_a && header_at(&cb, None).await.number >= 6 {
			break;
		}
		assert!(Instant::now() < deadline, "B never outweighed A");
		tokio::time::sleep(Duration::from_millis(200)).await;
	}
	wb.stop();
	let tip_b = quiet_tip(&cb).await;
	let finalized_a: H256 = ca.request("chain_getFinalizedHead", rpc_params![]).await.unwrap();
	assert_ne!(finalized_a, block_hash(&ca, 0).await, "A has finalized part of its chain");

	let addr = peer_addr(&ca, &a).await;
	let _: Option<()> = cb.request("system_addReservedPeer", rpc_params![addr]).await.unwrap();
	// A is offered B's heavier chain and refuses it in its verifier, saying
	// why: it forks off below A's finalized block (a verification failure,
	// which costs B reputation, not a plain import error).
	a.proc.wait_for_log("it forks below finality", TIMEOUT).await;
	assert_eq!(best_hash(&ca).await, tip_a, "A kept its own chain");
	let still: H256 = ca.request("chain_getFinalizedHead", rpc_params![]).await.unwrap();
	assert_eq!(still, finalized_a);
	assert_eq!(best_hash(&cb).await, tip_b, "B kept its heavier chain");
}

/// A dev chain spec (raw, so its genesis is exactly `--dev`'s) whose
/// `minimumChainWork` property is `work`, written to `path`.
fn dev_spec_with_minimum_work(path: &Path, work: U256) {
	let out = std::process::Command::new(node_bin())
		.args(["build-spec", "--chain", "dev", "--raw", "--disable-default-bootnode"])
		.output()
		.unwrap();
	assert!(out.status.success(), "build-spec: {}", String::from_utf8_lossy(&out.stderr));
	let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
	spec["properties"]["minimumChainWork"] = work.to_string().into();
	std::fs::write(path, serde_json::to_vec(&spec).unwrap()).unwrap();
}

/// The attack on rolling finality: a fresh node whose first peer serves a
/// long chain that is lighter than the honest one. Sync follows block
/// numbers, so it downloads the light chain first; had it finalized it as it
/// went, it would then refuse the heavier chain forever (as node A refuses
/// a fork below its finalized block in the test above). With the chain
/// spec's minimum chain work above the light chain's, it finalizes nothing
/// there, and moves to the heavier chain when it sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_that_syncs_a_light_chain_first_ends_on_the_heavier_one() {
	let tmp = tempfile::tempdir().unwrap();
	let depth = ["--max-reorg-depth", "2"];
	// The light chain: long enough to finalize many blocks 2 deep.
	let mut light = Node::start_dev(&dir(tmp.path(), "light"), &depth);
	let cl = light.connect(TIMEOUT).await;
	let mut wl = start_worker(&light, 1);
	wait_for_block(&cl, &mut light, 8, TIMEOUT).await;
	wl.stop();
	let work_light = total_work(&cl, best_hash(&cl).await).await;
	// The honest chain, mined apart from the same genesis until it has twice
	// the light chain's work (so the light chain stays lighter when it grows
	// by a few blocks below).
	let mut heavy = Node::start_dev(&dir(tmp.path(), "heavy"), &depth);
	let ch = heavy.connect(TIMEOUT).await;
	let mut wh = start_worker(&heavy, 1);
	let deadline = Instant::now() + scaled(TIMEOUT);
	let work_heavy = loop {
		let work = total_work(&ch, best_hash(&ch).await).await;
		if work > work_light * U256::from(2) {
			break work;
		}
		assert!(Instant::now() < deadline, "the honest chain never outweighed the light one");
		tokio::time::sleep(Duration::from_millis(200)).await;
	};
	wh.stop();
	// `mlpow_chainWork`, the command a release reads its minimum from, says
	// what the blocks' own difficulties and parameters sum to.
	let reported: serde_json::Value = ch.request("mlpow_chainWork", rpc_params![]).await.unwrap();
	let best: H256 = serde_json::from_value(reported["best"]["hash"].clone()).unwrap();
	let summed = total_work(&ch, best).await;
	assert_eq!(reported["best"]["work"].as_str(), Some(summed.to_string().as_str()), "mlpow_chainWork at {best:?}");
	assert!(summed >= work_heavy);

	// The spec's minimum chain work: the honest chain's, as a release would
	// set it from a recent honest block.
	let spec = tmp.path().join("dev-min-work.json");
	dev_spec_with_minimum_work(&spec, work_heavy);
	let boot = peer_addr(&cl, &light).await;
	let args = ["--chain", spec.to_str().unwrap(), "--bootnodes", boot.as_str(), depth[0], depth[1]];
	let mut fresh = Node::start_on(&dir(tmp.path(), "fresh"), free_port(), free_port(), &args);
	let cf = fresh.connect(TIMEOUT).await;
	wait_for_block(&cf, &mut fresh, best_number(&cl).await, TIMEOUT).await;
	// The light chain grows while the fresh node follows it: these blocks
	// arrive as announcements, as a live attacker's would, and each is a
	// moment the old rule finalized the light chain 2 deep.
	let mut wl = start_worker(&light, 1);
	let grown = best_number(&cl).await + 2;
	wait_for_block(&cf, &mut fresh, grown, TIMEOUT).await;
	wl.stop();
	fresh.proc.wait_for_log("Not finalizing: the best chain's work is below", TIMEOUT).await;
	let tip_light = best_hash(&cl).await;
	let light_number = best_number(&cl).await;
	assert!(total_work(&cl, tip_light).await < work_heavy, "the light chain stayed lighter");
	let light_block_1 = block_hash(&cl, 1).await;
	assert_eq!(block_hash(&cf, 1).await, light_block_1, "the fresh node follows the light chain");
	let finalized: H256 = cf.request("chain_getFinalizedHead", rpc_params![]).await.unwrap();
	assert_eq!(finalized, block_hash(&cf, 0).await, "nothing on the light chain is final");

	// The honest chain reaches it (its miner announces new blocks), and it moves.
	let addr = peer_addr(&ch, &heavy).await;
	let _: Option<()> = cf.request("system_addReservedPeer", rpc_params![addr]).await.unwrap();
	let mut wh = start_worker(&heavy, 1);
	let best = converge(&mut [(&cf, &mut fresh), (&ch, &mut heavy)], TIMEOUT).await;
	// (The light chain's own node may move too: it weighs the heavier chain
	// the fresh node now claims. So compare with the light chain as it was.)
	assert_ne!(block_hash(&cf, 1).await, light_block_1, "the fresh node left the light chain");
	// Finality follows the next best-block import, asynchronously.
	let deadline = Instant::now() + scaled(TIMEOUT);
	let finalized_number = loop {
		let finalized: H256 = cf.request("chain_getFinalizedHead", rpc_params![]).await.unwrap();
		let number = header_at(&cf, Some(finalized)).await.number;
		if number > 0 {
			break number;
		}
		assert!(Instant::now() < deadline, "the heavier chain was never finalized");
		tokio::time::sleep(Duration::from_millis(200)).await;
	};
	wh.stop();
	println!(
		"light chain #{light_number} never finalized; the fresh node moved to the heavier chain \
		 (tip {best:?}) and finalized #{finalized_number} there"
	);
}
