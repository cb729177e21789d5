//! Rolling finality: the maximum reorg depth, and when a node may apply it.
//!
//! Proof of work alone never finalizes, and `sc-consensus-pow` would reorg
//! to any heavier chain however deep the fork. A rolling finality limit bounds
//! what a majority attacker, or a long network split, can rewrite: once a
//! block is `depth` deep on a node, that node keeps it. The price is that a
//! node that spent more than `depth` blocks on the losing side of a split
//! stays there until an operator resyncs it (`purge-chain`).
//!
//! Finality is a promise a node should only make about a chain it has reason
//! to believe is the heaviest. Sync follows block numbers, not work: a fresh
//! node may first download a long chain that is lighter than the honest one
//! (an attacker's, cheap to make at low difficulty) and, finalizing it as it
//! goes, would then refuse the heavier honest chain forever. So a node
//! finalizes only when both hold:
//! - it is not catching up ([`crate::sync::VerifiedSync`]: old blocks from
//!   the network keep becoming its best block while peers claim more; what
//!   peers merely claim does not hold finality), and
//! - its best chain carries at least the minimum chain work: the larger of
//!   the chain spec's `minimumChainWork` (in MACs: the sum of each block's
//!   difficulty times `t*t*k`, which `sc-consensus-pow` stores as the total
//!   difficulty; as Bitcoin's `nMinimumChainWork`), which a spec past its
//!   launch sets to the total work of a recent honest block
//!   (`mlpow_chainWork`), and `depth` blocks at the genesis difficulty
//!   ([`FinalityRules::with_launch_floor`]), which holds on a new chain too;
//! - and no fork a peer claims is still being fetched to be weighed
//!   ([`crate::forks`]): sync leaves alone chains shorter than the node's,
//!   and a shorter chain may be the heavier one. A fork that has shown no
//!   work yet holds all of finality, briefly and within a budget; one that
//!   keeps gaining on the best chain holds it at its fork point; and no
//!   hold keeps finality more than [`crate::forks::MAX_HOLD_BLOCKS`] below
//!   its usual target;
//! - and the node has been in sync for at least [`FinalityRules::settle`]
//!   (since it started, and since it last caught up): a chain it has just
//!   downloaded, perhaps from an attacker who reached it first, waits until
//!   its other peers' chains have been fetched and weighed (longer while
//!   one of them keeps gaining on it: [`SETTLE_EXTENDS_TO`]).

use crate::forks::{finality_target, HoldClock, PendingForks, MAX_HOLD_BLOCKS};
use futures::StreamExt;
use mlpow_primitives::U256;
use sc_client_api::{AuxStore, Backend, BlockchainEvents, Finalizer};
use sc_consensus_pow::PowAux;
use sp_blockchain::HeaderBackend;
use sp_consensus::SyncOracle;
use sp_runtime::{
	traits::{Block as BlockT, NumberFor},
	SaturatedConversion,
};
use std::{
	sync::Arc,
	time::{Duration, Instant},
};

/// The default maximum reorg depth, in blocks.
///
/// Why 32: clients that follow finality sign transactions against the
/// finalized block. `polkadot-api`'s default is a mortal era of 64 blocks
/// from that block, so a transaction is only valid while the best block is
/// less than 64 blocks past the finalized one; with a depth of 32 it has 32
/// blocks (96 s on the dev chain, 3.2 min on the local testnet) to be
/// included, and clients that pin every unfinalized block pin 32, not 100.
/// A reorg deeper than 32 blocks means either a majority attacker (which no
/// depth stops, only bounds) or a network split of minutes, after which the
/// losing side must resync; see SPEC.md, "Fork choice and reorg depth".
pub const DEFAULT_MAX_REORG_DEPTH: u32 = 32;

const LOG_TARGET: &str = "mlpow";

/// When a node may finalize: how deep, and on how much work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinalityRules {
	/// Blocks this far below the best block are finalized.
	pub depth: u32,
	/// Nothing is finalized on a best chain whose total work (MACs) is lower.
	pub minimum_chain_work: U256,
	/// Nothing is finalized until the node has been in sync this long
	/// ([`DEFAULT_FINALITY_SETTLE`] says why).
	pub settle: Duration,
}

