// Self-test of wgmma_emulation.hpp (see its header comment for the sources
// [P1]-[P8], [C1]-[C3] cited below).
//   g++ -O1 -std=c++17 -Wall -Wextra -Werror -o /tmp/wgmma_selftest gpu-worker/tests/wgmma_emulation_selftest.cpp
//
// The checks avoid testing the emulation against itself:
//  * operands are stored by a writer built from the documented layouts, NOT
//    from kmajor_byte_address/apply_swizzle: core matrices / swizzle atoms are
//    copied as blocks, and each 16-byte cell of a swizzled atom is placed by
//    looking it up in the literal tables of [P8] "Swizzling Modes";
//  * D is gathered through an oracle that evaluates CUTLASS's CLayout_64xN
//    ([C2]) as a CuTe shape:stride layout, and checked against literal points
//    of the [P2]/[P3] pattern;
//  * descriptors are checked against literal bit patterns, including the
//    encoded LBO/SBO values printed in [P5]'s examples;
//  * mutations (LBO/SBO/start off by 16 bytes, swizzle mode mismatches,
//    swapped fragment registers) must each make the comparison fail.
#include "wgmma_emulation.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace wgmma_emu;

static int g_checks = 0, g_failures = 0;
// Counts a check; prints the failure with its line.
#define CHECK(cond, ...)                                                                                  \
	do {                                                                                                \
		g_checks++;                                                                                 \
		if (!(cond)) g_failures++, std::printf("  FAIL line %d: ", __LINE__), std::printf(__VA_ARGS__), std::printf("\n"); \
	} while (0)

static std::mt19937 g_rng(20240607);
static int8_t rand_s8() { return int8_t(int(g_rng() % 256) - 128); }

// ---- Layout writer from the documentation -----------------------------------
// [P8] tables: row L of a table lists, for destination cells 0..7 of the L-th
// 128-byte line after a pattern-aligned start, which source cell lands there.
static const uint8_t kSw32[2][8] = {{0, 1, 2, 3, 4, 5, 6, 7}, {1, 0, 3, 2, 5, 4, 7, 6}};
static const uint8_t kSw64[4][8] = {
    {0, 1, 2, 3, 4, 5, 6, 7}, {1, 0, 3, 2, 5, 4, 7, 6}, {2, 3, 0, 1, 6, 7, 4, 5}, {3, 2, 1, 0, 7, 6, 5, 4}};
static const uint8_t kSw128[8][8] = {{0, 1, 2, 3, 4, 5, 6, 7}, {1, 0, 3, 2, 5, 4, 7, 6}, {2, 3, 0, 1, 6, 7, 4, 5},
                                     {3, 2, 1, 0, 7, 6, 5, 4}, {4, 5, 6, 7, 0, 1, 2, 3}, {5, 4, 7, 6, 1, 0, 3, 2},
                                     {6, 7, 4, 5, 2, 3, 0, 1}, {7, 6, 5, 4, 3, 2, 1, 0}};

// Destination cell of source cell `cell` in line `line` (from the aligned start).
static int table_position(Swizzle s, uint32_t line, int cell) {
	const uint8_t *row = s == Swizzle::B32 ? kSw32[line % 2] : s == Swizzle::B64 ? kSw64[line % 4] : kSw128[line % 8];
	for (int p = 0; p < 8; p++)
		if (row[p] == cell) return p;
	return -1;
}

// Table 38, K-major, 8-bit elements: a row of an atom holds 1/2/4/8 cells.
static uint32_t atom_row_bytes(Swizzle s) {
	return s == Swizzle::None ? 16 : s == Swizzle::B32 ? 32 : s == Swizzle::B64 ? 64 : 128;
}
static uint32_t period_bytes(Swizzle s) { return s == Swizzle::B32 ? 256 : s == Swizzle::B64 ? 512 : 1024; }

// A rows x kbytes K-major tile in shared memory. none: core matrix (8 rows x
// 16 B, 128 contiguous bytes) for row group g and K cell c at base+g*SBO+c*LBO.
// Swizzled: atom (8 rows x W bytes, 8W contiguous bytes before swizzling) for
// row group g and K atom a at base + g*SBO + a*katom.
struct TileLayout {
	Swizzle swz;
	uint32_t base, lbo, sbo, katom;
	int rows, kbytes;
};

