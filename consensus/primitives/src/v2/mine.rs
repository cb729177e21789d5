//! The reference v2 miner: a job (the matrices), then nonces over it.
//!
//! Each nonce draws new noise, computes the noisy product `A' * Bt'^T` with
//! every tile's transcript folded in ([`super::fused`]), hashes each tile's
//! state into a ticket, and can remove the noise again:
//! `A * Bt^T = A' * Bt'^T - A * G^T - E * Bt'^T`, where both corrections have
//! rank `r` and cost `2 * m * n * r` multiply-accumulates in all, against
//! `m * n * k` for the product. So the miner keeps the exact product of its
//! own matrices, whatever the nonce.

use super::{
	commit::MerkleTree,
	denoise,
	fused::{Fused, Scratch, Shape},
	noise::{self, first_out_of_range, Commitments, Mode, Selections},
	seal, tickets,
	transcript::{ticket, ticket_key, State},
};
use crate::{
	params::{ChallengeParams, ParamsError, PUZZLE_V2},
	seal::Seal,
	stream::job_seed,
	ticket::target,
	verify::Verified,
	Hash32, U256,
};
use alloc::{sync::Arc, vec, vec::Vec};

/// Why a job or a search could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobError {
	/// The parameters break a rule.
	BadParams(ParamsError),
	/// The parameters are not v2.
	NotV2,
	/// `A` is not `m x k` or `Bt` not `n x k`: `(which, expected, got)` lengths.
	WrongSize(&'static str, usize, usize),
	/// A value outside `-64..=63`: `(which, index, value)`.
	OutOfRange(&'static str, usize, i8),
	/// Difficulty zero has no target.
	ZeroDifficulty,
	/// A seeded job was built for another header.
	OtherHeader,
	/// An operand committed for another shape (rows, `k` or `t`).
	OtherShape(&'static str),
}

impl core::fmt::Display for JobError {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		match self {
			Self::BadParams(e) => write!(f, "invalid challenge parameters: {e}"),
			Self::NotV2 => f.write_str("the challenge parameters are not puzzle v2"),
			Self::WrongSize(w, e, g) => write!(f, "{w} has {g} elements, expected {e}"),
			Self::OutOfRange(w, i, v) => write!(f, "{w}[{i}] = {v} is outside -64..=63"),
			Self::ZeroDifficulty => f.write_str("difficulty is zero"),
			Self::OtherHeader => f.write_str("a seeded job belongs to the header it was built for"),
			Self::OtherShape(w) => write!(f, "{w} was committed for another shape (its rows, k or t differ)"),
		}
	}
}

#[cfg(feature = "std")]
impl std::error::Error for JobError {}

enum Source {
	Seeded { pre_hash: Hash32, job_seed: Hash32, weights_seed: Hash32 },
	Chosen,
}

/// One matrix of a job, prepared for mining: its values (`rows x k`,
/// row-major, in `-64..=63`), and for a chosen matrix its Merkle tree over
/// `t`-row blocks.
///
/// Jobs hold operands by [`Arc`], so a matrix multiplied again and again
/// (a model's weight) is checked and committed once, and only the other
/// side is prepared per job.
pub struct Operand {
	rows: usize,
	k: usize,
	t: usize,
	values: Vec<i8>,
	tree: Option<MerkleTree>,
}

impl Operand {
	/// A chosen matrix of `rows x k` for parameters `params` (`rows` is `m`
	/// for an `A`, `n` for a `Bt`), committed: checked, transposed, and its
	/// Merkle tree built. `which` names it in errors ("A", "Bt").
	pub fn chosen(
		params: &ChallengeParams,
		which: &'static str,
		rows: usize,
		values: Vec<i8>,
	) -> Result<Self, JobError> {
		Self::chosen_with(params, which, rows, values, MerkleTree::build)
	}

	/// [`Self::chosen`] with the tree built by `tree(values, t, k)`, which
	/// must equal [`MerkleTree::build`]'s (a miner that hashes the leaves on
	/// many cores; a wrong tree only makes seals that fail verification).
	pub fn chosen_with(
		params: &ChallengeParams,
		which: &'static str,
		rows: usize,
		values: Vec<i8>,
		tree: impl FnOnce(&[i8], usize, usize) -> MerkleTree,
	) -> Result<Self, JobError> {
		check_params(params)?;
		let (k, t) = (params.k as usize, params.t as usize);
		check_matrix(which, &values, rows, k)?;
		let tree = tree(&values, t, k);
		Ok(Self { rows, k, t, values, tree: Some(tree) })
	}

	fn seeded(rows: usize, k: usize, t: usize, values: Vec<i8>) -> Self {
		Self { rows, k, t, values, tree: None }
	}

	/// The values, `rows x k` row-major.
	pub fn values(&self) -> &[i8] {
		&self.values
	}

	/// The Merkle root (all zeros for a seeded matrix, which is not committed).
	pub fn root(&self) -> Hash32 {
		self.tree.as_ref().map_or([0; 32], MerkleTree::root)
	}

	/// Whether this operand fits `params` as a matrix of `rows` rows.
	fn fits(&self, params: &ChallengeParams, rows: u32) -> bool {
		(self.rows, self.k, self.t) == (rows as usize, params.k as usize, params.t as usize)
	}

	/// Leaf `block` (`t` rows) and the sibling hashes on its path.
	fn opening(&self, block: u32) -> (&[i8], Vec<Hash32>) {
		let len = self.t * self.k;
		let path = self.tree.as_ref().map_or_else(Vec::new, |tree| tree.path(block));
		(&self.values[block as usize * len..][..len], path)
	}
}

/// The matrices a miner multiplies: `A` (`m x k`) and `Bt` (`n x k`, row `y`
/// being column `y` of `B`), in `-64..=63`.
pub struct Job {
	params: ChallengeParams,
	a: Arc<Operand>,
	bt: Arc<Operand>,
	source: Source,
}

impl Job {
	/// The seeded matrices of a header: nothing to open, small seals.
	pub fn seeded(params: &ChallengeParams, pre_hash: &Hash32, weights_seed: &Hash32) -> Result<Self, JobError> {
		check_params(params)?;
		let (m, n, k, t) = (params.m as usize, params.n as usize, params.k as usize, params.t as usize);
		let job = job_seed(pre_hash, weights_seed);
		let (mut a, mut bt) = (vec![0i8; m * k], vec![0i8; n * k]);
		noise::seeded_a(&job, params.k, 0, &mut a);
		noise::seeded_bt(weights_seed, params.k, 0, &mut bt);
		let source = Source::Seeded { pre_hash: *pre_hash, job_seed: job, weights_seed: *weights_seed };
		let (a, bt) = (Operand::seeded(m, k, t, a), Operand::seeded(n, k, t, bt));
		Ok(Self { params: *params, a: Arc::new(a), bt: Arc::new(bt), source })
	}

	/// The miner's own matrices, committed by Merkle roots over `t`-row blocks.
	pub fn chosen(params: &ChallengeParams, a: Vec<i8>, bt: Vec<i8>) -> Result<Self, JobError> {
		let a = Operand::chosen(params, "A", params.m as usize, a)?;
		let bt = Operand::chosen(params, "Bt", params.n as usize, bt)?;
		Self::of(params, Arc::new(a), Arc::new(bt))
	}

	/// A chosen job of operands committed before ([`Operand::chosen`]),
	/// which must have been made for `params`' shape (`m x k` and `n x k`,
	/// the same `t`).
	pub fn of(params: &ChallengeParams, a: Arc<Operand>, bt: Arc<Operand>) -> Result<Self, JobError> {
		check_params(params)?;
		for (which, operand, rows) in [("A", &a, params.m), ("Bt", &bt, params.n)] {
			if operand.tree.is_none() || !operand.fits(params, rows) {
				return Err(JobError::OtherShape(which));
			}
		}
		Ok(Self { params: *params, a, bt, source: Source::Chosen })
	}

	/// The parameters the job was made for.
	pub fn params(&self) -> &ChallengeParams {
		&self.params
	}

	/// Whether the matrices are seeded or the miner's own.
	pub fn mode(&self) -> Mode {
		match self.source {
			Source::Seeded { .. } => Mode::Seeded,
			Source::Chosen => Mode::Chosen,
		}
	}

	/// What the noise seed binds the matrices by.
	pub fn commitments(&self) -> Commitments {
		match &self.source {
			Source::Seeded { job_seed, weights_seed, .. } => Commitments { a: *job_seed, bt: *weights_seed },
			Source::Chosen => Commitments { a: self.a.root(), bt: self.bt.root() },
		}
	}

	/// `A`, `m x k` row-major.
	pub fn a(&self) -> &[i8] {
		&self.a.values
	}

	/// `Bt`, `n x k` row-major (row `y` is column `y` of `B`).
	pub fn bt(&self) -> &[i8] {
		&self.bt.values
	}

	/// The seal of ticket `id`, with its openings for a chosen job.
	pub fn seal(&self, id: &Seal) -> Vec<u8> {
		match &self.source {
			Source::Seeded { .. } => seal::encode_seeded(id),
			Source::Chosen => chosen_seal(id, &self.a, &self.bt),
		}
	}
}

/// The seal of ticket `id` of a chosen job over `a` and `bt`: the roots,
/// and the opened blocks `tile_i` of `A` and `tile_j` of `Bt` with their paths.
pub fn chosen_seal(id: &Seal, a: &Operand, bt: &Operand) -> Vec<u8> {
	let ((a_rows, a_path), (bt_rows, bt_path)) = (a.opening(id.tile_i), bt.opening(id.tile_j));
	seal::encode_chosen(id, (&a.root(), &bt.root()), a_rows, &a_path, bt_rows, &bt_path)
}

/// `matrix` holds `rows x k` values, each in `-64..=63`.
fn check_matrix(which: &'static str, matrix: &[i8], rows: usize, k: usize) -> Result<(), JobError> {
	match rows.checked_mul(k) {
		Some(len) if len == matrix.len() => {}
		len => return Err(JobError::WrongSize(which, len.unwrap_or(usize::MAX), matrix.len())),
	}
	match first_out_of_range(matrix) {
		Some(i) => Err(JobError::OutOfRange(which, i, matrix[i])),
		None => Ok(()),
	}
}

fn check_params(params: &ChallengeParams) -> Result<(), JobError> {
	params.validate().map_err(JobError::BadParams)?;
	if params.version != PUZZLE_V2 {
		return Err(JobError::NotV2);
	}
	Ok(())
}

/// A winning ticket and the seal that proves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Winner {
	/// The ticket: nonce, tile and value.
	pub verified: Verified,
	/// The seal bytes to submit (17 bytes, or more with openings).
	pub seal: Vec<u8>,
}

