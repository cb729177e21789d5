//! Mining for a pool over the mlpow Stratum protocol
//! (`consensus/STRATUM.md`): the same lanes and job slot as solo mining,
//! with the pool's jobs for work, its share difficulty for the target and
//! its nonce prefix for the nonces; each winner is a share.
//!
//! Pools are tried in the order given (the first is the primary, the rest
//! fallbacks); after a connection ends the worker starts again from the
//! primary, backing off while none answers.

use crate::{
	backend::Job,
	miner::{Found, Miner},
	node::Outcomes,
};
use mlpow_primitives::U256;
use mlpow_stratum::{
	codes,
	line::read_line,
	message::{self, JobNotice, Message, Subscribed},
	methods,
	transport::{PoolUrl, TlsConnector},
	NoncePrefix, PROTOCOL,
};
use serde_json::{json, Value};
use std::{
	collections::{HashMap, HashSet},
	sync::{
		atomic::{AtomicU64, AtomicUsize, Ordering},
		Arc,
	},
	time::Duration,
};
use tokio::{
	io::{AsyncWriteExt, BufReader},
	sync::mpsc,
};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Connecting, subscribing and authorizing must each finish within this.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Lines from a pool are at most 64 KiB (STRATUM.md, "Transport").
const MAX_LINE: usize = 64 << 10;
/// Jobs remembered, to name the job of a share found on an older one.
const JOBS_KEPT: usize = 32;

/// A pool's address: `stratum+tcp://host:port` or `stratum+ssl://host:port`.
pub fn parse_pool_url(url: &str) -> Result<PoolUrl, String> {
	PoolUrl::parse(url)
}

/// The pools to mine for, in order, and what `stratum+ssl://` trusts.
#[derive(Clone)]
pub struct Pools {
	/// The primary first, then the fallbacks.
	pub urls: Vec<PoolUrl>,
	/// For `stratum+ssl://` pools: the system's roots and `--pool-ca`.
	pub tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Pools {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		let urls: Vec<String> = self.urls.iter().map(ToString::to_string).collect();
		f.debug_struct("Pools").field("urls", &urls).field("tls", &self.tls.is_some()).finish()
	}
}

impl Pools {
	/// `urls`, with a TLS configuration if any of them needs one (the
	/// system's roots, and the certificates in `ca` if given).
	pub fn new(urls: Vec<PoolUrl>, ca: Option<&std::path::Path>) -> Result<Self, String> {
		let tls = match urls.iter().any(|u| u.tls) {
			true => Some(mlpow_stratum::transport::client_tls(ca)?),
			false => None,
		};
		Ok(Self { urls, tls })
	}
}

/// Runs for ever: mines for the first pool of `pools` that answers, as
/// `user` (`ADDRESS.WORKER`).
pub async fn run(
	pools: Pools,
	user: String,
	miner: Arc<Miner>,
	mut found: mpsc::Receiver<Found>,
	outcomes: Arc<Outcomes>,
) {
	let mut backoff = FIRST_BACKOFF;
	loop {
		for pool in &pools.urls {
			let mut connected = false;
			match session(pool, pools.tls.as_ref(), &user, &miner, &mut found, &outcomes, &mut connected).await {
				Ok(()) => log::warn!("pool {pool} closed the connection"),
				Err(e) => log::warn!("pool {pool}: {e}"),
			}
			// Without a pool, any work in hand is stale.
			miner.set_job(None);
			miner.set_nonce_prefix(None);
			while found.try_recv().is_ok() {
				outcomes.unsent.fetch_add(1, Ordering::Relaxed);
			}
			if connected {
				backoff = FIRST_BACKOFF;
				break; // back to the primary
			}
		}
		log::info!("reconnecting in {:.1}s", backoff.as_secs_f64());
		tokio::time::sleep(backoff).await;
		backoff = (backoff * 2).min(MAX_BACKOFF);
	}
}

