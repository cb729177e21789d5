// Puzzle v2 on the GPU (consensus/SPEC-v2.md): the noisy operands, the
// product with every tile's transcript folded into its accumulators, the
// tickets, and (for useful jobs) the noise taken back out.
//
// Per nonce, on one stream:
// 1. `mlpow_generate` (mine.cu) writes the raw stream bytes of `E_L` and
//    `G_L` from the noise seed; the host computes the selections (a
//    sequential shuffle) and uploads them;
// 2. `mlpow2_noisy` writes `A' = A + E_L*S` and `Bt' = Bt + G_L*S'`
//    (memory-bound, 16 bytes a thread);
// 3. `mlpow2_transcript` multiplies them with int8 tensor cores (mma.sync),
//    XORs every accumulator into its fold register every `r` of `k`,
//    reduces each t x t tile's folds to its 16-word state in shared memory,
//    hashes the state into the ticket and appends winners. The raw product
//    never reaches memory; for a useful job it writes `C' - D`, the exact
//    product `A * Bt^T` (into the caller's memory: any row stride, stored
//    or added), where `D = U*G_L^T + E_L*V^T` is the rank-2r
//    correction, `U = A*S'^T` and `V = (S*Bt'^T)^T` (4. `mlpow2_column_sums`
//    beforehand). The transcript kernel computes `D` itself, in its
//    epilogue, on the tensor cores, from the int8 limbs of `U` and `V`
//    (`mlpow2_limbs`; "The fused correction" below), so the product is
//    written once and nothing else of size m x n is (the wgmma kernel,
//    v2_wgmma.cu, the same way).
//
// As in mine.cu, each kernel is a per-thread body plus a `__global__`
// wrapper. `mlpow2_transcript` is built from per-lane pieces (staging,
// fragment loads, the fold, the epilogue) that tests/host_kernels_v2.cpp
// runs on the CPU, with the tensor-core instruction emulated from the PTX
// ISA's fragment tables; a GPU test then runs the real kernel.

#ifndef MLPOW_V2_CU
#define MLPOW_V2_CU

#include "mine.cu"

// Block tile 128 x 128, staged 32 columns of k at a time; 8 warps, each
// 64 rows x 32 columns: 4 x 4 fragments of 16 x 8, 64 accumulators and 64
// fold registers a thread.
#define V2_BM 128
#define V2_BN 128
#define V2_BK 32
// Bytes per staged row: 32 plus 16 of padding, which puts the 8 rows a
// fragment load touches on distinct shared-memory banks.
#define V2_ROW 48
#define V2_STAGES 4
#define V2_THREADS 256
#define V2_MF 4
#define V2_NF 4
#define V2_STAGE_BYTES (V2_BM * V2_ROW)

typedef unsigned char u8;

#ifdef __CUDACC__
#define V2_UNROLL _Pragma("unroll")
#else
#include <string.h>
#define V2_UNROLL
#endif

MLPOW_FN i8 v2_seven(i8 raw) {
	return (i8)(raw >> 1);
}

MLPOW_FN u32 v2_rotl(u32 x, u32 n) {
	return n == 0 ? x : (x << n) | (x >> (32 - n));
}

// 16 consecutive bytes of a noisy operand, group `idx` of a `rows x k`
// matrix (k a multiple of 16): `dst = src + seven(left[row][sel[z]])`.
// `src` holds values, or raw stream bytes when `raw` (seeded matrices,
// mapped by `seven` here). `left` holds raw stream bytes of `E_L` or `G_L`
// (`rows x r`). Sums wrap like the reference's `wrapping_add`.
MLPOW_FN void mlpow2_noisy_one(u64 idx, i8 *dst, const i8 *src, int raw, const i8 *left, const u8 *sel, u32 k,
	u32 r) {
	u64 first = idx * 16;
	u64 row = first / k;
	u32 z0 = (u32)(first % k);
	const i8 *l = left + row * r;
	u8 in[16], out[16];
#ifdef __CUDACC__
	*(uint4 *)in = *(const uint4 *)(src + first);
#else
	memcpy(in, src + first, 16);
#endif
	V2_UNROLL
	for (int b = 0; b < 16; b++) {
		i8 v = (i8)in[b];
		if (raw) v = v2_seven(v);
		i8 noise = v2_seven(l[sel[z0 + b] & (r - 1)]);
		out[b] = (u8)(v + noise);
	}
#ifdef __CUDACC__
	*(uint4 *)(dst + first) = *(const uint4 *)out;
#else
	memcpy(dst + first, out, 16);
#endif
}

