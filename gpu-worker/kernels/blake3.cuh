// BLAKE3 for the mining kernels: the compression function and the three
// ways consensus uses it (consensus/SPEC.md): the XOF of a derive_key hash
// of one short block (weights and activations), derive_key of one short
// block (tile keys), and keyed_hash of a whole tile (digests).
//
// The same text compiles three ways: by NVRTC for the device (`__CUDACC__`
// defined), and by a host C++ compiler in the worker's tests, which run
// every function here against the Rust `blake3` crate and the golden
// vectors. Nothing here may depend on which one is compiling it.
//
// Reference: the BLAKE3 specification, sections 2.2-2.6
// (https://github.com/BLAKE3-team/BLAKE3-specs).

#ifndef MLPOW_BLAKE3_CUH
#define MLPOW_BLAKE3_CUH

#ifdef __CUDACC__
#define MLPOW_FN __device__ __forceinline__
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char i8;
typedef int i32;
#else
#include <stdint.h>
#define MLPOW_FN static inline
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t i8;
typedef int32_t i32;
#endif

// Domain flags (spec table 3).
#define B3_CHUNK_START 1u
#define B3_CHUNK_END 2u
#define B3_PARENT 4u
#define B3_ROOT 8u
#define B3_KEYED_HASH 16u
#define B3_DERIVE_KEY_CONTEXT 32u
#define B3_DERIVE_KEY_MATERIAL 64u

// A chunk is 16 blocks of 64 bytes; a t x t tile of i32 is (t/16)^2 chunks,
// at most 64 for t = 128, so a stack of 7 chaining values always suffices.
#define B3_MAX_STACK 7

#define B3_ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

#define B3_G(a, b, c, d, x, y)                                                                                         \
	do {                                                                                                               \
		v[a] = v[a] + v[b] + (x);                                                                                      \
		v[d] = B3_ROTR(v[d] ^ v[a], 16);                                                                               \
		v[c] = v[c] + v[d];                                                                                            \
		v[b] = B3_ROTR(v[b] ^ v[c], 12);                                                                               \
		v[a] = v[a] + v[b] + (y);                                                                                      \
		v[d] = B3_ROTR(v[d] ^ v[a], 8);                                                                                \
		v[c] = v[c] + v[d];                                                                                            \
		v[b] = B3_ROTR(v[b] ^ v[c], 7);                                                                                \
	} while (0)

// One round over the message words in the order given by `s` (the spec's
// permutation applied r times, written out so every index is a constant
// and the words stay in registers).
#define B3_ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15)                               \
	do {                                                                                                               \
		B3_G(0, 4, 8, 12, m[s0], m[s1]);                                                                               \
		B3_G(1, 5, 9, 13, m[s2], m[s3]);                                                                               \
		B3_G(2, 6, 10, 14, m[s4], m[s5]);                                                                              \
		B3_G(3, 7, 11, 15, m[s6], m[s7]);                                                                              \
		B3_G(0, 5, 10, 15, m[s8], m[s9]);                                                                              \
		B3_G(1, 6, 11, 12, m[s10], m[s11]);                                                                            \
		B3_G(2, 7, 8, 13, m[s12], m[s13]);                                                                             \
		B3_G(3, 4, 9, 14, m[s14], m[s15]);                                                                             \
	} while (0)

// The compression function: chaining value `cv`, message block `m` (16
// little-endian words), 64-bit `counter`, `block_len` bytes, `flags`.
// Writes all 16 output words (the first 8 are the new chaining value; all
// 16 are one 64-byte block of extended output).
MLPOW_FN void b3_compress(const u32 cv[8], const u32 m[16], u64 counter, u32 block_len, u32 flags, u32 out[16]) {
	u32 v[16] = {
		cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
		0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
		(u32)counter, (u32)(counter >> 32), block_len, flags,
	};
	// Message schedules of rounds 1-7 (spec 2.2: the permutation
	// 2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8 applied before each round after
	// the first).
	B3_ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	B3_ROUND(2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8);
	B3_ROUND(3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1);
	B3_ROUND(10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6);
	B3_ROUND(12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4);
	B3_ROUND(9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7);
	B3_ROUND(11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13);
	for (int i = 0; i < 8; i++) {
		out[i] = v[i] ^ v[i + 8];
		out[i + 8] = v[i + 8] ^ cv[i];
	}
}

// Block `block_index` (64 bytes, as 16 words) of xof(context, material) for
// a material of at most 64 bytes: one chunk of one block, so every output
// block is one compression of the same input with the block index as the
// counter. `context_key` is derive_key's hash of the context string (the
// host computes it once); `material` is zero-padded to 16 words.
MLPOW_FN void b3_xof_block(const u32 context_key[8], const u32 material[16], u32 material_len, u64 block_index,
	u32 out[16]) {
	b3_compress(context_key, material, block_index, material_len,
		B3_CHUNK_START | B3_CHUNK_END | B3_ROOT | B3_DERIVE_KEY_MATERIAL, out);
}

