//! Reservations: bytes of the job memory budget set aside for requests in
//! progress, in one account with the held jobs ([`Jobs`]), so that held
//! plus reserved never passes the budget.

use super::Jobs;
use std::sync::Arc;

/// Bytes of the budget set aside for a request in progress, given back when
/// dropped (or moved into a job by [`Jobs::submit_reserved`]).
#[must_use]
pub struct Reservation {
	pub(super) jobs: Arc<Jobs>,
	pub(super) bytes: u64,
}

impl Reservation {
	pub fn bytes(&self) -> u64 {
		self.bytes
	}
}

impl Drop for Reservation {
	fn drop(&mut self) {
		let mut inner = self.jobs.lock();
		inner.reserved_bytes = inner.reserved_bytes.saturating_sub(self.bytes);
	}
}

impl std::fmt::Debug for Reservation {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		write!(f, "Reservation({} bytes)", self.bytes)
	}
}

/// Why a reservation was refused: what it asked for and what was in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
	pub asked: u64,
	pub budget: u64,
	pub held: u64,
	pub reserved: u64,
}

impl Jobs {
	/// What held jobs use and what requests in progress have reserved, in
	/// bytes, read together.
	pub fn usage(&self) -> (u64, u64) {
		let inner = self.lock();
		(inner.held_bytes, inner.reserved_bytes)
	}

	/// Sets `bytes` of the budget aside, if held jobs and other requests
	/// leave that much free.
	pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, Refused> {
		let mut inner = self.lock();
		let used = inner.held_bytes.saturating_add(inner.reserved_bytes);
		if used.saturating_add(bytes) > self.budget {
			return Err(Refused {
				asked: bytes,
				budget: self.budget,
				held: inner.held_bytes,
				reserved: inner.reserved_bytes,
			});
		}
		inner.reserved_bytes += bytes;
		Ok(Reservation { jobs: self.clone(), bytes })
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::jobs::{input::Matrices, JobError};

	fn matrices(rows: usize, depth: usize, cols: usize) -> Matrices {
		Matrices { rows, depth, cols, a: vec![1; rows * depth], bt: vec![-1; cols * depth] }
	}

	/// Requests' reservations and held jobs share the budget; a job takes
	/// over what its request reserved, and a dropped reservation frees the
	/// rest.
	#[test]
	fn reservations_and_jobs_share_the_budget() {
		let bytes = Jobs::job_bytes(8, 8, 8, None);
		let jobs = Arc::new(Jobs::new(2 * bytes));
		let mut reserved = jobs.reserve(bytes + 100).unwrap();
		assert_eq!(jobs.usage(), (0, bytes + 100));
		let refused = jobs.reserve(bytes).unwrap_err();
		assert_eq!((refused.held, refused.reserved, refused.asked), (0, bytes + 100, bytes));
		jobs.submit_reserved(matrices(8, 8, 8), None, &mut reserved).unwrap();
		assert_eq!((jobs.usage(), reserved.bytes()), ((bytes, 100), 100));
		assert!(matches!(jobs.submit(matrices(8, 8, 8), None), Err(JobError::TooLarge(_))), "100 bytes short");
		drop(reserved);
		assert_eq!(jobs.usage(), (bytes, 0));
		let id = jobs.submit(matrices(8, 8, 8), None).unwrap().id;
		jobs.remove(id).unwrap();
		assert_eq!(jobs.usage(), (bytes, 0));
	}
}
