//! Forks that peers claim and this node is fetching to weigh: finality
//! waits for them.
//!
//! `sc-network-sync` downloads the chains of peers that claim a higher best
//! block *number* than this node's, and only short forks of the rest. A
//! chain that is shorter but heavier (the honest chain, beside an
//! attacker's long chain at a low difficulty) is never downloaded, so fork
//! choice, which compares work, never sees it, and finality would make the
//! light chain permanent. The node therefore fetches every chain a peer
//! claims that sync leaves alone (the node's `fork_fetch`), and finality
//! waits while such a fetch is under way: a fork this node has not weighed
//! yet may be the heavier chain.
//!
//! A claim costs nothing, and a block of a fork costs its miner less than
//! the honest network makes meanwhile, so waiting is bounded (no peer set
//! without work stops finality, and work only as long as it out-mines the
//! best chain):
//! - a fork whose fork point is not known yet, or of which nothing has
//!   been imported, holds all of finality for [`WORKLESS_HOLD`] after it was
//!   opened, and such forks, however many peers open them, for at most
//!   [`WORKLESS_BUDGET`] at a stretch and a third of the time over long
//!   runs ([`HoldClock`]);
//! - a fork *progresses* when its imported blocks bring it at least one
//!   best block's work closer to the best chain than it has been since its
//!   fork point ([`PendingForks::progressed`]): its *shortfall* (the best
//!   chain's total work minus the fork tip's) starts at the fork point's
//!   and must drop by the best block's work each time, net of what the
//!   best chain gained meanwhile. Each fork keeps its own least, so no
//!   other fork can use it up. The honest heavier chain does this with
//!   every batch until it becomes the best chain; a fork mined by less than
//!   the honest hash power does not, beyond the blocks it had in stock;
//! - a fork that progressed within [`STALL_AFTER`] holds finality at its
//!   fork point, not entirely: blocks below the fork point are final
//!   whatever the fork turns out to weigh, so finality goes on up to it.
//!   For as long as a fork keeps out-mining the best chain, finality stays
//!   below its fork point, which is what a heavier chain deserves;
//! - forks that sync imports by itself (longer chains, imported as a fork
//!   while lighter than the best chain) are measured the same way as their
//!   blocks arrive ([`PendingForks::synced`], the node's `fork_watch`), and
//!   hold the same way, never without work;
//! - the fetcher runs one fetch per peer at a time, and a peer whose fetch
//!   did not weigh its claim waits before the next; one that contradicted
//!   itself within an answer is banned;
//! - and above all, holds keep finality at most [`MAX_HOLD_BLOCKS`] below
//!   its usual target ([`finality_target`]): whatever forks, claims and
//!   blocks an attacker serves, finality is delayed by at most that many
//!   blocks, never halted. A fork within the finality window is a batch or
//!   two, which an honest peer serves in seconds; a fresh node that met an
//!   attacker first relies on its settle time (`FinalityRules::settle`) to
//!   weigh the honest chain before anything is final.
//!
//! (Three earlier versions were broken by review: one held finality while
//! a fork could still outweigh the best chain by its claimed number, a
//! bound that loosened the longer finality was held; one asked for a new
//! least shortfall shared by all forks, which forks stepped down from near
//! the best block reached again and again for a block's work each; and one
//! required a step below that shared least, which one cheap sibling of the
//! best block used up for every fork, the honest one included. A fourth,
//! with a measure per fork, still let rotating Sybils hold finality with
//! one block of work every 30 s each: hence the bound in blocks. A fifth
//! ended holds 24 best blocks after they began, a count that partial
//! finalizations restarted and that a fresh node's light chain advanced.
//! A sixth let a fork that had "gained" 24 blocks' work since its fork
//! point hold past the bound, and a lying peer set the fork point low so
//! that honest work counted as the fork's gain.)

use mlpow_primitives::U256;
use parking_lot::Mutex;
use std::{
	collections::HashMap,
	hash::Hash,
	time::{Duration, Instant},
};

/// One request of the node's fork fetcher, and the import of one block of
/// the batch it brought, must finish within this.
pub const FETCH_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A fork that progressed holds finality at its fork point for this long
/// after its last progress: longer than the longest gap between two
/// progresses of an honest fetch (the rest of one batch imports, then the
/// next request and the first block of its import, each within
/// [`FETCH_STEP_TIMEOUT`]), so one slow honest batch does not let finality
/// run past the fork before its next block. (It was 30 s, the request
/// timeout alone, and the ninth review found that a batch and its import
/// taking longer than that let the hold lapse.)
pub const STALL_AFTER: Duration = Duration::from_secs(2 * FETCH_STEP_TIMEOUT.as_secs() + 5);

