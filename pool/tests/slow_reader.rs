//! Property: a miner that never reads cannot make the pool hold more than a
//! bounded backlog for it, nor delay the jobs of miners that do read
//! (issue 25, "slow clients"; SECURITY.md, "a slow reader").
//!
//! The pool runs in this process as `mlpow-pool` runs it (`server::serve`
//! on a real socket, a real ledger in a temporary directory); the test
//! stands in for its node, putting a new job in the table for each block
//! (the same `watch` channel the node loop feeds). Two miners connect over
//! loopback TCP. The slow one subscribes and authorizes with a 4 KiB
//! receive buffer and then reads nothing, so the kernel's buffers fill and
//! the pool's writes to it block. The honest one reads every line, and the
//! test waits for it to get each job before the next: the pool's writes to
//! one connection must not hold up another's.
//!
//! What it shows: the slow connection is dropped after a number of jobs
//! that only the socket buffers and the pool's queue of `OUTBOX` lines
//! explain (well under the bound asserted); the honest miner got every job,
//! each within seconds; and when the slow miner finally reads, it gets
//! fewer jobs than were sent, then the end of the stream.

use mlpow_pool::{jobs::Jobs, ledger::Ledger, server, stats::Stats};
use mlpow_primitives::{ChallengeParams, U256};
use mlpow_work::{Hex32, HexU256, WorkItem};
use serde_json::{json, Value};
use sp_core::crypto::{AccountId32, Ss58Codec};
use std::{
	sync::{atomic::Ordering, Arc},
	time::Duration,
};
use tokio::{
	io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
	net::{TcpListener, TcpSocket, TcpStream},
	sync::{mpsc, watch},
	time::timeout,
};

/// More jobs than socket buffers and the pool's queue can hold for a
/// connection. The reader's buffer is fixed at 4 KiB here, so the pool's
/// send buffer holds the rest: Linux grows it up to `tcp_wmem`'s maximum
/// (4 MiB by default). A job's line is about 500 bytes, so ten times that
/// maximum in 400-byte jobs is far more than can be buffered; the run here
/// dropped the slow miner after about 10,000 (the pool's task for it sees
/// only the newest of the jobs sent while it waits, so more are sent than
/// it queues).
fn most_jobs() -> u64 {
	let wmem_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
		.ok()
		.and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse::<u64>().ok()))
		.unwrap_or(4 << 20);
	(10 * wmem_max / 400).max(100_000)
}

/// Lines the pool queues for a miner before it drops it (`OUTBOX` in
/// pool/src/server.rs): fewer jobs than this cannot fill the queue.
const OUTBOX: u64 = 64;

