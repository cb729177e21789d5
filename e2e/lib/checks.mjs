// Checks shared by the dev and local chain tests: what Polkadot.js must be
// able to read and decode on any mlpow chain.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { u8aToString } from '@polkadot/util';

import { eventsOf } from './chain.mjs';

export const PALLETS = ['System', 'Timestamp', 'Balances', 'TransactionPayment', 'Sudo', 'Council', 'MlPow'];

// Chain properties as wallets read them: symbol, decimals and the SS58
// prefix the runtime itself declares.
export async function checkProperties(api) {
  const props = await api.rpc.system.properties();
  assert.deepEqual(props.tokenSymbol.unwrap().map(String), ['MLP']);
  assert.deepEqual(props.tokenDecimals.unwrap().map((d) => d.toNumber()), [12]);
  assert.equal(props.ss58Format.unwrap().toNumber(), 42);
  assert.equal(api.consts.system.ss58Prefix.toNumber(), 42, 'spec and runtime agree on SS58');
  assert.equal(api.registry.chainSS58, 42);
  assert.deepEqual(api.registry.chainTokens, ['MLP']);
}

// Metadata: the pallets, the calls governance uses, and the runtime APIs.
export function checkMetadata(api) {
  const latest = api.runtimeMetadata.asLatest;
  assert.ok(api.runtimeMetadata.version >= 14, `metadata v${api.runtimeMetadata.version}`);
  const pallets = latest.pallets.map((p) => p.name.toString());
  for (const p of PALLETS) assert.ok(pallets.includes(p), `pallet ${p} in ${pallets}`);
  for (const call of ['setDifficulty', 'setTargetBlockTime', 'setBlockReward', 'scheduleParams', 'cancelScheduledParams']) {
    assert.equal(typeof api.tx.mlPow[call], 'function', `mlPow.${call}`);
  }
  for (const call of ['propose', 'vote', 'close']) assert.equal(typeof api.tx.council[call], 'function');
  const apis = latest.apis.map((a) => a.name.toString());
  for (const a of ['MlpowApi', 'DifficultyApi', 'Core', 'Metadata', 'TransactionPaymentApi']) {
    assert.ok(apis.includes(a), `runtime API ${a} in ${apis}`);
  }
}

// The pallet's storage, and the challenge the runtime API reports from it.
export async function checkPalletStorage(api) {
  const [difficulty, params, target, reward, epochIndex, epochEnd, seed] = await Promise.all([
    api.query.mlPow.difficulty(),
    api.query.mlPow.params(),
    api.query.mlPow.targetBlockTime(),
    api.query.mlPow.blockReward(),
    api.query.mlPow.epochIndex(),
    api.query.mlPow.epochEnd(),
    api.query.mlPow.weightsSeed(),
  ]);
  assert.ok(difficulty.toBigInt() >= 1000n, `difficulty ${difficulty}`);
  const p = params.toJSON();
  for (const dim of ['m', 'k', 'n', 't', 'epochLength']) assert.ok(p[dim] > 0, `params.${dim} in ${JSON.stringify(p)}`);
  assert.ok(target.toNumber() >= 500, `target ${target}`);
  assert.equal(reward.toBigInt(), 10n * 10n ** 12n);
  assert.ok(epochEnd.toNumber() > 0);
  // The launch time from the chain spec bounds every timestamp from below.
  const [launch, now] = await Promise.all([api.query.mlPow.launchTime(), api.query.timestamp.now()]);
  assert.ok(launch.toBigInt() > 0n, `launch time ${launch}`);
  assert.ok(now.toBigInt() >= launch.toBigInt(), `timestamp ${now} before launch ${launch}`);
  const challenge = await api.call.mlpowApi.challenge();
  assert.deepEqual(challenge.params.toJSON(), p);
  assert.equal(challenge.weightsSeed.toHex(), seed.toHex());
  assert.equal(challenge.epochIndex.toNumber(), epochIndex.toNumber());
}

