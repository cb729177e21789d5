//! v2 seeds, the seeded matrices, and the low-rank noise (SPEC.md, "Puzzle v2").
//!
//! All of it is BLAKE3 `derive_key` output, as in v1, under v2's own
//! contexts. A stream byte `b` becomes the 7-bit value `(b as i8) >> 1`
//! (arithmetic shift), uniform over `-64..=63`.
//!
//! The noise of one nonce is `E = E_L * S` on `A` and `G = G_L * S'` on
//! `Bt`: `E_L` (`m x r`) and `G_L` (`n x r`) are dense 7-bit matrices, and
//! `S`, `S'` (`r x k`) select one of the `r` columns for each of the `k`
//! columns. So `E[x][z] = E_L[x][s_z]`: rank `r`, one addition per element
//! to apply, and a verifier generates it for its `t` rows in `O(t * r + k)`.

use crate::{params::ChallengeParams, Hash32};
use alloc::{vec, vec::Vec};
use codec::Encode;

/// Context for the seeded `A` (`m x k`) of a header.
pub const CTX_A: &str = "mlpow v2 activations";
/// Context for the seeded `Bt` (`n x k`) of an epoch.
pub const CTX_BT: &str = "mlpow v2 weights";
/// Context for the noise seed of one nonce.
pub const CTX_NOISE_SEED: &str = "mlpow v2 noise seed";
/// Context for `E_L` (`m x r`), the noise on `A`.
pub const CTX_NOISE_A: &str = "mlpow v2 noise A";
/// Context for `G_L` (`n x r`), the noise on `Bt`.
pub const CTX_NOISE_BT: &str = "mlpow v2 noise B";
/// Context for the column selections `s` and `s'` (`2k` bytes).
pub const CTX_SELECT: &str = "mlpow v2 noise select";

/// Smallest input value (of `A`, `Bt`, `E_L` and `G_L`).
pub const INPUT_MIN: i8 = -64;
/// Largest input value; inputs plus noise stay within `-128..=126`.
pub const INPUT_MAX: i8 = 63;

/// A stream byte as a 7-bit value.
#[inline(always)]
pub fn to_7bit(b: u8) -> i8 {
	(b as i8) >> 1
}

/// Whether `v` is an allowed input value.
#[inline(always)]
pub fn in_range(v: i8) -> bool {
	(INPUT_MIN..=INPUT_MAX).contains(&v)
}

/// Where the matrices of a v2 seal come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
	/// `A` from the header's job seed, `Bt` from the epoch's weights seed:
	/// nothing to open, the seal stays small.
	Seeded = 0,
	/// The miner's own `A` and `Bt`, committed by Merkle roots; a winning
	/// seal opens its tile's rows.
	Chosen = 1,
}

/// What the noise seed binds the matrices by: the Merkle roots of `A` and
/// `Bt` (chosen), or the job seed and weights seed (seeded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commitments {
	pub a: Hash32,
	pub bt: Hash32,
}

/// The noise seed of one nonce:
/// `derive_key(CTX_NOISE_SEED, pre_hash || SCALE(params) || mode u8 || commit_a || commit_bt || nonce u64 LE)`.
/// Everything the miner could vary is in it, so new noise costs a new seed,
/// and no noise can be known before the header and the matrices are fixed.
pub fn noise_seed(pre_hash: &Hash32, params: &ChallengeParams, mode: Mode, c: &Commitments, nonce: u64) -> Hash32 {
	let mut h = blake3::Hasher::new_derive_key(CTX_NOISE_SEED);
	h.update(pre_hash);
	h.update(&params.encode());
	h.update(&[mode as u8]);
	h.update(&c.a);
	h.update(&c.bt);
	h.update(&nonce.to_le_bytes());
	*h.finalize().as_bytes()
}

/// Fills `out` with the 7-bit values of stream `XOF(derive_key(context, seed))`
/// from byte `first * row_len` on: whole rows of a matrix with rows of `row_len`.
pub fn stream_rows(context: &str, seed: &Hash32, row_len: u32, first: u32, out: &mut [i8]) {
	let mut h = blake3::Hasher::new_derive_key(context);
	h.update(seed);
	let mut reader = h.finalize_xof();
	reader.set_position(first as u64 * row_len as u64);
	let mut buf = [0u8; 1024];
	for chunk in out.chunks_mut(buf.len()) {
		let bytes = &mut buf[..chunk.len()];
		reader.fill(bytes);
		for (v, &b) in chunk.iter_mut().zip(bytes.iter()) {
			*v = to_7bit(b);
		}
	}
}