// Entry `idx` of a `rows x r` matrix of column sums: `out[row][q]` is the
// sum over chunks c of `src[row][c*r + inv[c*r + q]]`, where `inv` inverts
// each chunk's selection (so the column of chunk c selected as q). With
// `src = A` and `inv` from `s'` this is `A * S'^T`; with `src = Bt'` and
// `inv` from `s`, `(S * Bt'^T)^T`.
MLPOW_FN void mlpow2_column_sums_one(u64 idx, i32 *out, const i8 *src, const u8 *inv, u32 k, u32 r) {
	u64 row = idx / r;
	u32 q = (u32)(idx % r);
	const i8 *s = src + row * k;
	i32 sum = 0;
	for (u32 c = 0; c < k / r; c++) sum += s[c * r + (inv[c * r + q] & (r - 1))];
	out[idx] = sum;
}

#include "v2_correction.cuh"

// The ticket: keyed_hash(key, i u32 LE || j u32 LE || W[0..16] u32 LE), 72
// bytes, two compressions.
MLPOW_FN void v2_ticket(const u32 key[8], u32 i, u32 j, const u32 w[16], u32 digest[8]) {
	u32 m[16], out[16], cv[8];
	m[0] = i;
	m[1] = j;
	for (int q = 0; q < 14; q++) m[2 + q] = w[q];
	b3_compress(key, m, 0, 64, B3_KEYED_HASH | B3_CHUNK_START, out);
	for (int q = 0; q < 8; q++) cv[q] = out[q];
	for (int q = 0; q < 16; q++) m[q] = 0;
	m[0] = w[14];
	m[1] = w[15];
	b3_compress(cv, m, 0, 8, B3_KEYED_HASH | B3_CHUNK_END | B3_ROOT, out);
	for (int q = 0; q < 8; q++) digest[q] = out[q];
}

// --- The transcript kernel, in per-lane pieces. ---
//
// Warp `w` of the block covers rows (w / 4) * 64 .. +64 and columns
// (w % 4) * 32 .. +32 of the block tile. Lane `l` is in group g = l / 4,
// position p = l % 4 within it. Fragments follow the PTX ISA's tables for
// mma.m16n8k32 with .s8 operands ("Matrix Fragments for mma.m16n8k32"):
//   A (16 x 32, row-major): register 0 holds row g, columns 4p..4p+3;
//     register 1 row g+8, same columns; registers 2 and 3 the same rows at
//     columns 16+4p..;
//   B (32 x 8, column-major, so a row of Bt): register 0 holds column g,
//     rows 4p..4p+3 of k; register 1 rows 16+4p..;
//   C (16 x 8): registers 0 and 1 row g, columns 2p and 2p+1; registers 2
//     and 3 row g+8.

struct V2Lane {
	i32 acc[V2_MF][V2_NF][4];
	u32 fold[V2_MF][V2_NF][4];
};



// Accumulator (mf, nf, e) of lane `lane` in warp `warp`: its row and column
// within the block tile.
MLPOW_FN u32 v2_acc_row(u32 warp, u32 lane, int mf, int e) {
	return (warp >> 2) * 64 + mf * 16 + (lane >> 2) + (e >= 2 ? 8 : 0);
}

MLPOW_FN u32 v2_acc_col(u32 warp, u32 lane, int nf, int e) {
	return (warp & 3) * 32 + nf * 8 + (lane & 3) * 2 + (e & 1);
}

// Fragments come from a staged tile (rows of V2_ROW bytes, k along the
// row) with ldmatrix.x4: lane l gives the address of row l % 8 of 8 x 16-byte
// matrix l / 8, and register q of lane l receives bytes 4 (l % 4) .. + 4 of
// row l / 4 of matrix q, exactly an int8 fragment register. For A's
// fragment `mf`, matrix q is register q: rows +8 when q is odd, k +16 when
// q >= 2.
MLPOW_FN u32 v2_ldsm_a_offset(u32 warp, u32 lane, int mf) {
	u32 q = lane >> 3;
	return ((warp >> 2) * 64 + mf * 16 + (q & 1) * 8 + (lane & 7)) * V2_ROW + (q >> 1) * 16;
}

