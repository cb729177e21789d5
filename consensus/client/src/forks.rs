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
//!   between two finalizations ([`HoldClock`]).

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
}

impl<P: Hash + Eq + Clone, H: Hash + Eq + Clone> Default for PendingForks<P, H> {
	fn default() -> Self {
		Self { state: Mutex::new(State { open: HashMap::new() }) }
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

	/// Blocks of the fork were imported.
	pub fn progressed(&self, peer: &P, block: &H, now: Instant) {
		if let Some(open) = self.state.lock().open.get_mut(&(peer.clone(), block.clone())) {
			open.progressed = Some(now);
		}
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

/// Finality's side of the bound on workless holds: when they began since
/// the last finalization.
#[derive(Clone, Copy, Debug, Default)]
pub struct HoldClock {
	workless_since: Option<Instant>,
}

impl HoldClock {
	/// Whether finality waits at `now`, given the open forks.
	pub fn holds(&mut self, holding: Holding, now: Instant) -> bool {
		if holding.progressing > 0 {
			return true;
		}
		if holding.workless == 0 {
			return false;
		}
		let since = *self.workless_since.get_or_insert(now);
		now.saturating_duration_since(since) < WORKLESS_BUDGET
	}

	/// A block was finalized: the budget starts again.
	pub fn finalized(&mut self) {
		self.workless_since = None;
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
		f.progressed(&1, &10, t1);
		assert_eq!(f.holding(t1 + STALL_AFTER / 2), Holding { progressing: 1, workless: 0 });
		assert!(f.holding(t1 + STALL_AFTER).is_empty(), "stalled after importing");
		f.end(&1, &10);
		f.progressed(&1, &10, t1);
		assert!(f.holding(t1).is_empty(), "an ended fork never holds");
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
		assert!(clock.holds(Holding { progressing: 1, workless: 3 }, t0 + WORKLESS_BUDGET * 2), "work holds");
		assert!(!clock.holds(Holding::default(), t0));
		clock.finalized();
		assert!(clock.holds(workless, t0 + WORKLESS_BUDGET * 3), "a new budget after a finalization");
	}
}