/// A fork whose fetch has imported nothing yet holds all of finality for
/// this long after it was opened (within [`WORKLESS_BUDGET`]).
pub const WORKLESS_HOLD: Duration = Duration::from_secs(30);

/// Forks of which no block has been imported hold all of finality for at
/// most this long at a stretch, and a third of the time over long runs
/// ([`HoldClock`]).
pub const WORKLESS_BUDGET: Duration = Duration::from_secs(60);

/// The most time one look of [`HoldClock`] charges to the budget (finality
/// looks every second while work-less claims hold it).
const MAX_LOOK_GAP: Duration = Duration::from_secs(2);

/// Holds keep finality at most this many blocks below its usual target
/// (the best block less the reorg depth), whatever forks are pending
/// ([`finality_target`]). With the default depth of 32, a node's finalized
/// block stays within 56 of its best, inside `polkadot-api`'s 64-block
/// mortality, whatever an attacker serves.
pub const MAX_HOLD_BLOCKS: u64 = 24;

#[derive(Clone, Copy, Debug)]
struct Open {
	opened: Instant,
	/// The fork point's height, once the fetch found it.
	fork_point: Option<u64>,
	/// The least shortfall since the fork point (its own, at first).
	least_shortfall: Option<U256>,
	progressed: Option<Instant>,
	/// Its fetch is over; kept while its last progress still holds.
	ended: bool,
}

/// What the open forks say about finality right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holding {
	/// The lowest fork point of the forks that progressed within
	/// [`STALL_AFTER`]: finality stays at or below it.
	pub progressing_above: Option<u64>,
	/// Open forks opened within [`WORKLESS_HOLD`] that have not progressed.
	pub workless: usize,
}

impl Holding {
	pub fn is_empty(&self) -> bool {
		self.progressing_above.is_none() && self.workless == 0
	}
}

/// The forks being fetched, shared by the fetcher (which opens, advances and
/// ends them) and finality (which asks whether they hold it). `P` names a
/// peer, `H` a block.
pub struct PendingForks<P, H> {
	open: Mutex<HashMap<(P, H), Open>>,
	/// Forks measured as their blocks import, by their first block ([`Self::synced`]).
	synced: Mutex<HashMap<H, Measure>>,
}

/// The measure of a fork that sync imports.
#[derive(Clone, Copy, Debug)]
struct Measure {
	fork_point: u64,
	least_shortfall: U256,
	progressed: Option<Instant>,
}

/// Forks measured from sync's imports are forgotten in bulk past this many
/// (there is one per fork point above the finalized block, so a few dozen).
const MAX_SYNCED: usize = 4096;

impl<P: Hash + Eq + Clone, H: Hash + Eq + Clone> Default for PendingForks<P, H> {
	fn default() -> Self {
		Self { open: Mutex::new(HashMap::new()), synced: Mutex::new(HashMap::new()) }
	}
}

impl<P: Hash + Eq + Clone, H: Hash + Eq + Clone> PendingForks<P, H> {
	/// Opens the fork `peer` claims ends at `block`, unless its fetch is
	/// under way: `true` when the caller should fetch it now. (A fork whose
	/// fetch ended after progress goes on holding as before meanwhile.)
	pub fn begin(&self, peer: &P, block: &H, now: Instant) -> bool {
		let mut open = self.open.lock();
		let key = (peer.clone(), block.clone());
		match open.get_mut(&key) {
			Some(fork) if !fork.ended => false,
			Some(fork) => {
				// Progress made before still holds until it is stale, but
				// does not count as this fetch's.
				let progressed = fork.progressed.filter(|at| now.saturating_duration_since(*at) < STALL_AFTER);
				*fork = Open { opened: now, ended: false, progressed, ..*fork };
				true
			}
			None => {
				let fork =
					Open { opened: now, fork_point: None, least_shortfall: None, progressed: None, ended: false };
				open.insert(key, fork);
				true
			}
		}
	}

