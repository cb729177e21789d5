//! The bridge between external mining workers and `sc-consensus-pow`'s
//! block builder.
//!
//! `sc_consensus_pow::start_mining_worker` keeps one proposed block at a
//! time in a [`MiningHandle`] and bumps an opaque version whenever it
//! changes. This module turns that into numbered work items that RPC
//! clients can fetch or subscribe to, and takes seals back:
//!
//! - a poller notices version changes and publishes a [`Work`] (pre-hash,
//!   parent, difficulty, challenge) on a watch channel, numbered by our own
//!   counter so that workers can say which work a seal is for;
//! - a submission is checked against the current work (stale? well-formed?
//!   does it verify?) before anything touches the block builder, so junk
//!   costs one verification at most, run on a blocking thread with at most
//!   one check per core at a time;
//! - `MiningHandle::submit` is not `Send` (it holds a lock across an await)
//!   and re-verifies against whatever build is current: valid submissions
//!   therefore run on one dedicated thread, which first checks that the
//!   handle still holds the build the work was cut from.

use crate::algorithm::{hash32, MatmulPow};
use futures::{executor::block_on, FutureExt, StreamExt};
use mlpow_primitives::U256;
use mlpow_runtime_api::{Challenge, MlpowApi};
use sc_client_api::BlockchainEvents;
use sc_consensus_pow::MiningHandle;
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_consensus_pow::DifficultyApi;
use sp_runtime::traits::{Block as BlockT, Header as HeaderT, SaturatedConversion};
use std::{
	sync::{mpsc, Arc},
	time::Duration,
};
use tokio::sync::{oneshot, watch, Semaphore};

const LOG_TARGET: &str = "mlpow";

/// How often the poller looks at the mining handle. Version reads are one
/// atomic load; 25 ms keeps stale mining after a new block short.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// One unit of work: everything a miner needs to search for a seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Work<H> {
	/// Our work counter (increases with every new work item).
	pub version: u64,
	/// Hash of the proposed header without its seal.
	pub pre_hash: H,
	/// The block it builds on.
	pub parent_hash: H,
	/// Its block number.
	pub number: u64,
	pub difficulty: U256,
	pub challenge: Challenge,
}

/// What became of a submitted seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitOutcome<H> {
	/// Imported as block `number` with hash `hash`.
	Accepted { hash: H, number: u64 },
	/// The work it was mined for has been replaced.
	Stale,
	/// The seal's length or layout is wrong for the work's puzzle version.
	Malformed(String),
	/// The seal does not verify against the work it names.
	Invalid(String),
	/// The block could not be imported (see the node's log).
	ImportFailed(String),
}

type Handle<B, C, L> = MiningHandle<B, MatmulPow<B, C>, L>;

struct Submission<B: BlockT> {
	seal: Vec<u8>,
	pre_hash: B::Hash,
	number: u64,
	reply: oneshot::Sender<SubmitOutcome<B::Hash>>,
}

/// Serves work to, and takes seals from, any number of RPC clients.
pub struct MiningBridge<B: BlockT> {
	work: watch::Receiver<Option<Arc<Work<B::Hash>>>>,
	submissions: mpsc::SyncSender<Submission<B>>,
	/// Seal checks of RPC submissions run on blocking threads, at most one
	/// per core at a time.
	verifiers: Arc<Semaphore>,
}

impl<B: BlockT> Clone for MiningBridge<B> {
	fn clone(&self) -> Self {
		Self { work: self.work.clone(), submissions: self.submissions.clone(), verifiers: self.verifiers.clone() }
	}
}

