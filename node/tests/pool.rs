//! Pooled mining end to end (issue 25): a node authoring as the pool's
//! account, `mlpow-pool` in front of it, and three `mlpow-worker --pool`
//! processes over the mlpow Stratum protocol (consensus/STRATUM.md).
//! Blocks found through the pool pay the pool and are imported by a second
//! node; once final, their rewards less the fee are owed to the workers'
//! addresses in the pool's ledger (PPLNS) and paid to them by transfers
//! that the second node holds; a worker killed and restarted, and the
//! pool restarted with its ledger intact, mine on; and a hostile miner's
//! every kind of bad message is refused with its code, up to a ban, while
//! the honest workers' shares and the pool's blocks go on.

mod common;

use common::{pool::*, *};
use jsonrpsee::ws_client::WsClient;
use mlpow_primitives::{ChallengeParams, Seal, U256};
use serde_json::{json, Value};
use sp_core::{
	crypto::{AccountId32, Ss58Codec},
	Pair, H256,
};
use std::{
	path::Path,
	time::{Duration, Instant},
};
use tokio::{
	io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
	net::{
		tcp::{OwnedReadHalf, OwnedWriteHalf},
		TcpStream,
	},
};

const TIMEOUT: Duration = POOL_TIMEOUT;

fn account(byte: u8) -> AccountId32 {
	AccountId32::new([byte; 32])
}

fn start_pool(dir: &Path, node: &Node, listen: u16, status: u16, run: u32) -> Proc {
	let args = [
		"--payout-key",
		"//mlpow-pool-test",
		// 1 UNIT: every worker's first credit passes it.
		"--payout-threshold",
		"1000000000000",
	];
	start_pool_with(dir, node, listen, status, run, &args)
}

/// What the pool's ledger has credited a balance entry in all: owed,
/// being paid, and paid.
fn credited(entry: &Value) -> u128 {
	["owed", "in_flight", "paid"].iter().map(|k| entry[k].as_str().unwrap().parse::<u128>().unwrap()).sum()
}

/// What the pool's ledger is paying `address` now.
fn in_flight(status: &Value, address: &str) -> u128 {
	let balances = status["ledger"]["balances"].as_array().unwrap();
	balances.iter().find(|b| b["address"] == address).map_or(0, |b| b["in_flight"].as_str().unwrap().parse().unwrap())
}

/// What the pool's ledger says `address` has been paid.
fn paid(status: &Value, address: &str) -> u128 {
	let balances = status["ledger"]["balances"].as_array().unwrap();
	balances.iter().find(|b| b["address"] == address).map_or(0, |b| b["paid"].as_str().unwrap().parse().unwrap())
}

/// `free_balance`, or 0 for an account that does not exist.
async fn free_balance_or_zero(client: &WsClient, who: &AccountId32, at: Option<H256>) -> u128 {
	let key = frame_system::Account::<mlpow_runtime::Runtime>::hashed_key_for(who);
	let value: Option<String> = jsonrpsee::core::client::ClientT::request(
		client,
		"state_getStorage",
		jsonrpsee::rpc_params![format!("0x{}", hex::encode(key)), at],
	)
	.await
	.unwrap();
	match value {
		None => 0,
		Some(_) => free_balance(client, who, at).await,
	}
}

/// What the pool's ledger has credited `address` in all.
fn credited_to(status: &Value, address: &str) -> u128 {
	let balances = status["ledger"]["balances"].as_array().unwrap();
	balances.iter().find(|b| b["address"] == address).map_or(0, credited)
}

/// A miner speaking the protocol by hand, to send what honest miners never do.
struct Raw {
	lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
	write: OwnedWriteHalf,
	next_id: u64,
	/// The last job and share difficulty the pool sent.
	job: Option<Value>,
	difficulty: U256,
}

impl Raw {
	async fn connect(port: u16) -> Self {
		let (read, write) = TcpStream::connect(("127.0.0.1", port)).await.unwrap().into_split();
		Self { lines: BufReader::new(read).lines(), write, next_id: 1, job: None, difficulty: U256::one() }
	}