/// One nonce's noise, kept to remove it from the product afterwards.
struct NonceNoise {
	sel: Selections,
	/// `E_L`, `m x r`.
	e_l: Vec<i8>,
	/// `G_L`, `n x r`.
	g_l: Vec<i8>,
}

/// One nonce's noisy `A'` and `Bt'`, its product and the fused kernel's
/// scratch: allocated once and handed from one [`Miner`] to the next
/// ([`Miner::with_buffers`], [`Miner::into_buffers`]), so a miner that
/// starts a `Miner` per job piece does not allocate and zero them every
/// piece.
#[derive(Default)]
pub struct Buffers {
	a: Aligned,
	bt: Vec<i8>,
	c: Vec<i32>,
	scratch: Scratch,
}

/// Bytes whose first one starts a 64-byte cache line: the AMX kernel reads
/// `A'` in place only where its rows do, and copies it otherwise (a large
/// allocation starts 16 bytes into a line: 2 MiB a nonce at 512 x 4096).
#[derive(Default)]
struct Aligned {
	buf: Vec<i8>,
	skip: usize,
	len: usize,
}

impl Aligned {
	/// `len` bytes from a line's start (their values left as they were, or
	/// not: every nonce overwrites them).
	fn resize(&mut self, len: usize) {
		self.buf.resize(len + 63, 0);
		self.skip = self.buf.as_ptr().align_offset(64).min(63);
		self.len = len;
	}

