//! When a node is really behind: the sync oracle that mining and finality ask.
//!
//! `sc-network-sync` calls a node "major syncing" when the median of the best
//! block *numbers* its peers claim is more than 5 above its own. A claim costs
//! nothing: one peer among two that advertises a long fork (junk-sealed, or
//! forking below the node's finalized block so that it can never be
//! imported) held an honest miner in "major sync" for good, and the PoW
//! block builder proposes nothing while the oracle says so ("Skipping
//! proposal due to sync"), nor did finality move. Work played no part.
//!
//! [`VerifiedSync`] answers from what this node has *verified*: it is
//! syncing only while all three hold:
//! - `sc-network-sync` says so (peers claim a chain well ahead);
//! - blocks from the network keep becoming this node's best block (one did
//!   within the last [`PROGRESS_WINDOW`]); only a block whose seal verified
//!   and whose chain carries more work than the best one becomes best, so
//!   a peer moves this only with work;
//! - and that best block is old (stamped more than [`STALE_AFTER_MS`]
//!   before this node's clock): the node is catching up with history, not
//!   following a live chain.
//!
//! So claims alone never stop mining or finality; a node that really is
//! behind (importing an old heavier chain) neither builds on a stale tip
//! nor finalizes while it catches up; and a stalled sync gives mining back
//! within [`PROGRESS_WINDOW`].

use futures::StreamExt;
use parking_lot::Mutex;
use sc_client_api::BlockchainEvents;
use sp_consensus::{BlockOrigin, SyncOracle};
use sp_runtime::traits::Block as BlockT;
use std::{
	sync::{
		atomic::{AtomicBool, Ordering},
		Arc,
	},
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// How recently a network block must have become the best block for the
/// node to count as syncing.
pub const PROGRESS_WINDOW: Duration = Duration::from_secs(30);

/// How old (by its timestamp) the best block must be for the node to count
/// as behind.
pub const STALE_AFTER_MS: u64 = 60_000;

const LOG_TARGET: &str = "mlpow";

/// The last block from the network that became this node's best block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkBest {
	/// When it became best, on this node's monotonic clock.
	pub at: Instant,
	/// Its timestamp (ms since the Unix epoch), when it has one.
	pub stamped_ms: Option<u64>,
}

/// The rule, on its own: is the node behind? `peers_claim` is
/// `sc-network-sync`'s answer, `network_best` the last network block that
/// became best (`None` when the best block is this node's own, or none
/// came), `now_ms` this node's clock.
pub fn is_behind(peers_claim: bool, network_best: Option<NetworkBest>, now: Instant, now_ms: u64) -> bool {
	let Some(best) = network_best else { return false };
	let progressing = now.saturating_duration_since(best.at) < PROGRESS_WINDOW;
	// A block with no timestamp (genesis) is as old as can be.
	let stale = best.stamped_ms.is_none_or(|t| now_ms.saturating_sub(t) > STALE_AFTER_MS);
	peers_claim && progressing && stale
}

/// A `SyncOracle` that needs verified progress as well as peers' claims
/// (see the module docs). Cheap to clone; all clones share one state.
pub struct VerifiedSync<SO> {
	inner: SO,
	network_best: Arc<Mutex<Option<NetworkBest>>>,
	/// Whether the last answer ignored the peers' claim, for the log.
	ignoring_claims: Arc<AtomicBool>,
}

impl<SO: Clone> Clone for VerifiedSync<SO> {
	fn clone(&self) -> Self {
		Self {
			inner: self.inner.clone(),
			network_best: self.network_best.clone(),
			ignoring_claims: self.ignoring_claims.clone(),
		}
	}
}

