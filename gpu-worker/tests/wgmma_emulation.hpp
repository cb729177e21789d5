// Host emulation of one Hopper warpgroup instruction
//     wgmma.mma_async.sync.aligned.m64nNk32.s32.s8.s8{.satfinite} d, a-desc, b-desc, scale-d;
// with A (64x32) and B (Nx32, i.e. B stored transposed) both read from shared
// memory through 64-bit matrix descriptors, both K-major (the only major-ness
// PTX allows for 8-bit integer inputs). It exists so that a wgmma kernel can
// be run lane by lane on a CPU and compared with a reference; it was written
// from the PTX ISA text, independently of any kernel, and is checked by
// tests/wgmma_emulation_selftest.cpp.
//
// SOURCES (PTX ISA = NVIDIA "Parallel Thread Execution ISA", 9.x, read from
// the markdown mirror github.com/carsonpo/markdown-ptx-isa; section numbers
// move between versions, the names do not):
//  [P1] "Asynchronous Warpgroup Level Matrix Multiply-Accumulate Instructions"
//       / "Matrix Shape": valid N for .s8 dense: 8,16,24,32, then 48..256 step 16.
//  [P2] "Matrix Fragments for wgmma.mma_async.m64nNk32" (Figure 153): D is N/2
//       .s32 registers per thread. The figure is an image; its content was
//       taken from [P3]+[P4] and cross-checked with [C2] CLayout_64xN.
//  [P3] "Matrix Fragments for mma.m16n8k32", accumulators: groupID = lane>>2,
//       threadID_in_group = lane%4, row = groupID (+8 for c2,c3),
//       col = threadID_in_group*2 + (i&1).
//  [P4] "Matrix fragments for warpgroup-level multiply-accumulate operation
//       with sparse matrix A": warp (%warpid%4) w owns rows 16w..16w+15.
//  [P5] "Shared Memory Matrix Layout", "Leading Dimension Byte Offset",
//       "Stride Dimension Byte Offset", "Canonical Layouts" (K-major):
//         none : ((8,m),(T,2k)):((1T,SBO),(1,LBO))   Swizzle<0,4,3>
//         32B  : ((8,m),(T,2k)):((2T,SBO),(1,T))     Swizzle<1,4,3>
//         64B  : ((8,m),(T,2k)):((4T,SBO),(1,T))     Swizzle<2,4,3>
//         128B : ((8,m),(T,2k)):((8T,SBO),(1,T))     Swizzle<3,4,3>
//       T = elements per 16 bytes. K-major LBO: "No-Swizzling: the offset from
//       the first column to the second columns of the 8x2 tile ... Swizzled
//       layouts: not used, assumed to be 1." K-major SBO: "The offset from the
//       first 8 rows to the next 8 rows."
//  [P6] "Matrix Descriptor Format": bits 13-0 start address, 29-16 LBO,
//       45-32 SBO (each matrix-descriptor-encode(x) = (x & 0x3FFFF) >> 4),
//       51-49 matrix base offset, 63-62 swizzle (0 none, 1 128B, 2 64B, 3 32B).
//  [P7] "Asynchronous Multiply-and-Accumulate Instruction: wgmma.mma_async":
//       D = A*B when scale-d is false, else D = A*B + D; without .satfinite the
//       .s32 accumulation wraps, with it it clamps to [INT32_MIN, INT32_MAX].
//  [P8] "Tensors" / "Swizzling Modes" (TMA): tables of 16-byte cells per
//       128-byte line (32B: rows 0..7 / 1 0 3 2 5 4 7 6, 256-byte period;
//       64B: 4 rows, 512-byte; 128B: 8 rows, 1024-byte) - the selftest's writer
//       uses these tables, this header uses the equivalent XOR.
// CROSS-CHECKS (not copied; github.com/NVIDIA/cutlass):
//  [C1] include/cute/arch/mma_sm90_desc.hpp: GmmaDescriptor bitfield
//       [0,14) [16,30) [32,46) [49,52) [62,64); layout_type 0/1/2/3 =
//       INTERLEAVE/B128/B64/B32 - agrees with [P6].
//  [C2] include/cute/atom/mma_traits_sm90_gmma.hpp: Layout_K_SW{32,64,128}_Atom
//       (8 rows of 32/64/128 bytes, Swizzle<B,4,3>), make_gmma_desc<Major::K>
//       canonical forms (same as [P5]), CLayout_64xN =
//       ((4,8,4),(2,2,N/8)):((128,1,16),(64,8,512)) over m + 64*n.
//  [C3] include/cute/pointer_swizzle.hpp: "Arch chose to design hardware with
//       position-dependent swizzles" - the swizzle acts on the byte address.
//
// AMBIGUITIES AND DECISIONS
//  (1) Swizzle operand. [P5] writes Swizzle<B,4,3> next to layouts counted in
//      elements, but with M=4 it only makes sense on byte addresses (16-byte
//      cells, 128-byte lines), which is what [P8]'s tables and [C3] say.
//      Decision: physical = addr ^ (((addr >> 7) & (2^B - 1)) << 4) on the
//      ABSOLUTE shared-memory byte address (position-dependent, [C3]).
//  (2) base offset. [P6] says it is 0 when the pattern starts on a
//      1024/512/256-byte boundary, else (pattern start >> 7) & 7, but never
//      says how the hardware applies it. Decision: a swizzled descriptor with
//      base offset != 0 is REJECTED (std::invalid_argument); kernels must keep
//      swizzle atoms pattern-aligned, as CUTLASS does ([C2] make_gmma_desc
//      always writes 0). For no-swizzle the field is ignored ([P6]: "valid for
//      all swizzling modes except the no-swizzle mode").
//  (3) K advance inside a swizzle atom. One k32 instruction reads 32 bytes of
//      each row. With 64B/128B swizzle a row holds 64/128 bytes of K, and the
//      next k-slice is addressed by adding 32 to the start address while base
//      offset stays 0 (CUTLASS DescriptorIterator adds to the descriptor's low
//      bits). Under (1) this reads the right bytes. A start address whose
//      32-byte slice would cross a swizzle row ((start % W) + 32 > W) is not a
//      canonical layout and is REJECTED.
//  (4) "2k" in the canonical K extent: for one k32 .s8 instruction the K
//      extent is 32 bytes = 2 cells; in no-swizzle mode cell c (0/1) is at c*LBO,
//      in swizzled modes at c*16 (LBO ignored, [P5] "assumed to be 1").
//  (5) .satfinite: the text does not say whether intermediate sums clamp.
//      Decision: the exact sum D + sum_k(A*B) (int64) is clamped once.
//      (32 products of |v| <= 128*128 cannot overflow on their own.)
//  (6) Reserved descriptor bits (14-15, 30-31, 46-48, 52-61): PTX gives them
//      no meaning. Decision: REJECTED if set, to catch e.g. the sm_100
//      tcgen05 descriptor's fixed 0b001 in bits 46-48 used by mistake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace wgmma_emu {

