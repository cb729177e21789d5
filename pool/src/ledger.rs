//! The pool's accounts, on disk (ParityDB): every accepted share, every
//! block the pool found with the shares that earned it, and what each
//! payout address is owed. PPLNS ("pay per last N shares"): a block's
//! reward, less the pool's fee, goes to the shares of the last `N` of
//! share weight before it (each share weighing its share difficulty, so
//! in proportion to work), once the block is final; a block reorganised
//! out pays nothing. Each change is one atomic commit, applied in order.
//! ParityDB writes (and syncs) its log in the background: a pool stopped
//! cleanly keeps everything, one killed or losing power may lose its last
//! moments of changes, never a part of one and never an earlier one
//! without the later. The payouts guard against exactly that loss
//! ([`crate::payout`]: the pool account's nonce is checked against the
//! ledger's before every round).

use parity_db::{Db, Options};
use std::{collections::BTreeMap, path::Path};

/// An account: the 32 bytes of an SS58 address.
pub type Account = [u8; 32];

const SHARES: u8 = 0;
const BLOCKS: u8 = 1;
const BALANCES: u8 = 2;
const META: u8 = 3;
/// Payouts sent and not yet final, by the pool account's nonce.
const IN_FLIGHT: u8 = 4;
/// What each address has been paid in all.
const PAID: u8 = 5;
/// The shares accepted on the current parent, by [`SeenKey`]: so that a
/// share replayed after the pool restarted is still a duplicate.
const SEEN: u8 = 6;
const COLUMNS: u8 = 7;
const NEXT_SHARE: &[u8] = b"next-share";
/// The pool account's nonce after the last payout the ledger sent.
const NEXT_NONCE: &[u8] = b"next-nonce";

/// Shares older than this many windows' weight behind the newest are
/// forgotten when a block is found (no later block's window reaches them
/// unless the block difficulty grows that much).
const KEEP_WINDOWS: u128 = 4;

/// What became of a block the pool found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockState {
	/// Not final yet.
	Pending,
	/// Final: its reward was shared out.
	Credited,
	/// Another block is final at its height.
	Orphaned,
}

/// A block the pool found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
	pub number: u32,
	pub hash: [u8; 32],
	pub state: BlockState,
	/// The reward it minted (known once credited).
	pub reward: u128,
	/// The shares that earn it: share weight per account.
	pub window: Vec<(Account, u128)>,
}

impl Block {
	fn key(&self) -> Vec<u8> {
		[&self.number.to_be_bytes()[..], &self.hash[..]].concat()
	}

	fn encode(&self) -> Vec<u8> {
		let state = match self.state {
			BlockState::Pending => 0u8,
			BlockState::Credited => 1,
			BlockState::Orphaned => 2,
		};
		let mut out = vec![state];
		out.extend_from_slice(&self.reward.to_le_bytes());
		for (account, weight) in &self.window {
			out.extend_from_slice(account);
			out.extend_from_slice(&weight.to_le_bytes());
		}
		out
	}

	fn decode(key: &[u8], value: &[u8]) -> Option<Self> {
		let number = u32::from_be_bytes(key.get(..4)?.try_into().ok()?);
		let hash = key.get(4..36)?.try_into().ok()?;
		let state = match value.first()? {
			0 => BlockState::Pending,
			1 => BlockState::Credited,
			2 => BlockState::Orphaned,
			_ => return None,
		};
		let reward = u128::from_le_bytes(value.get(1..17)?.try_into().ok()?);
		let rest = value.get(17..)?;
		if rest.len() % 48 != 0 {
			return None;
		}
		let window = rest
			.chunks(48)
			.map(|c| {
				(c[..32].try_into().expect("32 bytes"), u128::from_le_bytes(c[32..].try_into().expect("16 bytes")))
			})
			.collect();
		Some(Self { number, hash, state, reward, window })
	}
}

/// A payout: a balance transfer from the pool's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payout {
	/// The pool account's nonce it was signed with.
	pub nonce: u32,
	pub account: Account,
	pub amount: u128,
	/// The last block its mortal era allows it in.
	pub expires: u32,
}

