//! The noise removal's product ([`super::denoise`]): `c - l * r^T` over
//! rows of 16-bit values stored as pairs (`u32`, low half first), `l` is
//! `m x kp` pairs and `r` is `n x kp`, `m` and `n` multiples of 16. The
//! result is written into a fresh matrix, or added straight into a
//! caller's larger one (a block of its output: the miner's product lands
//! where the caller wants it, with no `m x n` copy in between).
//!
//! Paths: `vpdpwssd` (AVX-512 VNNI, 32 multiply-accumulates an
//! instruction), `vpmaddwd` (AVX2), and the portable loop.

use super::fused::Fused;
use core::mem::MaybeUninit;

/// Where an exact product goes: added into the first `rows x cols` of a
/// larger row-major matrix whose rows are `stride` apart. `out` starts at
/// the block's first element (row `x`, column `y` of the product is
/// `out[x * stride + y]`); the product's rows past `rows` and columns past
/// `cols` (a padded piece's) are left out.
pub struct AddInto<'a> {
	/// The larger matrix from the block's first element on.
	pub out: &'a mut [i32],
	/// Elements from one row of `out` to the next.
	pub stride: usize,
	/// Rows of the block (at most the product's).
	pub rows: usize,
	/// Columns of the block (at most the product's, and `stride`).
	pub cols: usize,
}

impl AddInto<'_> {
	/// Whether this block fits a product of `m x n` and lies inside `out`:
	/// at least one row and column, at most `m` rows and `n` columns, rows
	/// no wider than `stride`, and the last row's end within `out`.
	pub fn fits(&self, m: usize, n: usize) -> bool {
		let AddInto { out, stride, rows, cols } = self;
		let (stride, rows, cols) = (*stride, *rows, *cols);
		rows > 0
			&& cols > 0
			&& rows <= m
			&& cols <= n
			&& cols <= stride
			&& (rows - 1).checked_mul(stride).and_then(|v| v.checked_add(cols)).is_some_and(|end| end <= out.len())
	}
}

/// The checked destination of one product, as the SIMD passes take it.
#[derive(Clone, Copy)]
struct Target {
	ptr: *mut i32,
	stride: usize,
	rows: usize,
	cols: usize,
	/// Add into what is there (else store, the memory may be uninitialised).
	add: bool,
}

/// `out[x][y] = c[x][y] - dot(l[x], r[y])` for the whole `m x n`; every
/// element of `out` is written (so it may start uninitialised).
///
/// # Panics
/// On lengths that do not match the shape (a caller bug).
pub(crate) fn store(
	kernel: Fused,
	l: &[u32],
	r: &[u32],
	(m, n, kp): (usize, usize, usize),
	c: &[i32],
	out: &mut [MaybeUninit<i32>],
) {
	assert_eq!(out.len(), c.len(), "paired::store: lengths");
	let target = Target { ptr: out.as_mut_ptr() as *mut i32, stride: n, rows: m, cols: n, add: false };
	// SAFETY: `out` holds m x n elements (c's length, checked in `run` to be m * n).
	unsafe { run(kernel, l, r, (m, n, kp), c, target) }
}

/// `into.out[x * stride + y] += c[x][y] - dot(l[x], r[y])` for `x` below
/// `into.rows` and `y` below `into.cols`.
///
/// # Panics
/// On lengths that do not match the shape, or a block larger than the
/// product or than `into.out` (caller bugs).
pub(crate) fn add(kernel: Fused, l: &[u32], r: &[u32], (m, n, kp): (usize, usize, usize), c: &[i32], into: AddInto) {
	let fits = into.fits(m, n);
	let AddInto { out, stride, rows, cols } = into;
	assert!(fits, "paired::add: a {rows} x {cols} block (stride {stride}) of a {m} x {n} product into {}", out.len());
	let target = Target { ptr: out.as_mut_ptr(), stride, rows, cols, add: true };
	// SAFETY: every element the target names lies in `out` (checked just above).
	unsafe { run(kernel, l, r, (m, n, kp), c, target) }
}

