// Puzzle v2's transcript kernel for Hopper (sm_90a): the same work as
// `mlpow2_transcript` (v2.cu), with the products from the warpgroup
// instruction `wgmma.mma_async` instead of mma.sync. Same parameters, same
// grid (n_pad / 128, m_pad / 128) and 256 threads, same results (states,
// tickets, winners, the exact product of a useful job through the fused
// correction): the host picks either by name.
//
// Each warpgroup (threads 0-127 and 128-255) owns 64 rows of the 128 x 128
// block tile, all 128 columns: one m64n128k32 .s32.s8.s8 a 32-wide k step,
// both operands read from shared memory through matrix descriptors, 64
// accumulators a thread (and 64 fold registers, as in v2.cu).
//
// wgmma exists only on the architecture-specific target sm_90a (compute_90a
// for NVRTC), where `__CUDA_ARCH_FEAT_SM90_ALL` is defined. Everywhere else
// the kernel is an entry whose body traps, so that one source compiles for
// every architecture and the host can look the name up on any of them.
//
// As with v2.cu, the kernel is built from per-lane pieces (staging offsets,
// descriptors, the accumulator map, the fold, the epilogue) that
// tests/host_kernels_v2.cpp runs on the CPU with `wgmma.mma_async` emulated
// from the PTX ISA (tests/wgmma_emulation.hpp).
//
// First version: correct before fast. No swizzle, cp.async staging by all
// threads, both warpgroups in step (see gpu-worker/README.md, "the Hopper
// path", for what comes next).

#ifndef MLPOW_V2_WGMMA_CU
#define MLPOW_V2_WGMMA_CU

#include "v2.cu"

// 4 stages of one k step (BK = 32) each: A's 128 x 32 bytes, then Bt's.
#define V2W_STAGES 4
#define V2W_STAGE_BYTES (V2_BM * V2_BK)
// The no-swizzle K-major canonical layout (PTX ISA, "Shared Memory Matrix
// Layout", K-major, no swizzling: ((8,m),(T,2k)):((1T,SBO),(1,LBO))): core
// matrices of 8 rows x 16 bytes, 128 contiguous bytes each. A 32-byte k step
// of 8 rows is two core matrices side by side along k, LBO = 128 bytes
// apart; the next 8 rows start SBO = 256 bytes further.
#define V2W_LBO 128
#define V2W_SBO 256
// A warpgroup's 64 rows of A: 8 row groups of SBO bytes.
#define V2W_WG_A_BYTES (64 / 8 * V2W_SBO)
#define V2W_WG_THREADS 128
// m64n128 with .s32 accumulators: 64 x 128 / 128 threads = N / 2 registers.
#define V2W_N 128
#define V2W_ACC (V2W_N / 2)

// Thread `tid`'s 16-byte piece of a staged 128 x 32 tile: row tid / 2, k
// half tid % 2 (the same piece of global memory as v2.cu's,
// `v2_global_offset`), stored as row `row % 8` of the core matrix for row
// group `row / 8` and k cell `half`. A warp's 32 pieces fill 512
// contiguous bytes, so the stores are free of bank conflicts.
MLPOW_FN u32 v2w_stage_offset(u32 tid) {
	u32 row = tid >> 1, half = tid & 1;
	return (row >> 3) * V2W_SBO + half * V2W_LBO + (row & 7) * 16;
}

// The 64-bit shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor
// Format") of a staged operand starting at shared address `addr`:
//   bits 13-0  start address,             encode(addr)
//   bits 29-16 leading dimension offset,  encode(LBO)
//   bits 45-32 stride dimension offset,   encode(SBO)
//   bits 51-49 matrix base offset: 0 (only swizzled layouts use it)
//   bits 63-62 swizzle mode: 0, no swizzle
// with encode(x) = (x & 0x3FFFF) >> 4; the other bits are reserved, 0.
// `addr` is the 32-bit shared-window address: `__cvta_generic_to_shared` on
// the device, the offset into the emulated shared array on the host. Every
// address here is a multiple of 16.
MLPOW_FN u64 v2w_desc(u32 addr) {
	return (u64)((addr & 0x3FFFF) >> 4) | ((u64)(V2W_LBO >> 4) << 16) | ((u64)(V2W_SBO >> 4) << 32);
}

