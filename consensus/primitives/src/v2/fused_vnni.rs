//! The fused kernel on AVX-512 VNNI (`vpdpbusd`, 64 multiply-accumulates
//! an instruction), sharing the AVX2 kernel's panel packing.

use super::{reduce, x86::pack_panel, Scratch, Shape, State};
use core::arch::x86_64::*;
use std::{vec, vec::Vec};

/// Rows of the left operand per micro-tile of the VNNI pass; 16 columns
/// (one vector) each.
const MR_VNNI: usize = 8;

/// Rows per micro-tile of the fused pass: 6 rows of two panels keep 12
/// running sums and their 12 fold registers in the 32 vector registers,
/// and 12 independent `vpdpbusd` chains are enough to keep two VNNI
/// ports busy at a latency of 5 cycles (with 4 rows, 8 chains left an
/// Intel core's second port idle a third of the time). The rows of a
/// block of rows past its last micro-tile (a block holds whole tiles, a
/// multiple of 16 rows, so 0, 2 or 4 of them) go in blocks of 2.
const MR_FUSED: usize = 6;

/// The fused product with `vpdpbusd`: `Bt' + 128` (unsigned, flipped as
/// its panels are packed) against `A'` (signed, each quad of a row
/// broadcast as it is), four of `k` per lane, one output per lane. Each
/// lane then holds the true running sum plus `128` times the sum of its
/// row of `A'` so far, which depends on the row alone: `bias` holds it at
/// every chunk's end, and the fold and the product take it away
/// (wrapping, so exact mod `2^32` as the transcript's sums are). Neither
/// operand is copied: `A'` is read where it lies, `Bt'` only into panels.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn run_avx512vnni(
	scratch: &mut Scratch,
	a: &[i8],
	bt: &[i8],
	s: Shape,
	c: &mut [i32],
	states: &mut [State],
) {
	let Shape { m, n, k, t, r } = s;
	let (kq, chunks) = (k / 4, k / r);
	let Scratch { panel, folds, .. } = scratch;
	// bias[ch * m + x] = 128 * (sum of A'[x][z] for z below chunk ch's end).
	let mut bias = vec![0i32; chunks * m];
	for (x, row) in a.chunks_exact(k).enumerate() {
		let mut sum = 0i32;
		for (ch, part) in row.chunks_exact(r).enumerate() {
			sum = part.iter().fold(sum, |s, &v| s.wrapping_add(v as i32));
			bias[ch * m + x] = sum.wrapping_mul(128);
		}
	}
	// Every panel of `Bt'` packed once (as many bytes as `Bt'`), then
	// blocks of whole tiles of rows of `A'` small enough to stay in L2
	// while every panel passes; each tile's state is reduced as soon as
	// its block has passed its tile column.
	let tiles = n / t;
	panel.resize(n * kq, 0);
	for (p, out) in panel.chunks_exact_mut(kq * 16).enumerate() {
		pack_panel(bytes_of(bt), kq, 16 * p, 0x8080_8080, out);
	}
	// (No larger than the product: at a small k the limit is far more rows.)
	let block = row_block(k, t).min(m.max(t));
	folds.resize(2 * block * t, 0);
	let o = Operands { a, k, bias: &bias, n, m, t, chunks, per_chunk: r / 4 };
	for first in (0..m).step_by(block) {
		let rows = (first..(first + block).min(m), first);
		let mut tj = 0;
		while tj < tiles {
			// Two 16-column panels per micro-tile, so that each broadcast of
			// an `A'` quad feeds two `vpdpbusd`: for t = 16 two tile columns
			// at a time (their fold registers side by side in `folds`), for
			// larger t two panels of one tile column.
			let step = if t == 16 && tj + 1 < tiles { 2 } else { 1 };
			let tile_folds = rows.0.len() * t;
			folds[..step * tile_folds].iter_mut().for_each(|f| *f = 0);
			// (column of the panel, offset of its first fold register)
			let mut panels = [(0usize, 0usize); 2];
			let mut count = 0;
			for tile in 0..step {
				for y0 in (0..t).step_by(16) {
					panels[count] = ((tj + tile) * t + y0, tile * tile_folds + y0);
					count += 1;
					if count == 2 {
						pass::<2>(&o, panel, &panels, folds, c, rows.clone());
						count = 0;
					}
				}
			}
			if count == 1 {
				pass::<1>(&o, panel, &panels[..1], folds, c, rows.clone());
			}
			for tile in 0..step {
				for ti in 0..rows.0.len() / t {
					let state = reduce(&folds[tile * tile_folds + ti * t * t..][..t * t], t);
					states[(first / t + ti) * tiles + tj + tile] = state;
				}
			}
			tj += step;
		}
	}
}