impl FinalityRules {
	/// Raises the minimum chain work to at least `depth` blocks of
	/// `genesis_work` (the work a child of genesis needs), so that no chain
	/// is finalized before it carries the work of `depth` blocks at the
	/// chain's launch difficulty, whatever the spec's `minimumChainWork`
	/// (absent on a new chain). It only ever delays a chain's *first*
	/// finalization: total work only grows. A light chain (one whose
	/// difficulty an attacker drove to the floor, which costs about five
	/// blocks' work at the launch difficulty, SPEC.md "Retarget") must still
	/// carry that much work before any node finalizes it.
	pub fn with_launch_floor(self, genesis_work: U256) -> Self {
		let floor = genesis_work.saturating_mul(U256::from(self.depth));
		Self { minimum_chain_work: self.minimum_chain_work.max(floor), ..self }
	}
}

/// Why a node did not finalize, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
	Syncing,
	LightChain,
	WeighingForks,
	Settling,
}

/// The default of [`FinalityRules::settle`]: a node finalizes nothing until
/// it has been in sync this long, after it starts and after each time it
/// caught up with old blocks. A live node loses nothing by it after its
/// first minute (blocks `depth` deep are final at once from then on); a
/// node that just downloaded a chain, perhaps from an attacker who reached
/// it first, hears from its other peers and weighs their chains before it
/// makes any of it final.
pub const DEFAULT_FINALITY_SETTLE: Duration = Duration::from_secs(60);

/// The settle time goes on, up to this many times
/// [`FinalityRules::settle`], while a fork a peer serves keeps gaining on
/// the best chain ([`crate::forks::PendingForks::progressed`]): a fresh
/// node that downloaded an attacker's light chain first finalizes none of
/// it while the honest heavier chain is still being imported, one batch at
/// a time, however long that chain is (up to the cap). Only work extends
/// it, and only on a node far behind (its finalized block more than
/// [`MAX_HOLD_BLOCKS`] below the target: fresh, or just caught up); a node
/// restarted near its tip keeps the usual bound.
pub const SETTLE_EXTENDS_TO: u32 = 5;

/// Whether a node in sync for `in_sync_for` is still settling.
fn settling(in_sync_for: Duration, settle: Duration, fork_progressing: bool) -> bool {
	in_sync_for < settle || (fork_progressing && in_sync_for < settle.saturating_mul(SETTLE_EXTENDS_TO))
}

/// How often finality looks again without a new block (a fetched fork may
/// have been weighed since).
const RECHECK: Duration = Duration::from_secs(1);

