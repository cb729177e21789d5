//! The bounds on fork holds (`super`).

use super::*;

fn forks() -> PendingForks<u32, u32> {
	PendingForks::default()
}

fn d(blocks: u64) -> U256 {
	U256::from(blocks * 1_000_000)
}

#[test]
fn a_claim_is_open_once_at_a_time() {
	let (f, now) = (forks(), Instant::now());
	assert!(f.begin(&1, &10, now));
	assert!(!f.begin(&1, &10, now), "already open");
	assert!(f.begin(&2, &10, now), "another peer's claim of the same block is its own");
	f.end(&1, &10);
	assert_eq!(f.holding(now).workless, 1, "only peer 2's is left");
	assert!(f.begin(&1, &10, now), "ended: the fetcher decides when to retry");
}

/// A fork holds all of finality for a while after it opens, then, once
/// it progresses, only above its fork point, until it stalls.
#[test]
fn a_fork_holds_while_it_progresses_and_stops_when_it_stalls() {
	let (f, t0) = (forks(), Instant::now());
	f.begin(&1, &10, t0);
	assert_eq!(f.holding(t0), Holding { progressing_above: None, workless: 1 });
	assert!(f.holding(t0 + WORKLESS_HOLD).is_empty(), "nothing imported within the window");
	assert!(!f.progressed(&1, &10, t0, d(5), d(1)), "no fork point yet: no measure of progress");
	f.forked_at(&1, &10, 100, d(40));
	let t1 = t0 + STALL_AFTER * 3;
	assert!(f.progressed(&1, &10, t1, d(30), d(1)));
	assert_eq!(f.holding(t1 + STALL_AFTER / 2), Holding { progressing_above: Some(100), workless: 0 });
	assert!(f.holding(t1 + STALL_AFTER).is_empty(), "stalled after progressing");
	assert!(f.end(&1, &10), "it progressed");
	assert!(!f.progressed(&1, &10, t1, U256::zero(), U256::zero()), "no fetch: no progress");
	assert!(f.holding(t1 + STALL_AFTER).is_empty());
	assert!(f.begin(&1, &10, t1 + STALL_AFTER), "forgotten: it may be fetched again");
}

/// A fetch cut short after progress (a timeout, the peer's chain
/// reorganising) leaves its fork holding at the fork point until the
/// progress is stale, so finality does not run past an honest heavier
/// fork before the next fetch; the next fetch of the same claim goes on
/// from there. A fork that never progressed holds nothing once ended.
#[test]
fn a_fork_that_progressed_holds_after_its_fetch_ends() {
	let (f, t0) = (forks(), Instant::now());
	f.begin(&1, &10, t0);
	f.forked_at(&1, &10, 100, d(40));
	assert!(f.progressed(&1, &10, t0, d(30), d(1)));
	assert!(f.end(&1, &10));
	let later = t0 + STALL_AFTER / 2;
	assert_eq!(f.holding(later), Holding { progressing_above: Some(100), workless: 0 }, "still holds");
	assert!(f.begin(&1, &10, later), "fetched again");
	assert!(!f.begin(&1, &10, later), "once at a time");
	assert_eq!(f.holding(later).progressing_above, Some(100));
	f.forked_at(&1, &10, 100, d(32));
	assert!(f.progressed(&1, &10, later, d(20), d(1)));
	assert_eq!(f.holding(later + STALL_AFTER / 2).progressing_above, Some(100));
	assert!(f.end(&1, &10), "progressed during this fetch");
	assert!(f.begin(&1, &10, later + STALL_AFTER / 4));
	assert!(!f.end(&1, &10), "none during this one: its peer waits before the next");
	f.diverges_at(&1, &10, 90);
	assert_eq!(f.holding(later).progressing_above, Some(90), "the best chain moved: the hold follows");
	f.diverges_at(&1, &10, 120);
	assert_eq!(f.holding(later).progressing_above, Some(90), "never up: a fork best for a moment keeps its hold");
	assert!(f.holding(later + STALL_AFTER).is_empty(), "stale");
	let g = forks();
	g.begin(&2, &20, t0);
	g.forked_at(&2, &20, 50, d(10));
	assert!(!g.end(&2, &20));
	assert!(g.holding(t0).is_empty(), "a fork without progress holds nothing once ended");
}

