//! The pool's node: work comes from its mining RPC (`mlpow_subscribeWork`)
//! and becomes jobs; shares that are blocks go back (`mlpow_submitSeal`).
//! The node must author its blocks as the pool's account (`--author`), so
//! that the rewards of the blocks the pool's miners find pay the pool.

use crate::{
	jobs::{Job, Jobs},
	stats::Stats,
};
use jsonrpsee::{
	core::client::{ClientT, Subscription, SubscriptionClientT},
	rpc_params,
	ws_client::{WsClient, WsClientBuilder},
};
use mlpow_work::{methods, Accepted, WorkItem};
use std::{
	sync::{atomic::Ordering, Arc},
	time::Duration,
};
use tokio::sync::{mpsc, watch};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A share that is also a block, for the node.
#[derive(Debug)]
pub struct Candidate {
	/// The work version its job was cut from.
	pub version: u64,
	/// The seal.
	pub seal: Vec<u8>,
	/// Who found it, for the log.
	pub worker: String,
}

/// Runs for ever: follows the node's work, publishing each item as the
/// current job on `current`, and submits `candidates`; reconnects after any
/// failure.
pub async fn run(
	url: String,
	jobs: Arc<Jobs>,
	current: watch::Sender<Option<Arc<Job>>>,
	mut candidates: mpsc::Receiver<Candidate>,
	stats: Arc<Stats>,
) {
	let mut backoff = FIRST_BACKOFF;
	loop {
		match session(&url, &jobs, &current, &mut candidates, &stats).await {
			Ok(()) => log::warn!("node {url} closed the work subscription"),
			Err(e) => log::warn!("node {url}: {e}"),
		}
		// Without the node, its work may be stale: no jobs, no shares, and
		// candidates for work it may no longer hold are dropped.
		jobs.clear();
		current.send_replace(None);
		while candidates.try_recv().is_ok() {}
		log::info!("reconnecting to the node in {:.1}s", backoff.as_secs_f64());
		tokio::time::sleep(backoff).await;
		backoff = (backoff * 2).min(MAX_BACKOFF);
	}
}

async fn session(
	url: &str,
	jobs: &Arc<Jobs>,
	current: &watch::Sender<Option<Arc<Job>>>,
	candidates: &mut mpsc::Receiver<Candidate>,
	stats: &Arc<Stats>,
) -> anyhow::Result<()> {
	let client = Arc::new(WsClientBuilder::default().build(url).await?);
	let mut work: Subscription<WorkItem> =
		client.subscribe(methods::SUBSCRIBE_WORK, rpc_params![], methods::UNSUBSCRIBE_WORK).await?;
	log::info!("connected to node {url}");
	loop {
		tokio::select! {
			item = work.next() => match item {
				Some(Ok(item)) => {
					let job = jobs.add(item);
					log::info!(
						"job {}: block #{} difficulty {}{}",
						job.id, job.work.number, job.work.difficulty.0, if job.clean { " (new parent)" } else { "" }
					);
					current.send_replace(Some(job));
				}
				Some(Err(e)) => anyhow::bail!("undecodable work from the node: {e}"),
				None => return Ok(()),
			},
			Some(candidate) = candidates.recv() => {
				tokio::spawn(submit(client.clone(), candidate, stats.clone()));
			}
		}
	}
}

async fn submit(client: Arc<WsClient>, c: Candidate, stats: Arc<Stats>) {
	let seal = mlpow_work::encode_hex(&c.seal);
	let answer: Result<Accepted, _> = client.request(methods::SUBMIT_SEAL, rpc_params![c.version, seal]).await;
	match answer {
		Ok(a) => {
			stats.blocks_accepted.fetch_add(1, Ordering::Relaxed);
			log::info!("✅ block #{} ({}) found by {}", a.number, mlpow_work::short_hex(&a.block_hash.0), c.worker);
		}
		Err(e) => {
			stats.blocks_rejected.fetch_add(1, Ordering::Relaxed);
			log::warn!("block candidate from {} refused by the node: {e}", c.worker);
		}
	}
}