// `rpc_methods` lists the node's custom mining RPC next to the standard one.
export async function checkRpcMethods(api) {
  const { methods } = (await api.rpc.rpc.methods()).toJSON();
  for (const m of ['mlpow_getWork', 'mlpow_submitSeal', 'mlpow_subscribeWork', 'mlpow_unsubscribeWork', 'system_health']) {
    assert.ok(methods.includes(m), `${m} in rpc_methods`);
  }
  // And it answers through the decorated client.
  const work = (await getWorkWhenReady(api)).toJSON();
  assert.match(work.pre_hash, /^0x[0-9a-f]{64}$/);
}

// `mlpow_getWork` answers code 1000 ("no work yet") for the moment between
// importing a block and building the next proposal (README, "The mining RPC";
// consensus/work); a client retries, as the worker does. Any other error, or no
// work for `timeoutMs`, fails.
async function getWorkWhenReady(api, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await api.rpc.mlpow.getWork();
    } catch (e) {
      if (e.code !== 1000 || Date.now() > deadline) throw e;
      await sleep(100);
    }
  }
}

// Decodes block `hash` completely: header digest (the PoW author and seal),
// extrinsics and events. Verifies the seal through the runtime API at the
// parent, i.e. against that parent's difficulty and challenge, exactly as
// the node's import did. Returns what it read.
export async function checkBlock(api, hash) {
  const { block } = await api.rpc.chain.getBlock(hash);
  const { header } = block;
  const logs = header.digest.logs;
  const pre = logs.find((l) => l.isPreRuntime);
  const last = logs[logs.length - 1];
  assert.ok(pre, `block ${header.number}: no pre-runtime digest`);
  const [preEngine, authorBytes] = pre.asPreRuntime;
  assert.equal(u8aToString(preEngine), 'pow_');
  const author = api.createType('AccountId', authorBytes).toString();
  assert.ok(last.isSeal, `block ${header.number}: last digest item is not a seal`);
  const [sealEngine, seal] = last.asSeal;
  assert.equal(u8aToString(sealEngine), 'pow_');

  // The pre-hash the seal commits to: the header without its seal.
  const unsealed = api.createType('Header', {
    parentHash: header.parentHash,
    number: header.number,
    stateRoot: header.stateRoot,
    extrinsicsRoot: header.extrinsicsRoot,
    digest: { logs: logs.slice(0, -1) },
  });
  const atParent = await api.at(header.parentHash);
  const [check, difficulty, params] = await Promise.all([
    atParent.call.mlpowApi.verifySeal(unsealed.hash, seal),
    atParent.query.mlPow.difficulty(),
    atParent.query.mlPow.params(),
  ]);
  assert.ok(check.isOk, `block ${header.number}: seal rejected at its parent: ${JSON.stringify(check.toHuman())}`);

  // Every extrinsic and event decodes into a known call / event.
  const calls = block.extrinsics.map((x) => `${x.method.section}.${x.method.method}`);
  assert.equal(calls[0], 'timestamp.set', `block ${header.number}: ${calls}`);
  const events = (await (await api.at(hash)).query.system.events()).map((r) => r.event);
  for (const e of events) {
    assert.ok(e.section && e.method, 'event decodes');
    assert.ok(e.toHuman(), 'event renders');
  }
  assert.equal(eventsOf(events, 'mlPow', 'Rewarded').length, 1, `block ${header.number}: one reward`);
  return {
    number: header.number.toNumber(),
    author,
    difficulty: difficulty.toBigInt(),
    params: params.toJSON(),
    seal: seal.toU8a(true),
    calls,
    events,
  };
}

// Decodes every block from 1 to the best one; returns them in order.
export async function checkAllBlocks(api) {
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const blocks = [];
  for (let n = 1; n <= best; n++) {
    blocks.push(await checkBlock(api, await api.rpc.chain.getBlockHash(n)));
  }
  return blocks;
}
