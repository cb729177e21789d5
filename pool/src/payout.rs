//! Paying miners on chain: balance transfers from the pool's account
//! (`Balances::transfer_keep_alive`), signed here with the pool's key and
//! sent through its node, for every address owed at least the threshold.
//!
//! A payout is taken off what the address is owed and recorded, under the
//! nonce it is signed with, *before* it is sent. It is paid once the pool
//! account's nonce in the finalized state has passed it; it is owed again
//! once the final block is past the end of its mortal era (64 blocks) and
//! the nonce was not used, after which it can never be included. So a
//! pool stopped at any moment neither pays twice nor forgets a payout. The
//! key must be used by the pool alone: its nonce is the pool's receipt.
//! One round at a time: new payouts wait until the last round is final.

use crate::ledger::{Account, Ledger, Payout};
use codec::Encode;
use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClient};
use mlpow_runtime::{Address, RuntimeCall, Signature, SignedPayload, TxExtension, UncheckedExtrinsic};
use serde_json::Value;
use sp_core::{crypto::AccountId32, sr25519, Pair, H256};
use sp_runtime::generic::Era;
use std::sync::Arc;

/// A payout's mortality: blocks from the one it was signed at.
const ERA_PERIOD: u64 = 64;

/// The pool's paying side.
pub struct Payer {
	pair: sr25519::Pair,
	account: Account,
	/// Addresses owed less than this wait.
	pub threshold: u128,
}

impl Payer {
	/// The key from a secret URI (`//Name`, a mnemonic, a hex seed).
	pub fn new(secret: &str, threshold: u128) -> anyhow::Result<Self> {
		let existential = existential_deposit();
		anyhow::ensure!(
			threshold >= existential,
			"--payout-threshold {threshold} is below the existential deposit ({existential}): a transfer that \
			 small to a new account fails, and its fee is spent"
		);
		let pair = sr25519::Pair::from_string(secret, None)
			.map_err(|e| anyhow::anyhow!("--payout-key is not a secret URI: {e:?}"))?;
		let account = pair.public().0;
		Ok(Self { pair, account, threshold })
	}

	/// The pool's account (its node must author as this one).
	pub fn account(&self) -> Account {
		self.account
	}

	/// A signed `transfer_keep_alive` of `amount` to `to`.
	fn transfer(&self, to: Account, amount: u128, nonce: u32, chain: &Chain) -> Vec<u8> {
		let call = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
			dest: Address::Id(AccountId32::new(to)),
			value: amount,
		});
		let extension: TxExtension = (
			frame_system::CheckNonZeroSender::new(),
			frame_system::CheckSpecVersion::new(),
			frame_system::CheckTxVersion::new(),
			frame_system::CheckGenesis::new(),
			frame_system::CheckEra::from(chain.era),
			frame_system::CheckNonce::from(nonce),
			frame_system::CheckWeight::new(),
			pallet_transaction_payment::ChargeTransactionPayment::from(0),
		);
		let implicit = ((), chain.spec_version, chain.tx_version, chain.genesis, chain.birth, (), (), ());
		let payload = SignedPayload::from_raw(call.clone(), extension.clone(), implicit);
		let signature = payload.using_encoded(|bytes| self.pair.sign(bytes));
		let signer = Address::Id(AccountId32::new(self.account));
		UncheckedExtrinsic::new_signed(call, signer, Signature::Sr25519(signature), extension).encode()
	}
}

/// What a signature commits to, read from the node.
struct Chain {
	genesis: H256,
	spec_version: u32,
	tx_version: u32,
	era: Era,
	/// The block the era starts from.
	birth: H256,
	/// The last block the era allows.
	expires: u32,
}

async fn read_chain(client: &WsClient) -> anyhow::Result<Chain> {
	let genesis: H256 = client.request("chain_getBlockHash", rpc_params![0]).await?;
	let version: Value = client.request("state_getRuntimeVersion", rpc_params![]).await?;
	let field = |name: &str| {
		version[name]
			.as_u64()
			.and_then(|v| u32::try_from(v).ok())
			.ok_or_else(|| anyhow::anyhow!("no {name}: {version}"))
	};
	let (spec_version, tx_version) = (field("specVersion")?, field("transactionVersion")?);
	let best: Value = client.request("chain_getHeader", rpc_params![]).await?;
	let number = header_number(&best)?;
	let birth: H256 = client.request("chain_getBlockHash", rpc_params![number]).await?;
	let era = Era::mortal(ERA_PERIOD, number.into());
	let expires = u32::try_from(era.death(number.into()).saturating_sub(1)).unwrap_or(u32::MAX);
	Ok(Chain { genesis, spec_version, tx_version, era, birth, expires })
}

/// The least balance an account may hold (the runtime's constant).
fn existential_deposit() -> u128 {
	use frame_support::traits::Get;
	<mlpow_runtime::Runtime as pallet_balances::Config>::ExistentialDeposit::get()
}

/// A header's number.
pub fn header_number(header: &Value) -> anyhow::Result<u32> {
	header["number"]
		.as_str()
		.and_then(|n| u32::from_str_radix(n.trim_start_matches("0x"), 16).ok())
		.ok_or_else(|| anyhow::anyhow!("a header without a number: {header}"))
}

