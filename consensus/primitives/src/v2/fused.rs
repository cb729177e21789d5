//! The noisy product of one nonce with every tile's transcript folded in as
//! it is computed: the CPU miner's kernel. The accumulators are the running
//! sums; after every `r` of `k` each is XORed into its fold register, so the
//! transcript costs one XOR per output element per chunk on top of the GEMM,
//! and the product falls out as the last running sums.
//!
//! Every kernel gives exactly [`super::transcript::tile_transcript`]'s states
//! (tested against it), and the same product as [`crate::kernel`].

use super::transcript::{reduce, State};
use alloc::vec;

/// The fused kernels; [`Fused::best`] picks the fastest this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fused {
	/// Tile by tile, four dot products per pass: what the Wasm runtime would run.
	Portable,
	/// One output per 32-bit lane, `vpmaddwd` on pre-paired 16-bit operands
	/// (x86_64 with AVX2, `std` only).
	Avx2,
	/// One output per 32-bit lane, `vpdpbusd` on quads of bytes: 64
	/// multiply-accumulates an instruction, as the plain GEMM's
	/// (x86_64 with AVX-512 VNNI, `std` only; `r` a multiple of 4).
	Avx512Vnni,
	/// 16 x 16 tiles of sums, `tdpbssd` on AMX-INT8: 16 384
	/// multiply-accumulates an instruction (x86_64 Linux with AMX-INT8 and
	/// AVX-512 VNNI, `std` only). Where `t` is not a multiple of 16, `r`
	/// not of 64, or the product thinner than 32, the VNNI kernel runs
	/// instead.
	Amx,
}

impl Fused {
	/// Every fused kernel, the portable one first.
	pub const ALL: [Fused; 4] = [Fused::Portable, Fused::Avx2, Fused::Avx512Vnni, Fused::Amx];

	/// Whether this CPU can run the kernel.
	pub fn available(self) -> bool {
		match self {
			Fused::Portable => true,
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Fused::Avx2 => std::is_x86_feature_detected!("avx2"),
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Fused::Avx512Vnni => {
				std::is_x86_feature_detected!("avx2")
					&& std::is_x86_feature_detected!("avx512f")
					&& std::is_x86_feature_detected!("avx512bw")
					&& std::is_x86_feature_detected!("avx512vnni")
			}
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Fused::Amx => amx::available(),
			#[allow(unreachable_patterns)]
			_ => false,
		}
	}

	/// The fastest kernel this CPU runs.
	pub fn best() -> Fused {
		[Fused::Amx, Fused::Avx512Vnni, Fused::Avx2].into_iter().find(|k| k.available()).unwrap_or(Fused::Portable)
	}

	/// `c = a' * bt'^T` (`m x n`) and `states[i * n/t + j]` for every tile.
	/// `a` is `m x k`, `bt` is `n x k`; `t` divides `m` and `n`, `r` divides `k`
	/// and is even. Falls back to the portable kernel on a CPU without AVX2.
	///
	/// # Panics
	/// On slice lengths that do not match the shape (a caller bug).
	pub fn run(self, a: &[i8], bt: &[i8], shape: Shape, c: &mut [i32], states: &mut [State]) {
		self.run_with(&mut Scratch::default(), a, bt, shape, c, states)
	}

