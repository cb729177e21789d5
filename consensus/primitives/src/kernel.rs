//! Exact int8 x int8 -> int32 matrix products, `C = A * Bt^T`.
//!
//! `A` is `m x k` and `Bt` is `n x k`, both row-major, so every dot product
//! reads two contiguous rows. All kernels use wrapping arithmetic: for any
//! accepted parameter set no sum can overflow (`ChallengeParams::validate`
//! bounds `k`), so wrapping never changes a result, and it keeps every kernel
//! total and free of overflow-check branches that would block vectorisation.
//! Integer addition is associative, so every summation order gives the same
//! bits: the CPU, the GPU and the Wasm runtime agree exactly.

/// The kernels this crate has. Tests run every available one against
/// [`Kernel::Naive`]; [`gemm`] picks the fastest available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
	/// The textbook triple loop: the reference.
	Naive,
	/// Cache-blocked, written for auto-vectorisation; what the Wasm runtime runs.
	Portable,
	/// `vpmaddwd` micro-kernel (x86_64 with AVX2, `std` only).
	Avx2,
	/// `vpdpbusd` on 16-column panels of `Bt` against broadcast quads of
	/// `A`, the fused v2 kernel's loop without its transcript; dot products
	/// for small outputs (x86_64 with AVX-512 VNNI, `std` only).
	Avx512Vnni,
	/// 32 x 32 blocks of AMX-INT8 tiles (`tdpbssd`, 16 384
	/// multiply-accumulates an instruction) where `k` is a multiple of 64
	/// and the product at least 32 x 32; elsewhere [`Kernel::Avx512Vnni`]
	/// (x86_64 Linux with AMX-INT8 and AVX-512 VNNI, `std` only).
	Amx,
}

impl Kernel {
	/// Every kernel, the reference first.
	pub const ALL: [Kernel; 5] = [Kernel::Naive, Kernel::Portable, Kernel::Avx2, Kernel::Avx512Vnni, Kernel::Amx];

	/// Whether this CPU can run the kernel.
	pub fn available(self) -> bool {
		match self {
			Kernel::Naive | Kernel::Portable => true,
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Avx2 => std::is_x86_feature_detected!("avx2"),
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Avx512Vnni => crate::v2::fused::Fused::Avx512Vnni.available(),
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Amx => crate::v2::fused::Fused::Amx.available(),
			#[allow(unreachable_patterns)]
			_ => false,
		}
	}

	/// The fastest kernel this CPU can run.
	pub fn best() -> Kernel {
		[Kernel::Amx, Kernel::Avx512Vnni, Kernel::Avx2].into_iter().find(|k| k.available()).unwrap_or(Kernel::Portable)
	}

	/// Runs this kernel; falls back to [`Kernel::Portable`] when the CPU
	/// lacks the kernel's instructions (never executes an illegal one).
	///
	/// # Panics
	/// If the slice lengths are not `m*k`, `n*k` and `m*n`: a caller bug,
	/// never a property of untrusted input.
	pub fn gemm(self, a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
		check_shape(a, bt, m, n, k, c);
		match self {
			Kernel::Naive => naive(a, bt, m, n, k, c),
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Avx2 if self.available() => {
				// SAFETY: the CPU supports AVX2 (checked just above) and the
				// shapes were checked, so every row access is in bounds.
				unsafe { x86::blocked_avx2(a, bt, m, n, k, c) }
			}
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Amx if m.min(n) >= AMX_EDGE && crate::v2::fused::plain_amx(a, bt, m, n, k, c).is_some() => {}
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Avx512Vnni | Kernel::Amx if Kernel::Avx512Vnni.available() && m * n <= DOT_OUTPUTS => {
				// SAFETY: the CPU supports AVX-512 F, BW and VNNI (checked just
				// above) and the shapes were checked.
				unsafe { x86::blocked_avx512vnni(a, bt, m, n, k, c) }
			}
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Avx512Vnni | Kernel::Amx if crate::v2::fused::plain_vnni(a, bt, m, n, k, c).is_some() => {}
			_ => blocked(a, bt, m, n, k, c),
		}
	}
}

/// Outputs up to which [`Kernel::Avx512Vnni`] runs dot products (4 x 4
/// accumulators over 64 of `k` a step) rather than the panels: the
/// verified tiles of `t` up to 32 (the presets have 16), where the panels'
/// packing of `Bt` costs more than it saves at large `k` (pow-bench runs
/// here: a 16 x 16 x 65536 tile in 1.42 ms on the panels, 1.17-1.24 ms on
/// dot products; one run against three on a VM that drifts 20-40%).
/// Larger tiles (`t` up to 128) run on the panels.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const DOT_OUTPUTS: usize = 1024;