	async fn send_line(&mut self, line: &str) {
		self.write.write_all(line.as_bytes()).await.unwrap();
		self.write.write_all(b"\n").await.unwrap();
	}

	/// The next line from the pool, within a few seconds; `None` once it closed.
	async fn recv(&mut self) -> Option<Value> {
		let line = tokio::time::timeout(scaled(Duration::from_secs(20)), self.lines.next_line())
			.await
			.expect("the pool answered nothing")
			.ok()??;
		let msg: Value = serde_json::from_str(&line).unwrap();
		match msg["method"].as_str() {
			Some("mining.notify") => self.job = Some(msg["params"][0].clone()),
			Some("mining.set_difficulty") => {
				let hex = msg["params"][0].as_str().unwrap().trim_start_matches("0x");
				self.difficulty = U256::from_str_radix(hex, 16).unwrap();
			}
			_ => {}
		}
		Some(msg)
	}

	/// Sends `method(params)` and returns the answer's error code (`None`
	/// for success), skipping notifications.
	async fn call(&mut self, method: &str, params: Value) -> Option<i64> {
		let id = self.next_id;
		self.next_id += 1;
		self.send_line(&json!({ "id": id, "method": method, "params": params }).to_string()).await;
		self.answer(id).await
	}

	async fn answer(&mut self, id: u64) -> Option<i64> {
		loop {
			let msg = self.recv().await.expect("the pool closed the connection");
			if msg["id"] == json!(id) || (msg["id"].is_null() && msg["method"].is_null()) {
				return msg["error"].get(0).and_then(Value::as_i64);
			}
		}
	}

	/// Waits for a job.
	async fn job(&mut self) -> Value {
		while self.job.is_none() {
			self.recv().await.expect("the pool closed the connection");
		}
		self.job.clone().unwrap()
	}
}

/// A seal for `job` inside `prefix` that is a share at `difficulty`
/// (`wins`), or one that is not: found with the primitives.
fn seal_for(job: &Value, prefix: u64, bits: u32, difficulty: U256, wins: bool) -> Vec<u8> {
	let params: ChallengeParams = serde_json::from_value(job["params"].clone()).unwrap();
	let h32 = |v: &Value| -> [u8; 32] {
		hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap().try_into().unwrap()
	};
	let (seed, pre_hash) = (h32(&job["weights_seed"]), h32(&job["pre_hash"]));
	for offset in 0..100_000u64 {
		let nonce = (prefix << (64 - bits)) + offset;
		for tile_i in 0..params.tiles_m() {
			for tile_j in 0..params.tiles_n() {
				let seal = Seal { nonce, tile_i, tile_j }.to_bytes().to_vec();
				if mlpow_primitives::verify(&params, &seed, &pre_hash, difficulty, &seal).is_ok() == wins {
					return seal;
				}
			}
		}
	}
	panic!("no seal found")
}

fn hex_seal(seal: &[u8]) -> String {
	format!("0x{}", hex::encode(seal))
}

