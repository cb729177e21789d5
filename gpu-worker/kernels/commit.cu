// Puzzle v2's chosen-mode commitments on the device (consensus/SPEC-v2.md,
// "Commitments (chosen mode)"): the Merkle root of a matrix's t-row blocks,
// computed where the matrix already lives, so that a model's operands are
// committed without copying them to the host. The host version is
// `mlpow_primitives::v2::commit` (and the worker's `chosen::commit_a`,
// `commit_bt`); tests/host_commit.cpp runs every body below on the CPU
// against them.
//
// A matrix of `rows x k` i8 (row-major) is cut into `rows / t` blocks of
// `leaf_bytes = t * k` bytes. Leaf i is derive_key(CTX2_LEAF, block i): a
// BLAKE3 hash of its own in derive_key's second stage (BLAKE3 spec 2.3:
// the context key as key words, DERIVE_KEY_MATERIAL on every compression),
// its input cut into 1024-byte chunks (spec 2.1). Three passes, each a
// per-thread body plus a `__global__` wrapper, as in mine.cu:
//
// 1. `mlpow2_chunk_cvs`, a thread per chunk of every leaf: the chunk's
//    chaining value (16 compressions at most; this is nearly all the work,
//    so it gets the parallelism).
// 2. `mlpow2_leaves`, a thread per leaf: its chunks' values merged into the
//    leaf hash with the CV stack (as b3_keyed_hash_tile does).
// 3. `mlpow2_merkle_level`, a thread per node of one level of the tree: the
//    host launches it once per level, leaves up; 4096 leaves at most
//    (MAX_MN / 16), so at most 12 launches of 2048 threads and fewer.
//
// The host launches, on one stream (the buffers are the launcher's; the
// tests use exactly these sizes):
//    chunks = ceil(leaf_bytes / 1024) per leaf, leaves = rows / t,
//    width = leaves rounded up to a power of two;
//    mlpow2_chunk_cvs(matrix, leaves * chunks, leaf_bytes, leaf_key, cvs)
//        (cvs: leaves * chunks values of 8 words)
//    mlpow2_leaves(cvs, leaves, chunks, leaf_key, tree)
//    for each level l = 0 .. log2(width) - 1, w = width >> l:
//        mlpow2_merkle_level(level l, l == 0 ? leaves : w, level l + 1,
//                            w / 2, node_key)
// `tree` holds 2 * width - 1 hashes of 8 words, level 0 (the leaves, the
// padding slots never read) then each level above; the root comes last.
// `leaf_key` and `node_key` are the derive_key context keys of CTX2_LEAF
// and CTX2_NODE (`Words8::context_key` of `commit::CTX_LEAF`, `CTX_NODE`). `matrix` must be 16-byte aligned
// (the device reads 16 bytes at a time; every 64-byte block is then
// aligned, since leaf_bytes is a multiple of 256).
//
// NVRTC gets this file appended to the other kernels, with the include
// below dropped (kernels.rs `source()`); the host harness includes it.

#ifndef MLPOW_COMMIT_CU
#define MLPOW_COMMIT_CU

#include "mine.cu"

// BLAKE3 chunks and blocks (spec 2.1, 2.4): 16 blocks of 64 bytes a chunk.
#define COMMIT_CHUNK_BYTES 1024u
#define COMMIT_BLOCK_BYTES 64u

// Pending subtrees of pass 2: after c chunks the CV stack holds one value
// per 1 bit of c (spec 5.1.2), and a leaf is at most MAX_T * MAX_K = 2^23
// bytes, 2^13 chunks, for any parameters that validate: 13 at most. (v2's
// opening bound, 2*t*k <= 512 KiB, keeps it at 8; this does not rely on it.)
#define COMMIT_MAX_STACK 13

// The 16 message words of a 64-byte block of the matrix, little-endian
// (spec 2.4: each block is parsed as little-endian words).
MLPOW_FN void commit_load64(const i8 *p, u32 m[16]) {
#ifdef __CUDACC__
	// Four 16-byte loads, as blake3.cuh reads a tile's 64 bytes.
	b3_load16((const i32 *)p, m);
#else
	// Byte by byte: no aliasing of the i8 buffer as words, whatever the
	// host's byte order.
	for (int w = 0; w < 16; w++)
		m[w] = (u32)(unsigned char)p[4 * w] | (u32)(unsigned char)p[4 * w + 1] << 8 |
			(u32)(unsigned char)p[4 * w + 2] << 16 | (u32)(unsigned char)p[4 * w + 3] << 24;
#endif
}

MLPOW_FN u32 commit_chunks_per_leaf(u32 leaf_bytes) {
	return (leaf_bytes + COMMIT_CHUNK_BYTES - 1) / COMMIT_CHUNK_BYTES;
}