/// `u8`s as they lie in `i8`s.
fn bytes_of(v: &[i8]) -> &[u8] {
	// SAFETY: every byte of an i8 is a valid u8.
	unsafe { core::slice::from_raw_parts(v.as_ptr() as *const u8, v.len()) }
}

/// Rows of `A'` a block of the fused product holds: whole tiles, within
/// [`ROW_BLOCK_BYTES`] (the plain product's 512 KiB; twice that measured
/// the same on an Intel Xeon), and a whole number of micro-tiles where that fits
/// (128 rows would leave 2 of every 128 to the narrow pass; 96 leave none).
fn row_block(k: usize, t: usize) -> usize {
	let limit = ROW_BLOCK_BYTES / k.max(1);
	let unit = t / gcd(t, MR_FUSED) * MR_FUSED;
	if limit >= unit {
		limit / unit * unit
	} else {
		(limit / t).max(1) * t
	}
}

fn gcd(a: usize, b: usize) -> usize {
	if b == 0 {
		a
	} else {
		gcd(b, a % b)
	}
}

/// What every panel pass reads: `A'` (`m x k`), the rows' biases at each
/// chunk's end, and the shape.
#[derive(Clone, Copy)]
struct Operands<'a> {
	a: &'a [i8],
	k: usize,
	bias: &'a [i32],
	n: usize,
	m: usize,
	t: usize,
	chunks: usize,
	per_chunk: usize,
}

/// The VNNI pass over `P` packed panels (`(column, offset of the first
/// fold register)` each) for a block of rows (`first..last`, whose fold
/// registers start at row `first`): the running sums of `P * 16` columns,
/// folded into their registers at each chunk's end, the last ones stored
/// into `c`.
///
/// # Safety
/// AVX-512 VNNI present; `panels.len() == P`; `panel` holds every panel
/// of `Bt'`; the shapes checked by the caller (columns + 16 <= n, fold
/// offsets inside `folds`, the block's rows even and below `m`).
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn pass<const P: usize>(
	o: &Operands,
	panel: &[u32],
	panels: &[(usize, usize)],
	folds: &mut [u32],
	c: &mut [i32],
	(rows, first): (core::ops::Range<usize>, usize),
) {
	let whole = rows.start + rows.len() / MR_FUSED * MR_FUSED;
	rows_of::<P, MR_FUSED>(o, panel, panels, folds, c, (rows.start, whole), first);
	rows_of::<P, 2>(o, panel, panels, folds, c, (whole, rows.end), first);
}

/// [`pass`] over rows `from .. to` (a whole number of blocks of `MR`),
/// their fold registers counted from row `first`.
///
/// # Safety
/// As [`pass`]; `to - from` a multiple of `MR`.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn rows_of<const P: usize, const MR: usize>(
	o: &Operands,
	panel: &[u32],
	panels: &[(usize, usize)],
	folds: &mut [u32],
	c: &mut [i32],
	(from, to): (usize, usize),
	first: usize,
) {
	let Operands { a, k, bias, n, m, t, chunks, per_chunk } = *o;
	let kq = k / 4;
	for x0 in (from..to).step_by(MR) {
		let mut acc = [[_mm512_setzero_si512(); P]; MR];
		let mut fold = [[_mm512_setzero_si512(); P]; MR];
		for ch in 0..chunks {
			for q in ch * per_chunk..(ch + 1) * per_chunk {
				let mut b = [_mm512_setzero_si512(); P];
				for (bp, &(col0, _)) in b.iter_mut().zip(panels) {
					// SAFETY: q < kq, so 16 u32s at q*16 lie in the panel of
					// columns col0.. (col0 + 16 <= n, every panel packed).
					*bp = _mm512_loadu_si512(panel.as_ptr().add(col0 * kq + q * 16) as *const __m512i);
				}
				for (i, acc_row) in acc.iter_mut().enumerate() {
					// SAFETY: row x0+i < m and 4q + 4 <= k: four bytes of
					// the row, unaligned.
					let quad = core::ptr::read_unaligned(a.as_ptr().add((x0 + i) * k + 4 * q) as *const i32);
					let av = _mm512_set1_epi32(quad);
					for (acc, bp) in acc_row.iter_mut().zip(&b) {
						*acc = _mm512_dpbusd_epi32(*acc, *bp, av);
					}
				}
			}
			for (i, (acc_row, fold_row)) in acc.iter().zip(fold.iter_mut()).enumerate() {
				// SAFETY: chunk ch's bias of row x0+i < m.
				let bv = _mm512_set1_epi32(*bias.get_unchecked(ch * m + x0 + i));
				for (f, sum) in fold_row.iter_mut().zip(acc_row) {
					*f = _mm512_xor_si512(*f, _mm512_sub_epi32(*sum, bv));
				}
			}
		}
		for (i, fold_row) in fold.iter().enumerate() {
			for (f, &(_, fold0)) in fold_row.iter().zip(panels) {
				// SAFETY: 16 u32s of the panel's fold registers for row x0+i.
				_mm512_storeu_si512(folds.as_mut_ptr().add(fold0 + (x0 - first + i) * t) as *mut __m512i, *f);
			}
		}
		for (i, acc_row) in acc.iter().enumerate() {
			// SAFETY: the last chunk's bias of row x0+i < m.
			let bv = _mm512_set1_epi32(*bias.get_unchecked((chunks - 1) * m + x0 + i));
			for (sum, &(col0, _)) in acc_row.iter().zip(panels) {
				// SAFETY: 16 i32s of row x0+i from column col0 (col0 + 16 <= n).
				let cp = c.as_mut_ptr().add((x0 + i) * n + col0) as *mut __m512i;
				_mm512_storeu_si512(cp, _mm512_sub_epi32(*sum, bv));
			}
		}
	}
}