/// An honest fetch's longest gap between two progresses (the rest of a
/// batch imports, then the next request and its first block, each just
/// within the step timeout) does not let the hold lapse.
#[test]
fn one_slow_honest_batch_keeps_the_hold() {
	let (f, t0) = (forks(), Instant::now());
	f.begin(&1, &10, t0);
	f.forked_at(&1, &10, 100, d(40));
	assert!(f.progressed(&1, &10, t0, d(30), d(1)), "the last block of a batch");
	let next = t0 + (FETCH_STEP_TIMEOUT - Duration::from_millis(1)) * 2;
	assert_eq!(f.holding(next).progressing_above, Some(100), "still held when the next batch's first block imports");
	assert!(f.progressed(&1, &10, next, d(29), d(1)));
	assert_eq!(f.holding(next + STALL_AFTER - Duration::from_millis(1)).progressing_above, Some(100));
	assert!(f.holding(next + STALL_AFTER).is_empty(), "a fetch that stalls for longer lets go");
}

/// Forks that sync imports hold finality at their fork point while
/// they gain on the best chain (the honest chain, longer and heavier,
/// beside a light chain the node synced first), never without work, and
/// are forgotten once finality passes their fork point.
#[test]
fn forks_that_sync_imports_hold_only_while_they_gain() {
	let (f, t0) = (forks(), Instant::now());
	let step = d(1);
	// The honest chain from genesis, 40 blocks' work behind the light
	// best chain at its fork point: each block a best block's work.
	for (i, behind) in (0..40).rev().enumerate() {
		assert!(f.synced(&0, 0, 0, t0, d(40), d(behind), step), "block {i} gains a block's work");
	}
	assert_eq!(f.holding(t0), Holding { progressing_above: Some(0), workless: 0 });
	assert!(f.holding(t0 + STALL_AFTER).is_empty(), "stale once its blocks stop coming");
	// A light fork from #90 (branch 91): its blocks carry half a best
	// block's work, and the best chain grows meanwhile.
	let t1 = t0 + STALL_AFTER;
	assert!(!f.synced(&91, 90, 0, t1, d(3), d(3) - step / 2, step), "less than a block closer");
	assert!(!f.synced(&91, 90, 0, t1, d(4), d(4) - step / 2, step), "the best chain grew more");
	assert!(f.synced(&91, 90, 0, t1, d(4), d(2), step), "a block's work closer, net of the best chain's growth");
	assert_eq!(f.holding(t1).progressing_above, Some(90));
	// A cheap sibling branch from the same fork point has a measure of
	// its own: it does not use up another's.
	assert!(f.synced(&92, 90, 0, t1, d(1), U256::zero(), step), "the sibling");
	assert!(f.synced(&91, 90, 0, t1, d(2), d(1), step), "branch 91 still gains");
	// A branch met mid-way (reorganised out, or after a restart) starts
	// from its block's parent: the work it had before is no gain.
	assert!(!f.synced(&93, 80, 0, t1, d(5), d(5) - step / 2, step), "no free progress");
	// Finality passed #90: those forks can no longer be imported.
	assert!(!f.synced(&96, 95, 92, t1 + STALL_AFTER, d(2), d(2), step));
	assert!(f.holding(t1 + STALL_AFTER).is_empty(), "forgotten, or stale");
	assert!(!f.synced(&91, 90, 92, t1, d(2), U256::zero(), step), "forgotten: measured again from its parent");
}