impl<SO: SyncOracle> VerifiedSync<SO> {
	/// The oracle, and the task that must run for it to see imports: it
	/// follows `client`'s imports and reads each new best block's timestamp
	/// with `stamp` (ms since the Unix epoch; `None` for none).
	pub fn new<B, C>(
		inner: SO,
		client: Arc<C>,
		stamp: impl Fn(B::Hash) -> Option<u64> + Send + 'static,
	) -> (Self, impl std::future::Future<Output = ()> + Send + 'static)
	where
		B: BlockT,
		C: BlockchainEvents<B> + Send + Sync + 'static,
	{
		let network_best = Arc::new(Mutex::new(None));
		let oracle =
			Self { inner, network_best: network_best.clone(), ignoring_claims: Arc::new(AtomicBool::new(false)) };
		let task = async move {
			// Every import: the client notifies `import_notification_stream`
			// only of blocks imported outside a major sync (or reorgs), so
			// that stream never showed a real catch-up, and a node catching
			// up counted as in sync (found in the tenth review).
			let mut imports = client.every_import_notification_stream();
			while let Some(imported) = imports.next().await {
				if !imported.is_new_best {
					continue;
				}
				let from_network =
					!matches!(imported.origin, BlockOrigin::Own | BlockOrigin::Genesis | BlockOrigin::File);
				let best = from_network.then(|| NetworkBest { at: Instant::now(), stamped_ms: stamp(imported.hash) });
				*network_best.lock() = best;
			}
		};
		(oracle, task)
	}
}

fn unix_ms() -> u64 {
	SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl<SO: SyncOracle> SyncOracle for VerifiedSync<SO> {
	fn is_major_syncing(&self) -> bool {
		let peers_claim = self.inner.is_major_syncing();
		let behind = is_behind(peers_claim, *self.network_best.lock(), Instant::now(), unix_ms());
		let ignoring = peers_claim && !behind;
		if self.ignoring_claims.swap(ignoring, Ordering::Relaxed) != ignoring {
			if ignoring {
				log::info!(
					target: LOG_TARGET,
					"⛓  Peers claim a chain well ahead, but no block from them has extended this node's best chain \
					 with old blocks: mining and finality go on"
				);
			} else {
				log::info!(target: LOG_TARGET, "⛓  Peers' claims and this node's imports agree again");
			}
		}
		behind
	}

	fn is_offline(&self) -> bool {
		self.inner.is_offline()
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	const NOW_MS: u64 = 1_800_000_000_000;

	fn best(ago: Duration, stamp_age_ms: Option<u64>, now: Instant) -> Option<NetworkBest> {
		Some(NetworkBest { at: now - ago, stamped_ms: stamp_age_ms.map(|a| NOW_MS - a) })
	}

	/// Peers claiming numbers, with nothing of theirs ever becoming best
	/// (junk, forks below finality, lighter chains): never behind.
	#[test]
	fn claims_alone_are_not_syncing() {
		let now = Instant::now();
		assert!(!is_behind(true, None, now, NOW_MS));
	}

	/// Honest blocks from the network become best while a Sybil claims more:
	/// they are fresh, so the node is following a live chain.
	#[test]
	fn a_live_chain_with_a_liar_beside_it_is_not_syncing() {
		let now = Instant::now();
		assert!(!is_behind(true, best(Duration::from_secs(1), Some(3_000), now), now, NOW_MS));
	}

	/// Old blocks keep becoming best and peers claim more: catching up.
	#[test]
	fn importing_history_is_syncing() {
		let now = Instant::now();
		assert!(is_behind(true, best(Duration::from_secs(1), Some(3_600_000), now), now, NOW_MS));
		// Genesis' child with no timestamp read counts as old.
		assert!(is_behind(true, best(Duration::from_millis(10), None, now), now, NOW_MS));
	}

	/// A sync that stopped making progress gives mining back.
	#[test]
	fn a_stalled_sync_is_not_syncing() {
		let now = Instant::now();
		let stalled = best(PROGRESS_WINDOW + Duration::from_secs(1), Some(3_600_000), now);
		assert!(!is_behind(true, stalled, now, NOW_MS));
	}

	/// Without the peers' claim, old imports alone are not a sync either
	/// (a node that resumes a paused chain).
	#[test]
	fn no_claim_no_sync() {
		let now = Instant::now();
		assert!(!is_behind(false, best(Duration::from_secs(1), Some(3_600_000), now), now, NOW_MS));
	}
}
