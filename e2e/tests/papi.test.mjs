// The chain through polkadot-api (PAPI), the client new Polkadot tooling is
// built on, with its default options, as a new user would use it: no
// descriptors, no per-call options. PAPI reads finalized state and signs
// transactions against the finalized block with a 64-block mortality, and
// its chainHead subscription keeps every unfinalized block pinned, so all of
// this works only while the chain finalizes close behind its head (32 blocks
// here, SPEC.md "Maximum reorg depth").
//
// The chain: the dev preset with 500 ms blocks (the shortest target the
// runtime allows), so that it passes block 200 in a few minutes. From its
// first blocks on, every finalized block's header, body (every extrinsic)
// and events are decoded through PAPI; past block 200 the test reads
// storage, calls the runtime APIs, and submits and tracks a governance call.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { sr25519CreateDerive } from '@polkadot-labs/hdkd';
import { DEV_PHRASE, entropyToMiniSecret, mnemonicToEntropy } from '@polkadot-labs/hdkd-helpers';
import { getDynamicBuilder, getLookupFn } from '@polkadot-api/metadata-builders';
import { compact, decAnyMetadata, extrinsicFormat, unifyMetadata } from '@polkadot-api/substrate-bindings';
import { createClient } from 'polkadot-api';
import { getPolkadotSigner } from 'polkadot-api/signer';
import { getWsProvider } from 'polkadot-api/ws';
import { WebSocket } from 'ws';

import { NODE_BIN, startChain } from '../lib/chain.mjs';

// How far behind the best block the chain finalizes.
const FINALITY_DEPTH = 32;
const TARGET_MS = 500;

// The dev chain spec with a 500 ms target block time and a starting
// difficulty one debug CPU thread meets in about that time.
function fastDevSpec(dir) {
  const spec = JSON.parse(execFileSync(NODE_BIN, ['build-spec', '--chain', 'dev', '--disable-default-bootnode'],
    { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 }));
  const mlPow = spec.genesis.runtimeGenesis.patch.mlPow;
  mlPow.targetBlockTimeMs = TARGET_MS;
  mlPow.difficulty = '0x1388'; // 5,000 tickets
  const path = join(dir, 'dev-fast.json');
  writeFileSync(path, JSON.stringify(spec));
  return path;
}

// A `U256` as PAPI decodes it (four little-endian u64 limbs) as a BigInt.
function u256(limbs) {
  return limbs.reduceRight((acc, limb) => (acc << 64n) | BigInt(limb), 0n);
}

