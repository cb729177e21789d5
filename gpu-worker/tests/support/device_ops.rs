//! What the device-operand kernels (kernels/device.cu) must compute, from
//! the host functions they stand for, and the layouts both the host
//! harness test and the GPU test run them over.
#![allow(dead_code)]

use mlpow_worker::{cuda::operand::DeviceMatrix, jobs::plan, kernels::CTX_PIECE_SALT};

/// A `rows x cols` matrix laid out in a buffer: row-major with rows
/// `pad` elements longer than needed and (0, 0) at element `offset`, or
/// (`transposed`) column-major the same way, as a `.t()` view of a
/// row-major tensor is.
pub fn layout(rows: u32, cols: u32, pad: u64, offset: u64, transposed: bool) -> DeviceMatrix {
	if transposed {
		DeviceMatrix { ptr: offset, rows, cols, row_stride: 1, col_stride: u64::from(rows) + pad }
	} else {
		DeviceMatrix { ptr: offset, rows, cols, row_stride: u64::from(cols) + pad, col_stride: 1 }
	}
}

/// Elements a buffer needs for `m`.
pub fn buffer_len(m: &DeviceMatrix) -> usize {
	(m.ptr + u64::from(m.rows - 1) * m.row_stride + u64::from(m.cols - 1) * m.col_stride + 1) as usize
}

/// A buffer holding `values` (row-major, `m.rows x m.cols`) where `m`
/// places them, `fill` everywhere else.
pub fn place<T: Copy>(values: &[T], m: &DeviceMatrix, fill: T) -> Vec<T> {
	let mut buf = vec![fill; buffer_len(m)];
	for i in 0..m.rows as u64 {
		for j in 0..m.cols as u64 {
			buf[(m.ptr + i * m.row_stride + j * m.col_stride) as usize] = values[(i * u64::from(m.cols) + j) as usize];
		}
	}
	buf
}

/// The row-major values `m` describes in `buf`.
pub fn gather<T: Copy>(buf: &[T], m: &DeviceMatrix) -> Vec<T> {
	let mut out = Vec::with_capacity(m.rows as usize * m.cols as usize);
	for i in 0..m.rows as u64 {
		for j in 0..m.cols as u64 {
			out.push(buf[(m.ptr + i * m.row_stride + j * m.col_stride) as usize]);
		}
	}
	out
}

/// Deterministic 7-bit values.
pub fn values(len: usize, salt: u64) -> Vec<i8> {
	let mut state = salt;
	(0..len)
		.map(|_| {
			state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
			((state >> 33) % 128) as i8 - 64
		})
		.collect()
}

/// The salt values of a piece's rows for `seed`: byte `x` of the XOF of
/// derive_key(CTX_PIECE_SALT, seed), shifted right by one as a signed
/// byte, as `plan::Salt` makes its values.
pub fn salt_values(seed: &[u8; 32], rows: usize) -> Vec<i8> {
	let mut bytes = vec![0u8; rows];
	blake3::Hasher::new_derive_key(CTX_PIECE_SALT).update(seed).finalize_xof().fill(&mut bytes);
	bytes.into_iter().map(|b| (b as i8) >> 1).collect()
}

/// The piece the host path makes of the block `block` describes in `buf`:
/// `plan::padded` to `height x k`, then `plan::salt_a` (salt in column
/// k - 1) or `salt_bt` (k - 2), with the seed's salt.
pub fn reference_piece(
	buf: &[i8],
	block: &DeviceMatrix,
	(height, k): (u32, u32),
	salt_col: u32,
	seed: &[u8; 32],
) -> Vec<i8> {
	let (rows, depth, height, k) = (block.rows as usize, block.cols as usize, height as usize, k as usize);
	let mut piece = plan::padded(&gather(buf, block), depth, &(0..rows), &(0..depth), height, k);
	let mut salt = salt_values(seed, height).into_iter();
	let mut next = move || salt.next().expect("a salt value a row");
	if salt_col as usize == k - 1 {
		plan::salt_a(&mut piece, k, &mut next);
	} else {
		plan::salt_bt(&mut piece, k, &mut next);
	}
	piece
}

/// `a * bt^T` (`a` is `m x k`, `bt` is `n x k`, row-major).
pub fn product(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize) -> Vec<i32> {
	let mut c = vec![0; m * n];
	mlpow_primitives::kernel::gemm_naive(a, bt, m, n, k, &mut c);
	c
}

/// The first value of `m` outside -64..63 in row-major order, read on the host.
pub fn first_bad(buf: &[i8], m: &DeviceMatrix) -> Option<(u32, u32, i8)> {
	gather(buf, m)
		.into_iter()
		.enumerate()
		.find(|(_, v)| !(-64..=63).contains(v))
		.map(|(idx, v)| ((idx / m.cols as usize) as u32, (idx % m.cols as usize) as u32, v))
}