// For B's fragments `2h` and `2h + 1` at once: matrix q is register q & 1
// (k +16) of fragment 2h + q / 2.
MLPOW_FN u32 v2_ldsm_b_offset(u32 warp, u32 lane, int h) {
	u32 q = lane >> 3;
	return ((warp & 3) * 32 + (2 * h + (q >> 1)) * 8 + (lane & 7)) * V2_ROW + (q & 1) * 16;
}

// After chunk c's last k-step: every accumulator (the running sum P_c)
// XORed into its fold.
MLPOW_FN void v2_lane_fold(V2Lane *s) {
	V2_UNROLL
	for (int a = 0; a < V2_MF; a++)
		V2_UNROLL
		for (int b = 0; b < V2_NF; b++)
			V2_UNROLL
			for (int e = 0; e < 4; e++) s->fold[a][b][e] ^= (u32)s->acc[a][b][e];
}

// Thread `tid`'s share of staging k-step `kt`: one 16-byte piece of A's
// 128 x 32 tile and one of Bt's. Returns where it goes in the stage and
// where it comes from.
MLPOW_FN u32 v2_stage_offset(u32 tid) {
	return (tid >> 1) * V2_ROW + (tid & 1) * 16;
}

MLPOW_FN u64 v2_global_offset(u32 tid, u32 block_first_row, u32 kt, u32 k) {
	return (u64)(block_first_row + (tid >> 1)) * k + (u64)kt * V2_BK + (tid & 1) * 16;
}

// The block's tiles: t divides 128, so each t x t tile lies in one block,
// `per = 128 / t` to a side.
MLPOW_FN u32 v2_local_tile(u32 row, u32 col, u32 t) {
	return (row / t) * (V2_BM / t) + col / t;
}

// Lane's contribution to the tile states `sw` (16 words per local tile):
// W[y mod 16] ^= rotl(fold[x][y], x mod 32) for each of its folds.
MLPOW_FN void v2_lane_reduce(const V2Lane *s, u32 warp, u32 lane, u32 t, u32 *sw) {
	V2_UNROLL
	for (int a = 0; a < V2_MF; a++)
		V2_UNROLL
		for (int b = 0; b < V2_NF; b++)
			V2_UNROLL
			for (int e = 0; e < 4; e++) {
				u32 row = v2_acc_row(warp, lane, a, e), col = v2_acc_col(warp, lane, b, e);
				u32 x = row % t, y = col % t;
				u32 word = v2_rotl(s->fold[a][b][e], x & 31);
				u32 *dst = &sw[v2_local_tile(row, col, t) * 16 + (y & 15)];
#ifdef __CUDACC__
				atomicXor(dst, word);
#else
				*dst ^= word;
#endif
			}
}

// The fold registers, free once reduced, become the correction's
// accumulators: cleared, and multiplied by 128 between limbs.
MLPOW_FN void v2_lane_clear_fold(V2Lane *s) {
	V2_UNROLL
	for (int a = 0; a < V2_MF; a++)
		V2_UNROLL
		for (int b = 0; b < V2_NF; b++)
			V2_UNROLL
			for (int e = 0; e < 4; e++) s->fold[a][b][e] = 0;
}

MLPOW_FN void v2_lane_clear(V2Lane *s) {
	V2_UNROLL
	for (int a = 0; a < V2_MF; a++)
		V2_UNROLL
		for (int b = 0; b < V2_NF; b++)
			V2_UNROLL
			for (int e = 0; e < 4; e++) s->acc[a][b][e] = 0;
	v2_lane_clear_fold(s);
}

MLPOW_FN void v2_lane_shift(V2Lane *s) {
	V2_UNROLL
	for (int a = 0; a < V2_MF; a++)
		V2_UNROLL
		for (int b = 0; b < V2_NF; b++)
			V2_UNROLL
			for (int e = 0; e < 4; e++) s->fold[a][b][e] <<= 7;
}

// For a useful job, fused: the exact product `acc - D` (D in the fold
// registers) of the lane's elements inside `out`'s rows and columns,
// stored or added there (wrapping, as i32 sums of a product's pieces never
// overflow).
MLPOW_FN void v2_lane_exact(const V2Lane *s, u32 warp, u32 lane, u32 block_row, u32 block_col, V2Out out) {
	V2_UNROLL
	for (int a = 0; a < V2_MF; a++)
		V2_UNROLL
		for (int b = 0; b < V2_NF; b++)
			V2_UNROLL
			for (int e = 0; e < 4; e++) {
				u32 row = block_row + v2_acc_row(warp, lane, a, e), col = block_col + v2_acc_col(warp, lane, b, e);
				if (row < out.rows && col < out.cols) {
					i32 *at = out.ptr + (u64)row * out.ldc + col;
					const u32 exact = (u32)s->acc[a][b][e] - s->fold[a][b][e];
					*at = (i32)(out.accumulate ? (u32)*at + exact : exact);
				}
			}
}

