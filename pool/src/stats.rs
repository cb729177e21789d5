//! What the pool counts, per worker and in all, and how it shows it: a
//! JSON status (`GET /status`) and Prometheus metrics (`GET /metrics`) on
//! a small HTTP listener.

use crate::ledger::Ledger;
use parking_lot::Mutex;
use serde::Serialize;
use std::{
	collections::{BTreeMap, VecDeque},
	sync::atomic::{AtomicU64, Ordering},
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::{
	io::{AsyncReadExt, AsyncWriteExt},
	net::TcpListener,
};

/// Hashrates are averaged over this window.
const WINDOW: Duration = Duration::from_secs(600);

/// What became of a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareResult {
	/// Accepted and credited.
	Accepted,
	/// For a stale job.
	Stale,
	/// Sent before.
	Duplicate,
	/// Anything else refused.
	Invalid,
}

#[derive(Default)]
struct Worker {
	accepted: u64,
	stale: u64,
	duplicate: u64,
	invalid: u64,
	blocks: u64,
	/// Share difficulty summed over accepted shares.
	weight: u128,
	/// Work (MACs) credited, and when, within the window.
	recent: VecDeque<(Instant, f64)>,
	last_share: Option<u64>,
}

/// A worker as the status shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WorkerStatus {
	/// `ADDRESS.WORKER`.
	pub worker: String,
	pub accepted: u64,
	pub stale: u64,
	pub duplicate: u64,
	pub invalid: u64,
	/// Blocks found by its shares.
	pub blocks: u64,
	/// Share difficulty summed over its accepted shares (a decimal string).
	pub weight: String,
	/// MACs per second credited over the last 10 minutes.
	pub hashrate: f64,
	/// Unix seconds of its last accepted share.
	pub last_share: Option<u64>,
}

/// The pool in all.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Status {
	pub connections: u64,
	pub blocks_found: u64,
	pub blocks_accepted: u64,
	/// Block candidates the node refused.
	pub blocks_rejected: u64,
	/// Block candidates that came after the node had moved on (two winners
	/// at once).
	pub blocks_stale: u64,
	/// Shares by result, all workers (listed or not).
	pub shares: SharesStatus,
	pub workers: Vec<WorkerStatus>,
}

/// Shares by result.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SharesStatus {
	pub accepted: u64,
	pub stale: u64,
	pub duplicate: u64,
	pub invalid: u64,
}

/// The counters.
#[derive(Default)]
pub struct Stats {
	workers: Mutex<BTreeMap<String, Worker>>,
	pub connections: AtomicU64,
	pub blocks_found: AtomicU64,
	pub blocks_accepted: AtomicU64,
	pub blocks_rejected: AtomicU64,
	pub blocks_stale: AtomicU64,
	shares_accepted: AtomicU64,
	shares_stale: AtomicU64,
	shares_duplicate: AtomicU64,
	shares_invalid: AtomicU64,
}

