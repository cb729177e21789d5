//! The plain and the fused product on AMX tiles ([`super::amx`]): blocks of
//! 32 x 32 outputs over all of `k`, both operands packed once, tile by
//! tile, as the blocks read them.

use super::{amx, x86::pack_panel, Scratch, Shape, State};
use core::arch::x86_64::*;
use std::vec::Vec;

/// Bytes of `A` a block of rows holds while every panel passes (a quarter
/// of a 2 MiB L2, as the VNNI kernels').
const ROW_BLOCK_BYTES: usize = 512 * 1024;

/// Rows and columns of one block of the product.
const BLOCK: usize = 32;

/// `c = a * bt^T` on AMX tiles; `None` (nothing written) where AMX is not
/// available or `k` is not a multiple of 64 (the caller runs another
/// kernel). Any `m` and `n`: rows and columns past them are packed as
/// zeros, and edge blocks go through a scratch block.
pub(crate) fn plain(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) -> Option<()> {
	if !amx::available() || k == 0 || !k.is_multiple_of(64) {
		return None;
	}
	// Kept from call to call on this thread (see `PACKED`).
	let Scratch { a_pairs: mut pad, b_pairs: mut cols, .. } = PACKED.with_borrow_mut(core::mem::take);
	let rows = rows_aligned(a, m, k, &mut pad);
	// SAFETY: AVX2 is present (`available` checks it) and bt is n x k.
	let cols_at = unsafe { pack_columns(bt, n, k, &mut cols) };
	// SAFETY: AMX is available (checked above).
	let _tiles = unsafe { amx::Tiles::configure() };
	let mut edge = [0i32; BLOCK * BLOCK];
	for (x0, y0) in blocks(m, n, k) {
		let (blk, inside) = block((rows, cols_at), k, c, &mut edge, (x0, y0), (m, n));
		// SAFETY: tiles configured; k a positive multiple of 64; 32 rows of
		// k bytes at the block's rows (of `a` or the padded copy), the
		// packed columns hold 2 KiB a step for every block of 32 (padded),
		// and `out` is a 32 x 32 block of c (inside) or of `edge`.
		unsafe { amx::product(blk) };
		if !inside {
			copy_edge(&edge, c, n, (x0, y0), m);
		}
	}
	if (pad.capacity() + cols.capacity()) * 4 <= PACKED_KEEP_BYTES {
		PACKED.with_borrow_mut(|kept| *kept = Scratch { a_pairs: pad, b_pairs: cols, ..Scratch::default() });
	}
	Some(())
}

std::thread_local! {
	/// The plain product's packed columns (and aligned rows), reused:
	/// allocated afresh, each call faulted their pages in again (a 256 x
	/// 256 x 4096 product took twice as long as on kept buffers).
	static PACKED: core::cell::RefCell<Scratch> = core::cell::RefCell::new(Scratch::default());
}

/// The most packed bytes a thread keeps between plain products (a product
/// 1024 x 1024 at `k = 4096`, its rows copied); a larger product faults its
/// buffers in again, a few percent of its time.
const PACKED_KEEP_BYTES: usize = 16 << 20;

/// The fused product ([`super::Fused::Amx`]): `c = a' * bt'^T` and every
/// tile's state, for `t` a multiple of 16 and `r` of 64. Each block's four
/// 16 x 16 tiles fold their rows rotated by their row within the block's
/// tile (0-15); a tile of `t` rows holds them at row `x0 % t`, so the
/// block's fold is rotated once more by `(x0 % t) % 32` (0 or 16) and
/// XORed into its tile's state.
///
/// # Safety
/// [`amx::available`]; the shape checked; `t % 16 == 0`, `r % 64 == 0`.
pub(super) unsafe fn run(scratch: &mut Scratch, a: &[i8], bt: &[i8], s: Shape, c: &mut [i32], states: &mut [State]) {
	let Shape { m, n, k, t, r } = s;
	let Scratch { a_pairs: pad, b_pairs: cols, folds, .. } = scratch;
	let rows = rows_aligned(a, m, k, pad);
	// SAFETY: AVX2 is present (the caller checked AMX, which implies it).
	let cols_at = unsafe { pack_columns(bt, n, k, cols) };
	states.iter_mut().for_each(|s| *s = [0; 16]);
	folds.resize(TILE_WORDS * 4, 0);
	let buf = folds.as_mut_ptr() as *mut u8;
	// SAFETY: AMX is available (the caller's promise).
	let _tiles = unsafe { amx::Tiles::configure() };
	let tiles = n / t;
	let mut edge = [0i32; BLOCK * BLOCK];
	for (x0, y0) in blocks(m, n, k) {
		let (blk, inside) = block((rows, cols_at), k, c, &mut edge, (x0, y0), (m, n));
		// SAFETY: as in `plain`; r / 64 >= 1 divides k / 64 (r divides k),
		// and `folds` holds 4 KiB.
		let w = unsafe { amx::fused(blk, r / 64, buf) };
		if !inside {
			copy_edge(&edge, c, n, (x0, y0), m);
		}
		for (q, w) in w.iter().enumerate() {
			let (x, y) = (x0 + 16 * (q / 2), y0 + 16 * (q % 2));
			if x < m && y < n {
				let state = &mut states[x / t * tiles + y / t];
				// SAFETY: AVX-512 F is present (AMX implies it here).
				let words = unsafe { rotated(*w, (x % t) % 32 == 16) };
				state.iter_mut().zip(words).for_each(|(s, w)| *s ^= w);
			}
		}
	}
}

