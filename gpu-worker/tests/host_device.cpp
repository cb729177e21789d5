// Runs the device-operand kernels of kernels/device.cu on the CPU, every
// body over every index as the launcher (src/cuda/inproc.rs) launches
// them, so that tests/kernels_on_host_device.rs can compare each with the
// Rust functions it stands for on machines without a GPU.
//
// Matrices are files of raw little-endian elements (i8 or i32), read
// whole; each command checks that every index its kernel reads or writes
// is inside its file (a test's mistake ends here, not in a wild read).
// Strides are in elements.
//
//   range ITEMS COLS RS CS M [COPY]           -> "first <idx> <value>" | "first none"
//                                             (COPY: ITEMS bytes, written:
//                                             what was checked, row-major)
//   piece HEIGHT K ROWS DEPTH RS CS SALT_COL SALT_KEY SEED SRC OUT
//                                             (OUT: HEIGHT x K bytes, written)
//                                             -> "first ..." as range, over
//                                                the values copied
//   freivalds ROWS COLS DEPTH ARS ACS BRS BCS LDC PARTS SEED A BT C
//                                             -> "x <y> <u64>" per column,
//                                                "y <z> <u64>" per depth,
//                                                "bad <rows that fail>"
//   gemm ROWS COLS DEPTH ARS ACS BRS BCS LDC ACCUMULATE A BT C
//                                             (C, i32, written in place)

#include "../kernels/device.cu"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "host_words.hpp"

