//! The noisy product of one nonce with every tile's transcript folded in as
//! it is computed: the CPU miner's kernel. The accumulators are the running
//! sums; after every `r` of `k` each is XORed into its fold register, so the
//! transcript costs one XOR per output element per chunk on top of the GEMM,
//! and the product falls out as the last running sums.
//!
//! Both kernels give exactly [`super::transcript::tile_transcript`]'s states
//! (tested against it), and the same product as [`crate::kernel`].

use super::transcript::{reduce, State};
use alloc::vec;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
use alloc::vec::Vec;

/// The fused kernels; [`Fused::best`] picks the fastest this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fused {
	/// Tile by tile, four dot products per pass: what the Wasm runtime would run.
	Portable,
	/// One output per 32-bit lane, `vpmaddwd` on pre-paired 16-bit operands
	/// (x86_64 with AVX2, `std` only).
	Avx2,
}

impl Fused {
	pub const ALL: [Fused; 2] = [Fused::Portable, Fused::Avx2];

	pub fn available(self) -> bool {
		match self {
			Fused::Portable => true,
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Fused::Avx2 => std::is_x86_feature_detected!("avx2"),
			#[allow(unreachable_patterns)]
			_ => false,
		}
	}

	pub fn best() -> Fused {
		if Fused::Avx2.available() {
			Fused::Avx2
		} else {
			Fused::Portable
		}
	}

	/// `c = a' * bt'^T` (`m x n`) and `states[i * n/t + j]` for every tile.
	/// `a` is `m x k`, `bt` is `n x k`; `t` divides `m` and `n`, `r` divides `k`
	/// and is even. Falls back to the portable kernel on a CPU without AVX2.
	///
	/// # Panics
	/// On slice lengths that do not match the shape (a caller bug).
	pub fn run(self, a: &[i8], bt: &[i8], shape: Shape, c: &mut [i32], states: &mut [State]) {
		shape.check(a, bt, c, states);
		match self {
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Fused::Avx2 if self.available() => {
				// SAFETY: AVX2 is present (checked just above) and the shapes were checked.
				unsafe { x86::run_avx2(a, bt, shape, c, states) }
			}
			_ => portable(a, bt, shape, c, states),
		}
	}
}

/// The dimensions of one fused product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
	pub m: usize,
	pub n: usize,
	pub k: usize,
	pub t: usize,
	pub r: usize,
}

impl Shape {
	pub fn of(p: &crate::params::ChallengeParams) -> Self {
		Self { m: p.m as usize, n: p.n as usize, k: p.k as usize, t: p.t as usize, r: p.r as usize }
	}

	fn check(&self, a: &[i8], bt: &[i8], c: &[i32], states: &[State]) {
		let Shape { m, n, k, t, r } = *self;
		let ok = t > 0
			&& r > 0 && r % 2 == 0
			&& m % t == 0
			&& n % t == 0
			&& k % r == 0
			&& a.len() == m * k
			&& bt.len() == n * k
			&& c.len() == m * n
			&& states.len() == (m / t) * (n / t);
		assert!(
			ok,
			"fused shape mismatch: {self:?} a={} bt={} c={} states={}",
			a.len(),
			bt.len(),
			c.len(),
			states.len()
		);
	}
}

fn portable(a: &[i8], bt: &[i8], s: Shape, c: &mut [i32], states: &mut [State]) {
	let Shape { n, k, t, r, .. } = s;
	let mut acc = vec![0i32; t * t];
	let mut folds = vec![0u32; t * t];
	for (ti, a_rows) in a.chunks_exact(t * k).enumerate() {
		for (tj, b_rows) in bt.chunks_exact(t * k).enumerate() {
			acc.iter_mut().for_each(|v| *v = 0);
			folds.iter_mut().for_each(|v| *v = 0);
			for z0 in (0..k).step_by(r) {
				for x in 0..t {
					let ar = &a_rows[x * k + z0..][..r];
					for y in (0..t).step_by(4) {
						let b = |q: usize| &b_rows[(y + q) * k + z0..][..r];
						let d = dot4(ar, b(0), b(1), b(2), b(3));
						for q in 0..4 {
							let e = x * t + y + q;
							acc[e] = acc[e].wrapping_add(d[q]);
							folds[e] ^= acc[e] as u32;
						}
					}
				}
			}
			states[ti * (n / t) + tj] = reduce(&folds, t);
			for x in 0..t {
				c[(ti * t + x) * n + tj * t..][..t].copy_from_slice(&acc[x * t..][..t]);
			}
		}
	}
}

#[inline(always)]
fn dot4(a: &[i8], b0: &[i8], b1: &[i8], b2: &[i8], b3: &[i8]) -> [i32; 4] {
	let (mut s0, mut s1, mut s2, mut s3) = (0i32, 0i32, 0i32, 0i32);
	let len = a.len();
	let (b0, b1, b2, b3) = (&b0[..len], &b1[..len], &b2[..len], &b3[..len]);
	for x in 0..len {
		let v = a[x] as i32;
		s0 = s0.wrapping_add(v * b0[x] as i32);
		s1 = s1.wrapping_add(v * b1[x] as i32);
		s2 = s2.wrapping_add(v * b2[x] as i32);
		s3 = s3.wrapping_add(v * b3[x] as i32);
	}
	[s0, s1, s2, s3]
}

