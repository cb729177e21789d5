//! The fused kernel on AVX-512 VNNI (`vpdpbusd`, 64 multiply-accumulates
//! an instruction), sharing the AVX2 kernel's panel packing.

use super::{reduce, x86::pack_panel, Scratch, Shape, State};
use core::arch::x86_64::*;
use std::{vec, vec::Vec};

/// Rows of the left operand per micro-tile of the VNNI pass; 16 columns
/// (one vector) each.
const MR_VNNI: usize = 8;

/// i8 values as quads: `out[q]` holds `v[4q .. 4q + 4]` little-endian,
/// each byte XORed with `flip` (0x80 makes a signed byte `b` the
/// unsigned `b + 128` that `vpdpbusd` wants on its left).
fn quad_rows(v: &[i8], flip: u32, out: &mut Vec<u32>) {
	out.clear();
	out.extend(v.chunks_exact(4).map(|q| u32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8]) ^ flip));
}

/// The fused product with `vpdpbusd`: `A' + 128` (unsigned) against
/// `Bt'` (signed), four of `k` per lane, one output per lane. Each lane
/// then holds the true running sum plus `128` times the sum of its
/// column of `Bt'` so far, which depends on the column alone: `bias`
/// holds it at every chunk's end, and the fold and the product take it
/// away (wrapping, so exact mod `2^32` as the transcript's sums are).
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
	let Scratch { a_pairs: aq, b_pairs: bq, panel, folds } = scratch;
	quad_rows(a, 0x8080_8080, aq);
	quad_rows(bt, 0, bq);
	// bias[ch * n + y] = 128 * (sum of Bt'[y][z] for z below chunk ch's end).
	let mut bias = vec![0i32; chunks * n];
	for y in 0..n {
		let mut sum = 0i32;
		for ch in 0..chunks {
			sum = bt[y * k + ch * r..][..r].iter().fold(sum, |s, &v| s.wrapping_add(v as i32));
			bias[ch * n + y] = sum.wrapping_mul(128);
		}
	}
	// Two 16-column panels per micro-tile, so that each broadcast of an
	// `A` quad feeds two `vpdpbusd`: for t = 16 two tile columns at a
	// time (their fold registers side by side in `folds`), for larger t
	// two panels of one tile column.
	let tiles = n / t;
	panel.resize(2 * kq * 16, 0);
	folds.resize(2 * m * t, 0);
	let per_chunk = r / 4;
	let o = Operands { aq, bq, kq, bias: &bias, n, m, t, chunks, per_chunk };
	let mut tj = 0;
	while tj < tiles {
		let step = if t == 16 && tj + 1 < tiles { 2 } else { 1 };
		folds[..step * m * t].iter_mut().for_each(|f| *f = 0);
		// (column of the panel, offset of its first fold register)
		let mut panels = [(0usize, 0usize); 2];
		let mut count = 0;
		for tile in 0..step {
			for y0 in (0..t).step_by(16) {
				panels[count] = ((tj + tile) * t + y0, tile * m * t + y0);
				count += 1;
				if count == 2 {
					pass::<2>(&o, panel, &panels, folds, c);
					count = 0;
				}
			}
		}
		if count == 1 {
			pass::<1>(&o, panel, &panels[..1], folds, c);
		}
		for tile in 0..step {
			for ti in 0..m / t {
				states[ti * tiles + tj + tile] = reduce(&folds[tile * m * t + ti * t * t..][..t * t], t);
			}
		}
		tj += step;
	}
}

/// What every panel pass reads: `A'` and `Bt'` as quads (`kq` a row), the
/// columns' biases at each chunk's end, and the shape.
#[derive(Clone, Copy)]
struct Operands<'a> {
	aq: &'a [u32],
	bq: &'a [u32],
	kq: usize,
	bias: &'a [i32],
	n: usize,
	m: usize,
	t: usize,
	chunks: usize,
	per_chunk: usize,
}

/// The VNNI pass over `P` panels (`(column, offset of the first fold
/// register)` each) for every block of rows: the running sums of `P *
/// 16` columns, folded into their registers at each chunk's end, the
/// last ones stored into `c`.
///
/// # Safety
/// AVX-512 VNNI present; `panels.len() == P`; the shapes checked by the
/// caller (columns + 16 <= n, fold offsets inside `folds`).
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn pass<const P: usize>(
	o: &Operands,
	panel: &mut [u32],
	panels: &[(usize, usize)],
	folds: &mut [u32],
	c: &mut [i32],
) {
	let Operands { aq, bq, kq, bias, n, m, t, chunks, per_chunk } = *o;
	for (p, &(col0, _)) in panels.iter().enumerate() {
		pack_panel(bq, kq, col0, &mut panel[p * kq * 16..][..kq * 16]);
	}
	for x0 in (0..m).step_by(MR_VNNI) {
		let mut acc = [[_mm512_setzero_si512(); P]; MR_VNNI];
		for ch in 0..chunks {
			for q in ch * per_chunk..(ch + 1) * per_chunk {
				let mut b = [_mm512_setzero_si512(); P];
				for (p, bp) in b.iter_mut().enumerate() {
					// SAFETY: q < kq, so 16 u32s at q*16 lie in panel p.
					*bp = _mm512_loadu_si512(panel.as_ptr().add(p * kq * 16 + q * 16) as *const __m512i);
				}
				for (i, acc_row) in acc.iter_mut().enumerate() {
					// SAFETY: row x0+i < m (m is a multiple of t, itself of 16) and q < kq.
					let av = _mm512_set1_epi32(*aq.get_unchecked((x0 + i) * kq + q) as i32);
					for (a, bp) in acc_row.iter_mut().zip(&b) {
						*a = _mm512_dpbusd_epi32(*a, av, *bp);
					}
				}
			}
			for (p, &(col0, fold0)) in panels.iter().enumerate() {
				// SAFETY: 16 i32s of chunk ch's biases from column col0 (col0 + 16 <= n).
				let bv = _mm512_loadu_si512(bias.as_ptr().add(ch * n + col0) as *const __m512i);
				for (i, acc_row) in acc.iter().enumerate() {
					// SAFETY: 16 u32s of the panel's fold registers for row x0+i.
					let fp = folds.as_mut_ptr().add(fold0 + (x0 + i) * t) as *mut __m512i;
					let sum = _mm512_sub_epi32(acc_row[p], bv);
					_mm512_storeu_si512(fp, _mm512_xor_si512(_mm512_loadu_si512(fp), sum));
				}
			}
		}
		for (p, &(col0, _)) in panels.iter().enumerate() {
			// SAFETY: as above, the last chunk's biases.
			let bv = _mm512_loadu_si512(bias.as_ptr().add((chunks - 1) * n + col0) as *const __m512i);
			for (i, acc_row) in acc.iter().enumerate() {
				// SAFETY: 16 i32s of row x0+i from column col0 (col0 + 16 <= n).
				let cp = c.as_mut_ptr().add((x0 + i) * n + col0) as *mut __m512i;
				_mm512_storeu_si512(cp, _mm512_sub_epi32(acc_row[p], bv));
			}
		}
	}
}
