//! The job API keeps to its memory budget under concurrent load, over real
//! sockets: oversized submissions, large ones that must take turns, and
//! result reads of one done job, all at once against a 32 MiB budget.
//!
//! Checked: what the budget accounts (held jobs plus reservations) never
//! exceeds it; every request ends as an answer, a busy refusal (retried
//! until it goes through) or a too-large refusal; the answers are right;
//! and the process's peak RSS grows by at most the budget plus a fixed
//! overhead. Before the fix the same load took 1.5 GiB (submissions) and
//! 1.4 GiB (results) over a 32 MiB budget.
//!
//! The clients are raw HTTP/1.1 with `Expect: 100-continue`, so a refused
//! body is never sent, and they stream bodies and answers through small
//! buffers: the process's RSS is the server's.
//!
//! Its own test binary: nothing else runs in the process while RSS is
//! measured.

use mlpow_primitives::ChallengeParams;
use mlpow_worker::jobs::{api, input::Matrices, Jobs, Piece};
use std::{
	io::{Read, Write},
	net::{SocketAddr, TcpStream},
	sync::{
		atomic::{AtomicBool, AtomicU64, Ordering},
		Arc,
	},
	thread,
	time::{Duration, Instant},
};

const BUDGET: u64 = 32 << 20;

/// How long a client keeps retrying while the server says busy: a deadline,
/// not a count of tries, since on a loaded machine one client can wait out
/// many others' turns.
const BUSY_FOR: Duration = Duration::from_secs(600);

/// What the process may grow by besides the budget: threads' stacks (44
/// clients, the blocking pool), hyper's per-connection buffers, the
/// clients' 64 KiB buffers, and the allocator's fragmentation.
const OVERHEAD: u64 = 32 << 20;

/// The job whose product is read: all ones, so every value is `DEPTH`.
const ROWS: usize = 1024;
const DEPTH: usize = 8;
const COLS: usize = 768;

/// A field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
	let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
	let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
	let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
	kib << 10
}

/// One answer: the HTTP status and the first 64 KiB of the body.
struct Answer {
	status: u16,
	head: Vec<u8>,
}

impl Answer {
	fn text(&self) -> String {
		String::from_utf8_lossy(&self.head).into_owned()
	}

	/// The JSON-RPC error code, if the answer is an error.
	fn code(&self) -> Option<i64> {
		let v: serde_json::Value = serde_json::from_slice(&self.head).ok()?;
		v["error"]["code"].as_i64()
	}
}

/// Reads an HTTP response head: the status, and whatever of the body came
/// with it.
fn read_head(stream: &mut TcpStream) -> std::io::Result<(u16, Vec<u8>)> {
	let mut buf = Vec::new();
	let mut byte = [0u8; 1];
	while !buf.ends_with(b"\r\n\r\n") {
		if stream.read(&mut byte)? == 0 {
			return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no response head"));
		}
		buf.push(byte[0]);
	}
	let head = String::from_utf8_lossy(&buf);
	let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
	Ok((status, Vec::new()))
}

/// POSTs a body of `len` bytes written by `body` (only once the server
/// asks for it: `Expect: 100-continue`), passes the answer's body to
/// `sink` as it comes, and keeps its first 64 KiB.
fn post(
	addr: SocketAddr,
	len: u64,
	body: impl FnOnce(&mut TcpStream) -> std::io::Result<()>,
	mut sink: impl FnMut(&[u8]),
) -> std::io::Result<Answer> {
	let mut stream = TcpStream::connect(addr)?;
	write!(
		stream,
		"POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nExpect: \
		 100-continue\r\n\r\n"
	)?;
	let (mut status, _) = read_head(&mut stream)?;
	if status == 100 {
		body(&mut stream)?;
		status = read_head(&mut stream)?.0;
	}
	let (mut head, mut chunk) = (Vec::new(), vec![0u8; 64 << 10]);
	loop {
		let n = stream.read(&mut chunk)?;
		if n == 0 {
			break;
		}
		sink(&chunk[..n]);
		let keep = n.min((64 << 10) - head.len());
		head.extend_from_slice(&chunk[..keep]);
	}
	Ok(Answer { status, head })
}

fn call(addr: SocketAddr, json: &str) -> Answer {
	post(addr, json.len() as u64, |s| s.write_all(json.as_bytes()), |_| {}).expect("a small call is answered")
}

