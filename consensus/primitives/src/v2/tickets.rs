//! Every tile's ticket of one nonce, screened sixteen at a time.
//!
//! A nonce has `(m / t) * (n / t)` tickets, each a keyed BLAKE3 hash of 72
//! bytes ([`super::transcript::ticket`]): 1024 at `512 x 512`, 262 144 at
//! `8192 x 8192`, about 100 ns each one at a time on a CPU core. Nearly all
//! of them lose, and whether one can win shows in its first four bytes: a
//! ticket whose first four bytes (big-endian, as the target compares) lie
//! above the target's cannot be at or below it. So the miner hashes sixteen
//! tiles at once, one per 32-bit lane of an AVX-512 register (the same two
//! compressions BLAKE3 runs, written out lane-wise), keeps the few whose
//! first word passes, and hashes those again with [`super::transcript::ticket`]
//! for the whole comparison. The screen decides nothing: it only skips
//! tiles that lose, and it is tested to give BLAKE3's bytes.

use super::transcript::{ticket, State, STATE_WORDS};
use crate::Hash32;
use alloc::vec::Vec;

// The lanes read 16 state words: 8 bytes of `i` and `j`, then 56 in the
// first block and 8 in the second.
const _: () = assert!(STATE_WORDS == 16);

/// The indices of `states` (row-major by tile, `tiles_n` tiles a row) whose
/// ticket under `key` has its first four bytes, read big-endian, at most
/// `top`: every tile whose ticket can lie at or below a target whose first
/// four bytes are `top`, in order. (A caller compares each in full.)
pub fn screen(key: &Hash32, tiles_n: u32, states: &[State], top: u32) -> Vec<usize> {
	let mut out = Vec::new();
	// Tiles from `from` on are hashed one at a time.
	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	let from = if x86::available() { states.len() / 16 * 16 } else { 0 };
	#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
	let from = 0;
	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	{
		for base in (0..from).step_by(16) {
			// SAFETY: AVX-512 F and BW are present; 16 states from `base`.
			let passed = unsafe { x86::first_words_at_most(key, tiles_n, &states[base..base + 16], base, top) };
			out.extend((0..16).filter(|l| passed & (1 << l) != 0).map(|l| base + l));
		}
	}
	for (idx, state) in states.iter().enumerate().skip(from) {
		let (i, j) = tile_of(idx, tiles_n);
		let d = ticket(key, i, j, state);
		if u32::from_be_bytes([d[0], d[1], d[2], d[3]]) <= top {
			out.push(idx);
		}
	}
	out
}

