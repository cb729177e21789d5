//! Issue 22, property 4: every block whose seal cannot be checked is
//! refused, as a *verification* failure (which `sc-network-sync` holds
//! against the peer that sent it), never passed on to import unchecked.
//!
//! The seal check reads the parent's rules (difficulty, challenge) through
//! the runtime API. When that read fails (the parent's state pruned or
//! never imported, a runtime error) a fail-open verifier would pass the
//! block on, its import would then fail as a plain error with no penalty,
//! and junk seals would cost their sender nothing. These tests drive the
//! real `SealVerifier` and `MatmulPow` over a client whose runtime API
//! answers for some blocks and fails for others, with real seals mined here
//! on the dev parameters.

use futures::executor::block_on;
use mlpow_consensus::{MatmulPow, SealVerifier};
use mlpow_primitives::{mine::EpochWeights, mine::Search, ChallengeParams, Hash32, VerifyError, U256};
use mlpow_runtime_api::{Challenge, MlpowApi, SealCheck};
use sc_consensus::{BlockImportParams, Verifier};
use sc_consensus_pow::PowAlgorithm;
use sp_api::{ApiError, ApiRef, ProvideRuntimeApi};
use sp_blockchain::{BlockStatus, HeaderBackend, Info};
use sp_consensus::BlockOrigin;
use sp_consensus_pow::{DifficultyApi, POW_ENGINE_ID};
use sp_core::H256;
use sp_runtime::{
	generic::{self, BlockId},
	traits::{BlakeTwo256, Header as _},
	Digest, DigestItem, OpaqueExtrinsic,
};
use std::{collections::HashMap, sync::Arc};

type Header = generic::Header<u32, BlakeTwo256>;
type Block = generic::Block<Header, OpaqueExtrinsic>;

const SEED: Hash32 = [7; 32];

fn challenge() -> Challenge {
	Challenge { params: ChallengeParams::DEV, weights_seed: SEED, epoch_index: 0 }
}

/// The runtime API at one block: its rules, or the error reading them gives.
#[derive(Clone)]
enum State {
	Readable,
	Pruned,
}

/// A chain `genesis <- one` as the client sees it: both headers known, the
/// finalized block is genesis, and the runtime API answers at the blocks
/// whose state is readable (and fails at any other hash, as a real client
/// does for a block it never imported).
struct Client {
	headers: HashMap<H256, Header>,
	state: HashMap<H256, State>,
	genesis: H256,
	best: (H256, u32),
}

struct Api {
	state: HashMap<H256, State>,
}

impl Api {
	fn read(&self, at: H256) -> Result<(), ApiError> {
		match self.state.get(&at) {
			Some(State::Readable) => Ok(()),
			Some(State::Pruned) => Err(ApiError::UnknownBlock(format!("state already discarded for {at:?}"))),
			None => Err(ApiError::UnknownBlock(format!("header not found: {at:?}"))),
		}
	}
}

sp_api::mock_impl_runtime_apis! {
	impl DifficultyApi<Block, U256> for Api {
		#[advanced]
		fn difficulty(&self, at: H256) -> Result<U256, ApiError> {
			self.read(at).map(|()| U256::one())
		}
	}

	impl MlpowApi<Block> for Api {
		#[advanced]
		fn challenge(&self, at: H256) -> Result<Challenge, ApiError> {
			self.read(at).map(|()| challenge())
		}

		#[advanced]
		fn verify_seal(&self, at: H256, _pre_hash: Hash32, _seal: Vec<u8>) -> Result<Result<SealCheck, VerifyError>, ApiError> {
			Err(ApiError::UnknownBlock(format!("the node checks seals natively, not through the runtime ({at:?})")))
		}
	}
}

impl ProvideRuntimeApi<Block> for Client {
	type Api = Api;
	fn runtime_api(&self) -> ApiRef<'_, Api> {
		Api { state: self.state.clone() }.into()
	}
}