// Values are the descriptor's bits 63-62 ([P6], [C1]).
enum class Swizzle : uint8_t { None = 0, B128 = 1, B64 = 2, B32 = 3 };

inline const char *swizzle_name(Swizzle s) {
	switch (s) {
	case Swizzle::None: return "none";
	case Swizzle::B32: return "32B";
	case Swizzle::B64: return "64B";
	case Swizzle::B128: return "128B";
	}
	return "?";
}

// Number of address bits XORed: the B of Swizzle<B,4,3> ([P5]).
inline unsigned swizzle_bits(Swizzle s) {
	switch (s) {
	case Swizzle::None: return 0;
	case Swizzle::B32: return 1;
	case Swizzle::B64: return 2;
	case Swizzle::B128: return 3;
	}
	return 0;
}

// Bytes of K held by one row of a K-major swizzle atom (Table 38: 8x2, 8x4,
// 8x8 16-byte cells); 16 for no-swizzle (one core-matrix row, 8x1).
inline uint32_t row_bytes(Swizzle s) { return 16u << swizzle_bits(s); }

// Where the swizzle pattern repeats ([P6] table): 256/512/1024 bytes.
inline uint32_t pattern_bytes(Swizzle s) { return s == Swizzle::None ? 0 : 128u << swizzle_bits(s); }

