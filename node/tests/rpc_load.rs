//! The mining RPC under a flood of bad submissions: many connections send
//! malformed, stale and invalid seals (loopback only, bounded in count and
//! time) while a real worker keeps mining. Every bad submission gets its
//! error, blocks keep coming, and the node's memory stays bounded. It
//! prints the figures that BENCHMARKS.md records.

mod common;

use common::*;
use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClientBuilder};
use mlpow_primitives::{Seal, VerifyError};
use mlpow_work::{codes, Accepted, WorkItem};
use std::{
	sync::{
		atomic::{AtomicBool, AtomicU64, Ordering},
		Arc,
	},
	time::{Duration, Instant},
};

const CONNECTIONS: usize = 32;
/// Per connection, an upper bound: the flood stops as soon as enough blocks
/// came (in practice after a few thousand requests in all).
const MAX_REQUESTS: u64 = 20_000;
/// Blocks that must be imported while the flood runs.
const BLOCKS_DURING: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(180);

fn rss_kib(pid: u32) -> u64 {
	let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
	status
		.lines()
		.find(|l| l.starts_with("VmRSS:"))
		.and_then(|l| l.split_whitespace().nth(1))
		.and_then(|v| v.parse().ok())
		.unwrap_or(0)
}

/// A seal for `work` that is well-formed and in range but loses the lottery
/// (checked here first, so it is certainly invalid).
fn losing_seal(work: &WorkItem, salt: u64) -> Option<Seal> {
	let p = &work.params;
	let seal =
		Seal { nonce: salt.wrapping_mul(0x9e37_79b9_7f4a_7c15), tile_i: (salt % (p.m / p.t) as u64) as u32, tile_j: 0 };
	match mlpow_primitives::verify(p, &work.weights_seed.0, &work.pre_hash.0, work.difficulty.0, &seal.to_bytes()) {
		Err(VerifyError::AboveTarget) => Some(seal),
		_ => None,
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_submissions_is_refused_while_mining_goes_on() {
	let dir = tempfile::tempdir().unwrap();
	let mut node = Node::start_dev(&dir.path().join("chain"), &[]);
	let client = node.connect(TIMEOUT).await;
	let _worker = start_worker(&node, 1);
	wait_for_block(&client, &mut node, 2, TIMEOUT).await;
	let pid = node.proc.child.id();
	let rss_before = rss_kib(pid);
	let start_block = best_number(&client).await;

	let stop = Arc::new(AtomicBool::new(false));
	let sent = Arc::new(AtomicU64::new(0));
	let began = Instant::now();
	let mut floods = Vec::new();
	for c in 0..CONNECTIONS {
		let (url, stop, sent) = (node.ws_url(), stop.clone(), sent.clone());
		floods.push(tokio::spawn(async move {
			let ws = WsClientBuilder::default().build(&url).await.expect("connect");
			let mut by_code = [0u64; 3]; // stale, invalid, malformed
			let mut current = 0;
			for i in 0..MAX_REQUESTS {
				if stop.load(Ordering::Relaxed) {
					break;
				}
				let salt = (c as u64) << 32 | i;
				let (version, seal, expect): (u64, String, &[i32]) = match i % 4 {
					0 => (0, "0xnot-hex".into(), &[codes::MALFORMED]),
					// Hex, but no seal's length. The node checks the version first,
					// so this is stale when a block arrived since `current`.
					1 => (current, "0x0102030405".into(), &[codes::MALFORMED, codes::STALE]),
					2 => (u64::MAX - i, format!("0x{}", "00".repeat(16)), &[codes::STALE]),
					_ => {
						// Between a block's import and the next proposal there is
						// briefly no work (1000); then this round is skipped.
						let work: Result<WorkItem, _> = ws.request("mlpow_getWork", rpc_params![]).await;
						if error_code(&work) == Some(codes::NO_WORK) {
							continue;
						}
						let work = work.expect("getWork");
						current = work.version;
						let Some(seal) = losing_seal(&work, salt) else { continue };
						// If a block arrives in between, stale is the right answer.
						(work.version, mlpow_work::encode_hex(&seal.to_bytes()), &[codes::INVALID, codes::STALE])
					}
				};
				let r: Result<Accepted, _> = ws.request("mlpow_submitSeal", rpc_params![version, seal.clone()]).await;
				let code = error_code(&r).unwrap_or_else(|| panic!("a bad seal was accepted: {seal}"));
				assert!(expect.contains(&code), "{seal} for version {version}: code {code}, expected {expect:?}");
				by_code[match code {
					codes::STALE => 0,
					codes::INVALID => 1,
					_ => 2,
				}] += 1;
				sent.fetch_add(1, Ordering::Relaxed);
			}
			by_code
		}));
	}

	// Watch the chain and the node's memory while the flood runs.
	let mut rss_peak = rss_before;
	let deadline = Instant::now() + scaled(TIMEOUT);
	loop {
		node.proc.assert_running();
		rss_peak = rss_peak.max(rss_kib(pid));
		let best = best_number(&client).await;
		if best >= start_block + BLOCKS_DURING || floods.iter().all(|f| f.is_finished()) {
			break;
		}
		assert!(Instant::now() < deadline, "only {} blocks during the flood", best - start_block);
		tokio::time::sleep(Duration::from_millis(100)).await;
	}
	let mined = best_number(&client).await - start_block;
	stop.store(true, Ordering::Relaxed);
	let mut totals = [0u64; 3];
	for f in floods {
		let counts = f.await.expect("a flooding connection failed");
		for (t, c) in totals.iter_mut().zip(counts) {
			*t += c;
		}
	}
	let secs = began.elapsed().as_secs_f64();
	let total = sent.load(Ordering::Relaxed);
	let rss_after = rss_kib(pid);
	println!(
		"flood: {CONNECTIONS} connections, {total} bad submissions in {secs:.1} s ({:.0}/s): {} stale, {} invalid, {} malformed, every one refused",
		total as f64 / secs,
		totals[0],
		totals[1],
		totals[2]
	);
	println!("blocks imported during the flood: {mined}");
	println!(
		"node RSS: {} MiB before, {} MiB peak, {} MiB after",
		rss_before / 1024,
		rss_peak / 1024,
		rss_after / 1024
	);
	assert!(total >= CONNECTIONS as u64 * 4, "the flood hardly ran: {total} requests");
	assert!(mined >= BLOCKS_DURING, "only {mined} blocks were imported during the flood");
	// Bounded: a flood leaves no per-request state behind. (Generous: the
	// node's caches and allocator arenas grow on their own.)
	assert!(rss_after < rss_before + 256 * 1024, "RSS grew from {rss_before} KiB to {rss_after} KiB");
}
