// Kernels for operands that already live on the device: a model's CUDA
// tensors, multiplied (and mined) in the model's own process without a copy
// to the host (issue 24; gpu-worker/docs/in-process-cuda.md, stage 1).
// Each is what the host path does with host slices, done where the data is:
//
// - `mlpow2_range`: the first value of a strided matrix outside v2's input
//   range -64..63 (the host path checks it in `Session::matmul`), and
//   optionally a row-major copy of what it checked (a registered weight's
//   own copy, made and checked in one pass);
// - `mlpow2_piece`: one puzzle piece cut out of a strided matrix, zero-
//   padded and salted (`jobs::plan::padded` + `salt_a` / `salt_bt`);
// - `mlpow2_fv_x`, `mlpow2_fv_bt`, `mlpow2_fv_part`, `mlpow2_fv_rows`:
//   Freivalds' check that the output is the product (`freivalds::holds`,
//   the same arithmetic modulo 2^64 and the same random vector for a seed),
//   so that no product computed on the device reaches a caller unchecked;
// - `mlpow_gemm_i8`: a plain exact product of strided operands, slow and
//   simple, for shapes and strides cuBLASLt has no algorithm for.
//
// Strides are in elements and never negative (the host refuses negative
// ones); a matrix argument points at its first element to be read, the
// host having offset it to a block's corner. As in mine.cu, each kernel is a
// per-thread body (`*_one`) plus a `__global__` wrapper; tests/host_device.cpp
// runs the bodies on the CPU against the Rust functions named above.
//
// NVRTC gets this file appended to the others with the include below
// dropped (kernels.rs `source()`); the host harness includes it.

#ifndef MLPOW_DEVICE_CU
#define MLPOW_DEVICE_CU

#include "mine.cu"

// Item `idx` of a `rows x cols` matrix in row-major order: (idx / cols,
// idx % cols) at `m[(idx / cols) * rs + (idx % cols) * cs]`.
MLPOW_FN u64 device_at(u64 idx, u64 cols, u64 rs, u64 cs) {
	return (idx / cols) * rs + (idx % cols) * cs;
}

// Range check, item `idx` (row-major) of a `_ x cols` matrix: a value
// outside -64..63 lowers `*first_bad` to `idx << 8 | the value's byte`
// (the host starts it at u64::MAX; the smallest index wins, and its value
// comes with it for the message). With `copy` (else null), the value read
// is stored at `copy[idx]`: the copy holds exactly what was checked, even
// if the source changes meanwhile.
MLPOW_FN void mlpow2_range_one(u64 idx, const i8 *m, u64 cols, u64 rs, u64 cs, u64 *first_bad, i8 *copy) {
	const i8 v = m[device_at(idx, cols, rs, cs)];
	if (copy) copy[idx] = v;
	if (v < -64 || v > 63) {
		const u64 key = idx << 8 | (u64)(unsigned char)v;
#ifdef __CUDACC__
		atomicMin(first_bad, key);
#else
		if (key < *first_bad) *first_bad = key;
#endif
	}
}

// The salt of row `x` of a piece: byte `x` of the XOF of
// derive_key(salt context, seed) (the stream `mlpow_generate_one` writes for
// a seed without a nonce), as a 7-bit value: the byte as a signed one,
// shifted right by one (floor), as `jobs::plan::Salt` makes its values. The
// host draws a fresh secret seed per piece: a salt anyone could predict
// would hide nothing.
MLPOW_FN i8 mlpow2_salt_value(u64 x, Words8 salt_key, Words8 seed) {
	u32 material[16] = {0};
	for (int w = 0; w < 8; w++) material[w] = seed.w[w];
	u32 block[16];
	b3_xof_block(salt_key.w, material, 32, x / 64, block);
	const int byte = (int)(signed char)(unsigned char)(block[(x % 64) / 4] >> (8 * (x % 4)));
	// Floor of byte / 2, written out (a right shift of a negative value is
	// implementation-defined before C++20).
	return (i8)(byte >= 0 ? byte / 2 : -((1 - byte) / 2));
}

// Piece item `idx` of a `_ x k` piece (row-major): the source's value at
// (x, z) inside the block (`rows x depth` of `src`, which points at the
// block's corner), 0 outside it, and row x's salt in column `salt_col`
// (k - 1 for a piece's A, k - 2 for its Bt; the block's depth stops at
// k - 2, so the salt never covers data). Every row is salted, padding rows
// too, as the host's `salt_a` / `salt_bt` do. A value copied from `src`
// outside -64..63 lowers `*first_bad` as `mlpow2_range` does (its index in
// the block, row-major, `x * depth + z`): what the piece holds is what was
// checked, whatever the caller's memory held before.
MLPOW_FN void mlpow2_piece_one(u64 idx, i8 *piece, u32 k, const i8 *src, u64 rs, u64 cs, u32 rows, u32 depth,
	u32 salt_col, Words8 salt_key, Words8 seed, u64 *first_bad) {
	const u64 x = idx / k;
	const u32 z = (u32)(idx % k);
	i8 v = 0;
	if (z == salt_col) {
		v = mlpow2_salt_value(x, salt_key, seed);
	} else if (x < rows && z < depth) {
		v = src[x * rs + z * cs];
		if (v < -64 || v > 63) {
			const u64 key = (x * depth + z) << 8 | (u64)(unsigned char)v;
#ifdef __CUDACC__
			atomicMin(first_bad, key);
#else
			if (key < *first_bad) *first_bad = key;
#endif
		}
	}
	piece[idx] = v;
}