/// # Safety
/// Every element `target` names (rows below `target.rows`, columns below
/// `target.cols`, rows `stride` apart) is writable, and readable if
/// `target.add`.
unsafe fn run(kernel: Fused, l: &[u32], r: &[u32], (m, n, kp): (usize, usize, usize), c: &[i32], target: Target) {
	let len = |x: usize, y: usize| x.checked_mul(y);
	let ok = len(m, kp) == Some(l.len()) && len(n, kp) == Some(r.len()) && len(m, n) == Some(c.len());
	assert!(ok && m.is_multiple_of(16) && n.is_multiple_of(16), "paired: shapes");
	debug_assert!(target.rows <= m && target.cols <= n && target.cols <= target.stride);
	// (Only the x86 path reads `kernel`; elsewhere the portable loop runs.)
	#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
	let _ = kernel;
	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	if matches!(kernel, Fused::Avx512Vnni | Fused::Amx) && Fused::Avx512Vnni.available() {
		// SAFETY: AVX-512 VNNI and AVX2 are present and the shapes were checked just above.
		return x86::vnni(l, r, (m, n, kp), c, target);
	}
	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	if matches!(kernel, Fused::Avx2 | Fused::Avx512Vnni | Fused::Amx) && Fused::Avx2.available() {
		// SAFETY: AVX2 is present and the shapes were checked just above.
		return x86::avx2(l, r, (m, n, kp), c, target);
	}
	let half = |v: u32, hi: bool| (if hi { v >> 16 } else { v } as u16 as i16) as i32;
	for x in 0..target.rows {
		for y in 0..target.cols {
			let (lr, rr) = (&l[x * kp..][..kp], &r[y * kp..][..kp]);
			let d = lr.iter().zip(rr).fold(0i32, |s, (&a, &b)| {
				s.wrapping_add(half(a, false).wrapping_mul(half(b, false)))
					.wrapping_add(half(a, true).wrapping_mul(half(b, true)))
			});
			put(target, x, y, c[x * n + y].wrapping_sub(d));
		}
	}
}