function alice() {
  const derive = sr25519CreateDerive(entropyToMiniSecret(mnemonicToEntropy(DEV_PHRASE)));
  const pair = derive('//Alice');
  return { address: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY', signer: getPolkadotSigner(pair.publicKey, 'Sr25519', pair.sign) };
}

// Decodes whole extrinsics (not only their calls) from the chain's own
// metadata: the format byte, then for a signed one its address, signature
// and extensions, then the call. Throws on anything it cannot decode, or on
// bytes left over.
function extrinsicDecoder(metadataBytes) {
  const metadata = unifyMetadata(decAnyMetadata(metadataBytes));
  const builder = getDynamicBuilder(getLookupFn(metadata));
  const x = metadata.extrinsic;
  const call = builder.buildDefinition(x.call);
  const address = builder.buildDefinition(x.address);
  const signature = builder.buildDefinition(x.signature);
  const extensions = (x.signedExtensions[0] ?? []).map((e) => builder.buildDefinition(e.type));
  return (bytes) => {
    // An opaque extrinsic is length-prefixed.
    const length = compact.dec(bytes);
    const prefix = compact.enc(length).length;
    assert.equal(Number(length), bytes.length - prefix, 'length prefix');
    let rest = bytes.slice(prefix);
    const take = (codec) => {
      // scale-ts decoders read what they need; re-encoding says how much that was.
      const value = codec.dec(rest);
      rest = rest.slice(codec.enc(value).length);
      return value;
    };
    const format = take(extrinsicFormat);
    const out = { format };
    if (format.type === 'signed') {
      out.address = take(address);
      out.signature = take(signature);
      out.extensions = extensions.map(take);
    } else {
      assert.equal(format.type, 'bare', `extrinsic format ${JSON.stringify(format)}`);
    }
    out.call = take(call);
    assert.equal(rest.length, 0, 'bytes left after the call');
    return out;
  };
}

// Node's runner times all of a suite's tests together (from the end of its
// before hook) against this one budget, which the timer races, so under load
// it must cover the sum of the tests' waits below, not the longest: block
// 200 600 s, the finality lag 60 s and the decodes 60 s at their limits,
// besides the governance call's finality (unbounded here), with room to spare.
describe('polkadot-api with its defaults, past block 200', { timeout: 1_200_000 }, () => {
  let dir;
  let chain;
  let client;
  let api;
  let following;
  // The block that holds the governance call.
  let governanceBlock;
  // What the finalized-block follower decoded, block by block.
  const decoded = new Map();
  const failures = [];
  // The first block the follower was given (decodes finish in any order).
  let firstFollowed = null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mlpow-papi-'));
    // The node finalizes from its first block on (no settle time): with the
    // default minute, finality jumps about 90 blocks at once on this fast
    // chain, and PAPI's finalized-block follower failed to decode a block of
    // that jump (a scale-ts DataView TypeError; seen at 3437c2e, not yet
    // understood). The node's settle time is its own policy; what this test
    // checks is PAPI's defaults against finality 32 blocks deep.
    chain = await startChain(fastDevSpec(dir), { nodeArgs: ['--finality-settle-secs', '0'] });
    // Polkadot.js (startChain's) is not used here: only PAPI.
    await chain.api.disconnect();
    // Node.js before 22 has no global WebSocket: PAPI takes the `ws` package's.
    client = createClient(getWsProvider(chain.ws, { websocketClass: globalThis.WebSocket ?? WebSocket }));
    api = client.getUnsafeApi();
    let decode = null;
    following = client.finalizedBlock$.subscribe((block) => {
      firstFollowed ??= block.number;
      // Held until decoded, so that PAPI does not unpin it meanwhile.
      const release = client.hodlBlock(block.hash);
      (async () => {
        try {
          const header = await client.getBlockHeader(block.hash);
          const body = await client.getBlockBody(block.hash);
          const events = await api.query.System.Events.getValue({ at: block.hash });
          // The runtime does not change in this test: one metadata serves.
          decode ??= extrinsicDecoder(await client.getMetadata(block.hash));
          const extrinsics = body.map(decode);
          decoded.set(block.number, { hash: block.hash, header, extrinsics, events });
        } catch (e) {
          failures.push(`block #${block.number} ${block.hash}: ${e.stack ?? e}`);
        } finally {
          release();
        }
      })();
    });
  });

  after(async () => {
    following?.unsubscribe();
    client?.destroy();
    if (chain) await chain.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the chain passes block 200, finalizing 32 blocks behind its head', async () => {
    const deadline = Date.now() + 600_000;
    for (;;) {
      const finalized = await client.getFinalizedBlock();
      if (finalized.number >= 200) break;
      assert.ok(Date.now() < deadline, `finalized only #${finalized.number} after 10 minutes\n${chain.logs()}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    // Finality is FINALITY_DEPTH behind the best block. The node finalizes
    // after each import, and PAPI hears of it after the new best block, so
    // under load one reading can catch finality a few blocks behind for a
    // moment (at 500 ms blocks, two blocks of slack are one second): read
    // again until readings show the lag within the depth (+2), for a
    // bounded time. Finalized is read first and best after it, so a reading
    // never shows less lag than there was; a node finalizing deeper than
    // FINALITY_DEPTH + 2 never passes, however long it is given.
    // Three readings in a row within it, so that a node that only now and
    // then catches up does not pass.
    const lagDeadline = Date.now() + 60_000;
    const readings = [];
    for (let within = 0; within < 3;) {
      const finalized = await client.getFinalizedBlock();
      const best = (await client.getBestBlocks())[0];
      within = best.number - finalized.number <= FINALITY_DEPTH + 2 ? within + 1 : 0;
      readings.push(`best #${best.number}, finalized #${finalized.number}`);
      assert.ok(within >= 3 || Date.now() < lagDeadline,
        `finality not within ${FINALITY_DEPTH + 2} blocks three readings in a row for 60 s: ${readings.slice(-10).join('; ')}\n${chain.logs()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  test('a governance call is signed, submitted and tracked to finality with the defaults', async () => {
    const { address, signer } = alice();
    const before = await api.query.MlPow.TargetBlockTime.getValue();
    const call = api.tx.MlPow.set_target_block_time({ milliseconds: BigInt(TARGET_MS + 100) }).decodedCall;
    // signAndSubmit with no options: mortal against the finalized block,
    // nonce from the best block, resolves once the block holding it is
    // finalized.
    const result = await api.tx.Sudo.sudo({ call }).signAndSubmit(signer);
    assert.equal(result.ok, true, JSON.stringify(result.dispatchError));
    governanceBlock = result.block.number;
    const sudid = result.events.find((e) => e.type === 'Sudo' && e.value.type === 'Sudid');
    assert.ok(sudid, 'Sudo.Sudid');
    assert.equal(sudid.value.value.sudo_result.success, true, JSON.stringify(sudid.value.value));
    // Finalized state now shows the change.
    const after = await api.query.MlPow.TargetBlockTime.getValue();
    assert.equal(BigInt(after), BigInt(TARGET_MS + 100), `before ${before}`);
    // The signer's account paid for it.
    const account = await api.query.System.Account.getValue(address);
    assert.ok(account.nonce >= 1);
  });
  test('every finalized block, its extrinsics and its events decode', async () => {
    // Let the follower catch up with what is finalized now. Each block is
    // decoded by its own task, and under load they finish out of order: wait
    // for every block from the first followed up to this one, not only for
    // this one (or for a failure).
    const finalized = await client.getFinalizedBlock();
    const undecoded = () => {
      if (firstFollowed === null) return 'any block';
      for (let n = firstFollowed; n <= finalized.number; n += 1) if (!decoded.has(n)) return `#${n}`;
      return null;
    };
    const deadline = Date.now() + 60_000;
    for (let missing = undecoded(); missing && failures.length === 0; missing = undecoded()) {
      assert.ok(Date.now() < deadline,
        `the follower has not decoded ${missing} (of #${firstFollowed} to #${finalized.number})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(failures, []);
    // PAPI starts from the block finalized when it connects; from there on, every one.
    const numbers = [...decoded.keys()].sort((a, b) => a - b);
    const first = firstFollowed;
    assert.ok(first <= 5, `the follower started at #${first}`);
    for (let n = first; n <= finalized.number; n += 1) {
      const block = decoded.get(n);
      assert.ok(block, `block #${n} was not decoded`);
      if (n === 0) continue; // genesis: no seal, no extrinsics
      // The author's pre-runtime digest, then the seal, both under `pow_`.
      const [author, seal] = block.header.digests.slice(-2);
      assert.deepEqual([author.type, author.value.engine], ['preRuntime', 'pow_'], `#${n}`);
      assert.deepEqual([seal.type, seal.value.engine], ['seal', 'pow_'], `#${n}`);
      assert.equal(seal.value.payload.length, 2 + 2 * 16, `#${n}: a 16-byte v1 seal`);
      // Every block has its timestamp inherent, decoded as a call.
      assert.ok(block.extrinsics.some((x) => x.call.type === 'Timestamp' && x.call.value.type === 'set'),
        `#${n} has no Timestamp.set`);
      assert.ok(block.events.some((e) => e.event.type === 'System' && e.event.value.type === 'ExtrinsicSuccess'),
        `#${n}: no ExtrinsicSuccess event`);
    }
    // The signed governance call decodes whole: signer, signature, every
    // extension, and the call inside the call.
    const signed = decoded.get(governanceBlock).extrinsics.filter((x) => x.format.type === 'signed');
    assert.equal(signed.length, 1, `#${governanceBlock}`);
    assert.equal(signed[0].address.value, alice().address);
    assert.equal(signed[0].call.type, 'Sudo');
    assert.equal(signed[0].call.value.value.call.type, 'MlPow');
    assert.equal(signed[0].call.value.value.call.value.type, 'set_target_block_time');
    // The pallet's own events decode too (the retarget's, at least).
    const mlpow = numbers.flatMap((n) => decoded.get(n).events.filter((e) => e.event.type === 'MlPow'));
    assert.ok(mlpow.length > 0, 'no MlPow event in any block');
  });

  test('storage and runtime APIs read through PAPI', async () => {
    // By default PAPI reads at the finalized block; that moves while the
    // test reads, so values compared with each other are read at one block.
    const number = await api.query.System.Number.getValue();
    assert.ok(number >= 200, `finalized System.Number ${number}`);
    const at = (await client.getFinalizedBlock()).hash;
    const params = await api.query.MlPow.Params.getValue({ at });
    assert.equal(params.version, 1);
    assert.equal(params.t, 16);
    const difficulty = u256(await api.query.MlPow.Difficulty.getValue({ at }));
    assert.ok(difficulty > 0n, `difficulty ${difficulty}`);
    const account = await api.query.System.Account.getValue(alice().address);
    assert.ok(account.data.free > 0n);
    // The runtime APIs the node and miners use: MlpowApi and DifficultyApi.
    const challenge = await api.apis.MlpowApi.challenge({ at });
    assert.equal(challenge.params.k, params.k);
    const apiDifficulty = u256(await api.apis.DifficultyApi.difficulty({ at }));
    assert.equal(apiDifficulty, difficulty);
    const version = await api.apis.Core.version();
    assert.equal(version.spec_name, 'mlpow');
  });

});