/// The pool account's nonce and free balance in the state of block `at`
/// (the best block when `None`).
async fn account_at(client: &WsClient, account: &Account, at: Option<&str>) -> anyhow::Result<(u32, u128)> {
	let h = |data: &[u8]| sp_crypto_hashing::twox_128(data);
	let key =
		[&h(b"System")[..], &h(b"Account")[..], &sp_crypto_hashing::blake2_128(account)[..], &account[..]].concat();
	let stored: Option<String> =
		client.request("state_getStorage", rpc_params![mlpow_work::encode_hex(&key), at]).await?;
	let Some(stored) = stored else { return Ok((0, 0)) }; // no account yet
													   // AccountInfo: nonce u32, consumers, providers, sufficients (u32 each),
													   // then the balances, free (u128) first.
	let bytes = mlpow_work::decode_hex(&stored).map_err(anyhow::Error::msg)?;
	let nonce = bytes.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
	let free = bytes.get(16..32).and_then(|b| b.try_into().ok()).map(u128::from_le_bytes);
	match (nonce, free) {
		(Some(nonce), Some(free)) => Ok((nonce, free)),
		_ => anyhow::bail!("an account record of {} bytes", bytes.len()),
	}
}

/// One round: payouts that became final are paid, expired ones owed
/// again; then, if none is in flight, a transfer to every address owed at
/// least the threshold.
pub async fn round(client: &WsClient, ledger: &Arc<Ledger>, payer: &Payer) -> anyhow::Result<()> {
	let finalized: String = client.request("chain_getFinalizedHead", rpc_params![]).await?;
	let final_header: Value = client.request("chain_getHeader", rpc_params![finalized.clone()]).await?;
	let final_number = header_number(&final_header)?;
	let (final_nonce, _) = account_at(client, &payer.account, Some(&finalized)).await?;
	let mut flying = 0;
	for payout in blocking(ledger, |l| l.in_flight()).await? {
		if payout.nonce < final_nonce {
			blocking(ledger, move |l| l.payout_final(&payout)).await?;
			log::info!("💸 paid {} to {}", payout.amount, AccountId32::new(payout.account));
		} else if payout.expires < final_number {
			blocking(ledger, move |l| l.payout_expired(&payout)).await?;
			log::warn!(
				"a payout of {} to {} expired unsent; it is owed again",
				payout.amount,
				AccountId32::new(payout.account)
			);
		} else {
			flying += 1;
		}
	}
	if flying > 0 {
		return Ok(());
	}
	let owed: Vec<_> = blocking(ledger, |l| l.balances())
		.await?
		.into_iter()
		.filter(|(account, amount)| *amount > 0 && *amount >= payer.threshold && *account != payer.account)
		.collect();
	if owed.is_empty() {
		return Ok(());
	}
	let chain = read_chain(client).await?;
	let address = AccountId32::new(payer.account).to_string();
	let mut nonce: u32 = client.request("system_accountNextIndex", rpc_params![address]).await?;
	// The account's nonce is the pool's receipt: if it is past the last
	// payout the ledger sent, a payout record was lost (a crash before
	// ParityDB wrote it) or something else signed with the key, and paying
	// again could pay twice. Stop until an operator reconciles.
	if let Some(expected) = blocking(ledger, |l| l.next_nonce()).await? {
		anyhow::ensure!(
			nonce <= expected,
			"the pool account has used nonces up to {} but the ledger's last payout was nonce {}: a payout record \
			 was lost or another signer used the key; payouts stop until the ledger is reconciled with the chain",
			nonce.saturating_sub(1),
			expected.saturating_sub(1)
		);
	}
	// Pay only what the account covers, fees and its existential deposit
	// included: a transfer that fails still uses its nonce, and would count
	// as paid.
	let (_, free) = account_at(client, &payer.account, None).await?;
	let fee = {
		let probe = payer.transfer(owed[0].0, owed[0].1, nonce, &chain);
		let info: Value = client.request("payment_queryInfo", rpc_params![mlpow_work::encode_hex(&probe)]).await?;
		let partial = &info["partialFee"];
		partial.as_str().and_then(|f| f.parse::<u128>().ok()).or(partial.as_u64().map(u128::from)).unwrap_or(0)
	};
	let mut budget = free.saturating_sub(existential_deposit());
	for (account, amount) in owed {
		// Twice the fee measured, as a margin.
		let cost = amount.saturating_add(fee.saturating_mul(2));
		if cost > budget {
			log::warn!(
				"the pool account holds {free}, too little to pay {amount} to {} now; it waits",
				AccountId32::new(account)
			);
			break;
		}
		budget -= cost;
		let payout = Payout { nonce, account, amount, expires: chain.expires };
		// Recorded before it is sent: a crash in between leaves a payout
		// that either becomes final or expires, never one paid twice.
		blocking(ledger, move |l| l.send_payout(&payout)).await?;
		let xt = payer.transfer(account, amount, nonce, &chain);
		let sent: Result<H256, _> =
			client.request("author_submitExtrinsic", rpc_params![mlpow_work::encode_hex(&xt)]).await;
		match sent {
			Ok(hash) => {
				log::info!("payout of {amount} to {} sent ({hash:?}, nonce {nonce})", AccountId32::new(account))
			}
			Err(e) => {
				// It (and any after it) will expire and be owed again.
				log::warn!("payout of {amount} to {} refused by the node: {e}", AccountId32::new(account));
				return Ok(());
			}
		}
		nonce += 1;
	}
	Ok(())
}

async fn blocking<T: Send + 'static>(
	ledger: &Arc<Ledger>,
	f: impl FnOnce(&Ledger) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
	let ledger = ledger.clone();
	tokio::task::spawn_blocking(move || f(&ledger)).await?
}