impl HeaderBackend<Block> for Client {
	fn header(&self, hash: H256) -> sp_blockchain::Result<Option<Header>> {
		Ok(self.headers.get(&hash).cloned())
	}
	fn info(&self) -> Info<Block> {
		Info {
			best_hash: self.best.0,
			best_number: self.best.1,
			genesis_hash: self.genesis,
			finalized_hash: self.genesis,
			finalized_number: 0,
			finalized_state: Some((self.genesis, 0)),
			number_leaves: 1,
			block_gap: None,
		}
	}
	fn status(&self, hash: H256) -> sp_blockchain::Result<BlockStatus> {
		Ok(if self.headers.contains_key(&hash) { BlockStatus::InChain } else { BlockStatus::Unknown })
	}
	fn number(&self, hash: H256) -> sp_blockchain::Result<Option<u32>> {
		Ok(self.headers.get(&hash).map(|h| *h.number()))
	}
	fn hash(&self, number: u32) -> sp_blockchain::Result<Option<H256>> {
		Ok(self.headers.values().find(|h| *h.number() == number).map(|h| h.hash()))
	}
}

fn header(number: u32, parent: H256) -> Header {
	Header::new(number, Default::default(), Default::default(), parent, Digest::default())
}

/// `genesis <- one`, with the state at `one` as given.
fn client(one_state: State) -> (Arc<Client>, H256, H256) {
	let genesis = header(0, H256::zero());
	let one = header(1, genesis.hash());
	let (g, o) = (genesis.hash(), one.hash());
	let client = Client {
		headers: HashMap::from([(g, genesis), (o, one)]),
		state: HashMap::from([(g, State::Readable), (o, one_state)]),
		genesis: g,
		best: (o, 1),
	};
	(Arc::new(client), g, o)
}

/// A child of `parent` numbered `number`, sealed with a seal that wins the
/// dev parameters at difficulty 1 (the rules of every readable block here).
fn sealed(number: u32, parent: H256) -> (Header, Vec<u8>) {
	let header = seal(header(number, parent));
	let Some(DigestItem::Seal(_, seal)) = header.digest().logs().last().cloned() else { unreachable!() };
	(header, seal)
}

/// `unsealed` with a seal that wins the dev parameters at difficulty 1.
fn seal(unsealed: Header) -> Header {
	let pre_hash = unsealed.hash().0;
	let weights = EpochWeights::generate(&ChallengeParams::DEV, &SEED).unwrap();
	let won = Search::new(&weights, &pre_hash, U256::one()).unwrap().search(0..64).expect("difficulty 1 wins at once");
	let mut header = unsealed;
	header.digest_mut().push(DigestItem::Seal(POW_ENGINE_ID, won.seal.to_bytes().to_vec()));
	header
}

fn verify(verifier: &SealVerifier<Block, Client>, header: Header) -> Result<(), String> {
	block_on(verifier.verify(BlockImportParams::new(BlockOrigin::NetworkBroadcast, header))).map(|_| ())
}

/// The control: on a parent whose rules are readable, a winning seal passes
/// and a changed one is refused. (The mock answers as the runtime would.)
#[test]
fn a_readable_parent_checks_the_seal() {
	let (client, genesis, _) = client(State::Readable);
	let verifier = SealVerifier::new(client.clone(), MatmulPow::new(client.clone()));
	let (good, _) = sealed(1, genesis);
	assert_eq!(verifier.check_seal(&good), Ok(()));
	assert!(verify(&verifier, good).is_ok());

	let (mut junk, mut seal) = sealed(1, genesis);
	// Tile row m/t: outside the product (at difficulty 1 every tile inside wins).
	seal[8..12].copy_from_slice(&(ChallengeParams::DEV.m / ChallengeParams::DEV.t).to_le_bytes());
	junk.digest_mut().pop();
	junk.digest_mut().push(DigestItem::Seal(POW_ENGINE_ID, seal));
	let why = verifier.check_seal(&junk).unwrap_err();
	assert!(why.contains("invalid MatMul seal"), "{why}");
	assert!(verify(&verifier, junk).is_err());
}

