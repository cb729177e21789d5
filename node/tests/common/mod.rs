//! Helpers for tests that run the real binaries: free ports, processes that
//! are killed when dropped, readiness waits, and typed RPC calls.

#![allow(dead_code)]

pub mod pool;

use codec::Decode;
use jsonrpsee::{
	core::client::{ClientT, Error as RpcError},
	rpc_params,
	ws_client::{WsClient, WsClientBuilder},
};
use mlpow_runtime::{opaque::Block, Header};
use mlpow_runtime_api::Challenge;
use serde_json::Value;
use sp_core::H256;
use sp_runtime::{traits::Header as _, DigestItem};
use std::{
	net::TcpListener,
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::{Duration, Instant},
};

pub fn node_bin() -> PathBuf {
	PathBuf::from(env!("CARGO_BIN_EXE_mlpow-node"))
}

/// The worker is built into the same target directory as the node
/// (`scripts/test.sh` builds the whole workspace first).
pub fn worker_bin() -> PathBuf {
	let path = node_bin().with_file_name("mlpow-worker");
	assert!(path.exists(), "{} is missing: run `cargo build -p mlpow-worker` first", path.display());
	path
}

/// Where test nodes keep the compiled runtime between runs, beside the binaries.
pub fn wasm_cache() -> PathBuf {
	node_bin().with_file_name("wasm-cache")
}

/// How long `timeout` of waiting on an idle machine is worth now: scaled by
/// the 1-minute load average per core, from 1x (idle) to 4x. Tests run
/// beside each other, and beside whatever else the machine does; a node
/// that is slow because the machine is busy gets the time the load costs
/// it, and one that is slow on an idle machine still fails on time.
pub fn scaled(timeout: Duration) -> Duration {
	timeout.mul_f64((load_average() / cores()).clamp(1.0, 4.0))
}

fn load_average() -> f64 {
	let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
	text.split_whitespace().next().and_then(|l| l.parse().ok()).unwrap_or(0.0)
}