// derive_key(context, material) for a material of at most 64 bytes.
MLPOW_FN void b3_derive_key_short(const u32 context_key[8], const u32 material[16], u32 material_len, u32 key[8]) {
	u32 out[16];
	b3_xof_block(context_key, material, material_len, 0, out);
	for (int i = 0; i < 8; i++) key[i] = out[i];
}

// keyed_hash(key, bytes of a t x t i32 tile), t a multiple of 16 up to 128.
// `tile` points at the tile's first element; consecutive tile rows are
// `row_stride` elements apart. Every 64-byte block lies within one tile row
// (16 consecutive i32), and i32 little-endian bytes read back as the same
// 32-bit words, so the tile's elements are the message words as they are.
// `load_row16` reads 16 elements; the device version uses 16-byte loads.
MLPOW_FN void b3_load16(const i32 *p, u32 m[16]) {
#ifdef __CUDACC__
	const int4 *q = (const int4 *)p;
	for (int w = 0; w < 4; w++) {
		int4 x = q[w];
		m[4 * w] = (u32)x.x;
		m[4 * w + 1] = (u32)x.y;
		m[4 * w + 2] = (u32)x.z;
		m[4 * w + 3] = (u32)x.w;
	}
#else
	for (int w = 0; w < 16; w++) m[w] = (u32)p[w];
#endif
}

MLPOW_FN void b3_keyed_hash_tile(const u32 key[8], const i32 *tile, u64 row_stride, u32 t, u32 digest[8]) {
	const u32 values_per_chunk = 256;  // 1024 bytes
	const u32 chunks = t * t / values_per_chunk;
	u32 stack[B3_MAX_STACK][8];
	int depth = 0;
	u32 cv[8];
	u32 m[16];
	u32 out[16];
	for (u32 c = 0; c < chunks; c++) {
		for (int w = 0; w < 8; w++) cv[w] = key[w];
		for (u32 b = 0; b < 16; b++) {
			u32 first = c * values_per_chunk + b * 16;  // value index within the tile
			b3_load16(tile + (u64)(first / t) * row_stride + first % t, m);
			u32 flags = B3_KEYED_HASH;
			if (b == 0) flags |= B3_CHUNK_START;
			if (b == 15) flags |= B3_CHUNK_END;
			if (b == 15 && chunks == 1) flags |= B3_ROOT;
			b3_compress(cv, m, c, 64, flags, out);
			for (int w = 0; w < 8; w++) cv[w] = out[w];
		}
		if (c + 1 == chunks) break;
		// Push this chunk's chaining value, first merging every completed
		// subtree: as many merges as trailing zero bits of the chunk count.
		for (u32 total = c + 1; (total & 1) == 0; total >>= 1) {
			depth--;
			for (int w = 0; w < 8; w++) {
				m[w] = stack[depth][w];
				m[w + 8] = cv[w];
			}
			b3_compress(key, m, 0, 64, B3_KEYED_HASH | B3_PARENT, out);
			for (int w = 0; w < 8; w++) cv[w] = out[w];
		}
		for (int w = 0; w < 8; w++) stack[depth][w] = cv[w];
		depth++;
	}
	// The last chunk's value merges with every pending subtree, right to
	// left; the last merge is the root.
	while (depth > 0) {
		depth--;
		for (int w = 0; w < 8; w++) {
			m[w] = stack[depth][w];
			m[w + 8] = cv[w];
		}
		b3_compress(key, m, 0, 64, B3_KEYED_HASH | B3_PARENT | (depth == 0 ? B3_ROOT : 0u), out);
		for (int w = 0; w < 8; w++) cv[w] = out[w];
	}
	for (int w = 0; w < 8; w++) digest[w] = cv[w];
}

// Is the digest, read as a big-endian 256-bit number, <= target? `target`
// is given as 8 big-endian words, most significant first. The digest's
// bytes are its words in little-endian order, so its big-endian word i is
// byte-swapped word i.
MLPOW_FN u32 b3_bswap(u32 x) {
	return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
}

MLPOW_FN int b3_meets_target(const u32 digest[8], const u32 target_be[8]) {
	for (int i = 0; i < 8; i++) {
		u32 d = b3_bswap(digest[i]);
		if (d != target_be[i]) return d < target_be[i];
	}
	return 1;
}

#endif  // MLPOW_BLAKE3_CUH