	/// The fetch found the fork point: the fork leaves this node's chain
	/// after block #`number`, which carries `shortfall` less work than the
	/// best chain.
	pub fn forked_at(&self, peer: &P, block: &H, number: u64, shortfall: U256) {
		if let Some(open) = self.open.lock().get_mut(&(peer.clone(), block.clone())) {
			// A fetch of the claim before may have found a lower one.
			open.fork_point = Some(open.fork_point.map_or(number, |point| point.min(number)));
			open.least_shortfall = Some(shortfall);
		}
	}

	/// The fork now leaves the best chain after block #`number` (the best
	/// chain moved while the fork was fetched): its hold goes there if that
	/// is lower, never higher. (Raising it was broken by review: a fork
	/// that became best for a moment raised its hold to its own tip, and a
	/// stocked block of the old chain then took the lead back, and
	/// finality past the fork point, before the next batch came.) Its
	/// measure of progress stays.
	pub fn diverges_at(&self, peer: &P, block: &H, number: u64) {
		if let Some(open) = self.open.lock().get_mut(&(peer.clone(), block.clone())) {
			open.fork_point = open.fork_point.map(|point| point.min(number));
		}
	}

	/// Blocks of the fork were imported, and its tip now carries `shortfall`
	/// less work than this node's best chain (zero when it is the best
	/// chain), whose best block needed `step`. Progress, which holds
	/// finality at the fork point, when the shortfall is at least `step`
	/// below the least this fork reached so far: `true` then.
	pub fn progressed(&self, peer: &P, block: &H, now: Instant, shortfall: U256, step: U256) -> bool {
		let mut open = self.open.lock();
		let Some(fork) = open.get_mut(&(peer.clone(), block.clone())).filter(|fork| !fork.ended) else {
			return false;
		};
		match fork.least_shortfall {
			Some(least) if shortfall.saturating_add(step) <= least => {
				fork.least_shortfall = Some(shortfall);
				fork.progressed = Some(now);
				true
			}
			_ => false,
		}
	}

	/// The fetch is over, whatever its outcome: `true` if the fork
	/// progressed during it. A fork that progressed goes on holding finality at its
	/// fork point until [`STALL_AFTER`] after its last progress, so that a
	/// fetch cut short (a timeout, a reorganisation of the peer's chain, a
	/// slow import) does not let finality run past an honest heavier fork
	/// before it is fetched again.
	pub fn end(&self, peer: &P, block: &H) -> bool {
		let mut open = self.open.lock();
		let key = (peer.clone(), block.clone());
		match open.get_mut(&key) {
			Some(fork) if fork.progressed.is_some() => {
				fork.ended = true;
				// Progress during this fetch, not one before it.
				fork.progressed.is_some_and(|at| at >= fork.opened)
			}
			Some(_) => {
				open.remove(&key);
				false
			}
			None => false,
		}
	}

	/// A block of a fork that is not the best chain came from the network
	/// (sync's import of a chain longer than this node's, a fork it fetched
	/// whole, an announced sibling, or the fetcher's batch). The fork is
	/// the branch whose first block is `branch`; it leaves the best chain
	/// after block #`number`. The block's parent carries `parent_shortfall`
	/// less work than the best chain, the block `tip_shortfall`; the best
	/// block needed `step`. Progress (`true`), which holds finality at the
	/// fork point for [`STALL_AFTER`], is measured as for a fetched fork
	/// ([`Self::progressed`]), per branch, from the shortfall of the parent
	/// of the first of its blocks seen: work the branch carried before it
	/// was seen is no gain (a measure from the fork point's shortfall gave
	/// a branch reorganised out, or met after a restart, one progress for a
	/// block of any difficulty), and no other branch from the same fork
	/// point can use it up (a measure per fork point let one cheap sibling
	/// there stop the honest fork from ever holding: the tenth review). No
	/// fork that sync imports holds finality without progress. Branches
	/// whose fork point is below `finalized` are forgotten: they can no
	/// longer be imported. (Without this measure, a fresh node on an
	/// attacker's light chain finalized it while sync was still importing
	/// a longer and heavier honest chain.)
	#[allow(clippy::too_many_arguments)]
	pub fn synced(
		&self,
		branch: &H,
		number: u64,
		finalized: u64,
		now: Instant,
		parent_shortfall: U256,
		tip_shortfall: U256,
		step: U256,
	) -> bool {
		let mut synced = self.synced.lock();
		synced.retain(|_, fork| fork.fork_point >= finalized);
		if number < finalized {
			return false;
		}
		if synced.len() >= MAX_SYNCED {
			synced.retain(|_, fork| fork.progressed.is_some_and(|at| now.saturating_duration_since(at) < STALL_AFTER));
		}
		let fork = synced.entry(branch.clone()).or_insert(Measure {
			fork_point: number,
			least_shortfall: parent_shortfall,
			progressed: None,
		});
		// The best chain may have moved since: the hold goes where the
		// branch leaves it now, never higher.
		fork.fork_point = fork.fork_point.min(number);
		if tip_shortfall.saturating_add(step) <= fork.least_shortfall {
			fork.least_shortfall = tip_shortfall;
			fork.progressed = Some(now);
			true
		} else {
			false
		}
	}

