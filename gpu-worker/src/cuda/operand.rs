//! Matrices the caller keeps in device memory and lends for one call: a
//! model's CUDA tensors, described as DLPack describes them (an address,
//! a shape, strides in elements), never copied to the host
//! (gpu-worker/docs/in-process-cuda.md, stage 1).
//!
//! Everything here is arithmetic on the description, checked before any
//! kernel reads the memory: the shapes agree, nothing is empty, the depth
//! keeps the int32 product exact, and every address a kernel will form is
//! computed without overflow. Whether the memory is really the device's
//! (and large enough) the driver says, in the launcher
//! ([`super::inproc`]).

use crate::session::MAX_DEPTH;
use std::ops::Range;

/// An `i8` matrix in device memory: element `(i, j)` is at byte
/// `ptr + i * row_stride + j * col_stride`. A weight `out x in` in
/// PyTorch's layout is a `Bt` as it is; its `.t()` view is the same memory
/// with the strides swapped ([`Self::t`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceMatrix {
	/// The address of element (0, 0) (a DLPack tensor's `data +
	/// byte_offset`).
	pub ptr: u64,
	pub rows: u32,
	pub cols: u32,
	/// Elements between consecutive rows.
	pub row_stride: u64,
	/// Elements between consecutive columns.
	pub col_stride: u64,
}

/// An `i32` output in device memory, rows `ldc` elements apart, columns
/// adjacent (what every GEMM writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceOut {
	pub ptr: u64,
	pub rows: u32,
	pub cols: u32,
	/// Elements between consecutive rows (at least `cols`).
	pub ldc: u64,
}

/// A value outside -64..63 that a kernel found: its row and column (in
/// the matrix or block checked) and the value.
pub type OutOfRange = (u32, u32, i8);

/// Why a call's device operands were refused, before anything was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.write_str(&self.0)
	}
}

impl std::error::Error for Refused {}

fn refuse<T>(why: String) -> Result<T, Refused> {
	Err(Refused(why))
}

/// The last element's offset from the first, `(rows - 1) * rs + (cols -
/// 1) * cs`, in elements; `None` when it overflows.
fn last(rows: u32, cols: u32, rs: u64, cs: u64) -> Option<u64> {
	u64::from(rows.checked_sub(1)?).checked_mul(rs)?.checked_add(u64::from(cols.checked_sub(1)?).checked_mul(cs)?)
}

impl DeviceMatrix {
	/// A row-major matrix with contiguous rows.
	pub fn row_major(ptr: u64, rows: u32, cols: u32) -> Self {
		Self { ptr, rows, cols, row_stride: u64::from(cols), col_stride: 1 }
	}

	/// The transposed view: the same memory, rows and columns swapped.
	pub fn t(&self) -> Self {
		Self { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..*self }
	}

	/// The bytes from `ptr` to one past the last element, the span the
	/// allocation must hold; refused when empty or when it overflows.
	pub fn span(&self, what: &str) -> Result<u64, Refused> {
		if self.rows == 0 || self.cols == 0 {
			return refuse(format!("{what} is empty ({} x {})", self.rows, self.cols));
		}
		match last(self.rows, self.cols, self.row_stride, self.col_stride)
			.and_then(|l| l.checked_add(1))
			.filter(|span| self.ptr.checked_add(*span).is_some())
		{
			Some(span) => Ok(span),
			None => refuse(format!(
				"{what}'s strides ({}, {}) over {} x {} reach past the address space",
				self.row_stride, self.col_stride, self.rows, self.cols
			)),
		}
	}

	/// The block `rows x cols` of this matrix, its corner at (`rows.start`,
	/// `cols.start`): the description a kernel gets for one piece.
	/// The ranges must lie inside the matrix (the planner's blocks do).
	pub fn block(&self, rows: Range<u32>, cols: Range<u32>) -> Self {
		debug_assert!(rows.end <= self.rows && cols.end <= self.cols && !rows.is_empty() && !cols.is_empty());
		let offset = u64::from(rows.start) * self.row_stride + u64::from(cols.start) * self.col_stride;
		Self { ptr: self.ptr + offset, rows: rows.len() as u32, cols: cols.len() as u32, ..*self }
	}
}

impl DeviceOut {
	/// A row-major output with contiguous rows.
	pub fn row_major(ptr: u64, rows: u32, cols: u32) -> Self {
		Self { ptr, rows, cols, ldc: u64::from(cols) }
	}

	/// The bytes from `ptr` to one past the last element (4 a value).
	pub fn span(&self) -> Result<u64, Refused> {
		if self.rows == 0 || self.cols == 0 {
			return refuse(format!("the output is empty ({} x {})", self.rows, self.cols));
		}
		if self.ldc < u64::from(self.cols) {
			return refuse(format!("the output's rows overlap: {} apart, {} wide", self.ldc, self.cols));
		}
		match last(self.rows, self.cols, self.ldc, 1)
			.and_then(|l| l.checked_add(1)?.checked_mul(4))
			.filter(|span| self.ptr.checked_add(*span).is_some())
		{
			Some(span) => Ok(span),
			None => refuse(format!(
				"the output's {} x {} (ldc {}) reach past the address space",
				self.rows, self.cols, self.ldc
			)),
		}
		.and_then(|span| {
			if !self.ptr.is_multiple_of(4) {
				refuse(format!("the output's address {:#x} is not 4-byte aligned", self.ptr))
			} else {
				Ok(span)
			}
		})
	}

