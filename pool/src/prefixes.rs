//! Nonce prefixes: each open connection gets one no other open connection
//! has, so no two miners compute the same nonce of a job.

use mlpow_stratum::NoncePrefix;
use std::collections::HashSet;

/// The prefixes in use, and where the next search starts.
pub struct Prefixes {
	bits: u32,
	in_use: HashSet<u64>,
	next: u64,
}

impl Prefixes {
	/// Prefixes of `bits` bits (clamped to [`NoncePrefix::BITS`]).
	pub fn new(bits: u32) -> Self {
		let bits = bits.clamp(*NoncePrefix::BITS.start(), *NoncePrefix::BITS.end());
		Self { bits, in_use: HashSet::new(), next: 0 }
	}

	/// A free prefix, or `None` when all `2^bits` are taken.
	pub fn take(&mut self) -> Option<NoncePrefix> {
		let count = 1u64 << self.bits;
		if self.in_use.len() as u64 >= count {
			return None;
		}
		// The next free one after the last handed out: a reconnecting miner
		// gets a fresh prefix, not one whose shares may still be in flight.
		while self.in_use.contains(&self.next) {
			self.next = (self.next + 1) % count;
		}
		let value = self.next;
		self.next = (value + 1) % count;
		self.in_use.insert(value);
		NoncePrefix::new(value, self.bits)
	}

	/// Gives a prefix back.
	pub fn release(&mut self, prefix: NoncePrefix) {
		self.in_use.remove(&prefix.value);
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn no_two_open_connections_share_a_prefix() {
		let mut p = Prefixes::new(8);
		let taken: Vec<_> = (0..256).map(|_| p.take().unwrap()).collect();
		let distinct: HashSet<_> = taken.iter().map(|x| x.value).collect();
		assert_eq!(distinct.len(), 256);
		assert_eq!(p.take(), None, "all taken");
		p.release(taken[7]);
		assert_eq!(p.take().map(|x| x.value), Some(7));
		assert_eq!(Prefixes::new(2).bits, 8, "clamped");
	}
}
