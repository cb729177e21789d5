// Runs the bodies of kernels/mine.cu on the CPU, one index at a time, so
// that tests/kernels_on_host.rs can compare them with the Rust reference
// miner and the golden vectors on machines without a GPU. The product
// between generation and hashing is a plain triple loop here (on a GPU it
// is cuBLASLt's).
//
// usage: host_kernels m k n t weights_seed job_seed first_nonce count
//                     target_be ctx_weights ctx_activations ctx_tile
// (32-byte values in hex). Prints, one per line:
//   bt <hex of Bt>
//   a <b> <hex of A for nonce first_nonce+b>
//   digest <b> <i> <j> <hex>
//   winner <b> <i> <j>
//   winners <count>

#include "../kernels/mine.cu"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "host_words.hpp"

static void print_hex(const void *p, size_t len) {
	const unsigned char *b = (const unsigned char *)p;
	for (size_t i = 0; i < len; i++) printf("%02x", b[i]);
}

int main(int argc, char **argv) {
	if (argc != 13) {
		fprintf(stderr, "usage: see the comment at the top of host_kernels.cpp\n");
		return 2;
	}
	u32 m = atoi(argv[1]), k = atoi(argv[2]), n = atoi(argv[3]), t = atoi(argv[4]);
	Words8 weights_seed = words(argv[5]), job_seed = words(argv[6]);
	u64 first_nonce = strtoull(argv[7], 0, 10);
	u32 count = atoi(argv[8]);
	// The target is big-endian: word i is bytes 4i..4i+4 read big-endian.
	Words8 target_le = words(argv[9]), target_be;
	for (int w = 0; w < 8; w++) target_be.w[w] = b3_bswap(target_le.w[w]);
	Words8 ctx_weights = words(argv[10]), ctx_activations = words(argv[11]), ctx_tile = words(argv[12]);

	std::vector<i8> bt((size_t)n * k);
	for (u64 idx = 0; idx < bt.size() / 64; idx++)
		mlpow_generate_one(idx, bt.data(), bt.size() / 64, ctx_weights, weights_seed, 0, 0);
	printf("bt ");
	print_hex(bt.data(), bt.size());
	printf("\n");

	size_t a_len = (size_t)m * k;
	std::vector<i8> a(a_len * count);
	for (u64 idx = 0; idx < a.size() / 64; idx++)
		mlpow_generate_one(idx, a.data(), a_len / 64, ctx_activations, job_seed, 1, first_nonce);
	for (u32 b = 0; b < count; b++) {
		printf("a %u ", b);
		print_hex(a.data() + b * a_len, a_len);
		printf("\n");
	}

	std::vector<i32> c((size_t)count * m * n);
	for (u32 b = 0; b < count; b++)
		for (u32 r = 0; r < m; r++)
			for (u32 col = 0; col < n; col++) {
				i32 sum = 0;
				const i8 *ar = a.data() + b * a_len + (size_t)r * k, *br = bt.data() + (size_t)col * k;
				for (u32 x = 0; x < k; x++) sum += (i32)ar[x] * (i32)br[x];
				c[((size_t)b * m + r) * n + col] = sum;
			}

	const u32 capacity = 64;
	std::vector<u32> winners(1 + 3 * capacity, 0);
	u64 tiles = (u64)count * (m / t) * (n / t);
	std::vector<u32> digests(tiles * 8);
	for (u64 idx = 0; idx < tiles; idx++)
		mlpow_hash_tile_one(idx, c.data(), m, n, t, ctx_tile, job_seed, first_nonce, target_be, winners.data(),
			capacity, digests.data());
	u32 tiles_n = n / t, tiles_m = m / t;
	for (u64 idx = 0; idx < tiles; idx++) {
		u64 per = (u64)tiles_m * tiles_n;
		printf("digest %llu %llu %llu ", (unsigned long long)(idx / per), (unsigned long long)(idx % per / tiles_n),
			(unsigned long long)(idx % tiles_n));
		print_hex(&digests[idx * 8], 32);
		printf("\n");
	}
	for (u32 w = 0; w < winners[0] && w < capacity; w++)
		printf("winner %u %u %u\n", winners[1 + 3 * w], winners[2 + 3 * w], winners[3 + 3 * w]);
	printf("winners %u\n", winners[0]);
	return 0;
}