/// Pairs of 16-bit values packed in 32 bits, the operand `vpmaddwd` takes:
/// `out[q] = lo16(m[2q]) | lo16(m[2q + 1]) << 16`. Rows of even length stay
/// rows: row `x` is `out[x * k/2 ..]`.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn pair_rows(m: &[i8]) -> Vec<u32> {
	m.chunks_exact(2).map(|p| (p[0] as i16 as u16 as u32) | ((p[1] as i16 as u16 as u32) << 16)).collect()
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
	use super::{pair_rows, reduce, Shape, State};
	use core::arch::x86_64::*;
	use std::{vec, vec::Vec};

	/// Rows of `A'` per micro-tile; 16 columns (two vectors) each.
	const MR: usize = 4;

	/// For each 16-column panel of `Bt'`, the panel re-laid as
	/// `[k/2][16]` pairs, so one z-pair of 16 columns is two aligned-free loads;
	/// `A'` as pairs, broadcast one pair at a time. Accumulator lane `y` of
	/// row `x` is output `(x, y)`: at each chunk end the lane *is* the running
	/// sum, and the fold is one XOR.
	#[target_feature(enable = "avx2")]
	pub(super) unsafe fn run_avx2(a: &[i8], bt: &[i8], s: Shape, c: &mut [i32], states: &mut [State]) {
		let Shape { m, n, k, t, r } = s;
		let kp = k / 2;
		let ap = pair_rows(a);
		let mut panel: Vec<u32> = vec![0; kp * 16];
		let mut folds = vec![0u32; m * t];
		let pairs_per_chunk = r / 2;
		for tj in 0..n / t {
			// The tile column's fold registers for every row of the product.
			folds.iter_mut().for_each(|f| *f = 0);
			for y0 in (0..t).step_by(16) {
				let col0 = tj * t + y0;
				for p in 0..kp {
					for y in 0..16 {
						let row = &bt[(col0 + y) * k + 2 * p..][..2];
						panel[p * 16 + y] = (row[0] as i16 as u16 as u32) | ((row[1] as i16 as u16 as u32) << 16);
					}
				}
				for x0 in (0..m).step_by(MR) {
					let mut acc = [[_mm256_setzero_si256(); 2]; MR];
					for chunk in 0..k / r {
						let p0 = chunk * pairs_per_chunk;
						for p in p0..p0 + pairs_per_chunk {
							// SAFETY: p < k/2, so 16 u32s at p*16 lie in `panel`.
							let bp = panel.as_ptr().add(p * 16) as *const __m256i;
							let b0 = _mm256_loadu_si256(bp);
							let b1 = _mm256_loadu_si256(bp.add(1));
							for (i, acc_row) in acc.iter_mut().enumerate() {
								// SAFETY: row x0+i < m (m is a multiple of t >= 16 > MR) and p < k/2.
								let av = _mm256_set1_epi32(*ap.get_unchecked((x0 + i) * kp + p) as i32);
								acc_row[0] = _mm256_add_epi32(acc_row[0], _mm256_madd_epi16(av, b0));
								acc_row[1] = _mm256_add_epi32(acc_row[1], _mm256_madd_epi16(av, b1));
							}
						}
						for (i, acc_row) in acc.iter().enumerate() {
							let f = folds.as_mut_ptr().add((x0 + i) * t + y0) as *mut __m256i;
							// SAFETY: 16 u32s at row x0+i, column y0 (y0 + 16 <= t) of `folds`.
							_mm256_storeu_si256(f, _mm256_xor_si256(_mm256_loadu_si256(f), acc_row[0]));
							_mm256_storeu_si256(f.add(1), _mm256_xor_si256(_mm256_loadu_si256(f.add(1)), acc_row[1]));
						}
					}
					for (i, acc_row) in acc.iter().enumerate() {
						let out = c.as_mut_ptr().add((x0 + i) * n + col0) as *mut __m256i;
						// SAFETY: 16 i32s of row x0+i from column col0 (col0 + 16 <= n).
						_mm256_storeu_si256(out, acc_row[0]);
						_mm256_storeu_si256(out.add(1), acc_row[1]);
					}
				}
			}
			for ti in 0..m / t {
				states[ti * (n / t) + tj] = reduce(&folds[ti * t * t..][..t * t], t);
			}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::v2::transcript::tile_transcript;

	fn matrix(len: usize, seed: u64) -> Vec<i8> {
		let mut s = seed;
		(0..len)
			.map(|_| {
				s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
				(s >> 56) as i8
			})
			.collect()
	}

	#[test]
	fn fused_kernels_match_the_reference_transcript() {
		for (m, n, k, t, r) in
			[(16, 16, 32, 16, 32), (32, 48, 128, 16, 64), (64, 32, 256, 32, 32), (16, 32, 128, 16, 128)]
		{
			let shape = Shape { m, n, k, t, r };
			// Full int8 range, including -128 * -128, which the noisy inputs reach.
			let (a, bt) = (matrix(m * k, 1), matrix(n * k, 2));
			let mut want_c = vec![0; m * n];
			crate::kernel::gemm_naive(&a, &bt, m, n, k, &mut want_c);
			let mut want_states = vec![];
			for ti in 0..m / t {
				for tj in 0..n / t {
					let mut tile = vec![0; t * t];
					want_states.push(tile_transcript(
						&a[ti * t * k..][..t * k],
						&bt[tj * t * k..][..t * k],
						t,
						k,
						r,
						&mut tile,
					));
				}
			}
			for kern in Fused::ALL {
				let mut c = vec![-1; m * n];
				let mut states = vec![[0; 16]; (m / t) * (n / t)];
				kern.run(&a, &bt, shape, &mut c, &mut states);
				assert_eq!(c, want_c, "{kern:?} {shape:?}");
				assert_eq!(states, want_states, "{kern:?} {shape:?}");
			}
		}
	}
}
