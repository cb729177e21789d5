//! Freivalds' check of a matrix product, so that a product computed on a
//! device is never handed to a user unchecked: `C == A * Bt^T` is tested as
//! `C x == A (Bt^T x)` for a random vector `x`, in `O(mk + nk + mn)`
//! instead of the product's `O(mnk)`.
//!
//! The arithmetic is modulo 2^64 with `x` uniform. A wrong entry differs by
//! less than 2^32 in magnitude (|C| < 2^31 by the parameter rules), so it
//! has at most 32 factors of two, and its row's sum is then zero modulo 2^64
//! with probability at most 2^-32.

use std::hash::{BuildHasher, Hasher};

/// A random 64-bit seed from the standard library's per-process keys.
pub fn random_seed() -> u64 {
	let mut h = std::collections::hash_map::RandomState::new().build_hasher();
	h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
	h.finish()
}

/// SplitMix64: a fast stream of uniform 64-bit values from a seed.
fn splitmix(state: &mut u64) -> u64 {
	*state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
	let mut z = *state;
	z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
	z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
	z ^ (z >> 31)
}

/// Whether `c` (`m x n`) is `a * bt^T` (`a` is `m x k`, `bt` is `n x k`, all
/// row-major), up to a false "yes" with probability at most 2^-32.
/// Mismatched lengths are a "no".
pub fn holds(a: &[i8], bt: &[i8], c: &[i32], m: usize, n: usize, k: usize) -> bool {
	holds_with(a, bt, c, m, n, k, random_seed())
}

/// The random vector of [`holds_with`]'s `seed`: the first `n` values of
/// SplitMix64 from it (kernels/device.cu's `mlpow2_fv_x` makes the same).
pub fn vector(seed: u64, n: usize) -> Vec<u64> {
	let mut state = seed;
	(0..n).map(|_| splitmix(&mut state)).collect()
}

/// [`holds`] with the random vector drawn from `seed` ([`vector`]): the
/// same verdict as the device's check with that seed.
pub fn holds_with(a: &[i8], bt: &[i8], c: &[i32], m: usize, n: usize, k: usize, seed: u64) -> bool {
	if a.len() != m * k || bt.len() != n * k || c.len() != m * n {
		return false;
	}
	let x = vector(seed, n);
	// Rows are independent: blocks of them on every core.
	const ROWS: usize = 64;
	// y = Bt^T x (k values): a partial sum per block of Bt's rows, added up.
	let partial = |rows: core::ops::Range<usize>| {
		let mut y = vec![0u64; k];
		for row in rows {
			let xv = x[row];
			for (acc, &v) in y.iter_mut().zip(&bt[row * k..][..k]) {
				*acc = acc.wrapping_add((v as i64 as u64).wrapping_mul(xv));
			}
		}
		y
	};
	let y = crate::host_parallel::map(n.div_ceil(ROWS), |b| partial(b * ROWS..((b + 1) * ROWS).min(n)))
		.into_iter()
		.fold(vec![0u64; k], |mut sum, part| {
			sum.iter_mut().zip(part).for_each(|(s, p)| *s = s.wrapping_add(p));
			sum
		});
	let check = |rows: core::ops::Range<usize>| {
		rows.into_iter().all(|row| {
			let (arow, crow) = (&a[row * k..][..k], &c[row * n..][..n]);
			let left =
				crow.iter().zip(&x).fold(0u64, |s, (&v, &xv)| s.wrapping_add((v as i64 as u64).wrapping_mul(xv)));
			let right =
				arow.iter().zip(&y).fold(0u64, |s, (&v, &yv)| s.wrapping_add((v as i64 as u64).wrapping_mul(yv)));
			left == right
		})
	};
	crate::host_parallel::map(m.div_ceil(ROWS), |b| check(b * ROWS..((b + 1) * ROWS).min(m))).into_iter().all(|ok| ok)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn product(a: &[i8], bt: &[i8], m: usize, n: usize, k: usize) -> Vec<i32> {
		let mut c = vec![0; m * n];
		mlpow_primitives::kernel::gemm_naive(a, bt, m, n, k, &mut c);
		c
	}

	#[test]
	fn accepts_the_product_and_refuses_any_single_wrong_entry() {
		let (m, n, k) = (7, 5, 33);
		let a: Vec<i8> = (0..m * k).map(|v| (v * 37 % 255) as i8).collect();
		let bt: Vec<i8> = (0..n * k).map(|v| (v * 91 % 253) as i8).collect();
		let c = product(&a, &bt, m, n, k);
		assert!(holds(&a, &bt, &c, m, n, k));
		for at in 0..m * n {
			for delta in [1, -1, 1 << 20, i32::MIN] {
				let mut bad = c.clone();
				bad[at] = bad[at].wrapping_add(delta);
				assert!(!holds_with(&a, &bt, &bad, m, n, k, at as u64), "entry {at} off by {delta}");
			}
		}
	}

	#[test]
	fn wrong_sizes_are_refused() {
		assert!(!holds(&[1; 4], &[1; 4], &[4; 1], 1, 1, 3));
		assert!(holds(&[], &[], &[], 0, 0, 0));
	}
}
