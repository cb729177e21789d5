//! One miner's connection: the session of STRATUM.md (subscribe,
//! authorize, jobs, shares, in the spec's order of checks) and its share
//! of the pool's policy (junk counts, the outbox, time limits).

use super::*;

/// The share difficulties a job was sent under on a connection: more than
/// one when vardiff lowered the difficulty and sent the job again. A share
/// of the job must meet the lowest, and is credited at the lowest: a
/// share is worth the tickets a miner needs to find one at the easiest
/// target it may use. (Crediting at the highest level a share met paid a
/// miner who submits every ticket at the lowest level up to twice per
/// ticket, the review of the ledger found; so a raise is never applied to
/// a job already sent, only to the next.)
#[derive(Clone, Debug)]
struct Judged {
	/// Every difficulty the job was sent under.
	levels: Vec<U256>,
}

impl Judged {
	fn new(difficulty: U256) -> Self {
		Self { levels: vec![difficulty] }
	}

	/// The job sent again under a lower `difficulty`.
	fn lower(&mut self, difficulty: U256) {
		if difficulty < self.floor() {
			self.levels.push(difficulty);
		}
	}

	/// The least difficulty a share of the job may meet, and what each is
	/// credited at.
	fn floor(&self) -> U256 {
		self.levels.iter().copied().min().expect("never empty")
	}
}

/// One miner's connection.
pub(super) struct Conn {
	pool: Arc<Pool>,
	addr: SocketAddr,
	outbox: Option<mpsc::Sender<String>>,
	pub(super) prefix: Option<NoncePrefix>,
	/// Authorized workers: `ADDRESS.WORKER` as sent, and the account paid.
	pub(super) authorized: HashMap<String, AccountId32>,
	vardiff: Vardiff,
	/// The share difficulty last announced (`mining.set_difficulty`).
	announced: Option<U256>,
	/// The share difficulties each job is judged at on this connection.
	sent: HashMap<String, Judged>,
	junk: u32,
	/// The longest line a share of a current job needs.
	line_limit: Arc<AtomicUsize>,
	/// The pool's current job, as this connection has seen it.
	current: watch::Receiver<Option<Arc<Job>>>,
}

impl Conn {
	pub(super) fn new(pool: Arc<Pool>, addr: SocketAddr) -> Self {
		let vardiff = Vardiff::new(pool.config.share_interval, pool.config.start_difficulty, Instant::now());
		let current = pool.current.clone();
		Self {
			pool,
			addr,
			outbox: None,
			prefix: None,
			authorized: HashMap::new(),
			vardiff,
			announced: None,
			sent: HashMap::new(),
			junk: 0,
			line_limit: Arc::new(AtomicUsize::new(SMALL_LINE)),
			current,
		}
	}

	pub(super) fn who(&self) -> String {
		match self.authorized.keys().next() {
			Some(worker) if self.authorized.len() == 1 => worker.clone(),
			Some(_) => format!("{} workers", self.authorized.len()),
			None => "not authorized".into(),
		}
	}

