// The host harnesses' reading of a 32-byte hex argument (a seed or a context
// key) into the kernels' `Words8`: little-endian words, as BLAKE3 reads
// bytes. Include after the kernel source that defines `Words8`.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

static Words8 words(const char *hex) {
	Words8 out;
	if (strlen(hex) != 64) {
		fprintf(stderr, "expected 64 hex digits: %s\n", hex);
		exit(2);
	}
	unsigned char bytes[32];
	for (int i = 0; i < 32; i++) sscanf(hex + 2 * i, "%2hhx", &bytes[i]);
	for (int w = 0; w < 8; w++)
		out.w[w] = bytes[4 * w] | bytes[4 * w + 1] << 8 | bytes[4 * w + 2] << 16 | (u32)bytes[4 * w + 3] << 24;
	return out;
}