	fn get(&self) -> &[i8] {
		&self.buf[self.skip..][..self.len]
	}

	fn get_mut(&mut self) -> &mut [i8] {
		&mut self.buf[self.skip..][..self.len]
	}
}

/// Mining state for one job under one header.
pub struct Miner<'j> {
	job: &'j Job,
	pre_hash: Hash32,
	target: U256,
	kernel: Fused,
	a: Aligned,
	bt: Vec<i8>,
	c: Vec<i32>,
	states: Vec<State>,
	scratch: Scratch,
	noise: Option<NonceNoise>,
}

impl<'j> Miner<'j> {
	/// Mining `job` for the header with `pre_hash` at `difficulty`; a seeded job only for the header it was made for.
	pub fn new(job: &'j Job, pre_hash: &Hash32, difficulty: U256) -> Result<Self, JobError> {
		Self::with_buffers(job, pre_hash, difficulty, Buffers::default())
	}

	/// Like [`Self::new`], reusing `buffers` (resized only if the shape
	/// changed; every nonce overwrites their contents before reading them).
	pub fn with_buffers(job: &'j Job, pre_hash: &Hash32, difficulty: U256, buffers: Buffers) -> Result<Self, JobError> {
		let target = target(difficulty).ok_or(JobError::ZeroDifficulty)?;
		if let Source::Seeded { pre_hash: built_for, .. } = &job.source {
			if built_for != pre_hash {
				return Err(JobError::OtherHeader);
			}
		}
		let p = job.params;
		let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
		let Buffers { mut a, mut bt, mut c, scratch } = buffers;
		a.resize(m * k);
		bt.resize(n * k, 0);
		c.resize(m * n, 0);
		Ok(Self {
			job,
			pre_hash: *pre_hash,
			target,
			kernel: Fused::best(),
			a,
			bt,
			c,
			states: vec![[0; 16]; p.tickets_per_nonce() as usize],
			scratch,
			noise: None,
		})
	}

