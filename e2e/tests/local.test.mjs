// The local testnet through Polkadot.js: no sudo key, so the technical
// council (Alice, Bob, Charlie) retunes the chain with motions that need
// two thirds of its members: propose, vote, close.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';

import { startChain, submit, eventsOf, waitForHeader } from '../lib/chain.mjs';
import { checkAllBlocks, checkBlock, checkMetadata, checkPalletStorage, checkProperties, checkRpcMethods } from '../lib/checks.mjs';

// Node's runner times all of a suite's tests together (from the end of its
// before hook) against this one budget, which the timer races, so under load
// it must cover the sum of the tests' waits below, not the longest: eleven
// submissions and headers of 120 s each at most (1,320 s), and the scan of
// every block.
describe('local testnet (the council governs)', { timeout: 1_500_000 }, () => {
  let chain;
  let api;
  let alice;
  let bob;
  let charlie;
  let dave;

  before(async () => {
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
    [alice, bob, charlie, dave] = ['//Alice', '//Bob', '//Charlie', '//Dave'].map((uri) => keyring.addFromUri(uri));
    chain = await startChain('local');
    api = chain.api;
    await waitForHeader(api, (h) => h.number.toNumber() >= 2, 120_000, 'block #2');
  });

  after(async () => {
    if (chain) await chain.stop();
  });

  // Runs `call` as a council motion: Alice proposes it with threshold 2
  // (two thirds of three), Alice and Bob vote aye, Charlie closes it.
  // Returns the events of the block that closed (and executed) it.
  async function councilMotion(call) {
    const lengthBound = call.method.encodedLength;
    const proposed = await submit(api, api.tx.council.propose(2, call, lengthBound), alice);
    assert.equal(proposed.error, null);
    const { proposalIndex, proposalHash, threshold } = eventsOf(proposed.events, 'council', 'Proposed')[0].data;
    assert.equal(threshold.toNumber(), 2);
    assert.equal(proposalHash.toHex(), call.method.hash.toHex());

    const votes = await Promise.all(
      [alice, bob].map((who) => submit(api, api.tx.council.vote(proposalHash, proposalIndex, true), who)),
    );
    for (const v of votes) {
      assert.equal(v.error, null);
      assert.equal(eventsOf(v.events, 'council', 'Voted').length, 1);
    }

    const { weight } = await api.call.transactionPaymentCallApi.queryCallInfo(call.method, lengthBound);
    const closed = await submit(api, api.tx.council.close(proposalHash, proposalIndex, weight, lengthBound), charlie);
    assert.equal(closed.error, null);
    assert.equal(eventsOf(closed.events, 'council', 'Approved').length, 1, 'motion approved');
    const executed = eventsOf(closed.events, 'council', 'Executed')[0];
    assert.ok(executed.data.result.isOk, JSON.stringify(executed.toHuman()));
    return closed;
  }

  test('connects and reads properties, metadata, storage, council and rpc_methods', async () => {
    assert.equal((await api.rpc.system.chain()).toString(), 'MatMul PoW Local Testnet');
    await checkProperties(api);
    checkMetadata(api);
    await checkPalletStorage(api);
    await checkRpcMethods(api);
    assert.ok((await api.query.sudo.key()).isNone, 'no sudo key on the local testnet');
    const members = (await api.query.council.members()).map((m) => m.toString()).sort();
    assert.deepEqual(members, [alice.address, bob.address, charlie.address].sort());
  });

  test('non-governance origins are refused', async () => {
    const direct = await submit(api, api.tx.mlPow.setDifficulty(5_000), dave);
    assert.equal(direct.error, 'BadOrigin');
    // A council member alone is not the council.
    const member = await submit(api, api.tx.mlPow.setTargetBlockTime(4_000), alice);
    assert.equal(member.error, 'BadOrigin');
    const sudo = await submit(api, api.tx.sudo.sudo(api.tx.mlPow.setDifficulty(5_000)), alice);
    assert.equal(sudo.error, 'sudo.RequireSudo');
    const propose = api.tx.mlPow.setDifficulty(5_000);
    const outsider = await submit(api, api.tx.council.propose(2, propose, propose.method.encodedLength), dave);
    assert.equal(outsider.error, 'council.NotMember');
  });

  test('a council motion retunes the difficulty; the next block is mined at it', async () => {
    // Within the 2x bound of the difficulty in force, with room for the
    // retarget's moves while the motion passes.
    const target = ((await api.query.mlPow.difficulty()).toBigInt() * 3n) / 4n;
    const closed = await councilMotion(api.tx.mlPow.setDifficulty(target));
    assert.equal(eventsOf(closed.events, 'mlPow', 'DifficultySet')[0].data.difficulty.toBigInt(), target);
    const setAt = await api.rpc.chain.getHeader(closed.blockHash);
    const n = setAt.number.toNumber() + 1;
    await waitForHeader(api, (h) => h.number.toNumber() >= n, 120_000, `block #${n}`);
    const child = await checkBlock(api, await api.rpc.chain.getBlockHash(n));
    assert.equal(child.difficulty, target);
  });

  test('a council motion retunes the target block time', async () => {
    const closed = await councilMotion(api.tx.mlPow.setTargetBlockTime(4_000));
    assert.equal(eventsOf(closed.events, 'mlPow', 'TargetBlockTimeSet')[0].data.milliseconds.toNumber(), 4_000);
    assert.equal((await (await api.at(closed.blockHash)).query.mlPow.targetBlockTime()).toNumber(), 4_000);
  });

  test('every block and event decodes and every seal verifies', async () => {
    const blocks = await checkAllBlocks(api);
    assert.ok(blocks.length >= 5);
    for (const b of blocks) assert.equal(b.author, alice.address);
  });
});