// Register `reg` of thread `wg_thread` (0..127) of a warpgroup holds element
// (row, col) of the warpgroup's 64 x 128 D: the PTX ISA's fragment layout
// for wgmma .m64nNk32 with .s32 accumulators ("Matrix Fragments for
// wgmma.mma_async.m64nNk32"): warp w = wg_thread / 32 owns rows 16w..16w+15,
// and within it every 8 columns repeat mma.m16n8k32's accumulator pattern
// (group g = lane / 4, position p = lane % 4: registers 4j, 4j+1 row g,
// columns 8j + 2p, +1; registers 4j+2, 4j+3 row g + 8).
MLPOW_FN u32 v2w_acc_row(u32 wg_thread, int reg) {
	return 16 * (wg_thread >> 5) + ((wg_thread & 31) >> 2) + 8 * ((reg >> 1) & 1);
}

MLPOW_FN u32 v2w_acc_col(u32 wg_thread, int reg) {
	return 8 * (reg >> 2) + 2 * (wg_thread & 3) + (reg & 1);
}

// The same within the block tile, for block thread `tid` (0..255):
// warpgroup tid / 128 holds rows 64 * (tid / 128) ..+64.
MLPOW_FN u32 v2w_tile_row(u32 tid, int reg) {
	return (tid / V2W_WG_THREADS) * 64 + v2w_acc_row(tid % V2W_WG_THREADS, reg);
}

MLPOW_FN u32 v2w_tile_col(u32 tid, int reg) {
	return v2w_acc_col(tid % V2W_WG_THREADS, reg);
}

// A thread's accumulators (registers d0..d63 of the instruction, in order)
// and their folds.
struct V2WLane {
	i32 acc[V2W_ACC];
	u32 fold[V2W_ACC];
};

MLPOW_FN void v2w_lane_clear(V2WLane *s) {
	V2_UNROLL
	for (int e = 0; e < V2W_ACC; e++) {
		s->acc[e] = 0;
		s->fold[e] = 0;
	}
}

// After chunk c's last k step: every accumulator (the running sum P_c)
// XORed into its fold. The kernel has waited for the warpgroup's wgmma to
// complete (wgmma.wait_group 0) before calling it.
MLPOW_FN void v2w_lane_fold(V2WLane *s) {
	V2_UNROLL
	for (int e = 0; e < V2W_ACC; e++) s->fold[e] ^= (u32)s->acc[e];
}

// Thread `tid`'s contribution to the tile states `sw` (16 words per local
// tile), as v2_lane_reduce: W[y mod 16] ^= rotl(fold[x][y], x mod 32), with
// (x, y) the element's place within its t x t tile. Only the map from
// register to element differs from v2.cu.
MLPOW_FN void v2w_lane_reduce(const V2WLane *s, u32 tid, u32 t, u32 *sw) {
	V2_UNROLL
	for (int e = 0; e < V2W_ACC; e++) {
		u32 row = v2w_tile_row(tid, e), col = v2w_tile_col(tid, e);
		u32 x = row % t, y = col % t;
		u32 word = v2_rotl(s->fold[e], x & 31);
		u32 *dst = &sw[v2_local_tile(row, col, t) * 16 + (y & 15)];
#ifdef __CUDACC__
		atomicXor(dst, word);
#else
		*dst ^= word;
#endif
	}
}

// The fused correction (v2.cu), with this kernel's registers: the fold
// registers, free once reduced, cleared, multiplied by 128 between limbs,
// and the exact product `acc - D` stored or added into `out`.
MLPOW_FN void v2w_lane_clear_fold(V2WLane *s) {
	V2_UNROLL
	for (int e = 0; e < V2W_ACC; e++) s->fold[e] = 0;
}