impl Payout {
	fn encode(&self) -> Vec<u8> {
		[&self.account[..], &self.amount.to_le_bytes()[..], &self.expires.to_le_bytes()[..]].concat()
	}

	fn decode(key: &[u8], value: &[u8]) -> Option<Self> {
		Some(Self {
			nonce: u32::from_be_bytes(key.try_into().ok()?),
			account: value.get(..32)?.try_into().ok()?,
			amount: u128::from_le_bytes(value.get(32..48)?.try_into().ok()?),
			expires: u32::from_le_bytes(value.get(48..52)?.try_into().ok()?),
		})
	}
}

/// What makes an accepted share unique: its job's parent block (32 bytes),
/// then `blake3(pre_hash || seal)`. The parent comes first so that the
/// keys of older parents can be dropped together.
pub type SeenKey = [u8; 64];

/// The [`SeenKey`] of `seal` on a job with this parent and `pre_hash`.
pub fn seen_key(parent: &[u8; 32], pre_hash: &[u8; 32], seal: &[u8]) -> SeenKey {
	let mut key = [0u8; 64];
	key[..32].copy_from_slice(parent);
	let mut hasher = blake3::Hasher::new();
	hasher.update(pre_hash).update(seal);
	key[32..].copy_from_slice(hasher.finalize().as_bytes());
	key
}

/// The ledger.
pub struct Ledger {
	db: Db,
	next_share: parking_lot::Mutex<u64>,
	/// The shares committed, readable without waiting for `next_share`
	/// (which a block's settlement holds while it walks the shares).
	recorded: std::sync::atomic::AtomicU64,
	/// Held by every change to what is owed, in flight and paid (each reads
	/// and then writes), and by [`Ledger::consistent`], so that a reader sees
	/// each payout in exactly one of the three.
	accounts: parking_lot::Mutex<()>,
}

/// The ledger's columns: the first `columns` of them (an older version had
/// fewer).
fn options(dir: &Path, columns: u8) -> Options {
	let mut options = Options::with_columns(dir, columns);
	for col in [SHARES, BLOCKS, BALANCES, IN_FLIGHT, PAID, SEEN] {
		if let Some(column) = options.columns.get_mut(col as usize) {
			column.btree_index = true;
		}
	}
	options
}

fn db_error(e: parity_db::Error) -> anyhow::Error {
	anyhow::anyhow!("the pool's database: {e}")
}

impl Ledger {
	/// Opens (or creates) the ledger in `dir`.
	pub fn open(dir: &Path) -> anyhow::Result<Self> {
		let db = match Db::open_or_create(&options(dir, COLUMNS)) {
			Ok(db) => db,
			// The first release's ledger has no SEEN column: add it.
			Err(e) if Db::open(&options(dir, SEEN)).is_ok() => {
				log::info!(
					"the ledger in {} is of an older version ({e}): adding its seen-shares column",
					dir.display()
				);
				Db::add_column(&mut options(dir, SEEN), options(dir, COLUMNS).columns[SEEN as usize].clone())
					.map_err(db_error)?;
				Db::open(&options(dir, COLUMNS)).map_err(db_error)?
			}
			Err(e) => return Err(db_error(e)),
		};
		let next = db.get(META, NEXT_SHARE).map_err(db_error)?;
		let next = next.and_then(|v| v.try_into().ok()).map_or(0, u64::from_be_bytes);
		Ok(Self {
			db,
			next_share: parking_lot::Mutex::new(next),
			recorded: std::sync::atomic::AtomicU64::new(next),
			accounts: parking_lot::Mutex::new(()),
		})
	}

