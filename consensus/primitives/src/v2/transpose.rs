//! Matrix transposes for the miner: an operand's transpose (removing the
//! noise sums its columns, which are rows of the transpose) and the small
//! `r`-wide transposes of the noise removal.
//!
//! An operand is transposed once per chosen piece, `(m + n) * k` bytes, so
//! on x86_64 the `i8` transpose moves 16 x 16 blocks through SSE2 registers
//! (part of every x86_64 CPU: no feature detection) instead of byte by byte;
//! the edges that do not fill a block, and every other target, take the
//! scalar loop. Both give the same bytes (tested).

use alloc::{vec, vec::Vec};

/// `rows x cols` row-major into `cols x rows`, in 16 x 16 blocks.
pub(crate) fn transpose<T: Copy + Default>(v: &[T], rows: usize, cols: usize) -> Vec<T> {
	let mut out = vec![T::default(); rows * cols];
	scalar_blocks(v, rows, cols, &mut out, 0, 0);
	out
}

/// [`transpose`] for bytes, 16 x 16 blocks at a time where they are whole.
pub(crate) fn transpose_i8(v: &[i8], rows: usize, cols: usize) -> Vec<i8> {
	// Checked: the SSE2 blocks below read by pointer, so a product that
	// wrapped must not pass for the length.
	assert_eq!(rows.checked_mul(cols), Some(v.len()), "a {rows} x {cols} matrix");
	let mut out = vec![0i8; rows * cols];
	#[cfg(target_arch = "x86_64")]
	{
		let (whole_rows, whole_cols) = (rows - rows % 16, cols - cols % 16);
		for r0 in (0..whole_rows).step_by(16) {
			for c0 in (0..whole_cols).step_by(16) {
				// SAFETY: rows r0..r0+16 and columns c0..c0+16 are inside `v`
				// (rows x cols) and, transposed, inside `out` (cols x rows).
				unsafe { sse2::block(v.as_ptr().add(r0 * cols + c0), cols, out.as_mut_ptr().add(c0 * rows + r0), rows) }
			}
		}
		// The edges: the last rows % 16 rows, and the last cols % 16 columns.
		scalar_blocks(v, rows, cols, &mut out, whole_rows, 0);
		scalar_blocks(v, whole_rows, cols, &mut out, 0, whole_cols);
	}
	#[cfg(not(target_arch = "x86_64"))]
	scalar_blocks(v, rows, cols, &mut out, 0, 0);
	out
}

/// Transposes the part of `v` (`rows x cols`) from row `row0` and column
/// `col0` on into `out` (`cols x out_rows`, where `out_rows` is `out.len() /
/// cols`: the whole matrix's row count even when `rows` is a prefix).
fn scalar_blocks<T: Copy>(v: &[T], rows: usize, cols: usize, out: &mut [T], row0: usize, col0: usize) {
	if cols == 0 {
		return;
	}
	let out_rows = out.len() / cols;
	for r0 in (row0..rows).step_by(16) {
		for c0 in (col0..cols).step_by(16) {
			for r in r0..rows.min(r0 + 16) {
				for c in c0..cols.min(c0 + 16) {
					out[c * out_rows + r] = v[r * cols + c];
				}
			}
		}
	}
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
	use core::arch::x86_64::*;

	/// One 16 x 16 byte block: `dst[c * dst_stride + r] = src[r *
	/// src_stride + c]`. Each round interleaves vector `i` with vector `i +
	/// 8`, byte by byte; on the 8 bits (vector index, byte position) of an
	/// element that is a rotation left by one, so four rounds swap the two
	/// halves: the vector index becomes the column, the byte the row.
	///
	/// # Safety
	/// 16 rows of 16 bytes at `src` (stride `src_stride`) readable, and at
	/// `dst` (stride `dst_stride`) writable.
	pub(super) unsafe fn block(src: *const i8, src_stride: usize, dst: *mut i8, dst_stride: usize) {
		let mut x = [_mm_setzero_si128(); 16];
		for (i, row) in x.iter_mut().enumerate() {
			*row = _mm_loadu_si128(src.add(i * src_stride) as *const __m128i);
		}
		for _ in 0..4 {
			let mut y = [_mm_setzero_si128(); 16];
			for i in 0..8 {
				y[2 * i] = _mm_unpacklo_epi8(x[i], x[i + 8]);
				y[2 * i + 1] = _mm_unpackhi_epi8(x[i], x[i + 8]);
			}
			x = y;
		}
		for (i, col) in x.iter().enumerate() {
			_mm_storeu_si128(dst.add(i * dst_stride) as *mut __m128i, *col);
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_byte_transpose_is_the_scalar_one_on_every_edge() {
		for (rows, cols) in
			[(16, 16), (32, 48), (17, 16), (16, 33), (47, 31), (1, 40), (40, 1), (64, 4096), (3, 5), (0, 7)]
		{
			let v: Vec<i8> =
				(0..rows * cols).map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(7) as i8).collect();
			let want = {
				let mut out = vec![0i8; rows * cols];
				for r in 0..rows {
					for c in 0..cols {
						out[c * rows + r] = v[r * cols + c];
					}
				}
				out
			};
			assert_eq!(transpose_i8(&v, rows, cols), want, "{rows} x {cols}");
			assert_eq!(transpose(&v, rows, cols), want, "{rows} x {cols}, generic");
		}
	}
}
