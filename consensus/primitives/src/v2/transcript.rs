//! v2's transcript: the running sums of a tile after every chunk of `r`
//! along `k`, folded into 16 words, and the ticket that hashes them.
//!
//! Each element `(x, y)` of a `t x t` tile keeps a 32-bit fold register:
//! after chunk `c` (of `k / r`) its running sum `P_c[x][y]` (the dot product
//! of the first `(c + 1) * r` columns) is XORed in. On a GPU that is one XOR
//! per accumulator register every `r` of `k`, in place. At the end the `t*t`
//! folds collapse into the 16-word state
//! `W[y mod 16] ^= rotl32(fold[x][y], x mod 32)`: a cross-thread reduction
//! done once per tile. The rotation by row keeps equal rows from cancelling.
//! The ticket is one BLAKE3 keyed hash of 72 bytes (two compressions), not
//! v1's seventeen.

use crate::Hash32;

/// Words in a tile's folded state.
pub const STATE_WORDS: usize = 16;

/// A tile's folded state.
pub type State = [u32; STATE_WORDS];

/// Context of a nonce's ticket key: `derive_key(CTX_TICKET_KEY, noise_seed)`.
pub const CTX_TICKET_KEY: &str = "mlpow v2 ticket key";

/// The key all tickets of one nonce are hashed with.
pub fn ticket_key(noise_seed: &Hash32) -> Hash32 {
	blake3::derive_key(CTX_TICKET_KEY, noise_seed)
}

/// The ticket of tile `(i, j)`: `keyed_hash(key, i u32 LE || j u32 LE || W[0..16] u32 LE)`.
pub fn ticket(key: &Hash32, i: u32, j: u32, state: &State) -> Hash32 {
	let mut msg = [0u8; 8 + 4 * STATE_WORDS];
	msg[..4].copy_from_slice(&i.to_le_bytes());
	msg[4..8].copy_from_slice(&j.to_le_bytes());
	for (dst, w) in msg[8..].chunks_exact_mut(4).zip(state) {
		dst.copy_from_slice(&w.to_le_bytes());
	}
	*blake3::keyed_hash(key, &msg).as_bytes()
}

/// Collapses a tile's `t x t` fold registers (row-major) into its state.
pub fn reduce(folds: &[u32], t: usize) -> State {
	let mut w = [0u32; STATE_WORDS];
	for (x, row) in folds.chunks_exact(t.max(1)).enumerate() {
		for (y, &f) in row.iter().enumerate() {
			w[y % STATE_WORDS] ^= f.rotate_left((x % 32) as u32);
		}
	}
	w
}

/// The reference transcript of one tile, straight from the definition:
/// `a` and `b` are the `t` noisy rows of `A'` and of `Bt'` (`t x k` each).
/// Returns the state and the tile of the full product (the last running sums).
pub fn tile_transcript(a: &[i8], b: &[i8], t: usize, k: usize, r: usize, tile: &mut [i32]) -> State {
	let mut folds = alloc::vec![0u32; t * t];
	tile.iter_mut().for_each(|v| *v = 0);
	if r == 0 {
		return reduce(&folds, t);
	}
	for chunk in 0..k / r {
		for x in 0..t {
			let ar = &a[x * k + chunk * r..][..r];
			for y in 0..t {
				let br = &b[y * k + chunk * r..][..r];
				let s = ar.iter().zip(br).fold(0i32, |s, (&p, &q)| s.wrapping_add(p as i32 * q as i32));
				let acc = &mut tile[x * t + y];
				*acc = acc.wrapping_add(s);
				folds[x * t + y] ^= *acc as u32;
			}
		}
	}
	reduce(&folds, t)
}

#[cfg(test)]
mod tests {
	use super::*;
	use alloc::vec;

	#[test]
	fn ticket_is_plain_keyed_blake3() {
		let key = [7u8; 32];
		let state: State = core::array::from_fn(|w| (w as u32).wrapping_mul(0x9e37_79b9));
		let mut msg = vec![];
		msg.extend_from_slice(&3u32.to_le_bytes());
		msg.extend_from_slice(&4u32.to_le_bytes());
		state.iter().for_each(|w| msg.extend_from_slice(&w.to_le_bytes()));
		assert_eq!(ticket(&key, 3, 4, &state), *blake3::keyed_hash(&key, &msg).as_bytes());
	}

	#[test]
	fn equal_rows_do_not_cancel() {
		let t = 16;
		let folds = vec![0xdead_beefu32; t * t];
		assert_ne!(reduce(&folds, t), [0; STATE_WORDS]);
	}

	#[test]
	fn the_last_running_sum_is_the_product() {
		let (t, k, r) = (16, 96, 32);
		let a: alloc::vec::Vec<i8> = (0..t * k).map(|v| (v * 37 % 255) as i8).collect();
		let b: alloc::vec::Vec<i8> = (0..t * k).map(|v| (v * 91 % 253) as i8).collect();
		let mut tile = vec![0; t * t];
		tile_transcript(&a, &b, t, k, r, &mut tile);
		let mut want = vec![0; t * t];
		crate::kernel::gemm_naive(&a, &b, t, t, k, &mut want);
		assert_eq!(tile, want);
	}
}