static TileLayout make_layout(Swizzle s, uint32_t base, int rows, int kbytes, bool groups_adjacent) {
	TileLayout l{s, base, 16, 0, 0, rows, kbytes}; // LBO 16 = encoded 1, "assumed to be 1" ([P5])
	const uint32_t w = atom_row_bytes(s), block = 8 * w; // core matrix or atom
	if (s == Swizzle::None) {
		l.sbo = groups_adjacent ? block : block * uint32_t(kbytes / 16);
		l.lbo = groups_adjacent ? block * uint32_t(rows / 8) : block;
	} else {
		l.sbo = groups_adjacent ? block : block * uint32_t(kbytes / int(w));
		l.katom = groups_adjacent ? block * uint32_t(rows / 8) : block;
	}
	return l;
}

static void store_tile(std::vector<uint8_t> &smem, const TileLayout &l, const std::vector<int8_t> &tile) {
	const uint32_t w = atom_row_bytes(l.swz);
	if (l.swz != Swizzle::None && l.base % period_bytes(l.swz) != 0) { // [P8] tables assume an aligned start
		std::printf("writer: base %u not aligned to the swizzle period\n", l.base);
		std::exit(2);
	}
	for (int g = 0; g < l.rows / 8; g++)
		for (int a = 0; a < l.kbytes / int(w); a++) {
			const uint32_t block = l.base + uint32_t(g) * l.sbo + uint32_t(a) * (l.swz == Swizzle::None ? l.lbo : l.katom);
			for (int i = 0; i < 8; i++)
				for (uint32_t c = 0; c < w / 16; c++) {
					const int8_t *src = &tile[size_t(8 * g + i) * l.kbytes + a * w + 16 * c];
					uint32_t dst = block + uint32_t(i) * w + 16 * c; // before swizzling
					if (l.swz != Swizzle::None) {
						const uint32_t line = (dst - l.base) / 128, cell = (dst % 128) / 16;
						dst = dst - dst % 128 + 16 * uint32_t(table_position(l.swz, line, int(cell)));
					}
					std::memcpy(&smem[dst], src, 16);
				}
		}
}

// Start address of the k32 slice s, as a kernel would advance it: two cells
// (2*LBO) per slice without swizzle, +32 bytes inside an atom row otherwise.
static uint32_t slice_start(const TileLayout &l, int s) {
	if (l.swz == Swizzle::None) return l.base + uint32_t(2 * s) * l.lbo;
	const uint32_t w = atom_row_bytes(l.swz), kb = 32 * uint32_t(s);
	return l.base + (kb / w) * l.katom + kb % w;
}

// ---- D oracle: CUTLASS CLayout_64xN ([C2]) as a CuTe layout -----------------
static int colex_offset(int idx, const int *shape, const int *stride, int rank) {
	int off = 0;
	for (int r = 0; r < rank; r++) {
		off += (idx % shape[r]) * stride[r];
		idx /= shape[r];
	}
	return off;
}
static RowCol oracle_coord(int t, int v, int n) {
	const int ts[3] = {4, 8, 4}, td[3] = {128, 1, 16}, vs[3] = {2, 2, n / 8}, vd[3] = {64, 8, 512};
	const int off = colex_offset(t, ts, td, 3) + colex_offset(v, vs, vd, 3); // = m + 64*n
	return {off % 64, off / 64};
}

// ---- One end-to-end case ----------------------------------------------------
enum class Mut { None, LboA, LboB, SboA, SboB, StartA, StartB, StartLineA, DescSwizzle, SwapSameThread, SwapAcrossThreads };

struct Case {
	Swizzle swz = Swizzle::None;      // how the writer stores A and B
	Swizzle desc_swz = Swizzle::None; // what the descriptors say (Mut::DescSwizzle)
	int n = 64;
	bool a_groups_adjacent = false;   // layout orientation of A (B gets the other)
	bool accumulate_c = false;        // D = C + A*B^T with scale-d = 1 throughout
	Int8Type a_type = Int8Type::S8, b_type = Int8Type::S8;
	Mut mut = Mut::None;
};

struct Outcome {
	bool rejected = false;
	std::string why;
	long mismatches = 0;
	int ksteps = 0, kbytes = 0;
};

