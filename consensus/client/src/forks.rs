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
//! A claim costs nothing, so waiting is bounded (no peer set without work
//! stops finality):
//! - a fork holds finality only while its blocks keep arriving and
//!   importing (each valid block carries a valid seal, which costs work),
//!   or for [`STALL_AFTER`] after it was opened;
//! - the fetcher runs one fetch per peer at a time, and a peer whose fetch
//!   did not weigh its claim waits before the next; one that served data
//!   that contradicts its claim is banned;
//! - forks that have imported nothing (claims without work, however many
//!   peers make them) hold finality for at most [`WORKLESS_BUDGET`] in all
//!   between two finalizations ([`HoldClock`]);
//! - a fork's imported blocks count as progress only when they bring it
//!   closer to this node's best chain than any fork has come since the
//!   last finalization, by at least one block's work
//!   ([`PendingForks::progressed`]): the *shortfall* (best chain's total
//!   work minus the fork tip's) must drop by the best block's work below
//!   its least. An honest heavier chain served at network speed does so
//!   with every block until it becomes the best chain; blocks mined at a
//!   low difficulty and served slowly beside a best chain that keeps
//!   growing do not, and each progress an attacker buys costs it a block
//!   and takes the shortfall, which cannot go below zero, a block's work
//!   closer to zero;
//! - forks that progress hold finality for at most [`PROGRESS_BUDGET`]
//!   between two finalizations: a fork within the finality window is at
//!   most a few hundred blocks, which a node fetches and imports in far
//!   less, so finality is delayed, never halted.
//!
//! (A first version held finality while a fork could still outweigh the
//! best chain by the block number its peer claimed, allowing each block to
//! come 1.045 times heavier than the one before. A review showed the bound
//! grew looser the longer finality was held, since the claim may be as
//! high as the best block, which keeps moving, and that governance and
//! epoch changes can raise a block's work by more than that. The second
//! asked only for a new least shortfall, which forks stepped down from
//! near the best block could reach again and again for a block's work
//! each.)

use mlpow_primitives::U256;
use parking_lot::Mutex;
use std::{
	collections::HashMap,
	hash::Hash,
	time::{Duration, Instant},
};

/// An open fork holds finality for this long after it was opened, or after
/// the last of its blocks was imported.
pub const STALL_AFTER: Duration = Duration::from_secs(30);

/// Between two finalizations, forks of which no block has been imported
/// hold finality for at most this long in all.
pub const WORKLESS_BUDGET: Duration = Duration::from_secs(60);

/// Between two finalizations, forks whose blocks progress hold finality for
/// at most this long from the first such hold.
pub const PROGRESS_BUDGET: Duration = Duration::from_secs(180);

#[derive(Clone, Copy, Debug)]
struct Open {
	opened: Instant,
	progressed: Option<Instant>,
}

/// What the open forks say about finality right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holding {
	/// Open forks whose blocks are importing (within [`STALL_AFTER`]).
	pub progressing: usize,
	/// Open forks opened within [`STALL_AFTER`] with nothing imported yet.
	pub workless: usize,
}

impl Holding {
	pub fn is_empty(&self) -> bool {
		self.progressing == 0 && self.workless == 0
	}
}

/// The forks being fetched, shared by the fetcher (which opens, advances and
/// ends them) and finality (which asks whether they hold it). `P` names a
/// peer, `H` a block.
pub struct PendingForks<P, H> {
	state: Mutex<State<P, H>>,
}

struct State<P, H> {
	open: HashMap<(P, H), Open>,
	/// The least shortfall any fork reached since the last finalization.
	least_shortfall: Option<U256>,
}

impl<P: Hash + Eq + Clone, H: Hash + Eq + Clone> Default for PendingForks<P, H> {
	fn default() -> Self {
		Self { state: Mutex::new(State { open: HashMap::new(), least_shortfall: None }) }
	}
}

impl<P: Hash + Eq + Clone, H: Hash + Eq + Clone> PendingForks<P, H> {
	/// Opens the fork `peer` claims ends at `block`, unless it is open:
	/// `true` when the caller should fetch it now.
	pub fn begin(&self, peer: &P, block: &H, now: Instant) -> bool {
		let mut state = self.state.lock();
		let key = (peer.clone(), block.clone());
		if state.open.contains_key(&key) {
			return false;
		}
		state.open.insert(key, Open { opened: now, progressed: None });
		true
	}

