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
	/// Register-blocked, cache-blocked, written for auto-vectorisation;
	/// what the Wasm runtime runs.
	Portable,
	/// The portable kernel compiled for AVX2 (x86_64, `std` only).
	Avx2,
	/// The portable kernel compiled for AVX-512 BW + VNNI (x86_64, `std` only).
	Avx512Vnni,
}

impl Kernel {
	pub const ALL: [Kernel; 4] = [Kernel::Naive, Kernel::Portable, Kernel::Avx2, Kernel::Avx512Vnni];

	/// Whether this CPU can run the kernel.
	pub fn available(self) -> bool {
		match self {
			Kernel::Naive | Kernel::Portable => true,
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Avx2 => std::is_x86_feature_detected!("avx2"),
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Avx512Vnni =>
				std::is_x86_feature_detected!("avx512bw") &&
					std::is_x86_feature_detected!("avx512vnni"),
			#[allow(unreachable_patterns)]
			_ => false,
		}
	}

	/// The fastest kernel this CPU can run.
	pub fn best() -> Kernel {
		[Kernel::Avx512Vnni, Kernel::Avx2]
			.into_iter()
			.find(|k| k.available())
			.unwrap_or(Kernel::Portable)
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
				// SAFETY: the CPU supports AVX2 (checked just above).
				unsafe { x86::blocked_avx2(a, bt, m, n, k, c) }
			},
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Kernel::Avx512Vnni if self.available() => {
				// SAFETY: the CPU supports AVX-512 BW and VNNI (checked just above).
				unsafe { x86::blocked_avx512vnni(a, bt, m, n, k, c) }
			},
			_ => blocked(a, bt, m, n, k, c),
		}
	}
}

/// `C = A * Bt^T` with the fastest kernel this CPU has.
pub fn gemm(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
	Kernel::best().gemm(a, bt, m, n, k, c)
}

/// `C = A * Bt^T` with the plain triple loop.
pub fn gemm_naive(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
	Kernel::Naive.gemm(a, bt, m, n, k, c)
}

fn check_shape(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &[i32]) {
	let ok = m.checked_mul(k) == Some(a.len()) &&
		n.checked_mul(k) == Some(bt.len()) &&
		m.checked_mul(n) == Some(c.len());
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

/// Elements of `k` processed per step; 32 int8 = one AVX2 register of
/// widened int16 pairs, and a multiple of the 16 that every `k` is.
const LANES: usize = 32;
/// Rows of `Bt` that share one pass over a row of `A`.
const NB: usize = 4;
/// Bytes of `Bt` kept hot while all rows of `A` stream past (about L2/2).
const BT_BLOCK_BYTES: usize = 256 * 1024;

/// The cache- and register-blocked kernel. `#[inline(always)]` so that each
/// `#[target_feature]` wrapper below gets its own vectorised copy.
#[inline(always)]
fn blocked(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
	if k == 0 {
		c.fill(0);
		return;
	}
	let cols_per_block = (BT_BLOCK_BYTES / k).max(NB) / NB * NB;
	let mut c0 = 0;
	while c0 < n {
		let c1 = n.min(c0 + cols_per_block);
		for r in 0..m {
			let ar = &a[r * k..][..k];
			let crow = &mut c[r * n..][..n];
			let mut col = c0;
			while col + NB <= c1 {
				let b = |q: usize| &bt[(col + q) * k..][..k];
				let d = dot4(ar, [b(0), b(1), b(2), b(3)]);
				crow[col..col + NB].copy_from_slice(&d);
				col += NB;
			}
			while col < c1 {
				crow[col] = dot4(ar, [&bt[col * k..][..k]; NB])[0];
				col += 1;
			}
		}
		c0 = c1;
	}
}

/// Four dot products of `a` with `b[0..4]`, all of `a`'s length.
#[inline(always)]
fn dot4(a: &[i8], b: [&[i8]; NB]) -> [i32; NB] {
	let mut acc = [[0i32; LANES]; NB];
	let full = a.len() / LANES * LANES;
	for x in (0..full).step_by(LANES) {
		let av: &[i8; LANES] = a[x..x + LANES].try_into().expect("LANES slice");
		for q in 0..NB {
			let bv: &[i8; LANES] = b[q][x..x + LANES].try_into().expect("LANES slice");
			for l in 0..LANES {
				// i8 * i8 fits in i16; the widening multiply-add pattern
				// compiles to pmaddwd / vpdpwssd.
				let p = (av[l] as i16).wrapping_mul(bv[l] as i16) as i32;
				acc[q][l] = acc[q][l].wrapping_add(p);
			}
		}
	}
	let mut out = [0i32; NB];
	for q in 0..NB {
		let mut s = acc[q].iter().fold(0i32, |s, v| s.wrapping_add(*v));
		for x in full..a.len() {
			s = s.wrapping_add((a[x] as i32).wrapping_mul(b[q][x] as i32));
		}
		out[q] = s;
	}
	out
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
	#[target_feature(enable = "avx2")]
	pub(super) unsafe fn blocked_avx2(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) {
		super::blocked(a, bt, m, n, k, c)
	}

	#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
	pub(super) unsafe fn blocked_avx512vnni(
		a: &[i8],
		bt: &[i8],
		m: usize,
		n: usize,
		k: usize,
		c: &mut [i32],
	) {
		super::blocked(a, bt, m, n, k, c)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use alloc::vec;
	use alloc::vec::Vec;

	fn lcg_matrix(len: usize, seed: u64) -> Vec<i8> {
		let mut s = seed;
		(0..len)
			.map(|_| {
				s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
				(s >> 56) as i8
			})
			.collect()
	}

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
	}

	#[test]
	fn all_kernels_agree_on_ragged_shapes() {
		for (m, n, k) in [(1, 1, 1), (3, 5, 7), (4, 4, 32), (5, 9, 33), (16, 16, 64), (7, 13, 100)] {
			let a = lcg_matrix(m * k, 1);
			let bt = lcg_matrix(n * k, 2);
			let mut want = vec![0; m * n];
			gemm_naive(&a, &bt, m, n, k, &mut want);
			for kern in Kernel::ALL {
				let mut got = vec![-1; m * n];
				kern.gemm(&a, &bt, m, n, k, &mut got);
				assert_eq!(got, want, "{kern:?} {m}x{n}x{k}");
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