struct MatrixDescriptor {
	uint32_t start_address = 0;       // byte address in the CTA's shared window
	uint32_t leading_byte_offset = 0; // LBO, bytes
	uint32_t stride_byte_offset = 0;  // SBO, bytes
	uint8_t base_offset = 0;          // 3 bits
	Swizzle swizzle = Swizzle::None;
	bool operator==(const MatrixDescriptor &o) const {
		return start_address == o.start_address && leading_byte_offset == o.leading_byte_offset &&
		       stride_byte_offset == o.stride_byte_offset && base_offset == o.base_offset && swizzle == o.swizzle;
	}
};

// Bits that no field of [P6] covers.
constexpr uint64_t kDescriptorFieldMask =
    (0x3FFFull << 0) | (0x3FFFull << 16) | (0x3FFFull << 32) | (0x7ull << 49) | (0x3ull << 62);
inline uint64_t descriptor_reserved_bits(uint64_t desc) { return desc & ~kDescriptorFieldMask; }

// matrix-descriptor-encode(x) = (x & 0x3FFFF) >> 4 ([P6]). The hardware would
// silently drop the masked bits; a byte count that is not a multiple of 16 or
// does not fit in 18 bits is a kernel bug, so it is refused here.
inline uint64_t descriptor_encode_field(uint32_t bytes, const char *what) {
	if (bytes & 0xF) throw std::invalid_argument(std::string(what) + " is not 16-byte aligned");
	if (bytes > 0x3FFFF) throw std::invalid_argument(std::string(what) + " does not fit in 18 bits");
	return (bytes & 0x3FFFF) >> 4;
}

inline uint64_t encode_descriptor(const MatrixDescriptor &d) {
	if (d.base_offset > 7) throw std::invalid_argument("base offset does not fit in 3 bits");
	return (descriptor_encode_field(d.start_address, "start address") << 0) |
	       (descriptor_encode_field(d.leading_byte_offset, "leading byte offset") << 16) |
	       (descriptor_encode_field(d.stride_byte_offset, "stride byte offset") << 32) |
	       (uint64_t(d.base_offset) << 49) | (uint64_t(d.swizzle) << 62);
}

// Decoding undoes the >> 4; reserved bits are ignored here (see
// descriptor_reserved_bits; the instruction emulation refuses them).
inline MatrixDescriptor decode_descriptor(uint64_t desc) {
	MatrixDescriptor d;
	d.start_address = uint32_t((desc >> 0) & 0x3FFF) << 4;
	d.leading_byte_offset = uint32_t((desc >> 16) & 0x3FFF) << 4;
	d.stride_byte_offset = uint32_t((desc >> 32) & 0x3FFF) << 4;
	d.base_offset = uint8_t((desc >> 49) & 0x7);
	d.swizzle = Swizzle((desc >> 62) & 0x3);
	return d;
}

// Swizzle<B,4,3> on a byte address: the 16-byte cell index (bits 4..4+B-1)
// is XORed with the 128-byte line index (bits 7..7+B-1). Decision (1).
inline uint32_t apply_swizzle(uint32_t addr, Swizzle s) {
	const uint32_t mask = (1u << swizzle_bits(s)) - 1u;
	return addr ^ (((addr >> 7) & mask) << 4);
}

