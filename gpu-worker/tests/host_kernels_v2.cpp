// Runs the puzzle v2 kernels of kernels/v2.cu on the CPU, so that
// tests/kernels_on_host.rs can compare them with the Rust reference miner
// and the v2 golden vectors on machines without a GPU.
//
// The transcript kernel is run block by block as the GPU runs it: the same
// staging offsets, the same fragment addresses, fold and epilogue
// functions, lane by lane. Only the two warp-wide instructions are
// emulated, each from its table in the PTX ISA, written out here element
// by element: `ldmatrix_emulated` (ldmatrix.m8n8.x4.b16) and `mma_emulated`
// (mma.m16n8k32 with .s8 operands).
//
// With `wgmma` as the second argument it runs kernels/v2_wgmma.cu's
// `mlpow2_transcript_wgmma` instead, the same way: the kernel's staging
// offsets and its own descriptors, one emulated
// `wgmma.mma_async.m64n128k32.s32.s8.s8` per warpgroup and k step
// (tests/wgmma_emulation.hpp, written from the PTX ISA apart from the
// kernel), the kernel's fold and epilogue. Same inputs, same outputs.
// A third argument perturbs the wgmma kernel, to show that the tests catch
// it: `mutate-sbo` adds 16 bytes to the stride byte offset of A's
// descriptor; `mutate-map` swaps two registers of the accumulator map
// (every thread's d0 and d1).
//
// usage: host_kernels_v2 FILE [mma|wgmma [mutate-sbo|mutate-map]], FILE
// holding whitespace-separated tokens:
//   m k n t r denoise nonce_index limbs (the fused correction's)
//   out_ldc out_rows out_cols accumulate (where the product goes: `rows x
//     cols` of it, rows `ldc` apart, into a buffer of (out_rows + 2) x
//     out_ldc prefilled with a pattern, stored or added)
//   target_be ticket_key ctx_noise_a ctx_noise_bt noise_seed (32-byte hex)
//   sel_a sel_bt (k bytes each, hex)
//   seeded ctx_a job_seed ctx_bt weights_seed     or     chosen A Bt (hex)
//   [fold Q A_REM BT_REM]  (out_rows x Q and out_cols x Q values,
//     hex, row-major, Q <= 32, folded into the correction, so their
//     product is added to the output's block)
// Prints, one per line:
//   state <i> <j> <hex of 16 words LE>
//   ticket <i> <j> <hex>
//   winner <b> <i> <j>
//   winners <count>
//   noisy <hex of the m x n i32 noisy product, LE>
//   product <hex of the whole output buffer, LE>    (denoise = 1 only)

#include "../kernels/v2_wgmma.cu"
#include "wgmma_emulation.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

static std::vector<unsigned char> unhex(const std::string &hex) {
	std::vector<unsigned char> out(hex.size() / 2);
	for (size_t i = 0; i < out.size(); i++) out[i] = (unsigned char)strtoul(hex.substr(2 * i, 2).c_str(), 0, 16);
	return out;
}

static Words8 words(const std::string &hex) {
	if (hex.size() != 64) {
		fprintf(stderr, "expected 64 hex digits: %s\n", hex.c_str());
		exit(2);
	}
	std::vector<unsigned char> b = unhex(hex);
	Words8 out;
	for (int w = 0; w < 8; w++)
		out.w[w] = b[4 * w] | b[4 * w + 1] << 8 | b[4 * w + 2] << 16 | (u32)b[4 * w + 3] << 24;
	return out;
}

static void print_hex(const void *p, size_t len) {
	const unsigned char *b = (const unsigned char *)p;
	for (size_t i = 0; i < len; i++) printf("%02x", b[i]);
}

// `rows x len` bytes of the stream xof(context, seed), as mlpow_generate
// writes them on the device.
static std::vector<i8> stream(Words8 ctx, Words8 seed, size_t len) {
	std::vector<i8> out(len);
	for (u64 idx = 0; idx < len / 64; idx++) mlpow_generate_one(idx, out.data(), len / 64, ctx, seed, 0, 0);
	return out;
}