static Outcome run_case(const Case &c) {
	Outcome o;
	const int n = c.n, kt = c.swz == Swizzle::B128 ? 128 : 64;
	o.kbytes = kt;
	o.ksteps = kt / 32;
	std::vector<uint8_t> smem(1u << 18); // the whole 18-bit window a descriptor can reach
	for (auto &b : smem) b = uint8_t(g_rng());
	std::vector<int8_t> a(size_t(64) * kt), b(size_t(n) * kt);
	for (auto &v : a) v = rand_s8();
	for (auto &v : b) v = rand_s8();
	const TileLayout la = make_layout(c.swz, 2048, 64, kt, c.a_groups_adjacent);
	const TileLayout lb = make_layout(c.swz, 2048 + 16384, n, kt, !c.a_groups_adjacent);
	store_tile(smem, la, a);
	store_tile(smem, lb, b);

	std::vector<int32_t> ref(size_t(64) * n), d = make_accumulators(n);
	for (auto &v : d) v = int32_t(g_rng());
	// D's registers as the oracle places them, so C is known per (row, col).
	for (int t = 0; t < 128; t++)
		for (int i = 0; i < n / 2; i++) {
			const RowCol rc = oracle_coord(t, i, n);
			if (c.accumulate_c) d[t * (n / 2) + i] = int32_t(g_rng() % 2000001) - 1000000;
			ref[size_t(rc.row) * n + rc.col] = c.accumulate_c ? d[t * (n / 2) + i] : 0;
		}
	auto val = [](int8_t x, Int8Type ty) { return ty == Int8Type::S8 ? int32_t(x) : int32_t(uint8_t(x)); };
	for (int m = 0; m < 64; m++)
		for (int j = 0; j < n; j++)
			for (int k = 0; k < kt; k++)
				ref[size_t(m) * n + j] += val(a[size_t(m) * kt + k], c.a_type) * val(b[size_t(j) * kt + k], c.b_type);

	auto coord = [&](int t, int i) -> RowCol { // the fragment map, maybe mutated
		if (c.mut == Mut::SwapSameThread && t == 5 && i < 2) return d_fragment_coord(t, 1 - i);
		if (c.mut == Mut::SwapAcrossThreads && i == 2 && (t == 0 || t == 64)) return d_fragment_coord(64 - t, i);
		return d_fragment_coord(t, i);
	};
	try {
		for (int s = 0; s < o.ksteps; s++) {
			MatrixDescriptor da{slice_start(la, s), la.lbo, la.sbo, 0, c.swz};
			MatrixDescriptor db{slice_start(lb, s), lb.lbo, lb.sbo, 0, c.swz};
			da.swizzle = db.swizzle = c.mut == Mut::DescSwizzle ? c.desc_swz : c.swz;
			da.leading_byte_offset += c.mut == Mut::LboA ? 16 : 0;
			db.leading_byte_offset += c.mut == Mut::LboB ? 16 : 0;
			da.stride_byte_offset += c.mut == Mut::SboA ? 16 : 0;
			db.stride_byte_offset += c.mut == Mut::SboB ? 16 : 0;
			da.start_address += c.mut == Mut::StartA ? 16 : c.mut == Mut::StartLineA ? 128 : 0;
			db.start_address += c.mut == Mut::StartB ? 16 : 0;
			const bool scale_d = c.accumulate_c || s > 0;
			const uint64_t ea = encode_descriptor(da), eb = encode_descriptor(db);
			if (c.mut == Mut::SwapSameThread || c.mut == Mut::SwapAcrossThreads) {
				const auto p = detail::product_tile(smem.data(), smem.size(), ea, eb, n, c.a_type, c.b_type);
				detail::accumulate_fragments(p, n, d.data(), scale_d, false, coord);
			} else {
				wgmma_m64nNk32_s32_int8(smem.data(), smem.size(), ea, eb, n, d.data(), scale_d, c.a_type, c.b_type);
			}
		}
	} catch (const std::exception &e) {
		o.rejected = true;
		o.why = e.what();
		return o;
	}
	for (int t = 0; t < 128; t++)
		for (int i = 0; i < n / 2; i++) {
			const RowCol rc = oracle_coord(t, i, n);
			o.mismatches += d[t * (n / 2) + i] != ref[size_t(rc.row) * n + rc.col];
		}
	return o;
}