	/// Serves the connection; returns why it ended.
	pub(super) async fn run(&mut self, stream: Box<dyn Stream>) -> String {
		let (read, write) = tokio::io::split(stream);
		let (outbox, queued) = mpsc::channel(OUTBOX);
		self.outbox = Some(outbox);
		let mut writer = tokio::spawn(write_lines(write, queued));
		// Lines are read in their own task: reading is not cancel-safe, and
		// the loop below also waits for jobs.
		let (lines_tx, mut lines) = mpsc::channel(1);
		let limit = self.line_limit.clone();
		let reader = tokio::spawn(async move {
			let (mut reader, mut buf) = (BufReader::new(read), Vec::new());
			loop {
				let got = read_line(&mut reader, &mut buf, &limit).await;
				let item = match got {
					Ok(true) => Ok(String::from_utf8_lossy(&buf).into_owned()),
					Ok(false) => return,
					Err(e) => Err(e),
				};
				// One long line (a chosen-mode share is up to a MiB) must not
				// keep its buffer for the rest of the connection: a miner with
				// many connections would pin that much per connection.
				if buf.capacity() > SMALL_LINE {
					buf = Vec::new();
				}
				let last = item.is_err();
				if lines_tx.send(item).await.is_err() || last {
					return;
				}
			}
		});
		let authorize_by = tokio::time::Instant::now() + AUTHORIZE_WITHIN;
		// Only lines from the miner keep it alive; jobs sent to it do not.
		let mut idle_by = tokio::time::Instant::now() + IDLE_FOR;
		let mut retarget = tokio::time::interval(RETARGET_EVERY);
		retarget.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
		let why = loop {
			let (waiting, authorized) = (self.authorized.is_empty(), !self.authorized.is_empty());
			tokio::select! {
				line = lines.recv() => match line {
					None => break "the miner closed the connection".to_string(),
					Some(Err(LineError::TooLong(limit))) => {
						self.send(message::refusal(&Value::Null, codes::OTHER, &format!("a line longer than {limit} bytes")));
						break "line too long".to_string();
					}
					Some(Err(e)) => break e.to_string(),
					Some(Ok(line)) => {
						idle_by = tokio::time::Instant::now() + IDLE_FOR;
						if let Err(why) = self.handle(&line).await {
							break why;
						}
					}
				},
				changed = self.current.changed(), if authorized => {
					if changed.is_err() {
						break "the pool is shutting down".to_string();
					}
					let job = self.current.borrow_and_update().clone();
					if let Some(job) = job {
						self.notify(&job, false);
					}
				}
				_ = retarget.tick(), if authorized => {
					// Between jobs too, so a fast miner does not flood shares
					// until the next block: the current job again, judged at
					// the lower of the two difficulties.
					let job = self.current.borrow().clone();
					if let Some(job) = job {
						if self.vardiff.due(Instant::now()) {
							self.notify(&job, true);
						}
					}
				}
				_ = tokio::time::sleep_until(authorize_by), if waiting => {
					break "did not subscribe and authorize in time".to_string();
				}
				_ = tokio::time::sleep_until(idle_by) => break "idle".to_string(),
			}
			if self.outbox.as_ref().is_none_or(|o| o.is_closed()) {
				break "could not write to the miner".to_string();
			}
		};
		reader.abort();
		self.outbox = None;
		// What is queued gets a second to go out. After that the writer is
		// stopped, not left waiting: the pool already counts the connection
		// as closed, so a writer blocked on a miner that does not read would
		// hold its socket and buffers uncounted (for 30 s a line, or for
		// ever in a TLS shutdown).
		if tokio::time::timeout(Duration::from_secs(1), &mut writer).await.is_err() {
			writer.abort();
		}
		why
	}

	/// Queues a line; a miner that lets [`OUTBOX`] lines pile up is dropped.
	fn send(&mut self, line: String) {
		if let Some(outbox) = &self.outbox {
			if outbox.try_send(line).is_err() {
				log::info!("miner {} does not read its messages: dropping it", self.addr);
				self.outbox = None;
			}
		}
	}

	/// One line from the miner. `Err` ends the connection.
	async fn handle(&mut self, line: &str) -> Result<(), String> {
		let msg = match Message::parse(line) {
			Ok(msg) if msg.method.is_some() => msg,
			Ok(_) => return self.junk(&Value::Null, codes::OTHER, "not a request"),
			Err(why) => return self.junk(&Value::Null, codes::OTHER, &why),
		};
		let id = msg.id.clone();
		match msg.method.as_deref().unwrap_or_default() {
			methods::SUBSCRIBE => self.subscribe(&id, &msg),
			methods::AUTHORIZE => self.authorize(&id, &msg),
			methods::SUBMIT => self.submit(&id, &msg).await,
			other => {
				let why = format!("unknown method {other:?}");
				self.junk(&id, codes::OTHER, &why)
			}
		}
	}

	/// Refuses with `code` and counts it toward a ban.
	fn junk(&mut self, id: &Value, code: i32, why: &str) -> Result<(), String> {
		self.junk += 1;
		let why: String = why.chars().take(200).collect();
		let why = why.as_str();
		if self.pool.junk_from(self.addr.ip()) || self.junk >= BAN_AFTER_JUNK {
			self.send(message::refusal(
				id,
				codes::BANNED,
				&format!("banned for too many bad messages; the last: {why}"),
			));
			self.pool.ban(self.addr.ip());
			log::warn!("miner {} ({}) banned for {BAN_FOR:?}: {why}", self.addr, self.who());
			return Err(format!("banned: {why}"));
		}
		self.send(message::refusal(id, code, why));
		Ok(())
	}