impl<B: BlockT> MiningBridge<B> {
	/// Starts the bridge for `handle`. Returns it and the poller future,
	/// which the caller spawns (it ends when every bridge clone is dropped).
	pub fn new<C, L>(
		client: Arc<C>,
		algorithm: MatmulPow<B, C>,
		handle: Handle<B, C, L>,
	) -> (Self, impl std::future::Future<Output = ()> + Send + 'static)
	where
		C: ProvideRuntimeApi<B> + HeaderBackend<B> + BlockchainEvents<B> + Send + Sync + 'static,
		C::Api: DifficultyApi<B, U256> + MlpowApi<B>,
		L: sc_consensus::JustificationSyncLink<B> + 'static,
	{
		let (work_tx, work_rx) = watch::channel(None);
		// A short queue: submissions that survive the checks are rare (one
		// per block), so a full queue means something is wrong upstream.
		let (sub_tx, sub_rx) = mpsc::sync_channel::<Submission<B>>(16);

		let submit_handle = handle.clone();
		let submit_client = client.clone();
		std::thread::Builder::new()
			.name("mlpow-submit".into())
			.spawn(move || submission_thread(submit_client, submit_handle, sub_rx))
			.expect("spawning the seal submission thread");

		let poller = async move {
			// The handle's version type is not exported; inference names it.
			let mut last = None;
			let mut counter: u64 = 0;
			let mut interval = tokio::time::interval(POLL_INTERVAL);
			interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
			loop {
				interval.tick().await;
				if work_tx.is_closed() {
					break;
				}
				let version = handle.version();
				if last == Some(version) {
					continue;
				}
				last = Some(version);
				let work = handle.metadata().and_then(|meta| {
					let rules = algorithm
						.rules(meta.best_hash)
						.map_err(|e| log::warn!(target: LOG_TARGET, "no work: {e}"))
						.ok()?;
					let parent_number = client.number(meta.best_hash).ok().flatten()?;
					counter += 1;
					Some(Arc::new(Work {
						version: counter,
						pre_hash: meta.pre_hash,
						parent_hash: meta.best_hash,
						number: parent_number.saturated_into::<u64>() + 1,
						// Tickets, what a miner's target is made of (the
						// handle's `meta.difficulty` is work, in MACs).
						difficulty: rules.difficulty,
						challenge: rules.challenge,
					}))
				});
				if let Some(w) = &work {
					log::debug!(target: LOG_TARGET, "new work #{} for block {} on {:?}", w.version, w.number, w.parent_hash);
				}
				work_tx.send_replace(work);
			}
		};
		let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
		(Self { work: work_rx, submissions: sub_tx, verifiers: Arc::new(Semaphore::new(cores)) }, poller)
	}

	/// The current work, if the node has a block to mine.
	pub fn current(&self) -> Option<Arc<Work<B::Hash>>> {
		self.work.borrow().clone()
	}

	/// A receiver that sees every new work item (and `None` while there is none).
	pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Work<B::Hash>>>> {
		self.work.clone()
	}

	/// Checks a seal for work `version` and, if it wins, imports the block.
	pub async fn submit(&self, version: u64, seal: Vec<u8>) -> SubmitOutcome<B::Hash> {
		let Some(work) = self.current() else { return SubmitOutcome::Stale };
		if work.version != version {
			return SubmitOutcome::Stale;
		}
		let Some(pre_hash) = hash32(&work.pre_hash) else {
			return SubmitOutcome::ImportFailed("block hashes must be 32 bytes".into());
		};
		// One check costs up to 2^24 multiply-accumulates (milliseconds) at
		// the largest parameters: run it off the RPC server's async threads,
		// at most one per core, so a flood of bad seals waits its turn
		// instead of starving the node.
		let Ok(_permit) = self.verifiers.acquire().await else {
			return SubmitOutcome::ImportFailed("the node is shutting down".into());
		};
		let (challenge, difficulty, bytes) = (work.challenge, work.difficulty, seal.clone());
		let verdict = tokio::task::spawn_blocking(move || {
			if crate::test_switches::accepts_any_seal() {
				let seal = mlpow_primitives::Seal { nonce: 0, tile_i: 0, tile_j: 0 };
				return Ok(mlpow_primitives::Verified { seal, digest: [0; 32] });
			}
			mlpow_primitives::verify(&challenge.params, &challenge.weights_seed, &pre_hash, difficulty, &bytes)
		})
		.await;
		let Ok(verdict) = verdict else {
			return SubmitOutcome::ImportFailed("the seal check did not complete".into());
		};
		if let Err(e) = verdict {
			return match e {
				mlpow_primitives::VerifyError::MalformedSeal => SubmitOutcome::Malformed(e.to_string()),
				_ => SubmitOutcome::Invalid(e.to_string()),
			};
		}
		let (reply, answer) = oneshot::channel();
		let submission = Submission { seal, pre_hash: work.pre_hash, number: work.number, reply };
		if self.submissions.try_send(submission).is_err() {
			return SubmitOutcome::ImportFailed("the submission queue is full".into());
		}
		answer.await.unwrap_or_else(|_| SubmitOutcome::ImportFailed("the submission thread stopped".into()))
	}
}

fn submission_thread<B, C, L>(client: Arc<C>, handle: Handle<B, C, L>, submissions: mpsc::Receiver<Submission<B>>)
where
	B: BlockT,
	C: ProvideRuntimeApi<B> + BlockchainEvents<B>,
	C::Api: DifficultyApi<B, U256> + MlpowApi<B>,
	L: sc_consensus::JustificationSyncLink<B>,
{
	// The build a work item was cut from is identified by its pre-hash
	// (which commits to the parent, the timestamp and every extrinsic).
	let current = |pre_hash: &B::Hash| handle.metadata().is_some_and(|m| &m.pre_hash == pre_hash);
	for sub in submissions {
		let outcome = if !current(&sub.pre_hash) {
			SubmitOutcome::Stale
		} else {
			// Subscribe before importing so our block's notification is queued
			// by the time `submit` returns.
			let mut imported = client.import_notification_stream();
			if block_on(handle.submit(sub.seal)) {
				let mut found = None;
				while let Some(Some(n)) = imported.next().now_or_never() {
					let mut header = n.header.clone();
					header.digest_mut().pop();
					if header.hash() == sub.pre_hash {
						found = Some(n.hash);
						break;
					}
				}
				match found {
					Some(hash) => SubmitOutcome::Accepted { hash, number: sub.number },
					None => SubmitOutcome::ImportFailed("imported, but no import notification was seen".into()),
				}
			} else if handle.metadata().is_some_and(|m| m.pre_hash != sub.pre_hash) {
				// The build changed between our check and the handle's own.
				SubmitOutcome::Stale
			} else {
				// The handle takes the build before it imports, so a block
				// whose import failed leaves no build behind: that is a
				// failure, not stale work (a pool counts the two apart).
				SubmitOutcome::ImportFailed("the block import refused the block (see the node log)".into())
			}
		};
		let _ = sub.reply.send(outcome);
	}
}
