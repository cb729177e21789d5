//! Removing one nonce's noise from the noisy product (the miner's side; no
//! verifier runs this).
//!
//! `C = C' - (A * S'^T) * G_L^T - E_L * (S * Bt'^T)`: two products of inner
//! dimension `r` once the selected column sums `A * S'^T` (`m x r`) and
//! `Bt' * S^T` (`n x r`) are known. A sum of selected columns is, row by
//! row, a permutation of each chunk of `r` values (the selections are a
//! permutation of `0..r` within every chunk) added up over the chunks: on a
//! CPU with AVX-512 VBMI one `vpermi2b` a 64-byte window, on the matrices as
//! they are, row-major, with no transpose.

use super::{fused::Fused, noise::Selections, paired};
use alloc::{vec, vec::Vec};
pub use paired::AddInto;

/// `out[x * r + q]` = the sum of `mat[x * k + z]` over the `z` with
/// `sel[z] == q`: every row's columns summed by their selection
/// (`mat` is `rows x k`, `sel` has `k` entries below `r`, `out` is
/// `rows x r`). Wrapping, like the product it corrects.
///
/// # Panics
/// On lengths that do not match (a caller bug).
pub fn selected_sums(mat: &[i8], rows: usize, k: usize, r: usize, sel: &[u8], out: &mut [i32]) {
	let ok = rows.checked_mul(k) == Some(mat.len()) && rows.checked_mul(r) == Some(out.len());
	assert!(ok && sel.len() == k && r > 0 && k > 0, "selected_sums: lengths");
	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	if [32, 64, 128].contains(&r) && k.is_multiple_of(r) {
		if let Some(windows) = vbmi::Windows::new(sel, r) {
			// SAFETY: `Windows::new` returns only where AVX-512 VBMI is
			// present, and the lengths were checked just above.
			return unsafe { windows.sums(mat, rows, out) };
		}
		if let Some(shuffles) = avx2::Shuffles::new(sel, r) {
			// SAFETY: as above, for AVX2.
			return unsafe { shuffles.sums(mat, rows, out) };
		}
	}
	selected_sums_portable(mat, k, r, sel, out)
}

/// For each chunk of `r` selections, where in the chunk each selection
/// value sits: `inv[ch * r + q] = j` with `sel[ch * r + j] = q`. `None`
/// unless every chunk is a permutation of `0..r` (`r <= 256`).
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(dead_code))]
fn inverses(sel: &[u8], r: usize) -> Option<Vec<u8>> {
	if r == 0 || r > 256 || !sel.len().is_multiple_of(r) {
		return None;
	}
	let mut inv = vec![0u8; sel.len()];
	for (chunk, inv) in sel.chunks_exact(r).zip(inv.chunks_exact_mut(r)) {
		let mut seen = [false; 256];
		for (j, &q) in chunk.iter().enumerate() {
			let q = q as usize;
			if q >= r || seen[q] {
				return None;
			}
			seen[q] = true;
			inv[q] = j as u8;
		}
	}
	Some(inv)
}

/// [`selected_sums`] one value at a time.
///
/// # Panics
/// On a selection not below `r` (a caller bug).
pub fn selected_sums_portable(mat: &[i8], k: usize, r: usize, sel: &[u8], out: &mut [i32]) {
	for (row, sums) in mat.chunks_exact(k).zip(out.chunks_exact_mut(r)) {
		sums.iter_mut().for_each(|s| *s = 0);
		for (&v, &q) in row.iter().zip(sel) {
			sums[q as usize] = sums[q as usize].wrapping_add(v as i32);
		}
	}
}

/// The shape and matrices a nonce's noise is removed with.
pub struct Noise<'a> {
	/// Rows of `A` and of the product.
	pub m: usize,
	/// Rows of `Bt`, columns of the product.
	pub n: usize,
	/// The noise's rank, and the transcript's chunk length.
	pub r: usize,
	/// Chunks of `r` in `k`.
	pub chunks: usize,
	/// The nonce's selections `s` (of `A`'s noise) and `s'` (of `Bt`'s).
	pub sel: &'a Selections,
	/// `E_L`, `m x r`.
	pub e_l: &'a [i8],
	/// `G_L`, `n x r`.
	pub g_l: &'a [i8],
}

