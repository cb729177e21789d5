//! How many miners one pool core serves: the pool's whole server path
//! (sockets, line framing, JSON, the job table, STRATUM.md's checks with
//! one tile each, vardiff, the ledger's commit of every share, the answer)
//! under many connections, measured as the pool process's CPU time per
//! accepted share.
//!
//! The pool runs in this process as `mlpow-pool` runs it
//! (`server::serve`, a real ledger in a temporary directory), with one job
//! put in its table by hand where a node would give it (at a block
//! difficulty no share reaches, so that every share is checked and
//! recorded and none is a block). The miners are a second process (this
//! example again, `--clients`), so that their CPU is not counted: each
//! connection subscribes, authorizes its own address, and then sends
//! distinct shares at share difficulty 1 (every ticket a share, every check
//! run in full) as fast as the pool answers them, eight in flight.
//!
//!     cargo run --release -p mlpow-pool --example server_load -- [CONNECTIONS] [SECONDS] [dev|gpu]
//!
//! It prints the shares accepted per second, the pool's CPU seconds per
//! share, and from those the miners one core serves at one share per 10 s
//! (the pool's default `--share-interval`).

use mlpow_pool::{jobs::Jobs, ledger::Ledger, server, stats::Stats};
use mlpow_primitives::{ChallengeParams, Seal, U256};
use mlpow_work::{Hex32, HexU256, WorkItem};
use serde_json::{json, Value};
use sp_core::crypto::{AccountId32, Ss58Codec};
use std::{
	process::Command,
	sync::{atomic::Ordering, Arc},
	time::{Duration, Instant},
};
use tokio::{
	io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
	net::{TcpListener, TcpStream},
	sync::watch,
};

/// Shares one connection keeps in flight.
const IN_FLIGHT: usize = 8;

fn main() -> anyhow::Result<()> {
	let args: Vec<String> = std::env::args().collect();
	if args.get(1).map(String::as_str) == Some("--clients") {
		let (port, connections, secs, params) = (args[2].parse()?, args[3].parse()?, args[4].parse()?, &args[5]);
		return clients(port, connections, secs, params);
	}
	let connections: usize = args.get(1).map_or(Ok(100), |s| s.parse())?;
	let secs: u64 = args.get(2).map_or(Ok(10), |s| s.parse())?;
	let preset = args.get(3).cloned().unwrap_or_else(|| "dev".into());
	let params = match preset.as_str() {
		"dev" => ChallengeParams::DEV,
		"gpu" => ChallengeParams::GPU,
		other => anyhow::bail!("{other}: give dev or gpu"),
	};
	let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
	runtime.block_on(pool(connections, secs, params, &preset))
}

/// The pool, and the clients' process beside it; prints the figures.
async fn pool(connections: usize, secs: u64, params: ChallengeParams, preset: &str) -> anyhow::Result<()> {
	let dir = tempfile::tempdir()?;
	let ledger = Arc::new(Ledger::open(dir.path())?);
	let jobs = Arc::new(Jobs::default());
	let job = jobs.add(WorkItem {
		version: 1,
		pre_hash: Hex32([9; 32]),
		parent_hash: Hex32([1; 32]),
		number: 1,
		// No share is a block: every one is checked and recorded.
		difficulty: HexU256(U256::MAX),
		params,
		weights_seed: Hex32([7; 32]),
	});
	let (_current_tx, current) = watch::channel(Some(job));
	let (candidates, _candidates_rx) = tokio::sync::mpsc::channel(64);
	let config = server::Config {
		share_interval: Duration::from_secs(10),
		start_difficulty: U256::one(),
		prefix_bits: 16,
		chosen: true,
		max_per_ip: connections + 1,
	};
	let stats = Arc::new(Stats::default());
	let pool = Arc::new(server::Pool::new(config, jobs, current, candidates, stats.clone(), ledger.clone()));
	let listener = TcpListener::bind("127.0.0.1:0").await?;
	let port = listener.local_addr()?.port();
	tokio::spawn(server::serve(pool, listener, None));

	let exe = std::env::current_exe()?;
	let mut clients = Command::new(exe)
		.args(["--clients", &port.to_string(), &connections.to_string(), &secs.to_string(), preset])
		.spawn()?;
	// Measured from when every connection is open and shares come.
	let ready_by = Instant::now() + Duration::from_secs(120);
	while (stats.connections.load(Ordering::Relaxed) as usize) < connections || ledger.shares_recorded() == 0 {
		if let Some(status) = clients.try_wait()? {
			anyhow::bail!("the miners' process ended first ({status})");
		}
		anyhow::ensure!(Instant::now() < ready_by, "{connections} connections were not open within 2 minutes");
		tokio::time::sleep(Duration::from_millis(50)).await;
	}
	let (start, cpu0, shares0) = (Instant::now(), cpu_seconds(), ledger.shares_recorded());
	tokio::time::sleep(Duration::from_secs(secs)).await;
	let (wall, cpu, shares) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu0, ledger.shares_recorded() - shares0);
	let rss = rss_mib();
	// The miners run until stopped.
	clients.kill()?;
	clients.wait()?;
	let per_share = cpu / shares as f64;
	println!(
		"| {preset} | {connections} | {:.0} | {:.1} | {:.0} | {:.0} | {rss:.0} |",
		shares as f64 / wall,
		per_share * 1e6,
		1.0 / per_share,
		10.0 / per_share,
	);
	Ok(())
}