// ---- Checks -----------------------------------------------------------------
static void test_descriptors() {
	std::printf("[descriptor]\n");
	// [P5] examples: K-major no-swizzle tf32: LBO 256 B -> 16, SBO 128 B -> 8;
	// K-major 32B tf32: LBO "1 (assumed)", SBO 256 B -> 16.
	CHECK(encode_descriptor({0, 256, 128, 0, Swizzle::None}) == 0x0000000800100000ull, "P5 no-swizzle example");
	CHECK(encode_descriptor({0, 16, 256, 0, Swizzle::B32}) == 0xC000001000010000ull, "P5 32B example");
	CHECK(encode_descriptor({0x1230, 0x80, 0x400, 0, Swizzle::B128}) == 0x4000004000080123ull, "hand example");
	CHECK(encode_descriptor({0, 0, 0, 5, Swizzle::B64}) == 0x800A000000000000ull, "base offset / 64B");
	// Each field alone at its maximum lands exactly on its documented bits.
	CHECK(encode_descriptor({0x3FFF0, 0, 0, 0, Swizzle::None}) == 0x0000000000003FFFull, "start bits 0-13");
	CHECK(encode_descriptor({0, 0x3FFF0, 0, 0, Swizzle::None}) == 0x000000003FFF0000ull, "LBO bits 16-29");
	CHECK(encode_descriptor({0, 0, 0x3FFF0, 0, Swizzle::None}) == 0x00003FFF00000000ull, "SBO bits 32-45");
	CHECK(encode_descriptor({0, 0, 0, 7, Swizzle::None}) == 0x000E000000000000ull, "base bits 49-51");
	CHECK(encode_descriptor({0, 0, 0, 0, Swizzle::B32}) == 0xC000000000000000ull, "swizzle bits 62-63");
	CHECK(descriptor_reserved_bits(0xFFFFFFFFFFFFFFFFull) == 0x3FF1C000C000C000ull, "reserved mask");
	for (int i = 0; i < 10000; i++) {
		const MatrixDescriptor x{uint32_t(g_rng() & 0x3FFF) << 4, uint32_t(g_rng() & 0x3FFF) << 4,
		                         uint32_t(g_rng() & 0x3FFF) << 4, uint8_t(g_rng() & 7), Swizzle(g_rng() & 3)};
		const uint64_t raw = (uint64_t(g_rng()) << 32 | g_rng()) & kDescriptorFieldMask;
		if (!(decode_descriptor(encode_descriptor(x)) == x) || encode_descriptor(decode_descriptor(raw)) != raw) {
			CHECK(false, "round trip %d", i);
			break;
		}
	}
	int threw = 0;
	try { encode_descriptor({0x1238, 0, 0, 0, Swizzle::None}); } catch (const std::invalid_argument &) { threw++; }
	try { encode_descriptor({0x40000, 0, 0, 0, Swizzle::None}); } catch (const std::invalid_argument &) { threw++; }
	CHECK(threw == 2, "unaligned / >18-bit start address must be refused");
}

static void test_fragments() {
	std::printf("[fragment map]\n");
	// Literal points of the pattern ([P3] within a warp, [P4] warp -> 16 rows).
	const struct { int t, i, row, col; } pts[] = {{0, 0, 0, 0},   {0, 1, 0, 1},   {0, 2, 8, 0},   {0, 3, 8, 1},
	                                              {0, 4, 0, 8},   {1, 0, 0, 2},   {3, 1, 0, 7},   {4, 0, 1, 0},
	                                              {31, 3, 15, 7}, {32, 0, 16, 0}, {97, 6, 56, 10}, {127, 127, 63, 255}};
	for (const auto &p : pts) {
		const RowCol rc = d_fragment_coord(p.t, p.i), oc = oracle_coord(p.t, p.i, 256);
		CHECK(rc.row == p.row && rc.col == p.col && oc.row == p.row && oc.col == p.col, "point t%d d%d", p.t, p.i);
	}
	for (int n = 1; n <= 256; n++) {
		const bool doc = (n % 8 == 0 && n <= 32) || (n % 16 == 0 && n >= 48);
		CHECK(valid_n_int8(n) == doc, "valid N %d", n);
		if (!doc) continue;
		std::vector<int> seen(size_t(64) * n, 0);
		std::vector<int32_t> regs(size_t(128) * (n / 2)), mat(size_t(64) * n, -1);
		bool ok = true;
		for (int t = 0; t < 128; t++)
			for (int i = 0; i < n / 2; i++) {
				const RowCol rc = d_fragment_coord(t, i), oc = oracle_coord(t, i, n);
				const ThreadReg tr = d_fragment_owner(rc.row, rc.col);
				ok &= rc.row == oc.row && rc.col == oc.col && rc.col < n && tr.thread == t && tr.reg == i;
				if (rc.col < n) seen[size_t(rc.row) * n + rc.col]++;
				regs[t * (n / 2) + i] = t * 1000 + i;
			}
		for (int v : seen) ok &= v == 1;
		fragments_to_matrix(regs.data(), n, mat.data());
		for (int t = 0; t < 128; t++)
			for (int i = 0; i < n / 2; i++) {
				const RowCol oc = oracle_coord(t, i, n);
				ok &= mat[size_t(oc.row) * n + oc.col] == t * 1000 + i;
			}
		CHECK(ok, "N=%d: map == CLayout oracle, bijective, inverse, fragments_to_matrix", n);
	}
}