/// `u32`s in one tile.
const TILE_WORDS: usize = amx::TILE_BYTES / 4;

/// A block's fold as words, rotated left by 16 for tiles whose rows start
/// 16 rows into a 32-row period of the transcript's rotation.
#[target_feature(enable = "avx512f")]
unsafe fn rotated(w: __m512i, by16: bool) -> [u32; 16] {
	let w = if by16 { _mm512_rol_epi32::<16>(w) } else { w };
	let mut out = [0u32; 16];
	// SAFETY: 64 bytes written into `out`.
	unsafe { _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, w) };
	out
}

/// The blocks' corners in the order they run: rows in blocks within
/// [`ROW_BLOCK_BYTES`] that stay in L2 while every pair of panels passes.
fn blocks(m: usize, n: usize, k: usize) -> impl Iterator<Item = (usize, usize)> {
	let rows = (ROW_BLOCK_BYTES / k.max(1) / BLOCK).max(1) * BLOCK;
	(0..m).step_by(rows).flat_map(move |first| {
		(0..n).step_by(BLOCK).flat_map(move |y0| (first..(first + rows).min(m)).step_by(BLOCK).map(move |x0| (x0, y0)))
	})
}

/// Block `(x0, y0)`'s operands (its rows of the aligned rows, and its two
/// panels of the packed columns), and its
/// output: in `c` where the whole block lies inside the product (`true`),
/// else in `edge`.
fn block(
	(rows, cols): (*const i8, *const u32),
	k: usize,
	c: &mut [i32],
	edge: &mut [i32; BLOCK * BLOCK],
	(x0, y0): (usize, usize),
	(m, n): (usize, usize),
) -> (amx::Block, bool) {
	let inside = x0 + BLOCK <= m && y0 + BLOCK <= n;
	// Two packed panels: 32 columns of k bytes.
	let per_block = BLOCK * k / 4;
	let blk = amx::Block {
		// SAFETY (of the pointer arithmetic): rows and columns are packed
		// to whole blocks of 32, so block (x0, y0)'s lie inside them.
		a: unsafe { rows.add(x0 * k) },
		b: unsafe { cols.add(y0 / BLOCK * per_block) } as *const u8,
		k,
		out: if inside { c[x0 * n + y0..].as_mut_ptr() } else { edge.as_mut_ptr() },
		out_stride: 4 * if inside { n } else { BLOCK },
	};
	(blk, inside)
}

/// The part of an edge block inside the `m x n` product.
fn copy_edge(edge: &[i32], c: &mut [i32], n: usize, (x0, y0): (usize, usize), m: usize) {
	let cols = (n - y0).min(BLOCK);
	for x in 0..(m - x0).min(BLOCK) {
		c[(x0 + x) * n + y0..][..cols].copy_from_slice(&edge[x * BLOCK..][..cols]);
	}
}

/// `A`'s rows where every tile row is a whole cache line: `a` itself where
/// it starts on 64 bytes and holds whole blocks of 32 rows, else a copy in
/// `pad` that does, with zero rows after `m`. (Rows 16 bytes off a line,
/// as a large allocation's are, made every tile row two lines: the same
/// product ran 1.1-1.9 times as long.)
fn rows_aligned(a: &[i8], m: usize, k: usize, pad: &mut Vec<u32>) -> *const i8 {
	if (a.as_ptr() as usize).is_multiple_of(64) && m.is_multiple_of(BLOCK) {
		return a.as_ptr();
	}
	let rows = aligned(pad, m.div_ceil(BLOCK) * BLOCK * k / 4);
	// SAFETY: `u32`s have no invalid bit patterns, and `i8` no alignment.
	let rows = unsafe { core::slice::from_raw_parts_mut(rows.as_mut_ptr() as *mut i8, rows.len() * 4) };
	rows[..m * k].copy_from_slice(a);
	rows[m * k..].fill(0);
	rows.as_ptr()
}

