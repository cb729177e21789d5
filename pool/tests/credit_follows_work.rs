//! Property: the pool credits each miner in proportion to its work, within
//! a stated bound, whatever share difficulty vardiff gives it and however
//! often it reconnects to start again at the pool's first difficulty
//! (issue 25).
//!
//! The miners here are simulated (tickets are drawn, not computed: what a
//! share proves is the primitives' business, tested elsewhere), and
//! everything between a share and a balance is the pool's own: [`Vardiff`]
//! sets each miner's share difficulty as the server does (after 30 shares
//! or 60 s, and at each new job), every share is recorded in the real
//! [`Ledger`] at its job's difficulty, each block takes the PPLNS window the
//! pool's node loop gives it (twice the block difficulty) and is settled
//! with its reward.
//!
//! **The bound.** A miner doing a fraction `f` of the tickets expects the
//! same fraction `f` of the rewards: each ticket is a share with
//! probability `1/d` and is credited `d`. Its realised fraction `F` after
//! `B` blocks at difficulty `D` varies with the number of its shares (about
//! `f*B*D/d` of them, Poisson) and with how many windows each falls in
//! (about `W/D = 2`, also Poisson, so `E[k^2] = 6`): `Var(sum of d*k) =
//! N*E[d^2]*6`, over `(W*B)^2`, gives `sd(F) = sqrt(1.5*f*d/(D*B))`, with
//! `d = E[d^2]/E[d]` over the miner's shares. On top of that, PPLNS's one
//! bias (see [`mlpow_pool::vardiff::cap`]): the block's share counts whole,
//! the other miners' work since their last share not at all, which credits
//! a miner about `(d - mean d) / W` of its credit more than its work; share
//! difficulties capped at `D/64` bound it to `f/128`. The test asserts
//! `|F - f| <= 6 sd + f/128` for every miner, and prints each miner's
//! deviation. The draws are seeded, so the run is the same every time.
//!
//! What this shows, and what not: 600 blocks keep the run to seconds, and
//! at 600 blocks 6 sd is 5 to 10% of a miner's credit, so the test catches
//! a gross unfairness (credit at the wrong difficulty, a window that
//! favours one miner by more than that), not a bias of 1% (the cap's bound
//! on PPLNS's is argued above, not measured to that precision). Before the
//! cap, at one share a second, a miner at half the block difficulty was
//! credited 2% above its work and a reconnecting one, at low difficulty,
//! 7% below (the reconnecting one beyond 6 sd). The model applies a raise
//! at once, where the server waits for the next job, and has no stale
//! shares, no lowering within a job, and a constant block difficulty.

use mlpow_pool::{
	ledger::{seen_key, Ledger},
	vardiff::Vardiff,
};
use mlpow_primitives::U256;
use std::time::{Duration, Instant};

const BLOCK_DIFFICULTY: f64 = 1e6;
const BLOCKS: u32 = 600;
const REWARD: u128 = 1_000_000_000_000;
/// Ten shares a second (the pool's default is one in ten seconds): the
/// slower miners below the cap, the faster ones at it. And the pool's
/// default `--start-difficulty`.
const SHARE_INTERVAL: Duration = Duration::from_millis(100);
const START_DIFFICULTY: u64 = 1000;

/// SplitMix64: a small, well-mixed generator, seeded.
struct Draws(u64);

impl Draws {
	fn next(&mut self) -> u64 {
		self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
		let mut z = self.0;
		z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
		z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
		z ^ (z >> 31)
	}