	/// Records an accepted share of `weight` (its share difficulty) for
	/// `account`, unique by `seen` (committed when this returns; see the
	/// module docs): `false`, and nothing recorded, if a share of that key
	/// was recorded before (a duplicate, also across a restart).
	pub fn share(&self, account: &Account, weight: u128, seen: &SeenKey) -> anyhow::Result<bool> {
		let mut next = self.next_share.lock();
		if self.db.get(SEEN, seen).map_err(db_error)?.is_some() {
			return Ok(false);
		}
		let mut value = account.to_vec();
		value.extend_from_slice(&weight.to_le_bytes());
		let key = next.to_be_bytes();
		let bumped = (*next + 1).to_be_bytes();
		self.db
			.commit([
				(SHARES, &key[..], Some(value)),
				(META, NEXT_SHARE, Some(bumped.to_vec())),
				(SEEN, &seen[..], Some(Vec::new())),
			])
			.map_err(db_error)?;
		*next += 1;
		self.recorded.store(*next, std::sync::atomic::Ordering::Release);
		Ok(true)
	}

	/// Forgets the seen shares of every parent but `parent` (the node
	/// moved on: shares of older parents are stale whatever they are).
	pub fn forget_seen_except(&self, parent: &[u8; 32]) -> anyhow::Result<usize> {
		let _next = self.next_share.lock();
		let mut iter = self.db.iter(SEEN).map_err(db_error)?;
		iter.seek_to_first().map_err(db_error)?;
		let mut forget = Vec::new();
		while let Some((key, _)) = iter.next().map_err(db_error)? {
			if key.get(..32) != Some(&parent[..]) {
				forget.push(key);
			}
		}
		let count = forget.len();
		self.db.commit(forget.into_iter().map(|k| (SEEN, k, None))).map_err(db_error)?;
		Ok(count)
	}

	/// The pool found block #`number` (`hash`) with the share recorded
	/// just before `upto` (the count of shares then): the last `window` of
	/// weight among the shares before `upto` earn it (shares accepted
	/// while the block was being submitted do not). Older shares, beyond
	/// what any later block's window can reach, are forgotten.
	pub fn block_found(&self, number: u32, hash: [u8; 32], window: u128, upto: u64) -> anyhow::Result<Block> {
		let _next = self.next_share.lock();
		let mut iter = self.db.iter(SHARES).map_err(db_error)?;
		iter.seek_to_last().map_err(db_error)?;
		let (mut by_account, mut counted, mut walked) = (BTreeMap::<Account, u128>::new(), 0u128, 0u128);
		let mut forget = Vec::new();
		while let Some((key, value)) = iter.prev().map_err(db_error)? {
			let seq = key.get(..8).and_then(|k| k.try_into().ok()).map_or(u64::MAX, u64::from_be_bytes);
			if seq >= upto {
				continue; // after the block's share
			}
			let (Some(account), Some(weight)) = (
				value.get(..32).and_then(|a| Account::try_from(a).ok()),
				value.get(32..48).and_then(|w| w.try_into().ok()).map(u128::from_le_bytes),
			) else {
				continue;
			};
			if counted < window {
				let take = weight.min(window - counted);
				*by_account.entry(account).or_default() += take;
				counted += take;
			}
			walked = walked.saturating_add(weight);
			if walked > window.saturating_mul(KEEP_WINDOWS) {
				forget.push(key);
			}
		}
		let block =
			Block { number, hash, state: BlockState::Pending, reward: 0, window: by_account.into_iter().collect() };
		let changes = std::iter::once((BLOCKS, block.key(), Some(block.encode())))
			.chain(forget.into_iter().map(|k| (SHARES, k, None)));
		self.db.commit(changes).map_err(db_error)?;
		Ok(block)
	}

	/// The blocks found, oldest first.
	pub fn blocks(&self) -> anyhow::Result<Vec<Block>> {
		self.decode_all(BLOCKS, Block::decode)
	}

	/// Every entry of column `col` that `decode` reads, in key order
	/// (entries it cannot read are skipped).
	fn decode_all<T>(&self, col: u8, decode: impl Fn(&[u8], &[u8]) -> Option<T>) -> anyhow::Result<Vec<T>> {
		let mut iter = self.db.iter(col).map_err(db_error)?;
		iter.seek_to_first().map_err(db_error)?;
		let mut out = Vec::new();
		while let Some((key, value)) = iter.next().map_err(db_error)? {
			out.extend(decode(&key, &value));
		}
		Ok(out)
	}