/// The plain product `c = a * bt^T` of any shape on the fused kernel's
/// panels (`vpdpbusd`, `Bt + 128` packed against broadcast quads of `A`,
/// the rows' bias `128 * sum(A[x])` taken away at the end): what
/// [`crate::kernel::Kernel::Avx512Vnni`] runs. Ragged edges are zero
/// quads past `k` (a copy of `A` with rows padded to whole quads when `k`
/// is not a multiple of 4), zero columns past `n` (not stored) and rows
/// one at a time past the last block of `MR_VNNI`.
///
/// # Safety
/// AVX-512 VNNI and AVX2 present; `a` is `m x k`, `bt` is `n x k`, `c` is
/// `m x n`, `k > 0`.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn plain_vnni(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
	let kq = k.div_ceil(4);
	let bias: Vec<i32> = a
		.chunks_exact(k)
		.map(|row| row.iter().fold(0i32, |s, &v| s.wrapping_add(v as i32)).wrapping_mul(128))
		.collect();
	let whole_quads = k.is_multiple_of(4);
	let quads: Vec<i8> = if whole_quads {
		Vec::new()
	} else {
		a.chunks_exact(k).flat_map(|row| row.iter().copied().chain(core::iter::repeat_n(0, 4 * kq - k))).collect()
	};
	let rows = if whole_quads { a } else { &quads[..] };
	let bt_bytes = bytes_of(bt);
	// Every panel of `Bt` packed once (as many bytes as `Bt`), then blocks
	// of rows of `A` small enough to stay in L2 while every panel passes.
	let panels = n.div_ceil(16);
	// Kept from call to call on this thread: allocated afresh, a small
	// buffer can land at the top of the heap, be given back on free and
	// fault its pages in again every call (a 16 x 16 tile on the panels
	// took twice as long). Every element is overwritten by the packing.
	let mut packed = PACKED.with_borrow_mut(core::mem::take);
	packed.resize(panels * kq * 16, 0);
	for (p, out) in packed.chunks_exact_mut(kq * 16).enumerate() {
		if whole_quads && 16 * p + 16 <= n {
			pack_panel(bt_bytes, kq, 16 * p, 0x8080_8080, out);
		} else {
			pack_ragged(bt, k, n, 16 * p, out);
		}
	}
	let block = (ROW_BLOCK_BYTES / (4 * kq)).max(MR_VNNI) / MR_VNNI * MR_VNNI;
	for first in (0..m).step_by(block) {
		let last = (first + block).min(m);
		for p0 in (0..panels).step_by(2) {
			let pair = (panels - p0).min(2);
			let o = Plain { rows, stride: 4 * kq, kq, bias: &bias, n, col0: 16 * p0 };
			let panel = &packed[p0 * kq * 16..][..pair * kq * 16];
			let mut x0 = first;
			while x0 < last {
				let mr = if x0 + MR_VNNI <= last { MR_VNNI } else { 1 };
				match (mr, pair) {
					(MR_VNNI, 2) => plain_pass::<MR_VNNI, 2>(&o, panel, x0, c),
					(MR_VNNI, _) => plain_pass::<MR_VNNI, 1>(&o, panel, x0, c),
					(_, 2) => plain_pass::<1, 2>(&o, panel, x0, c),
					_ => plain_pass::<1, 1>(&o, panel, x0, c),
				}
				x0 += mr;
			}
		}
	}
	if packed.capacity() * 4 <= PACKED_KEEP_BYTES {
		PACKED.with_borrow_mut(|kept| *kept = packed);
	}
}