/// Rows `first..` of the seeded `A` of a header (`job_seed` as in v1).
pub fn seeded_a(job_seed: &Hash32, k: u32, first: u32, out: &mut [i8]) {
	stream_rows(CTX_A, job_seed, k, first, out)
}

/// Rows `first..` of the seeded `Bt` of an epoch.
pub fn seeded_bt(weights_seed: &Hash32, k: u32, first: u32, out: &mut [i8]) {
	stream_rows(CTX_BT, weights_seed, k, first, out)
}

/// One nonce's column selections: `s_z` for `A`'s noise and `s'_z` for
/// `Bt`'s, each a column of `0..r`. Byte `z` and byte `k + z` of the
/// selection stream, reduced mod `r` (a power of two, so unbiased).
pub struct Selections {
	pub a: Vec<u8>,
	pub bt: Vec<u8>,
}

impl Selections {
	pub fn generate(noise_seed: &Hash32, k: u32, r: u32) -> Self {
		let k = k as usize;
		let mut bytes = vec![0u8; 2 * k];
		let mut h = blake3::Hasher::new_derive_key(CTX_SELECT);
		h.update(noise_seed);
		h.finalize_xof().fill(&mut bytes);
		let mask = (r.max(1) - 1) as u8;
		for b in bytes.iter_mut() {
			*b &= mask;
		}
		let bt = bytes.split_off(k);
		Self { a: bytes, bt }
	}
}

/// Rows `first..` of `E_L` (`m x r`): the noise factor of `A`.
pub fn noise_a_rows(noise_seed: &Hash32, r: u32, first: u32, out: &mut [i8]) {
	stream_rows(CTX_NOISE_A, noise_seed, r, first, out)
}

/// Rows `first..` of `G_L` (`n x r`): the noise factor of `Bt`.
pub fn noise_bt_rows(noise_seed: &Hash32, r: u32, first: u32, out: &mut [i8]) {
	stream_rows(CTX_NOISE_BT, noise_seed, r, first, out)
}

/// `rows[x][z] += left[x][sel[z]]` for every row: adds the noise to whole
/// rows (`rows` is `count x k`, `left` is `count x r`). For inputs in range
/// the sums lie in `-128..=126`; wrapping keeps it total for any bytes.
pub fn add_noise(rows: &mut [i8], left: &[i8], sel: &[u8], r: usize) {
	let k = sel.len();
	if k == 0 || r == 0 {
		return;
	}
	for (row, l) in rows.chunks_exact_mut(k).zip(left.chunks_exact(r)) {
		for (v, &s) in row.iter_mut().zip(sel) {
			*v = v.wrapping_add(l[s as usize & (r - 1)]);
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn seven_bit_map_is_uniform_and_in_range() {
		let mut counts = [0u32; 128];
		for b in 0..=255u8 {
			let v = to_7bit(b);
			assert!(in_range(v));
			counts[(v as i32 + 64) as usize] += 1;
		}
		assert!(counts.iter().all(|&c| c == 2));
	}

	#[test]
	fn stream_rows_seek_like_reading_through() {
		let seed = [5u8; 32];
		let mut all = vec![0i8; 7 * 48];
		stream_rows(CTX_A, &seed, 48, 0, &mut all);
		let mut row = vec![0i8; 48];
		stream_rows(CTX_A, &seed, 48, 5, &mut row);
		assert_eq!(&row[..], &all[5 * 48..6 * 48]);
		let mut plain = [0u8; 7 * 48];
		let mut h = blake3::Hasher::new_derive_key(CTX_A);
		h.update(&seed);
		h.finalize_xof().fill(&mut plain);
		assert!(plain.iter().zip(&all).all(|(&b, &v)| to_7bit(b) == v));
	}

	#[test]
	fn noise_stays_in_int8() {
		let mut rows = vec![INPUT_MIN; 64];
		add_noise(&mut rows, &[INPUT_MIN; 32], &[3; 64], 32);
		assert!(rows.iter().all(|&v| v == -128));
		let mut rows = vec![INPUT_MAX; 64];
		add_noise(&mut rows, &[INPUT_MAX; 32], &[31; 64], 32);
		assert!(rows.iter().all(|&v| v == 126));
	}

	#[test]
	fn selections_are_below_r() {
		let s = Selections::generate(&[1; 32], 4096, 64);
		assert_eq!((s.a.len(), s.bt.len()), (4096, 4096));
		assert!(s.a.iter().chain(&s.bt).all(|&v| v < 64));
		assert_ne!(s.a, s.bt);
		// Every column of E_L is used, so the noise has full rank r.
		assert!((0..64u8).all(|q| s.a.contains(&q) && s.bt.contains(&q)));
	}
}