/// The first `words` of `v` from a 64-byte boundary on (`v` grown to hold them).
fn aligned(v: &mut Vec<u32>, words: usize) -> &mut [u32] {
	v.resize(words + 15, 0);
	let skip = (64 - v.as_ptr() as usize % 64) % 64 / 4;
	&mut v[skip..skip + words]
}

/// `Bt` (`n x k`, `k` a multiple of 64) packed as [`amx::Block`] reads it:
/// panels of 16 columns, `k / 4` rows of 16 quads each, as many as make
/// whole pairs (columns past `n` zero), from a 64-byte boundary in `out`,
/// where they start.
///
/// # Safety
/// AVX2 present; `bt.len() == n * k`.
#[target_feature(enable = "avx2")]
unsafe fn pack_columns(bt: &[i8], n: usize, k: usize, out: &mut Vec<u32>) -> *const u32 {
	let kq = k / 4;
	// (Every word is written below; no need to clear the old ones first.)
	let out = aligned(out, n.div_ceil(BLOCK) * BLOCK * kq);
	// SAFETY: every byte of an i8 is a valid u8.
	let bytes = unsafe { core::slice::from_raw_parts(bt.as_ptr() as *const u8, bt.len()) };
	for (p, panel) in out.chunks_exact_mut(16 * kq).enumerate() {
		let col0 = 16 * p;
		if col0 + 16 <= n {
			// SAFETY: AVX2 present; columns col0..col0+16 exist, kq quads each.
			unsafe { pack_panel(bytes, kq, col0, 0, panel) };
			continue;
		}
		panel.fill(0);
		for y in col0..n {
			for (q, quad) in bytes[y * k..][..k].chunks_exact(4).enumerate() {
				panel[q * 16 + y - col0] = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
			}
		}
	}
	out.as_ptr()
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::kernel::lcg_matrix as matrix;

	#[test]
	fn plain_blocks_match_the_naive_product_at_every_edge() {
		if !amx::available() {
			return;
		}
		for (m, n, k) in [(32, 32, 64), (1, 1, 64), (33, 17, 128), (64, 48, 192), (70, 100, 256), (160, 96, 4096)] {
			let (a, bt) = (matrix(m * k, 1), matrix(n * k, 2));
			let mut want = vec![0; m * n];
			crate::kernel::gemm_naive(&a, &bt, m, n, k, &mut want);
			let mut got = vec![7; m * n];
			assert_eq!(plain(&a, &bt, m, n, k, &mut got), Some(()));
			assert_eq!(got, want, "{m}x{n}x{k}");
		}
		let mut c = vec![0; 4];
		assert_eq!(plain(&[1; 2 * 32], &[1; 2 * 32], 2, 2, 32, &mut c), None, "k = 32 is left to another kernel");
	}

	#[test]
	fn rows_read_in_place_or_copied_give_the_same_product() {
		if !amx::available() {
			return;
		}
		let (m, n, k) = (64, 48, 256);
		let bt = matrix(n * k, 4);
		let room = matrix(m * k + 128, 3);
		let aligned_at = room.as_ptr().align_offset(64);
		// On a line's start (read in place), and 16 bytes past one (copied).
		for at in [aligned_at, aligned_at + 16] {
			let a = &room[at..at + m * k];
			let mut want = vec![0; m * n];
			crate::kernel::gemm_naive(a, &bt, m, n, k, &mut want);
			let mut got = vec![0; m * n];
			plain(a, &bt, m, n, k, &mut got).unwrap();
			assert_eq!(got, want, "A at offset {at}");
			let mut pad = Vec::new();
			assert_eq!(rows_aligned(a, m, k, &mut pad) == a.as_ptr(), at == aligned_at);
		}
	}

	#[test]
	fn extreme_values_match_the_reference() {
		if !amx::available() {
			return;
		}
		let (m, n, k) = (32, 32, 16384);
		let (a, bt) = (vec![-128i8; m * k], vec![-128i8; n * k]);
		let mut want = vec![0; m * n];
		crate::kernel::gemm_naive(&a, &bt, m, n, k, &mut want);
		let mut got = vec![0; m * n];
		plain(&a, &bt, m, n, k, &mut got).unwrap();
		assert_eq!(got, want);
	}
}