/// Rows and columns below which [`Kernel::Amx`] leaves a product to the
/// VNNI kernel: its blocks are 32 x 32, so a thinner product (a decode
/// step's few rows, a verified 16 x 16 tile) would multiply padding.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AMX_EDGE: usize = 32;

/// `C = A * Bt^T` with the fastest kernel this CPU has.
pub fn gemm(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
	Kernel::best().gemm(a, bt, m, n, k, c)
}

/// `C = A * Bt^T` with the plain triple loop.
pub fn gemm_naive(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
	Kernel::Naive.gemm(a, bt, m, n, k, c)
}

fn check_shape(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &[i32]) {
	let ok =
		m.checked_mul(k) == Some(a.len()) && n.checked_mul(k) == Some(bt.len()) && m.checked_mul(n) == Some(c.len());
	assert!(ok, "gemm shape mismatch: m={m} n={n} k={k} a={} bt={} c={}", a.len(), bt.len(), c.len());
}

fn naive(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
	for r in 0..m {
		for col in 0..n {
			let mut s = 0i32;
			for x in 0..k {
				s = s.wrapping_add((a[r * k + x] as i32).wrapping_mul(bt[col * k + x] as i32));
			}
			c[r * n + col] = s;
		}
	}
}

/// Rows of `Bt` that share one pass over a row of `A`.
const NB: usize = 4;
/// Bytes of `Bt` kept hot while all rows of `A` stream past (about L2/2).
const BT_BLOCK_BYTES: usize = 256 * 1024;

/// Columns of `Bt` handled per cache block: a multiple of `NB`.
fn cols_per_block(k: usize) -> usize {
	(BT_BLOCK_BYTES / k.max(1)).max(NB) / NB * NB
}

/// The cache- and register-blocked portable kernel: four dot products share
/// each load of `A`, and each is a plain widening reduction that LLVM
/// vectorises (pmaddwd on x86, i32x4 dot on wasm simd128 when enabled).
fn blocked(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
	let cb = cols_per_block(k);
	let mut c0 = 0;
	while c0 < n {
		let c1 = n.min(c0 + cb);
		for r in 0..m {
			let ar = &a[r * k..][..k];
			let crow = &mut c[r * n..][..n];
			let mut col = c0;
			while col + NB <= c1 {
				let b = |q: usize| &bt[(col + q) * k..][..k];
				crow[col..col + NB].copy_from_slice(&dot4(ar, b(0), b(1), b(2), b(3)));
				col += NB;
			}
			for col in col..c1 {
				crow[col] = dot(ar, &bt[col * k..][..k]);
			}
		}
		c0 = c1;
	}
}

#[inline(always)]
fn dot(a: &[i8], b: &[i8]) -> i32 {
	a.iter().zip(b).fold(0i32, |s, (&x, &y)| s.wrapping_add((x as i32).wrapping_mul(y as i32)))
}

#[inline(always)]
fn dot4(a: &[i8], b0: &[i8], b1: &[i8], b2: &[i8], b3: &[i8]) -> [i32; NB] {
	let (mut s0, mut s1, mut s2, mut s3) = (0i32, 0i32, 0i32, 0i32);
	let len = a.len();
	let (b0, b1, b2, b3) = (&b0[..len], &b1[..len], &b2[..len], &b3[..len]);
	for x in 0..len {
		let v = a[x] as i32;
		s0 = s0.wrapping_add(v.wrapping_mul(b0[x] as i32));
		s1 = s1.wrapping_add(v.wrapping_mul(b1[x] as i32));
		s2 = s2.wrapping_add(v.wrapping_mul(b2[x] as i32));
		s3 = s3.wrapping_add(v.wrapping_mul(b3[x] as i32));
	}
	[s0, s1, s2, s3]
}

/// Hand-written x86_64 micro-kernels on dot products: an `MR x NR` block
/// in registers over the whole `k`, then stored; edges use smaller blocks
/// of the same code. (Larger VNNI products run on the fused v2 kernel's
/// panels: [`crate::v2::fused`].)
#[cfg(all(feature = "std", target_arch = "x86_64"))]
// Edge blocks run the same loops with mr < MR or nr < NR, so the loops index
// fixed-size register arrays by a bound other than their length.
#[allow(clippy::needless_range_loop)]
mod x86 {
	use core::arch::x86_64::*;

