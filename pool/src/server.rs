//! Miners' connections: the session of STRATUM.md (subscribe, authorize,
//! jobs, shares) and the pool's policy toward hostile miners (bans, limits
//! per address, time limits, slow readers).

use crate::{
	jobs::{Job, Jobs},
	ledger::Ledger,
	node::Candidate,
	prefixes::Prefixes,
	stats::{ShareResult, Stats},
	vardiff::Vardiff,
};
use mlpow_primitives::{v2::noise::Mode, ChallengeParams, PUZZLE_V2, SEAL_LEN, U256};
use mlpow_stratum::transport::{Stream, TlsAcceptor};
use mlpow_stratum::{
	codes,
	line::{read_line, LineError},
	message::{self, JobNotice, Message, Subscribed},
	methods,
	share::{self, Rejection},
	NoncePrefix, PROTOCOL,
};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sp_core::crypto::{AccountId32, Ss58Codec};
use std::{
	collections::HashMap,
	net::{IpAddr, SocketAddr},
	sync::{
		atomic::{AtomicUsize, Ordering},
		Arc,
	},
	time::{Duration, Instant},
};
use tokio::{
	io::{AsyncWriteExt, BufReader, WriteHalf},
	net::{TcpListener, TcpStream},
	sync::{mpsc, watch, Semaphore},
};

/// Junk in a row after which a connection is banned.
pub const BAN_AFTER_JUNK: u32 = 10;
/// Junk from one address within [`JUNK_WINDOW`] after which it is banned,
/// however it spreads it over connections.
pub const BAN_AFTER_JUNK_PER_IP: u32 = 50;
/// The window over which an address's junk is counted.
pub const JUNK_WINDOW: Duration = Duration::from_secs(600);
/// How long a banned address is refused.
pub const BAN_FOR: Duration = Duration::from_secs(600);
/// Connections per address that have not authorized yet.
pub const MAX_PENDING_PER_IP: usize = 8;
/// A connection must subscribe and authorize within this.
pub const AUTHORIZE_WITHIN: Duration = Duration::from_secs(30);
/// A connection that sends nothing for this long is closed.
pub const IDLE_FOR: Duration = Duration::from_secs(600);
/// Lines waiting to be written to one miner; a miner that lets more pile
/// up does not read, and is dropped.
const OUTBOX: usize = 64;
/// One write to a miner must finish within this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// A `stratum+ssl://` miner's TLS handshake must finish within this.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Workers one connection may authorize.
const MAX_WORKERS: usize = 256;
/// How often a connection's share difficulty is looked at between jobs.
const RETARGET_EVERY: Duration = Duration::from_secs(10);
/// Lines before the first job, when no seal is expected yet.
const SMALL_LINE: usize = 4096;

/// The pool's policy, from the command line.
#[derive(Clone, Debug)]
pub struct Config {
	/// Vardiff's target time between a connection's shares.
	pub share_interval: Duration,
	/// A connection's first share difficulty.
	pub start_difficulty: U256,
	/// Width of the nonce prefixes handed out.
	pub prefix_bits: u32,
	/// Whether chosen-mode v2 shares are taken.
	pub chosen: bool,
	/// Connections per address, authorized or not (a farm behind one
	/// address needs several).
	pub max_per_ip: usize,
}

/// Everything the connections share.
pub struct Pool {
	pub config: Config,
	pub jobs: Arc<Jobs>,
	pub current: watch::Receiver<Option<Arc<Job>>>,
	pub candidates: mpsc::Sender<Candidate>,
	pub stats: Arc<Stats>,
	pub ledger: Arc<Ledger>,
	prefixes: Mutex<Prefixes>,
	bans: Mutex<HashMap<IpAddr, Instant>>,
	/// Per address: connections not authorized yet, and all connections.
	pending: Mutex<HashMap<IpAddr, usize>>,
	open: Mutex<HashMap<IpAddr, usize>>,
	/// Per address: junk within the window, and when the window began.
	junk: Mutex<HashMap<IpAddr, (u32, Instant)>>,
	/// Share checks run on blocking threads, at most one per core.
	verifiers: Semaphore,
}

impl Pool {
	pub fn new(
		config: Config,
		jobs: Arc<Jobs>,
		current: watch::Receiver<Option<Arc<Job>>>,
		candidates: mpsc::Sender<Candidate>,
		stats: Arc<Stats>,
		ledger: Arc<Ledger>,
	) -> Self {
		let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
		let prefixes = Mutex::new(Prefixes::new(config.prefix_bits));
		Self {
			config,
			jobs,
			current,
			candidates,
			stats,
			ledger,
			prefixes,
			bans: Mutex::default(),
			pending: Mutex::default(),
			open: Mutex::default(),
			junk: Mutex::default(),
			verifiers: Semaphore::new(cores),
		}
	}

