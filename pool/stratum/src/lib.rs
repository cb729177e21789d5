//! # mlpow-stratum
//!
//! The wire protocol between a mining pool and its miners, as
//! `consensus/STRATUM.md` writes it (`mlpow-stratum/1`): the messages
//! ([`message`]), the error codes ([`codes`]), the per-connection nonce
//! prefix ([`NoncePrefix`]), newline framing with a length limit
//! ([`line`]), the checks a pool makes on a share, in the spec's order
//! ([`share`]), and the transport, TCP or TLS ([`transport`]). The pool (`mlpow-pool`) and the miners (`mlpow-worker
//! --pool`) both build on it, so the protocol is written once.

#![warn(missing_docs)]

pub mod line;
pub mod message;
pub mod share;
pub mod transport;

/// The protocol version a miner names in `mining.subscribe`.
pub const PROTOCOL: &str = "mlpow-stratum/1";

/// Method names.
pub mod methods {
	/// Miner to pool: open a session.
	pub const SUBSCRIBE: &str = "mining.subscribe";
	/// Miner to pool: name a payout address and worker.
	pub const AUTHORIZE: &str = "mining.authorize";
	/// Miner to pool: a share.
	pub const SUBMIT: &str = "mining.submit";
	/// Pool to miner: the share difficulty of the jobs that follow.
	pub const SET_DIFFICULTY: &str = "mining.set_difficulty";
	/// Pool to miner: a job.
	pub const NOTIFY: &str = "mining.notify";
}

/// Error codes (STRATUM.md, "Errors"): 20 to 25 are Stratum v1's.
pub mod codes {
	/// Malformed JSON or request, unknown method, line too long, a second
	/// subscribe, an unsupported protocol version.
	pub const OTHER: i32 = 20;
	/// The job is unknown or its parent is no longer the pool's best block.
	pub const STALE: i32 = 21;
	/// The share was accepted before.
	pub const DUPLICATE: i32 = 22;
	/// The ticket is above the share target.
	pub const LOW_DIFFICULTY: i32 = 23;
	/// The address or worker name is refused, or not authorized here.
	pub const UNAUTHORIZED: i32 = 24;
	/// A request before `mining.subscribe`.
	pub const NOT_SUBSCRIBED: i32 = 25;
	/// The seal's length, mode or tile is wrong for the job.
	pub const BAD_SEAL: i32 = 26;
	/// A chosen share's openings are out of range or do not match.
	pub const BAD_OPENING: i32 = 27;
	/// The nonce is outside the connection's prefix.
	pub const BAD_NONCE: i32 = 28;
	/// The connection or its address is banned.
	pub const BANNED: i32 = 29;
}

/// The nonces one connection may submit: those whose `bits` most
/// significant bits are `value` (STRATUM.md, `mining.subscribe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NoncePrefix {
	/// The prefix, in the low `bits` bits.
	pub value: u64,
	/// How many of the nonce's top bits it fixes: 8 to 32.
	pub bits: u32,
}

impl NoncePrefix {
	/// The widths a pool may hand out.
	pub const BITS: std::ops::RangeInclusive<u32> = 8..=32;

	/// A prefix, if `bits` is in [`Self::BITS`] and `value` fits in it.
	pub fn new(value: u64, bits: u32) -> Option<Self> {
		(Self::BITS.contains(&bits) && value >> bits == 0).then_some(Self { value, bits })
	}

	/// Whether `nonce` carries this prefix.
	pub fn contains(&self, nonce: u64) -> bool {
		nonce >> (64 - self.bits) == self.value
	}

	/// The first nonce with this prefix.
	pub fn first(&self) -> u64 {
		self.value << (64 - self.bits)
	}

	/// How many nonces carry it.
	pub fn len(&self) -> u64 {
		1 << (64 - self.bits)
	}

	/// Never empty (at most 32 bits are fixed); for clippy's sake.
	pub fn is_empty(&self) -> bool {
		false
	}

	/// `0x` hex with a digit per started 4 bits (`0x002a` for 16 bits).
	pub fn to_hex(&self) -> String {
		format!("0x{:0width$x}", self.value, width = self.bits.div_ceil(4) as usize)
	}

	/// Parses what [`Self::to_hex`] writes, with its width in bits.
	pub fn from_hex(hex: &str, bits: u32) -> Option<Self> {
		let digits = hex.strip_prefix("0x")?;
		if digits.is_empty() || digits.len() > 16 {
			return None;
		}
		Self::new(u64::from_str_radix(digits, 16).ok()?, bits)
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	/// The spec's example: 16 bits, prefix 0x002a, so a seal's nonce bytes
	/// (u64 LE) end in `2a 00`.
	#[test]
	fn a_prefix_fixes_the_top_bits() {
		let p = NoncePrefix::new(0x2a, 16).unwrap();
		assert_eq!(p.to_hex(), "0x002a");
		assert_eq!(NoncePrefix::from_hex("0x002a", 16), Some(p));
		let nonce = p.first() + 12345;
		assert!(p.contains(nonce));
		assert_eq!(&nonce.to_le_bytes()[6..], &[0x2a, 0x00]);
		assert!(!p.contains(p.first() + p.len()));
		assert!(!p.contains(p.first() - 1));
		assert_eq!(p.len(), 1 << 48);
		// Nonce 27, the golden vector's, is inside prefix 0 of 16 bits.
		assert!(NoncePrefix::new(0, 16).unwrap().contains(27));
	}

	#[test]
	fn bad_prefixes_are_refused() {
		assert_eq!(NoncePrefix::new(0, 7), None);
		assert_eq!(NoncePrefix::new(0, 33), None);
		assert_eq!(NoncePrefix::new(256, 8), None);
		assert_eq!(NoncePrefix::from_hex("2a", 16), None);
		assert_eq!(NoncePrefix::from_hex("0x", 16), None);
		assert_eq!(NoncePrefix::from_hex("0x1ffff", 16), None);
		assert_eq!(NoncePrefix::new(u32::MAX as u64, 32).map(|p| p.to_hex()), Some("0xffffffff".into()));
	}
}
