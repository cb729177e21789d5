//! How a job of any shape becomes puzzle-shaped pieces, and how the pieces'
//! products add up to the job's.
//!
//! A job multiplies `A` (`rows x depth`) by `B` (`depth x cols`); the chain's
//! puzzle multiplies `m x k` by `k x n`. A [`Block`] is a box of the job's
//! index space (rows, cols, depth); one no larger than `m x n x k` is one
//! piece, mined as one nonce: its `A` and `Bt` slices are copied into
//! puzzle-sized matrices, zero-padded (zero is inside v2's input range and
//! adds nothing to the product), and the piece's product is added into the
//! job's `C` over its rows and columns. Pieces along `depth` are partial
//! sums of the same outputs.
//!
//! Blocks are split lazily, against the shape in force when a lane asks for
//! one, so a job that outlives a parameter change goes on in the new shape.
//!
//! **Salt.** A winning piece's seal publishes the Merkle roots of its `A` and
//! `Bt` and the sibling hashes on the opened rows' paths: unsalted, anyone
//! could test a guess of an unopened `t`-row block against them (zero
//! padding, a block repeated across jobs). So each piece gives up its last
//! two columns ([`SALT_COLUMNS`]): column `k-1` holds random values in every
//! row of `A` and zeros in `Bt`, column `k-2` zeros in `A` and random values
//! in every row of `Bt`. Each product term there is zero, so the product is
//! unchanged, and every `t`-row block of either matrix carries `t` random
//! 7-bit values. Costs `2/k` of each piece (0.05% at `k = 4096`).

use mlpow_primitives::ChallengeParams;
use std::{
	borrow::Cow,
	ops::Range,
	sync::atomic::Ordering,
	time::{SystemTime, UNIX_EPOCH},
};

/// A box of a job's index space: output rows, output columns, and the
/// stretch of the inner dimension it sums over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
	pub rows: Range<usize>,
	pub cols: Range<usize>,
	pub depth: Range<usize>,
}

/// Columns of each piece that hold salt instead of the job's data.
pub const SALT_COLUMNS: usize = 2;

/// The puzzle's shape: `m` rows of `A`, `n` rows of `Bt`, inner dimension
/// `k`, of which `depth` carry the job's data (the rest is salt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PuzzleShape {
	pub m: usize,
	pub n: usize,
	pub k: usize,
	pub depth: usize,
}

impl From<&ChallengeParams> for PuzzleShape {
	fn from(p: &ChallengeParams) -> Self {
		// Valid parameters have k >= 16 (a multiple of t).
		let k = p.k as usize;
		Self { m: p.m as usize, n: p.n as usize, k, depth: k.saturating_sub(SALT_COLUMNS).max(1) }
	}
}

/// Salts a piece's padded `a` and `bt` (`k` wide): random 7-bit values in
/// column `k-1` of every row of `a` and column `k-2` of every row of `bt`,
/// whose counterparts stay zero (the module docs say why).
pub fn salt(a: &mut [i8], bt: &mut [i8], k: usize, random: &mut impl FnMut() -> i8) {
	salt_a(a, k, random);
	salt_bt(bt, k, random);
}

/// [`salt`]'s half for `a` alone: column `k-1` (a piece whose `Bt` was
/// salted before, a registered weight's).
pub fn salt_a(a: &mut [i8], k: usize, random: &mut impl FnMut() -> i8) {
	debug_assert!(k >= SALT_COLUMNS);
	for row in a.chunks_exact_mut(k) {
		row[k - 1] = random();
	}
}

/// [`salt`]'s half for `bt` alone: column `k-2`.
pub fn salt_bt(bt: &mut [i8], k: usize, random: &mut impl FnMut() -> i8) {
	debug_assert!(k >= SALT_COLUMNS);
	for row in bt.chunks_exact_mut(k) {
		row[k - 2] = random();
	}
}

/// Unpredictable 7-bit values for the pieces' salt: BLAKE3's XOF keyed by 32
/// bytes from the operating system, one stream per piece. (A salt an
/// outsider could predict would not hide anything.)
pub struct Salt {
	key: [u8; 32],
	next: std::sync::atomic::AtomicU64,
}