	/// [`Self::run`] with working memory kept by the caller from one call
	/// to the next (about `2 * (m + n) * k` bytes for the AVX2 kernel,
	/// `n * k` of packed panels and some folds for the VNNI kernel), so
	/// a miner does not allocate and fault in fresh pages every nonce.
	pub fn run_with(
		self,
		scratch: &mut Scratch,
		a: &[i8],
		bt: &[i8],
		shape: Shape,
		c: &mut [i32],
		states: &mut [State],
	) {
		shape.check(a, bt, c, states);
		let _ = &scratch;
		match self {
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Fused::Amx
				if self.available()
					&& shape.t.is_multiple_of(16)
					&& shape.r.is_multiple_of(64)
					&& shape.m.min(shape.n) >= 32 =>
			{
				// SAFETY: AMX is available (checked just above), the shapes
				// were checked, 16 divides t and 64 divides r. (A product
				// thinner than a 32 x 32 block, as a verified tile, is left
				// to the VNNI kernel: it would multiply padding.)
				unsafe { fused_amx::run(scratch, a, bt, shape, c, states) }
			}
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Fused::Avx512Vnni | Fused::Amx if Fused::Avx512Vnni.available() && shape.r.is_multiple_of(4) => {
				// SAFETY: AVX-512 VNNI and AVX2 are present (checked just
				// above), the shapes were checked, and 4 divides r and so k.
				unsafe { vnni::run_avx512vnni(scratch, a, bt, shape, c, states) }
			}
			#[cfg(all(feature = "std", target_arch = "x86_64"))]
			Fused::Avx2 | Fused::Avx512Vnni | Fused::Amx if Fused::Avx2.available() => {
				// SAFETY: AVX2 is present (checked just above) and the shapes were checked.
				unsafe { x86::run_avx2(scratch, a, bt, shape, c, states) }
			}
			_ => portable(a, bt, shape, c, states),
		}
	}
}

/// Working memory of the fused kernels, reusable across calls of any shape.
#[derive(Default)]
pub struct Scratch {
	/// `A'` and `Bt'` as 16-bit pairs (the AVX2 kernel; the VNNI kernel
	/// reads the bytes as they are).
	#[allow(dead_code)]
	a_pairs: alloc::vec::Vec<u32>,
	#[allow(dead_code)]
	b_pairs: alloc::vec::Vec<u32>,
	/// 16-column panels of `Bt'` (one for the AVX2 kernel, all of them
	/// for the VNNI kernel), and the fold registers of one or two tile
	/// columns (of every row, or of one block of rows).
	#[allow(dead_code)]
	panel: alloc::vec::Vec<u32>,
	#[allow(dead_code)]
	folds: alloc::vec::Vec<u32>,
}

/// The dimensions of one fused product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
	/// Rows of `A'` and of the product.
	pub m: usize,
	/// Rows of `Bt'`, columns of the product.
	pub n: usize,
	/// Inner dimension.
	pub k: usize,
	/// Tile edge.
	pub t: usize,
	/// Transcript chunk length along `k`.
	pub r: usize,
}

impl Shape {
	/// The shape of a parameter set.
	pub fn of(p: &crate::params::ChallengeParams) -> Self {
		Self { m: p.m as usize, n: p.n as usize, k: p.k as usize, t: p.t as usize, r: p.r as usize }
	}