	fn banned(&self, ip: IpAddr) -> bool {
		let mut bans = self.bans.lock();
		let now = Instant::now();
		bans.retain(|_, until| *until > now);
		bans.contains_key(&ip)
	}

	fn ban(&self, ip: IpAddr) {
		self.bans.lock().insert(ip, Instant::now() + BAN_FOR);
	}

	fn leave_pending(&self, ip: IpAddr) {
		decrement(&mut self.pending.lock(), ip);
	}

	/// Counts a piece of junk from `ip`: `true` when the address has sent
	/// too much of it within the window and is now banned.
	fn junk_from(&self, ip: IpAddr) -> bool {
		let now = Instant::now();
		let mut junk = self.junk.lock();
		if junk.len() > 65536 {
			junk.retain(|_, (_, since)| now.duration_since(*since) < JUNK_WINDOW);
		}
		let (count, since) = junk.entry(ip).or_insert((0, now));
		if now.duration_since(*since) >= JUNK_WINDOW {
			(*count, *since) = (0, now);
		}
		*count += 1;
		if *count >= BAN_AFTER_JUNK_PER_IP {
			junk.remove(&ip);
			self.ban(ip);
			return true;
		}
		false
	}
}

fn decrement(counts: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
	if let Some(n) = counts.get_mut(&ip) {
		*n -= 1;
		if *n == 0 {
			counts.remove(&ip);
		}
	}
}

mod conn;
use conn::Conn;

/// Accepts miners on `listener` for ever: plain TCP, or TLS with `tls`
/// (`stratum+ssl://`). The limits and bans apply before the TLS handshake,
/// which costs the pool more than the miner.
pub async fn serve(pool: Arc<Pool>, listener: TcpListener, tls: Option<TlsAcceptor>) {
	loop {
		let (stream, addr) = match listener.accept().await {
			Ok(accepted) => accepted,
			Err(e) => {
				log::warn!("accept: {e}");
				tokio::time::sleep(Duration::from_millis(100)).await;
				continue;
			}
		};
		let ip = addr.ip();
		if pool.banned(ip) {
			refuse(stream, tls.is_some(), codes::BANNED, "banned").await;
			continue;
		}
		let full = {
			let (mut pending, mut open) = (pool.pending.lock(), pool.open.lock());
			let (waiting, all) = (pending.entry(ip).or_default(), open.entry(ip).or_default());
			if *waiting >= MAX_PENDING_PER_IP {
				Some("too many connections from this address are not authorized yet")
			} else if *all >= pool.config.max_per_ip {
				Some("too many connections from this address")
			} else {
				*waiting += 1;
				*all += 1;
				None
			}
		};
		if let Some(why) = full {
			pool.pending.lock().retain(|_, n| *n > 0);
			pool.open.lock().retain(|_, n| *n > 0);
			refuse(stream, tls.is_some(), codes::OTHER, why).await;
			continue;
		}
		let (pool, tls) = (pool.clone(), tls.clone());
		tokio::spawn(async move {
			pool.stats.connections.fetch_add(1, Ordering::Relaxed);
			let _ = stream.set_nodelay(true);
			let stream: Result<Box<dyn Stream>, String> = match tls {
				None => Ok(Box::new(stream)),
				Some(tls) => match tokio::time::timeout(TLS_HANDSHAKE, tls.accept(stream)).await {
					Ok(Ok(stream)) => Ok(Box::new(stream)),
					Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
					Err(_) => Err("no TLS handshake in time".into()),
				},
			};
			let mut conn = Conn::new(pool.clone(), addr);
			let why = match stream {
				Ok(stream) => conn.run(stream).await,
				Err(why) => why,
			};
			log::debug!("miner {addr} ({}): closed: {why}", conn.who());
			if conn.authorized.is_empty() {
				pool.leave_pending(ip);
			}
			decrement(&mut pool.open.lock(), ip);
			if let Some(prefix) = conn.prefix {
				pool.prefixes.lock().release(prefix);
			}
			pool.stats.connections.fetch_sub(1, Ordering::Relaxed);
		});
	}
}

/// Answers a connection the pool will not serve, and closes it (a TLS
/// connection is only closed: answering it would need the handshake).
async fn refuse(mut stream: TcpStream, tls: bool, code: i32, why: &str) {
	if tls {
		return;
	}
	let line = message::refusal(&Value::Null, code, why);
	let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(line.as_bytes())).await;
}