fn cores() -> f64 {
	std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// Why a process may have been slow, for a failure message: the machine's
/// load and the CPU time the process had.
pub fn why_slow(pid: u32, waited: Duration) -> String {
	let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
	// utime and stime are fields 14 and 15, after the parenthesised name.
	let cpu_ticks: Option<u64> = stat.rsplit_once(')').and_then(|(_, rest)| {
		let fields: Vec<&str> = rest.split_whitespace().collect();
		Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
	});
	let cpu = cpu_ticks.map_or("unknown".into(), |t| format!("{:.1} s", t as f64 / 100.0));
	format!("waited {waited:?}; load average {:.1} on {} cores; the process had {cpu} of CPU", load_average(), cores())
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
	TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed (SIGINT, then SIGKILL) when dropped, with its
/// output in a log file.
pub struct Proc {
	pub child: Child,
	pub log: PathBuf,
	pub name: String,
}

impl Proc {
	pub fn spawn(name: &str, bin: &Path, args: &[String], log: PathBuf) -> Self {
		Self::spawn_with_env(name, bin, args, &[], log)
	}

	/// [`Proc::spawn`] with extra environment variables.
	pub fn spawn_with_env(name: &str, bin: &Path, args: &[String], env: &[(&str, &str)], log: PathBuf) -> Self {
		let out = std::fs::File::create(&log).unwrap();
		let child = Command::new(bin)
			.args(args)
			.envs(env.iter().copied())
			.stdout(out.try_clone().unwrap())
			.stderr(out)
			.stdin(Stdio::null())
			.spawn()
			.unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
		Self { child, log, name: name.into() }
	}

	/// Stops the process the way Ctrl-C would and waits for it.
	pub fn stop(&mut self) {
		if self.child.try_wait().ok().flatten().is_some() {
			return;
		}
		let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
		let deadline = Instant::now() + Duration::from_secs(30);
		while Instant::now() < deadline {
			if self.child.try_wait().ok().flatten().is_some() {
				return;
			}
			std::thread::sleep(Duration::from_millis(50));
		}
		let _ = self.child.kill();
		let _ = self.child.wait();
	}

	pub fn log_tail(&self) -> String {
		let text = std::fs::read_to_string(&self.log).unwrap_or_default();
		let lines: Vec<_> = text.lines().collect();
		lines[lines.len().saturating_sub(40)..].join("\n")
	}

	/// Waits until the process's output contains `needle`.
	/// (`timeout` is for an idle machine: see [`scaled`].)
	pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
		let start = Instant::now();
		loop {
			if std::fs::read_to_string(&self.log).unwrap_or_default().contains(needle) {
				return;
			}
			self.assert_running();
			assert!(
				start.elapsed() < scaled(timeout),
				"{} never logged {needle:?} ({}):\n{}",
				self.name,
				why_slow(self.child.id(), start.elapsed()),
				self.log_tail()
			);
			tokio::time::sleep(Duration::from_millis(100)).await;
		}
	}

	pub fn assert_running(&mut self) {
		if let Some(status) = self.child.try_wait().unwrap() {
			panic!("{} exited ({status}):\n{}", self.name, self.log_tail());
		}
	}
}

impl Drop for Proc {
	fn drop(&mut self) {
		self.stop();
	}
}

/// A node on free ports.
pub struct Node {
	pub proc: Proc,
	pub rpc_port: u16,
	pub p2p_port: u16,
	pub base: PathBuf,
}

impl Node {
	pub fn start_dev(base: &Path, extra: &[&str]) -> Self {
		Self::start_dev_on(base, free_port(), extra)
	}

	/// A dev node with its RPC on `rpc_port` (to restart a node where its
	/// worker will look for it).
	pub fn start_dev_on(base: &Path, rpc_port: u16, extra: &[&str]) -> Self {
		let mut args = vec!["--dev"];
		args.extend_from_slice(extra);
		Self::start_on(base, rpc_port, free_port(), &args)
	}

	/// A node with `args` (which name the chain) on the given RPC and p2p
	/// ports, without telemetry or mDNS (peers connect only when told to),
	/// and without Prometheus unless `args` asks for a port.
	pub fn start_on(base: &Path, rpc_port: u16, p2p_port: u16, args: &[&str]) -> Self {
		Self::start_with_env(base, rpc_port, p2p_port, args, &[])
	}

	/// [`Node::start_on`] with extra environment variables.
	pub fn start_with_env(base: &Path, rpc_port: u16, p2p_port: u16, args: &[&str], env: &[(&str, &str)]) -> Self {
		let mut all: Vec<String> = [
			"--base-path",
			base.to_str().unwrap(),
			"--rpc-port",
			&rpc_port.to_string(),
			"--port",
			&p2p_port.to_string(),
			"--no-mdns",
			"--no-telemetry",
		]
		.iter()
		.map(|s| s.to_string())
		.collect();
		if !args.contains(&"--prometheus-port") {
			all.push("--no-prometheus".into());
		}
		all.extend(args.iter().map(|s| s.to_string()));
		let log = base.with_extension(format!("node-{rpc_port}-{p2p_port}.log"));
		// Every node shares one cache of the compiled runtime, so only the
		// first compiles it (scripts/test.sh sets the same directory).
		let cache = wasm_cache();
		let mut env = env.to_vec();
		if std::env::var_os("MLPOW_WASM_CACHE").is_none() {
			env.push(("MLPOW_WASM_CACHE", cache.to_str().unwrap()));
		}
		let proc = Proc::spawn_with_env("mlpow-node", &node_bin(), &all, &env, log);
		Self { proc, rpc_port, p2p_port, base: base.to_path_buf() }
	}

	pub fn ws_url(&self) -> String {
		format!("ws://127.0.0.1:{}", self.rpc_port)
	}

	/// Connects once the RPC server answers (the node compiles its runtime
	/// and opens the database first). `timeout` is for an idle machine: see
	/// [`scaled`].
	pub async fn connect(&mut self, timeout: Duration) -> WsClient {
		let start = Instant::now();
		loop {
			self.proc.assert_running();
			if let Ok(client) = WsClientBuilder::default().build(self.ws_url()).await {
				if client.request::<Value, _>("system_health", rpc_params![]).await.is_ok() {
					return client;
				}
			}
			assert!(
				start.elapsed() < scaled(timeout),
				"node RPC not ready ({}):\n{}",
				why_slow(self.proc.child.id(), start.elapsed()),
				self.proc.log_tail()
			);
			tokio::time::sleep(Duration::from_millis(200)).await;
		}
	}
}

pub fn start_worker(node: &Node, threads: usize) -> Proc {
	let args = vec![
		"--node".to_string(),
		node.ws_url(),
		"--threads".into(),
		threads.to_string(),
		"--report-secs".into(),
		"2".into(),
	];
	let log = node.base.with_extension(format!("worker-{}.log", node.rpc_port));
	Proc::spawn("mlpow-worker", &worker_bin(), &args, log)
}

pub async fn best_number(client: &WsClient) -> u32 {
	header_at(client, None).await.number
}

pub async fn best_hash(client: &WsClient) -> H256 {
	header_at(client, None).await.hash()
}

/// The best block once no more arrive, after the node's miners stopped: a
/// worker sends the seals it found as it stops and waits up to 3 s
/// (`DROP_GRACE`) for their answers, so on a loaded machine a block can
/// still be imported after the worker exited, and a tip read at once would
/// be passed a moment later. Quiet means unchanged for 4 s.
pub async fn quiet_tip(client: &WsClient) -> H256 {
	const QUIET: Duration = Duration::from_secs(4);
	let deadline = Instant::now() + scaled(Duration::from_secs(120));
	let (mut tip, mut since) = (best_hash(client).await, Instant::now());
	loop {
		tokio::time::sleep(Duration::from_millis(250)).await;
		let now = best_hash(client).await;
		if now != tip {
			(tip, since) = (now, Instant::now());
		} else if since.elapsed() >= QUIET {
			return tip;
		}
		assert!(Instant::now() < deadline, "the best block kept changing with no miner running");
	}
}

pub async fn block_hash(client: &WsClient, number: u32) -> H256 {
	client.request("chain_getBlockHash", rpc_params![number]).await.unwrap()
}

pub async fn header_at(client: &WsClient, hash: Option<H256>) -> Header {
	client.request("chain_getHeader", rpc_params![hash]).await.unwrap()
}

/// Waits until the best block is at least `number`.
/// (`timeout` is for an idle machine: see [`scaled`].)
pub async fn wait_for_block(client: &WsClient, node: &mut Node, number: u32, timeout: Duration) {
	let start = Instant::now();
	loop {
		node.proc.assert_running();
		let best = best_number(client).await;
		if best >= number {
			return;
		}
		assert!(
			start.elapsed() < scaled(timeout),
			"best block {best}, wanted {number} ({})",
			why_slow(node.proc.child.id(), start.elapsed())
		);
		tokio::time::sleep(Duration::from_millis(250)).await;
	}
}

/// Calls runtime API `method` at `at` and SCALE-decodes the answer.
pub async fn runtime_call<T: Decode>(client: &WsClient, method: &str, args: &[u8], at: H256) -> T {
	let hex: String =
		client.request("state_call", rpc_params![method, format!("0x{}", hex::encode(args)), at]).await.unwrap();
	let bytes = hex::decode(hex.trim_start_matches("0x")).unwrap();
	T::decode(&mut &bytes[..]).unwrap_or_else(|e| panic!("decoding {method}: {e}"))
}

pub async fn challenge_at(client: &WsClient, at: H256) -> Challenge {
	runtime_call(client, "MlpowApi_challenge", &[], at).await
}

pub async fn difficulty_at(client: &WsClient, at: H256) -> mlpow_primitives::U256 {
	runtime_call(client, "DifficultyApi_difficulty", &[], at).await
}

/// A sealed header's pre-hash (the header without its seal) and seal.
pub fn split_seal(header: &Header) -> (H256, Vec<u8>) {
	let mut pre = header.clone();
	match pre.digest_mut().pop() {
		Some(DigestItem::Seal(id, seal)) if id == sp_consensus_pow::POW_ENGINE_ID => (pre.hash(), seal),
		other => panic!("block {} has no PoW seal as its last digest: {other:?}", header.number),
	}
}

/// The author account in a header's `pow_` pre-runtime digest.
pub fn author_of(header: &Header) -> Option<mlpow_runtime::AccountId> {
	header.digest.convert_first(|d| d.pre_runtime_try_to(&sp_consensus_pow::POW_ENGINE_ID))
}

/// `System.Account(who).data.free`.
pub async fn free_balance(client: &WsClient, who: &mlpow_runtime::AccountId, at: Option<H256>) -> u128 {
	let key = frame_system::Account::<mlpow_runtime::Runtime>::hashed_key_for(who);
	let value: Option<String> =
		client.request("state_getStorage", rpc_params![format!("0x{}", hex::encode(key)), at]).await.unwrap();
	let bytes = hex::decode(value.expect("account exists").trim_start_matches("0x")).unwrap();
	let info = frame_system::AccountInfo::<u32, pallet_balances::AccountData<u128>>::decode(&mut &bytes[..]).unwrap();
	info.data.free
}

/// An RPC error's code, or `None` for success.
pub fn error_code<T>(result: &Result<T, RpcError>) -> Option<i32> {
	match result {
		Ok(_) => None,
		Err(RpcError::Call(e)) => Some(e.code()),
		Err(e) => panic!("transport error: {e}"),
	}
}

pub type _Block = Block;

/// Replaces the seal (last digest item) of an exported block.
pub fn set_seal(block: &mut Value, seal: &[u8]) {
	use codec::{Decode, Encode};
	let logs = block["block"]["header"]["digest"]["logs"].as_array_mut().unwrap();
	let last = logs.last_mut().unwrap();
	let bytes = hex::decode(last.as_str().unwrap().trim_start_matches("0x")).unwrap();
	let item = sp_runtime::DigestItem::decode(&mut &bytes[..]).unwrap();
	let sp_runtime::DigestItem::Seal(id, _) = item else { panic!("last digest is not a seal") };
	*last = Value::String(format!("0x{}", hex::encode(sp_runtime::DigestItem::Seal(id, seal.to_vec()).encode())));
}

/// Imports `blocks` into a fresh database of the chain `chain` names
/// (`["--dev"]`, `["--chain", path]`). Returns (success, output).
pub fn import(dir: &Path, name: &str, chain: &[&str], blocks: &[Value]) -> (bool, String) {
	let file = dir.join(format!("{name}.json"));
	let text: String = blocks.iter().map(|b| serde_json::to_string(b).unwrap()).collect();
	std::fs::write(&file, text).unwrap();
	let base = dir.join(format!("import-{name}"));
	let out = Command::new(node_bin())
		.arg("import-blocks")
		.args(chain)
		.args(["--base-path", base.to_str().unwrap()])
		.arg(&file)
		.output()
		.unwrap();
	let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
	// Success means all blocks imported: check the database, not just the exit code.
	let info = Command::new(node_bin())
		.arg("chain-info")
		.args(chain)
		.args(["--base-path", base.to_str().unwrap()])
		.output()
		.unwrap();
	let info = String::from_utf8_lossy(&info.stdout).to_string();
	let best = info
		.find('{')
		.and_then(|i| serde_json::from_str::<Value>(&info[i..]).ok())
		.and_then(|v| v["best_number"].as_u64());
	let all_in = best == Some(blocks.len() as u64);
	(out.status.success() && all_in, format!("{log}\nchain-info: {info}"))
}

/// Blocks `from..=to` of the database at `base` (a stopped node's), as
/// `export-blocks` writes them (JSON).
pub fn export_blocks(chain: &[&str], base: &Path, from: u32, to: u32) -> Vec<Value> {
	let file = base.with_extension(format!("export-{from}-{to}.json"));
	let status = Command::new(node_bin())
		.arg("export-blocks")
		.args(chain)
		.args(["--base-path", base.to_str().unwrap(), "--from", &from.to_string(), "--to", &to.to_string()])
		.arg(&file)
		.status()
		.unwrap();
	assert!(status.success(), "export-blocks failed");
	serde_json::Deserializer::from_str(&std::fs::read_to_string(&file).unwrap())
		.into_iter::<Value>()
		.collect::<Result<_, _>>()
		.unwrap()
}

/// Has a node started with `MLPOW_TEST_ACCEPT_ANY_SEAL=1` import one block
/// under a seal of zeros, and returns its hash (retrying while the node's
/// block builder has no work yet, or the work went stale).
pub async fn junk_block(hostile: &WsClient, timeout: Duration) -> String {
	let deadline = Instant::now() + scaled(timeout);
	loop {
		assert!(Instant::now() < deadline, "the hostile node made no junk block in {timeout:?}");
		let Ok(work) = hostile.request::<Value, _>("mlpow_getWork", rpc_params![]).await else {
			tokio::time::sleep(Duration::from_millis(50)).await;
			continue;
		};
		let version = work["version"].as_u64().unwrap();
		let seal = format!("0x{}", "00".repeat(16));
		if let Ok(accepted) = hostile.request::<Value, _>("mlpow_submitSeal", rpc_params![version, seal]).await {
			return accepted["block_hash"].as_str().unwrap().to_string();
		}
	}
}