	fn check(&self, a: &[i8], bt: &[i8], c: &[i32], states: &[State]) {
		let Shape { m, n, k, t, r } = *self;
		// (The SIMD kernels run 16-column panels inside a tile: `t` is a
		// multiple of 16, as the rules require.)
		let len = |x: usize, y: usize| x.checked_mul(y);
		let ok = t > 0
			&& k > 0 && t.is_multiple_of(16)
			&& r > 0 && r.is_multiple_of(2)
			&& m.is_multiple_of(t)
			&& n.is_multiple_of(t)
			&& k.is_multiple_of(r)
			&& len(m, k) == Some(a.len())
			&& len(n, k) == Some(bt.len())
			&& len(m, n) == Some(c.len())
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
						for (q, &dq) in d.iter().enumerate() {
							let e = x * t + y + q;
							acc[e] = acc[e].wrapping_add(dq);
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

/// `c = a * bt^T` on the VNNI panels ([`crate::kernel::Kernel::Avx512Vnni`]'s
/// product); `None` where the CPU lacks AVX-512 VNNI (the caller runs
/// another kernel). Shapes checked by the caller; `k > 0`.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(crate) fn plain_vnni(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) -> Option<()> {
	if !Fused::Avx512Vnni.available() || k == 0 {
		return None;
	}
	// SAFETY: AVX-512 VNNI and AVX2 are present (checked just above), k > 0,
	// and the caller checked the lengths.
	unsafe { vnni::plain_vnni(a, bt, m, n, k, c) };
	Some(())
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[path = "fused_vnni.rs"]
mod vnni;

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[path = "amx.rs"]
mod amx;

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[path = "fused_amx.rs"]
mod fused_amx;

/// `c = a * bt^T` on AMX tiles ([`crate::kernel::Kernel::Amx`]'s product);
/// `None` where the CPU lacks AMX or `k` is not a multiple of 64 (the
/// caller runs another kernel). Shapes checked by the caller.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(crate) fn plain_amx(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize, c: &mut [i32]) -> Option<()> {
	fused_amx::plain(a, bt, m, n, k, c)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(super) mod x86 {
	use super::{reduce, Shape, State};
	use core::arch::x86_64::*;
	use std::vec::Vec;

	/// Rows of the left operand per micro-tile; 16 columns (two vectors) each.
	const MR: usize = 4;

	/// i8 values as 16-bit pairs: `out[q] = lo16(v[2q]) | lo16(v[2q + 1]) << 16`,
	/// which is exactly `vpmovsxbw`'s output read as `u32`s.
	#[target_feature(enable = "avx2")]
	unsafe fn pair_rows(v: &[i8], out: &mut Vec<u32>) {
		out.resize(v.len() / 2, 0);
		let whole = v.len() / 16 * 16;
		for i in (0..whole).step_by(16) {
			// SAFETY: 16 bytes at i < whole <= v.len(); 8 u32s at i/2 in `out`.
			let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(v.as_ptr().add(i) as *const __m128i));
			_mm256_storeu_si256(out.as_mut_ptr().add(i / 2) as *mut __m256i, w);
		}
		for q in whole / 2..v.len() / 2 {
			out[q] = (v[2 * q] as i16 as u16 as u32) | ((v[2 * q + 1] as i16 as u16 as u32) << 16);
		}
	}

	/// `u32`s as their bytes (little-endian, as x86 stores them).
	pub(in crate::v2) fn bytes(v: &[u32]) -> &[u8] {
		// SAFETY: every byte of a `u32` is initialised, and `u8` has no
		// alignment to keep.
		unsafe { core::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 4) }
	}

	/// Columns `col0 .. col0 + 16` of the right operand (rows of `kp`
	/// 32-bit words, given as bytes) re-laid as `panel[p * 16 + y]`, each
	/// word XORed with `flip`: one word of 16 columns is two loads.
	/// Transposes 8 x 8 blocks of `u32` in registers.
	#[target_feature(enable = "avx2")]
	pub(in crate::v2) unsafe fn pack_panel(rows: &[u8], kp: usize, col0: usize, flip: u32, panel: &mut [u32]) {
		let whole = kp / 8 * 8;
		let flips = _mm256_set1_epi32(flip as i32);
		for y0 in [0, 8] {
			for p0 in (0..whole).step_by(8) {
				let mut r = [_mm256_setzero_si256(); 8];
				for (i, v) in r.iter_mut().enumerate() {
					// SAFETY: row col0+y0+i exists (a caller checked n), and p0 + 8 <= kp.
					let at = rows.as_ptr().add(4 * ((col0 + y0 + i) * kp + p0)) as *const __m256i;
					*v = _mm256_xor_si256(_mm256_loadu_si256(at), flips);
				}
				let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
				let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
				let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
				let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
				let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
				let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
				let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
				let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
				let u0 = _mm256_unpacklo_epi64(t0, t2);
				let u1 = _mm256_unpackhi_epi64(t0, t2);
				let u2 = _mm256_unpacklo_epi64(t1, t3);
				let u3 = _mm256_unpackhi_epi64(t1, t3);
				let u4 = _mm256_unpacklo_epi64(t4, t6);
				let u5 = _mm256_unpackhi_epi64(t4, t6);
				let u6 = _mm256_unpacklo_epi64(t5, t7);
				let u7 = _mm256_unpackhi_epi64(t5, t7);
				let out = [
					_mm256_permute2x128_si256::<0x20>(u0, u4),
					_mm256_permute2x128_si256::<0x20>(u1, u5),
					_mm256_permute2x128_si256::<0x20>(u2, u6),
					_mm256_permute2x128_si256::<0x20>(u3, u7),
					_mm256_permute2x128_si256::<0x31>(u0, u4),
					_mm256_permute2x128_si256::<0x31>(u1, u5),
					_mm256_permute2x128_si256::<0x31>(u2, u6),
					_mm256_permute2x128_si256::<0x31>(u3, u7),
				];
				for (j, v) in out.iter().enumerate() {
					// SAFETY: pair p0 + j < kp, columns y0 .. y0 + 8 of 16.
					_mm256_storeu_si256(panel.as_mut_ptr().add((p0 + j) * 16 + y0) as *mut __m256i, *v);
				}
			}
		}
		for p in whole..kp {
			for y in 0..16 {
				let at = 4 * ((col0 + y) * kp + p);
				panel[p * 16 + y] = u32::from_le_bytes([rows[at], rows[at + 1], rows[at + 2], rows[at + 3]]) ^ flip;
			}
		}
	}

	/// One 16-column panel against every row of the left operand: for each
	/// block of `MR` rows, the dot products over all `kp` pairs, one output
	/// per 32-bit lane, each lane (a running sum) XORed into its fold
	/// register after every `chunk` pairs; `folds` holds `t` columns per
	/// row, this panel's at `y0`. The last sums are stored into `c`.
	#[target_feature(enable = "avx2")]
	#[allow(clippy::too_many_arguments)]
	unsafe fn panel_pass(
		ap: &[u32],
		kp: usize,
		panel: &[u32],
		m: usize,
		chunk: usize,
		(folds, t, y0): (&mut [u32], usize, usize),
		c: &mut [i32],
		n: usize,
		col0: usize,
	) {
		for x0 in (0..m).step_by(MR) {
			let mut acc = [[_mm256_setzero_si256(); 2]; MR];
			for c0 in (0..kp).step_by(chunk) {
				for p in c0..c0 + chunk {
					// SAFETY: p < kp, so 16 u32s at p*16 lie in `panel`.
					let bp = panel.as_ptr().add(p * 16) as *const __m256i;
					let b0 = _mm256_loadu_si256(bp);
					let b1 = _mm256_loadu_si256(bp.add(1));
					for (i, acc_row) in acc.iter_mut().enumerate() {
						// SAFETY: row x0+i < m (m is a multiple of 16) and p < kp.
						let av = _mm256_set1_epi32(*ap.get_unchecked((x0 + i) * kp + p) as i32);
						acc_row[0] = _mm256_add_epi32(acc_row[0], _mm256_madd_epi16(av, b0));
						acc_row[1] = _mm256_add_epi32(acc_row[1], _mm256_madd_epi16(av, b1));
					}
				}
				for (i, acc_row) in acc.iter().enumerate() {
					let fp = folds.as_mut_ptr().add((x0 + i) * t + y0) as *mut __m256i;
					// SAFETY: 16 u32s at row x0+i, column y0 (y0 + 16 <= t) of the folds.
					_mm256_storeu_si256(fp, _mm256_xor_si256(_mm256_loadu_si256(fp), acc_row[0]));
					_mm256_storeu_si256(fp.add(1), _mm256_xor_si256(_mm256_loadu_si256(fp.add(1)), acc_row[1]));
				}
			}
			for (i, acc_row) in acc.iter().enumerate() {
				// SAFETY: 16 i32s of row x0+i from column col0 (col0 + 16 <= n) of `c` (m x n).
				let cp = c.as_mut_ptr().add((x0 + i) * n + col0) as *mut __m256i;
				_mm256_storeu_si256(cp, acc_row[0]);
				_mm256_storeu_si256(cp.add(1), acc_row[1]);
			}
		}
	}

	/// The fused product: `A'` and `Bt'` as pairs, then per tile column
	/// every 16-column panel against all rows, folding every `r/2` pairs.
	#[target_feature(enable = "avx2")]
	pub(super) unsafe fn run_avx2(
		scratch: &mut super::Scratch,
		a: &[i8],
		bt: &[i8],
		s: Shape,
		c: &mut [i32],
		states: &mut [State],
	) {
		let Shape { m, n, k, t, r } = s;
		let kp = k / 2;
		let super::Scratch { a_pairs: ap, b_pairs: bp, panel, folds } = scratch;
		pair_rows(a, ap);
		pair_rows(bt, bp);
		panel.resize(kp * 16, 0);
		folds.resize(m * t, 0);
		for tj in 0..n / t {
			folds.iter_mut().for_each(|f| *f = 0);
			for y0 in (0..t).step_by(16) {
				let col0 = tj * t + y0;
				pack_panel(bytes(bp), kp, col0, 0, panel);
				panel_pass(ap, kp, panel, m, r / 2, (folds, t, y0), c, n, col0);
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

	use crate::kernel::lcg_matrix as matrix;

	#[test]
	fn fused_kernels_match_the_reference_transcript() {
		for (m, n, k, t, r) in
			// t = 48: two panels of a tile, then one; t = 128: eight.
			[
				(16, 16, 32, 16, 32),
				(32, 48, 128, 16, 64),
				(64, 32, 256, 32, 32),
				(16, 32, 128, 16, 128),
				(48, 96, 256, 48, 64),
				(128, 128, 1024, 128, 32),
				// The VNNI kernel's blocks of rows: 96 and then 16 at k = 4096;
				// whole tiles of 32 at k = 16384.
				(112, 32, 4096, 16, 64),
				// ... with an odd number of tile columns (the last pass one
				// panel), and t = 48 in blocks of 96 and 48.
				(112, 48, 4096, 16, 64),
				(144, 48, 4096, 48, 64),
				(96, 64, 16384, 32, 128),
				// The AMX kernel: one step, a chunk of four steps, and 16
				// rows past the last block of 32 (a padded copy).
				(32, 32, 64, 16, 64),
				(64, 96, 8192, 32, 256),
				(80, 64, 192, 16, 64),
				// ... and tiles of 64 and 128 (sub-tiles at rotations 0 and 16).
				(128, 128, 1024, 128, 64),
				(128, 64, 4096, 64, 128),
			] {
			let shape = Shape { m, n, k, t, r };
			// Full int8 range, including -128 * -128, which the noisy inputs reach.
			let (a, bt) = (matrix(m * k, 1), matrix(n * k, 2));
			check_all_kernels(shape, &a, &bt);
			// The extremes everywhere: the VNNI kernel's offset (a + 128 = 0
			// for -128, 255 for 127) and its column biases at their largest.
			for (va, vb) in [(-128i8, -128i8), (127, -128), (-128, 127)] {
				check_all_kernels(shape, &vec![va; m * k], &vec![vb; n * k]);
			}
		}
	}

	#[test]
	fn one_scratch_serves_every_shape_in_turn() {
		// Large then small, full then ragged: nothing of an earlier call's
		// packing (padding rows and panels included) leaks into a later one.
		let shapes = [(96, 64, 4096, 32, 128), (48, 48, 128, 16, 64), (32, 16, 64, 16, 64), (80, 112, 256, 16, 64)];
		for kern in Fused::ALL {
			let mut scratch = Scratch::default();
			for (i, (m, n, k, t, r)) in shapes.into_iter().enumerate() {
				let shape = Shape { m, n, k, t, r };
				let (a, bt) = (matrix(m * k, 10 + i as u64), matrix(n * k, 20 + i as u64));
				let (mut want_c, mut want_states) = (vec![0; m * n], vec![[0; 16]; (m / t) * (n / t)]);
				Fused::Portable.run(&a, &bt, shape, &mut want_c, &mut want_states);
				let (mut c, mut states) = (vec![-1; m * n], vec![[1; 16]; (m / t) * (n / t)]);
				kern.run_with(&mut scratch, &a, &bt, shape, &mut c, &mut states);
				assert_eq!((c, states), (want_c, want_states), "{kern:?} {shape:?}");
			}
		}
	}

	fn check_all_kernels(shape: Shape, a: &[i8], bt: &[i8]) {
		let Shape { m, n, k, t, r } = shape;
		let mut want_c = vec![0; m * n];
		crate::kernel::gemm_naive(a, bt, m, n, k, &mut want_c);
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
			kern.run(a, bt, shape, &mut c, &mut states);
			assert_eq!(c, want_c, "{kern:?} {shape:?}");
			assert_eq!(states, want_states, "{kern:?} {shape:?}");
		}
	}
}
