//! # mlpow-runtime
//!
//! The chain's state transition function: FRAME system, timestamp,
//! balances, transaction payment, the technical council, sudo (dev chains
//! only: the `local_testnet` preset has no sudo key) and the MatMul
//! proof-of-work pallet, plus the runtime APIs the node, miners and Polkadot.js use. Compiled
//! natively (for tests and the node's fallback) and to Wasm (what the chain
//! actually executes; the build script embeds it as `WASM_BINARY`).
//!
//! Laid out as the polkadot-sdk solochain template: this file holds the
//! types and the pallet list, [`configs`] each pallet's configuration,
//! [`apis`] the runtime APIs, [`genesis_config_presets`] the genesis presets,
//! and `benchmarks` (feature `runtime-benchmarks`) the pallets benchmarked.

#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime`-style macros expand deeply.
#![recursion_limit = "256"]

extern crate alloc;

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;

pub mod apis;
pub mod configs;
pub mod genesis_config_presets;

#[cfg(feature = "std")]
pub use apis::api;
pub use apis::{RuntimeApi, RUNTIME_API_VERSIONS};
pub use configs::{CouncilCollective, RootOrCouncilTwoThirds};

use alloc::vec::Vec;
use sp_runtime::{
	generic, impl_opaque_keys,
	traits::{BlakeTwo256, IdentifyAccount, Verify},
	MultiSignature,
};
use sp_version::RuntimeVersion;

/// Block numbers.
pub type BlockNumber = u32;
/// Signatures: sr25519, ed25519 or ecdsa, as Polkadot.js signs.
pub type Signature = MultiSignature;
/// Accounts are public keys (32 bytes), shown in SS58 with [`SS58_PREFIX`].
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Balances, in the smallest unit (10^-12 MLP).
pub type Balance = u128;
/// Transaction counters.
pub type Nonce = u32;
/// Block and state hashes.
pub type Hash = sp_core::H256;
/// Headers.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Address format of extrinsics.
pub type Address = sp_runtime::MultiAddress<AccountId, ()>;

/// SS58 address prefix: the generic Substrate prefix, so every wallet and
/// Polkadot.js shows addresses without extra configuration.
pub const SS58_PREFIX: u16 = 42;
/// Token symbol and decimals, also written into chain specs' `properties`.
pub const TOKEN_SYMBOL: &str = "MLP";
pub const TOKEN_DECIMALS: u8 = 12;
/// One MLP.
pub const UNIT: Balance = 1_000_000_000_000;
pub const MILLI_UNIT: Balance = UNIT / 1_000;

/// Opaque types, for the node: it never needs to decode extrinsics.
pub mod opaque {
	use super::*;
	pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;
	pub type BlockId = generic::BlockId<Block>;

	impl_opaque_keys! {
		/// A PoW chain has no session keys; the type exists for the
		/// `SessionKeys` API that the node's RPC layer expects.
		pub struct SessionKeys {}
	}
}

#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("mlpow"),
	impl_name: alloc::borrow::Cow::Borrowed("mlpow-node"),
	authoring_version: 1,
	spec_version: 100,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 1,
	system_version: 1,
};

/// The transaction extensions, in the order Polkadot.js signs them.
pub type TxExtension = (
	frame_system::CheckNonZeroSender<Runtime>,
	frame_system::CheckSpecVersion<Runtime>,
	frame_system::CheckTxVersion<Runtime>,
	frame_system::CheckGenesis<Runtime>,
	frame_system::CheckEra<Runtime>,
	frame_system::CheckNonce<Runtime>,
	frame_system::CheckWeight<Runtime>,
	pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
);

pub type UncheckedExtrinsic = generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// The runtime's storage migrations, run once at the next runtime upgrade,
/// beside those the pallets declare: none yet (every pallet's storage is at
/// its first layout; `pallet_mlpow::migrations` says how one is added).
type Migrations = ();

pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
	Migrations,
>;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;
	#[runtime::pallet_index(2)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(3)]
	pub type TransactionPayment = pallet_transaction_payment;
	#[runtime::pallet_index(4)]
	pub type Sudo = pallet_sudo;
	#[runtime::pallet_index(5)]
	pub type Council = pallet_collective<Instance1>;
	#[runtime::pallet_index(10)]
	pub type MlPow = pallet_mlpow;
}