	/// Blocks of the fork were imported, and its tip now carries `shortfall`
	/// less work than this node's best chain (zero when it is the best
	/// chain), whose best block needed `step`. Progress, which holds
	/// finality, when the shortfall is at least `step` below the least any
	/// fork reached since the last finalization (or is the first): `true`
	/// then.
	pub fn progressed(&self, peer: &P, block: &H, now: Instant, shortfall: U256, step: U256) -> bool {
		let mut state = self.state.lock();
		if state.least_shortfall.is_some_and(|least| shortfall.saturating_add(step) > least) {
			return false;
		}
		let Some(open) = state.open.get_mut(&(peer.clone(), block.clone())) else { return false };
		open.progressed = Some(now);
		state.least_shortfall = Some(shortfall);
		true
	}

	/// A block was finalized: the forks above it start from scratch.
	pub fn finalized(&self) {
		self.state.lock().least_shortfall = None;
	}

	/// The fetch is over, whatever its outcome.
	pub fn end(&self, peer: &P, block: &H) {
		self.state.lock().open.remove(&(peer.clone(), block.clone()));
	}

	/// How many open forks hold finality at `now`.
	pub fn holding(&self, now: Instant) -> Holding {
		let state = self.state.lock();
		let mut holding = Holding::default();
		for open in state.open.values() {
			match open.progressed {
				Some(at) if now.saturating_duration_since(at) < STALL_AFTER => holding.progressing += 1,
				Some(_) => {}
				None if now.saturating_duration_since(open.opened) < STALL_AFTER => holding.workless += 1,
				None => {}
			}
		}
		holding
	}
}

/// Finality's side of the bounds on holds: when the workless and the
/// progressing holds began since the last finalization.
#[derive(Clone, Copy, Debug, Default)]
pub struct HoldClock {
	workless_since: Option<Instant>,
	progressing_since: Option<Instant>,
}

impl HoldClock {
	/// Whether finality waits at `now`, given the open forks.
	pub fn holds(&mut self, holding: Holding, now: Instant) -> bool {
		if holding.progressing > 0 {
			let since = *self.progressing_since.get_or_insert(now);
			if now.saturating_duration_since(since) < PROGRESS_BUDGET {
				return true;
			}
		}
		if holding.workless == 0 {
			return false;
		}
		let since = *self.workless_since.get_or_insert(now);
		now.saturating_duration_since(since) < WORKLESS_BUDGET
	}