/// The exact `A * Bt^T` from the noisy product `c = A' * Bt'^T`:
/// `c - A * G^T - E * Bt'^T`. `a` is the clean `A` (`m x k`), `bt_noisy`
/// the noisy `Bt'` (`n x k`) the product was taken with.
///
/// # Panics
/// On lengths that do not match the shape, or more than 256 chunks (the
/// rules allow at most 128: `k <= r * r`, `r <= 128`): caller bugs.
pub fn remove(kernel: Fused, nz: &Noise, a: &[i8], bt_noisy: &[i8], c: &[i32]) -> Vec<i32> {
	let (left, right) = corrections(nz, a, bt_noisy, c);
	let (m, n) = (nz.m, nz.n);
	// Straight into a new product: no copy of `c` first, no zeroing.
	let mut exact = Vec::with_capacity(m * n);
	paired::store(kernel, &left, &right, (m, n, nz.r), c, &mut exact.spare_capacity_mut()[..m * n]);
	// SAFETY: `paired::store` wrote all `m * n` elements.
	unsafe { exact.set_len(m * n) };
	exact
}

/// [`remove`], added into a block of a larger matrix instead of returned:
/// `into.out[x * into.stride + y] += (A * Bt^T)[x][y]` for `x` below
/// `into.rows` and `y` below `into.cols` (a padded piece's rows and
/// columns past them are not computed). The miner's product goes straight
/// into the caller's output, with no `m x n` matrix in between.
///
/// # Panics
/// As [`remove`], and on a block larger than the product or than
/// `into.out` (caller bugs).
pub fn add_exact(kernel: Fused, nz: &Noise, a: &[i8], bt_noisy: &[i8], c: &[i32], into: AddInto) {
	let (left, right) = corrections(nz, a, bt_noisy, c);
	paired::add(kernel, &left, &right, (nz.m, nz.n, nz.r), c, into);
}

/// Checks the shapes, and gives the two corrections as one product's
/// operands: `left` (`m x r` pairs) and `right` (`n x r` pairs), so that
/// the exact product is `c - left * right^T` on 16-bit pairs.
fn corrections(nz: &Noise, a: &[i8], bt_noisy: &[i8], c: &[i32]) -> (Vec<u32>, Vec<u32>) {
	let Noise { m, n, r, chunks, sel, e_l, g_l } = *nz;
	let len = |x: usize, y: usize| x.checked_mul(y);
	let k = len(chunks, r).unwrap_or(0);
	let ok = k > 0
		&& chunks <= 256
		&& sel.a.len() == k
		&& sel.bt.len() == k
		&& len(m, k) == Some(a.len())
		&& len(n, k) == Some(bt_noisy.len())
		&& len(m, r) == Some(e_l.len())
		&& len(n, r) == Some(g_l.len())
		&& len(m, n) == Some(c.len());
	assert!(ok, "denoise: shapes");
	// as_sel[x][q] = sum of A[x][z] over z with s'_z = q, so that
	// (A * G^T)[x][y] = sum_q as_sel[x][q] * G_L[y][q]; likewise
	// bs_sel[y][q] = sum of Bt'[y][z] over s_z = q for (E * Bt'^T).
	let mut as_sel = vec![0i32; m * r];
	selected_sums(a, m, k, r, &sel.bt, &mut as_sel);
	let mut bs_sel = vec![0i32; n * r];
	selected_sums(bt_noisy, n, k, r, &sel.a, &mut bs_sel);
	// Each selection value occurs exactly once per chunk, so a column sum
	// has k/r terms: |A * S'^T| <= 64 k/r and S * Bt'^T within
	// -128 k/r ..= 126 k/r. For k/r <= 256 both fit 16 bits, and the two
	// corrections are one product of inner dimension 2r on 16-bit pairs:
	//   left[x] = [as_sel[x], E_L[x]],  right[y] = [G_L[y], bs_sel[y]].
	let mut row: Vec<i16> = Vec::with_capacity(2 * r);
	let mut left = Vec::with_capacity(m * r);
	for (s, e) in as_sel.chunks_exact(r).zip(e_l.chunks_exact(r)) {
		row.clear();
		row.extend(s.iter().map(|&v| v as i16).chain(e.iter().map(|&v| v as i16)));
		left.extend(pairs(&row));
	}
	let mut right = Vec::with_capacity(n * r);
	for (g, b) in g_l.chunks_exact(r).zip(bs_sel.chunks_exact(r)) {
		row.clear();
		row.extend(g.iter().map(|&v| v as i16).chain(b.iter().map(|&v| v as i16)));
		right.extend(pairs(&row));
	}
	(left, right)
}

