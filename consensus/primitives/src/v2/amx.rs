//! Intel AMX-INT8 (Sapphire Rapids and later Xeons): eight tile registers
//! of 16 rows x 64 bytes and `tdpbssd`, which adds a 16 x 64 tile of `i8`
//! times a 64 x 16 one (as 16 rows of 16 quads) into a 16 x 16 tile of
//! `i32`: 16 384 multiply-accumulates an instruction, 256 times a
//! `vpdpbusd`'s. Both operands are signed, so the puzzle's values need no
//! bias.
//!
//! Rust has no stable AMX intrinsics, so the kernels are inline assembly,
//! each a whole 32 x 32 block of the product over all of `k` in one `asm!`
//! block: the four accumulators (`tmm0..3`, a 2 x 2 of tiles), two tiles of
//! rows of `A` (`tmm4`, `tmm5`) and two of `Bt`'s panels (`tmm6`, `tmm7`)
//! live only inside it, as the compiler never sees tile registers.
//!
//! A process must ask Linux for the tile state before its first tile
//! instruction (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), and
//! each thread must load a tile configuration ([`Tiles`]). The request is
//! made once, the first time a kernel is picked ([`available`]), and holds
//! for the whole process: its signal frames grow by the 8 KiB of tile
//! data, so an alternate signal stack set up later must be that much
//! larger (Linux refuses a smaller one), and one too small already makes
//! the request fail, which leaves AMX unused, not the process broken.

use core::arch::{asm, x86_64::*};

/// Bytes of one tile: 16 rows of 64.
pub(super) const TILE_BYTES: usize = 1024;

/// Whether this CPU and kernel run the AMX kernels: AMX-TILE and AMX-INT8
/// in `cpuid`, the OS saving their state (XCR0), AVX-512 F, BW and VNNI
/// (the folds are AVX-512, and the VNNI kernels cover what AMX does not),
/// and Linux granting this process the tile data. Decided once.
pub(super) fn available() -> bool {
	static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
	*OK.get_or_init(detect)
}

fn detect() -> bool {
	let vnni = std::is_x86_feature_detected!("avx2")
		&& std::is_x86_feature_detected!("avx512f")
		&& std::is_x86_feature_detected!("avx512bw")
		&& std::is_x86_feature_detected!("avx512vnni");
	// (Leaves 1 and 7 exist on every CPU with AVX-512.)
	let (leaf1, leaf7) = (__cpuid(1), __cpuid_count(7, 0));
	let (amx_tile, amx_int8, osxsave) = (leaf7.edx >> 24 & 1 == 1, leaf7.edx >> 25 & 1 == 1, leaf1.ecx >> 27 & 1 == 1);
	if !(vnni && amx_tile && amx_int8 && osxsave) {
		return false;
	}
	// XCR0 bits 17 and 18: the OS saves the tile configuration and data.
	let xcr0_low: u32;
	// SAFETY: OSXSAVE is set, so `xgetbv` with ecx = 0 is allowed.
	unsafe {
		asm!("xgetbv", in("ecx") 0u32, out("eax") xcr0_low, out("edx") _, options(nomem, nostack, preserves_flags))
	};
	// Leaf 0x1D: palette 1 holds 8 tiles of up to 16 rows of 64 bytes.
	let (palettes, palette1) = (__cpuid_count(0x1d, 0), __cpuid_count(0x1d, 1));
	let tiles_fit =
		palettes.eax >= 1 && palette1.ebx & 0xffff >= 64 && palette1.ebx >> 16 >= 8 && palette1.ecx & 0xffff >= 16;
	xcr0_low & (3 << 17) == 3 << 17 && tiles_fit && request_tile_data()
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: without it the
/// first tile instruction of the process raises SIGILL. Once granted, for
/// every thread of the process.
#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
	const SYS_ARCH_PRCTL: i64 = 158;
	const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
	const XFEATURE_XTILEDATA: i64 = 18;
	let ret: i64;
	// SAFETY: a plain system call; it reads and writes no memory of ours.
	unsafe {
		asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret, in("rdi") ARCH_REQ_XCOMP_PERM,
			in("rsi") XFEATURE_XTILEDATA, lateout("rcx") _, lateout("r11") _, options(nostack))
	};
	ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
	false
}

