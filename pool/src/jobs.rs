//! The jobs the pool has handed out, and which of them still earn shares.
//!
//! Every work item from the node becomes a job. A job on a new parent is
//! *clean*: every earlier job is stale at once. Jobs on the same parent
//! (the node rebuilt its block: new transactions, a new timestamp) keep
//! earning shares, since their work is as real, but only the newest can
//! make a block (STRATUM.md, `mining.notify`). Accepted shares are
//! remembered per `pre_hash` until their parent is replaced, so that none
//! is counted twice; the ledger keeps the same record on disk
//! ([`crate::ledger::seen_key`]), for the shares replayed after a restart.

use mlpow_primitives::Hash32;
use mlpow_work::WorkItem;
use parking_lot::Mutex;
use std::{
	collections::{HashMap, HashSet},
	sync::Arc,
};

/// Jobs kept per parent: a node rebuilds its block every few seconds at
/// most, so older ones than this are stale in practice.
const MAX_JOBS_PER_PARENT: usize = 32;

/// One job.
#[derive(Debug)]
pub struct Job {
	/// Its id in `mining.notify` and `mining.submit`.
	pub id: String,
	/// The work it was cut from.
	pub work: WorkItem,
	/// Whether it builds on a new parent.
	pub clean: bool,
}

#[derive(Default)]
struct Book {
	parent: Option<Hash32>,
	jobs: HashMap<String, Arc<Job>>,
	order: Vec<String>,
	current: Option<Arc<Job>>,
	/// Hashes of accepted seals, per `pre_hash`, for this parent.
	accepted: HashMap<Hash32, HashSet<Hash32>>,
	counter: u64,
}

/// The pool's jobs, shared by the node connection and every miner's.
#[derive(Default)]
pub struct Jobs {
	book: Mutex<Book>,
}

impl Jobs {
	/// Makes `work` the current job and returns it.
	pub fn add(&self, work: WorkItem) -> Arc<Job> {
		let mut book = self.book.lock();
		let clean = book.parent != Some(work.parent_hash.0);
		if clean {
			book.parent = Some(work.parent_hash.0);
			book.jobs.clear();
			book.order.clear();
			book.accepted.clear();
		}
		book.counter += 1;
		let job = Arc::new(Job { id: format!("{:x}", book.counter), work, clean });
		book.jobs.insert(job.id.clone(), job.clone());
		book.order.push(job.id.clone());
		if book.order.len() > MAX_JOBS_PER_PARENT {
			let old = book.order.remove(0);
			book.jobs.remove(&old);
		}
		book.current = Some(job.clone());
		job
	}

	/// Forgets every job (the node went away: its work may be stale, and
	/// shares on it are not taken until it is back).
	pub fn clear(&self) {
		let mut book = self.book.lock();
		// Ids go on counting: a share for an old job must never match a new
		// job of the same id.
		*book = Book { counter: book.counter, ..Book::default() };
	}

	/// The newest job, if the node has given any.
	pub fn current(&self) -> Option<Arc<Job>> {
		self.book.lock().current.clone()
	}

	/// A job that still earns shares; `None` when unknown or stale.
	pub fn get(&self, id: &str) -> Option<Arc<Job>> {
		self.book.lock().jobs.get(id).cloned()
	}

	/// Whether `job` is the newest, the only one that can make a block.
	pub fn is_current(&self, job: &Job) -> bool {
		self.book.lock().current.as_ref().is_some_and(|c| c.id == job.id)
	}

	/// Whether this seal was accepted before on this `pre_hash`.
	pub fn seen(&self, pre_hash: &Hash32, seal: &[u8]) -> bool {
		let key = *blake3::hash(seal).as_bytes();
		self.book.lock().accepted.get(pre_hash).is_some_and(|set| set.contains(&key))
	}

	/// Records an accepted seal: `false` if it was there already (two
	/// copies checked at once) or its parent has been replaced meanwhile.
	pub fn accept(&self, job: &Job, seal: &[u8]) -> bool {
		let key = *blake3::hash(seal).as_bytes();
		let mut book = self.book.lock();
		if !book.jobs.contains_key(&job.id) {
			return false;
		}
		book.accepted.entry(job.work.pre_hash.0).or_default().insert(key)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use mlpow_primitives::{ChallengeParams, U256};
	use mlpow_work::{Hex32, HexU256};

	fn work(parent: u8, pre: u8) -> WorkItem {
		WorkItem {
			version: pre as u64,
			pre_hash: Hex32([pre; 32]),
			parent_hash: Hex32([parent; 32]),
			number: 1,
			difficulty: HexU256(U256::from(1000)),
			params: ChallengeParams::DEV,
			weights_seed: Hex32([0; 32]),
		}
	}

	#[test]
	fn a_new_parent_makes_every_job_stale() {
		let jobs = Jobs::default();
		let a = jobs.add(work(1, 1));
		assert!(a.clean);
		let b = jobs.add(work(1, 2));
		assert!(!b.clean, "same parent");
		assert!(jobs.get(&a.id).is_some() && jobs.is_current(&b) && !jobs.is_current(&a));
		assert!(jobs.accept(&a, b"seal"));
		assert!(jobs.seen(&a.work.pre_hash.0, b"seal") && !jobs.seen(&b.work.pre_hash.0, b"seal"));
		assert!(!jobs.accept(&a, b"seal"), "a duplicate");
		let c = jobs.add(work(2, 3));
		assert!(c.clean);
		assert!(jobs.get(&a.id).is_none() && jobs.get(&b.id).is_none(), "stale");
		assert!(!jobs.accept(&a, b"other"), "a share checked while its parent was replaced");
		assert!(!jobs.seen(&a.work.pre_hash.0, b"seal"), "forgotten with its parent");
	}

	#[test]
	fn old_jobs_of_one_parent_fall_off() {
		let jobs = Jobs::default();
		let first = jobs.add(work(1, 0));
		for pre in 1..=MAX_JOBS_PER_PARENT as u8 {
			jobs.add(work(1, pre));
		}
		assert!(jobs.get(&first.id).is_none());
		assert!(jobs.current().is_some());
	}
}