impl Salt {
	pub fn new() -> Self {
		let mut key = [0u8; 32];
		let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key));
		if from_os.is_err() {
			// No /dev/urandom: std's hasher keys, which are random per process.
			use std::hash::{BuildHasher, Hasher};
			for chunk in key.chunks_mut(8) {
				let mut h = std::collections::hash_map::RandomState::new().build_hasher();
				h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
				chunk.copy_from_slice(&h.finish().to_le_bytes());
			}
		}
		Self { key, next: std::sync::atomic::AtomicU64::new(0) }
	}

	/// A fresh stream of values in `-64..=63`.
	pub fn stream(&self) -> impl FnMut() -> i8 {
		let n = self.next.fetch_add(1, Ordering::Relaxed);
		let mut xof = blake3::Hasher::new_keyed(&self.key).update(&n.to_le_bytes()).finalize_xof();
		let (mut buf, mut used) = ([0u8; 64], 64);
		move || {
			if used == buf.len() {
				xof.fill(&mut buf);
				used = 0;
			}
			used += 1;
			(buf[used - 1] as i8) >> 1
		}
	}
}

impl Salt {
	/// 32 fresh secret bytes: the seed of a piece salted on the device
	/// (kernels/device.cu), from the next stream.
	pub fn seed(&self) -> [u8; 32] {
		let n = self.next.fetch_add(1, Ordering::Relaxed);
		let mut seed = [0u8; 32];
		blake3::Hasher::new_keyed(&self.key)
			.update(&n.to_le_bytes())
			.update(b"device seed")
			.finalize_xof()
			.fill(&mut seed);
		seed
	}
}

impl Default for Salt {
	fn default() -> Self {
		Self::new()
	}
}

impl Block {
	/// Multiply-accumulates of the job this block computes.
	pub fn macs(&self) -> u64 {
		self.rows.len() as u64 * self.cols.len() as u64 * self.depth.len() as u64
	}

	/// Whether the block is one piece of `shape`.
	pub fn fits(&self, shape: PuzzleShape) -> bool {
		self.rows.len() <= shape.m && self.cols.len() <= shape.n && self.depth.len() <= shape.depth
	}

	/// The block cut in two along its first dimension too long for
	/// `shape` (rows, then columns, then depth): the front part, of the
	/// shape's size in that dimension, and the rest. Peeling repeatedly
	/// yields the pieces of [`Block::split`], in its order.
	pub fn peel(&self, shape: PuzzleShape) -> (Block, Block) {
		let cut = |r: &Range<usize>, size: usize| (r.start..r.start + size, r.start + size..r.end);
		if self.rows.len() > shape.m {
			let (front, rest) = cut(&self.rows, shape.m);
			(Block { rows: front, ..self.clone() }, Block { rows: rest, ..self.clone() })
		} else if self.cols.len() > shape.n {
			let (front, rest) = cut(&self.cols, shape.n);
			(Block { cols: front, ..self.clone() }, Block { cols: rest, ..self.clone() })
		} else {
			let (front, rest) = cut(&self.depth, shape.depth.min(self.depth.len()));
			(Block { depth: front, ..self.clone() }, Block { depth: rest, ..self.clone() })
		}
	}

	/// The block cut into pieces of `shape`, depth innermost (so consecutive
	/// pieces add into the same outputs and finish them one block at a time).
	pub fn split(&self, shape: PuzzleShape) -> Vec<Block> {
		let cuts = |r: &Range<usize>, size: usize| {
			(r.start..r.end).step_by(size.max(1)).map(move |s| s..(s + size).min(r.end)).collect::<Vec<_>>()
		};
		let mut out = Vec::new();
		for rows in cuts(&self.rows, shape.m) {
			for cols in cuts(&self.cols, shape.n) {
				for depth in cuts(&self.depth, shape.depth) {
					out.push(Block { rows: rows.clone(), cols: cols.clone(), depth });
				}
			}
		}
		out
	}
}