/// Leaves `v` at row `x`, column `y` of the target.
///
/// # Safety
/// `(x, y)` is inside the target.
#[inline(always)]
unsafe fn put(target: Target, x: usize, y: usize, v: i32) {
	let p = target.ptr.add(x * target.stride + y);
	*p = if target.add { (*p).wrapping_add(v) } else { v };
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
	use super::{put, Target};
	use crate::v2::fused::x86::{bytes, pack_panel};
	use core::arch::x86_64::*;
	use std::vec;

	/// Rows per micro-tile of the VNNI pass; 16 columns (one vector) each.
	const MR_VNNI: usize = 8;

	/// Rows per micro-tile of the AVX2 pass; 16 columns (two vectors) each.
	const MR_AVX2: usize = 4;

	/// With `vpdpwssd`: every panel of `r` the target needs packed first,
	/// then blocks of `ROWS` rows, each against every panel two at a time
	/// (so `c` and the target are read row by row, a few pages at a time:
	/// a column of panels down all the rows of an 8192-wide product touched
	/// a new page every row). Panels and rows wholly outside the target are
	/// not computed.
	///
	/// # Safety
	/// AVX-512 VNNI and AVX2 present; the shapes checked by the caller;
	/// the target as [`super::run`] requires.
	#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
	pub(super) unsafe fn vnni(l: &[u32], r: &[u32], (m, n, kp): (usize, usize, usize), c: &[i32], tg: Target) {
		let _ = m;
		let words = kp * 16;
		let mut packed = vec![0u32; tg.cols.div_ceil(16) * words];
		for (p, panel) in packed.chunks_exact_mut(words).enumerate() {
			pack_panel(bytes(r), kp, 16 * p, 0, panel);
		}
		for first in (0..tg.rows).step_by(ROWS) {
			let rows = (first, (first + ROWS).min(tg.rows));
			let mut col0 = 0;
			while col0 < tg.cols {
				let two = col0 + 32 <= n && col0 + 16 < tg.cols;
				let panel = &packed[col0 / 16 * words..];
				if two {
					vnni_pass::<2>(l, kp, panel, (c, n), col0, tg, rows);
				} else {
					vnni_pass::<1>(l, kp, panel, (c, n), col0, tg, rows);
				}
				col0 += if two { 32 } else { 16 };
			}
		}
	}

	/// Rows of `l` a block of the VNNI pass holds (a multiple of
	/// `MR_VNNI`): 8 KiB of `l` at `r = 64`, so a pair of panels is read
	/// from L1 by each of its micro-tiles.
	const ROWS: usize = 32;

	/// `P` packed panels of `r` (columns `col0 ..`) against rows `from ..
	/// to` of `l` (in blocks of `MR_VNNI`, within `m`), subtracted from
	/// `c` (`n` wide) into the target.
	///
	/// # Safety
	/// As [`vnni`]; `panel` holds `P` panels of `kp * 16`, `col0 + 16 * P
	/// <= n`, `from` a multiple of `MR_VNNI` and `to <= tg.rows`.
	#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
	unsafe fn vnni_pass<const P: usize>(
		l: &[u32],
		kp: usize,
		panel: &[u32],
		(c, n): (&[i32], usize),
		col0: usize,
		tg: Target,
		(from, to): (usize, usize),
	) {
		for x0 in (from..to).step_by(MR_VNNI) {
			let mut acc = [[_mm512_setzero_si512(); P]; MR_VNNI];
			for q in 0..kp {
				let mut b = [_mm512_setzero_si512(); P];
				for (p, bp) in b.iter_mut().enumerate() {
					// SAFETY: q < kp, so 16 u32s at q*16 lie in panel p.
					*bp = _mm512_loadu_si512(panel.as_ptr().add(p * kp * 16 + q * 16) as *const __m512i);
				}
				for (i, acc_row) in acc.iter_mut().enumerate() {
					// SAFETY: row x0+i < m (x0 < rows <= m, m a multiple of 16 and so of 8) and q < kp.
					let av = _mm512_set1_epi32(*l.get_unchecked((x0 + i) * kp + q) as i32);
					for (a, bp) in acc_row.iter_mut().zip(&b) {
						*a = dpwssd(*a, av, *bp);
					}
				}
			}
			for (i, acc_row) in acc.iter().enumerate().take(tg.rows - x0) {
				let x = x0 + i;
				for (p, sum) in acc_row.iter().enumerate() {
					let first = col0 + 16 * p;
					if first >= tg.cols {
						break;
					}
					let keep = (tg.cols - first).min(16);
					let mask: __mmask16 = if keep == 16 { !0 } else { (1u16 << keep) - 1 };
					// SAFETY: 16 i32s of row x of `c` from column first (first + 16 <= n).
					let from = _mm512_loadu_si512(c.as_ptr().add(x * n + first) as *const __m512i);
					let mut v = _mm512_sub_epi32(from, *sum);
					// SAFETY: the mask keeps to the target's columns of its row x.
					let at = tg.ptr.add(x * tg.stride + first);
					if tg.add {
						v = _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(mask, at));
					}
					_mm512_mask_storeu_epi32(at, mask, v);
				}
			}
		}
	}

	/// `vpdpwssd`, spelled out: LLVM splits `_mm512_dpwssd_epi32` into
	/// `vpmaddwd` and `vpaddd` for CPUs it does not know to run it fast
	/// (perf showed the pair on this AMD EPYC, two instructions for one).
	/// Same result, wrapping: `acc + a.lo * b.lo + a.hi * b.hi` per lane.
	#[inline]
	#[target_feature(enable = "avx512f,avx512vnni")]
	unsafe fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
		let mut acc = acc;
		// SAFETY: a register-only instruction of AVX-512 VNNI, which every
		// caller's target features include.
		core::arch::asm!("vpdpwssd {acc}, {a}, {b}", acc = inout(zmm_reg) acc, a = in(zmm_reg) a, b = in(zmm_reg) b, options(pure, nomem, nostack, preserves_flags));
		acc
	}

	/// With `vpmaddwd`, one 16-column panel of `r` at a time against
	/// blocks of `MR_AVX2` rows of `l`.
	///
	/// # Safety
	/// AVX2 present; the shapes checked by the caller; the target as
	/// [`super::run`] requires.
	#[target_feature(enable = "avx2")]
	pub(super) unsafe fn avx2(l: &[u32], r: &[u32], (m, n, kp): (usize, usize, usize), c: &[i32], tg: Target) {
		let _ = m;
		let mut panel = vec![0u32; kp * 16];
		for col0 in (0..tg.cols).step_by(16) {
			pack_panel(bytes(r), kp, col0, 0, &mut panel);
			for x0 in (0..tg.rows).step_by(MR_AVX2) {
				let mut acc = [[_mm256_setzero_si256(); 2]; MR_AVX2];
				for q in 0..kp {
					// SAFETY: q < kp, so 16 u32s at q*16 lie in `panel`.
					let bp = panel.as_ptr().add(q * 16) as *const __m256i;
					let (b0, b1) = (_mm256_loadu_si256(bp), _mm256_loadu_si256(bp.add(1)));
					for (i, acc_row) in acc.iter_mut().enumerate() {
						// SAFETY: row x0+i < m (x0 < rows <= m, a multiple of 16) and q < kp.
						let av = _mm256_set1_epi32(*l.get_unchecked((x0 + i) * kp + q) as i32);
						acc_row[0] = _mm256_add_epi32(acc_row[0], _mm256_madd_epi16(av, b0));
						acc_row[1] = _mm256_add_epi32(acc_row[1], _mm256_madd_epi16(av, b1));
					}
				}
				for (i, acc_row) in acc.iter().enumerate().take(tg.rows - x0) {
					let mut sums = [0i32; 16];
					_mm256_storeu_si256(sums.as_mut_ptr() as *mut __m256i, acc_row[0]);
					_mm256_storeu_si256(sums.as_mut_ptr().add(8) as *mut __m256i, acc_row[1]);
					let x = x0 + i;
					for (y, s) in (col0..tg.cols.min(col0 + 16)).zip(sums) {
						// SAFETY: (x, y) is inside the target; c is m x n.
						put(tg, x, y, c[x * n + y].wrapping_sub(s));
					}
				}
			}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::kernel::lcg_matrix as matrix;
	use alloc::{vec, vec::Vec};

	/// `(l, r)` of 16-bit values over the whole range, and `c - l * r^T`.
	fn case(m: usize, n: usize, kp: usize) -> (Vec<u32>, Vec<u32>, Vec<i32>, Vec<i32>) {
		let pair = |s: u64| -> Vec<u32> {
			matrix(2 * s as usize, s)
				.chunks(2)
				.map(|p| (p[0] as i16 as u16 as u32 * 257) | ((p[1] as i16 as u16 as u32 * 129) << 16))
				.collect()
		};
		let (mut l, mut r) = (pair((m * kp) as u64), pair((n * kp) as u64 + 1));
		l.truncate(m * kp);
		r.truncate(n * kp);
		let c: Vec<i32> = (0..m * n).map(|v| (v as i32).wrapping_mul(-7919)).collect();
		let half = |v: u32, hi: bool| (if hi { v >> 16 } else { v } as u16 as i16) as i64;
		let mut want = vec![0i32; m * n];
		for x in 0..m {
			for y in 0..n {
				let d: i64 = (0..kp)
					.map(|q| {
						half(l[x * kp + q], false) * half(r[y * kp + q], false)
							+ half(l[x * kp + q], true) * half(r[y * kp + q], true)
					})
					.sum();
				want[x * n + y] = (c[x * n + y] as i64 - d) as i32;
			}
		}
		(l, r, c, want)
	}

	#[test]
	fn stored_products_are_exact_on_every_path() {
		let (m, n, kp) = (32, 48, 37);
		let (l, r, c, want) = case(m, n, kp);
		for kern in Fused::ALL {
			let mut out = vec![MaybeUninit::new(-1i32); m * n];
			store(kern, &l, &r, (m, n, kp), &c, &mut out);
			let out: Vec<i32> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
			assert_eq!(out, want, "{kern:?}");
		}
	}

	/// Blocks of every size around the passes' edges (8 and 4 rows, 16
	/// and 32 columns), added into a wider matrix at an offset: inside the
	/// block each element gains the product's, outside nothing changes.
	#[test]
	fn added_blocks_touch_their_block_alone_on_every_path() {
		let (m, n, kp) = (48, 64, 21);
		let (l, r, c, want) = case(m, n, kp);
		let (stride, at) = (n + 13, 2 * (n + 13) + 5);
		for (rows, cols) in [(48, 64), (1, 1), (7, 15), (9, 17), (33, 31), (47, 63), (48, 33), (5, 64)] {
			for kern in Fused::ALL {
				let before: Vec<i32> = (0..(m + 3) * stride).map(|v| v as i32 * 3).collect();
				let mut out = before.clone();
				add(kern, &l, &r, (m, n, kp), &c, AddInto { out: &mut out[at..], stride, rows, cols });
				for (i, (&got, &was)) in out.iter().zip(&before).enumerate() {
					let (x, y) = (i.wrapping_sub(at) / stride, i.wrapping_sub(at) % stride);
					let inside = i >= at && x < rows && y < cols;
					let expect = if inside { was.wrapping_add(want[x * n + y]) } else { was };
					assert_eq!(got, expect, "{kern:?} {rows}x{cols} at element {i}");
				}
			}
		}
	}

	#[test]
	#[should_panic(expected = "paired::add")]
	fn a_block_past_the_output_is_refused() {
		let (l, r, c, _) = case(16, 16, 4);
		let mut out = vec![0; 16 * 16 - 1];
		add(Fused::Portable, &l, &r, (16, 16, 4), &c, AddInto { out: &mut out, stride: 16, rows: 16, cols: 16 });
	}
}
