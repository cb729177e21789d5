//! The pool's node: work comes from its mining RPC (`mlpow_subscribeWork`)
//! and becomes jobs; shares that are blocks go back (`mlpow_submitSeal`).
//! The node must author its blocks as the pool's account (`--author`), so
//! that the rewards of the blocks the pool's miners find pay the pool.

use crate::{
	jobs::{Job, Jobs},
	ledger::{BlockState, Ledger},
	stats::Stats,
};
use jsonrpsee::{
	core::client::{ClientT, Subscription, SubscriptionClientT},
	rpc_params,
	ws_client::{WsClient, WsClientBuilder},
};
use mlpow_primitives::U256;
use mlpow_work::{methods, Accepted, WorkItem};
use serde_json::Value;
use std::{
	sync::{atomic::Ordering, Arc},
	time::Duration,
};
use tokio::sync::{mpsc, watch};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often the pool looks for its blocks becoming final.
const SETTLE_EVERY: Duration = Duration::from_secs(3);

/// What the pool needs to reach its node and pay its miners.
pub struct Accounts {
	pub ledger: Arc<Ledger>,
	/// The pool's fee, parts per million of each reward.
	pub fee_ppm: u32,
	/// Pays what is owed on chain (`--payout-key`); without it the ledger
	/// only counts.
	pub payer: Option<crate::payout::Payer>,
}