/// Copies `range_rows x depth` of `matrix` (`_ x width`, row-major) into a
/// zero-padded `height x k` matrix: a piece's `A` (from the job's `A`) or
/// `Bt` (from the job's `Bt`).
pub fn padded(
	matrix: &[i8],
	width: usize,
	rows: &Range<usize>,
	depth: &Range<usize>,
	height: usize,
	k: usize,
) -> Vec<i8> {
	assert!(rows.len() <= height && depth.len() <= k, "padded: a block larger than its piece");
	// Row by row, each written once (no zeroing pass first: a piece is
	// megabytes, and for a whole piece every byte is the matrix's).
	let mut out = Vec::with_capacity(height * k);
	for row in rows.clone() {
		out.extend_from_slice(&matrix[row * width..][depth.clone()]);
		out.resize(out.len() + k - depth.len(), 0);
	}
	out.resize(height * k, 0);
	out
}

/// The plain product of `block` (rows `x` cols over its depth) of a job's
/// `a` (`_ x depth`) and `bt` (`_ x depth`), `rows x cols` row-major: what
/// is not worth a nonce (a thin depth remainder, a small call).
pub fn plain_product(a: &[i8], bt: &[i8], depth: usize, block: &Block) -> Vec<i32> {
	let (rows, cols) = (block.rows.len(), block.cols.len());
	let mut product = vec![0i32; rows * cols];
	add_plain_product(a, bt, depth, block, Out { c: &mut product, cols, at: (0, 0) });
	product
}

/// Where a block's product is added: `c` (`cols` wide), the block's first
/// row and column landing at `at`.
pub struct Out<'c> {
	pub c: &'c mut [i32],
	pub cols: usize,
	pub at: (usize, usize),
}

/// Adds [`plain_product`] into `out`; a thin block's straight into it.
pub fn add_plain_product(a: &[i8], bt: &[i8], depth: usize, block: &Block, out: Out) {
	let (rows, cols, inner) = (block.rows.len(), block.cols.len(), block.depth.len());
	let (r0, c0) = out.at;
	let inside = c0 + cols <= out.cols && (r0 + rows) * out.cols <= out.c.len();
	assert!(inside, "add_plain_product: the block lies outside its output");
	if inner < THIN_DEPTH {
		return thin_product(a, bt, depth, block, out);
	}
	let (a_rows, bt_rows) =
		(rows_of(a, depth, &block.rows, &block.depth), rows_of(bt, depth, &block.cols, &block.depth));
	let mut product = vec![0i32; rows * cols];
	mlpow_primitives::kernel::gemm(&a_rows, &bt_rows, rows, cols, inner, &mut product);
	let at = Block { rows: r0..r0 + rows, cols: c0..c0 + cols, depth: block.depth.clone() };
	accumulate(out.c, out.cols, &at, &product, cols);
}

/// `rows x inner` of `matrix` (`_ x depth`, row-major): over the whole
/// depth the rows are contiguous and nothing is copied.
fn rows_of<'m>(matrix: &'m [i8], depth: usize, rows: &Range<usize>, inner: &Range<usize>) -> Cow<'m, [i8]> {
	if inner.len() == depth {
		Cow::Borrowed(&matrix[rows.start * depth..rows.end * depth])
	} else {
		Cow::Owned(padded(matrix, depth, rows, inner, rows.len(), inner.len()))
	}
}

/// Below this depth a plain product is a sum of `inner` outer products,
/// added straight into the output: the AVX2 and portable kernels pay a
/// horizontal sum for every output, which at the depth of a salted piece's
/// remainder (2) cost more than a mined piece, and any kernel a product
/// to allocate, zero and add.
const THIN_DEPTH: usize = 64;

