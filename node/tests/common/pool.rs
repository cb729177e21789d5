//! Helpers for the tests of `mlpow-pool` with real processes: starting the
//! pool and workers that mine for it, and reading its `GET /status`.

use super::*;
use std::io::{Read, Write};

/// How long a pool test waits for what it expects (on an idle machine:
/// see [`scaled`]).
pub const POOL_TIMEOUT: Duration = Duration::from_secs(180);

pub fn pool_bin() -> PathBuf {
	let path = node_bin().with_file_name("mlpow-pool");
	assert!(path.exists(), "{} is missing: run `cargo build -p mlpow-pool` first", path.display());
	path
}

/// `mlpow-pool` for `node`, miners on `listen`, status on `status`, its
/// ledger in `dir`; one share a second per connection from difficulty 50,
/// a 1% fee; `extra` arguments after these. `run` numbers its log.
pub fn start_pool_with(dir: &Path, node: &Node, listen: u16, status: u16, run: u32, extra: &[&str]) -> Proc {
	let args: Vec<String> = [
		"--node",
		&node.ws_url(),
		"--listen",
		&format!("127.0.0.1:{listen}"),
		"--status",
		&format!("127.0.0.1:{status}"),
		"--share-interval",
		"1",
		"--start-difficulty",
		"50",
		"--data-dir",
		dir.join("pool-data").to_str().unwrap(),
		"--fee-percent",
		"1",
	]
	.iter()
	.chain(extra)
	.map(|s| s.to_string())
	.collect();
	Proc::spawn("mlpow-pool", &pool_bin(), &args, dir.join(format!("pool-{run}.log")))
}

/// `mlpow-worker --pool url` on one thread, as `user`; `extra` arguments
/// after these. Its log is named after the worker and `run`.
pub fn start_pool_worker_at(dir: &Path, url: &str, user: &str, run: u32, extra: &[&str]) -> Proc {
	let args: Vec<String> = ["--pool", url, "--user", user, "--threads", "1", "--report-secs", "2"]
		.iter()
		.chain(extra)
		.map(|s| s.to_string())
		.collect();
	let name = user.rsplit('.').next().unwrap();
	Proc::spawn("mlpow-worker", &worker_bin(), &args, dir.join(format!("{name}-{run}.log")))
}

/// A worker for the pool listening on `stratum+tcp://127.0.0.1:listen`.
pub fn start_pool_worker(dir: &Path, listen: u16, user: &str, run: u32) -> Proc {
	start_pool_worker_at(dir, &format!("stratum+tcp://127.0.0.1:{listen}"), user, run, &[])
}

/// The pool's `GET /status` (`None` while it is not listening).
pub fn status(port: u16) -> Option<Value> {
	let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
	stream.write_all(b"GET /status HTTP/1.1\r\nHost: pool\r\n\r\n").ok()?;
	let mut text = String::new();
	stream.read_to_string(&mut text).ok()?;
	let (head, body) = text.split_once("\r\n\r\n")?;
	assert!(head.starts_with("HTTP/1.1 200"), "{text}");
	Some(serde_json::from_str(body).unwrap_or_else(|e| panic!("status: {e}: {text}")))
}

/// The shares the pool accepted from `worker` (`ADDRESS.WORKER`).
pub fn accepted(status: &Value, worker: &str) -> u64 {
	let workers = status["workers"].as_array().unwrap();
	workers.iter().find(|w| w["worker"] == worker).map_or(0, |w| w["accepted"].as_u64().unwrap())
}

/// Waits until `done` holds of the pool's status.
pub async fn wait_status(pool: &mut Proc, port: u16, what: &str, done: impl Fn(&Value) -> bool) -> Value {
	let deadline = Instant::now() + scaled(POOL_TIMEOUT);
	loop {
		pool.assert_running();
		if let Some(s) = status(port) {
			if done(&s) {
				return s;
			}
			assert!(Instant::now() < deadline, "{what}: status {s}\n{}", pool.log_tail());
		}
		assert!(Instant::now() < deadline, "{what}: no status\n{}", pool.log_tail());
		tokio::time::sleep(Duration::from_millis(250)).await;
	}
}