static void test_end_to_end() {
	std::printf("[end to end: D gathered through the oracle == A*B^T (+C)]\n");
	for (Swizzle s : {Swizzle::None, Swizzle::B32, Swizzle::B64, Swizzle::B128})
		for (int n : {8, 24, 64, 128, 208, 256}) {
			long bad = 0;
			int runs = 0;
			Outcome last;
			for (int orient = 0; orient < 2; orient++)
				for (int acc = 0; acc < 2; acc++) {
					Case c;
					c.swz = s;
					c.n = n;
					c.a_groups_adjacent = orient;
					c.accumulate_c = acc;
					last = run_case(c);
					CHECK(!last.rejected && last.mismatches == 0, "%s N=%d orient=%d acc=%d: %s %ld", swizzle_name(s), n,
					      orient, acc, last.why.c_str(), last.mismatches);
					bad += last.rejected ? 1 : last.mismatches;
					runs++;
				}
			std::printf("  swizzle %-4s N=%-3d K=%-3d (%d k32 steps) x %d layouts/scale-d: %s\n", swizzle_name(s), n,
			            last.kbytes, last.ksteps, runs, bad ? "MISMATCH" : "ok");
		}
	Case u;
	u.swz = Swizzle::B128;
	u.n = 64;
	u.a_type = Int8Type::U8;
	const Outcome o = run_case(u);
	CHECK(!o.rejected && o.mismatches == 0, "u8 x s8");
	std::printf("  u8.s8 variant, 128B, N=64: %s\n", o.mismatches || o.rejected ? "MISMATCH" : "ok");
}

static void test_semantics() {
	std::printf("[scale-d / satfinite / refusals]\n");
	std::vector<uint8_t> smem(1u << 18, 0);
	const TileLayout la = make_layout(Swizzle::None, 0, 64, 32, false), lb = make_layout(Swizzle::None, 4096, 8, 32, false);
	store_tile(smem, la, std::vector<int8_t>(64 * 32, 1));
	store_tile(smem, lb, std::vector<int8_t>(8 * 32, -1));
	const uint64_t ea = encode_descriptor({0, la.lbo, la.sbo, 0, Swizzle::None});
	const uint64_t eb = encode_descriptor({4096, lb.lbo, lb.sbo, 0, Swizzle::None});
	std::vector<int32_t> d(128 * 4, INT32_MIN + 5), e = d;
	wgmma_m64nNk32_s32_s8_s8(smem.data(), smem.size(), ea, eb, 8, d.data(), true, false);
	wgmma_m64nNk32_s32_s8_s8(smem.data(), smem.size(), ea, eb, 8, e.data(), true, true);
	CHECK(d[0] == INT32_MAX - 26 && e[0] == INT32_MIN, "wrap %d / satfinite %d", d[0], e[0]);
	wgmma_m64nNk32_s32_s8_s8(smem.data(), smem.size(), ea, eb, 8, d.data(), false);
	CHECK(d[0] == -32 && d[511] == -32, "scale-d = 0 ignores D");
	int refused = 0;
	auto expect_refusal = [&](uint64_t a, uint64_t b, int n) {
		try { wgmma_m64nNk32_s32_s8_s8(smem.data(), smem.size(), a, b, n, d.data(), true); }
		catch (const std::exception &) { refused++; }
	};
	expect_refusal(ea | (1ull << 46), eb, 8);                                     // reserved bit (tcgen05's 0b001)
	expect_refusal(encode_descriptor({0, 16, 1024, 3, Swizzle::B128}), eb, 8);     // base offset != 0, swizzled
	expect_refusal(encode_descriptor({16, 16, 256, 0, Swizzle::B32}), eb, 8);      // slice crosses a 32B row
	expect_refusal(ea, eb, 40);                                                   // N=40 not valid for .s8
	expect_refusal(ea, encode_descriptor({0x3FF00, 0x1000, 256, 0, Swizzle::None}), 8); // reads past 256 KiB
	CHECK(refused == 5, "refusals %d/5", refused);
	d.assign(d.size(), 0);
	wgmma_m64nNk32_s32_s8_s8(smem.data(), smem.size(), ea | (5ull << 49), eb, 8, d.data(), false);
	CHECK(d[0] == -32, "base offset ignored without swizzle ([P6])");
	std::printf("  wrap/satfinite/scale-d ok, %d/5 invalid uses refused\n", refused);
}