/// The parent's header is known but its state is gone (pruned, or a
/// runtime error reading it): the block is refused with the reason, by the
/// queue's verifier and by the algorithm `PowBlockImport` calls again.
#[test]
fn a_parent_whose_rules_cannot_be_read_refuses_the_block() {
	let (client, _, one) = client(State::Pruned);
	let algorithm = MatmulPow::new(client.clone());
	let verifier = SealVerifier::new(client.clone(), algorithm.clone());
	let (child, seal) = sealed(2, one);
	let why = verifier.check_seal(&child).unwrap_err();
	assert!(why.contains("cannot read the rules at the parent") && why.contains("state already discarded"), "{why}");
	let why = verify(&verifier, child.clone()).unwrap_err();
	assert!(why.contains("unchecked"), "{why}");

	let mut unsealed = child;
	unsealed.digest_mut().pop();
	let verdict = algorithm.verify(
		&BlockId::Hash(one),
		&unsealed.hash(),
		None,
		&seal,
		U256::from(ChallengeParams::DEV.macs_per_ticket()),
	);
	assert!(verdict.is_err(), "PowBlockImport's check must fail closed too: {verdict:?}");
}

/// A block whose parent this node never imported (above its finalized
/// block, so the finality check does not catch it): refused, not passed on
/// for the import to fail without a penalty.
#[test]
fn a_block_on_an_unknown_parent_is_refused() {
	let (client, _, _) = client(State::Readable);
	let verifier = SealVerifier::new(client.clone(), MatmulPow::new(client.clone()));
	let stranger = H256::repeat_byte(0x42);
	let (child, _) = sealed(2, stranger);
	let why = verifier.check_seal(&child).unwrap_err();
	assert!(why.contains("cannot read the rules at the parent") && why.contains("header not found"), "{why}");
	assert!(verify(&verifier, child).is_err());
}

/// A real header (a winning seal) with a body it does not commit to: the
/// runtime would execute all of that body before comparing its root, and
/// the failure would cost the sender nothing. The verifier compares the
/// root first and refuses the block; the body the header commits to passes,
/// under either state version's trie root.
#[test]
fn a_real_header_with_another_body_is_refused() {
	use sp_runtime::{traits::Hash as _, StateVersion};
	let (client, genesis, _) = client(State::Readable);
	let verifier = SealVerifier::new(client.clone(), MatmulPow::new(client.clone()));
	let xt = |bytes: &[u8]| OpaqueExtrinsic::from_blob(bytes.to_vec());
	let body = vec![xt(b"timestamp.set"), xt(b"balances.transfer")];
	for version in [StateVersion::V1, StateVersion::V0] {
		let root = BlakeTwo256::ordered_trie_root(body.iter().map(codec::Encode::encode).collect(), version);
		let mut unsealed = header(1, genesis);
		unsealed.set_extrinsics_root(root);
		let header = seal(unsealed);
		let with = |body: Vec<OpaqueExtrinsic>| {
			let mut block = BlockImportParams::new(BlockOrigin::NetworkBroadcast, header.clone());
			block.body = Some(body);
			block_on(verifier.verify(block)).map(|_| ())
		};
		assert_eq!(with(body.clone()), Ok(()), "{version:?}: the committed body");
		for other in [vec![xt(b"timestamp.set"), xt(b"a transfer of the peer's choosing")], vec![], body[..1].to_vec()]
		{
			let why = with(other).unwrap_err();
			assert!(why.contains("not the one the header's extrinsics root commits to"), "{why}");
		}
	}
}

/// A seal longer than any puzzle's is refused before the header is copied
/// or anything hashed, and one whose length the parent's parameters do not
/// allow (a byte short, a byte long) before the tile is computed; both
/// are verification failures with the reason.
#[test]
fn seals_of_the_wrong_length_are_refused_before_any_work() {
	let (client, genesis, _) = client(State::Readable);
	let verifier = SealVerifier::new(client.clone(), MatmulPow::new(client.clone()));
	let resealed = |len: usize| {
		let (mut header, mut seal) = sealed(1, genesis);
		seal.resize(len, 0);
		header.digest_mut().pop();
		header.digest_mut().push(DigestItem::Seal(POW_ENGINE_ID, seal));
		header
	};
	let oversized = resealed(mlpow_primitives::MAX_SEAL_LEN + 1);
	let why = verifier.check_seal(&oversized).unwrap_err();
	assert!(why.contains("more than any puzzle's"), "{why}");
	assert!(verify(&verifier, oversized).is_err());
	let v1 = mlpow_primitives::SEAL_LEN;
	for len in [0, v1 - 1, v1 + 1] {
		let header = resealed(len);
		let why = verifier.check_seal(&header).unwrap_err();
		assert!(why.contains("where the parent's parameters allow"), "{len} bytes: {why}");
		assert!(verify(&verifier, header).is_err());
	}
}