MLPOW_FN void v2w_lane_shift(V2WLane *s) {
	V2_UNROLL
	for (int e = 0; e < V2W_ACC; e++) s->fold[e] <<= 7;
}

MLPOW_FN void v2w_lane_exact(const V2WLane *s, u32 tid, u32 block_row, u32 block_col, V2Out out) {
	V2_UNROLL
	for (int e = 0; e < V2W_ACC; e++) {
		u32 row = block_row + v2w_tile_row(tid, e), col = block_col + v2w_tile_col(tid, e);
		if (row < out.rows && col < out.cols) {
			i32 *at = out.ptr + (u64)row * out.ldc + col;
			const u32 exact = (u32)s->acc[e] - s->fold[e];
			*at = (i32)(out.accumulate ? (u32)*at + exact : exact);
		}
	}
}

#if defined(__CUDACC__)

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// What CUTLASS's `warpgroup_fence_operand` does: an empty asm that claims to
// read and write `x` and memory, so the compiler can move no access to the
// accumulator across it (and so none across the asynchronous wgmma, whose
// results land in the registers only at the wait).
__device__ __forceinline__ void v2w_fence_operand(i32 &x) {
	asm volatile("" : "+r"(x)::"memory");
}

__device__ __forceinline__ void v2w_fence_acc(V2WLane *s) {
	V2_UNROLL
	for (int e = 0; e < V2W_ACC; e++) v2w_fence_operand(s->acc[e]);
}

// The same for the fold registers while they accumulate the correction.
__device__ __forceinline__ void v2w_fence_fold(V2WLane *s) {
	V2_UNROLL
	for (int e = 0; e < V2W_ACC; e++) v2w_fence_operand(reinterpret_cast<i32 &>(s->fold[e]));
}

// d = a * b^T + (scale_d ? d : 0) for the warpgroup: A (64 x 32) and Bt
// (128 x 32) from shared memory through descriptors `da`, `db`; d0..d63 the
// thread's registers (v2w_acc_row/col). .s8 inputs take no immediate
// scale or transpose operands; scale-d is a predicate, set from `scale_d`.
__device__ __forceinline__ void v2w_wgmma(i32 d[V2W_ACC], u64 da, u64 db, int scale_d) {
	asm volatile(
		"{\n"
		".reg .pred p;\n"
		"setp.ne.b32 p, %66, 0;\n"
		"wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 "
		"{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
		"%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
		"%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
		"%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
		"%64, %65, p;\n"
		"}\n"
		: "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
		"+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]),
		"+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]),
		"+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]),
		"+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]),
		"+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]),
		"+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]),
		"+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
		: "l"(da), "l"(db), "r"(scale_d));
}