static void test_mutations() {
	std::printf("[mutations: each must make the check fail]\n");
	int total = 0, detected = 0;
	auto expect = [&](const char *what, Case c, bool must_detect) {
		const Outcome o = run_case(c);
		const bool det = o.rejected || o.mismatches > 0;
		char buf[160];
		if (o.rejected) std::snprintf(buf, sizeof buf, "refused (%s)", o.why.c_str());
		else std::snprintf(buf, sizeof buf, "%ld/%d elements differ", o.mismatches, 64 * c.n);
		std::printf("  %-44s %-4s N=%-3d -> %s%s\n", what, swizzle_name(c.swz), c.n, buf,
		            must_detect ? (det ? "  [detected]" : "  [NOT DETECTED]") : (det ? "  [UNEXPECTED]" : "  [no effect, as documented]"));
		CHECK(det == must_detect, "%s", what);
		if (must_detect) total++, detected += det;
	};
	for (Swizzle s : {Swizzle::None, Swizzle::B32, Swizzle::B64, Swizzle::B128}) {
		Case c;
		c.swz = s;
		c.n = 64;
		for (auto m : {std::make_pair(Mut::SboA, "SBO of A +16 bytes"), std::make_pair(Mut::SboB, "SBO of B +16 bytes"),
		               std::make_pair(Mut::StartA, "start address of A +16 bytes"),
		               std::make_pair(Mut::StartB, "start address of B +16 bytes"),
		               std::make_pair(Mut::StartLineA, "start address of A +128 bytes")}) {
			c.mut = m.first;
			expect(m.second, c, true);
		}
		c.mut = Mut::LboA; // used only without swizzle ([P5])
		expect(s == Swizzle::None ? "LBO of A +16 bytes" : "LBO of A +16 bytes (LBO unused when swizzled)", c,
		       s == Swizzle::None);
		c.mut = Mut::LboB;
		if (s == Swizzle::None) expect("LBO of B +16 bytes", c, true);
		c.mut = Mut::DescSwizzle;
		for (Swizzle y : {Swizzle::None, Swizzle::B32, Swizzle::B64, Swizzle::B128}) {
			if (y == s) continue;
			c.desc_swz = y;
			const std::string what = std::string("descriptor says swizzle ") + swizzle_name(y) + ", stored";
			expect(what.c_str(), c, true);
		}
	}
	for (int n : {8, 256}) {
		Case c;
		c.swz = Swizzle::B128;
		c.n = n;
		c.mut = Mut::SwapSameThread;
		expect("fragment map: thread 5 d0<->d1 swapped", c, true);
		c.mut = Mut::SwapAcrossThreads;
		expect("fragment map: thread 0 d2<->thread 64 d2", c, true);
	}
	std::printf("  %d/%d mutations detected\n", detected, total);
}

int main() {
	test_descriptors();
	test_fragments();
	test_end_to_end();
	test_semantics();
	test_mutations();
	std::printf("%s: %d checks, %d failures\n", g_failures ? "FAILED" : "ALL PASSED", g_checks, g_failures);
	return g_failures ? 1 : 0;
}