	fn subscribe(&mut self, id: &Value, msg: &Message) -> Result<(), String> {
		if self.prefix.is_some() {
			return self.junk(id, codes::OTHER, "already subscribed");
		}
		if msg.str_param(1) != Some(PROTOCOL) {
			let why = format!("this pool speaks {PROTOCOL} (params: [user agent, {PROTOCOL:?}])");
			return self.junk(id, codes::OTHER, &why);
		}
		let Some(prefix) = self.pool.prefixes.lock().take() else {
			self.send(message::refusal(id, codes::OTHER, "the pool has no nonce prefix left"));
			return Err("no prefix left".into());
		};
		self.prefix = Some(prefix);
		let agent: String = msg.str_param(0).unwrap_or("").chars().take(64).collect();
		log::info!("miner {} ({agent:?}) subscribed with nonce prefix {}", self.addr, prefix.to_hex());
		let result = Subscribed {
			session: format!("0x{:08x}", prefix.value),
			nonce_prefix: prefix.to_hex(),
			nonce_prefix_bits: prefix.bits,
		};
		self.send(message::answer(id, json!(result)));
		Ok(())
	}

	fn authorize(&mut self, id: &Value, msg: &Message) -> Result<(), String> {
		if self.prefix.is_none() {
			self.send(message::refusal(id, codes::NOT_SUBSCRIBED, "subscribe first"));
			return Ok(());
		}
		let Some(user) = msg.str_param(0).map(str::to_string) else {
			return self.junk(id, codes::UNAUTHORIZED, "params: [\"ADDRESS.WORKER\", password]");
		};
		let user = user.as_str();
		let account = mlpow_stratum::message::split_worker(user).and_then(|(address, _)| {
			AccountId32::from_ss58check_with_version(address)
				.map(|(account, _)| account)
				.map_err(|e| format!("{address:?} is not an SS58 address: {e:?}"))
		});
		let account = match account {
			Ok(account) => account,
			Err(why) => return self.junk(id, codes::UNAUTHORIZED, &why),
		};
		if self.authorized.len() >= MAX_WORKERS && !self.authorized.contains_key(user) {
			return self.junk(id, codes::UNAUTHORIZED, "too many workers on one connection");
		}
		let first = self.authorized.is_empty();
		self.authorized.insert(user.to_string(), account);
		self.send(message::answer(id, json!(true)));
		if first {
			self.pool.leave_pending(self.addr.ip());
			log::info!("miner {} authorized as {user}", self.addr);
			// Seen here, so the job is not sent twice.
			let job = self.current.borrow_and_update().clone();
			if let Some(job) = job {
				self.notify(&job, false);
			}
		}
		Ok(())
	}

	/// Sends `job`, after the share difficulty it is judged at if that is
	/// not the one last announced. `again`: the job was sent before (a
	/// retarget between jobs); shares found meanwhile at the old difficulty
	/// still count, at the lower of the two.
	fn notify(&mut self, job: &Job, again: bool) {
		if let Some(new) = self.vardiff.retarget(Instant::now(), job.work.difficulty.0) {
			log::debug!("miner {}: share difficulty {new}", self.addr);
		}
		// At most a 64th of the block's (vardiff::cap, also for the first).
		let difficulty = self.vardiff.difficulty().min(crate::vardiff::cap(job.work.difficulty.0)).max(U256::one());
		// A raise waits for the next job (see `Judged`); a job is sent again
		// only to lower its difficulty.
		let floor = self.sent.get(&job.id).map(Judged::floor);
		if again && floor.is_none_or(|floor| difficulty >= floor) {
			return;
		}
		if self.announced != Some(difficulty) {
			self.announced = Some(difficulty);
			self.send(message::notification(methods::SET_DIFFICULTY, json!([format!("{difficulty:#x}")])));
		}
		if job.clean && !again {
			self.sent.clear();
		}
		match self.sent.get_mut(&job.id) {
			Some(judged) if again => judged.lower(difficulty),
			_ => {
				self.sent.insert(job.id.clone(), Judged::new(difficulty));
			}
		}
		self.line_limit.store(line_limit(&job.work.params, self.pool.config.chosen), Ordering::Relaxed);
		let notice = JobNotice {
			job_id: job.id.clone(),
			clean_jobs: job.clean,
			pre_hash: job.work.pre_hash,
			parent_hash: job.work.parent_hash,
			number: job.work.number,
			params: job.work.params,
			weights_seed: job.work.weights_seed,
			difficulty: job.work.difficulty,
			chosen: self.pool.config.chosen && job.work.params.version == PUZZLE_V2,
		};
		self.send(message::notification(methods::NOTIFY, json!([notice])));
	}