// Local tile `lt` of the block: its ticket, a winner appended to `winners`
// as (nonce index, i, j), and with `states` non-null its state written
// there (16 words per tile, tiles in row-major order).
MLPOW_FN void v2_tile_ticket(u32 lt, const u32 *sw, u32 block_row, u32 block_col, u32 m, u32 n, u32 t,
	Words8 ticket_key, Words8 target_be, u32 nonce_index, u32 *winners, u32 capacity, u32 *states) {
	u32 per = V2_BM / t;
	u32 i = block_row / t + lt / per, j = block_col / t + lt % per;
	if (i >= m / t || j >= n / t) return;
	const u32 *w = sw + lt * 16;
	if (states) {
		u64 at = ((u64)i * (n / t) + j) * 16;
		for (int q = 0; q < 16; q++) states[at + q] = w[q];
	}
	u32 digest[8];
	v2_ticket(ticket_key.w, i, j, w, digest);
	if (b3_meets_target(digest, target_be.w)) mlpow_append_winner(winners, capacity, nonce_index, i, j);
}

#ifdef __CUDACC__

// One m16n8k32 int8 MMA: c += a * b. Ampere and later have the instruction;
// Turing has m8n8k16, and four of those over the same registers make one
// (register i of A is row block i & 1, k half i >> 1; of C, row block
// i >> 1).
__device__ __forceinline__ void v2_mma(i32 c[4], const u32 a[4], const u32 b[2]) {
#if __CUDA_ARCH__ >= 800
	asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
		: "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
		: "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
	asm("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0,%1}, {%2}, {%3}, {%0,%1};\n"
		: "+r"(c[0]), "+r"(c[1])
		: "r"(a[0]), "r"(b[0]));
	asm("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0,%1}, {%2}, {%3}, {%0,%1};\n"
		: "+r"(c[2]), "+r"(c[3])
		: "r"(a[1]), "r"(b[0]));
	asm("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0,%1}, {%2}, {%3}, {%0,%1};\n"
		: "+r"(c[0]), "+r"(c[1])
		: "r"(a[2]), "r"(b[1]));
	asm("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0,%1}, {%2}, {%3}, {%0,%1};\n"
		: "+r"(c[2]), "+r"(c[3])
		: "r"(a[3]), "r"(b[1]));
#endif
}

// Four 8 x 16-byte matrices from shared memory (see v2_ldsm_a_offset).
__device__ __forceinline__ void v2_ldsm_x4(const u8 *p, u32 r[4]) {
	u32 at = (u32)__cvta_generic_to_shared(p);
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
		: "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
		: "r"(at));
}

// 16 bytes global -> shared: asynchronous on Ampere and later (cp.async),
// through registers on Turing.
__device__ __forceinline__ void v2_copy16(u8 *dst, const i8 *src) {
#if __CUDA_ARCH__ >= 800
	u32 at = (u32)__cvta_generic_to_shared(dst);
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(at), "l"(src) : "memory");
#else
	*(uint4 *)dst = *(const uint4 *)src;
#endif
}

// Step `kt`'s slices of A and Bt into one pipeline stage: A's at `stage`,
// Bt's `stage_bytes` after it, this thread's 16 bytes of each at `so`
// (both transcript kernels stage the same slices, in their own layouts).
__device__ __forceinline__ void v2_load_stage(u8 *stage, u32 stage_bytes, u32 so, const i8 *a, const i8 *bt,
	u32 tid, u32 block_row, u32 block_col, u32 kt, u32 k) {
	v2_copy16(stage + so, a + v2_global_offset(tid, block_row, kt, k));
	v2_copy16(stage + stage_bytes + so, bt + v2_global_offset(tid, block_col, kt, k));
}