/// Follows the best block and finalizes the block `rules.depth` below it on
/// the best chain, while the node is in sync, its chain carries the minimum
/// work, and no fork a peer claims is still being fetched and weighed
/// (`forks`, bounded as [`crate::forks`] says). Runs until the import
/// stream ends (node shutdown).
pub async fn finalize_below_depth<B, BE, C, SO, P>(
	client: Arc<C>,
	sync: SO,
	rules: FinalityRules,
	forks: Arc<PendingForks<P, B::Hash>>,
) where
	B: BlockT,
	BE: Backend<B>,
	C: BlockchainEvents<B> + HeaderBackend<B> + Finalizer<B, BE> + AuxStore,
	SO: SyncOracle,
	P: std::hash::Hash + Eq + Clone,
{
	// Every import, those of a major sync included (the client sends
	// `import_notification_stream` none of those), so finality sees a
	// catch-up as it happens.
	let mut imports = client.every_import_notification_stream();
	let mut recheck = tokio::time::interval(RECHECK);
	recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
	let mut held: Option<Held> = None;
	let mut clock = HoldClock::default();
	// Since when the node has been in sync (not catching up), if it is.
	let mut in_sync_since: Option<Instant> = None;
	loop {
		tokio::select! {
			imported = imports.next() => if imported.is_none() { return },
			_ = recheck.tick() => {}
		}
		let catching_up = sync.is_major_syncing();
		let in_sync_for = if catching_up {
			in_sync_since = None;
			Duration::ZERO
		} else {
			in_sync_since.get_or_insert_with(Instant::now).elapsed()
		};
		let info = client.info();
		let (best_hash, best) = (info.best_hash, (info.best_number).saturated_into::<u64>());
		let Some(deepest) = best.checked_sub(rules.depth.into()) else { continue };
		let mut target: NumberFor<B> = deepest.saturated_into();
		if target <= info.finalized_number {
			continue;
		}
		let hold = if catching_up {
			Some(Held::Syncing)
		} else if settling(
			in_sync_for,
			rules.settle,
			// Only on a node far behind (fresh, or just caught up: its
			// finalized block more than MAX_HOLD_BLOCKS below the target),
			// and only for a fork whose hold binds (one that leaves the best
			// chain below the target). A node finalizing as usual keeps its
			// bound: a review found that a block every 30 s otherwise held a
			// restarted node's finality for 5 minutes.
			info.finalized_number.saturated_into::<u64>().saturating_add(MAX_HOLD_BLOCKS) < deepest
				&& forks.holding(Instant::now()).progressing_above.is_some_and(|point| point < deepest),
		) {
			Some(Held::Settling)
		} else {
			match PowAux::<U256>::read::<_, B>(client.as_ref(), &best_hash) {
				Ok(aux) if aux.total_difficulty < rules.minimum_chain_work => Some(Held::LightChain),
				Ok(_) => {
					// Forks being weighed keep finality back, within bounds.
					let holding = forks.holding(Instant::now());
					let hold = clock.holds(holding, Instant::now());
					let finalized = info.finalized_number.saturated_into::<u64>();
					target = finality_target(hold, deepest, finalized).saturated_into();
					(target <= info.finalized_number).then_some(Held::WeighingForks)
				}
				Err(e) => {
					log::warn!(target: LOG_TARGET, "finality: no total work for {best_hash:?}: {e}");
					continue;
				}
			}
		};
		if hold != held {
			match hold {
				Some(Held::Syncing) => {
					log::info!(target: LOG_TARGET, "⛓  Not finalizing while catching up with old blocks")
				}
				Some(Held::LightChain) => log::info!(
					target: LOG_TARGET,
					"⛓  Not finalizing: the best chain's work is below the minimum chain work ({})",
					rules.minimum_chain_work
				),
				Some(Held::WeighingForks) => log::info!(
					target: LOG_TARGET,
					"⛓  Not finalizing while a fork a peer claims is fetched and weighed (or, once it shows work, above its \
					 fork point)"
				),
				Some(Held::Settling) => log::info!(
					target: LOG_TARGET,
					"⛓  Not finalizing until this node has been in sync for {:?} (it just started or caught up; up to \
					 {SETTLE_EXTENDS_TO} times that while a fork a peer serves keeps gaining on the best chain)",
					rules.settle
				),
				None if held.is_some() => log::info!(target: LOG_TARGET, "⛓  Finalizing {} blocks deep", rules.depth),
				None => {}
			}
			held = hold;
		}
		if hold.is_some() {
			continue;
		}
		// The best chain's block at that height (read after the best block,
		// so on the chain the node follows now).
		let hash = match client.hash(target) {
			Ok(Some(hash)) => hash,
			Ok(None) => continue, // reorged away under us: the next look retries
			Err(e) => {
				log::warn!(target: LOG_TARGET, "finality: no hash at #{target}: {e}");
				continue;
			}
		};
		match client.finalize_block(hash, None, true) {
			Ok(()) => {
				log::debug!(target: LOG_TARGET, "finalized #{target} ({hash:?}), {} below the best block", rules.depth)
			}
			Err(e) => log::warn!(target: LOG_TARGET, "finality: could not finalize #{target} ({hash:?}): {e}"),
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	/// A fork that keeps progressing extends the settle time, up to its cap;
	/// without one, the settle time is what the rules say.
	#[test]
	fn progress_extends_the_settle_time_up_to_its_cap() {
		let (settle, s) = (DEFAULT_FINALITY_SETTLE, Duration::from_secs(1));
		assert!(settling(settle - s, settle, false));
		assert!(!settling(settle, settle, false));
		assert!(settling(settle, settle, true), "a fork gaining on the best chain is being imported");
		assert!(settling(settle * SETTLE_EXTENDS_TO - s, settle, true));
		assert!(!settling(settle * SETTLE_EXTENDS_TO, settle, true), "capped");
		assert!(!settling(Duration::ZERO, Duration::ZERO, true), "--finality-settle-secs 0: no settling at all");
	}

	/// The launch floor raises a missing or low minimum to `depth` blocks of
	/// the genesis work, and leaves a higher one alone.
	#[test]
	fn the_launch_floor_is_depth_blocks_of_genesis_work() {
		let genesis_work = U256::from(200_000u64 * 16 * 16 * 64);
		let none = FinalityRules { depth: 32, minimum_chain_work: U256::zero(), settle: DEFAULT_FINALITY_SETTLE };
		assert_eq!(none.with_launch_floor(genesis_work).minimum_chain_work, genesis_work * U256::from(32));
		let high = FinalityRules {
			depth: 32,
			minimum_chain_work: genesis_work * U256::from(1_000),
			settle: DEFAULT_FINALITY_SETTLE,
		};
		assert_eq!(high.with_launch_floor(genesis_work), high);
		// No overflow at the extremes.
		assert_eq!(none.with_launch_floor(U256::MAX).minimum_chain_work, U256::MAX);
	}
}