/// This thread's tiles configured for the kernels below (all eight 16 rows
/// of 64 bytes) until dropped, when they are released (so the kernel does
/// not save 8 KiB of tile data at every context switch). Not `Send`: the
/// configuration is the thread's.
pub(super) struct Tiles(core::marker::PhantomData<*const ()>);

impl Tiles {
	/// # Safety
	/// [`available`] returned true.
	pub(super) unsafe fn configure() -> Tiles {
		// The 64-byte configuration: palette 1, then each tile's bytes a
		// row (16-bit, from byte 16) and rows (8-bit, from byte 48).
		let mut cfg = [0u8; 64];
		cfg[0] = 1;
		for tile in 0..8 {
			cfg[16 + 2 * tile] = 64;
			cfg[48 + tile] = 16;
		}
		// SAFETY: AMX is available and this process may use it (the caller's
		// promise); the configuration is valid for palette 1.
		unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.as_ptr(), options(nostack, readonly)) };
		Tiles(core::marker::PhantomData)
	}
}

impl Drop for Tiles {
	fn drop(&mut self) {
		// SAFETY: tiles were configured by this thread ([`Tiles::configure`]).
		unsafe { asm!("tilerelease", options(nostack, nomem)) };
	}
}

/// One step's loads and products: `A`'s two row tiles at `{a}` and
/// `{a} + 16 k` (16 rows of 64 bytes, `k` apart), the two panels' tiles at
/// `{b}` and `{b} + 16 k` (see [`Block`]), four `tdpbssd`s.
macro_rules! step {
	() => {
		concat!(
			"tileloadd tmm4, [{a} + {k}*1]\n",
			"lea {t}, [{a} + {k16}]\n",
			"tileloadd tmm5, [{t} + {k}*1]\n",
			"tileloadd tmm6, [{b} + {s64}*1]\n",
			"lea {t}, [{b} + {k16}]\n",
			"tileloadd tmm7, [{t} + {s64}*1]\n",
			"tdpbssd tmm0, tmm4, tmm6\n",
			"tdpbssd tmm1, tmm4, tmm7\n",
			"tdpbssd tmm2, tmm5, tmm6\n",
			"tdpbssd tmm3, tmm5, tmm7\n",
		)
	};
}

/// [`step!`] with the accumulators' running sums stored into `{buf}` (four
/// tiles of 16 rows x 64 bytes) just before each accumulator's product:
/// stores and products of different tiles overlap, where four stores after
/// four products waited for each product in turn (0.62 of the plain
/// product against 0.91, in a scratch program on a Xeon at 1024 x 1024 x
/// 4096; in the miner, with aligned operands, the fused kernel runs at
/// 0.50-0.65 of the plain product: BENCHMARKS.md).
macro_rules! store_and_step {
	() => {
		concat!(
			"tileloadd tmm4, [{a} + {k}*1]\n",
			"tileloadd tmm6, [{b} + {s64}*1]\n",
			"tilestored [{buf} + {s64}*1], tmm0\n",
			"tdpbssd tmm0, tmm4, tmm6\n",
			"lea {t}, [{b} + {k16}]\n",
			"tileloadd tmm7, [{t} + {s64}*1]\n",
			"lea {t}, [{buf} + 1024]\n",
			"tilestored [{t} + {s64}*1], tmm1\n",
			"tdpbssd tmm1, tmm4, tmm7\n",
			"lea {t}, [{a} + {k16}]\n",
			"tileloadd tmm5, [{t} + {k}*1]\n",
			"lea {t}, [{buf} + 2048]\n",
			"tilestored [{t} + {s64}*1], tmm2\n",
			"tdpbssd tmm2, tmm5, tmm6\n",
			"lea {t}, [{buf} + 3072]\n",
			"tilestored [{t} + {s64}*1], tmm3\n",
			"tdpbssd tmm3, tmm5, tmm7\n",
		)
	};
}