/// One connection's life.
async fn session(
	pool: &PoolUrl,
	tls: Option<&TlsConnector>,
	user: &str,
	miner: &Arc<Miner>,
	found: &mut mpsc::Receiver<Found>,
	outcomes: &Arc<Outcomes>,
	connected: &mut bool,
) -> anyhow::Result<()> {
	let stream = tokio::time::timeout(HANDSHAKE, mlpow_stratum::transport::connect(pool, tls)).await??;
	let (read, mut write) = tokio::io::split(stream);
	let (lines_tx, mut lines) = mpsc::channel::<Result<String, String>>(16);
	let reader = tokio::spawn(async move {
		let (mut reader, mut buf, limit) = (BufReader::new(read), Vec::new(), AtomicUsize::new(MAX_LINE));
		loop {
			let item = match read_line(&mut reader, &mut buf, &limit).await {
				Ok(true) => Ok(String::from_utf8_lossy(&buf).into_owned()),
				Ok(false) => Err("closed".to_string()),
				Err(e) => Err(e.to_string()),
			};
			let last = item.is_err();
			if lines_tx.send(item).await.is_err() || last {
				return;
			}
		}
	});
	let result = async {
		let agent = format!("mlpow-worker/{}", env!("CARGO_PKG_VERSION"));
		// Notifications that come before the answers (a pool may send the
		// difficulty and a job before `authorize`'s answer) wait for them.
		let mut early = Vec::new();
		write.write_all(message::request(1, methods::SUBSCRIBE, json!([agent, PROTOCOL])).as_bytes()).await?;
		let subscribed: Subscribed = serde_json::from_value(answer(&mut lines, 1, &mut early).await?)?;
		let prefix = NoncePrefix::from_hex(&subscribed.nonce_prefix, subscribed.nonce_prefix_bits)
			.ok_or_else(|| anyhow::anyhow!("the pool sent a bad nonce prefix: {subscribed:?}"))?;
		write.write_all(message::request(2, methods::AUTHORIZE, json!([user, ""])).as_bytes()).await?;
		let authorized = answer(&mut lines, 2, &mut early).await?;
		anyhow::ensure!(authorized == json!(true), "the pool did not authorize {user}");
		*connected = true;
		miner.set_nonce_prefix(Some(prefix));
		log::info!("mining for pool {pool} as {user}, nonce prefix {}", prefix.to_hex());
		let unanswered = Unanswered { outcomes: outcomes.clone(), ids: HashSet::new() };
		let mut state =
			State { difficulty: U256::one(), jobs: HashMap::new(), chosen: HashMap::new(), next_id: 3, unanswered };
		for line in early {
			state.incoming(&line, miner, outcomes)?;
		}
		loop {
			tokio::select! {
				line = lines.recv() => {
					let line = line.ok_or_else(|| anyhow::anyhow!("the reader stopped"))?.map_err(anyhow::Error::msg)?;
					state.incoming(&line, miner, outcomes)?;
				}
				Some(f) = found.recv() => {
					let Some(job_id) = state.jobs.get(&f.version) else {
						outcomes.stale.fetch_add(1, Ordering::Relaxed);
						continue;
					};
					// A useful job's piece under a pool that takes no chosen
					// shares: the product stands, the ticket is not sent (the
					// pool would count it against this miner).
					if f.winner.seal.len() > CHOSEN_ABOVE && !state.chosen.get(&f.version).copied().unwrap_or(false) {
						log::debug!("a chosen-mode share the pool does not take: not sent");
						outcomes.unsent.fetch_add(1, Ordering::Relaxed);
						continue;
					}
					let seal = mlpow_work::encode_hex(&f.winner.seal);
					let id = state.next_id;
					state.next_id += 1;
					// Counted before the write, which may take a while (a
					// chosen share is hundreds of KiB): a session closing
					// must not think the queue drained meanwhile.
					state.unanswered.sent(id);
					write.write_all(message::request(id, methods::SUBMIT, json!([user, job_id, seal])).as_bytes()).await?;
				}
			}
		}
	}
	.await;
	reader.abort();
	result
}

/// Waits for the answer to request `id`; notifications meanwhile go to
/// `early`, and a refusal without an id (the pool refused the connection)
/// ends the wait.
async fn answer(
	lines: &mut mpsc::Receiver<Result<String, String>>,
	id: u64,
	early: &mut Vec<String>,
) -> anyhow::Result<Value> {
	let wait = async {
		loop {
			let line = lines.recv().await.ok_or_else(|| anyhow::anyhow!("closed"))?.map_err(anyhow::Error::msg)?;
			let msg = Message::parse(&line).map_err(anyhow::Error::msg)?;
			if msg.method.is_some() {
				early.push(line);
			} else if msg.id == json!(id) || msg.id.is_null() {
				if let Some((code, why)) = msg.error() {
					anyhow::bail!("error {code}: {why}");
				}
				return Ok(msg.result);
			}
		}
	};
	tokio::time::timeout(HANDSHAKE, wait).await.map_err(|_| anyhow::anyhow!("no answer in time"))?
}

/// The shares this connection sent and the pool has not answered, by
/// request id: counted in [`Outcomes::in_flight`] while the connection
/// lasts, and moved to [`Outcomes::unsent`] when it ends (their answers
/// will never come).
struct Unanswered {
	outcomes: Arc<Outcomes>,
	ids: HashSet<u64>,
}

impl Unanswered {
	fn sent(&mut self, id: u64) {
		if self.ids.insert(id) {
			self.outcomes.in_flight.fetch_add(1, Ordering::Relaxed);
		}
	}