fn unix_now() -> u64 {
	SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Stats {
	/// Counts a share of `worker`; `weight` (its share difficulty) and
	/// `macs` (the work it stands for) only count when it was accepted. A
	/// worker is listed from its first accepted share (which costs work):
	/// refused shares of one never accepted are counted in all only, so
	/// made-up worker names cannot grow the table.
	pub fn share(&self, worker: &str, result: ShareResult, weight: u128, macs: f64, is_block: bool) {
		let counter = match result {
			ShareResult::Accepted => &self.shares_accepted,
			ShareResult::Stale => &self.shares_stale,
			ShareResult::Duplicate => &self.shares_duplicate,
			ShareResult::Invalid => &self.shares_invalid,
		};
		counter.fetch_add(1, Ordering::Relaxed);
		let mut workers = self.workers.lock();
		let w = match (workers.get_mut(worker), result) {
			(Some(w), _) => w,
			(None, ShareResult::Accepted) => workers.entry(worker.to_string()).or_default(),
			(None, _) => return,
		};
		match result {
			ShareResult::Accepted => {
				let now = Instant::now();
				w.accepted += 1;
				w.weight = w.weight.saturating_add(weight);
				w.recent.push_back((now, macs));
				while w.recent.front().is_some_and(|(at, _)| now.duration_since(*at) > WINDOW) {
					w.recent.pop_front();
				}
				w.last_share = Some(unix_now());
				if is_block {
					w.blocks += 1;
				}
			}
			ShareResult::Stale => w.stale += 1,
			ShareResult::Duplicate => w.duplicate += 1,
			ShareResult::Invalid => w.invalid += 1,
		}
	}

	/// A snapshot.
	pub fn status(&self) -> Status {
		let now = Instant::now();
		let workers = self
			.workers
			.lock()
			.iter()
			.map(|(name, w)| {
				let recent = w.recent.iter().filter(|(at, _)| now.duration_since(*at) <= WINDOW);
				let macs: f64 = recent.map(|(_, m)| m).sum();
				WorkerStatus {
					worker: name.clone(),
					accepted: w.accepted,
					stale: w.stale,
					duplicate: w.duplicate,
					invalid: w.invalid,
					blocks: w.blocks,
					weight: w.weight.to_string(),
					hashrate: macs / WINDOW.as_secs_f64(),
					last_share: w.last_share,
				}
			})
			.collect();
		Status {
			connections: self.connections.load(Ordering::Relaxed),
			blocks_found: self.blocks_found.load(Ordering::Relaxed),
			blocks_accepted: self.blocks_accepted.load(Ordering::Relaxed),
			blocks_rejected: self.blocks_rejected.load(Ordering::Relaxed),
			blocks_stale: self.blocks_stale.load(Ordering::Relaxed),
			shares: SharesStatus {
				accepted: self.shares_accepted.load(Ordering::Relaxed),
				stale: self.shares_stale.load(Ordering::Relaxed),
				duplicate: self.shares_duplicate.load(Ordering::Relaxed),
				invalid: self.shares_invalid.load(Ordering::Relaxed),
			},
			workers,
		}
	}

	/// Prometheus' text format.
	pub fn metrics(&self) -> String {
		let s = self.status();
		let mut out = String::new();
		let mut gauge = |name: &str, help: &str, kind: &str, rows: Vec<(String, String)>| {
			out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
			for (labels, value) in rows {
				out.push_str(&format!("{name}{labels} {value}\n"));
			}
		};
		gauge(
			"mlpow_pool_connections",
			"Open miner connections.",
			"gauge",
			vec![(String::new(), s.connections.to_string())],
		);
		gauge(
			"mlpow_pool_blocks_total",
			"Blocks found through the pool, by what the node made of them.",
			"counter",
			vec![
				("{result=\"found\"}".into(), s.blocks_found.to_string()),
				("{result=\"accepted\"}".into(), s.blocks_accepted.to_string()),
				("{result=\"rejected\"}".into(), s.blocks_rejected.to_string()),
				("{result=\"stale\"}".into(), s.blocks_stale.to_string()),
			],
		);
		let label = |w: &WorkerStatus, extra: &str| format!("{{worker=\"{}\"{extra}}}", w.worker);
		let mut shares = Vec::new();
		for w in &s.workers {
			for (result, n) in
				[("accepted", w.accepted), ("stale", w.stale), ("duplicate", w.duplicate), ("invalid", w.invalid)]
			{
				shares.push((label(w, &format!(",result=\"{result}\"")), n.to_string()));
			}
		}
		gauge("mlpow_pool_shares_total", "Shares by worker and result.", "counter", shares);
		let rates = s.workers.iter().map(|w| (label(w, ""), format!("{}", w.hashrate))).collect();
		gauge(
			"mlpow_pool_worker_macs_per_second",
			"Work credited per worker over the last 10 minutes.",
			"gauge",
			rates,
		);
		out
	}
}

/// The ledger as the status shows it: shares on record, what each address
/// is owed, and the blocks found, read at one moment.
fn ledger_status(ledger: &Ledger) -> serde_json::Value {
	ledger.consistent(read_ledger_status)
}

fn read_ledger_status(ledger: &Ledger) -> serde_json::Value {
	use sp_core::crypto::{AccountId32, Ss58Codec};
	let address = |a: &[u8; 32]| AccountId32::new(*a).to_ss58check();
	let flying = ledger.in_flight().unwrap_or_default();
	let balances: Vec<_> = ledger
		.balances()
		.unwrap_or_default()
		.iter()
		.map(|(a, owed)| {
			let paid = ledger.paid(a).unwrap_or_default();
			let sending: u128 = flying.iter().filter(|p| p.account == *a).map(|p| p.amount).sum();
			serde_json::json!({
				"address": address(a),
				"owed": owed.to_string(),
				"in_flight": sending.to_string(),
				"paid": paid.to_string(),
			})
		})
		.collect();
	let blocks: Vec<_> = ledger
		.blocks()
		.unwrap_or_default()
		.iter()
		.map(|b| {
			let hash: String = b.hash.iter().map(|x| format!("{x:02x}")).collect();
			serde_json::json!({
				"number": b.number,
				"hash": format!("0x{hash}"),
				"state": format!("{:?}", b.state).to_lowercase(),
				"reward": b.reward.to_string(),
			})
		})
		.collect();
	serde_json::json!({ "shares": ledger.shares_recorded(), "balances": balances, "blocks": blocks })
}

/// Serves `GET /status` (JSON) and `GET /metrics` (Prometheus) on
/// `listener` until the process ends. One request per connection.
pub async fn serve(listener: TcpListener, stats: std::sync::Arc<Stats>, ledger: std::sync::Arc<Ledger>) {
	loop {
		let Ok((mut stream, _)) = listener.accept().await else { continue };
		let (stats, ledger) = (stats.clone(), ledger.clone());
		tokio::spawn(async move {
			let mut head = vec![0u8; 4096];
			let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head)).await;
			let Ok(Ok(n)) = read else { return };
			let first = String::from_utf8_lossy(&head[..n]).lines().next().unwrap_or("").to_string();
			let (status, kind, body) = match first.split_whitespace().take(2).collect::<Vec<_>>()[..] {
				["GET", "/status"] => {
					let mut status = serde_json::to_value(stats.status()).unwrap_or_default();
					let accounts =
						tokio::task::spawn_blocking(move || ledger_status(&ledger)).await.unwrap_or_default();
					status["ledger"] = accounts;
					("200 OK", "application/json", status.to_string())
				}
				["GET", "/metrics"] => ("200 OK", "text/plain; version=0.0.4", stats.metrics()),
				_ => ("404 Not Found", "text/plain", "GET /status or /metrics\n".to_string()),
			};
			let answer = format!(
				"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
				body.len()
			);
			let _ = stream.write_all(answer.as_bytes()).await;
			let _ = stream.shutdown().await;
		});
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn shares_are_counted_per_worker() {
		let stats = Stats::default();
		stats.share("a.1", ShareResult::Accepted, 10, 6000.0, false);
		stats.share("a.1", ShareResult::Accepted, 10, 6000.0, true);
		stats.share("a.1", ShareResult::Stale, 0, 0.0, false);
		stats.share("b.1", ShareResult::Accepted, 5, 100.0, false);
		stats.share("b.1", ShareResult::Invalid, 0, 0.0, false);
		stats.share("made-up.1", ShareResult::Stale, 0, 0.0, false);
		let s = stats.status();
		assert_eq!(s.workers.len(), 2, "a worker is listed from its first accepted share");
		assert_eq!((s.shares.accepted, s.shares.stale, s.shares.invalid), (3, 2, 1));
		let a = &s.workers[0];
		assert_eq!((a.accepted, a.stale, a.blocks, a.weight.as_str()), (2, 1, 1, "20"));
		assert!((a.hashrate - 12000.0 / 600.0).abs() < 1e-9);
		assert_eq!(s.workers[1].invalid, 1);
		let m = stats.metrics();
		assert!(m.contains("mlpow_pool_shares_total{worker=\"a.1\",result=\"accepted\"} 2"), "{m}");
	}
}
