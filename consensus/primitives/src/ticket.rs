//! Tickets: the digest of one product tile, and whether it wins.
//!
//! A tile is hashed whole with a keyed cryptographic hash. Any cheaper
//! fingerprint (a sum, the XOR of low bits) is linear in the product and can
//! be computed from row and column sums of `A` and `Bt` without multiplying,
//! which would break "the work is GEMM".

use crate::{stream::Context, stream::CTX_TILE_KEY, Hash32, U256};

/// Hashes tiles of one nonce; holds the pre-hashed key context so each tile
/// costs one compression for its key plus the tile bytes.
pub struct TileHasher {
	ctx: Context,
}

impl Default for TileHasher {
	fn default() -> Self {
		Self::new()
	}
}

impl TileHasher {
	/// A hasher with the tile-key context pre-hashed.
	pub fn new() -> Self {
		Self { ctx: Context::new(CTX_TILE_KEY) }
	}

	/// The key of tile `(i, j)`:
	/// `derive_key(CTX_TILE_KEY, job_seed || nonce u64 LE || i u32 LE || j u32 LE)`.
	pub fn tile_key(&self, job_seed: &Hash32, nonce: u64, i: u32, j: u32) -> Hash32 {
		self.ctx.derive(&[job_seed, &nonce.to_le_bytes(), &i.to_le_bytes(), &j.to_le_bytes()])
	}

	/// `keyed_hash(tile_key, tile)` where the tile is `t` rows of `t` `i32`s,
	/// little-endian, row-major. `rows` yields the tile's rows (each exactly
	/// `t` long); they may be slices of a larger product.
	pub fn digest<'a>(
		&self,
		job_seed: &Hash32,
		nonce: u64,
		i: u32,
		j: u32,
		rows: impl Iterator<Item = &'a [i32]>,
	) -> Hash32 {
		let key = self.tile_key(job_seed, nonce, i, j);
		let mut h = blake3::Hasher::new_keyed(&key);
		// Serialise through a small buffer so big-endian hosts hash the same
		// bytes; BLAKE3 is fastest when fed whole 64-byte blocks or more.
		let mut buf = [0u8; 256];
		for row in rows {
			for chunk in row.chunks(buf.len() / 4) {
				for (dst, v) in buf.chunks_exact_mut(4).zip(chunk) {
					dst.copy_from_slice(&v.to_le_bytes());
				}
				h.update(&buf[..chunk.len() * 4]);
			}
		}
		*h.finalize().as_bytes()
	}
}

/// Digest of a compact `t x t` tile (row-major, `tile.len() == t*t`).
pub fn tile_digest(job_seed: &Hash32, nonce: u64, i: u32, j: u32, t: u32, tile: &[i32]) -> Hash32 {
	TileHasher::new().digest(job_seed, nonce, i, j, tile.chunks(t.max(1) as usize))
}

/// The largest winning ticket value: `floor((2^256 - 1) / difficulty)`.
/// `None` for difficulty zero, which no chain may use.
pub fn target(difficulty: U256) -> Option<U256> {
	if difficulty.is_zero() {
		None
	} else {
		Some(U256::MAX / difficulty)
	}
}

/// A digest is a ticket value read as a big-endian 256-bit integer; it wins
/// when it is at most the target. With difficulty `d`, a uniformly random
/// digest wins with probability `~1/d`, so `d` is the expected number of
/// tickets per block.
pub fn meets_target(digest: &Hash32, difficulty: U256) -> bool {
	match target(difficulty) {
		Some(t) => U256::from_big_endian(digest) <= t,
		None => false,
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn target_edges() {
		assert_eq!(target(U256::zero()), None);
		assert_eq!(target(U256::one()), Some(U256::MAX));
		assert!(meets_target(&[0xff; 32], U256::one()));
		assert!(!meets_target(&[0; 32], U256::zero()));
		// difficulty 2: values up to 2^255 - 1 win.
		let mut half = [0xff; 32];
		half[0] = 0x7f;
		assert!(meets_target(&half, U256::from(2)));
		half[0] = 0x80;
		half[31] = 0;
		assert!(!meets_target(&half, U256::from(2)));
		assert!(meets_target(&[0; 32], U256::MAX));
	}

	#[test]
	fn digest_of_rows_equals_digest_of_compact_tile() {
		let t = 16usize;
		let big: alloc::vec::Vec<i32> = (0..(t * 3 * t) as i32).map(|x| x.wrapping_mul(-7919)).collect();
		// Tile column 1 of a 16 x 48 product.
		let rows = (0..t).map(|r| &big[r * 3 * t + t..][..t]);
		let compact: alloc::vec::Vec<i32> = (0..t).flat_map(|r| big[r * 3 * t + t..][..t].to_vec()).collect();
		let seed = [3u8; 32];
		assert_eq!(TileHasher::new().digest(&seed, 5, 0, 1, rows), tile_digest(&seed, 5, 0, 1, 16, &compact));
	}

	#[test]
	fn digest_is_plain_blake3() {
		let seed = [4u8; 32];
		let tile: alloc::vec::Vec<i32> = (0..256).map(|x| x * 1000 - 77).collect();
		let mut material = alloc::vec::Vec::new();
		material.extend_from_slice(&seed);
		material.extend_from_slice(&9u64.to_le_bytes());
		material.extend_from_slice(&2u32.to_le_bytes());
		material.extend_from_slice(&3u32.to_le_bytes());
		let key = blake3::derive_key(CTX_TILE_KEY, &material);
		let bytes: alloc::vec::Vec<u8> = tile.iter().flat_map(|v| v.to_le_bytes()).collect();
		assert_eq!(tile_digest(&seed, 9, 2, 3, 16, &tile), *blake3::keyed_hash(&key, &bytes).as_bytes());
	}
}