	/// The block `rows x cols` of this output.
	pub fn block(&self, rows: Range<u32>, cols: Range<u32>) -> Self {
		debug_assert!(rows.end <= self.rows && cols.end <= self.cols && !rows.is_empty() && !cols.is_empty());
		let offset = (u64::from(rows.start) * self.ldc + u64::from(cols.start)) * 4;
		Self { ptr: self.ptr + offset, rows: rows.len() as u32, cols: cols.len() as u32, ..*self }
	}
}

/// The spans of `C = A * Bt^T` (`A` is `m x depth`, `Bt` is `n x depth`,
/// `C` is `m x n`), each operand's in bytes, once the shapes agree, the
/// output shares no byte with either operand (the kernels read the
/// operands while they write it), and the depth is one whose sums stay
/// inside int32 for 7-bit values ([`MAX_DEPTH`]; the values themselves are
/// checked on the device); refused with the reason otherwise. Nothing is
/// read.
pub fn check_product(a: &DeviceMatrix, bt: &DeviceMatrix, out: &DeviceOut) -> Result<[u64; 3], Refused> {
	let spans = [a.span("A")?, bt.span("B")?, out.span()?];
	let overlap = |p: u64, span: u64| p < out.ptr + spans[2] && out.ptr < p + span;
	if overlap(a.ptr, spans[0]) || overlap(bt.ptr, spans[1]) {
		return refuse("the output shares memory with an operand: give it its own tensor".into());
	}
	if a.cols != bt.cols {
		return refuse(format!(
			"A is {} x {} and B is {} x {}: the inner dimensions differ",
			a.rows, a.cols, bt.cols, bt.rows
		));
	}
	if (out.rows, out.cols) != (a.rows, bt.rows) {
		return refuse(format!("the output is {} x {}, the product {} x {}", out.rows, out.cols, a.rows, bt.rows));
	}
	if a.cols as usize > MAX_DEPTH {
		return refuse(format!(
			"the inner dimension {} is over {MAX_DEPTH}: the int32 product could overflow; split it and add",
			a.cols
		));
	}
	Ok(spans)
}

#[cfg(test)]
mod tests {
	use super::*;

	const A: DeviceMatrix = DeviceMatrix { ptr: 0x1000, rows: 3, cols: 5, row_stride: 5, col_stride: 1 };

	#[test]
	fn spans_are_the_bytes_the_kernels_reach() {
		assert_eq!(A.span("A"), Ok(15));
		// The transposed view reaches the same bytes.
		assert_eq!(A.t().span("A"), Ok(15));
		assert_eq!(A.t(), DeviceMatrix { rows: 5, cols: 3, row_stride: 1, col_stride: 5, ..A });
		// A padded row stride: the last row needs only its own columns.
		assert_eq!(DeviceMatrix { row_stride: 8, ..A }.span("A"), Ok(2 * 8 + 5));
		assert_eq!(DeviceOut { ptr: 0x2000, rows: 2, cols: 3, ldc: 4 }.span(), Ok((4 + 3) * 4));
	}

	#[test]
	fn blocks_start_at_their_corner() {
		let b = A.block(1..3, 2..5);
		assert_eq!((b.ptr, b.rows, b.cols), (0x1000 + 5 + 2, 2, 3));
		let t = A.t().block(2..5, 1..3);
		assert_eq!((t.ptr, t.rows, t.cols, t.row_stride), (0x1000 + 2 + 5, 3, 2, 1));
		let out = DeviceOut::row_major(0x2000, 4, 6).block(2..4, 3..6);
		assert_eq!((out.ptr, out.rows, out.cols, out.ldc), (0x2000 + (2 * 6 + 3) * 4, 2, 3, 6));
	}

	#[test]
	fn bad_descriptions_are_refused_with_the_reason() {
		let bt = DeviceMatrix::row_major(0x3000, 4, 5);
		let out = DeviceOut::row_major(0x4000, 3, 4);
		assert_eq!(check_product(&A, &bt, &out), Ok([15, 20, 48]));
		let cases: Vec<(DeviceMatrix, DeviceMatrix, DeviceOut, &str)> = vec![
			(DeviceMatrix { rows: 0, ..A }, bt, out, "A is empty"),
			(A, DeviceMatrix { cols: 0, ..bt }, out, "B is empty"),
			(A, DeviceMatrix::row_major(0x3000, 4, 6), out, "inner dimensions differ"),
			(A, bt, DeviceOut::row_major(0x4000, 3, 5), "the product 3 x 4"),
			(A, bt, DeviceOut { ldc: 3, ..out }, "rows overlap"),
			(A, bt, DeviceOut { ptr: 0x4002, ..out }, "not 4-byte aligned"),
			(DeviceMatrix { row_stride: u64::MAX / 2, ..A }, bt, out, "past the address space"),
			(DeviceMatrix { ptr: u64::MAX - 10, ..A }, bt, out, "past the address space"),
			(A, bt, DeviceOut { ldc: u64::MAX / 4, ..out }, "past the address space"),
			(A, bt, DeviceOut { ptr: 0x1000 + 12, ..out }, "shares memory"),
			(A, bt, DeviceOut { ptr: 0x3000 - 44, ..out }, "shares memory"),
			(
				DeviceMatrix::row_major(0x1000, 1, MAX_DEPTH as u32 + 1),
				DeviceMatrix::row_major(0x1000_0000, 1, MAX_DEPTH as u32 + 1),
				DeviceOut::row_major(0x2000_0000, 1, 1),
				"could overflow",
			),
		];
		for (a, bt, out, why) in cases {
			let got = check_product(&a, &bt, &out).expect_err(why).0;
			assert!(got.contains(why), "{why}: {got}");
		}
	}
}