	/// What the open forks hold at `now`. (Ended forks whose hold is over
	/// are forgotten here.)
	pub fn holding(&self, now: Instant) -> Holding {
		let recent = |at: Instant| now.saturating_duration_since(at) < STALL_AFTER;
		let mut holding = Holding::default();
		for fork in self.synced.lock().values() {
			if fork.progressed.is_some_and(recent) {
				let point = fork.fork_point;
				holding.progressing_above = Some(holding.progressing_above.map_or(point, |p| p.min(point)));
			}
		}
		let mut open = self.open.lock();
		open.retain(|_, fork| !fork.ended || fork.progressed.is_some_and(recent));
		for fork in open.values() {
			match (fork.progressed, fork.fork_point) {
				(Some(at), Some(point)) if recent(at) => {
					holding.progressing_above = Some(holding.progressing_above.map_or(point, |p| p.min(point)));
				}
				(Some(_), _) => {}
				(None, _) if now.saturating_duration_since(fork.opened) < WORKLESS_HOLD && !fork.ended => {
					holding.workless += 1
				}
				(None, _) => {}
			}
		}
		holding
	}
}

/// The highest block finality may finalize now: `deepest` (the best block
/// less the reorg depth) unless forks hold it (`hold`), and never more than
/// [`MAX_HOLD_BLOCKS`] below `deepest`. (A version that let a fork which
/// had "gained" that many blocks' work hold finality further was broken by
/// review: a peer's unverified headers set the fork point, so honest work
/// counted as the fork's gain.)
pub fn finality_target(hold: Hold, deepest: u64, finalized: u64) -> u64 {
	let held = match hold {
		Hold::Free => deepest,
		Hold::AtOrBelow(point) => point.min(deepest),
		Hold::All => finalized.min(deepest),
	};
	held.max(deepest.saturating_sub(MAX_HOLD_BLOCKS))
}

/// What the open forks ask of finality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
	/// Finalize as usual.
	Free,
	/// Finalize nothing above this height (a progressing fork's fork point).
	AtOrBelow(u64),
	/// Finalize nothing (forks that have not shown work yet, within budget).
	All,
}

/// Finality's side of the bound on work-less holds: a budget of
/// [`WORKLESS_BUDGET`] that they spend while they hold all of finality, and
/// that comes back at half that speed while they do not. Over any long run
/// work-less claims hold finality at most a third of the time, however many
/// peers make them. (A version that renewed the budget at every
/// finalization was broken by review: the finalizations that
/// [`finality_target`]'s bound forces renewed it too, so claims alone kept
/// finality at that bound for ever.)
#[derive(Clone, Copy, Debug, Default)]
pub struct HoldClock {
	spent: Duration,
	/// The last look, and whether work-less claims held all of finality then.
	last: Option<(Instant, bool)>,
}

impl HoldClock {
	/// What the open forks ask of finality at `now` (before
	/// [`finality_target`] bounds it).
	pub fn holds(&mut self, holding: Holding, now: Instant) -> Hold {
		// The time since the last look is spent if claims held all of
		// finality then, and half of it comes back otherwise.
		if let Some((at, held_all)) = self.last {
			let elapsed = now.saturating_duration_since(at);
			// Finality looks every second while it is held; a longer gap is
			// time it did not look (catching up, settling), not time held.
			let spent = elapsed.min(MAX_LOOK_GAP);
			self.spent = if held_all { self.spent + spent } else { self.spent.saturating_sub(elapsed / 2) };
		}
		let hold_all = holding.workless > 0 && self.spent < WORKLESS_BUDGET;
		self.last = Some((now, hold_all));
		if hold_all {
			return Hold::All;
		}
		match holding.progressing_above {
			Some(point) => Hold::AtOrBelow(point),
			None => Hold::Free,
		}
	}
}

#[cfg(test)]
mod tests;