	/// Drives a micro-kernel over the whole product in `MR x NR` blocks,
	/// with `Bt` cache-blocked; `kern(r, col, mr, nr)` fills `C[r.., col..]`.
	#[inline(always)]
	fn drive<const MR: usize, const NR: usize>(
		m: usize,
		n: usize,
		k: usize,
		mut kern: impl FnMut(usize, usize, usize, usize),
	) {
		let cb = super::cols_per_block(k).max(NR) / NR * NR;
		let mut c0 = 0;
		while c0 < n {
			let c1 = n.min(c0 + cb);
			let mut r = 0;
			while r < m {
				let mr = MR.min(m - r);
				let mut col = c0;
				while col < c1 {
					let nr = NR.min(c1 - col);
					kern(r, col, mr, nr);
					col += nr;
				}
				r += mr;
			}
			c0 = c1;
		}
	}

	/// AVX2: sign-extend 16 int8 to int16, `vpmaddwd` pairs into int32.
	/// 2 rows of A x 4 rows of Bt = 8 accumulators, 16 of k per step.
	#[target_feature(enable = "avx2")]
	pub(super) unsafe fn blocked_avx2(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
		const MR: usize = 2;
		const NR: usize = 4;
		let k16 = k / 16 * 16;
		drive::<MR, NR>(m, n, k, |r, col, mr, nr| {
			let mut acc = [[_mm256_setzero_si256(); NR]; MR];
			let mut x = 0;
			while x < k16 {
				let mut bv = [_mm256_setzero_si256(); NR];
				for q in 0..nr {
					// SAFETY: row col+q < n and x+16 <= k, inside Bt (n*k, checked by the caller).
					let p = bt.as_ptr().add((col + q) * k + x) as *const __m128i;
					bv[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(p));
				}
				for i in 0..mr {
					// SAFETY: row r+i < m and x+16 <= k, inside A (m*k).
					let p = a.as_ptr().add((r + i) * k + x) as *const __m128i;
					let av = _mm256_cvtepi8_epi16(_mm_loadu_si128(p));
					for q in 0..nr {
						acc[i][q] = _mm256_add_epi32(acc[i][q], _mm256_madd_epi16(av, bv[q]));
					}
				}
				x += 16;
			}
			for i in 0..mr {
				for q in 0..nr {
					let mut s = hsum256(acc[i][q]);
					let (ar, br) = (&a[(r + i) * k..][..k], &bt[(col + q) * k..][..k]);
					s = s.wrapping_add(super::dot(&ar[k16..], &br[k16..]));
					c[(r + i) * n + col + q] = s;
				}
			}
		});
	}

	/// AVX-512 VNNI on dot products, for small outputs (a verified tile):
	/// `vpdpbusd` multiplies unsigned by signed bytes, four per
	/// int32 lane, 64 per instruction. A is made unsigned by adding 128
	/// (`a ^ 0x80`), and the bias is removed exactly afterwards:
	/// `sum (a+128) b = sum a b + 128 sum b`. Masked loads zero the k tail, so
	/// it contributes `(0^0x80)*0 = 0`. 4 x 4 accumulators, 64 of k per step.
	#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
	pub(super) unsafe fn blocked_avx512vnni(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
		const MR: usize = 4;
		const NR: usize = 4;
		// 128 * (row sum of Bt), per row of Bt: the bias to take away.
		let bias: std::vec::Vec<i32> = (0..n)
			.map(|q| bt[q * k..][..k].iter().fold(0i32, |s, &v| s.wrapping_add(v as i32)).wrapping_mul(128))
			.collect();
		let flip = _mm512_set1_epi8(-128);
		drive::<MR, NR>(m, n, k, |r, col, mr, nr| {
			let mut acc = [[_mm512_setzero_si512(); NR]; MR];
			let mut x = 0;
			while x < k {
				let rem = k - x;
				let mask: __mmask64 = if rem >= 64 { !0 } else { (1u64 << rem) - 1 };
				let mut bv = [_mm512_setzero_si512(); NR];
				for q in 0..nr {
					// SAFETY: masked load reads only lanes below k - x of row col+q < n.
					bv[q] = _mm512_maskz_loadu_epi8(mask, bt.as_ptr().add((col + q) * k + x));
				}
				for i in 0..mr {
					// SAFETY: as above, row r+i < m of A. Masked-off lanes load 0 and
					// become 0x80 after the flip; they meet zero lanes of Bt.
					let av = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, a.as_ptr().add((r + i) * k + x)), flip);
					for q in 0..nr {
						acc[i][q] = _mm512_dpbusd_epi32(acc[i][q], av, bv[q]);
					}
				}
				x += 64;
			}
			for i in 0..mr {
				for q in 0..nr {
					c[(r + i) * n + col + q] = _mm512_reduce_add_epi32(acc[i][q]).wrapping_sub(bias[col + q]);
				}
			}
		});
	}

	#[inline(always)]
	unsafe fn hsum256(v: __m256i) -> i32 {
		let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
		let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
		let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
		_mm_cvtsi128_si32(s)
	}
}