/// A `jobs_submit` of all-ones `rows x depth` and `depth x cols` matrices,
/// written as it is sent: base64 of `01 01 01` is `AQEB`.
fn submission(rows: usize, depth: usize, cols: usize) -> (u64, impl Fn(&mut TcpStream) -> std::io::Result<()>) {
	assert!((rows * depth).is_multiple_of(3) && (depth * cols).is_multiple_of(3), "whole base64 quads");
	let parts = [
		format!(
			r#"{{"jsonrpc":"2.0","id":1,"method":"jobs_submit","params":[{{"a":{{"shape":[{rows},{depth}],"data":""#
		),
		format!(r#""}},"b":{{"shape":[{depth},{cols}],"data":""#),
		r#""}}]}"#.to_string(),
	];
	let quads = [rows * depth / 3, depth * cols / 3];
	let len = parts.iter().map(|p| p.len() as u64).sum::<u64>() + 4 * (quads[0] + quads[1]) as u64;
	let write = move |s: &mut TcpStream| {
		let block = b"AQEB".repeat(16 << 10);
		for (part, quads) in parts.iter().zip(quads.iter().map(Some).chain([None])) {
			s.write_all(part.as_bytes())?;
			let mut left = quads.copied().unwrap_or(0) * 4;
			while left > 0 {
				let n = left.min(block.len());
				s.write_all(&block[..n])?;
				left -= n;
			}
		}
		Ok(())
	};
	(len, write)
}

/// What a lane computes for a piece, directly.
fn piece_product(piece: &Piece) -> Vec<i32> {
	let (m, n, k) = (piece.at.shape.m, piece.at.shape.n, piece.at.shape.k);
	(0..m * n).map(|e| (0..k).map(|z| piece.a[e / n * k + z] as i32 * piece.bt[e % n * k + z] as i32).sum()).collect()
}

/// Checks a `jobs_result` answer as it streams by: every value `DEPTH`
/// (base64 of three little-endian `8`s is `CAAAAAgAAAAIAAAA`), and how many
/// characters of data there were.
struct DataCheck {
	prefix: Vec<u8>,
	in_data: bool,
	done: bool,
	chars: u64,
	wrong: u64,
}

impl DataCheck {
	fn new() -> Self {
		Self { prefix: Vec::new(), in_data: false, done: false, chars: 0, wrong: 0 }
	}

	fn feed(&mut self, bytes: &[u8]) {
		const PATTERN: &[u8; 16] = b"CAAAAAgAAAAIAAAA";
		for &b in bytes {
			if self.done {
				return;
			}
			if !self.in_data {
				self.prefix.push(b);
				self.in_data = self.prefix.ends_with(br#""data":""#);
			} else if b == b'"' {
				self.done = true;
			} else {
				self.wrong += (PATTERN[(self.chars % 16) as usize] != b) as u64;
				self.chars += 1;
			}
		}
	}
}

#[test]
fn the_job_api_keeps_to_its_memory_budget_under_concurrent_load() {
	// The allocator as the worker runs it with --jobs-api.
	mlpow_worker::keep_freed_memory();
	mlpow_worker::one_malloc_arena();
	let jobs = Arc::new(Jobs::new(BUDGET));
	// The job whose product is read, done before the measurement starts.
	let done = jobs
		.submit(
			Matrices { rows: ROWS, depth: DEPTH, cols: COLS, a: vec![1; ROWS * DEPTH], bt: vec![1; COLS * DEPTH] },
			None,
		)
		.unwrap()
		.id;
	let shape = ChallengeParams { m: 256, n: 256, k: 64, ..ChallengeParams::DEV_V2 };
	while let Some(piece) = jobs.take(&shape) {
		jobs.complete(&piece.at, &piece_product(&piece), 0);
	}
	let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
	let (addr, server) = runtime
		.block_on(api::serve("127.0.0.1:0".parse().unwrap(), api::Api::new(jobs.clone(), None)))
		.expect("the API starts");
	let info = call(addr, r#"{"jsonrpc":"2.0","id":1,"method":"jobs_info","params":[]}"#);
	assert_eq!(info.status, 200, "{}", info.text());

	// What the budget accounts, watched throughout.
	let stop = Arc::new(AtomicBool::new(false));
	let most_accounted = Arc::new(AtomicU64::new(0));
	let watcher = {
		let (jobs, stop, most) = (jobs.clone(), stop.clone(), most_accounted.clone());
		thread::spawn(move || {
			while !stop.load(Ordering::Relaxed) {
				let (held, reserved) = jobs.usage();
				most.fetch_max(held + reserved, Ordering::Relaxed);
				thread::sleep(Duration::from_micros(200));
			}
		})
	};
	// Peak RSS from here on (writing 5 to clear_refs resets VmHWM).
	std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
	let baseline = status_bytes("VmRSS:");

	let mut clients = Vec::new();
	// 8 submissions far over what the budget could read: refused before
	// their bodies are sent.
	for _ in 0..8 {
		clients.push(thread::spawn(move || {
			let answer = post(addr, 64 << 20, |_| panic!("the server asked for an oversized body"), |_| {}).unwrap();
			assert_eq!((answer.status, answer.code()), (413, Some(2001)), "{}", answer.text());
			assert!(answer.text().contains("--jobs-memory-mib"), "{}", answer.text());
			"oversized refused"
		}));
	}
	// 24 submissions of 3 MiB bodies (9 MiB to read, 5.6 MiB to decode:
	// two fit at once), each retried while busy, then removed.
	for _ in 0..24 {
		clients.push(thread::spawn(move || {
			let (len, body) = submission(768, 1536, 768);
			let deadline = Instant::now() + BUSY_FOR;
			while Instant::now() < deadline {
				let answer = post(addr, len, &body, |_| {}).unwrap();
				match answer.code() {
					// Unread (503), or once its shapes were known (200).
					Some(2005) => {
						assert!(matches!(answer.status, 503 | 200), "{}", answer.text());
						thread::sleep(Duration::from_millis(5));
					}
					None => {
						let v: serde_json::Value = serde_json::from_slice(&answer.head).unwrap();
						let id = v["result"]["id"].as_u64().expect("a job id");
						let removed = call(
							addr,
							&format!(r#"{{"jsonrpc":"2.0","id":2,"method":"jobs_remove","params":[{id}]}}"#),
						);
						assert!(removed.text().contains("true"), "{}", removed.text());
						return "submitted";
					}
					Some(code) => panic!("submission: unexpected {code}: {}", answer.text()),
				}
			}
			panic!("a submission stayed busy")
		}));
	}
	// 12 reads of the done job's product (3 MiB, 4 MiB of base64: 11 MiB
	// reserved each), half of them of a row range, each retried while busy.
	for i in 0..12 {
		clients.push(thread::spawn(move || {
			let (params, rows) = if i % 2 == 0 {
				(format!("[{done}]"), ROWS)
			} else {
				(format!("[{done},{{\"rows\":[100,400]}}]"), 300)
			};
			let json = format!(r#"{{"jsonrpc":"2.0","id":3,"method":"jobs_result","params":{params}}}"#);
			let deadline = Instant::now() + BUSY_FOR;
			while Instant::now() < deadline {
				let mut check = DataCheck::new();
				let answer =
					post(addr, json.len() as u64, |s| s.write_all(json.as_bytes()), |b| check.feed(b)).unwrap();
				match answer.code() {
					Some(2005) => thread::sleep(Duration::from_millis(5)),
					None => {
						assert_eq!(answer.status, 200);
						assert_eq!(check.chars, (rows * COLS * 4 * 4 / 3) as u64, "every value asked for, in base64");
						assert_eq!(check.wrong, 0, "every value is {DEPTH}");
						return "read";
					}
					Some(code) => panic!("result: unexpected {code}: {}", answer.text()),
				}
			}
			panic!("a result read stayed busy")
		}));
	}
	let outcomes: Vec<&str> = clients.into_iter().map(|c| c.join().expect("a client")).collect();
	let peak = status_bytes("VmHWM:");
	stop.store(true, Ordering::Relaxed);
	watcher.join().unwrap();

	assert_eq!(outcomes.iter().filter(|o| **o == "submitted").count(), 24);
	assert_eq!(outcomes.iter().filter(|o| **o == "read").count(), 12);
	let most = most_accounted.load(Ordering::Relaxed);
	let growth = peak.saturating_sub(baseline);
	eprintln!(
		"budget {} MiB: most accounted {:.1} MiB; RSS {:.1} MiB before the load, peak {:.1} MiB (+{:.1} MiB)",
		BUDGET >> 20,
		most as f64 / (1 << 20) as f64,
		baseline as f64 / (1 << 20) as f64,
		peak as f64 / (1 << 20) as f64,
		growth as f64 / (1 << 20) as f64
	);
	assert!(most <= BUDGET, "accounted {most} bytes over the {BUDGET}-byte budget");
	assert!(growth <= BUDGET + OVERHEAD, "peak RSS grew by {growth} bytes, over the budget plus {OVERHEAD}");
	// Every reservation goes back once its connection is closed (the
	// server closes it after the answer, a moment after the client has
	// read it).
	for _ in 0..1000 {
		if jobs.usage().1 == 0 {
			break;
		}
		thread::sleep(Duration::from_millis(10));
	}
	assert_eq!(jobs.usage(), (jobs.memory().1, 0), "no reservation outlives its connection");
	server.stop().unwrap();
}