/// [`add_plain_product`] of a thin block: for each of its `inner` columns
/// of `A`, that column times the same row of `B`, added row by row
/// (contiguous runs that the compiler vectorises, for AVX2 where the CPU
/// has it).
fn thin_product(a: &[i8], bt: &[i8], depth: usize, block: &Block, out: Out) {
	#[cfg(target_arch = "x86_64")]
	if std::is_x86_feature_detected!("avx2") {
		// SAFETY: AVX2 is present (checked just above).
		return unsafe { thin_product_avx2(a, bt, depth, block, out) };
	}
	thin_product_portable(a, bt, depth, block, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn thin_product_avx2(a: &[i8], bt: &[i8], depth: usize, block: &Block, out: Out) {
	thin_product_portable(a, bt, depth, block, out)
}

#[inline(always)]
fn thin_product_portable(a: &[i8], bt: &[i8], depth: usize, block: &Block, out: Out) {
	let cols = block.cols.len();
	// B's rows over the block's depth (`Bt`'s columns), 16-bit for the products.
	let mut b = vec![0i16; block.depth.len() * cols];
	for (j, y) in block.cols.clone().enumerate() {
		for (i, z) in block.depth.clone().enumerate() {
			b[i * cols + j] = bt[y * depth + z] as i16;
		}
	}
	let (r0, c0) = out.at;
	for (o, x) in block.rows.clone().enumerate() {
		let row = &mut out.c[(r0 + o) * out.cols + c0..][..cols];
		for (i, z) in block.depth.clone().enumerate() {
			let av = a[x * depth + z] as i16;
			for (d, &bv) in row.iter_mut().zip(&b[i * cols..][..cols]) {
				*d = d.wrapping_add(av as i32 * bv as i32);
			}
		}
	}
}

/// Adds a piece's product (`n` columns wide, padded) into the job's `C`
/// (`cols_total` wide) over the block's rows and columns.
pub fn accumulate(c: &mut [i32], cols_total: usize, block: &Block, product: &[i32], n: usize) {
	for (i, row) in block.rows.clone().enumerate() {
		let src = &product[i * n..][..block.cols.len()];
		for (d, s) in c[row * cols_total..][block.cols.clone()].iter_mut().zip(src) {
			*d = d.wrapping_add(*s);
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	const SHAPE: PuzzleShape = PuzzleShape { m: 4, n: 3, k: 7, depth: 5 };

	#[test]
	fn plain_products_of_blocks_are_exact_thin_or_not() {
		// A job of 37 x 150 by 150 x 41; blocks inside it, thin (the outer
		// products) and deep (the kernel), over part of the depth or all.
		let (rows, depth, cols) = (37, 150, 41);
		let value = |i: usize, s: usize| ((i * 2654435761 + s) >> 7) as u8 as i8;
		let a: Vec<i8> = (0..rows * depth).map(|i| value(i, 1)).collect();
		let bt: Vec<i8> = (0..cols * depth).map(|i| value(i, 2)).collect();
		let blocks = [
			Block { rows: 3..35, cols: 1..40, depth: 148..150 },
			Block { rows: 0..37, cols: 0..41, depth: 0..63 },
			Block { rows: 5..6, cols: 7..23, depth: 10..74 },
			Block { rows: 0..37, cols: 0..41, depth: 0..150 },
		];
		for block in blocks {
			let (r, c, d) = (block.rows.len(), block.cols.len(), block.depth.len());
			let pa = padded(&a, depth, &block.rows, &block.depth, r, d);
			let pbt = padded(&bt, depth, &block.cols, &block.depth, c, d);
			let mut want = vec![0; r * c];
			mlpow_primitives::kernel::gemm_naive(&pa, &pbt, r, c, d, &mut want);
			assert_eq!(plain_product(&a, &bt, depth, &block), want, "{block:?}");
			// Added into a wider output at an offset, onto what it held.
			let (wide, at) = (c + 5, (2, 3));
			let mut out = vec![7i32; (r + 4) * wide];
			add_plain_product(&a, &bt, depth, &block, Out { c: &mut out, cols: wide, at });
			for (i, row) in out.chunks(wide).enumerate() {
				for (j, &v) in row.iter().enumerate() {
					let inside = (at.0..at.0 + r).contains(&i) && (at.1..at.1 + c).contains(&j);
					let expect = if inside { 7 + want[(i - at.0) * c + j - at.1] } else { 7 };
					assert_eq!(v, expect, "{block:?} at {i},{j}");
				}
			}
		}
		// The extremes: -128 * -128 in every term of a thin block.
		let block = Block { rows: 0..4, cols: 0..4, depth: 0..63 };
		assert_eq!(plain_product(&[-128; 4 * 63], &[-128; 4 * 63], 63, &block), vec![63 * 16384; 16]);
	}

	#[test]
	fn pieces_cover_the_job_exactly_once() {
		let whole = Block { rows: 0..10, cols: 0..7, depth: 0..11 };
		let pieces = whole.split(SHAPE);
		assert_eq!(pieces.len(), 3 * 3 * 3);
		assert!(pieces.iter().all(|p| p.fits(SHAPE) && !p.rows.is_empty() && !p.depth.is_empty()));
		assert_eq!(pieces.iter().map(Block::macs).sum::<u64>(), whole.macs());
		let mut seen = vec![0u8; 10 * 7 * 11];
		for p in &pieces {
			for r in p.rows.clone() {
				for c in p.cols.clone() {
					for d in p.depth.clone() {
						seen[(r * 7 + c) * 11 + d] += 1;
					}
				}
			}
		}
		assert!(seen.iter().all(|&s| s == 1));
		// A block that already fits is one piece.
		assert_eq!(pieces[0].split(SHAPE), vec![pieces[0].clone()]);
		// Peeling (as the queue does) yields the same pieces in the same order.
		let mut pending = std::collections::VecDeque::from([whole]);
		let mut peeled = Vec::new();
		while let Some(mut block) = pending.pop_front() {
			while !block.fits(SHAPE) {
				let (front, rest) = block.peel(SHAPE);
				assert!(pending.len() < 3, "at most three remainders wait");
				pending.push_front(rest);
				block = front;
			}
			peeled.push(block);
		}
		assert_eq!(peeled, pieces);
	}

	/// The pieces' padded products, accumulated, are the job's product:
	/// the plan's arithmetic against a direct triple loop.
	#[test]
	fn padded_pieces_add_up_to_the_product() {
		let (rows, depth, cols) = (9, 12, 7);
		let a: Vec<i8> = (0..rows * depth).map(|i| ((i * 37 + 11) % 128) as i8 - 64).collect();
		let bt: Vec<i8> = (0..cols * depth).map(|i| ((i * 53 + 5) % 128) as i8 - 64).collect();
		let mut c = vec![0i32; rows * cols];
		for p in (Block { rows: 0..rows, cols: 0..cols, depth: 0..depth }).split(SHAPE) {
			let mut pa = padded(&a, depth, &p.rows, &p.depth, SHAPE.m, SHAPE.k);
			let mut pb = padded(&bt, depth, &p.cols, &p.depth, SHAPE.n, SHAPE.k);
			// Salt at the extremes of the range: it still adds nothing.
			let mut extremes = [-64i8, 63].into_iter().cycle();
			salt(&mut pa, &mut pb, SHAPE.k, &mut || extremes.next().unwrap());
			assert!(pa.chunks(SHAPE.k).all(|row| row[SHAPE.k - 1] != 0 && row[SHAPE.k - 2] == 0));
			assert!(pb.chunks(SHAPE.k).all(|row| row[SHAPE.k - 2] != 0 && row[SHAPE.k - 1] == 0));
			let product: Vec<i32> = (0..SHAPE.m * SHAPE.n)
				.map(|e| {
					let (x, y) = (e / SHAPE.n, e % SHAPE.n);
					(0..SHAPE.k).map(|z| pa[x * SHAPE.k + z] as i32 * pb[y * SHAPE.k + z] as i32).sum()
				})
				.collect();
			accumulate(&mut c, cols, &p, &product, SHAPE.n);
		}
		for x in 0..rows {
			for y in 0..cols {
				let want: i32 = (0..depth).map(|z| a[x * depth + z] as i32 * bt[y * depth + z] as i32).sum();
				assert_eq!(c[x * cols + y], want, "C[{x}][{y}]");
			}
		}
	}
}
