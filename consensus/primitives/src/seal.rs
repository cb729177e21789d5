//! The seal: which nonce and which tile won. It rides in every block header.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Length of an encoded [`Seal`]: three fixed-width little-endian integers.
pub const SEAL_LEN: usize = 16;

/// A winning ticket: tile `(tile_i, tile_j)` of the product for `nonce`.
/// SCALE-encoded as `nonce: u64 LE || tile_i: u32 LE || tile_j: u32 LE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen)]
pub struct Seal {
	/// The nonce whose product holds the tile.
	pub nonce: u64,
	/// Tile row, in `0..m/t`.
	pub tile_i: u32,
	/// Tile column, in `0..n/t`.
	pub tile_j: u32,
}

impl Seal {
	/// The canonical 16-byte encoding.
	pub fn to_bytes(&self) -> [u8; SEAL_LEN] {
		let mut out = [0u8; SEAL_LEN];
		out[..8].copy_from_slice(&self.nonce.to_le_bytes());
		out[8..12].copy_from_slice(&self.tile_i.to_le_bytes());
		out[12..].copy_from_slice(&self.tile_j.to_le_bytes());
		out
	}

	/// Decodes exactly [`SEAL_LEN`] bytes; anything shorter or longer is
	/// malformed (trailing bytes would make seals malleable).
	pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
		let bytes: &[u8; SEAL_LEN] = bytes.try_into().ok()?;
		let (nonce, rest) = bytes.split_at(8);
		let (i, j) = rest.split_at(4);
		Some(Self {
			nonce: u64::from_le_bytes(nonce.try_into().ok()?),
			tile_i: u32::from_le_bytes(i.try_into().ok()?),
			tile_j: u32::from_le_bytes(j.try_into().ok()?),
		})
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn bytes_are_the_scale_encoding() {
		let s = Seal { nonce: 0x0102030405060708, tile_i: 0x0a0b0c0d, tile_j: 7 };
		assert_eq!(s.encode(), s.to_bytes().to_vec());
		assert_eq!(Seal::max_encoded_len(), SEAL_LEN);
		assert_eq!(Seal::from_bytes(&s.to_bytes()), Some(s));
		assert_eq!(Seal::decode(&mut &s.to_bytes()[..]).unwrap(), s);
	}

	#[test]
	fn wrong_lengths_are_refused() {
		assert_eq!(Seal::from_bytes(&[]), None);
		assert_eq!(Seal::from_bytes(&[0; 15]), None);
		assert_eq!(Seal::from_bytes(&[0; 17]), None);
		assert!(Seal::from_bytes(&[0; 16]).is_some());
	}
}