// One warp's ldmatrix.sync.aligned.m8n8.x4.shared.b16: lanes 8q .. 8q + 7
// give the addresses of the 8 rows (16 bytes each) of matrix q; lane l
// receives in register q the b16 elements 2 (l % 4) and 2 (l % 4) + 1 of
// row l / 4 of matrix q.
static void ldmatrix_emulated(const u8 *base, const u32 offsets[32], u32 out[32][4]) {
	for (int lane = 0; lane < 32; lane++)
		for (int q = 0; q < 4; q++) {
			const u8 *row = base + offsets[8 * q + lane / 4];
			u32 v = 0;
			for (int b = 0; b < 4; b++) v |= (u32)row[2 * 2 * (lane % 4) + b] << (8 * b);
			out[lane][q] = v;
		}
}

// One warp's mma.m16n8k32.row.col.s32.s8.s8.s32, c += a * b, from the
// PTX ISA's tables: with g = lane / 4 and p = lane % 4,
//   a_i (i = 0..15, byte i % 4 of register i / 4): row g for i < 4 or
//     8 <= i < 12, else g + 8; column p*4 + (i & 3), plus 16 for i >= 8;
//   b_i (i = 0..7): row (of k) p*4 + (i & 3), plus 16 for i >= 4; column g;
//   c_i (i = 0..3): row g, plus 8 for i >= 2; column p*2 + (i & 1).
static void mma_emulated(i32 *c[32], const u32 a[32][4], const u32 b[32][2]) {
	int am[16][32], bm[32][8];
	for (int lane = 0; lane < 32; lane++) {
		int g = lane / 4, p = lane % 4;
		for (int i = 0; i < 16; i++) {
			int row = (i < 4 || (i >= 8 && i < 12)) ? g : g + 8;
			int col = p * 4 + (i & 3) + (i >= 8 ? 16 : 0);
			am[row][col] = (i8)(a[lane][i / 4] >> (8 * (i % 4)));
		}
		for (int i = 0; i < 8; i++) {
			int row = p * 4 + (i & 3) + (i >= 4 ? 16 : 0);
			bm[row][g] = (i8)(b[lane][i / 4] >> (8 * (i % 4)));
		}
	}
	for (int lane = 0; lane < 32; lane++) {
		int g = lane / 4, p = lane % 4;
		for (int i = 0; i < 4; i++) {
			int row = g + (i >= 2 ? 8 : 0), col = p * 2 + (i & 1);
			i32 sum = 0;
			for (int z = 0; z < 32; z++) sum += am[row][z] * bm[z][col];
			c[lane][i] += sum;
		}
	}
}

// One block of the transcript kernel: where its operands come from, and
// where its epilogue writes (the tile states `sw`, zeroed by the caller;
// the denoised product; the noisy product, which only this harness writes).
struct Block {
	const i8 *an, *btn;
	u32 block_row, block_col, m, n, k, r, t;
	bool denoise;
	V2Out out;
	i32 *noisy;
	u32 *sw;
	// The fused correction's limbs (the mma kernel's useful jobs).
	V2Corr corr;
};

// One stage's product into `acc(lane, i, j)` for every lane of every
// warp, as `v2_stage_mma` runs it: fragments through the kernel's
// ldmatrix offsets, the emulated mma.
template <typename Acc>
static void stage_mma(const u8 *as, Acc acc) {
	const u8 *bs = as + V2_STAGE_BYTES;
	for (u32 warp = 0; warp < V2_THREADS / 32; warp++) {
		u32 fa[V2_MF][32][4], fb[V2_NF][32][2], offsets[32], x[32][4];
		for (int i = 0; i < V2_MF; i++) {
			for (u32 lane = 0; lane < 32; lane++) offsets[lane] = v2_ldsm_a_offset(warp, lane, i);
			ldmatrix_emulated(as, offsets, fa[i]);
		}
		for (int h = 0; h < V2_NF / 2; h++) {
			for (u32 lane = 0; lane < 32; lane++) offsets[lane] = v2_ldsm_b_offset(warp, lane, h);
			ldmatrix_emulated(bs, offsets, x);
			for (u32 lane = 0; lane < 32; lane++) {
				fb[2 * h][lane][0] = x[lane][0];
				fb[2 * h][lane][1] = x[lane][1];
				fb[2 * h + 1][lane][0] = x[lane][2];
				fb[2 * h + 1][lane][1] = x[lane][3];
			}
		}
		for (int i = 0; i < V2_MF; i++)
			for (int j = 0; j < V2_NF; j++) {
				i32 *c[32];
				for (u32 lane = 0; lane < 32; lane++) c[lane] = acc(warp * 32 + lane, i, j);
				mma_emulated(c, fa[i], fb[j]);
			}
	}
}