/// A share that is also a block, for the node.
#[derive(Debug)]
pub struct Candidate {
	/// The work version its job was cut from.
	pub version: u64,
	/// The block's difficulty: its reward goes to the last two blocks' worth
	/// of shares (PPLNS, `N = 2 * difficulty` of share weight).
	pub difficulty: U256,
	/// Shares recorded up to and including the one that found it: its
	/// window is the last `N` of weight among these.
	pub shares_before: u64,
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
	accounts: Arc<Accounts>,
) {
	let mut backoff = FIRST_BACKOFF;
	loop {
		match session(&url, &jobs, &current, &mut candidates, &stats, &accounts).await {
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
	accounts: &Arc<Accounts>,
) -> anyhow::Result<()> {
	let client = Arc::new(WsClientBuilder::default().build(url).await?);
	let mut work: Subscription<WorkItem> =
		client.subscribe(methods::SUBSCRIBE_WORK, rpc_params![], methods::UNSUBSCRIBE_WORK).await?;
	log::info!("connected to node {url}");
	let mut settle_tick = tokio::time::interval(SETTLE_EVERY);
	loop {
		tokio::select! {
			_ = settle_tick.tick() => {
				if let Err(e) = settle(&client, accounts).await {
					log::warn!("settling the pool's blocks: {e:#}");
				}
				if let Some(payer) = &accounts.payer {
					if let Err(e) = crate::payout::round(&client, &accounts.ledger, payer).await {
						log::warn!("paying out: {e:#}");
					}
				}
			}
			item = work.next() => match item {
				Some(Ok(item)) => {
					let job = jobs.add(item);
					log::info!(
						"job {}: block #{} difficulty {}{}",
						job.id, job.work.number, job.work.difficulty.0, if job.clean { " (new parent)" } else { "" }
					);
					let (clean, parent) = (job.clean, job.work.parent_hash.0);
					current.send_replace(Some(job));
					if clean {
						// Shares of older parents are stale: their keys go,
						// one parent at a time (awaited, so that an older
						// parent's pruning never runs after a newer one's).
						let ledger = accounts.ledger.clone();
						let pruned = tokio::task::spawn_blocking(move || ledger.forget_seen_except(&parent)).await;
						if let Err(e) = pruned.map_err(anyhow::Error::from).and_then(|r| r) {
							log::warn!("forgetting the shares seen on older blocks: {e:#}");
						}
					}
				}
				Some(Err(e)) => anyhow::bail!("undecodable work from the node: {e}"),
				None => return Ok(()),
			},
			Some(candidate) = candidates.recv() => {
				tokio::spawn(submit(client.clone(), candidate, stats.clone(), accounts.clone()));
			}
		}
	}
}

async fn submit(client: Arc<WsClient>, c: Candidate, stats: Arc<Stats>, accounts: Arc<Accounts>) {
	let seal = mlpow_work::encode_hex(&c.seal);
	let answer: Result<Accepted, _> = client.request(methods::SUBMIT_SEAL, rpc_params![c.version, seal]).await;
	match answer {
		Ok(a) => {
			stats.blocks_accepted.fetch_add(1, Ordering::Relaxed);
			log::info!("✅ block #{} ({}) found by {}", a.number, mlpow_work::short_hex(&a.block_hash.0), c.worker);
			// The shares that earn it, on record before it can be final.
			let (ledger, window) = (accounts.ledger.clone(), c.difficulty.saturating_mul(U256::from(2)));
			let window = window.try_into().unwrap_or(u128::MAX);
			let number = u32::try_from(a.number).unwrap_or(u32::MAX);
			let upto = c.shares_before;
			let found =
				tokio::task::spawn_blocking(move || ledger.block_found(number, a.block_hash.0, window, upto)).await;
			if let Err(e) = found.map_err(anyhow::Error::from).and_then(|r| r) {
				log::error!("could not record block #{number}: {e:#}");
			}
		}
		// A second winner on a job the node has already moved past (a race
		// among the pool's miners, not a fault): stale, not rejected, so
		// that an alert on rejected blocks means something.
		Err(jsonrpsee::core::ClientError::Call(e)) if e.code() == mlpow_work::codes::STALE => {
			stats.blocks_stale.fetch_add(1, Ordering::Relaxed);
			log::info!("block candidate from {} came after the node moved on: {}", c.worker, e.message());
		}
		Err(e) => {
			stats.blocks_rejected.fetch_add(1, Ordering::Relaxed);
			log::warn!("block candidate from {} refused by the node: {e}", c.worker);
		}
	}
}

/// Settles the pool's pending blocks whose height is final: credited if
/// the final block there is the pool's, orphaned if not.
async fn settle(client: &WsClient, accounts: &Accounts) -> anyhow::Result<()> {
	let ledger = accounts.ledger.clone();
	let pending: Vec<_> = tokio::task::spawn_blocking(move || ledger.blocks())
		.await??
		.into_iter()
		.filter(|b| b.state == BlockState::Pending)
		.collect();
	if pending.is_empty() {
		return Ok(());
	}
	let finalized: String = client.request("chain_getFinalizedHead", rpc_params![]).await?;
	let header: Value = client.request("chain_getHeader", rpc_params![finalized]).await?;
	let final_number = crate::payout::header_number(&header)?;
	for block in pending.into_iter().filter(|b| b.number <= final_number) {
		// One block's failure (its state pruned, say) holds up no other.
		let number = block.number;
		if let Err(e) = settle_block(client, accounts, block).await {
			log::warn!("the pool's block #{number} is not settled yet: {e:#}");
		}
	}
	Ok(())
}

/// Settles one of the pool's blocks whose height is final.
async fn settle_block(client: &WsClient, accounts: &Accounts, block: crate::ledger::Block) -> anyhow::Result<()> {
	let reward_key = [twox_128(b"MlPow"), twox_128(b"BlockReward")].concat();
	let canonical: Option<String> = client.request("chain_getBlockHash", rpc_params![block.number]).await?;
	let ours = mlpow_work::encode_hex(&block.hash);
	let final_here = canonical.as_deref() == Some(ours.as_str());
	let reward = if final_here {
		// The reward the block minted: the pallet's value in its state
		// (which the node must still hold: see the README on pruning).
		let stored: Option<String> =
			client.request("state_getStorage", rpc_params![mlpow_work::encode_hex(&reward_key), ours]).await?;
		let bytes = mlpow_work::decode_hex(stored.as_deref().unwrap_or("0x")).map_err(anyhow::Error::msg)?;
		u128::from_le_bytes(bytes.try_into().map_err(|_| anyhow::anyhow!("a block reward that is not a u128"))?)
	} else {
		0
	};
	let (ledger, fee_ppm) = (accounts.ledger.clone(), accounts.fee_ppm);
	let number = block.number;
	tokio::task::spawn_blocking(move || ledger.settle(&block, final_here, reward, fee_ppm)).await??;
	if final_here {
		log::info!("💰 block #{number} is final: its reward of {reward} is shared out");
	} else {
		log::info!("block #{number} was reorganised out: it pays nothing");
	}
	Ok(())
}

fn twox_128(data: &[u8]) -> [u8; 16] {
	sp_crypto_hashing::twox_128(data)
}