// Freivalds' random vector: x[y] is the y-th value (from 0) of SplitMix64
// seeded with `seed`, as `freivalds::holds` draws them, so that a seed
// gives the host's vector exactly.
MLPOW_FN void mlpow2_fv_x_one(u64 y, u64 seed, u64 *x) {
	u64 z = seed + (y + 1) * 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	x[y] = z ^ (z >> 31);
}

// yvec[z] = sum over y < cols of Bt[y][z] * x[y] (mod 2^64), a thread per
// z < depth: Bt^T x. Bt is `cols x depth` with strides (rs, cs) (a weight
// `out x in`, or its transpose's view).
MLPOW_FN void mlpow2_fv_bt_one(u64 z, const i8 *bt, u64 rs, u64 cs, u32 cols, const u64 *x, u64 *yvec) {
	u64 acc = 0;
	for (u32 y = 0; y < cols; y++) acc += (u64)(long long)bt[y * rs + z * cs] * x[y];
	yvec[z] = acc;
}

// Part `p` of row `i`'s check, idx = i * parts + p: the sum over columns
// y = p, p + parts, ... of C[i][y] x[y], less the sum over depth
// z = p, p + parts, ... of A[i][z] yvec[z] (mod 2^64). Consecutive threads
// read consecutive columns of one row. Row i holds iff its parts add to 0.
MLPOW_FN void mlpow2_fv_part_one(u64 idx, u32 parts, const i32 *c, u64 ldc, u32 cols, const i8 *a, u64 ars,
	u64 acs, u32 depth, const u64 *x, const u64 *yvec, u64 *partial) {
	const u64 i = idx / parts;
	const u32 p = (u32)(idx % parts);
	u64 acc = 0;
	// u64 indices: `y + parts` must not wrap for any u32 width.
	for (u64 y = p; y < cols; y += parts) acc += (u64)(long long)c[i * ldc + y] * x[y];
	for (u64 z = p; z < depth; z += parts) acc -= (u64)(long long)a[i * ars + z * acs] * yvec[z];
	partial[idx] = acc;
}

// Row `i`'s verdict: its parts' sum; a row that does not hold adds one to
// `*bad` (the host starts it at 0).
MLPOW_FN void mlpow2_fv_row_one(u64 i, u32 parts, const u64 *partial, u32 *bad) {
	u64 sum = 0;
	for (u32 p = 0; p < parts; p++) sum += partial[i * parts + p];
	if (sum != 0) {
#ifdef __CUDACC__
		atomicAdd(bad, 1u);
#else
		*bad += 1;
#endif
	}
}

// Output item `idx` of a `_ x cols` product: the sum over z < depth of
// A[i][z] * Bt[j][z], stored into (or, with `accumulate`, added to) c[i][j]
// (row stride `ldc`). A thread an output: exact and slow, for what cuBLASLt
// cannot take.
MLPOW_FN void mlpow_gemm_i8_one(u64 idx, const i8 *a, u64 ars, u64 acs, const i8 *bt, u64 brs, u64 bcs, i32 *c,
	u64 ldc, u32 cols, u32 depth, int accumulate) {
	const u64 i = idx / cols, j = idx % cols;
	u32 acc = 0;
	for (u32 z = 0; z < depth; z++) acc += (u32)((i32)a[i * ars + z * acs] * (i32)bt[j * brs + z * bcs]);
	i32 *d = c + i * ldc + j;
	*d = (i32)(accumulate ? (u32)*d + acc : acc);
}

#ifdef __CUDACC__
extern "C" __global__ void mlpow2_range(const i8 *m, u64 items, u64 cols, u64 rs, u64 cs, u64 *first_bad,
	i8 *copy) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < items) mlpow2_range_one(idx, m, cols, rs, cs, first_bad, copy);
}

extern "C" __global__ void mlpow2_piece(i8 *piece, u64 items, u32 k, const i8 *src, u64 rs, u64 cs, u32 rows,
	u32 depth, u32 salt_col, Words8 salt_key, Words8 seed, u64 *first_bad) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < items) mlpow2_piece_one(idx, piece, k, src, rs, cs, rows, depth, salt_col, salt_key, seed, first_bad);
}

extern "C" __global__ void mlpow2_fv_x(u64 seed, u64 cols, u64 *x) {
	u64 y = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (y < cols) mlpow2_fv_x_one(y, seed, x);
}

extern "C" __global__ void mlpow2_fv_bt(const i8 *bt, u64 rs, u64 cs, u32 cols, u64 depth, const u64 *x,
	u64 *yvec) {
	u64 z = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (z < depth) mlpow2_fv_bt_one(z, bt, rs, cs, cols, x, yvec);
}

extern "C" __global__ void mlpow2_fv_part(u64 items, u32 parts, const i32 *c, u64 ldc, u32 cols, const i8 *a,
	u64 ars, u64 acs, u32 depth, const u64 *x, const u64 *yvec, u64 *partial) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < items) mlpow2_fv_part_one(idx, parts, c, ldc, cols, a, ars, acs, depth, x, yvec, partial);
}

extern "C" __global__ void mlpow2_fv_rows(u64 rows, u32 parts, const u64 *partial, u32 *bad) {
	u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < rows) mlpow2_fv_row_one(i, parts, partial, bad);
}

extern "C" __global__ void mlpow_gemm_i8(const i8 *a, u64 ars, u64 acs, const i8 *bt, u64 brs, u64 bcs, i32 *c,
	u64 ldc, u64 items, u32 cols, u32 depth, int accumulate) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < items) mlpow_gemm_i8_one(idx, a, ars, acs, bt, brs, bcs, c, ldc, cols, depth, accumulate);
}
#endif

#endif  // MLPOW_DEVICE_CU
