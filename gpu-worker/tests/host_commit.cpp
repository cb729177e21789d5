// Runs the commitment kernels of kernels/commit.cu on the CPU, every body
// over every index in the order and with the buffers the launch sequence
// at the top of commit.cu gives, so that tests/kernels_on_host_commit.rs
// can compare each pass with the Rust primitives on machines without a GPU.
//
// usage: host_commit rows k t ctx_leaf ctx_node FILE [MUTATION]
// (context keys as 64 hex digits; FILE holds the rows x k matrix as raw
// bytes). Prints, one per line:
//   chunks <chunks per leaf>
//   cv <leaf> <chunk> <hex>      pass 1's value of every chunk
//   leaf <i> <hex>               pass 2
//   node <level> <i> <hex>       pass 3, levels 1 .. d (level 0: the leaves)
//   root <hex>
//
// MUTATION runs a mutated copy of the kernels instead, to show that the
// tests catch it. The copies are commit.cu itself, included a second time
// inside a namespace with one name redefined around it, so the kernel
// source carries no test hooks:
//   no-root       B3_ROOT is 0 inside commit.cu (a leaf's root compression
//                 loses its ROOT flag; the Merkle nodes, hashed by
//                 blake3.cuh's b3_derive_key_short, keep theirs);
//   zero-counter  every compression commit.cu makes has counter 0 (the
//                 chunk index forgotten: leaves of several chunks change);
//   no-padding    the launcher's mistake: level 0 passed as `width` real
//                 hashes, its padding slots holding garbage instead of
//                 reading as zeros (trees with a non-power-of-two leaf
//                 count change).

#include "../kernels/commit.cu"

// The mutated copies. Only commit.cu is included again (its guard
// undefined); mine.cu and blake3.cuh keep their guards, so their functions
// stay the global, unmutated ones.
#undef MLPOW_COMMIT_CU
#undef B3_ROOT
#define B3_ROOT 0u
namespace no_root {
#include "../kernels/commit.cu"
}
#undef B3_ROOT
#define B3_ROOT 8u

static inline void compress_counter_zero(const u32 cv[8], const u32 m[16], u64, u32 block_len, u32 flags,
	u32 out[16]) {
	b3_compress(cv, m, 0, block_len, flags, out);
}
#undef MLPOW_COMMIT_CU
#define b3_compress compress_counter_zero
namespace zero_counter {
#include "../kernels/commit.cu"
}
#undef b3_compress

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "host_words.hpp"

// 8 words as the 32 bytes of a hash (little-endian).
static void print_hash(const u32 *w) {
	for (int i = 0; i < 8; i++)
		for (int b = 0; b < 4; b++) printf("%02x", (w[i] >> (8 * b)) & 0xff);
}

// The three bodies, as one kernel build.
struct Bodies {
	decltype(&mlpow2_chunk_cv_one) chunk_cv;
	decltype(&mlpow2_leaf_one) leaf;
	decltype(&mlpow2_merkle_node_one) node;
};

static const Bodies KERNEL = {mlpow2_chunk_cv_one, mlpow2_leaf_one, mlpow2_merkle_node_one};
static const Bodies NO_ROOT = {no_root::mlpow2_chunk_cv_one, no_root::mlpow2_leaf_one,
	no_root::mlpow2_merkle_node_one};
static const Bodies ZERO_COUNTER = {zero_counter::mlpow2_chunk_cv_one, zero_counter::mlpow2_leaf_one,
	zero_counter::mlpow2_merkle_node_one};

int main(int argc, char **argv) {
	if (argc != 7 && argc != 8) {
		fprintf(stderr, "usage: see the comment at the top of host_commit.cpp\n");
		return 2;
	}
	const u32 rows = atoi(argv[1]), k = atoi(argv[2]), t = atoi(argv[3]);
	const Words8 leaf_key = words(argv[4]), node_key = words(argv[5]);
	const std::string mutation = argc == 8 ? argv[7] : "";
	const Bodies &run = mutation == "no-root" ? NO_ROOT : mutation == "zero-counter" ? ZERO_COUNTER : KERNEL;
	if (!mutation.empty() && mutation != "no-root" && mutation != "zero-counter" && mutation != "no-padding") {
		fprintf(stderr, "unknown mutation %s\n", mutation.c_str());
		return 2;
	}
	std::ifstream in(argv[6], std::ios::binary);
	std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	// What the kernels assume (commit.cu): whole blocks of t rows, and
	// leaves a multiple of 256 bytes (t and k multiples of 16).
	const u32 leaf_bytes = t * k;
	if (t == 0 || rows % t != 0 || leaf_bytes % 256 != 0 || bytes.size() != (size_t)rows * k) {
		fprintf(stderr, "the matrix is not rows x k bytes of whole t-row blocks, t*k a multiple of 256\n");
		return 2;
	}
	std::vector<i8> matrix(bytes.begin(), bytes.end());

	const u32 leaves = rows / t, chunks = commit_chunks_per_leaf(leaf_bytes);
	u32 width = 1;
	while (width < leaves) width *= 2;

	// Pass 1: every chunk of every leaf.
	std::vector<u32> cvs((size_t)leaves * chunks * 8);
	for (u64 idx = 0; idx < (u64)leaves * chunks; idx++) run.chunk_cv(idx, matrix.data(), leaf_bytes, leaf_key, cvs.data());
	printf("chunks %u\n", chunks);
	for (u64 idx = 0; idx < (u64)leaves * chunks; idx++) {
		printf("cv %llu %llu ", (unsigned long long)(idx / chunks), (unsigned long long)(idx % chunks));
		print_hash(&cvs[idx * 8]);
		printf("\n");
	}

	// Pass 2: the leaves, into level 0 of the tree (2 * width - 1 hashes).
	// The padding slots are filled with garbage: the kernels must read them
	// as zeros without looking.
	std::vector<u32> tree((size_t)(2 * width - 1) * 8, 0xa5a5a5a5u);
	for (u64 leaf = 0; leaf < leaves; leaf++) run.leaf(leaf, cvs.data(), chunks, leaf_key, tree.data());
	for (u32 i = 0; i < leaves; i++) {
		printf("leaf %u ", i);
		print_hash(&tree[(size_t)i * 8]);
		printf("\n");
	}

	// Pass 3: one launch per level, leaves up.
	size_t below = 0;
	for (u32 level = 0, w = width; w > 1; level++, w /= 2) {
		const size_t above = below + w;
		const u32 real = level == 0 && mutation != "no-padding" ? leaves : w;
		for (u64 idx = 0; idx < w / 2; idx++)
			run.node(idx, &tree[below * 8], real, node_key, &tree[above * 8]);
		for (u32 i = 0; i < w / 2; i++) {
			printf("node %u %u ", level + 1, i);
			print_hash(&tree[(above + i) * 8]);
			printf("\n");
		}
		below = above;
	}
	printf("root ");
	print_hash(&tree[below * 8]);
	printf("\n");
	return 0;
}