/// The four accumulators stored into `{buf}`.
macro_rules! store_sums {
	() => {
		concat!(
			"tilestored [{buf} + {s64}*1], tmm0\n",
			"lea {t}, [{buf} + 1024]\n",
			"tilestored [{t} + {s64}*1], tmm1\n",
			"lea {t}, [{buf} + 2048]\n",
			"tilestored [{t} + {s64}*1], tmm2\n",
			"lea {t}, [{buf} + 3072]\n",
			"tilestored [{t} + {s64}*1], tmm3\n",
		)
	};
}

/// The four accumulators stored into the output: rows of `{os}` bytes from
/// `{out}`, as a 32 x 32 block.
macro_rules! store_out {
	() => {
		concat!(
			"tilestored [{out} + {os}*1], tmm0\n",
			"lea {t}, [{out} + 64]\n",
			"tilestored [{t} + {os}*1], tmm1\n",
			"mov {t}, {os}\n",
			"shl {t}, 4\n",
			"add {t}, {out}\n",
			"tilestored [{t} + {os}*1], tmm2\n",
			"add {t}, 64\n",
			"tilestored [{t} + {os}*1], tmm3\n",
		)
	};
}

/// Two rows (`$r`, `$r + 1`) of the tile at `{buf} + $off` rotated left by
/// their row and XORed into `$w`.
macro_rules! fold_pair {
	($w:literal, $off:literal, $r:literal, $r1:literal, $x:literal, $y:literal) => {
		concat!(
			"vprold ",
			$x,
			", zmmword ptr [{buf} + ",
			$off,
			" + 64 * ",
			$r,
			"], ",
			$r,
			"\n",
			"vprold ",
			$y,
			", zmmword ptr [{buf} + ",
			$off,
			" + 64 * ",
			$r1,
			"], ",
			$r1,
			"\n",
			"vpternlogd ",
			$w,
			", ",
			$x,
			", ",
			$y,
			", 0x96\n",
		)
	};
}

/// A tile's 16 running-sum rows folded into its 16-word state `$w`:
/// `W ^= rotl(row x, x)` (the transcript's fold and reduction at once: the
/// rotation distributes over XOR, so every chunk's rows can go straight in).
macro_rules! fold_tile {
	($w:literal, $off:literal) => {
		concat!(
			fold_pair!($w, $off, "0", "1", "zmm28", "zmm29"),
			fold_pair!($w, $off, "2", "3", "zmm30", "zmm31"),
			fold_pair!($w, $off, "4", "5", "zmm28", "zmm29"),
			fold_pair!($w, $off, "6", "7", "zmm30", "zmm31"),
			fold_pair!($w, $off, "8", "9", "zmm28", "zmm29"),
			fold_pair!($w, $off, "10", "11", "zmm30", "zmm31"),
			fold_pair!($w, $off, "12", "13", "zmm28", "zmm29"),
			fold_pair!($w, $off, "14", "15", "zmm30", "zmm31"),
		)
	};
}

/// The four accumulators' sums at `{buf}` folded into `{w0}`..`{w3}`.
macro_rules! fold_all {
	() => {
		concat!(
			fold_tile!("{w0}", "0"),
			fold_tile!("{w1}", "1024"),
			fold_tile!("{w2}", "2048"),
			fold_tile!("{w3}", "3072"),
		)
	};
}

/// Where a block of the product reads its operands: 32 rows of `A` where
/// they lie (`k` bytes apart, from `a`), and two panels of 16 columns of
/// `Bt` (from `b`, the second `16 k` bytes on), each `k / 4` rows of 16
/// quads (64 bytes) as `tdpbssd` takes its second operand, so a step's
/// tile of a panel (64 of `k`) is 1 KiB in a row. (Packing `A` tile by
/// tile too, or the two panels' tiles step by step side by side, measured
/// no faster on a Xeon, within its noise of 10-25% between runs, both
/// tried before the buffers were aligned to 64 bytes.)
#[derive(Clone, Copy)]
pub(super) struct Block {
	pub a: *const i8,
	pub b: *const u8,
	/// The depth in bytes of a row (a multiple of 64: `k / 64` steps).
	pub k: usize,
	/// Where the 32 x 32 `i32` result goes, and its row stride in bytes.
	pub out: *mut i32,
	pub out_stride: usize,
}