__device__ __forceinline__ void v2_copy_commit() {
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most `V2_STAGES - 2` staged copies are in flight.
__device__ __forceinline__ void v2_copy_wait() {
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.wait_group %0;\n" ::"n"(V2_STAGES - 2) : "memory");
#endif
}

extern "C" __global__ void mlpow2_noisy(i8 *dst, const i8 *src, int raw, const i8 *left, const u8 *sel, u64 groups,
	u32 k, u32 r) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < groups) mlpow2_noisy_one(idx, dst, src, raw, left, sel, k, r);
}

extern "C" __global__ void mlpow2_column_sums(i32 *out, const i8 *src, const u8 *inv, u64 total, u32 k, u32 r) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < total) mlpow2_column_sums_one(idx, out, src, inv, k, r);
}

extern "C" __global__ void mlpow2_limbs(i8 *dst, u32 width, const i32 *sums, const i8 *noise, u64 total, u32 r,
	u32 limbs, int side) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < total) mlpow2_limbs_one(idx, dst, width, sums, noise, r, limbs, side);
}

extern "C" __global__ void mlpow2_slab(i8 *dst, u32 width, u32 col0, const i8 *src, u64 rs, u64 cs, u32 depth,
	int negate, u64 total) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < total) mlpow2_slab_one(idx, dst, width, col0, src, rs, cs, depth, negate);
}

// Step `step` of a block's pipeline into its stage: main steps (k / 32 of
// A' and Bt'), then, for a useful job, the correction's (top limb first),
// from where `v2_step_source` says.
__device__ __forceinline__ void v2_load_step(u8 *smem, u32 so, const i8 *a, const i8 *bt, V2Corr corr, u32 tid,
	u32 block_row, u32 block_col, u32 step, u32 steps, u32 csteps, u32 k, u32 r) {
	if (step >= steps + csteps) return;
	const V2StepSource src = v2_step_source(step, steps, a, bt, corr, k, r);
	v2_load_stage(smem + 2 * (step % V2_STAGES) * V2_STAGE_BYTES, V2_STAGE_BYTES, so, src.a, src.bt, tid, block_row,
		block_col, src.kt, src.row);
}

// One stage's 128 x 128 x 32 product added into `acc` (a lane's 4 x 4
// fragments): the fragments loaded with ldmatrix, 16 mma.
__device__ __forceinline__ void v2_stage_mma(const u8 *as, u32 warp, u32 lane, i32 (*acc)[V2_NF][4]) {
	const u8 *bs = as + V2_STAGE_BYTES;
	u32 fa[V2_MF][4], fb[V2_NF][2];
	V2_UNROLL
	for (int i = 0; i < V2_MF; i++) v2_ldsm_x4(as + v2_ldsm_a_offset(warp, lane, i), fa[i]);
	V2_UNROLL
	for (int h = 0; h < V2_NF / 2; h++) {
		u32 x[4];
		v2_ldsm_x4(bs + v2_ldsm_b_offset(warp, lane, h), x);
		fb[2 * h][0] = x[0];
		fb[2 * h][1] = x[1];
		fb[2 * h + 1][0] = x[2];
		fb[2 * h + 1][1] = x[3];
	}
	V2_UNROLL
	for (int i = 0; i < V2_MF; i++)
		V2_UNROLL
		for (int j = 0; j < V2_NF; j++) v2_mma(acc[i][j], fa[i], fb[j]);
}

