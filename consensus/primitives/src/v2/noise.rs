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
//!
//! Within each chunk of `r` columns the selections are a permutation of
//! `0..r`, independently for `S` and `S'`. Independent uniform selections
//! would repeat columns inside a chunk, and a miner with zero matrices could
//! then cover the chunk's `r` (column, column) pairs with about `0.55 r`
//! terms (a minimum vertex cover), buying its tickets at about half price.
//! A permutation on each side makes the pairs a perfect matching, whose
//! smallest cover is all `r`.

use crate::{params::ChallengeParams, Hash32};
use alloc::vec::Vec;
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
/// Context for the column selections `s` of `A`'s noise.
pub const CTX_SELECT_A: &str = "mlpow v2 select A";
/// Context for the column selections `s'` of `Bt`'s noise.
pub const CTX_SELECT_BT: &str = "mlpow v2 select B";

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

/// The index of the first value of `values` outside `-64..=63`, if any.
/// Miners check every piece they commit, so this is one OR of `v + 64` over
/// each stretch of 16 KiB (its top bit is clear exactly in range; no early
/// exit inside a stretch, so it vectorises), and the position is looked for
/// only in a stretch that fails.
pub fn first_out_of_range(values: &[i8]) -> Option<usize> {
	const STRETCH: usize = 1 << 14;
	for (s, part) in values.chunks(STRETCH).enumerate() {
		if part.iter().fold(0u8, |bits, &v| bits | (v as u8).wrapping_add(64)) & 0x80 != 0 {
			return part.iter().position(|&v| !in_range(v)).map(|i| s * STRETCH + i);
		}
	}
	None
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
	/// Commits to `A`: its Merkle root, or the job seed.
	pub a: Hash32,
	/// Commits to `Bt`: its Merkle root, or the weights seed.
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
/// `Bt`'s, each a column of `0..r`, a permutation of `0..r` within every
/// chunk of `r` columns.
pub struct Selections {
	/// `s`: `A`'s noise column for each of the `k` columns.
	pub a: Vec<u8>,
	/// `s'`: `Bt`'s noise column for each of the `k` columns.
	pub bt: Vec<u8>,
}

impl Selections {
	/// Both selections of the nonce with `noise_seed` (`r` divides `k`).
	pub fn generate(noise_seed: &Hash32, k: u32, r: u32) -> Self {
		Self {
			a: chunk_permutations(CTX_SELECT_A, noise_seed, k as usize, r as usize),
			bt: chunk_permutations(CTX_SELECT_BT, noise_seed, k as usize, r as usize),
		}
	}
}

/// `k / r` permutations of `0..r` (`r <= 256`), one per chunk, in order,
/// from the byte stream `xof(context, seed)` read from its start: for each
/// chunk, a Fisher-Yates shuffle of `[0, 1, .., r-1]` that for `i` from
/// `r - 1` down to 1 swaps entry `i` with entry `j`, where `j` is the first
/// next byte `b` with `b < 256 - 256 mod (i + 1)`, taken mod `i + 1`
/// (rejection sampling: every `j` in `0..=i` equally likely).
pub fn chunk_permutations(context: &str, seed: &Hash32, k: usize, r: usize) -> Vec<u8> {
	let mut out = Vec::with_capacity(k);
	if r == 0 || r > 256 {
		return out;
	}
	let mut h = blake3::Hasher::new_derive_key(context);
	h.update(seed);
	let mut reader = h.finalize_xof();
	let mut buf = [0u8; 256];
	let mut pos = buf.len();
	let mut next = || {
		if pos == buf.len() {
			reader.fill(&mut buf);
			pos = 0;
		}
		pos += 1;
		buf[pos - 1]
	};
	for _ in 0..k / r {
		let mut perm: Vec<u8> = (0..r).map(|q| q as u8).collect();
		for i in (1..r).rev() {
			let span = i as u32 + 1;
			let limit = 256 - 256 % span;
			let j = loop {
				let b = next() as u32;
				if b < limit {
					break b % span;
				}
			};
			perm.swap(i, j as usize);
		}
		out.extend_from_slice(&perm);
	}
	out
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
	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	if [32, 64, 128].contains(&r) && std::is_x86_feature_detected!("avx2") {
		let ptr = rows.as_mut_ptr();
		// SAFETY: AVX2 is present; source and destination are the same rows,
		// and each 32-byte block is read before it is written.
		unsafe { x86::noisy_rows_avx2(ptr, ptr, rows.len(), left, sel, r) };
		return;
	}
	add_noise_portable(rows, left, sel, r)
}

/// `dst = src` plus the noise, in one pass (what a miner does per nonce:
/// the clean matrix stays as it is for the next nonce).
///
/// # Panics
/// If `dst` and `src` differ in length (a caller bug).
pub fn noisy_copy(dst: &mut [i8], src: &[i8], left: &[i8], sel: &[u8], r: usize) {
	assert_eq!(dst.len(), src.len(), "noisy_copy of unequal lengths");
	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	if [32, 64, 128].contains(&r) && std::is_x86_feature_detected!("avx2") {
		// SAFETY: AVX2 is present; both slices have `dst.len()` bytes and do
		// not overlap (one is borrowed mutably).
		unsafe { x86::noisy_rows_avx2(src.as_ptr(), dst.as_mut_ptr(), dst.len(), left, sel, r) };
		return;
	}
	dst.copy_from_slice(src);
	add_noise_portable(dst, left, sel, r)
}

/// [`add_noise`] one element at a time (what the Wasm runtime runs).
pub fn add_noise_portable(rows: &mut [i8], left: &[i8], sel: &[u8], r: usize) {
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

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
	use core::arch::x86_64::*;

	/// A row's `r` noise values are a lookup table, and the selections (the
	/// same for every row) index it: `vpshufb` looks up 16-entry quarters of
	/// the table for 32 columns at once, and bits 4.. of each index choose
	/// among the quarters by a tree of `vpblendvb`.
	///
	/// Writes `len` bytes at `dst`: those at `src` plus the noise of their
	/// rows (rows of `sel.len()` bytes). `src` may equal `dst`.
	#[target_feature(enable = "avx2")]
	pub(super) unsafe fn noisy_rows_avx2(src: *const i8, dst: *mut i8, len: usize, left: &[i8], sel: &[u8], r: usize) {
		let k = sel.len();
		if k == 0 {
			return;
		}
		let tables = r / 16; // 2, 4 or 8, a power of two
		let whole = k / 32 * 32;
		for (x, l) in (0..len / k).zip(left.chunks_exact(r)) {
			let (row_in, row_out) = (src.add(x * k), dst.add(x * k));
			let mut t = [_mm256_setzero_si256(); 8];
			for (i, q) in t.iter_mut().enumerate().take(tables) {
				// SAFETY: 16 bytes at 16 * i < r = l.len().
				*q = _mm256_broadcastsi128_si256(_mm_loadu_si128(l.as_ptr().add(16 * i) as *const __m128i));
			}
			for z in (0..whole).step_by(32) {
				// SAFETY: 32 bytes at z < whole <= k of `sel` and of `row`.
				let idx = _mm256_loadu_si256(sel.as_ptr().add(z) as *const __m256i);
				let mut v = [_mm256_setzero_si256(); 8];
				for i in 0..tables {
					v[i] = _mm256_shuffle_epi8(t[i], idx);
				}
				// Bit 4 + level of each index, moved to its byte's top bit.
				let masks = [_mm256_slli_epi16::<3>(idx), _mm256_slli_epi16::<2>(idx), _mm256_slli_epi16::<1>(idx)];
				let mut width = tables;
				for mask in masks {
					if width == 1 {
						break;
					}
					for i in 0..width / 2 {
						v[i] = _mm256_blendv_epi8(v[2 * i], v[2 * i + 1], mask);
					}
					width /= 2;
				}
				let v_in = _mm256_loadu_si256(row_in.add(z) as *const __m256i);
				_mm256_storeu_si256(row_out.add(z) as *mut __m256i, _mm256_add_epi8(v_in, v[0]));
			}
			for z in whole..k {
				*row_out.add(z) = (*row_in.add(z)).wrapping_add(l[sel[z] as usize & (r - 1)]);
			}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use alloc::{vec, vec::Vec};

	#[test]
	fn the_first_value_out_of_range_is_found_in_any_stretch() {
		assert_eq!(first_out_of_range(&[]), None);
		let mut v = vec![0i8; 3 * (1 << 14) + 5];
		for (i, x) in v.iter_mut().enumerate() {
			*x = [-64, 63, 0, -1][i % 4];
		}
		assert_eq!(first_out_of_range(&v), None);
		for bad in [64i8, -65, 127, -128] {
			for at in [0, 1 << 14, (1 << 14) - 1, 2 * (1 << 14) + 7, v.len() - 1] {
				let (mut w, last) = (v.clone(), v.len() - 1);
				w[at] = bad;
				if at != last {
					w[last] = bad; // a later one too: the first is the one reported
				}
				assert_eq!(first_out_of_range(&w), Some(at), "{bad} at {at}");
			}
		}
	}

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
	fn vector_and_portable_noise_agree() {
		for r in [32usize, 64, 128] {
			let k = 300; // a tail after the 32-column blocks
			let sel: Vec<u8> = (0..k).map(|z| (z * 37 % 251) as u8 & (r as u8 - 1)).collect();
			let left: Vec<i8> = (0..3 * r).map(|v| to_7bit((v * 91) as u8)).collect();
			let rows: Vec<i8> = (0..3 * k).map(|v| to_7bit((v * 13) as u8)).collect();
			let (mut fast, mut slow, mut copied) = (rows.clone(), rows.clone(), vec![0i8; rows.len()]);
			add_noise(&mut fast, &left, &sel, r);
			add_noise_portable(&mut slow, &left, &sel, r);
			noisy_copy(&mut copied, &rows, &left, &sel, r);
			assert_eq!(fast, slow, "r = {r}");
			assert_eq!(copied, slow, "r = {r}");
		}
	}

	#[test]
	fn selections_are_a_permutation_in_every_chunk() {
		for r in [32u32, 64, 128] {
			let s = Selections::generate(&[1; 32], 4096, r);
			assert_eq!((s.a.len(), s.bt.len()), (4096, 4096));
			assert_ne!(s.a, s.bt);
			for sel in [&s.a, &s.bt] {
				for chunk in sel.chunks(r as usize) {
					let mut seen = chunk.to_vec();
					seen.sort();
					assert_eq!(seen, (0..r).map(|q| q as u8).collect::<Vec<_>>(), "r = {r}");
				}
				// Chunks differ (no cacheable repetition).
				assert_ne!(&sel[..r as usize], &sel[r as usize..2 * r as usize]);
			}
		}
	}

	#[test]
	fn fisher_yates_is_uniform_on_small_r() {
		// Over many seeds, each of the 3! orders of r = 3 appears about as often.
		let mut counts = std::collections::BTreeMap::new();
		for seed in 0..6000u32 {
			let mut s = [0u8; 32];
			s[..4].copy_from_slice(&seed.to_le_bytes());
			*counts.entry(chunk_permutations(CTX_SELECT_A, &s, 3, 3)).or_insert(0) += 1;
		}
		assert_eq!(counts.len(), 6);
		assert!(counts.values().all(|&c| (850..1150).contains(&c)), "{counts:?}");
	}
}