	/// A block was finalized: the budgets start again.
	pub fn finalized(&mut self) {
		*self = Self::default();
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn forks() -> PendingForks<u32, u32> {
		PendingForks::default()
	}

	#[test]
	fn a_claim_is_open_once_at_a_time() {
		let (f, now) = (forks(), Instant::now());
		assert!(f.begin(&1, &10, now));
		assert!(!f.begin(&1, &10, now), "already open");
		assert!(f.begin(&2, &10, now), "another peer's claim of the same block is its own");
		f.end(&1, &10);
		assert!(f.holding(now).workless == 1, "only peer 2's is left");
		assert!(f.begin(&1, &10, now), "ended: the fetcher decides when to retry");
	}

	#[test]
	fn a_fork_holds_while_it_imports_and_stops_when_it_stalls() {
		let (f, t0) = (forks(), Instant::now());
		f.begin(&1, &10, t0);
		assert_eq!(f.holding(t0), Holding { progressing: 0, workless: 1 });
		assert!(f.holding(t0 + STALL_AFTER).is_empty(), "nothing imported within the window");
		let t1 = t0 + STALL_AFTER * 3;
		assert!(f.progressed(&1, &10, t1, U256::one(), U256::one()));
		assert_eq!(f.holding(t1 + STALL_AFTER / 2), Holding { progressing: 1, workless: 0 });
		assert!(f.holding(t1 + STALL_AFTER).is_empty(), "stalled after importing");
		f.end(&1, &10);
		assert!(!f.progressed(&1, &10, t1, U256::zero(), U256::zero()));
		assert!(f.holding(t1).is_empty(), "an ended fork never holds");
	}

	/// Only blocks that bring a fork a block's work closer to the best
	/// chain than any fork came since the last finalization hold finality:
	/// the honest heavier chain's do, a slow light fork's do not, and forks
	/// stepped down from near the best block run out at zero.
	#[test]
	fn only_forks_that_gain_on_the_best_chain_progress() {
		let (f, t0) = (forks(), Instant::now());
		let d = |blocks: u64| U256::from(blocks * 1_000_000);
		let step = d(1);
		f.begin(&1, &10, t0);
		f.begin(&2, &20, t0);
		// Peer 1 serves the heavier chain: each block gains a block's work.
		for behind in (0..=40).rev() {
			assert!(f.progressed(&1, &10, t0, d(behind), step), "{behind} blocks behind");
		}
		f.end(&1, &10);
		f.finalized();
		// Peer 2 serves light blocks while the best chain grows faster: its
		// first block after the finalization counts, the next ones do not.
		let t1 = t0 + STALL_AFTER;
		assert!(f.progressed(&2, &20, t1, d(10), step));
		assert!(!f.progressed(&2, &20, t1 + STALL_AFTER / 2, d(12), step));
		assert!(!f.progressed(&2, &20, t1 + STALL_AFTER / 2, d(10), step), "as close as before");
		assert!(!f.progressed(&2, &20, t1 + STALL_AFTER / 2, d(10) - step / 2, step), "less than a block closer");
		assert!(f.holding(t1 + STALL_AFTER).is_empty(), "its hold ends 30 s after its last progress");
		// Another Sybil's fork must come a block closer than any fork did,
		// and at zero (the best chain's own work) no fork can go on.
		f.begin(&3, &30, t1);
		assert!(!f.progressed(&3, &30, t1, d(10) - step / 2, step));
		assert!(f.progressed(&3, &30, t1, d(9), step));
		assert!(f.progressed(&3, &30, t1, U256::zero(), step));
		assert!(!f.progressed(&3, &30, t1, U256::zero(), step), "nothing is a block closer than zero");
		assert!(!f.progressed(&4, &40, t1, U256::zero(), U256::zero()), "a fork that is not open never progresses");
	}

	/// Progressing forks hold finality for at most their budget between two
	/// finalizations, however many blocks they import.
	#[test]
	fn progress_holds_within_its_budget() {
		let (mut clock, t0) = (HoldClock::default(), Instant::now());
		let progressing = Holding { progressing: 1, workless: 0 };
		assert!(clock.holds(progressing, t0));
		assert!(clock.holds(progressing, t0 + PROGRESS_BUDGET / 2));
		assert!(!clock.holds(progressing, t0 + PROGRESS_BUDGET), "budget spent");
		let both = Holding { progressing: 1, workless: 1 };
		assert!(clock.holds(both, t0 + PROGRESS_BUDGET), "the workless budget is its own");
		assert!(!clock.holds(both, t0 + PROGRESS_BUDGET + WORKLESS_BUDGET));
		clock.finalized();
		assert!(clock.holds(progressing, t0 + PROGRESS_BUDGET * 2), "a new budget after a finalization");
	}

	/// Claims without work hold finality for at most the budget between two
	/// finalizations, however many peers make them one after another.
	#[test]
	fn workless_claims_share_one_budget() {
		let (mut clock, t0) = (HoldClock::default(), Instant::now());
		let workless = Holding { progressing: 0, workless: 1 };
		assert!(clock.holds(workless, t0));
		assert!(clock.holds(workless, t0 + WORKLESS_BUDGET / 2));
		assert!(!clock.holds(workless, t0 + WORKLESS_BUDGET), "budget spent: a new Sybil's claim no longer holds");
		assert!(clock.holds(Holding { progressing: 1, workless: 3 }, t0 + WORKLESS_BUDGET * 2), "progress holds");
		assert!(!clock.holds(Holding::default(), t0));
		clock.finalized();
		assert!(clock.holds(workless, t0 + WORKLESS_BUDGET * 3), "a new budget after a finalization");
	}
}