/// 16-bit values as pairs in 32 bits, low half first.
fn pairs(v: &[i16]) -> impl Iterator<Item = u32> + '_ {
	v.chunks_exact(2).map(|p| (p[0] as u16 as u32) | ((p[1] as u16 as u32) << 16))
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod vbmi {
	use core::arch::x86_64::*;
	use std::{vec, vec::Vec};

	/// Windows of 16-bit running sums before they are added into 32 bits:
	/// a lane gains one value of at most 128 a window.
	const FLUSH: usize = 128;

	/// A selection as byte permutations of 64- or 128-byte windows of a
	/// row: lane `l` of window `w` takes the row's byte `w * width +
	/// index[w][l]`, chosen so that lane `l` collects selection `l % r`.
	pub(super) struct Windows {
		k: usize,
		r: usize,
		/// 64 (`r` of 32 or 64: one or two chunks a window) or 128 (`r` = 128).
		width: usize,
		/// `width` indices a window, 64 per vector.
		index: Vec<[u8; 64]>,
	}

	impl Windows {
		/// The windows of `sel`, where AVX-512 VBMI is present and `sel` is
		/// a permutation of `0..r` in every chunk (a selection that is not
		/// leaves it to the portable loop); `r` is 32, 64 or 128.
		pub(super) fn new(sel: &[u8], r: usize) -> Option<Self> {
			let present = std::is_x86_feature_detected!("avx512f")
				&& std::is_x86_feature_detected!("avx512bw")
				&& std::is_x86_feature_detected!("avx512vbmi");
			let k = sel.len();
			if !present {
				return None;
			}
			let inv = super::inverses(sel, r)?;
			let width = r.max(64);
			let windows = k.div_ceil(width);
			// Lanes past the row's end (the last window of an odd number of
			// 32-wide chunks) read bytes the masked load zeroed.
			let mut index = vec![[0u8; 64]; windows * width / 64];
			for (lane, slot) in index.iter_mut().flat_map(|v| v.iter_mut()).enumerate() {
				*slot = (lane % width) as u8;
			}
			for (ch, inv) in inv.chunks_exact(r).enumerate() {
				let (w, base) = (ch * r / width, ch * r % width);
				for (q, &j) in inv.iter().enumerate() {
					let lane = w * width + base + q;
					index[lane / 64][lane % 64] = (base + j as usize) as u8;
				}
			}
			Some(Self { k, r, width, index })
		}

		/// [`super::selected_sums`] of `mat` (`rows x k`) into `out` (`rows x r`).
		///
		/// # Safety
		/// AVX-512 F, BW and VBMI present; `mat.len() == rows * k`,
		/// `out.len() == rows * r`.
		#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
		pub(super) unsafe fn sums(&self, mat: &[i8], rows: usize, out: &mut [i32]) {
			let (k, r, width) = (self.k, self.r, self.width);
			for x in 0..rows {
				// SAFETY: row x of `k` bytes lies in `mat`.
				let row = mat.as_ptr().add(x * k);
				let mut wide = [0i32; 128];
				if width == 128 {
					self.row_sums::<2>(row, &mut wide);
				} else {
					self.row_sums::<1>(row, &mut wide);
				}
				let sums = &mut out[x * r..][..r];
				sums.copy_from_slice(&wide[..r]);
				if width > r {
					for (s, &v) in sums.iter_mut().zip(&wide[r..width]) {
						*s = s.wrapping_add(v);
					}
				}
			}
		}

		/// One row's lane sums (`64 * H` lanes, `H` vectors of indices a
		/// window) into `wide`.
		///
		/// # Safety
		/// As [`Self::sums`]; `row` points at `k` readable bytes.
		#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
		unsafe fn row_sums<const H: usize>(&self, row: *const i8, wide: &mut [i32; 128]) {
			let (k, width) = (self.k, 64 * H);
			let windows = k.div_ceil(width);
			for first in (0..windows).step_by(FLUSH) {
				let mut acc = [[_mm512_setzero_si512(); 2]; H];
				for w in first..(first + FLUSH).min(windows) {
					let from = w * width;
					let mut v = [_mm512_setzero_si512(); 2];
					for (i, v) in v.iter_mut().enumerate().take(H) {
						*v = if from + 64 * (i + 1) <= k {
							// SAFETY: 64 bytes of the row.
							_mm512_loadu_si512(row.add(from + 64 * i) as *const __m512i)
						} else {
							load_row_bytes(row, k, from + 64 * i)
						};
					}
					let hi = if H == 2 { v[1] } else { v[0] };
					for (h, acc) in acc.iter_mut().enumerate() {
						// SAFETY: window w's index vector h.
						let idx = _mm512_loadu_si512(self.index.get_unchecked(w * H + h).as_ptr() as *const __m512i);
						let p = _mm512_permutex2var_epi8(v[0], idx, hi);
						let (p0, p1) = (_mm512_castsi512_si256(p), _mm512_extracti64x4_epi64::<1>(p));
						acc[0] = _mm512_add_epi16(acc[0], _mm512_cvtepi8_epi16(p0));
						acc[1] = _mm512_add_epi16(acc[1], _mm512_cvtepi8_epi16(p1));
					}
				}
				let mut lanes = [0i16; 128];
				for (i, a) in acc.iter().flatten().enumerate() {
					// SAFETY: 32 i16s at 32 * i <= 96 of `lanes`.
					_mm512_storeu_si512(lanes.as_mut_ptr().add(32 * i) as *mut __m512i, *a);
				}
				for (s, &l) in wide.iter_mut().zip(&lanes[..width]) {
					*s = s.wrapping_add(l as i32);
				}
			}
		}
	}

	/// The 64 bytes of a row from `from` on, zero past its `k` bytes.
	///
	/// # Safety
	/// AVX-512 BW present; `row` points at `k` readable bytes.
	#[inline]
	#[target_feature(enable = "avx512f,avx512bw")]
	unsafe fn load_row_bytes(row: *const i8, k: usize, from: usize) -> __m512i {
		let len = k.saturating_sub(from).min(64);
		let mask = if len == 64 { u64::MAX } else { (1u64 << len) - 1 };
		// SAFETY: the mask keeps the load to bytes `from .. from + len`
		// of the row (none when `len` is 0).
		_mm512_maskz_loadu_epi8(mask, row.add(from.min(k)))
	}
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(super) mod avx2 {
	use core::arch::x86_64::*;
	use std::{vec, vec::Vec};

	/// Chunks before the 16-bit sums are added into 32 bits (a lane gains
	/// one value of at most 128 a chunk).
	const FLUSH: usize = 128;

	/// A selection as in-lane byte shuffles (AVX2 has no byte permute
	/// across 16-byte lanes): output group `g` (16 selections) of a chunk
	/// is the OR over its source lanes `s` of `vpshufb(lane s, index)`,
	/// with the index's top bit set where the value comes from another
	/// lane. Two groups share a 32-byte vector, each source lane
	/// broadcast to both halves.
	pub struct Shuffles {
		r: usize,
		/// Per chunk, per pair of output groups, per source lane: 32 indices.
		index: Vec<[u8; 32]>,
	}

	impl Shuffles {
		/// The shuffles of `sel`, where AVX2 is present and `sel` is a
		/// permutation of `0..r` in every chunk; `r` is 32, 64 or 128.
		pub fn new(sel: &[u8], r: usize) -> Option<Self> {
			if !std::is_x86_feature_detected!("avx2") {
				return None;
			}
			let inv = super::inverses(sel, r)?;
			let lanes = r / 16;
			let mut index = vec![[0x80u8; 32]; sel.len() / r * (lanes / 2) * lanes];
			for (ch, inv) in inv.chunks_exact(r).enumerate() {
				for (q, &j) in inv.iter().enumerate() {
					let (pair, half, l) = (q / 32, q / 16 % 2, q % 16);
					let (src, at) = (j as usize / 16, j as usize % 16);
					index[(ch * lanes / 2 + pair) * lanes + src][16 * half + l] = at as u8;
				}
			}
			Some(Self { r, index })
		}

		/// [`super::selected_sums`] of `mat` (`rows x k`) into `out` (`rows x r`).
		///
		/// # Safety
		/// AVX2 present; `mat.len() == rows * k` with `k` the selection's
		/// length, `out.len() == rows * r`.
		#[target_feature(enable = "avx2")]
		pub unsafe fn sums(&self, mat: &[i8], rows: usize, out: &mut [i32]) {
			let r = self.r;
			let lanes = r / 16;
			let chunks = self.index.len() / (lanes / 2 * lanes);
			let k = chunks * r;
			for x in 0..rows {
				let mut wide = [0i32; 128];
				for first in (0..chunks).step_by(FLUSH) {
					let mut acc = [_mm256_setzero_si256(); 8];
					for ch in first..(first + FLUSH).min(chunks) {
						// SAFETY: chunk ch of row x lies in `mat`.
						let chunk = mat.as_ptr().add(x * k + ch * r);
						let mut src = [_mm256_setzero_si256(); 8];
						for (s, v) in src.iter_mut().enumerate().take(lanes) {
							*v = _mm256_broadcastsi128_si256(_mm_loadu_si128(chunk.add(16 * s) as *const __m128i));
						}
						for pair in 0..lanes / 2 {
							let base = (ch * lanes / 2 + pair) * lanes;
							let mut v = _mm256_setzero_si256();
							for (s, lane) in src.iter().enumerate().take(lanes) {
								// SAFETY: entry base + s < index.len().
								let idx =
									_mm256_loadu_si256(self.index.get_unchecked(base + s).as_ptr() as *const __m256i);
								v = _mm256_or_si256(v, _mm256_shuffle_epi8(*lane, idx));
							}
							let (lo, hi) = (_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
							acc[2 * pair] = _mm256_add_epi16(acc[2 * pair], _mm256_cvtepi8_epi16(lo));
							acc[2 * pair + 1] = _mm256_add_epi16(acc[2 * pair + 1], _mm256_cvtepi8_epi16(hi));
						}
					}
					let mut lanes16 = [0i16; 128];
					for (i, a) in acc.iter().enumerate().take(lanes) {
						// SAFETY: 16 i16s at 16 * i < 128 of `lanes16`.
						_mm256_storeu_si256(lanes16.as_mut_ptr().add(16 * i) as *mut __m256i, *a);
					}
					for (w, &l) in wide.iter_mut().zip(&lanes16[..r]) {
						*w = w.wrapping_add(l as i32);
					}
				}
				out[x * r..][..r].copy_from_slice(&wide[..r]);
			}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::v2::noise::chunk_permutations;

	use crate::kernel::lcg_matrix as matrix;

	fn check(mat: &[i8], rows: usize, k: usize, r: usize, sel: &[u8]) {
		let (mut want, mut got) = (vec![7; rows * r], vec![-7; rows * r]);
		selected_sums_portable(mat, k, r, sel, &mut want);
		selected_sums(mat, rows, k, r, sel, &mut got);
		assert_eq!(got, want, "rows {rows} k {k} r {r}");
	}

	#[test]
	fn selected_sums_agree_with_the_definition() {
		// Every rank the rules allow; for r = 32 an odd number of chunks
		// (a last window half past the row's end); values at both extremes.
		for (rows, k, r) in [(3, 96, 32), (2, 64, 32), (5, 1024, 32), (4, 4096, 64), (2, 192, 64), (3, 16384, 128)] {
			let sel = chunk_permutations("test selections", &[r as u8; 32], k, r);
			check(&matrix(rows * k, k as u64), rows, k, r, &sel);
			for v in [-128i8, 127] {
				check(&vec![v; rows * k], rows, k, r, &sel);
			}
		}
	}

	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	#[test]
	fn the_avx2_shuffles_agree_with_the_definition() {
		// Where VBMI is present `selected_sums` never takes this path, so
		// it is called here by name; 300 chunks cross its 16-bit flush.
		for (rows, k, r) in [(3, 96, 32), (2, 32 * 300, 32), (4, 4096, 64), (3, 16384, 128)] {
			let sel = chunk_permutations("test selections", &[r as u8 + 1; 32], k, r);
			let Some(shuffles) = avx2::Shuffles::new(&sel, r) else { return };
			for mat in [matrix(rows * k, k as u64 + 1), vec![-128; rows * k], vec![127; rows * k]] {
				let (mut want, mut got) = (vec![0; rows * r], vec![5; rows * r]);
				selected_sums_portable(&mat, k, r, &sel, &mut want);
				// SAFETY: AVX2 is present (`new` checked) and the lengths match.
				unsafe { shuffles.sums(&mat, rows, &mut got) };
				assert_eq!(got, want, "rows {rows} k {k} r {r}");
			}
		}
	}

	#[test]
	fn long_rows_do_not_wrap_the_16_bit_sums() {
		// 300 windows of -128: -38400 per selection, past i16.
		let (k, r) = (64 * 300, 64);
		let sel = chunk_permutations("test selections", &[1; 32], k, r);
		let mut got = vec![0; r];
		selected_sums(&vec![-128; k], 1, k, r, &sel, &mut got);
		assert_eq!(got, vec![-128 * 300; r]);
	}

	#[test]
	fn a_selection_that_is_no_permutation_is_summed_as_defined() {
		let (k, r) = (128, 64);
		let mut sel = chunk_permutations("test selections", &[2; 32], k, r);
		sel[5] = sel[6];
		check(&matrix(2 * k, 3), 2, k, r, &sel);
	}
}