// `mlpow2_transcript` (v2.cu) on one block: its steps staged through
// `v2_load_step`'s offsets (main, then the correction's), each stage's
// product as `v2_stage_mma`, the fold, the epilogue's reduce, and for a
// useful job the correction into the fold registers and the exact product.
static void mma_block(const Block &b) {
	static std::vector<u8> smem(2 * V2_STAGES * V2_STAGE_BYTES);
	static std::vector<V2Lane> lanes(V2_THREADS);
	const u32 steps = b.k / V2_BK, steps_per_chunk = b.r / V2_BK;
	const u32 csteps = b.denoise ? v2_corr_steps(b.corr, b.r) : 0;
	for (auto &s : lanes) v2_lane_clear(&s);
	auto stage = [&](u32 step) {
		u8 *as = smem.data() + 2 * (step % V2_STAGES) * V2_STAGE_BYTES, *bs = as + V2_STAGE_BYTES;
		const V2StepSource src = v2_step_source(step, steps, b.an, b.btn, b.corr, b.k, b.r);
		for (u32 tid = 0; tid < V2_THREADS; tid++) {
			memcpy(as + v2_stage_offset(tid), src.a + v2_global_offset(tid, b.block_row, src.kt, src.row), 16);
			memcpy(bs + v2_stage_offset(tid), src.bt + v2_global_offset(tid, b.block_col, src.kt, src.row), 16);
		}
		return as;
	};
	for (u32 kt = 0; kt < steps; kt++) {
		stage_mma(stage(kt), [&](u32 tid, int i, int j) { return lanes[tid].acc[i][j]; });
		if ((kt + 1) % steps_per_chunk == 0)
			for (auto &s : lanes) v2_lane_fold(&s);
	}
	// The epilogue, as the kernel runs it.
	for (u32 tid = 0; tid < V2_THREADS; tid++) v2_lane_reduce(&lanes[tid], tid >> 5, tid & 31, b.t, b.sw);
	if (b.denoise) {
		for (auto &s : lanes) v2_lane_clear_fold(&s);
		for (u32 c = 0; c < csteps; c++) {
			if (v2_corr_shifts(c, b.r, b.corr.limbs))
				for (auto &s : lanes) v2_lane_shift(&s);
			stage_mma(stage(steps + c), [&](u32 tid, int i, int j) { return (i32 *)lanes[tid].fold[i][j]; });
		}
	}
	for (u32 tid = 0; tid < V2_THREADS; tid++) {
		const V2Lane &s = lanes[tid];
		if (b.denoise) v2_lane_exact(&s, tid >> 5, tid & 31, b.block_row, b.block_col, b.out);
		// The noisy product, for the test only (the kernel never writes it).
		for (int i = 0; i < V2_MF; i++)
			for (int j = 0; j < V2_NF; j++)
				for (int e = 0; e < 4; e++) {
					u32 row = b.block_row + v2_acc_row(tid >> 5, tid & 31, i, e);
					u32 col = b.block_col + v2_acc_col(tid >> 5, tid & 31, j, e);
					if (row < b.m && col < b.n) b.noisy[(size_t)row * b.n + col] = s.acc[i][j][e];
				}
	}
}

enum class Mutation { None, Sbo, Map };