std::thread_local! {
	/// The plain product's packed panels, reused (see [`plain_vnni`]).
	static PACKED: core::cell::RefCell<Vec<u32>> = const { core::cell::RefCell::new(Vec::new()) };
}

/// The largest packed `Bt` a thread keeps between plain products (the
/// packed `Bt` of a product 32 columns wide at `k = 16384`).
const PACKED_KEEP_BYTES: usize = 2 << 20;

/// Bytes of `A` a block of rows of the plain product holds (half an L2).
const ROW_BLOCK_BYTES: usize = 512 * 1024;

/// Columns `first .. first + 16` of `Bt` as a panel of quads, each byte
/// flipped to `b + 128`; quads past `k` and columns past `n` hold zeros
/// (flipped), which meet zero quads of `A` or are never stored.
fn pack_ragged(bt: &[i8], k: usize, n: usize, first: usize, panel: &mut [u32]) {
	for (q, quad) in panel.chunks_exact_mut(16).enumerate() {
		for (y, slot) in quad.iter_mut().enumerate() {
			let mut bytes = [0u8; 4];
			if first + y < n {
				for (i, b) in bytes.iter_mut().enumerate() {
					if 4 * q + i < k {
						*b = bt[(first + y) * k + 4 * q + i] as u8;
					}
				}
			}
			*slot = u32::from_le_bytes(bytes) ^ 0x8080_8080;
		}
	}
}

/// What a plain pass reads: `A`'s rows as whole quads (`stride` bytes
/// apart), the rows' biases, and where its panels sit in `c`.
struct Plain<'a> {
	rows: &'a [i8],
	stride: usize,
	kq: usize,
	bias: &'a [i32],
	n: usize,
	col0: usize,
}

/// Rows `x0 .. x0 + MR` against `P` packed panels over all of `k`, stored
/// into `c` (columns past `n` left out).
///
/// # Safety
/// As [`plain_vnni`]; `x0 + MR <= m` and `col0 + 16 * (P - 1) < n`.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn plain_pass<const MR: usize, const P: usize>(o: &Plain, panel: &[u32], x0: usize, c: &mut [i32]) {
	let mut acc = [[_mm512_setzero_si512(); P]; MR];
	for q in 0..o.kq {
		let mut b = [_mm512_setzero_si512(); P];
		for (p, bp) in b.iter_mut().enumerate() {
			// SAFETY: q < kq, so 16 u32s at q*16 lie in panel p.
			*bp = _mm512_loadu_si512(panel.as_ptr().add(p * o.kq * 16 + q * 16) as *const __m512i);
		}
		for (i, acc_row) in acc.iter_mut().enumerate() {
			// SAFETY: row x0+i < m, and its quad q lies within its `stride` bytes.
			let quad = core::ptr::read_unaligned(o.rows.as_ptr().add((x0 + i) * o.stride + 4 * q) as *const i32);
			let av = _mm512_set1_epi32(quad);
			for (acc, bp) in acc_row.iter_mut().zip(&b) {
				*acc = _mm512_dpbusd_epi32(*acc, *bp, av);
			}
		}
	}
	for (i, acc_row) in acc.iter().enumerate() {
		let bv = _mm512_set1_epi32(o.bias[x0 + i]);
		for (p, sum) in acc_row.iter().enumerate() {
			let first = o.col0 + 16 * p;
			let keep = (o.n - first).min(16);
			let mask: __mmask16 = if keep == 16 { !0 } else { (1u16 << keep) - 1 };
			// SAFETY: the mask keeps the store to columns below n of row x0+i.
			_mm512_mask_storeu_epi32(c.as_mut_ptr().add((x0 + i) * o.n + first), mask, _mm512_sub_epi32(*sum, bv));
		}
	}
}