	/// `mining.submit`: STRATUM.md's eight checks, in order.
	async fn submit(&mut self, id: &Value, msg: &Message) -> Result<(), String> {
		// 1, 2: the session.
		let Some(prefix) = self.prefix else {
			self.send(message::refusal(id, codes::NOT_SUBSCRIBED, "subscribe first"));
			return Ok(());
		};
		let user = msg.str_param(0).unwrap_or("").to_string();
		if !self.authorized.contains_key(&user) {
			self.send(message::refusal(id, codes::UNAUTHORIZED, "this worker is not authorized on this connection"));
			return Ok(());
		}
		// 3: the request.
		let three = msg.params.as_array().is_some_and(|p| p.len() == 3);
		let (true, Some(job_id), Some(seal)) = (three, msg.str_param(1), msg.str_param(2)) else {
			return self.junk(id, codes::OTHER, "params: [worker, job_id, seal]");
		};
		let seal = match mlpow_work::decode_hex(seal) {
			Ok(seal) => seal,
			Err(why) => return self.junk(id, codes::OTHER, &format!("the seal: {why}")),
		};
		// 4: the job.
		let (Some(job), Some(judged)) = (self.pool.jobs.get(job_id), self.sent.get(job_id).cloned()) else {
			self.pool.stats.share(&user, ShareResult::Stale, 0, 0.0, false);
			self.send(message::refusal(id, codes::STALE, "stale job"));
			return Ok(());
		};
		let params = job.work.params;
		// 5, 6, 7: the seal's form, its nonce, and whether it was seen.
		let early = share::check_form(&params, &seal, self.pool.config.chosen)
			.and_then(|()| share::check_nonce(&seal, &prefix))
			.and_then(|()| {
				if self.pool.jobs.seen(&job.work.pre_hash.0, &seal) {
					Err(Rejection::Duplicate)
				} else {
					Ok(())
				}
			});
		// 8: the tile, at the share difficulty.
		let verdict = match early {
			Err(e) => Err(e),
			Ok(()) => {
				let Ok(_permit) = self.pool.verifiers.acquire().await else {
					return Err("the pool is shutting down".into());
				};
				let (work, bytes, floor) = (job.work.clone(), seal.clone(), judged.floor());
				tokio::task::spawn_blocking(move || {
					share::verify_share(
						&work.params,
						&work.weights_seed.0,
						&work.pre_hash.0,
						floor,
						work.difficulty.0,
						&bytes,
					)
				})
				.await
				.map_err(|e| format!("the share check failed: {e}"))?
			}
		};
		let accepted = match verdict {
			Ok(accepted) => accepted,
			Err(rejection) => {
				let result = if rejection.is_junk() { ShareResult::Invalid } else { ShareResult::Duplicate };
				self.pool.stats.share(&user, result, 0, 0.0, false);
				return if rejection.is_junk() {
					self.junk(id, rejection.code(), &rejection.to_string())
				} else {
					self.send(message::refusal(id, rejection.code(), &rejection.to_string()));
					Ok(())
				};
			}
		};
		if !self.pool.jobs.accept(&job, &seal) {
			// The same seal checked twice at once, or its parent replaced meanwhile.
			let (result, code) = match self.pool.jobs.get(job_id) {
				Some(_) => (ShareResult::Duplicate, codes::DUPLICATE),
				None => (ShareResult::Stale, codes::STALE),
			};
			self.pool.stats.share(&user, result, 0, 0.0, false);
			self.send(message::refusal(id, code, "duplicate or stale share"));
			return Ok(());
		}
		let difficulty = judged.floor();
		let weight: u128 = difficulty.try_into().unwrap_or(u128::MAX);
		// On disk before the miner hears it was accepted.
		let account: [u8; 32] = *self.authorized[&user].as_ref();
		let ledger = self.pool.ledger.clone();
		let seen = crate::ledger::seen_key(&job.work.parent_hash.0, &job.work.pre_hash.0, &seal);
		let recorded = tokio::task::spawn_blocking(move || ledger.share(&account, weight, &seen)).await;
		match recorded.map_err(anyhow::Error::from).and_then(|r| r) {
			Ok(true) => {}
			Ok(false) => {
				// Accepted before the pool restarted: the ledger remembers.
				// An honest miner never sends a share again, and this one
				// cost a tile check: junk, toward a ban.
				self.pool.stats.share(&user, ShareResult::Duplicate, 0, 0.0, false);
				return self.junk(id, codes::DUPLICATE, "duplicate share (accepted before the pool restarted)");
			}
			Err(e) => {
				log::error!("could not record a share of {user}: {e:#}");
				self.send(message::refusal(id, codes::OTHER, "the pool could not record the share"));
				return Ok(());
			}
		}
		self.junk = 0;
		self.vardiff.share(difficulty);
		let macs = difficulty.low_u128() as f64 * params.macs_per_ticket() as f64;
		self.pool.stats.share(&user, ShareResult::Accepted, weight, macs, accepted.is_block);
		self.send(message::answer(id, json!(true)));
		// A fast miner's 30 shares come long before the next job: retarget
		// at once rather than take its flood until then.
		if self.vardiff.due(Instant::now()) {
			let current = self.current.borrow().clone();
			if let Some(current) = current {
				self.notify(&current, true);
			}
		}
		if accepted.is_block {
			self.pool.stats.blocks_found.fetch_add(1, Ordering::Relaxed);
			if self.pool.jobs.is_current(&job) {
				let candidate = Candidate {
					version: job.work.version,
					difficulty: job.work.difficulty.0,
					// The block's window ends with this share.
					shares_before: self.pool.ledger.shares_recorded(),
					seal,
					worker: user.clone(),
				};
				if self.pool.candidates.try_send(candidate).is_err() {
					log::warn!("a block from {user} could not be queued for the node");
				}
			} else {
				log::info!("a block from {user} on job {job_id}, which the node has rebuilt since: not submitted");
			}
		}
		Ok(())
	}
}