/// `len` values of the full int8 range from a 64-bit LCG: the unit tests'
/// matrices (this module's, the fused kernels' and the noise removal's).
#[cfg(test)]
pub(crate) fn lcg_matrix(len: usize, seed: u64) -> alloc::vec::Vec<i8> {
	let mut s = seed;
	(0..len)
		.map(|_| {
			s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
			(s >> 56) as i8
		})
		.collect()
}

#[cfg(test)]
mod tests {
	use super::*;
	use alloc::vec;

	#[test]
	fn extremes_do_not_overflow_at_max_k() {
		// k = 2^16 of (-128)*(-128) = 2^30: the largest sum the rules allow.
		let k = 1 << 16;
		let a = vec![-128i8; k];
		let b = vec![-128i8; k];
		for kern in Kernel::ALL.into_iter().filter(|k| k.available()) {
			let mut c = [0i32; 1];
			kern.gemm(&a, &b, 1, 1, k, &mut c);
			assert_eq!(c[0], 1 << 30, "{kern:?}");
		}
		let b = vec![127i8; k];
		for kern in Kernel::ALL.into_iter().filter(|k| k.available()) {
			let mut c = [0i32; 1];
			kern.gemm(&a, &b, 1, 1, k, &mut c);
			assert_eq!(c[0], -128 * 127 * (1 << 16), "{kern:?}");
		}
		// The VNNI panels by name (`gemm` gives one output to dot products).
		#[cfg(all(feature = "std", target_arch = "x86_64"))]
		for (vb, want) in [(-128i8, 1 << 30), (127, -128 * 127 * (1 << 16))] {
			let mut c = [0i32; 1];
			if crate::v2::fused::plain_vnni(&a, &vec![vb; k], 1, 1, k, &mut c).is_some() {
				assert_eq!(c[0], want, "VNNI panels, b = {vb}");
			}
		}
	}

	#[test]
	fn all_kernels_agree_on_ragged_shapes() {
		// Besides tiny ones, shapes around the VNNI panels' edges: rows
		// past a block of 8 or of L2, columns past a panel of 16 or a pair
		// of them, depths past a whole quad.
		let shapes = [(1, 1, 1), (3, 5, 7), (4, 4, 32), (5, 9, 33), (16, 16, 64), (7, 13, 100)];
		// (133 x 4096: a block of 128 rows, then 5 single rows.)
		let edges = [
			(8, 16, 4),
			(9, 17, 5),
			(16, 33, 64),
			(17, 48, 130),
			(24, 32, 4096),
			(1, 40, 3),
			(10, 64, 2),
			(133, 20, 4096),
			// The dot kernels' columns in more than one cache block.
			(5, 70, 4096),
		];
		for (m, n, k) in shapes.into_iter().chain(edges) {
			let a = lcg_matrix(m * k, 1);
			let bt = lcg_matrix(n * k, 2);
			let mut want = vec![0; m * n];
			gemm_naive(&a, &bt, m, n, k, &mut want);
			for kern in Kernel::ALL {
				let mut got = vec![-1; m * n];
				kern.gemm(&a, &bt, m, n, k, &mut got);
				assert_eq!(got, want, "{kern:?} {m}x{n}x{k}");
			}
			// The VNNI panels by name: `gemm` gives small outputs to dot products.
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			{
				let mut got = vec![-1; m * n];
				if crate::v2::fused::plain_vnni(&a, &bt, m, n, k, &mut got).is_some() {
					assert_eq!(got, want, "VNNI panels {m}x{n}x{k}");
				}
			}
		}
	}

	#[test]
	#[should_panic(expected = "shape mismatch")]
	fn wrong_shape_is_a_caller_bug() {
		let mut c = [0; 4];
		gemm(&[0; 4], &[0; 4], 2, 2, 3, &mut c);
	}
}