async fn blocks_by(client: &WsClient, pool_account: &AccountId32, from: u32) -> u32 {
	let best = best_number(client).await;
	let mut by_pool = 0;
	for n in from.max(1)..=best {
		let header = header_at(client, Some(block_hash(client, n).await)).await;
		if author_of(&header).as_ref() == Some(pool_account) {
			by_pool += 1;
		}
	}
	by_pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_and_its_miners_mine_blocks_that_pay_the_pool() {
	let tmp = tempfile::tempdir().unwrap();
	let dir = tmp.path();
	// The pool's account, whose key the pool pays out with (not endowed
	// at genesis: whatever it holds, it earned).
	let pool_key = "//mlpow-pool-test";
	let pool_account = AccountId32::from(sp_core::sr25519::Pair::from_string(pool_key, None).unwrap().public());
	// Finality two blocks deep at once, so the pool's blocks become final
	// (and pay out in its ledger) within the test.
	let author = pool_account.to_ss58check();
	let mut node = Node::start_dev(
		&dir.join("node"),
		&["--author", &author, "--max-reorg-depth", "2", "--finality-settle-secs", "0"],
	);
	let client = node.connect(TIMEOUT).await;
	let (listen, status_port) = (free_port(), free_port());
	let mut pool = start_pool(dir, &node, listen, status_port, 1);
	pool.wait_for_log("listening for miners", TIMEOUT).await;

	// Three workers, each paid to its own address.
	let users: Vec<String> = [0x11u8, 0x22, 0x33]
		.iter()
		.enumerate()
		.map(|(i, b)| format!("{}.w{}", account(*b).to_ss58check(), i + 1))
		.collect();
	let mut workers: Vec<Proc> = users.iter().map(|u| start_pool_worker(dir, listen, u, 1)).collect();
	let s = wait_status(&mut pool, status_port, "blocks through the pool, shares from every worker", |s| {
		s["blocks_accepted"].as_u64() >= Some(3) && users.iter().all(|u| accepted(s, u) >= 3)
	})
	.await;
	println!("pool status: {s}");

	// A hostile miner, by hand: each bad message refused with its code.
	let mut raw = Raw::connect(listen).await;
	raw.send_line("{not json").await;
	assert_eq!(raw.answer(0).await, Some(20), "malformed JSON");
	assert_eq!(raw.call("mining.submit", json!(["x", "1", "0x00"])).await, Some(25), "before subscribe");
	assert_eq!(raw.call("mining.subscribe", json!(["raw", "stratum/1"])).await, Some(20), "another protocol");
	let id = raw.next_id;
	raw.next_id += 1;
	raw.send_line(&json!({ "id": id, "method": "mining.subscribe", "params": ["raw", "mlpow-stratum/1"] }).to_string())
		.await;
	let subscribed = loop {
		let msg = raw.recv().await.unwrap();
		if msg["id"] == json!(id) {
			break msg["result"].clone();
		}
	};
	let bits = subscribed["nonce_prefix_bits"].as_u64().unwrap() as u32;
	let prefix =
		u64::from_str_radix(subscribed["nonce_prefix"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
	let user = format!("{}.raw", account(0x44).to_ss58check());
	assert_eq!(raw.call("mining.submit", json!([user, "1", "0x00"])).await, Some(24), "not authorized");
	assert_eq!(raw.call("mining.authorize", json!(["not-an-address.raw", ""])).await, Some(24), "bad address");
	assert_eq!(raw.call("mining.authorize", json!([user, ""])).await, None);
	// Each share below is checked after its job (step 4), so a new block
	// in the middle makes the rest stale (21): then all again, on the next job.
	let mut attempts = 0;
	loop {
		attempts += 1;
		assert!(attempts <= 10, "no job stayed current long enough for the checks");
		let job = raw.job().await;
		let job_id = job["job_id"].as_str().unwrap().to_string();
		let difficulty = raw.difficulty;
		let good = seal_for(&job, prefix, bits, difficulty, true);
		let losing = seal_for(&job, prefix, bits, difficulty, false);
		let outside = seal_for(&job, prefix ^ 1, bits, U256::one(), true);
		let long = [good.clone(), vec![0; 600]].concat();
		let cases: [(&[u8], Option<i64>, &str); 6] = [
			(&good, None, "a real share is accepted"),
			(&good, Some(22), "the same share again"),
			(&good[..15], Some(26), "a short seal"),
			(&long, Some(26), "an oversized seal"),
			(&outside, Some(28), "a nonce of another prefix"),
			(&losing, Some(23), "a ticket above the share target"),
		];
		let mut stale = false;
		for (seal, expected, what) in cases {
			let got = raw.call("mining.submit", json!([user, job_id, hex_seal(seal)])).await;
			if got == Some(21) {
				stale = true;
				break;
			}
			assert_eq!(got, expected, "{what}");
		}
		if !stale {
			break;
		}
		raw.job = None; // wait for the next one
	}
	assert_eq!(raw.call("mining.submit", json!([user, "no-such-job", "0x00"])).await, Some(21), "an unknown job");
	assert_eq!(raw.call("mining.nonsense", json!([])).await, Some(20), "unknown method");
	// A line past the limit: refused, and the connection closed.
	// (The pool may close before all of it is written: a write error is fine.)
	let huge = format!("{{\"id\":99,\"method\":\"mining.submit\",\"params\":[\"{}\"]}}\n", "0".repeat(200_000));
	let _ = raw.write.write_all(huge.as_bytes()).await;
	let mut closed = false;
	for _ in 0..8 {
		match raw.recv().await {
			None => {
				closed = true;
				break;
			}
			Some(msg) => assert!(msg["method"].is_string() || msg["error"][0] == json!(20), "{msg}"),
		}
	}
	assert!(closed, "a line past the limit closes the connection");

	// A flood of connections that never authorize: the ninth from one
	// address is refused at once. (Each of the eight subscribes, so that
	// the pool has taken it before the ninth comes.)
	let mut flood = Vec::new();
	for _ in 0..8 {
		let mut raw = Raw::connect(listen).await;
		assert_eq!(raw.call("mining.subscribe", json!(["flood", "mlpow-stratum/1"])).await, None);
		flood.push(raw);
	}
	let mut ninth = Raw::connect(listen).await;
	let refused = ninth.recv().await.expect("an answer before closing");
	assert_eq!(refused["error"][0], json!(20), "{refused}");
	assert!(ninth.recv().await.is_none(), "then closed");
	drop(flood);

	// The honest workers mined on throughout.
	let before: Vec<u64> = users.iter().map(|u| accepted(&s, u)).collect();
	wait_status(&mut pool, status_port, "the honest workers mine on", |s| {
		users.iter().zip(&before).all(|(u, b)| accepted(s, u) > *b)
	})
	.await;

	// The pool's blocks become final and their rewards, less the 1% fee,
	// are owed to the workers' addresses in proportion to their shares in
	// each block's window: every worker is owed something, and the sum is
	// the credited rewards' net to within the rounding (less than one unit
	// per address per block).
	let addresses: Vec<String> = users.iter().map(|u| u.split('.').next().unwrap().to_string()).collect();
	let s = wait_status(&mut pool, status_port, "the pool's blocks credited to every worker", |s| {
		addresses.iter().all(|a| credited_to(s, a) > 0)
	})
	.await;
	let rewards: Vec<u128> = s["ledger"]["blocks"]
		.as_array()
		.unwrap()
		.iter()
		.filter(|b| b["state"] == "credited")
		.map(|b| b["reward"].as_str().unwrap().parse().unwrap())
		.collect();
	let net: u128 = rewards.iter().map(|r| r - r / 100).sum();
	// (The hand-made miner's one accepted share earns its part too.)
	let balances = s["ledger"]["balances"].as_array().unwrap();
	let total: u128 = balances.iter().map(credited).sum();
	let rounding = (balances.len() * rewards.len()) as u128;
	assert!(total <= net && total + rounding >= net, "owed {total} of {net}: {s}");
	println!(
		"{} blocks credited; owed: {:?}",
		rewards.len(),
		addresses.iter().map(|a| credited_to(&s, a)).collect::<Vec<_>>()
	);

	// A worker killed (SIGKILL) and restarted mines on.
	workers[0].child.kill().unwrap();
	workers[0].child.wait().unwrap();
	let before = accepted(&s, &users[0]);
	workers[0] = start_pool_worker(dir, listen, &users[0], 2);
	wait_status(&mut pool, status_port, "the restarted worker's shares", |s| accepted(s, &users[0]) > before).await;

	// The pool restarted on the same port: the workers come back.
	let s = status(status_port).unwrap();
	pool.stop();
	let credited_before: Vec<u128> = addresses.iter().map(|a| credited_to(&s, a)).collect();
	let shares_before = s["ledger"]["shares"].as_u64().unwrap();
	let mut pool = start_pool(dir, &node, listen, status_port, 2);
	pool.wait_for_log("listening for miners", TIMEOUT).await;
	let s = wait_status(&mut pool, status_port, "every worker back after the pool restarted", |s| {
		s["blocks_accepted"].as_u64() >= Some(1) && users.iter().all(|u| accepted(s, u) >= 1)
	})
	.await;
	// The ledger came back whole: every share acknowledged before the
	// restart, and what each address was owed.
	assert!(s["ledger"]["shares"].as_u64().unwrap() >= shares_before, "{s}");
	for (a, before) in addresses.iter().zip(&credited_before) {
		assert!(
			credited_to(&s, a) >= *before,
			"{a}: credited {} after the restart, {before} before",
			credited_to(&s, a)
		);
	}
	println!("after the restart: {s}");

	// A second node imports the pool's blocks, which paid the pool.
	let boot = {
		let id: String =
			jsonrpsee::core::client::ClientT::request(&client, "system_localPeerId", jsonrpsee::rpc_params![])
				.await
				.unwrap();
		format!("/ip4/127.0.0.1/tcp/{}/p2p/{id}", node.p2p_port)
	};
	let fast_finality = ["--max-reorg-depth", "2", "--finality-settle-secs", "0"];
	let mut second = Node::start_on(
		&dir.join("second"),
		free_port(),
		free_port(),
		&[&["--dev", "--bootnodes", &boot], &fast_finality[..]].concat(),
	);
	let c2 = second.connect(TIMEOUT).await;
	let best = best_number(&client).await;
	wait_for_block(&c2, &mut second, best, TIMEOUT).await;
	let by_pool = blocks_by(&c2, &pool_account, 1).await;
	assert!(by_pool >= 4, "the second node has {by_pool} blocks authored by the pool");

	// Payouts: transfers from the pool's account, final on chain, and the
	// ledger's "paid" matches what each address holds (none held anything
	// before the pool paid it).
	let s =
		wait_status(&mut pool, status_port, "every worker paid on chain", |s| addresses.iter().all(|a| paid(s, a) > 0))
			.await;
	for a in &addresses {
		let who = AccountId32::from_ss58check(a).unwrap();
		let deadline = Instant::now() + scaled(TIMEOUT);
		// The second node finalizes the payout a moment after the first.
		loop {
			let finalized: H256 =
				jsonrpsee::core::client::ClientT::request(&c2, "chain_getFinalizedHead", jsonrpsee::rpc_params![])
					.await
					.unwrap();
			let held = free_balance_or_zero(&c2, &who, Some(finalized)).await;
			// The address held nothing before the pool paid it: what it
			// holds is what the ledger paid it, exactly once the ledger has
			// seen the same transfers final, and never more than the ledger
			// has paid or is paying (a second payment would show here).
			let now = status(status_port).unwrap();
			let (paid_now, sending) = (paid(&now, a), in_flight(&now, a));
			assert!(
				held <= paid_now + sending,
				"{a} holds {held} on the second node; paid {paid_now}, {sending} in flight"
			);
			if held == paid_now {
				break;
			}
			assert!(Instant::now() < deadline, "{a} holds {held} on the second node, paid {}", paid(&s, a));
			tokio::time::sleep(Duration::from_millis(250)).await;
		}
	}
	println!("paid: {:?}", addresses.iter().map(|a| paid(&s, a)).collect::<Vec<_>>());

	// A miner sending junk is banned after ten bad messages in a row, and
	// its address refused.
	let mut junk = Raw::connect(listen).await;
	for i in 0..10 {
		junk.send_line(&format!("junk {i}")).await;
	}
	let mut codes = Vec::new();
	while let Some(msg) = junk.recv().await {
		codes.push(msg["error"][0].as_i64());
	}
	assert_eq!(codes.last(), Some(&Some(29)), "{codes:?}");
	let mut again = Raw::connect(listen).await;
	assert_eq!(again.recv().await.unwrap()["error"][0], json!(29), "the address is banned");
	let log = std::fs::read_to_string(&pool.log).unwrap();
	assert!(log.contains("banned for"), "{}", pool.log_tail());
	// The honest workers never sent a share the pool refused as junk.
	let s = status(status_port).unwrap();
	for user in &users {
		let w = s["workers"].as_array().unwrap().iter().find(|w| w["worker"] == *user).unwrap();
		assert_eq!(w["invalid"], json!(0), "{user}: {w}");
	}
	for w in &mut workers {
		w.assert_running();
		w.stop();
	}
}
