// The mining kernels: generate matrices from BLAKE3 streams, and hash every
// tile of a product, keeping only the winners. The product itself is
// computed between them by cuBLASLt's int8 tensor-core GEMM (src/cuda.rs).
//
// Each kernel is a per-thread body (`*_one`) plus a `__global__` wrapper
// that maps the thread index onto it. The worker's host tests compile this
// file with a C++ compiler and run the bodies over every index, against the
// Rust reference miner and the golden vectors, so the arithmetic is tested
// on machines without a GPU; a GPU test then runs the real kernels.
//
// The worker hands NVRTC this file with the #include below replaced by
// blake3.cuh itself (NVRTC cannot read files).

#ifndef MLPOW_MINE_CU
#define MLPOW_MINE_CU

#include "blake3.cuh"

// Eight 32-bit words passed by value: a key, a seed, a target.
struct Words8 {
	u32 w[8];
};

// Output block `idx` of a matrix stream (consensus/SPEC.md, "Matrices"):
// item `idx / blocks_per_item` of a batch, block `idx % blocks_per_item` of
// its stream. For activations (`with_nonce`) item `b` is nonce
// `first_nonce + b` and the material is `seed || nonce u64 LE` (seed = the
// job seed); for weights the material is the weights seed alone. Writes 64
// bytes at `out + 64 * idx`.
MLPOW_FN void mlpow_generate_one(u64 idx, i8 *out, u64 blocks_per_item, Words8 context_key, Words8 seed,
	int with_nonce, u64 first_nonce) {
	u32 material[16] = {0};
	for (int w = 0; w < 8; w++) material[w] = seed.w[w];
	u32 len = 32;
	if (with_nonce) {
		u64 nonce = first_nonce + idx / blocks_per_item;
		material[8] = (u32)nonce;
		material[9] = (u32)(nonce >> 32);
		len = 40;
	}
	u32 block[16];
	b3_xof_block(context_key.w, material, len, idx % blocks_per_item, block);
	u32 *dst = (u32 *)(out + 64 * idx);
	for (int w = 0; w < 16; w++) dst[w] = block[w];
}

// Appends winner (b, i, j) to `winners` (winners[0] counts them; at most
// `capacity` are kept, three words each).
MLPOW_FN void mlpow_append_winner(u32 *winners, u32 capacity, u32 b, u32 i, u32 j) {
#ifdef __CUDACC__
	u32 slot = atomicAdd(winners, 1u);
#else
	u32 slot = winners[0]++;
#endif
	if (slot < capacity) {
		winners[1 + 3 * slot] = b;
		winners[2 + 3 * slot] = i;
		winners[3 + 3 * slot] = j;
	}
}

// Tile `idx` of a batch of products (consensus/SPEC.md, "The product and
// its tiles"): `c` holds `batch` products of `m x n` i32, row-major, one
// after another; tile `idx` is tile (i, j) of product `b`, counting tiles
// in row-major order within a product. A winner appends (b, i, j) to
// `winners` (winners[0] counts them; at most `capacity` are kept). With
// `digests` non-null, every digest is also written there, 8 words a tile
// (tests and golden vectors only).
MLPOW_FN void mlpow_hash_tile_one(u64 idx, const i32 *c, u32 m, u32 n, u32 t, Words8 tile_context_key,
	Words8 job_seed, u64 first_nonce, Words8 target_be, u32 *winners, u32 capacity, u32 *digests) {
	u32 tiles_n = n / t;
	u64 tiles_per_product = (u64)(m / t) * tiles_n;
	u32 b = (u32)(idx / tiles_per_product);
	u64 rem = idx % tiles_per_product;
	u32 i = (u32)(rem / tiles_n);
	u32 j = (u32)(rem % tiles_n);
	u64 nonce = first_nonce + b;

	// tile_key = derive_key(CTX_TILE_KEY, job_seed || nonce || i || j)
	u32 material[16] = {0};
	for (int w = 0; w < 8; w++) material[w] = job_seed.w[w];
	material[8] = (u32)nonce;
	material[9] = (u32)(nonce >> 32);
	material[10] = i;
	material[11] = j;
	u32 key[8];
	b3_derive_key_short(tile_context_key.w, material, 48, key);

	const i32 *tile = c + ((u64)b * m + (u64)i * t) * n + (u64)j * t;
	u32 digest[8];
	b3_keyed_hash_tile(key, tile, n, t, digest);
	if (digests) {
		for (int w = 0; w < 8; w++) digests[idx * 8 + w] = digest[w];
	}
	if (b3_meets_target(digest, target_be.w)) mlpow_append_winner(winners, capacity, b, i, j);
}

#ifdef __CUDACC__
extern "C" __global__ void mlpow_generate(i8 *out, u64 total_blocks, u64 blocks_per_item, Words8 context_key,
	Words8 seed, int with_nonce, u64 first_nonce) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < total_blocks) mlpow_generate_one(idx, out, blocks_per_item, context_key, seed, with_nonce, first_nonce);
}

extern "C" __global__ void mlpow_hash_tiles(const i32 *c, u64 total_tiles, u32 m, u32 n, u32 t,
	Words8 tile_context_key, Words8 job_seed, u64 first_nonce, Words8 target_be, u32 *winners, u32 capacity,
	u32 *digests) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < total_tiles)
		mlpow_hash_tile_one(idx, c, m, n, t, tile_context_key, job_seed, first_nonce, target_be, winners, capacity,
			digests);
}
#endif

#endif  // MLPOW_MINE_CU