// `mlpow2_transcript_wgmma` (v2_wgmma.cu) on one block. The emulated shared
// window is exactly the kernel's 32 KB of stages, addressed from 0, so the
// kernel's descriptors are built from offsets into it; the emulation
// refuses reads outside it. The copies of each k step land before its
// wgmma (the kernel's cp.async wait, proxy fence and barrier), and each
// emulated wgmma has completed on return (the kernel waits for it before
// folding, and before the stage is overwritten).
static void wgmma_block(const Block &b, Mutation mutation) {
	static std::vector<u8> smem(2 * V2W_STAGES * V2W_STAGE_BYTES);
	static std::vector<V2WLane> lanes(V2_THREADS);
	std::vector<i32> d = wgmma_emu::make_accumulators(V2W_N);
	const u32 steps = b.k / V2_BK, steps_per_chunk = b.r / V2_BK;
	const u32 csteps = b.denoise ? v2_corr_steps(b.corr, b.r) : 0;
	// Step `st` (main, then the correction's), staged in stage `slot`
	// through the kernel's offsets from where `v2_step_source` says, then
	// one emulated wgmma per warpgroup into each thread's 64 registers
	// `regs(lane)`: the accumulators, or the fold registers.
	auto step = [&](u32 st, u32 slot, auto regs) {
		const u32 as = 2 * slot * V2W_STAGE_BYTES, bs = as + V2W_STAGE_BYTES;
		const V2StepSource src = v2_step_source(st, steps, b.an, b.btn, b.corr, b.k, b.r);
		for (u32 tid = 0; tid < V2_THREADS; tid++) {
			memcpy(&smem[as + v2w_stage_offset(tid)], src.a + v2_global_offset(tid, b.block_row, src.kt, src.row), 16);
			memcpy(&smem[bs + v2w_stage_offset(tid)], src.bt + v2_global_offset(tid, b.block_col, src.kt, src.row), 16);
		}
		for (u32 wg = 0; wg < V2_THREADS / V2W_WG_THREADS; wg++) {
			u64 da = v2w_desc(as + wg * V2W_WG_A_BYTES), db = v2w_desc(bs);
			if (mutation == Mutation::Sbo) da += (u64)1 << 32;  // SBO + 16 bytes
			// Registers d0..d63 of the warpgroup's threads, in the
			// emulation's order. With `mutate-map` the lanes keep d0 and
			// d1 swapped: the kernel's map would have those entries swapped.
			for (u32 w = 0; w < V2W_WG_THREADS; w++) {
				i32 *x = regs(lanes[wg * V2W_WG_THREADS + w]);
				if (mutation == Mutation::Map) std::swap(x[0], x[1]);
				memcpy(&d[w * V2W_ACC], x, V2W_ACC * sizeof(i32));
			}
			wgmma_emu::wgmma_m64nNk32_s32_s8_s8(smem.data(), smem.size(), da, db, V2W_N, d.data(), true);
			for (u32 w = 0; w < V2W_WG_THREADS; w++) {
				i32 *x = regs(lanes[wg * V2W_WG_THREADS + w]);
				memcpy(x, &d[w * V2W_ACC], V2W_ACC * sizeof(i32));
				if (mutation == Mutation::Map) std::swap(x[0], x[1]);
			}
		}
	};
	for (auto &s : lanes) v2w_lane_clear(&s);
	for (u32 kt = 0; kt < steps; kt++) {
		step(kt, kt % V2W_STAGES, [](V2WLane &s) { return s.acc; });
		if ((kt + 1) % steps_per_chunk == 0)
			for (auto &s : lanes) v2w_lane_fold(&s);
	}
	// The epilogue, as the kernel runs it: the reduce, then for a useful
	// job the correction through a pipeline of its own (stages from 0).
	for (u32 tid = 0; tid < V2_THREADS; tid++) v2w_lane_reduce(&lanes[tid], tid, b.t, b.sw);
	if (b.denoise) {
		for (auto &s : lanes) v2w_lane_clear_fold(&s);
		for (u32 c = 0; c < csteps; c++) {
			if (v2_corr_shifts(c, b.r, b.corr.limbs))
				for (auto &s : lanes) v2w_lane_shift(&s);
			step(steps + c, c % V2W_STAGES, [](V2WLane &s) { return (i32 *)s.fold; });
		}
	}
	for (u32 tid = 0; tid < V2_THREADS; tid++) {
		const V2WLane &s = lanes[tid];
		if (b.denoise) v2w_lane_exact(&s, tid, b.block_row, b.block_col, b.out);
		// The noisy product, gathered through the kernel's own map.
		for (int e = 0; e < V2W_ACC; e++) {
			u32 row = b.block_row + v2w_tile_row(tid, e), col = b.block_col + v2w_tile_col(tid, e);
			if (row < b.m && col < b.n) b.noisy[(size_t)row * b.n + col] = s.acc[e];
		}
	}
}