	/// Uniform in (0, 1].
	fn unit(&mut self) -> f64 {
		((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
	}

	/// Seconds to the next event of a Poisson process of this rate.
	fn wait(&mut self, rate: f64) -> f64 {
		-self.unit().ln() / rate
	}
}

struct Miner {
	name: &'static str,
	account: [u8; 32],
	/// Tickets a second.
	rate: f64,
	/// Reconnects this often (a fresh vardiff at the start difficulty).
	reconnects: Option<f64>,
	vardiff: Vardiff,
	/// The difficulty of the job it mines now.
	difficulty: u64,
	next_share: f64,
	connected_at: f64,
	shares: u64,
	weight: u128,
	/// The shares' difficulties squared, summed.
	squares: f64,
}

impl Miner {
	fn new(name: &'static str, byte: u8, rate: f64, reconnects: Option<f64>, t0: Instant) -> Self {
		Self {
			name,
			account: [byte; 32],
			rate,
			reconnects,
			vardiff: Vardiff::new(SHARE_INTERVAL, U256::from(START_DIFFICULTY), t0),
			difficulty: START_DIFFICULTY,
			next_share: f64::INFINITY,
			connected_at: 0.0,
			shares: 0,
			weight: 0,
			squares: 0.0,
		}
	}

	/// A new job: at the difficulty vardiff says now.
	fn job(&mut self, now: f64, t0: Instant, draws: &mut Draws) {
		let at = t0 + Duration::from_secs_f64(now);
		self.vardiff.retarget(at, U256::from(BLOCK_DIFFICULTY as u64));
		self.difficulty = self.vardiff.difficulty().low_u64();
		self.next_share = now + draws.wait(self.rate / self.difficulty as f64);
	}
}

#[test]
fn each_miner_is_credited_in_proportion_to_its_work() {
	let dir = tempfile::tempdir().unwrap();
	let ledger = Ledger::open(dir.path()).unwrap();
	let (t0, mut draws) = (Instant::now(), Draws(0x6d6c_706f_7732_3521));
	// A million tickets a second in all: a block a second.
	let unit = BLOCK_DIFFICULTY / 16.0;
	let mut miners = vec![
		Miner::new("1x", 1, unit, None, t0),
		Miner::new("2x", 2, 2.0 * unit, None, t0),
		Miner::new("4x", 3, 4.0 * unit, None, t0),
		Miner::new("8x", 4, 8.0 * unit, None, t0),
		// As fast as "1x", but back at the start difficulty every 30 s:
		// many more shares, each worth less.
		Miner::new("1x, reconnecting", 5, unit, Some(30.0), t0),
	];
	let total_rate: f64 = miners.iter().map(|m| m.rate).sum();
	for m in &mut miners {
		m.job(0.0, t0, &mut draws);
	}
	let window = 2 * BLOCK_DIFFICULTY as u128;
	let (mut blocks, mut now) = (0u32, 0.0f64);
	while blocks < BLOCKS {
		let i = (0..miners.len()).min_by(|&a, &b| miners[a].next_share.total_cmp(&miners[b].next_share)).unwrap();
		now = miners[i].next_share;
		let m = &mut miners[i];
		// A reconnection before this share: the share is not found (a
		// Poisson process has no memory, so the next is drawn afresh).
		if let Some(at) = m.reconnects.map(|every| m.connected_at + every).filter(|at| *at <= now) {
			now = at;
			m.vardiff = Vardiff::new(SHARE_INTERVAL, U256::from(START_DIFFICULTY), t0 + Duration::from_secs_f64(now));
			m.connected_at = now;
			m.job(now, t0, &mut draws);
			continue;
		}
		// A share, credited at its job's difficulty, unique by its key.
		let key = seen_key(&[0; 32], &[0; 32], &ledger.shares_recorded().to_le_bytes());
		assert!(ledger.share(&m.account, m.difficulty.into(), &key).unwrap());
		m.vardiff.share(U256::from(m.difficulty));
		(m.shares, m.weight) = (m.shares + 1, m.weight + u128::from(m.difficulty));
		m.squares += (m.difficulty as f64).powi(2);
		// A block, if its ticket is also below the block's target.
		let is_block = draws.unit() <= m.difficulty as f64 / BLOCK_DIFFICULTY;
		if is_block {
			blocks += 1;
			let block = ledger.block_found(blocks, [blocks as u8; 32], window, ledger.shares_recorded()).unwrap();
			ledger.settle(&block, true, REWARD, 0).unwrap();
			// A new parent: a new job for every miner.
			for m in &mut miners {
				m.job(now, t0, &mut draws);
			}
		} else {
			let due = m.vardiff.due(t0 + Duration::from_secs_f64(now));
			if due {
				m.job(now, t0, &mut draws);
			} else {
				m.next_share = now + draws.wait(m.rate / m.difficulty as f64);
			}
		}
	}

	let credited: Vec<u128> = miners.iter().map(|m| ledger.balance(&m.account).unwrap()).collect();
	let all: u128 = credited.iter().sum();
	assert!(all <= REWARD * u128::from(BLOCKS), "never more than the rewards");
	println!("{BLOCKS} blocks in {now:.0} s at difficulty {BLOCK_DIFFICULTY}");
	for (m, credit) in miners.iter().zip(credited) {
		let f = m.rate / total_rate;
		let share = credit as f64 / all as f64;
		let mean_difficulty = m.weight as f64 / m.shares as f64;
		let d = m.squares / m.weight as f64;
		let sd = (1.5 * f * d / (BLOCK_DIFFICULTY * f64::from(BLOCKS))).sqrt();
		println!(
			"{:>17}: work {:.4}, credited {:.4} ({:+.2} sd), {} shares at mean difficulty {:.0}",
			m.name,
			f,
			share,
			(share - f) / sd,
			m.shares,
			mean_difficulty
		);
		let bound = 6.0 * sd + f / 128.0;
		assert!(
			(share - f).abs() <= bound,
			"{}: credited {share:.4} for {f:.4} of the work (bound {bound:.4})",
			m.name
		);
	}
}