// Orders this thread's earlier register accesses (the accumulators, the
// fold's reads of them) before the warpgroup's next wgmma.mma_async.
__device__ __forceinline__ void v2w_wgmma_fence() {
	asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

// Closes the warpgroup's wgmma issued since the last commit into a group.
__device__ __forceinline__ void v2w_wgmma_commit() {
	asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

// Waits until at most N of the warpgroup's committed wgmma groups are pending.
template <int N>
__device__ __forceinline__ void v2w_wgmma_wait() {
	asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// cp.async writes shared memory through the generic proxy, wgmma reads it
// through the async proxy: this orders the thread's landed copies before
// async-proxy reads that the following barrier lets any warpgroup issue.
__device__ __forceinline__ void v2w_fence_proxy_async() {
	asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Waits until at most `V2W_STAGES - 3` of the thread's copy groups are in
// flight: the prefetch depth is V2W_STAGES - 2, so step kt has landed.
__device__ __forceinline__ void v2w_copy_wait() {
	asm volatile("cp.async.wait_group %0;\n" ::"n"(V2W_STAGES - 3) : "memory");
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Grid (n_pad / 128, m_pad / 128), 256 threads, parameters and results as
// `mlpow2_transcript` (v2.cu). On anything but sm_90a it traps.
// Two entries, as v2.cu's: `mlpow2_transcript_wgmma` (seeded) and
// `mlpow2_transcript_wgmma_useful`.
template <bool USEFUL>
__device__ __forceinline__ void v2w_transcript(const i8 *a, const i8 *bt, u32 m, u32 n, u32 k, u32 r, u32 t,
	Words8 ticket_key, Words8 target_be, u32 nonce_index, u32 *winners, u32 capacity, u32 *states, V2Out out,
	V2Corr corr) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
	// 2 x 4 x 4096 = 32 KB: static shared memory needs no opt-in.
	__shared__ __align__(128) u8 smem[2 * V2W_STAGES * V2W_STAGE_BYTES];
	const u32 tid = threadIdx.x, wg = tid / V2W_WG_THREADS;
	const u32 block_row = blockIdx.y * V2_BM, block_col = blockIdx.x * V2_BN;
	const u32 steps = k / V2_BK, steps_per_chunk = r / V2_BK;
	const u32 so = v2w_stage_offset(tid);
	const u32 smem_at = (u32)__cvta_generic_to_shared(smem);
	V2WLane s;
	v2w_lane_clear(&s);

	// Prologue: steps 0 .. STAGES - 3 (prefetch depth STAGES - 2). One stage
	// more than that is kept free for the wgmma that may still be reading
	// (each warpgroup waits only for all but its latest group).
	for (u32 st = 0; st < V2W_STAGES - 2; st++) {
		if (st < steps)
			v2_load_stage(smem + 2 * st * V2W_STAGE_BYTES, V2W_STAGE_BYTES, so, a, bt, tid, block_row, block_col, st, k);
		v2_copy_commit();
	}
	for (u32 kt = 0; kt < steps; kt++) {
		v2w_copy_wait();
		v2w_fence_proxy_async();
		__syncthreads();
		// Stage (kt + STAGES - 2) % STAGES last held step kt - 2, whose wgmma
		// both warpgroups saw complete in step kt - 1 (wait_group 1, or 0)
		// before the barrier above.
		u32 next = kt + V2W_STAGES - 2;
		if (next < steps)
			v2_load_stage(smem + 2 * (next % V2W_STAGES) * V2W_STAGE_BYTES, V2W_STAGE_BYTES, so, a, bt, tid,
				block_row, block_col, next, k);
		v2_copy_commit();

		const u32 as = smem_at + 2 * (kt % V2W_STAGES) * V2W_STAGE_BYTES, bs = as + V2W_STAGE_BYTES;
		const u64 da = v2w_desc(as + wg * V2W_WG_A_BYTES), db = v2w_desc(bs);
		v2w_fence_acc(&s);
		v2w_wgmma_fence();
		v2w_wgmma(s.acc, da, db, 1);
		v2w_wgmma_commit();
		v2w_fence_acc(&s);
		if ((kt + 1) % steps_per_chunk == 0) {
			// The chunk's sums must be complete before they are folded.
			v2w_wgmma_wait<0>();
			v2w_fence_acc(&s);
			v2w_lane_fold(&s);
		} else {
			v2w_wgmma_wait<1>();
			v2w_fence_acc(&s);
		}
	}

	// Epilogue, as v2.cu's: the stages become the tile states. (k is a
	// multiple of r, so the last step drained the wgmma queue; the wait is
	// kept so nothing depends on it.)
	v2w_wgmma_wait<0>();
	v2w_fence_acc(&s);
	asm volatile("cp.async.wait_all;\n" ::: "memory");
	__syncthreads();
	u32 *sw = (u32 *)smem;
	const u32 tiles = (V2_BM / t) * (V2_BN / t);
	for (u32 q = tid; q < tiles * 16; q += V2_THREADS) sw[q] = 0;
	__syncthreads();
	v2w_lane_reduce(&s, tid, t, sw);
	__syncthreads();
	for (u32 lt = tid; lt < tiles; lt += V2_THREADS)
		v2_tile_ticket(lt, sw, block_row, block_col, m, n, t, ticket_key, target_be, nonce_index, winners, capacity,
			states);
	// (Without limbs nothing is written: the host's check of the product
	// fails, as it must.)
	const u32 csteps = USEFUL && out.ptr ? v2_corr_steps(corr, r) : 0;
	if (!USEFUL || csteps == 0) return;

	// The fused correction D into the fold registers through a pipeline of
	// its own, as the main one (v2.cu's steps after the main ones:
	// `v2_step_source`), then the exact product out. Every thread is done
	// with the tile states before the first copy overwrites them.
	__syncthreads();
	v2w_lane_clear_fold(&s);
	for (u32 st = 0; st < V2W_STAGES - 2; st++) {
		if (st < csteps) {
			const V2StepSource src = v2_step_source(steps + st, steps, a, bt, corr, k, r);
			v2_load_stage(smem + 2 * st * V2W_STAGE_BYTES, V2W_STAGE_BYTES, so, src.a, src.bt, tid, block_row,
				block_col, src.kt, src.row);
		}
		v2_copy_commit();
	}
	for (u32 c = 0; c < csteps; c++) {
		v2w_copy_wait();
		v2w_fence_proxy_async();
		__syncthreads();
		u32 next = c + V2W_STAGES - 2;
		if (next < csteps) {
			const V2StepSource src = v2_step_source(steps + next, steps, a, bt, corr, k, r);
			v2_load_stage(smem + 2 * (next % V2W_STAGES) * V2W_STAGE_BYTES, V2W_STAGE_BYTES, so, src.a, src.bt, tid,
				block_row, block_col, src.kt, src.row);
		}
		v2_copy_commit();
		// A limb's last step drained the queue (below): the sum so far is
		// in the registers to be multiplied by 128.
		if (v2_corr_shifts(c, r, corr.limbs)) v2w_lane_shift(&s);
		const u32 as = smem_at + 2 * (c % V2W_STAGES) * V2W_STAGE_BYTES, bs = as + V2W_STAGE_BYTES;
		const u64 da = v2w_desc(as + wg * V2W_WG_A_BYTES), db = v2w_desc(bs);
		v2w_fence_fold(&s);
		v2w_wgmma_fence();
		v2w_wgmma(reinterpret_cast<i32 *>(s.fold), da, db, 1);
		v2w_wgmma_commit();
		v2w_fence_fold(&s);
		if (c + 1 == csteps || v2_corr_shifts(c + 1, r, corr.limbs)) {
			v2w_wgmma_wait<0>();
		} else {
			v2w_wgmma_wait<1>();
		}
		v2w_fence_fold(&s);
	}
	v2w_lane_exact(&s, tid, block_row, block_col, out);
#else
	__trap();
#endif
}

extern "C" __global__ __launch_bounds__(V2_THREADS, 1) void mlpow2_transcript_wgmma(const i8 *a, const i8 *bt, u32 m,
	u32 n, u32 k, u32 r, u32 t, Words8 ticket_key, Words8 target_be, u32 nonce_index, u32 *winners, u32 capacity,
	u32 *states, V2Out out, V2Corr corr) {
	v2w_transcript<false>(a, bt, m, n, k, r, t, ticket_key, target_be, nonce_index, winners, capacity, states, out,
		corr);
}

extern "C" __global__ __launch_bounds__(V2_THREADS, 1) void mlpow2_transcript_wgmma_useful(const i8 *a,
	const i8 *bt, u32 m, u32 n, u32 k, u32 r, u32 t, Words8 ticket_key, Words8 target_be, u32 nonce_index,
	u32 *winners, u32 capacity, u32 *states, V2Out out, V2Corr corr) {
	v2w_transcript<true>(a, bt, m, n, k, r, t, ticket_key, target_be, nonce_index, winners, capacity, states, out,
		corr);
}

#endif  // __CUDACC__
#endif  // MLPOW_V2_WGMMA_CU
