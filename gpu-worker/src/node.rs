//! The connection to the node: subscribe to work, submit seals, and come
//! back with exponential backoff whenever the node goes away.

use crate::{
	backend::Job,
	jobs::Jobs,
	miner::{Found, Miner},
};
use jsonrpsee::{
	core::client::{ClientT, Error as RpcError, Subscription, SubscriptionClientT},
	rpc_params,
	ws_client::{WsClient, WsClientBuilder},
};
use mlpow_work::{codes, methods, Accepted, WorkItem};
use std::{
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc,
	},
	time::Duration,
};
use tokio::sync::mpsc;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Submission outcomes, for the report line.
#[derive(Default)]
pub struct Outcomes {
	pub accepted: AtomicU64,
	pub stale: AtomicU64,
	pub rejected: AtomicU64,
	/// Seals sent to the node or pool and not answered yet (a session
	/// closing waits for them: [`crate::session::Session::close`]).
	pub in_flight: AtomicU64,
	/// Winners never sent or never answered: queued when the connection
	/// was lost, chosen-mode shares a pool does not take, shares whose
	/// connection closed before the pool answered.
	pub unsent: AtomicU64,
}

impl From<WorkItem> for Job {
	fn from(w: WorkItem) -> Self {
		Job {
			version: w.version,
			pre_hash: w.pre_hash.0,
			number: w.number,
			difficulty: w.difficulty.0,
			params: w.params,
			weights_seed: w.weights_seed.0,
		}
	}
}

/// Runs forever: connect, mine, and reconnect after any failure.
pub async fn run(url: String, miner: Arc<Miner>, mut found: mpsc::Receiver<Found>, outcomes: Arc<Outcomes>) {
	let mut backoff = FIRST_BACKOFF;
	loop {
		let mut connected = false;
		match session(&url, &miner, &mut found, &outcomes, &mut connected).await {
			Ok(()) => log::warn!("node {url} closed the work subscription"),
			Err(e) => log::warn!("node {url}: {e}"),
		}
		if connected {
			backoff = FIRST_BACKOFF;
		}
		// Without a node, any work in hand is stale.
		miner.set_job(None);
		while found.try_recv().is_ok() {
			outcomes.unsent.fetch_add(1, Ordering::Relaxed);
		}
		log::info!("reconnecting in {:.1}s", backoff.as_secs_f64());
		tokio::time::sleep(backoff).await;
		backoff = (backoff * 2).min(MAX_BACKOFF);
	}
}

/// One connection's life. Returns when the connection or subscription ends.
async fn session(
	url: &str,
	miner: &Arc<Miner>,
	found: &mut mpsc::Receiver<Found>,
	outcomes: &Arc<Outcomes>,
	connected: &mut bool,
) -> Result<(), RpcError> {
	let client = Arc::new(WsClientBuilder::default().build(url).await?);
	let mut work: Subscription<WorkItem> =
		client.subscribe(methods::SUBSCRIBE_WORK, rpc_params![], methods::UNSUBSCRIBE_WORK).await?;
	*connected = true;
	log::info!("connected to {url}; waiting for work");
	loop {
		tokio::select! {
			item = work.next() => match item {
				Some(Ok(item)) => {
					log::info!(
						"work #{}: block #{} difficulty {} ({}x{}x{}, t={})",
						item.version, item.number, item.difficulty.0,
						item.params.m, item.params.k, item.params.n, item.params.t,
					);
					miner.set_job(Some(Job::from(item)));
				},
				Some(Err(e)) => {
					// A notification we cannot parse: the node speaks another
					// protocol version. Nothing to mine safely.
					log::error!("undecodable work from the node: {e}");
					miner.set_job(None);
				},
				None => return Ok(()),
			},
			Some(f) = found.recv() => {
				if miner.current_version() != Some(f.version) {
					// Found for work the node has already replaced.
					outcomes.stale.fetch_add(1, Ordering::Relaxed);
					continue;
				}
				outcomes.in_flight.fetch_add(1, Ordering::Relaxed);
				let guard = InFlight { outcomes: outcomes.clone(), counted: false };
				tokio::spawn(submit(client.clone(), f, outcomes.clone(), miner.jobs().clone(), guard));
			},
		}
	}
}

/// One seal in flight: taken off [`Outcomes::in_flight`] when its
/// submission ends, after its outcome is counted; a task dropped before
/// that (with the runtime, after `close` gave up waiting) counts it as
/// unsent.
struct InFlight {
	outcomes: Arc<Outcomes>,
	counted: bool,
}

impl Drop for InFlight {
	fn drop(&mut self) {
		if !self.counted {
			self.outcomes.unsent.fetch_add(1, Ordering::Relaxed);
		}
		self.outcomes.in_flight.fetch_sub(1, Ordering::Release);
	}
}

async fn submit(client: Arc<WsClient>, f: Found, outcomes: Arc<Outcomes>, jobs: Arc<Jobs>, guard: InFlight) {
	let seal = mlpow_work::encode_hex(&f.winner.seal);
	let result: Result<Accepted, RpcError> = client.request(methods::SUBMIT_SEAL, rpc_params![f.version, seal]).await;
	// The guard goes when the outcome is counted, not before: whoever sees
	// nothing in flight (`Session::close`) must see the outcome.
	let mut guard = guard;
	guard.counted = true;
	match result {
		Ok(a) => {
			outcomes.accepted.fetch_add(1, Ordering::Relaxed);
			if let Some(job) = f.job {
				jobs.block_accepted(job, &a.block_hash.0);
			}
			log::info!(
				"✅ block #{} accepted: {} (nonce {}, tile {},{}{})",
				a.number,
				mlpow_work::short_hex(&a.block_hash.0),
				f.winner.id.nonce,
				f.winner.id.tile_i,
				f.winner.id.tile_j,
				f.job
					.map(|j| format!(", a ticket of job {j}: {} seal bytes with openings", f.winner.seal.len()))
					.unwrap_or_default()
			);
		}
		Err(RpcError::Call(e)) if e.code() == codes::STALE => {
			outcomes.stale.fetch_add(1, Ordering::Relaxed);
			log::debug!("seal for work #{} was stale", f.version);
		}
		Err(e) => {
			outcomes.rejected.fetch_add(1, Ordering::Relaxed);
			log::warn!("seal for work #{} rejected: {e}", f.version);
		}
	}
}