	/// Settles `block` now that its height is final: credited with
	/// `reward` (less `fee_ppm` parts per million, kept by the pool) if
	/// it is the final block there (`final_here`), else orphaned. Each
	/// account gets `floor(net * weight / total)`; the rounding stays with
	/// the pool. One commit: the block's state and every balance.
	pub fn settle(&self, block: &Block, final_here: bool, reward: u128, fee_ppm: u32) -> anyhow::Result<()> {
		let _accounts = self.accounts.lock();
		let mut settled = block.clone();
		let mut changes = Vec::new();
		if final_here {
			settled.state = BlockState::Credited;
			settled.reward = reward;
			let net = reward - mul_div(reward, u128::from(fee_ppm.min(1_000_000)), 1_000_000);
			let total: u128 = block.window.iter().map(|(_, w)| w).sum();
			for (account, weight) in &block.window {
				let owed = mul_div(net, *weight, total);
				let before = self.balance(account)?;
				changes.push((BALANCES, account.to_vec(), Some(before.saturating_add(owed).to_le_bytes().to_vec())));
			}
		} else {
			settled.state = BlockState::Orphaned;
		}
		changes.push((BLOCKS, settled.key(), Some(settled.encode())));
		self.db.commit(changes).map_err(db_error)
	}

	/// What `account` is owed.
	pub fn balance(&self, account: &Account) -> anyhow::Result<u128> {
		let value = self.db.get(BALANCES, account).map_err(db_error)?;
		Ok(value.and_then(|v| v.try_into().ok()).map_or(0, u128::from_le_bytes))
	}

	/// Every account owed something.
	pub fn balances(&self) -> anyhow::Result<Vec<(Account, u128)>> {
		self.decode_all(BALANCES, |key, value| {
			Some((Account::try_from(key).ok()?, u128::from_le_bytes(value.try_into().ok()?)))
		})
	}

	/// A payout of `amount` to `account`, sent as the pool account's
	/// transaction of nonce `nonce`, mortal until block #`expires`: taken
	/// off what the account is owed until it is final or expired.
	pub fn send_payout(&self, payout: &Payout) -> anyhow::Result<()> {
		let _accounts = self.accounts.lock();
		let owed = self.balance(&payout.account)?;
		anyhow::ensure!(owed >= payout.amount, "a payout of {} where {} is owed", payout.amount, owed);
		self.db
			.commit([
				(BALANCES, payout.account.to_vec(), Some((owed - payout.amount).to_le_bytes().to_vec())),
				(IN_FLIGHT, payout.nonce.to_be_bytes().to_vec(), Some(payout.encode())),
				(META, NEXT_NONCE.to_vec(), Some((payout.nonce + 1).to_be_bytes().to_vec())),
			])
			.map_err(db_error)
	}

	/// The pool account's nonce after the last payout sent, if any was.
	pub fn next_nonce(&self) -> anyhow::Result<Option<u32>> {
		let value = self.db.get(META, NEXT_NONCE).map_err(db_error)?;
		Ok(value.and_then(|v| v.try_into().ok()).map(u32::from_be_bytes))
	}

	/// Payouts sent and not final yet, by nonce.
	pub fn in_flight(&self) -> anyhow::Result<Vec<Payout>> {
		self.decode_all(IN_FLIGHT, Payout::decode)
	}

	/// The payout is in a final block (the pool account's final nonce has
	/// passed it): paid.
	pub fn payout_final(&self, payout: &Payout) -> anyhow::Result<()> {
		let _accounts = self.accounts.lock();
		let paid = self.paid(&payout.account)?.saturating_add(payout.amount);
		self.db
			.commit([
				(PAID, payout.account.to_vec(), Some(paid.to_le_bytes().to_vec())),
				(IN_FLIGHT, payout.nonce.to_be_bytes().to_vec(), None),
			])
			.map_err(db_error)
	}

	/// The payout can never be included (its era ended below the final
	/// block, and the nonce was not used): owed again.
	pub fn payout_expired(&self, payout: &Payout) -> anyhow::Result<()> {
		let _accounts = self.accounts.lock();
		let owed = self.balance(&payout.account)?.saturating_add(payout.amount);
		self.db
			.commit([
				(BALANCES, payout.account.to_vec(), Some(owed.to_le_bytes().to_vec())),
				(IN_FLIGHT, payout.nonce.to_be_bytes().to_vec(), None),
			])
			.map_err(db_error)
	}