/// The plain product of one 32 x 32 block over all of `k`, stored to `out`.
///
/// # Safety
/// Tiles configured on this thread ([`Tiles`]); `k` a positive multiple of
/// 64; 32 rows of `k` bytes readable from `a`, two panels of `16 k` bytes
/// from `b`, 32 rows of 128 bytes writable at `out`, `out_stride` apart.
pub(super) unsafe fn product(blk: Block) {
	debug_assert!(blk.k > 0 && blk.k.is_multiple_of(64));
	// SAFETY: as the caller promises; the loop reads k/64 steps of 64
	// bytes of each row and 1 KiB of each panel.
	unsafe {
		asm!(
			"tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
			"2:",
			step!(),
			"add {a}, 64",
			"add {b}, 1024",
			"dec {steps}",
			"jnz 2b",
			store_out!(),
			a = inout(reg) blk.a => _, b = inout(reg) blk.b => _,
			k = in(reg) blk.k, k16 = in(reg) 16 * blk.k,
			s64 = in(reg) 64usize, steps = inout(reg) blk.k / 64 => _, t = out(reg) _,
			out = in(reg) blk.out, os = in(reg) blk.out_stride,
			options(nostack),
		);
	}
}

/// The fused product of one 32 x 32 block over all of `k`: the sums stored
/// to `out` as [`product`] does, and the running sums at the end of every
/// chunk of `r = 64 * per` folded into `w` (one 16-word state per tile:
/// rows 0-15 x columns 0-15, 0-15 x 16-31, 16-31 x 0-15, 16-31 x 16-31),
/// each row `x` of a tile rotated left by `x`. `buf` is 4 KiB of scratch.
///
/// # Safety
/// As [`product`]; `per >= 1` divides `k / 64`; 4096 bytes writable at `buf`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn fused(blk: Block, per: usize, buf: *mut u8) -> [__m512i; 4] {
	debug_assert!(blk.k > 0 && blk.k.is_multiple_of(64) && per >= 1 && (blk.k / 64).is_multiple_of(per));
	let mut w = [_mm512_setzero_si512(); 4];
	// SAFETY: as the caller promises. The first step only multiplies; each
	// later one stores the sums where a chunk ended before multiplying
	// (`cc` counts the steps left in the chunk), then folds them; the last
	// chunk's sums are stored and folded after the loop.
	unsafe {
		asm!(
			"tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
			"mov {cc}, {per}",
			step!(),
			"add {a}, 64",
			"add {b}, 1024",
			"dec {steps}",
			"jz 5f",
			"3:",
			"dec {cc}",
			"jnz 4f",
			"mov {cc}, {per}",
			store_and_step!(),
			fold_all!(),
			"jmp 6f",
			"4:",
			step!(),
			"6:",
			"add {a}, 64",
			"add {b}, 1024",
			"dec {steps}",
			"jnz 3b",
			"5:",
			store_sums!(),
			fold_all!(),
			store_out!(),
			a = inout(reg) blk.a => _, b = inout(reg) blk.b => _,
			k = in(reg) blk.k, k16 = in(reg) 16 * blk.k,
			s64 = in(reg) 64usize, steps = inout(reg) blk.k / 64 => _, t = out(reg) _,
			cc = out(reg) _, per = in(reg) per, buf = in(reg) buf,
			out = in(reg) blk.out, os = in(reg) blk.out_stride,
			w0 = inout(zmm_reg) w[0], w1 = inout(zmm_reg) w[1], w2 = inout(zmm_reg) w[2], w3 = inout(zmm_reg) w[3],
			out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
			options(nostack),
		);
	}
	w
}