// Shared-memory byte address of element (row, kbyte) of the K-major 8-bit
// operand slice that ONE k32 instruction reads through descriptor d:
// row in [0, 64) for A or [0, N) for B, kbyte in [0, 32). Canonical layouts
// of [P5] with T = 16 (8-bit elements, so element index = byte index):
//   none    : start + (row/8)*SBO + (row%8)*16 + (kbyte/16)*LBO + kbyte%16
//   swizzled: swizzle(start + (row/8)*SBO + (row%8)*W + kbyte), W = 32/64/128
inline uint32_t kmajor_byte_address(const MatrixDescriptor &d, int row, int kbyte) {
	if (row < 0 || kbyte < 0 || kbyte >= 32) throw std::out_of_range("operand coordinate out of range");
	const uint32_t r = uint32_t(row), k = uint32_t(kbyte);
	const uint32_t group = (r / 8) * d.stride_byte_offset;
	if (d.swizzle == Swizzle::None) {
		// Core matrix = 8 rows x 16 bytes, rows 16 bytes apart ("1T" stride);
		// the two 16-byte K cells of the slice are LBO apart (the "8x2 tile").
		return d.start_address + group + (r % 8) * 16 + (k / 16) * d.leading_byte_offset + k % 16;
	}
	if (d.base_offset != 0)
		throw std::invalid_argument("swizzled descriptor with base offset != 0: semantics not documented (decision 2)");
	const uint32_t w = row_bytes(d.swizzle);
	if ((d.start_address % w) + 32 > w)
		throw std::invalid_argument("k32 slice would cross a swizzle row (decision 3)");
	return apply_swizzle(d.start_address + group + (r % 8) * w + k, d.swizzle);
}

// ---- Accumulator fragments ([P2]-[P4], [C2]) --------------------------------
// D is 64 x N; thread t (0..127 in the warpgroup) holds N/2 .s32 registers
// d0..d(N/2-1). warp = t/32 owns rows 16*warp..+15; inside a warp the
// m16n8k32 accumulator pattern repeats for each 8-column block j = reg/4:
//   row = 16*warp + lane/4 + 8*((reg>>1)&1)
//   col = 8*(reg>>2) + 2*(lane%4) + (reg&1)
struct RowCol {
	int row, col;
};

inline RowCol d_fragment_coord(int thread, int reg) {
	if (thread < 0 || thread >= 128 || reg < 0 || reg >= 128) throw std::out_of_range("fragment index");
	const int warp = thread / 32, lane = thread % 32;
	return {16 * warp + lane / 4 + 8 * ((reg >> 1) & 1), 8 * (reg >> 2) + 2 * (lane % 4) + (reg & 1)};
}

struct ThreadReg {
	int thread, reg;
};

inline ThreadReg d_fragment_owner(int row, int col) {
	if (row < 0 || row >= 64 || col < 0 || col >= 256) throw std::out_of_range("D coordinate");
	const int warp = row / 16, r16 = row % 16, c8 = col % 8;
	return {32 * warp + 4 * (r16 % 8) + c8 / 2, 4 * (col / 8) + 2 * (r16 / 8) + (c8 & 1)};
}

// [P1]: .s8/.u8 dense shapes.
inline bool valid_n_int8(int n) { return (n >= 8 && n <= 32 && n % 8 == 0) || (n >= 48 && n <= 256 && n % 16 == 0); }

// Accumulator storage for a lane-by-lane kernel: thread-major, d[t*(N/2)+i].
inline std::vector<int32_t> make_accumulators(int n) { return std::vector<int32_t>(size_t(128) * size_t(n / 2), 0); }

// 64 x N row-major matrix from fragments (and back), through d_fragment_coord.
inline void fragments_to_matrix(const int32_t *d, int n, int32_t *out) {
	for (int t = 0; t < 128; t++)
		for (int i = 0; i < n / 2; i++) {
			const RowCol rc = d_fragment_coord(t, i);
			out[rc.row * n + rc.col] = d[t * (n / 2) + i];
		}
}

// ---- The instruction --------------------------------------------------------
enum class Int8Type { S8, U8 };