/// Tile `(i, j)` of index `idx` (row-major, `tiles_n` a row).
fn tile_of(idx: usize, tiles_n: u32) -> (u32, u32) {
	(idx as u32 / tiles_n, idx as u32 % tiles_n)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod x86 {
	use super::{tile_of, State};
	use crate::Hash32;
	use core::arch::x86_64::*;

	/// BLAKE3's initialisation vector.
	const IV: [u32; 8] =
		[0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19];

	/// BLAKE3's flags: first and last block of a chunk, the root, a keyed hash.
	const CHUNK_START: u32 = 1;
	const CHUNK_END: u32 = 2;
	const ROOT: u32 = 8;
	const KEYED_HASH: u32 = 16;

	/// The message words each of BLAKE3's seven rounds reads, in order
	/// (its message permutation applied round after round).
	const SCHEDULE: [[usize; 16]; 7] = {
		const PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
		let mut s = [[0; 16]; 7];
		let mut i = 0;
		while i < 16 {
			s[0][i] = i;
			i += 1;
		}
		let mut round = 1;
		while round < 7 {
			let mut i = 0;
			while i < 16 {
				s[round][i] = s[round - 1][PERMUTATION[i]];
				i += 1;
			}
			round += 1;
		}
		s
	};

	pub(super) fn available() -> bool {
		std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
	}

	/// The mask of the lanes (tiles `base ..`, `states` sixteen of them)
	/// whose ticket's first four bytes, big-endian, are at most `top`.
	///
	/// # Safety
	/// AVX-512 F and BW present; `states.len() == 16`.
	#[target_feature(enable = "avx512f,avx512bw")]
	pub(super) unsafe fn first_words_at_most(
		key: &Hash32,
		tiles_n: u32,
		states: &[State],
		base: usize,
		top: u32,
	) -> u16 {
		let h = hashes(key, tiles_n, states, base);
		// The first word, little-endian in the hash, read big-endian.
		let swap = _mm512_set4_epi32(0x0c0d_0e0f, 0x0809_0a0b, 0x0405_0607, 0x0001_0203);
		_mm512_cmple_epu32_mask(_mm512_shuffle_epi8(h[0], swap), _mm512_set1_epi32(top as i32))
	}

	/// The eight words of sixteen tiles' tickets, lane `l` being tile
	/// `base + l`: `keyed_hash(key, i || j || state)`, 72 bytes in two
	/// blocks of one chunk.
	///
	/// # Safety
	/// As [`first_words_at_most`].
	#[target_feature(enable = "avx512f,avx512bw")]
	pub(super) unsafe fn hashes(key: &Hash32, tiles_n: u32, states: &[State], base: usize) -> [__m512i; 8] {
		assert_eq!(states.len(), 16, "tickets: sixteen states");
		let (mut is, mut js) = ([0u32; 16], [0u32; 16]);
		for l in 0..16 {
			(is[l], js[l]) = tile_of(base + l, tiles_n);
		}
		let load = |v: &[u32; 16]| _mm512_loadu_si512(v.as_ptr() as *const __m512i);
		// Word w of every lane's state: 16 words a state, 4 bytes a word.
		let lanes = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
		let base_ptr = states.as_ptr() as *const i32;
		let word = |w: i32| _mm512_i32gather_epi32::<4>(_mm512_add_epi32(lanes, _mm512_set1_epi32(w)), base_ptr);
		let mut first = [_mm512_setzero_si512(); 16];
		first[0] = load(&is);
		first[1] = load(&js);
		for (w, m) in first.iter_mut().enumerate().skip(2) {
			*m = word(w as i32 - 2);
		}
		let mut last = [_mm512_setzero_si512(); 16];
		last[0] = word(14);
		last[1] = word(15);
		let mut cv = [_mm512_setzero_si512(); 8];
		for (v, bytes) in cv.iter_mut().zip(key.chunks_exact(4)) {
			*v = _mm512_set1_epi32(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as i32);
		}
		let cv = compress(&cv, &first, 64, KEYED_HASH | CHUNK_START);
		compress(&cv, &last, 8, KEYED_HASH | CHUNK_END | ROOT)
	}

	/// BLAKE3's compression of one block (counter 0) in every lane: the
	/// new chaining value, which for the root block is the hash.
	#[inline(always)]
	unsafe fn compress(cv: &[__m512i; 8], m: &[__m512i; 16], block_len: u32, flags: u32) -> [__m512i; 8] {
		let set = |v: u32| _mm512_set1_epi32(v as i32);
		let mut v = [
			cv[0],
			cv[1],
			cv[2],
			cv[3],
			cv[4],
			cv[5],
			cv[6],
			cv[7],
			set(IV[0]),
			set(IV[1]),
			set(IV[2]),
			set(IV[3]),
			set(0),
			set(0),
			set(block_len),
			set(flags),
		];
		for s in SCHEDULE {
			g(&mut v, (0, 4, 8, 12), m[s[0]], m[s[1]]);
			g(&mut v, (1, 5, 9, 13), m[s[2]], m[s[3]]);
			g(&mut v, (2, 6, 10, 14), m[s[4]], m[s[5]]);
			g(&mut v, (3, 7, 11, 15), m[s[6]], m[s[7]]);
			g(&mut v, (0, 5, 10, 15), m[s[8]], m[s[9]]);
			g(&mut v, (1, 6, 11, 12), m[s[10]], m[s[11]]);
			g(&mut v, (2, 7, 8, 13), m[s[12]], m[s[13]]);
			g(&mut v, (3, 4, 9, 14), m[s[14]], m[s[15]]);
		}
		core::array::from_fn(|i| _mm512_xor_si512(v[i], v[i + 8]))
	}

	/// BLAKE3's quarter-round on state words `(a, b, c, d)` with message
	/// words `x` and `y`.
	#[inline(always)]
	unsafe fn g(v: &mut [__m512i; 16], (a, b, c, d): (usize, usize, usize, usize), x: __m512i, y: __m512i) {
		v[a] = _mm512_add_epi32(_mm512_add_epi32(v[a], v[b]), x);
		v[d] = _mm512_ror_epi32::<16>(_mm512_xor_si512(v[d], v[a]));
		v[c] = _mm512_add_epi32(v[c], v[d]);
		v[b] = _mm512_ror_epi32::<12>(_mm512_xor_si512(v[b], v[c]));
		v[a] = _mm512_add_epi32(_mm512_add_epi32(v[a], v[b]), y);
		v[d] = _mm512_ror_epi32::<8>(_mm512_xor_si512(v[d], v[a]));
		v[c] = _mm512_add_epi32(v[c], v[d]);
		v[b] = _mm512_ror_epi32::<7>(_mm512_xor_si512(v[b], v[c]));
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn states(count: usize, seed: u32) -> Vec<State> {
		(0..count)
			.map(|s| {
				core::array::from_fn(|w| (s as u32 * 16 + w as u32 + seed).wrapping_mul(0x9e37_79b9).rotate_left(7))
			})
			.collect()
	}

	/// The lanes give BLAKE3's own bytes for every word of the hash, at
	/// tile numbers past one byte and with `i` and `j` both varying.
	#[cfg(all(feature = "std", target_arch = "x86_64"))]
	#[test]
	fn sixteen_lanes_hash_as_blake3_does() {
		if !x86::available() {
			return;
		}
		let key: Hash32 = core::array::from_fn(|b| (b * 37 + 5) as u8);
		let (tiles_n, all) = (7, states(48, 3));
		for base in [0, 16, 32] {
			let chunk = &all[base..base + 16];
			let words = unsafe { x86::hashes(&key, tiles_n, chunk, 1000 + base) };
			let mut lanes = [[0u32; 16]; 8];
			for (w, v) in words.iter().enumerate() {
				unsafe { core::arch::x86_64::_mm512_storeu_si512(lanes[w].as_mut_ptr() as *mut _, *v) };
			}
			for (l, state) in chunk.iter().enumerate() {
				let idx = 1000 + base + l;
				let want = ticket(&key, idx as u32 / tiles_n, idx as u32 % tiles_n, state);
				let got: Vec<u8> = (0..8).flat_map(|w| lanes[w][l].to_le_bytes()).collect();
				assert_eq!(got, want, "lane {l} of tiles from {base}");
			}
		}
	}

	/// The screen keeps exactly the tiles whose first four bytes pass, on
	/// any CPU, for counts that are not whole sixteens, and for the
	/// extremes of `top`.
	#[test]
	fn the_screen_keeps_exactly_what_can_win() {
		let key = [9u8; 32];
		for count in [0, 5, 16, 37, 1024] {
			let s = states(count, 11);
			let firsts: Vec<u32> = (0..count)
				.map(|idx| {
					let d = ticket(&key, idx as u32 / 32, idx as u32 % 32, &s[idx]);
					u32::from_be_bytes([d[0], d[1], d[2], d[3]])
				})
				.collect();
			let mut sorted = firsts.clone();
			sorted.sort();
			let median = sorted.get(count / 2).copied().unwrap_or(0);
			for top in [0, 1 << 24, median, u32::MAX - 1, u32::MAX] {
				let want: Vec<usize> = (0..count).filter(|&i| firsts[i] <= top).collect();
				assert_eq!(screen(&key, 32, &s, top), want, "{count} tiles, top {top:#x}");
			}
		}
		assert_eq!(screen(&key, 32, &states(40, 1), u32::MAX), (0..40).collect::<Vec<_>>());
	}
}