/// File descriptors this process holds.
fn open_fds() -> usize {
	std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// How long the honest miner may take to get one job, on a loaded machine.
const PER_JOB: Duration = Duration::from_secs(20);

fn work(n: u64) -> WorkItem {
	let mut parent = [0u8; 32];
	parent[..8].copy_from_slice(&n.to_le_bytes());
	let mut pre_hash = parent;
	pre_hash[31] = 1;
	WorkItem {
		version: 1,
		pre_hash: Hex32(pre_hash),
		parent_hash: Hex32(parent),
		number: n,
		difficulty: HexU256(U256::from(1u64 << 40)),
		params: ChallengeParams::DEV,
		weights_seed: Hex32([7; 32]),
	}
}

fn user(i: u8) -> String {
	format!("{}.w{i}", AccountId32::new([i; 32]).to_ss58check())
}

/// Subscribes and authorizes `user` on `stream`.
async fn hello(stream: &mut TcpStream, user: &str) {
	let lines = [
		json!({"id": 1, "method": "mining.subscribe", "params": ["slow-reader-test", "mlpow-stratum/1"]}),
		json!({"id": 2, "method": "mining.authorize", "params": [user, ""]}),
	];
	for line in lines {
		stream.write_all(format!("{line}\n").as_bytes()).await.unwrap();
	}
}

/// Waits until the honest miner has got job `n`.
async fn wait_for_job(got: &mut mpsc::UnboundedReceiver<u64>, n: u64) {
	let waited = timeout(PER_JOB, async {
		while let Some(seen) = got.recv().await {
			if seen >= n {
				return true;
			}
		}
		false
	});
	assert!(waited.await.unwrap_or(false), "the honest miner did not get job #{n} within {PER_JOB:?}");
}

/// The `number` of a `mining.notify` line, if it is one.
fn job_number(line: &str) -> Option<u64> {
	let msg: Value = serde_json::from_str(line).ok()?;
	(msg["method"] == "mining.notify").then(|| msg["params"][0]["number"].as_u64()).flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_never_reads_is_dropped_and_delays_no_other() {
	let dir = tempfile::tempdir().unwrap();
	let ledger = Arc::new(Ledger::open(dir.path()).unwrap());
	let jobs = Arc::new(Jobs::default());
	let (current_tx, current) = watch::channel(Some(jobs.add(work(1))));
	let (candidates, _candidates_rx) = mpsc::channel(64);
	let config = server::Config {
		share_interval: Duration::from_secs(10),
		start_difficulty: U256::from(1000),
		prefix_bits: 16,
		chosen: false,
		max_per_ip: 8,
	};
	let stats = Arc::new(Stats::default());
	let pool = Arc::new(server::Pool::new(config, jobs.clone(), current, candidates, stats.clone(), ledger));
	let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
	let addr = listener.local_addr().unwrap();
	let server = tokio::spawn(server::serve(pool, listener, None));

	// The slow miner: a small receive buffer, set before connecting so that
	// the window it offers stays small, and no reads after the hello.
	let socket = TcpSocket::new_v4().unwrap();
	socket.set_recv_buffer_size(4096).unwrap();
	let mut slow = socket.connect(addr).await.unwrap();
	hello(&mut slow, &user(1)).await;

	// The honest miner reads every line; the numbers of the jobs it gets
	// come out of `got`.
	let mut honest = TcpStream::connect(addr).await.unwrap();
	hello(&mut honest, &user(2)).await;
	let (got_tx, mut got) = mpsc::unbounded_channel();
	let reader = tokio::spawn(async move {
		let mut lines = BufReader::new(honest).lines();
		while let Ok(Some(line)) = lines.next_line().await {
			if let Some(n) = job_number(&line) {
				if got_tx.send(n).is_err() {
					return;
				}
			}
		}
	});
	wait_for_job(&mut got, 1).await;
	// Both are authorized and served before the jobs begin.
	assert_eq!(stats.connections.load(Ordering::Relaxed), 2);

	// A new block's job after each one the honest miner got, until the
	// pool drops the slow miner.
	let (most, fds, started) = (most_jobs(), open_fds(), std::time::Instant::now());
	let mut sent = 1;
	while stats.connections.load(Ordering::Relaxed) == 2 {
		assert!(sent < most, "the pool still serves a miner that read nothing after {sent} jobs");
		sent += 1;
		current_tx.send(Some(jobs.add(work(sent)))).unwrap();
		wait_for_job(&mut got, sent).await;
	}
	println!("the slow miner was dropped after {sent} jobs; the honest miner got each of them");
	// Dropped for not reading: only a full queue explains it this soon (the
	// idle limit is 10 minutes, and it would drop the honest miner too).
	assert!(sent > OUTBOX, "dropped after {sent} jobs: too few to fill the pool's queue");
	assert!(started.elapsed() < Duration::from_secs(300), "dropped only after {:?}", started.elapsed());
	// The honest one is still served: more jobs reach it.
	for _ in 0..3 {
		sent += 1;
		current_tx.send(Some(jobs.add(work(sent)))).unwrap();
		wait_for_job(&mut got, sent).await;
	}
	assert_eq!(stats.connections.load(Ordering::Relaxed), 1);
	// And the pool let go of the connection's socket (its writer was blocked
	// on a miner that does not read: it is stopped, not left holding the
	// socket and its buffers uncounted), while the slow miner still holds
	// its end: one descriptor fewer in this process, within seconds.
	let released = timeout(Duration::from_secs(20), async {
		while open_fds() >= fds {
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
	});
	assert!(
		released.await.is_ok(),
		"the pool still holds the dropped miner's socket: {} descriptors, {fds} before",
		open_fds()
	);

	// The slow miner reads at last: what was already on its way, then the
	// end of the stream, and never the jobs sent after it was dropped.
	let mut lines = BufReader::new(slow).lines();
	let mut last_job = 0;
	let read_all = timeout(Duration::from_secs(60), async {
		while let Ok(Some(line)) = lines.next_line().await {
			if let Some(n) = job_number(&line) {
				last_job = n;
			}
		}
	});
	assert!(read_all.await.is_ok(), "the pool did not close the slow miner's connection");
	println!("the slow miner's last job: #{last_job} of {sent}");
	assert!(last_job > 1 && last_job < sent, "the slow miner read up to job #{last_job} of {sent}");

	reader.abort();
	server.abort();
}