// Grid (n_pad / 128, m_pad / 128), 256 threads. `a` and `bt` are the noisy
// operands padded with zero rows to whole blocks; `k` and `r` multiples of
// 32; `t` divides 128. Tiles outside `m x n` are not hashed. For a useful
// job `out` receives the exact product (`V2Out`: at most `m x n`, any row
// stride, stored or added in place), computed with the correction's limbs
// (`V2Corr`, and a remainder of the caller's depth folded in); for seeded
// mining `out.ptr` and the limbs are null.
//
// Two entries share the body: `mlpow2_transcript` (seeded mining: `out`
// and `corr` ignored) and `mlpow2_transcript_useful`. The seeded one holds
// none of the correction's code, so it keeps fewer registers: room beside
// its block for a block of the next nonce's noise kernels (BENCHMARKS.md).
template <bool USEFUL>
__device__ __forceinline__ void v2_transcript(const i8 *a, const i8 *bt, u32 m, u32 n, u32 k, u32 r, u32 t,
	Words8 ticket_key, Words8 target_be, u32 nonce_index, u32 *winners, u32 capacity, u32 *states, V2Out out,
	V2Corr corr) {
	__shared__ __align__(16) u8 smem[2 * V2_STAGES * V2_STAGE_BYTES];
	const u32 tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
	const u32 block_row = blockIdx.y * V2_BM, block_col = blockIdx.x * V2_BN;
	const u32 steps = k / V2_BK, steps_per_chunk = r / V2_BK;
	// The correction's steps run through the same pipeline, so their first
	// copies are in flight while the main product ends and the tickets are
	// hashed.
	const u32 csteps = USEFUL && out.ptr ? v2_corr_steps(corr, r) : 0;
	const u32 so = v2_stage_offset(tid);
	V2Lane s;
	v2_lane_clear(&s);

	for (u32 st = 0; st < V2_STAGES - 1; st++) {
		v2_load_step(smem, so, a, bt, corr, tid, block_row, block_col, st, steps, csteps, k, r);
		v2_copy_commit();
	}
	for (u32 kt = 0; kt < steps; kt++) {
		v2_copy_wait();
		__syncthreads();
		// The stage consumed in the previous step is free for step
		// kt + STAGES - 1 (every thread is past it: the barrier above).
		v2_load_step(smem, so, a, bt, corr, tid, block_row, block_col, kt + V2_STAGES - 1, steps, csteps, k, r);
		v2_copy_commit();
		v2_stage_mma(smem + 2 * (kt % V2_STAGES) * V2_STAGE_BYTES, warp, lane, s.acc);
		if ((kt + 1) % steps_per_chunk == 0) v2_lane_fold(&s);
	}

	// Epilogue: the stage of the last step, which no copy in flight
	// targets (the correction's go to the other three), becomes the tile
	// states (16 words a tile, at most 64 tiles since t >= 16: 4 KB).
	__syncthreads();
	u32 *sw = (u32 *)(smem + 2 * ((steps - 1) % V2_STAGES) * V2_STAGE_BYTES);
	const u32 tiles = (V2_BM / t) * (V2_BN / t);
	for (u32 q = tid; q < tiles * 16; q += V2_THREADS) sw[q] = 0;
	__syncthreads();
	v2_lane_reduce(&s, warp, lane, t, sw);
	__syncthreads();
	for (u32 lt = tid; lt < tiles; lt += V2_THREADS)
		v2_tile_ticket(lt, sw, block_row, block_col, m, n, t, ticket_key, target_be, nonce_index, winners, capacity,
			states);
	// (Without limbs nothing is written: the host's check of the product
	// fails, as it must.)
	if (!USEFUL || csteps == 0) return;

	// The correction D into the fold registers, then the exact product out.
	v2_lane_clear_fold(&s);
	for (u32 c = 0; c < csteps; c++) {
		const u32 kt = steps + c;
		v2_copy_wait();
		// Also: every thread is done with the tile states before the
		// copy below (c = 0) overwrites their stage.
		__syncthreads();
		v2_load_step(smem, so, a, bt, corr, tid, block_row, block_col, kt + V2_STAGES - 1, steps, csteps, k, r);
		v2_copy_commit();
		if (v2_corr_shifts(c, r, corr.limbs)) v2_lane_shift(&s);
		v2_stage_mma(smem + 2 * (kt % V2_STAGES) * V2_STAGE_BYTES, warp, lane, (i32(*)[V2_NF][4])s.fold);
	}
	v2_lane_exact(&s, warp, lane, block_row, block_col, out);
}

extern "C" __global__ __launch_bounds__(V2_THREADS, 1) void mlpow2_transcript(const i8 *a, const i8 *bt, u32 m,
	u32 n, u32 k, u32 r, u32 t, Words8 ticket_key, Words8 target_be, u32 nonce_index, u32 *winners, u32 capacity,
	u32 *states, V2Out out, V2Corr corr) {
	v2_transcript<false>(a, bt, m, n, k, r, t, ticket_key, target_be, nonce_index, winners, capacity, states, out,
		corr);
}

extern "C" __global__ __launch_bounds__(V2_THREADS, 1) void mlpow2_transcript_useful(const i8 *a, const i8 *bt,
	u32 m, u32 n, u32 k, u32 r, u32 t, Words8 ticket_key, Words8 target_be, u32 nonce_index, u32 *winners,
	u32 capacity, u32 *states, V2Out out, V2Corr corr) {
	v2_transcript<true>(a, bt, m, n, k, r, t, ticket_key, target_be, nonce_index, winners, capacity, states, out,
		corr);
}

#endif  // __CUDACC__
#endif  // MLPOW_V2_CU