	/// What `account` has been paid in all.
	pub fn paid(&self, account: &Account) -> anyhow::Result<u128> {
		let value = self.db.get(PAID, account).map_err(db_error)?;
		Ok(value.and_then(|v| v.try_into().ok()).map_or(0, u128::from_le_bytes))
	}

	/// Runs `read` with no change to what is owed, in flight or paid in
	/// between its reads (the status: a payout counted twice, or not at all,
	/// would make its sums lie).
	pub fn consistent<T>(&self, read: impl FnOnce(&Self) -> T) -> T {
		let _accounts = self.accounts.lock();
		read(self)
	}

	/// Shares on record (for the status).
	pub fn shares_recorded(&self) -> u64 {
		self.recorded.load(std::sync::atomic::Ordering::Acquire)
	}
}

/// `floor(a * b / c)` without overflow for the sizes here (`b <= c`).
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
	if c == 0 {
		return 0;
	}
	let (q, r) = (a / c, a % c);
	q * b + r * b / c
}

#[cfg(test)]
mod tests {
	use super::*;

	/// Records a share under a key of its own.
	fn record(ledger: &Ledger, account: &Account, weight: u128) {
		let n = ledger.shares_recorded();
		assert!(ledger.share(account, weight, &seen_key(&[0; 32], &[0; 32], &n.to_le_bytes())).unwrap());
	}

	/// A share replayed after the pool restarted is still a duplicate, as
	/// long as its parent is the node's; the keys of older parents go.
	#[test]
	fn a_share_counts_once_also_across_a_restart() {
		let dir = tempfile::tempdir().unwrap();
		let (old, new, a) = ([1u8; 32], [2u8; 32], [7u8; 32]);
		let (first, second) = (seen_key(&old, &[3; 32], b"seal"), seen_key(&new, &[4; 32], b"seal"));
		assert_ne!(seen_key(&old, &[3; 32], b"seal"), seen_key(&old, &[4; 32], b"seal"), "pre_hash is in the key");
		{
			let ledger = Ledger::open(dir.path()).unwrap();
			assert!(ledger.share(&a, 5, &first).unwrap());
			assert!(!ledger.share(&a, 5, &first).unwrap(), "a duplicate");
			assert_eq!(ledger.shares_recorded(), 1, "recorded once");
		}
		let ledger = Ledger::open(dir.path()).unwrap();
		assert!(!ledger.share(&a, 5, &first).unwrap(), "a duplicate after the restart");
		assert!(ledger.share(&a, 5, &second).unwrap());
		assert_eq!(ledger.forget_seen_except(&new).unwrap(), 1);
		assert!(!ledger.share(&a, 5, &second).unwrap(), "the current parent's keys stay");
		assert_eq!(ledger.shares_recorded(), 2);
	}

	/// A ledger made by the first release (six columns, no seen shares)
	/// opens with everything in it, and gains the column.
	#[test]
	fn a_first_release_ledger_gains_the_seen_column() {
		let dir = tempfile::tempdir().unwrap();
		{
			let db = Db::open_or_create(&options(dir.path(), SEEN)).unwrap();
			db.commit([(BALANCES, &[9u8; 32][..], Some(77u128.to_le_bytes().to_vec()))]).unwrap();
		}
		let ledger = Ledger::open(dir.path()).unwrap();
		assert_eq!(ledger.balance(&[9; 32]).unwrap(), 77);
		record(&ledger, &[9; 32], 1);
		drop(ledger);
		assert_eq!(Ledger::open(dir.path()).unwrap().shares_recorded(), 1);
	}