static std::vector<char> read_file(const char *path) {
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

template <typename T>
static std::vector<T> read_as(const char *path) {
	std::vector<char> bytes = read_file(path);
	if (bytes.size() % sizeof(T) != 0) {
		fprintf(stderr, "%s: not whole elements\n", path);
		exit(2);
	}
	std::vector<T> out(bytes.size() / sizeof(T));
	for (size_t i = 0; i < out.size(); i++) {
		uint64_t v = 0;
		for (size_t b = 0; b < sizeof(T); b++) v |= (uint64_t)(unsigned char)bytes[i * sizeof(T) + b] << (8 * b);
		out[i] = (T)v;
	}
	return out;
}

template <typename T>
static void write_as(const char *path, const std::vector<T> &values) {
	std::vector<char> bytes(values.size() * sizeof(T));
	for (size_t i = 0; i < values.size(); i++)
		for (size_t b = 0; b < sizeof(T); b++) bytes[i * sizeof(T) + b] = (char)((uint64_t)(uint32_t)values[i] >> (8 * b));
	std::ofstream(path, std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
}

static u64 num(const char *s) { return strtoull(s, nullptr, 10); }

// That a `rows x cols` matrix with strides (rs, cs) lies inside `len`
// elements.
static void inside(const char *what, u64 rows, u64 cols, u64 rs, u64 cs, size_t len) {
	if (rows == 0 || cols == 0) return;
	const u64 last = (rows - 1) * rs + (cols - 1) * cs;
	if (last >= len) {
		fprintf(stderr, "%s: element %" PRIu64 " is past the file's %zu\n", what, last, len);
		exit(2);
	}
}

// A range flag as the host reads it: the index and the value, or none.
static void print_first(u64 first) {
	if (first == UINT64_MAX)
		printf("first none\n");
	else
		printf("first %" PRIu64 " %d\n", first >> 8, (int)(signed char)(unsigned char)(first & 0xff));
}

static void usage() {
	fprintf(stderr, "usage: see the comment at the top of host_device.cpp\n");
	exit(2);
}

int main(int argc, char **argv) {
	if (argc < 2) usage();
	const std::string cmd = argv[1];
	if (cmd == "range" && (argc == 7 || argc == 8)) {
		const u64 items = num(argv[2]), cols = num(argv[3]), rs = num(argv[4]), cs = num(argv[5]);
		std::vector<i8> m = read_as<i8>(argv[6]);
		inside("M", items / cols, cols, rs, cs, m.size());
		std::vector<i8> copy(argc == 8 ? items : 0, (i8)0x5a);  // garbage: every byte must be written
		u64 first = UINT64_MAX;
		// Last index first: a GPU runs threads in any order, and the flag
		// must not depend on it.
		for (u64 idx = items; idx-- > 0;)
			mlpow2_range_one(idx, m.data(), cols, rs, cs, &first, argc == 8 ? copy.data() : nullptr);
		if (argc == 8) write_as(argv[7], copy);
		print_first(first);
	} else if (cmd == "piece" && argc == 13) {
		const u64 height = num(argv[2]), k = num(argv[3]), rows = num(argv[4]), depth = num(argv[5]);
		const u64 rs = num(argv[6]), cs = num(argv[7]), salt_col = num(argv[8]);
		const Words8 key = words(argv[9]), seed = words(argv[10]);
		std::vector<i8> src = read_as<i8>(argv[11]);
		inside("SRC", rows, depth, rs, cs, src.size());
		std::vector<i8> piece(height * k, (i8)0x5a);  // garbage: every byte must be written
		u64 first = UINT64_MAX;
		for (u64 idx = height * k; idx-- > 0;)  // last first, as for range
			mlpow2_piece_one(idx, piece.data(), (u32)k, src.data(), rs, cs, (u32)rows, (u32)depth, (u32)salt_col,
				key, seed, &first);
		write_as(argv[12], piece);
		print_first(first);
	} else if (cmd == "freivalds" && argc == 15) {
		const u64 rows = num(argv[2]), cols = num(argv[3]), depth = num(argv[4]);
		const u64 ars = num(argv[5]), acs = num(argv[6]), brs = num(argv[7]), bcs = num(argv[8]);
		const u64 ldc = num(argv[9]), parts = num(argv[10]), seed = num(argv[11]);
		std::vector<i8> a = read_as<i8>(argv[12]), bt = read_as<i8>(argv[13]);
		std::vector<i32> c = read_as<i32>(argv[14]);
		inside("A", rows, depth, ars, acs, a.size());
		inside("BT", cols, depth, brs, bcs, bt.size());
		inside("C", rows, cols, ldc, 1, c.size());
		std::vector<u64> x(cols), yvec(depth), partial(rows * parts);
		for (u64 y = 0; y < cols; y++) mlpow2_fv_x_one(y, seed, x.data());
		for (u64 z = 0; z < depth; z++) mlpow2_fv_bt_one(z, bt.data(), brs, bcs, (u32)cols, x.data(), yvec.data());
		for (u64 idx = 0; idx < rows * parts; idx++)
			mlpow2_fv_part_one(idx, (u32)parts, c.data(), ldc, (u32)cols, a.data(), ars, acs, (u32)depth, x.data(),
				yvec.data(), partial.data());
		u32 bad = 0;
		for (u64 i = 0; i < rows; i++) mlpow2_fv_row_one(i, (u32)parts, partial.data(), &bad);
		for (u64 y = 0; y < cols; y++) printf("x %" PRIu64 " %" PRIu64 "\n", y, x[y]);
		for (u64 z = 0; z < depth; z++) printf("y %" PRIu64 " %" PRIu64 "\n", z, yvec[z]);
		printf("bad %u\n", bad);
	} else if (cmd == "gemm" && argc == 14) {
		const u64 rows = num(argv[2]), cols = num(argv[3]), depth = num(argv[4]);
		const u64 ars = num(argv[5]), acs = num(argv[6]), brs = num(argv[7]), bcs = num(argv[8]);
		const u64 ldc = num(argv[9]);
		const int accumulate = (int)num(argv[10]);
		std::vector<i8> a = read_as<i8>(argv[11]), bt = read_as<i8>(argv[12]);
		std::vector<i32> c = read_as<i32>(argv[13]);
		inside("A", rows, depth, ars, acs, a.size());
		inside("BT", cols, depth, brs, bcs, bt.size());
		inside("C", rows, cols, ldc, 1, c.size());
		for (u64 idx = 0; idx < rows * cols; idx++)
			mlpow_gemm_i8_one(idx, a.data(), ars, acs, bt.data(), brs, bcs, c.data(), ldc, (u32)cols, (u32)depth,
				accumulate);
		write_as(argv[13], c);
	} else {
		usage();
	}
	return 0;
}