	/// Whether `id` is a share of this connection waiting for its answer.
	fn awaits(&self, id: u64) -> bool {
		self.ids.contains(&id)
	}

	/// Share `id`'s answer is counted: no longer in flight. (After the
	/// count, so that whoever sees nothing in flight sees the outcome.)
	fn answered(&mut self, id: u64) {
		if self.ids.remove(&id) {
			self.outcomes.in_flight.fetch_sub(1, Ordering::Release);
		}
	}
}

impl Drop for Unanswered {
	fn drop(&mut self) {
		let left = self.ids.len() as u64;
		self.outcomes.unsent.fetch_add(left, Ordering::Relaxed);
		self.outcomes.in_flight.fetch_sub(left, Ordering::Release);
	}
}

/// Work versions, unique across connections: a share found on a job of an
/// earlier connection is never sent under a new job of the same number.
static VERSION: AtomicU64 = AtomicU64::new(0);

/// Seals longer than this are chosen-mode (v2 seeded seals are 17 bytes).
const CHOSEN_ABOVE: usize = mlpow_primitives::v2::seal::HEAD_LEN;

/// What one connection knows.
struct State {
	/// The share difficulty for the next jobs.
	difficulty: U256,
	/// Local work version to the pool's job id.
	jobs: HashMap<u64, String>,
	/// Whether each job takes chosen-mode shares.
	chosen: HashMap<u64, bool>,
	next_id: u64,
	unanswered: Unanswered,
}

impl State {
	/// A line from the pool: a job, a difficulty, or a share's answer.
	fn incoming(&mut self, line: &str, miner: &Miner, outcomes: &Outcomes) -> anyhow::Result<()> {
		let msg = Message::parse(line).map_err(anyhow::Error::msg)?;
		match msg.method.as_deref() {
			Some(methods::SET_DIFFICULTY) => {
				let hex = msg.str_param(0).unwrap_or("");
				let digits = hex.strip_prefix("0x").unwrap_or(hex);
				self.difficulty = U256::from_str_radix(digits, 16)
					.ok()
					.filter(|d| !d.is_zero())
					.ok_or_else(|| anyhow::anyhow!("bad share difficulty {hex:?}"))?;
				log::info!("share difficulty {}", self.difficulty);
			}
			Some(methods::NOTIFY) => {
				let notice: JobNotice = serde_json::from_value(msg.params.get(0).cloned().unwrap_or_default())?;
				if notice.clean_jobs {
					self.jobs.clear();
					self.chosen.clear();
				}
				let version = VERSION.fetch_add(1, Ordering::Relaxed) + 1;
				self.jobs.insert(version, notice.job_id.clone());
				self.chosen.insert(version, notice.chosen);
				if self.jobs.len() > JOBS_KEPT {
					let oldest = *self.jobs.keys().min().unwrap_or(&0);
					self.jobs.remove(&oldest);
					self.chosen.remove(&oldest);
				}
				log::info!(
					"pool job {}: block #{} (share difficulty {}, block {})",
					notice.job_id,
					notice.number,
					self.difficulty,
					notice.difficulty.0
				);
				miner.set_job(Some(Job {
					version,
					pre_hash: notice.pre_hash.0,
					number: notice.number,
					// Every ticket at the share target is a share; the pool
					// tells which are blocks.
					difficulty: self.difficulty.min(notice.difficulty.0).max(U256::one()),
					params: notice.params,
					weights_seed: notice.weights_seed.0,
				}));
			}
			Some(other) => log::debug!("pool sent {other:?}; ignored"),
			None => {
				// Only the answer to a share sent on this connection counts
				// (an id-less refusal, or an answer to anything else, is
				// not a share's).
				let Some(id) = msg.id.as_u64().filter(|&id| self.unanswered.awaits(id)) else {
					if let Some((code, why)) = msg.error() {
						log::warn!("the pool refused: error {code}: {why}");
					}
					return Ok(());
				};
				match msg.error() {
					None => {
						outcomes.accepted.fetch_add(1, Ordering::Relaxed);
						self.unanswered.answered(id);
					}
					Some((code, _)) if code == i64::from(codes::STALE) || code == i64::from(codes::DUPLICATE) => {
						outcomes.stale.fetch_add(1, Ordering::Relaxed);
						self.unanswered.answered(id);
					}
					Some((code, why)) => {
						outcomes.rejected.fetch_add(1, Ordering::Relaxed);
						self.unanswered.answered(id);
						log::warn!("share refused: error {code}: {why}");
						if code == i64::from(codes::BANNED) {
							anyhow::bail!("banned by the pool: {why}");
						}
					}
				}
			}
		}
		Ok(())
	}
}