// Pass 1, chunk `idx` over all leaves: chunk c = idx % chunks of leaf
// idx / chunks (chunks never cross a leaf: each leaf is its own BLAKE3
// input, so c is the chunk counter t, spec 2.4). Writes 8 words at
// `cvs + 8 * idx`. The chunk is 1024 bytes, or fewer for the last one
// (leaf_bytes is a multiple of 256, not always of 1024: 256, 512 or 768
// bytes); t and k are multiples of 16, so every block is a whole 64 bytes
// and block_len is always 64. CHUNK_START on the chunk's first block,
// CHUNK_END on its last (spec 2.4); DERIVE_KEY_MATERIAL on every
// compression with the context key as the key (2.3). A leaf of one chunk
// is a BLAKE3 input of one chunk, the root of its tree: its last block
// also sets ROOT (2.4), and what is written is the leaf itself.
MLPOW_FN void mlpow2_chunk_cv_one(u64 idx, const i8 *matrix, u32 leaf_bytes, Words8 leaf_key, u32 *cvs) {
	const u32 chunks = commit_chunks_per_leaf(leaf_bytes);
	const u64 leaf = idx / chunks;
	const u32 c = (u32)(idx % chunks);
	const u32 bytes = leaf_bytes - c * COMMIT_CHUNK_BYTES;
	const u32 blocks = (bytes < COMMIT_CHUNK_BYTES ? bytes : COMMIT_CHUNK_BYTES) / COMMIT_BLOCK_BYTES;
	const i8 *p = matrix + leaf * leaf_bytes + (u64)c * COMMIT_CHUNK_BYTES;
	u32 cv[8], m[16], out[16];
	for (int w = 0; w < 8; w++) cv[w] = leaf_key.w[w];
	for (u32 b = 0; b < blocks; b++) {
		commit_load64(p + b * COMMIT_BLOCK_BYTES, m);
		u32 flags = B3_DERIVE_KEY_MATERIAL;
		if (b == 0) flags |= B3_CHUNK_START;
		if (b + 1 == blocks) flags |= B3_CHUNK_END | (chunks == 1 ? B3_ROOT : 0u);
		b3_compress(cv, m, c, COMMIT_BLOCK_BYTES, flags, out);
		for (int w = 0; w < 8; w++) cv[w] = out[w];
	}
	for (int w = 0; w < 8; w++) cvs[idx * 8 + w] = cv[w];
}

// A parent node inside a leaf's BLAKE3 tree (spec 2.5): one compression
// of left || right with the key words, counter 0, block_len 64, PARENT
// (and DERIVE_KEY_MATERIAL, the mode's flag on every compression, 2.3);
// ROOT for the tree's top node (2.5).
MLPOW_FN void commit_parent(const u32 key[8], const u32 left[8], const u32 right[8], u32 root, u32 cv[8]) {
	u32 m[16], out[16];
	for (int w = 0; w < 8; w++) {
		m[w] = left[w];
		m[w + 8] = right[w];
	}
	b3_compress(key, m, 0, COMMIT_BLOCK_BYTES, B3_PARENT | B3_DERIVE_KEY_MATERIAL | (root ? B3_ROOT : 0u), out);
	for (int w = 0; w < 8; w++) cv[w] = out[w];
}

// Pass 2, leaf `leaf`: its `chunks` chaining values (at
// `cvs + 8 * leaf * chunks`, as pass 1 wrote them) merged into the leaf
// hash, written at `leaves + 8 * leaf`. BLAKE3's tree over c chunks has the
// largest power of two below c in its left subtree (spec 2.1); the CV
// stack builds exactly that, merging each completed subtree as the next
// chunk arrives (5.1.2), the last merge being the root. One chunk:
// pass 1's value is already the leaf (ROOT applied), copied.
MLPOW_FN void mlpow2_leaf_one(u64 leaf, const u32 *cvs, u32 chunks, Words8 leaf_key, u32 *leaves) {
	const u32 *in = cvs + leaf * chunks * 8;
	u32 stack[COMMIT_MAX_STACK][8];
	int depth = 0;
	u32 cv[8];
	for (u32 c = 0; c < chunks; c++) {
		for (int w = 0; w < 8; w++) cv[w] = in[c * 8 + w];
		if (c + 1 == chunks) break;
		// As many merges as trailing zero bits of the chunks so far: each
		// one closes a complete subtree whose left half waits on the stack.
		for (u32 total = c + 1; (total & 1) == 0; total >>= 1) commit_parent(leaf_key.w, stack[--depth], cv, 0, cv);
		for (int w = 0; w < 8; w++) stack[depth][w] = cv[w];
		depth++;
	}
	// The last chunk merges with every pending subtree, right to left.
	while (depth > 0) {
		depth--;
		commit_parent(leaf_key.w, stack[depth], cv, depth == 0, cv);
	}
	for (int w = 0; w < 8; w++) leaves[leaf * 8 + w] = cv[w];
}

// Pass 3, node `idx` of a tree level: derive_key(CTX2_NODE, left || right),
// 64 bytes of material, one compression (b3_derive_key_short). The level
// below holds `below_real` hashes at `below`; the slots past them are the
// spec's all-zero padding leaves (only at the leaf level: every node above
// is computed, since node(0, 0) is not 0). Writes `above + 8 * idx`.
MLPOW_FN void mlpow2_merkle_node_one(u64 idx, const u32 *below, u32 below_real, Words8 node_key, u32 *above) {
	u32 material[16];
	for (int side = 0; side < 2; side++) {
		const u64 child = 2 * idx + side;
		for (int w = 0; w < 8; w++) material[side * 8 + w] = child < below_real ? below[child * 8 + w] : 0u;
	}
	u32 node[8];
	b3_derive_key_short(node_key.w, material, 64, node);
	for (int w = 0; w < 8; w++) above[idx * 8 + w] = node[w];
}

#ifdef __CUDACC__
extern "C" __global__ void mlpow2_chunk_cvs(const i8 *matrix, u64 total_chunks, u32 leaf_bytes, Words8 leaf_key,
	u32 *cvs) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < total_chunks) mlpow2_chunk_cv_one(idx, matrix, leaf_bytes, leaf_key, cvs);
}

extern "C" __global__ void mlpow2_leaves(const u32 *cvs, u64 leaves, u32 chunks, Words8 leaf_key, u32 *out) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < leaves) mlpow2_leaf_one(idx, cvs, chunks, leaf_key, out);
}

extern "C" __global__ void mlpow2_merkle_level(const u32 *below, u32 below_real, u32 *above, u64 nodes,
	Words8 node_key) {
	u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx < nodes) mlpow2_merkle_node_one(idx, below, below_real, node_key, above);
}
#endif

#endif  // MLPOW_COMMIT_CU
