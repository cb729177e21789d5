//! # mlpow-work
//!
//! The JSON protocol between a node's mining RPC and mining workers. Both
//! sides use these types, so the wire format is defined once. Method names:
//!
//! | method | params | result |
//! |---|---|---|
//! | `mlpow_getWork` | none | [`WorkItem`], or error [`codes::NO_WORK`] |
//! | `mlpow_subscribeWork` | none | subscription of [`WorkItem`]s (notification `mlpow_work`) |
//! | `mlpow_unsubscribeWork` | subscription id | bool |
//! | `mlpow_submitSeal` | `version`, `seal` (hex) | [`Accepted`], or an error from [`codes`] |
//!
//! Hashes, seeds and seals are `0x`-prefixed lowercase hex; the difficulty
//! is a `0x` hex quantity (as Substrate writes `U256`).

#![warn(missing_docs)]

use mlpow_primitives::{ChallengeParams, Hash32, U256};
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

/// RPC method names.
pub mod methods {
	/// The current work item.
	pub const GET_WORK: &str = "mlpow_getWork";
	/// Subscribes to work items.
	pub const SUBSCRIBE_WORK: &str = "mlpow_subscribeWork";
	/// The subscription's notification method.
	pub const WORK_NOTIFICATION: &str = "mlpow_work";
	/// Ends a work subscription.
	pub const UNSUBSCRIBE_WORK: &str = "mlpow_unsubscribeWork";
	/// Submits a seal for a work version.
	pub const SUBMIT_SEAL: &str = "mlpow_submitSeal";
}

/// JSON-RPC error codes of the mining RPC.
pub mod codes {
	/// The node has no block to mine yet (starting, or syncing).
	pub const NO_WORK: i32 = 1000;
	/// The seal is for work that has been replaced (a new block arrived).
	pub const STALE: i32 = 1001;
	/// The seal is well-formed but does not verify.
	pub const INVALID: i32 = 1002;
	/// The seal is not hex, or its length is wrong for the puzzle version.
	pub const MALFORMED: i32 = 1003;
	/// The seal verified but the block could not be imported.
	pub const IMPORT_FAILED: i32 = 1004;
}

/// A 32-byte value written as `0x` + 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hex32(pub Hash32);

impl Serialize for Hex32 {
	fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
		s.serialize_str(&format!("0x{}", hex::encode(self.0)))
	}
}

impl<'de> Deserialize<'de> for Hex32 {
	fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
		let s = String::deserialize(d)?;
		let bytes = decode_hex(&s).map_err(D::Error::custom)?;
		let arr: Hash32 =
			bytes.try_into().map_err(|b: Vec<u8>| D::Error::custom(format!("expected 32 bytes, got {}", b.len())))?;
		Ok(Self(arr))
	}
}

/// A difficulty written as a `0x` hex quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HexU256(pub U256);

impl Serialize for HexU256 {
	fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
		s.serialize_str(&format!("{:#x}", self.0))
	}
}

impl<'de> Deserialize<'de> for HexU256 {
	fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
		let s = String::deserialize(d)?;
		let digits = s.strip_prefix("0x").ok_or_else(|| D::Error::custom("expected a 0x-prefixed hex quantity"))?;
		U256::from_str_radix(digits, 16).map(Self).map_err(|e| D::Error::custom(format!("bad difficulty: {e}")))
	}
}

/// Decodes `0x`-prefixed (or bare) hex.
pub fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
	let digits = s.strip_prefix("0x").unwrap_or(s);
	hex::decode(digits).map_err(|e| format!("invalid hex: {e}"))
}

/// `0x`-prefixed lowercase hex.
pub fn encode_hex(bytes: &[u8]) -> String {
	format!("0x{}", hex::encode(bytes))
}

/// The first 8 bytes as `0x` hex, for log lines.
pub fn short_hex(bytes: &[u8]) -> String {
	encode_hex(&bytes[..bytes.len().min(8)])
}

/// A unit of work, as `mlpow_getWork` and `mlpow_subscribeWork` deliver it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
	/// Work counter; a seal names the work it was found for.
	pub version: u64,
	/// Hash of the proposed header without its seal.
	pub pre_hash: Hex32,
	/// The block it builds on.
	pub parent_hash: Hex32,
	/// Number of the block being mined.
	pub number: u64,
	/// Its difficulty: a ticket wins if its digest, read big-endian, is at
	/// most `(2^256 - 1) / difficulty`.
	pub difficulty: HexU256,
	/// The puzzle's shape.
	pub params: ChallengeParams,
	/// The epoch's weights seed.
	pub weights_seed: Hex32,
}

/// A seal that made a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
	/// The new block's hash.
	pub block_hash: Hex32,
	/// Its number.
	pub number: u64,
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn work_item_round_trips_through_json() {
		let item = WorkItem {
			version: 7,
			pre_hash: Hex32([1; 32]),
			parent_hash: Hex32([2; 32]),
			number: 42,
			difficulty: HexU256(U256::from(5000)),
			params: ChallengeParams::DEV,
			weights_seed: Hex32([0xab; 32]),
		};
		let json = serde_json::to_value(&item).unwrap();
		assert_eq!(json["difficulty"], "0x1388");
		assert_eq!(json["pre_hash"], format!("0x{}", "01".repeat(32)));
		assert_eq!(json["params"]["epoch_length"], 100);
		assert_eq!(serde_json::from_value::<WorkItem>(json).unwrap(), item);
	}

	#[test]
	fn bad_hex_is_an_error_not_a_panic() {
		assert!(serde_json::from_str::<Hex32>("\"0x12\"").is_err());
		assert!(serde_json::from_str::<Hex32>("\"zz\"").is_err());
		assert!(serde_json::from_str::<HexU256>("\"1388\"").is_err());
		assert!(serde_json::from_str::<HexU256>(&format!("\"0x{}\"", "f".repeat(65))).is_err());
		assert!(decode_hex("0x123").is_err());
		assert_eq!(decode_hex("0x0a0B").unwrap(), vec![10, 11]);
	}
}