/// The longest line a share of a job under `params` needs.
fn line_limit(params: &ChallengeParams, chosen: bool) -> usize {
	let seal = match params.version {
		PUZZLE_V2 if chosen && params.validate().is_ok() => {
			mlpow_primitives::v2::seal::encoded_len(params, Mode::Chosen)
		}
		PUZZLE_V2 => mlpow_primitives::v2::seal::HEAD_LEN,
		_ => SEAL_LEN,
	};
	2 * seal + SMALL_LINE
}

/// Writes queued lines until the queue closes or a write fails or stalls.
async fn write_lines(mut write: WriteHalf<Box<dyn Stream>>, mut queued: mpsc::Receiver<String>) {
	while let Some(line) = queued.recv().await {
		match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(line.as_bytes())).await {
			Ok(Ok(())) => {}
			_ => break,
		}
	}
	queued.close();
	let _ = tokio::time::timeout(Duration::from_secs(1), write.shutdown()).await;
}

#[cfg(test)]
mod tests {
	use super::*;

	/// A job sent again under a lower difficulty takes shares at it, and
	/// every share of the job is credited at the lowest; raises wait.
	#[test]
	fn a_share_is_credited_at_the_lowest_difficulty_of_its_job() {
		let mut judged = Judged::new(U256::from(32));
		judged.lower(U256::from(64));
		assert_eq!(judged.floor(), U256::from(32), "a raise does not apply to a job already sent");
		judged.lower(U256::from(8));
		assert_eq!(judged.floor(), U256::from(8));
		assert_eq!(judged.levels.len(), 2);
	}
}