/// Progress is a best block's work closer to the best chain than the
/// fork came before, net of the best chain's growth: the honest heavier
/// chain's blocks are; a light fork's, beside a growing best chain, are
/// not; and one fork cannot use up another's.
#[test]
fn only_forks_that_gain_on_the_best_chain_progress() {
	let (f, t0) = (forks(), Instant::now());
	let step = d(1);
	// Peer 1 serves the heavier chain from 40 blocks behind.
	f.begin(&1, &10, t0);
	f.forked_at(&1, &10, 7, d(40));
	for behind in (0..40).rev() {
		assert!(f.progressed(&1, &10, t0, d(behind), step), "{behind} blocks behind");
	}
	assert!(!f.progressed(&1, &10, t0, U256::zero(), step), "the best chain: nothing left to gain");
	// Peer 2's light fork from 10 blocks behind: its first block gains
	// little, and the best chain grows faster than it does.
	f.begin(&2, &20, t0);
	f.forked_at(&2, &20, 9, d(10));
	assert!(!f.progressed(&2, &20, t0, d(10) - step / 2, step), "less than a block closer");
	assert!(!f.progressed(&2, &20, t0, d(11), step), "the best chain grew more");
	// A sibling of the best block does not stop peer 3's honest fork.
	f.begin(&3, &30, t0);
	f.begin(&4, &40, t0);
	f.forked_at(&3, &30, 99, d(1));
	f.forked_at(&4, &40, 50, d(50));
	assert!(f.progressed(&3, &30, t0, U256::zero(), step));
	assert!(f.progressed(&4, &40, t0, d(49), step), "each fork has its own measure");
	assert!(!f.progressed(&5, &50, t0, U256::zero(), U256::zero()), "a fork that is not open never progresses");
	assert_eq!(f.holding(t0).progressing_above, Some(7), "the lowest fork point of those progressing");
}

/// Claims without work hold all of finality for at most the budget,
/// however many peers make them one after another, and the budget comes
/// back at half speed while they do not hold; progressing forks then
/// hold it at their fork point.
#[test]
fn workless_claims_share_one_budget() {
	let (mut clock, t0) = (HoldClock::default(), Instant::now());
	let workless = Holding { progressing_above: None, workless: 1 };
	let second = Duration::from_secs(1);
	// Looked at every second, as finality does while it is held.
	for s in 0..60 {
		assert_eq!(clock.holds(workless, t0 + second * s), Hold::All, "second {s}");
	}
	assert_eq!(
		clock.holds(workless, t0 + WORKLESS_BUDGET),
		Hold::Free,
		"budget spent: a new Sybil's claim no longer holds"
	);
	// Claims go on without pause: after the budget, they hold at most a
	// third of the time (finality catches up whenever they do not).
	let (mut held, mut t) = (0, t0 + WORKLESS_BUDGET);
	for _ in 0..600 {
		t += second;
		held += u32::from(clock.holds(workless, t) == Hold::All);
	}
	assert!((150..=210).contains(&held), "held {held} of 600 s");
	let progress = Holding { progressing_above: Some(12), workless: 0 };
	assert_eq!(clock.holds(progress, t + second), Hold::AtOrBelow(12), "progress holds at its fork point");
	// Budget spent, then two minutes without work-less holds: all of it back.
	let mut clock = HoldClock::default();
	for s in 0..=60 {
		clock.holds(workless, t0 + second * s);
	}
	assert_eq!(clock.holds(Holding::default(), t0 + WORKLESS_BUDGET * 3), Hold::Free);
	for s in 0..60 {
		assert_eq!(clock.holds(workless, t0 + WORKLESS_BUDGET * 3 + second * s), Hold::All, "second {s}");
	}
	assert_eq!(clock.holds(workless, t0 + WORKLESS_BUDGET * 4), Hold::Free);
}

/// Holds keep finality at most MAX_HOLD_BLOCKS below its target,
/// whatever holds it.
#[test]
fn holds_keep_finality_at_most_max_hold_blocks_back() {
	let deepest = 1_000;
	assert_eq!(finality_target(Hold::Free, deepest, 990), deepest);
	assert_eq!(finality_target(Hold::AtOrBelow(900), deepest, 950), deepest - MAX_HOLD_BLOCKS);
	assert_eq!(finality_target(Hold::AtOrBelow(990), deepest, 950), 990);
	assert_eq!(finality_target(Hold::All, deepest, 990), 990, "held, within the bound");
	assert_eq!(finality_target(Hold::All, deepest, 900), deepest - MAX_HOLD_BLOCKS);
	assert_eq!(finality_target(Hold::All, 10, 0), 0, "near genesis: nothing below zero");
}