namespace detail {

inline int32_t load_int8(const uint8_t *smem, size_t smem_bytes, uint32_t addr, Int8Type type) {
	if (addr >= smem_bytes) throw std::out_of_range("operand read outside the emulated shared memory");
	return type == Int8Type::S8 ? int32_t(int8_t(smem[addr])) : int32_t(smem[addr]);
}

inline void check_descriptor(uint64_t desc, const char *which) {
	if (descriptor_reserved_bits(desc))
		throw std::invalid_argument(std::string(which) + ": reserved descriptor bits set (decision 6)");
}

// P[m*N + n] = sum_{k<32} A[m][k] * B[n][k], exact (|P| <= 32*128*128).
inline std::vector<int32_t> product_tile(const uint8_t *smem, size_t smem_bytes, uint64_t desc_a, uint64_t desc_b, int n,
                                         Int8Type a_type, Int8Type b_type) {
	if (!valid_n_int8(n)) throw std::invalid_argument("N is not a valid .s8/.u8 wgmma shape");
	check_descriptor(desc_a, "a-desc");
	check_descriptor(desc_b, "b-desc");
	const MatrixDescriptor da = decode_descriptor(desc_a), db = decode_descriptor(desc_b);
	std::vector<int32_t> a(64 * 32), b(size_t(n) * 32), p(size_t(64) * size_t(n), 0);
	for (int m = 0; m < 64; m++)
		for (int k = 0; k < 32; k++) a[m * 32 + k] = load_int8(smem, smem_bytes, kmajor_byte_address(da, m, k), a_type);
	for (int j = 0; j < n; j++)
		for (int k = 0; k < 32; k++) b[j * 32 + k] = load_int8(smem, smem_bytes, kmajor_byte_address(db, j, k), b_type);
	for (int m = 0; m < 64; m++)
		for (int j = 0; j < n; j++) {
			int32_t s = 0;
			for (int k = 0; k < 32; k++) s += a[m * 32 + k] * b[j * 32 + k];
			p[size_t(m) * n + j] = s;
		}
	return p;
}

// D = P (+ D if scale_d) into the fragments, through `coord` (a parameter so
// the selftest can show that a wrong map is caught).
template <class CoordFn>
inline void accumulate_fragments(const std::vector<int32_t> &p, int n, int32_t *d, bool scale_d, bool satfinite,
                                 CoordFn coord) {
	for (int t = 0; t < 128; t++)
		for (int i = 0; i < n / 2; i++) {
			const RowCol rc = coord(t, i);
			int32_t &reg = d[t * (n / 2) + i];
			const int32_t prod = p[size_t(rc.row) * n + rc.col];
			const int32_t old = scale_d ? reg : 0;
			if (satfinite) {
				const int64_t s = int64_t(old) + int64_t(prod); // decision (5)
				reg = int32_t(s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s);
			} else {
				reg = int32_t(uint32_t(old) + uint32_t(prod)); // wraps ([P7])
			}
		}
}

} // namespace detail

// One warpgroup's wgmma.mma_async.m64nNk32.s32.{a_type}.{b_type}, both
// operands from shared memory. smem[0..smem_bytes) is the CTA's shared window
// (index = shared address). d: 128*(N/2) registers, d[t*(N/2)+i] = register
// d_i of thread t of the warpgroup (d_fragment_coord). The async/fence/commit
// protocol is not modelled: the result is visible on return.
inline void wgmma_m64nNk32_s32_int8(const uint8_t *smem, size_t smem_bytes, uint64_t desc_a, uint64_t desc_b, int n,
                                    int32_t *d, bool scale_d, Int8Type a_type, Int8Type b_type,
                                    bool satfinite = false) {
	const std::vector<int32_t> p = detail::product_tile(smem, smem_bytes, desc_a, desc_b, n, a_type, b_type);
	detail::accumulate_fragments(p, n, d, scale_d, satfinite, d_fragment_coord);
}

inline void wgmma_m64nNk32_s32_s8_s8(const uint8_t *smem, size_t smem_bytes, uint64_t desc_a, uint64_t desc_b, int n,
                                     int32_t *d, bool scale_d, bool satfinite = false) {
	wgmma_m64nNk32_s32_int8(smem, smem_bytes, desc_a, desc_b, n, d, scale_d, Int8Type::S8, Int8Type::S8, satfinite);
}

} // namespace wgmma_emu