/// `connections` miners on `port`, each sending shares as fast as they are
/// answered, until the pool stops them (an hour at most).
fn clients(port: u16, connections: usize, secs: u64, preset: &str) -> anyhow::Result<()> {
	let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
	let params = if preset == "gpu" { ChallengeParams::GPU } else { ChallengeParams::DEV };
	runtime.block_on(async move {
		let until = Instant::now() + Duration::from_secs(secs.max(3600));
		let mut miners = Vec::new();
		// One at a time: the pool takes at most 8 unauthorized connections
		// from one address.
		for i in 0..connections {
			let stream = TcpStream::connect(("127.0.0.1", port)).await?;
			miners.push(tokio::spawn(miner(stream, i as u32, params, until)));
			tokio::time::sleep(Duration::from_millis(2)).await;
		}
		for m in miners {
			m.await??;
		}
		anyhow::Ok(())
	})
}

/// One miner: subscribe, authorize, then shares until `until`.
async fn miner(stream: TcpStream, i: u32, params: ChallengeParams, until: Instant) -> anyhow::Result<()> {
	let (read, mut write) = stream.into_split();
	let mut lines = BufReader::new(read).lines();
	let send = |v: Value| format!("{v}\n");
	write
		.write_all(
			send(json!({"id": 1, "method": "mining.subscribe", "params": ["load", "mlpow-stratum/1"]})).as_bytes(),
		)
		.await?;
	let mut account = [0u8; 32];
	account[..4].copy_from_slice(&i.to_le_bytes());
	let user = format!("{}.m{i}", AccountId32::new(account).to_ss58check());
	write.write_all(send(json!({"id": 2, "method": "mining.authorize", "params": [user, ""]})).as_bytes()).await?;
	let (mut prefix, mut job) = (None, None);
	while prefix.is_none() || job.is_none() {
		let msg: Value = serde_json::from_str(&lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("closed"))?)?;
		if msg["id"] == json!(1) {
			let p = u64::from_str_radix(msg["result"]["nonce_prefix"].as_str().unwrap().trim_start_matches("0x"), 16)?;
			prefix = Some(p << (64 - msg["result"]["nonce_prefix_bits"].as_u64().unwrap()));
		}
		if msg["method"] == "mining.notify" {
			job = Some(msg["params"][0]["job_id"].as_str().unwrap().to_string());
		}
	}
	let (first, job) = (prefix.unwrap(), job.unwrap());
	let share = |n: u64| {
		let seal = Seal { nonce: first + n, tile_i: (n % u64::from(params.tiles_m())) as u32, tile_j: 0 };
		let hex = mlpow_work::encode_hex(&seal.to_bytes());
		send(json!({"id": 10 + n, "method": "mining.submit", "params": [user, job, hex]}))
	};
	let (mut sent, mut answered) = (0u64, 0u64);
	while Instant::now() < until {
		while sent < answered + IN_FLIGHT as u64 {
			write.write_all(share(sent).as_bytes()).await?;
			sent += 1;
		}
		let Some(line) = lines.next_line().await? else { break };
		let msg: Value = serde_json::from_str(&line)?;
		if msg["id"].as_u64().is_some_and(|id| id >= 10) {
			anyhow::ensure!(msg["result"] == json!(true), "a share was refused: {msg}");
			answered += 1;
		}
	}
	Ok(())
}

/// This process's CPU time (user and system), in seconds.
fn cpu_seconds() -> f64 {
	let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
	// The fields after the command name (which may hold spaces) in parentheses.
	let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
	let fields: Vec<&str> = after.split_whitespace().collect();
	let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after the
	// name, in clock ticks (USER_HZ, 100 on Linux's mainstream builds).
	(ticks(11) + ticks(12)) / 100.0
}

/// This process's resident memory, in MiB.
fn rss_mib() -> f64 {
	let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
	let kib = status
		.lines()
		.find_map(|l| l.strip_prefix("VmRSS:"))
		.and_then(|v| v.split_whitespace().next())
		.and_then(|v| v.parse::<f64>().ok())
		.unwrap_or(0.0);
	kib / 1024.0
}