	#[test]
	fn rewards_follow_the_last_window_of_shares_and_survive_a_restart() {
		let dir = tempfile::tempdir().unwrap();
		let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
		{
			let ledger = Ledger::open(dir.path()).unwrap();
			record(&ledger, &c, 100); // outside the window below
			for _ in 0..3 {
				record(&ledger, &a, 10);
			}
			record(&ledger, &b, 10);
			let block = ledger.block_found(7, [9; 32], 40, 5).unwrap();
			assert_eq!(block.window, vec![(a, 30), (b, 10)], "the last 40 of weight");
			ledger.settle(&block, true, 1_000_000, 10_000).unwrap(); // a 1% fee
			assert_eq!((ledger.balance(&a).unwrap(), ledger.balance(&b).unwrap()), (742_500, 247_500));
			assert_eq!(ledger.balance(&c).unwrap(), 0);
			let orphan = ledger.block_found(8, [8; 32], 40, 5).unwrap();
			ledger.settle(&orphan, false, 1_000_000, 0).unwrap();
			assert_eq!(ledger.balance(&a).unwrap(), 742_500, "an orphan pays nothing");
		}
		// Reopened: shares, blocks and balances are all there.
		let ledger = Ledger::open(dir.path()).unwrap();
		assert_eq!(ledger.shares_recorded(), 5);
		let blocks = ledger.blocks().unwrap();
		assert_eq!(
			blocks.iter().map(|b| (b.number, b.state)).collect::<Vec<_>>(),
			vec![(7, BlockState::Credited), (8, BlockState::Orphaned)]
		);
		assert_eq!(ledger.balances().unwrap(), vec![(a, 742_500), (b, 247_500)]);
		record(&ledger, &b, 40);
		let next = ledger.block_found(9, [7; 32], 40, 6).unwrap();
		assert_eq!(next.window, vec![(b, 40)], "new shares go on from where the log was");
	}

	/// A payout leaves what is owed while in flight; final, it is paid;
	/// expired, it is owed again. Both survive a restart.
	#[test]
	fn payouts_move_credit_to_paid_or_back() {
		let dir = tempfile::tempdir().unwrap();
		let a = [1u8; 32];
		let sent = Payout { nonce: 4, account: a, amount: 600, expires: 100 };
		{
			let ledger = Ledger::open(dir.path()).unwrap();
			record(&ledger, &a, 1);
			let block = ledger.block_found(1, [1; 32], 1, 1).unwrap();
			ledger.settle(&block, true, 1000, 0).unwrap();
			assert!(ledger.send_payout(&Payout { amount: 1001, ..sent }).is_err(), "more than owed");
			ledger.send_payout(&sent).unwrap();
			ledger.send_payout(&Payout { nonce: 5, amount: 400, ..sent }).unwrap();
			assert_eq!(ledger.balance(&a).unwrap(), 0);
		}
		let ledger = Ledger::open(dir.path()).unwrap();
		let flying = ledger.in_flight().unwrap();
		assert_eq!(flying.len(), 2);
		assert_eq!(flying[0], sent);
		ledger.payout_final(&flying[0]).unwrap();
		ledger.payout_expired(&flying[1]).unwrap();
		assert_eq!((ledger.paid(&a).unwrap(), ledger.balance(&a).unwrap()), (600, 400));
		assert!(ledger.in_flight().unwrap().is_empty());
	}

	#[test]
	fn shares_far_behind_every_window_are_forgotten() {
		let dir = tempfile::tempdir().unwrap();
		let ledger = Ledger::open(dir.path()).unwrap();
		for _ in 0..100 {
			record(&ledger, &[1; 32], 1);
		}
		ledger.block_found(1, [1; 32], 10, 100).unwrap();
		let mut iter = ledger.db.iter(SHARES).unwrap();
		iter.seek_to_first().unwrap();
		let mut left = 0;
		while iter.next().unwrap().is_some() {
			left += 1;
		}
		assert_eq!(left, 40, "four windows kept");
	}

	#[test]
	fn mul_div_is_exact_floor() {
		assert_eq!(mul_div(10, 1, 3), 3);
		assert_eq!(mul_div(u128::MAX, 1, 1), u128::MAX);
		assert_eq!(mul_div(u128::MAX, 2, 4), u128::MAX / 2);
		assert_eq!(mul_div(7, 0, 0), 0);
	}
}