static int run(int argc, char **argv) {
	const std::string kernel = argc > 2 ? argv[2] : "mma", mutate = argc > 3 ? argv[3] : "";
	const bool wgmma = kernel == "wgmma";
	const Mutation mutation =
		mutate == "mutate-sbo" ? Mutation::Sbo : mutate == "mutate-map" ? Mutation::Map : Mutation::None;
	if (argc < 2 || argc > 4 || (!wgmma && kernel != "mma") || (argc > 3 && (!wgmma || mutation == Mutation::None))) {
		fprintf(stderr, "usage: see the comment at the top of host_kernels_v2.cpp\n");
		return 2;
	}
	std::ifstream in(argv[1]);
	u32 m, k, n, t, r, denoise, nonce_index, limbs, out_rows, out_cols, accumulate;
	u64 out_ldc;
	std::string target_hex, key_hex, ctx_ea, ctx_gb, seed_hex, sel_a_hex, sel_bt_hex, mode;
	in >> m >> k >> n >> t >> r >> denoise >> nonce_index >> limbs >> out_ldc >> out_rows >> out_cols >> accumulate >>
		target_hex >> key_hex >> ctx_ea >> ctx_gb >> seed_hex >>
		sel_a_hex >> sel_bt_hex >> mode;
	// The target is big-endian: word i is bytes 4i..4i+4 read big-endian.
	Words8 target_le = words(target_hex), target_be, key = words(key_hex);
	for (int w = 0; w < 8; w++) target_be.w[w] = b3_bswap(target_le.w[w]);
	std::vector<unsigned char> sel_a = unhex(sel_a_hex), sel_bt = unhex(sel_bt_hex);

	std::vector<i8> a, bt;
	int raw;
	if (mode == "seeded") {
		std::string ca, ja, cb, wb;
		in >> ca >> ja >> cb >> wb;
		a = stream(words(ca), words(ja), (size_t)m * k);
		bt = stream(words(cb), words(wb), (size_t)n * k);
		raw = 1;
	} else {
		std::string ah, bh;
		in >> ah >> bh;
		std::vector<unsigned char> ab = unhex(ah), bb = unhex(bh);
		a.assign(ab.begin(), ab.end());
		bt.assign(bb.begin(), bb.end());
		raw = 0;
	}
	// A remainder to fold in, if any.
	u32 fold_q = 0;
	std::vector<i8> rem_a, rem_bt;
	std::string fold_word;
	if (in >> fold_word && fold_word == "fold") {
		std::string ah, bh;
		in >> fold_q >> ah >> bh;
		std::vector<unsigned char> ab = unhex(ah), bb = unhex(bh);
		rem_a.assign(ab.begin(), ab.end());
		rem_bt.assign(bb.begin(), bb.end());
		if (fold_q == 0 || fold_q > V2_BK || rem_a.size() != (size_t)out_rows * fold_q ||
			rem_bt.size() != (size_t)out_cols * fold_q) {
			fprintf(stderr, "a fold needs 1..32 columns, and out_rows x Q and out_cols x Q values\n");
			return 2;
		}
	}
	if (a.size() != (size_t)m * k || bt.size() != (size_t)n * k || sel_a.size() != k || sel_bt.size() != k) {
		fprintf(stderr, "input sizes do not match the shape\n");
		return 2;
	}
	Words8 seed = words(seed_hex);
	std::vector<i8> el = stream(words(ctx_ea), seed, (size_t)m * r), gl = stream(words(ctx_gb), seed, (size_t)n * r);

	// The noisy operands, padded with zero rows to whole blocks.
	u32 m_pad = (m + V2_BM - 1) / V2_BM * V2_BM, n_pad = (n + V2_BN - 1) / V2_BN * V2_BN;
	std::vector<i8> an((size_t)m_pad * k, 0), btn((size_t)n_pad * k, 0);
	for (u64 g = 0; g < (u64)m * k / 16; g++) mlpow2_noisy_one(g, an.data(), a.data(), raw, el.data(), sel_a.data(), k, r);
	for (u64 g = 0; g < (u64)n * k / 16; g++)
		mlpow2_noisy_one(g, btn.data(), bt.data(), raw, gl.data(), sel_bt.data(), k, r);

	if (out_rows > m || out_cols > n || out_ldc < out_cols) {
		fprintf(stderr, "the output does not fit the product\n");
		return 2;
	}
	// The output buffer, prefilled with a pattern: what the kernel must
	// leave alone, and what it adds to.
	std::vector<i32> out((size_t)(out_rows + 2) * out_ldc);
	for (size_t i = 0; i < out.size(); i++) out[i] = (i32)(u32)(i * 2654435761u);
	// The correction for a useful job: U = A*S'^T, V = (S*Bt'^T)^T, then D
	// or its limbs (and the folded remainder after them).
	std::vector<i8> corr_a, corr_b;
	const u32 width = limbs * 2 * r + (fold_q > 0 ? V2_BK : 0);
	if (denoise) {
		std::vector<unsigned char> inv_a(k), inv_bt(k);
		for (u32 z = 0; z < k; z++) {
			inv_a[z / r * r + sel_a[z]] = (unsigned char)(z % r);
			inv_bt[z / r * r + sel_bt[z]] = (unsigned char)(z % r);
		}
		std::vector<i8> clean_a(a);
		if (raw)
			for (auto &v : clean_a) v = v2_seven(v);
		std::vector<i32> u((size_t)m * r), v((size_t)n * r);
		for (u64 idx = 0; idx < u.size(); idx++) mlpow2_column_sums_one(idx, u.data(), clean_a.data(), inv_bt.data(), k, r);
		for (u64 idx = 0; idx < v.size(); idx++) mlpow2_column_sums_one(idx, v.data(), btn.data(), inv_a.data(), k, r);
		// Both kernels compute D from the limbs (rows padded to whole
		// blocks, zero, as the host allocates them).
		corr_a.assign((size_t)m_pad * width, 0);
		corr_b.assign((size_t)n_pad * width, 0);
		for (u64 idx = 0; idx < u.size(); idx++)
			mlpow2_limbs_one(idx, corr_a.data(), width, u.data(), el.data(), r, limbs, 0);
		for (u64 idx = 0; idx < v.size(); idx++)
			mlpow2_limbs_one(idx, corr_b.data(), width, v.data(), gl.data(), r, limbs, 1);
		// The folded remainder after the limbs, as the host's `mlpow2_slab`
		// launches write it.
		for (u64 idx = 0; idx < (u64)out_rows * fold_q; idx++)
			mlpow2_slab_one(idx, corr_a.data(), width, limbs * 2 * r, rem_a.data(), fold_q, 1, fold_q, 1);
		for (u64 idx = 0; idx < (u64)out_cols * fold_q; idx++)
			mlpow2_slab_one(idx, corr_b.data(), width, limbs * 2 * r, rem_bt.data(), fold_q, 1, fold_q, 0);
	}

	const u32 capacity = 64;
	std::vector<u32> winners(1 + 3 * capacity, 0);
	std::vector<u32> states((size_t)(m / t) * (n / t) * 16, 0);
	std::vector<i32> noisy((size_t)m * n, 0);
	std::vector<u32> sw(16 * (V2_BM / 16) * (V2_BN / 16));
	const V2Out where{out.data(), out_ldc, out_rows, out_cols, accumulate, 0};
	const V2Corr corr{corr_a.data(), corr_b.data(), limbs, fold_q > 0 ? 1u : 0u};
	Block blk{an.data(), btn.data(), 0, 0, m, n, k, r, t, denoise != 0, where, noisy.data(), sw.data(), corr};
	for (u32 by = 0; by < m_pad / V2_BM; by++)
		for (u32 bx = 0; bx < n_pad / V2_BN; bx++) {
			blk.block_row = by * V2_BM;
			blk.block_col = bx * V2_BN;
			const u32 tiles = (V2_BM / t) * (V2_BN / t);
			memset(sw.data(), 0, tiles * 16 * 4);
			if (wgmma)
				wgmma_block(blk, mutation);
			else
				mma_block(blk);
			for (u32 lt = 0; lt < tiles; lt++)
				v2_tile_ticket(lt, sw.data(), blk.block_row, blk.block_col, m, n, t, key, target_be, nonce_index,
					winners.data(), capacity, states.data());
		}

	for (u32 i = 0; i < m / t; i++)
		for (u32 j = 0; j < n / t; j++) {
			const u32 *w = &states[((size_t)i * (n / t) + j) * 16];
			printf("state %u %u ", i, j);
			print_hex(w, 64);
			u32 digest[8];
			v2_ticket(key.w, i, j, w, digest);
			printf("\nticket %u %u ", i, j);
			print_hex(digest, 32);
			printf("\n");
		}
	for (u32 w = 0; w < winners[0] && w < capacity; w++)
		printf("winner %u %u %u\n", winners[1 + 3 * w], winners[2 + 3 * w], winners[3 + 3 * w]);
	printf("winners %u\n", winners[0]);
	printf("noisy ");
	print_hex(noisy.data(), noisy.size() * 4);
	printf("\n");
	if (denoise) {
		printf("product ");
		print_hex(out.data(), out.size() * 4);
		printf("\n");
	}
	return 0;
}

// The emulation refuses what the PTX ISA leaves undefined (a read outside
// the shared window, reserved descriptor bits) by throwing.
int main(int argc, char **argv) {
	try {
		return run(argc, argv);
	} catch (const std::exception &e) {
		fprintf(stderr, "error: %s\n", e.what());
		return 1;
	}
}