	/// Gives the buffers back for the next miner.
	pub fn into_buffers(self) -> Buffers {
		Buffers { a: self.a, bt: self.bt, c: self.c, scratch: self.scratch }
	}

	/// Uses a specific fused kernel (tests and benchmarks).
	pub fn with_kernel(mut self, kernel: Fused) -> Self {
		self.kernel = kernel;
		self
	}

	/// Mines one nonce: new noise, the noisy product with every transcript,
	/// every tile's ticket. Returns the winners (usually none) with their seals.
	pub fn try_nonce(&mut self, nonce: u64) -> Vec<Winner> {
		let p = self.job.params;
		let r = p.r as usize;
		let seed = noise::noise_seed(&self.pre_hash, &p, self.job.mode(), &self.job.commitments(), nonce);
		let sel = Selections::generate(&seed, p.k, p.r);
		let mut e_l = vec![0i8; p.m as usize * r];
		let mut g_l = vec![0i8; p.n as usize * r];
		noise::noise_a_rows(&seed, p.r, 0, &mut e_l);
		noise::noise_bt_rows(&seed, p.r, 0, &mut g_l);
		noise::noisy_copy(self.a.get_mut(), &self.job.a.values, &e_l, &sel.a, r);
		noise::noisy_copy(&mut self.bt, &self.job.bt.values, &g_l, &sel.bt, r);
		self.kernel.run_with(&mut self.scratch, self.a.get(), &self.bt, Shape::of(&p), &mut self.c, &mut self.states);
		self.noise = Some(NonceNoise { sel, e_l, g_l });
		let key = ticket_key(&seed);
		let tiles_n = p.tiles_n();
		let mut wins = Vec::new();
		// Only tiles whose ticket's first four bytes are at most the
		// target's can win; each of those is hashed and compared in full.
		let top = (self.target >> 224).low_u32();
		for idx in tickets::screen(&key, tiles_n, &self.states, top) {
			let (i, j) = (idx as u32 / tiles_n, idx as u32 % tiles_n);
			let digest = ticket(&key, i, j, &self.states[idx]);
			if U256::from_big_endian(&digest) <= self.target {
				let id = Seal { nonce, tile_i: i, tile_j: j };
				wins.push(Winner { verified: Verified { seal: id, digest }, seal: self.job.seal(&id) });
			}
		}
		wins
	}

	/// The first winner over `nonces`, in nonce then tile order.
	pub fn search(&mut self, nonces: core::ops::Range<u64>) -> Option<Winner> {
		nonces.into_iter().find_map(|nonce| self.try_nonce(nonce).into_iter().next())
	}

	/// The noisy product `A' * Bt'^T` of the last nonce (`m x n`); empty
	/// before the first (the buffers may hold another miner's).
	pub fn noisy_product(&self) -> &[i32] {
		if self.noise.is_none() {
			return &[];
		}
		&self.c
	}

	/// The folded states of the last nonce's tiles, row-major by tile.
	pub fn states(&self) -> &[State] {
		&self.states
	}

	/// The exact product `A * Bt^T` (`m x n`), recovered from the last
	/// nonce's noisy product; `None` before the first nonce.
	///
	/// `C = C' - (A * S'^T) * G_L^T - E_L * (S * Bt'^T)` ([`denoise`]): two
	/// products of inner dimension `r`, `2 * m * n * r` MACs in all.
	pub fn denoised(&self) -> Option<Vec<i32>> {
		let nz = self.noise.as_ref()?;
		let p = self.job.params;
		let (m, n, r) = (p.m as usize, p.n as usize, p.r as usize);
		let noise = denoise::Noise { m, n, r, chunks: p.chunks() as usize, sel: &nz.sel, e_l: &nz.e_l, g_l: &nz.g_l };
		Some(denoise::remove(self.kernel, &noise, &self.job.a.values, &self.bt, &self.c))
	}

	/// [`Self::denoised`] added into a block of the caller's matrix
	/// ([`denoise::add_exact`]: rows and columns of the product past the
	/// block's are left out); `None`, touching nothing, before the first
	/// nonce.
	///
	/// # Panics
	/// On a block larger than the product or than `into.out` (a caller bug).
	pub fn add_denoised(&self, into: denoise::AddInto) -> Option<()> {
		let nz = self.noise.as_ref()?;
		let p = self.job.params;
		let (m, n, r) = (p.m as usize, p.n as usize, p.r as usize);
		let noise = denoise::Noise { m, n, r, chunks: p.chunks() as usize, sel: &nz.sel, e_l: &nz.e_l, g_l: &nz.g_l };
		denoise::add_exact(self.kernel, &noise, &self.job.a.values, &self.bt, &self.c, into);
		Some(())
	}
}
