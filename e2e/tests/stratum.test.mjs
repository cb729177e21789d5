// An independent miner, written from consensus/SPEC.md and
// consensus/STRATUM.md alone (lib/mlpow-puzzle.mjs, lib/stratum-miner.mjs),
// first checked against every puzzle v1 vector of
// consensus/vectors/golden.json, then mining on a real dev node through
// the real `mlpow-pool`, beside a real `mlpow-worker --pool`: its shares
// are accepted and credited, blocks are found and imported, hostile
// submissions are refused with STRATUM.md's codes, and the pool pays its
// address on chain (seen through @polkadot/api).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { blake3 } from '@noble/hashes/blake3';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';

import { MLPOW_RPC, Proc, WORKER_BIN, startNode } from '../lib/chain.mjs';
import * as P from '../lib/mlpow-puzzle.mjs';
import { startPool, waitStatus } from '../lib/pool.mjs';
import { StratumMiner } from '../lib/stratum-miner.mjs';

const golden = JSON.parse(readFileSync(new URL('../../consensus/vectors/golden.json', import.meta.url), 'utf8'));
const hex = P.toHex;
const bytes = P.fromHex;
// The first 32 elements of an i8 row, as bytes.
const rowPrefix = (row) => hex(new Uint8Array(row.buffer, row.byteOffset, 32));

// `promise`, or a rejection after `ms`.
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Every tile digest of nonces 0, 1, ... in (nonce, tile_i, tile_j) order up
// to and including `upTo`; returns the first winner and the tiles scanned.
function firstWinner(params, wSeed, jSeed, difficulty, upTo) {
  const bt = P.weightsRows(params, wSeed, 0, params.n);
  const tgt = P.target(difficulty);
  let tiles = 0;
  for (let nonce = 0n; nonce <= upTo; nonce++) {
    let win = null;
    tiles += P.nonceTickets(params, bt, jSeed, nonce, (i, j, digest) => {
      if (!win && P.meetsTarget(digest, tgt)) win = { nonce, tileI: i, tileJ: j, digest: digest.slice() };
    });
    if (win) return { ...win, tiles };
  }
  return { tiles };
}

describe('puzzle v1 against consensus/vectors/golden.json', () => {
  test('SCALE Compact examples (SPEC "SCALE encodings")', () => {
    for (const [n, h] of [[1, '04'], [1000, 'a10f'], [1_000_000, '02093d00'], [2 ** 32 - 1, '03ffffffff'], [2 ** 30, '0300000040']]) {
      assert.equal(hex(P.compact(n)), h, `Compact(${n})`);
    }
  });

  test('xofAt reads the same stream as noble\'s BLAKE3 XOF, from any offset', () => {
    const material = bytes(golden.sets[0].weights_seed);
    const stream = blake3.create({ context: P.CTX.WEIGHTS }).update(material).xof(20_000);
    assert.equal(hex(P.xofAt(P.CTX.WEIGHTS, material, 0, 20_000)), hex(stream));
    for (const [offset, length] of [[1, 63], [64, 64], [777, 5000], [19_999, 1]]) {
      assert.equal(hex(P.xofAt(P.CTX.WEIGHTS, material, offset, length)), hex(stream.subarray(offset, offset + length)));
    }
    const forty = new Uint8Array(40).fill(7); // job_seed || nonce, as activations use
    assert.equal(hex(P.xofAt(P.CTX.ACTIVATIONS, forty, 100, 300)),
      hex(blake3.create({ context: P.CTX.ACTIVATIONS }).update(forty).xof(400).subarray(100)));
  });

  test('genesis weights seed', () => {
    const g = golden.genesis_weights_seed;
    assert.equal(hex(P.weightsSeed(bytes(g.epoch_anchor), BigInt(g.epoch_index))), g.weights_seed);
  });

  for (const set of golden.sets) {
    test(`set "${set.name}": seeds, matrices, tiles, product, winning seal`, () => {
      const p = set.params;
      assert.equal(P.paramsError(p), null);
      assert.equal(hex(P.encodeParams(p)), set.params_scale);
      const wSeed = P.weightsSeed(bytes(set.epoch_anchor), BigInt(set.epoch_index));
      assert.equal(hex(wSeed), set.weights_seed);
      const jSeed = P.jobSeed(bytes(set.pre_hash), wSeed);
      assert.equal(hex(jSeed), set.job_seed);
      assert.equal(rowPrefix(P.weightsRows(p, wSeed, p.n - 1, 1)), set.weights_last_row_prefix);
      assert.equal(rowPrefix(P.activationRows(p, jSeed, 0n, p.m - 1, 1)), set.activations_nonce0_last_row_prefix);
      const tgt = P.target(set.difficulty);
      for (const v of set.tiles) {
        const what = `nonce ${v.nonce} tile (${v.tile_i}, ${v.tile_j})`;
        const { tile, key, digest } = P.ticket(p, wSeed, jSeed, BigInt(v.nonce), v.tile_i, v.tile_j);
        assert.equal(hex(key), v.tile_key, `${what}: tile key`);
        assert.equal(tile[0], v.first, `${what}: element (0, 0)`);
        assert.equal(tile.reduce((s, x) => (s + x) | 0, 0), v.sum, `${what}: sum`);
        assert.equal(hex(digest), v.digest, `${what}: digest`);
        assert.equal(P.meetsTarget(digest, tgt), v.wins, `${what}: wins`);
      }
      if (set.product_nonce0_blake3 !== null) {
        // The whole product, by the definition (one dot per element), not
        // by tiles: a second path to the same numbers.
        const a = P.activationRows(p, jSeed, 0n, 0, p.m);
        const bt = P.weightsRows(p, wSeed, 0, p.n);
        const c = new Int32Array(p.m * p.n);
        for (let r = 0; r < p.m; r++) {
          for (let col = 0; col < p.n; col++) {
            let s = 0;
            for (let x = 0; x < p.k; x++) s += a[r * p.k + x] * bt[col * p.k + x];
            c[r * p.n + col] = s;
          }
        }
        assert.equal(hex(blake3(P.tileBytes(c))), set.product_nonce0_blake3);
      }
      const w = set.winning_seal;
      const seal = P.encodeSeal({ nonce: BigInt(w.nonce), tileI: w.tile_i, tileJ: w.tile_j });
      assert.equal(hex(seal), w.seal);
      assert.deepEqual(P.decodeSeal(seal), { nonce: BigInt(w.nonce), tileI: w.tile_i, tileJ: w.tile_j });
      const check = P.verify(p, wSeed, bytes(set.pre_hash), set.difficulty, seal);
      assert.ok(check.ok, check.error);
      assert.equal(hex(check.digest), w.digest);
      if (w.first_over_all_nonces) {
        const first = firstWinner(p, wSeed, jSeed, set.difficulty, BigInt(w.nonce));
        assert.deepEqual([first.nonce, first.tileI, first.tileJ], [BigInt(w.nonce), w.tile_i, w.tile_j]);
      } else {
        // GPU size: only nonce 0's tiles before it, in order (two row bands
        // of A, all of Bt: 32 MiB).
        assert.equal(w.nonce, '0');
        const a = P.activationRows(p, jSeed, 0n, 0, p.t * (w.tile_i + 1));
        const bt = P.weightsRows(p, wSeed, 0, p.n);
        const tile = new Int32Array(p.t * p.t);
        for (let i = 0; i <= w.tile_i; i++) {
          for (let j = 0; j < (i < w.tile_i ? p.n / p.t : w.tile_j + 1); j++) {
            P.tileProduct(a, i * p.t, bt, j * p.t, p.t, p.k, tile);
            const digest = P.tileDigest(P.tileKey(jSeed, 0n, i, j), P.tileBytes(tile));
            assert.equal(P.meetsTarget(digest, tgt), i === w.tile_i && j === w.tile_j, `gpu tile (${i}, ${j})`);
          }
        }
      }
    });
  }

  test('headers: SCALE, pre_hash, job seed, seal, sealed header, block hash', (t) => {
    for (const h of golden.headers) {
      const digest = h.digest.map((d) => {
        const item = d.kind === 'RuntimeEnvironmentUpdated'
          ? { kind: d.kind }
          : { kind: d.kind, engineId: new TextEncoder().encode(d.engine_id), data: bytes(d.data) };
        assert.equal(hex(P.encodeDigestItem(item)), d.scale, `${h.name}: ${d.kind}`);
        return item;
      });
      const header = {
        parentHash: bytes(h.parent_hash), number: h.number, stateRoot: bytes(h.state_root),
        extrinsicsRoot: bytes(h.extrinsics_root), digest,
      };
      const unsealed = P.encodeHeader(header);
      assert.equal(hex(unsealed), h.unsealed_scale, h.name);
      const preHash = P.blake2_256(unsealed);
      assert.equal(hex(preHash), h.pre_hash, h.name);
      const wSeed = bytes(h.weights_seed);
      assert.equal(hex(P.jobSeed(preHash, wSeed)), h.job_seed, h.name);
      const seal = P.encodeSeal({ nonce: BigInt(h.seal.nonce), tileI: h.seal.tile_i, tileJ: h.seal.tile_j });
      assert.equal(hex(seal), h.seal.bytes, h.name);
      const check = P.verify(h.params, wSeed, preHash, h.difficulty, seal);
      assert.ok(check.ok, `${h.name}: ${check.error}`);
      assert.equal(hex(check.digest), h.seal.digest, h.name);
      assert.equal(hex(P.encodeDigestItem(P.sealItem(seal))), h.seal_item_scale, h.name);
      const sealed = P.encodeHeader({ ...header, digest: [...digest, P.sealItem(seal)] });
      assert.equal(hex(sealed), h.sealed_scale, h.name);
      assert.equal(hex(P.blake2_256(sealed)), h.block_hash, h.name);
    }
    // "The first winning ticket in (nonce, tile_i, tile_j) order": searched
    // for block-1 (2,837 nonces, 45k tiles), which also times the search.
    const h = golden.headers[0];
    const started = performance.now();
    const first = firstWinner(h.params, bytes(h.weights_seed), bytes(h.job_seed), h.difficulty, BigInt(h.seal.nonce));
    const seconds = (performance.now() - started) / 1000;
    assert.deepEqual([first.nonce, first.tileI, first.tileJ], [BigInt(h.seal.nonce), h.seal.tile_i, h.seal.tile_j]);
    t.diagnostic(`search speed, dev parameters: ${Math.round(first.tiles / seconds)} tiles/s (${first.tiles} tiles in ${seconds.toFixed(2)} s)`);
  });

  test('runtime API encodings: challenges, difficulties, verify errors', () => {
    for (const c of golden.challenges) {
      assert.equal(hex(P.encodeChallenge(c.params, bytes(c.weights_seed), BigInt(c.epoch_index))), c.scale, c.name);
    }
    for (const d of golden.difficulties) assert.equal(hex(P.u256le(d.value)), d.scale, d.value);
    for (const e of golden.verify_errors) assert.equal(hex(P.encodeVerifyError(e.error)), e.scale, e.error);
  });

  test('verify_cases: every outcome, in the order of the checks, and its SCALE', () => {
    for (const c of golden.verify_cases) {
      const seal = bytes(c.seal);
      const r = P.verify(c.params, bytes(c.weights_seed), bytes(c.pre_hash), c.difficulty, seal);
      assert.equal(r.ok ? 'Ok' : r.error, c.outcome, c.name);
      assert.equal(r.ok ? hex(r.digest) : null, c.digest, c.name);
      assert.equal(hex(P.concat(bytes(c.pre_hash), P.scaleBytes(seal))), c.args_scale, c.name);
      assert.equal(hex(P.encodeVerifyResult(r)), c.result_scale, c.name);
    }
  });

  test('target boundary', () => {
    const b = golden.target_boundary;
    const value = P.digestValue(bytes(b.digest));
    assert.equal(value.toString(), b.digest_value);
    const max = ((1n << 256n) - 1n) / value;
    assert.equal(max.toString(), b.max_winning_difficulty);
    assert.equal(P.target(max).toString(), b.target_at_max);
    assert.equal(P.target(max + 1n).toString(), b.target_above_max);
    assert.ok(P.meetsTarget(bytes(b.digest), P.target(max)));
    assert.ok(!P.meetsTarget(bytes(b.digest), P.target(max + 1n)));
  });
});

// ---------------------------------------------------------------- the pool

// The pool's account authors every block and pays out with its key
// (node/tests/pool.rs's; not endowed at genesis: it holds what it earned).
const POOL_KEY = '//mlpow-pool-test';
// A tenth of a unit (the existential deposit is a thousandth): the JS
// miner, a few per cent of the pool's work, is owed that within a block or two.
const THRESHOLD = 10n ** 11n;

// Node's runner times all of a suite's tests together (from the end of its
// before hook) against this one budget, which the timer races, so under load
// on a slow CI machine it must cover the sum of the tests' waits below, not
// the longest: 60 + 30, 60, 30 + 30 and 60 + 30 s at their limits (300 s),
// besides the unbounded ones (the hostile submissions' shares, the chain
// scans), with room to spare.
describe('the JS miner through the real mlpow-pool', { timeout: 600_000 }, () => {
  let base;
  const procs = [];
  let api;
  let pool;
  let miner;
  let poolAccount;
  let jsAddress;
  let jsUser;
  let workerUser;
  const difficulties = []; // [ms since start, share difficulty] as the JS miner was told
  let t0;

  before(async () => {
    t0 = Date.now();
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
    poolAccount = keyring.addFromUri(POOL_KEY);
    jsAddress = keyring.addFromUri('//JsMiner').address;
    jsUser = `${jsAddress}.js1`;
    workerUser = `${keyring.addFromUri('//PoolWorker').address}.rig1`;
    base = mkdtempSync(join(tmpdir(), 'mlpow-e2e-stratum-'));
    // A dev node authoring as the pool, final two blocks deep at once, so
    // that the pool's blocks are settled (and paid out) within the test.
    const { node, rpcPort } = await startNode('dev', base, 'node', [
      '--author', poolAccount.address, '--max-reorg-depth', '2', '--finality-settle-secs', '0',
    ], 120_000);
    procs.push(node);
    const ws = `ws://127.0.0.1:${rpcPort}`;
    // Vardiff aims at a share a second per connection; the first share
    // difficulty is low enough that the JS miner (8k to 20k tiles/s on two
    // busy cores) has shares within a second of its first job.
    pool = await startPool(base, ws, [
      '--share-interval', '1', '--start-difficulty', '2000', '--fee-percent', '1',
      '--payout-key', POOL_KEY, '--payout-threshold', String(THRESHOLD),
    ]);
    procs.push(pool.proc);
    procs.push(new Proc('mlpow-worker', WORKER_BIN,
      ['--pool', pool.url, '--user', workerUser, '--threads', '1', '--report-secs', '2'], join(base, 'worker.log')));
    api = await ApiPromise.create({ provider: new WsProvider(ws), rpc: MLPOW_RPC, throwOnConnect: true, noInitWarn: true });
    miner = new StratumMiner({ url: pool.url, user: jsUser });
    miner.on('difficulty', (d) => difficulties.push([Date.now() - t0, d]));
    await miner.start();
  });

  after(async () => {
    miner?.stop();
    if (api) await api.disconnect().catch(() => {});
    for (const p of procs.reverse()) await p.stop();
    if (!process.env.MLPOW_KEEP_LOGS) rmSync(base, { recursive: true, force: true });
    else console.log(`logs kept in ${base}`);
  });

  const logs = () => procs.map((p) => `--- ${p.name}:\n${p.tail(15)}`).join('\n');
  const workerOf = (status, user) => status.workers.find((w) => w.worker === user);
  const balanceOf = (status, address) => status.ledger.balances.find((b) => b.address === address);
  // The pool counts a share before its answer reaches the miner, so the
  // miner's own count is waited for, never read at once after the pool's.
  const minerAccepted = (count) => within(new Promise((resolve) => {
    const check = () => {
      if (miner.stats.accepted < count) return;
      miner.off('accepted', check);
      resolve();
    };
    miner.on('accepted', check);
    check();
  }), 30_000, `the JS miner's own count of accepted shares to reach ${count} (now ${miner.stats.accepted})`);

  test('the JS miner\'s shares are accepted and counted for its worker', async (t) => {
    const status = await waitStatus(pool, 'accepted shares from both miners', (s) =>
      (workerOf(s, jsUser)?.accepted ?? 0) >= 5 && (workerOf(s, workerUser)?.accepted ?? 0) >= 1, 60_000)
      .catch((e) => { throw new Error(`${e.message}\n${logs()}`); });
    const js = workerOf(status, jsUser);
    await minerAccepted(5);
    assert.equal(js.invalid, 0);
    assert.ok(BigInt(js.weight) > 0n, JSON.stringify(js));
    t.diagnostic(`after ${Date.now() - t0} ms: JS miner ${miner.stats.accepted} accepted, worker ${workerOf(status, workerUser).accepted}; difficulties ${difficulties.map(([ms, d]) => `${d}@${ms}`).join(' ')}`);
  });

  test('blocks found through the pool are imported, authored by the pool; final ones credit the JS miner', async () => {
    // Three blocks, one of them final and shared out (PPLNS) to the JS
    // miner's address among others.
    // The pool counts a block accepted before it records the block in its
    // ledger, so under load a status can show three accepted and fewer in
    // the ledger: the ledger's count is waited for too, not read at once.
    const status = await waitStatus(pool, 'three blocks through the pool, in its ledger, the JS miner credited', (s) =>
      s.blocks_accepted >= 3 && s.ledger.blocks.length >= 3 && s.ledger.blocks.some((b) => b.state === 'credited')
        && balanceOf(s, jsAddress), 60_000);
    const credit = balanceOf(status, jsAddress);
    assert.ok(BigInt(credit.owed) + BigInt(credit.in_flight) + BigInt(credit.paid) > 0n, JSON.stringify(credit));
    // A second winner on a job already won (the worker finds two in one
    // batch) reaches the node after it moved on: the pool counts it as
    // stale, not rejected.
    assert.equal(status.blocks_rejected, 0, JSON.stringify(status));
    assert.ok(status.blocks_accepted + status.blocks_stale <= status.blocks_found, JSON.stringify(status));
    assert.ok(status.ledger.blocks.length >= 3);
    for (const b of status.ledger.blocks) {
      // Each one is on the node, authored by the pool's account (SPEC.md:
      // the header's first digest item, PreRuntime(pow_, author)).
      const header = await api.rpc.chain.getHeader(b.hash);
      assert.equal(header.number.toNumber(), b.number);
      const pre = header.digest.logs[0];
      assert.ok(pre.isPreRuntime, pre.toString());
      const [engine, author] = pre.asPreRuntime;
      assert.equal(engine.toUtf8(), 'pow_');
      assert.equal(author.toHex(), u8aToHex(poolAccount.publicKey));
      if (b.state === 'credited') assert.equal((await api.rpc.chain.getBlockHash(b.number)).toHex(), b.hash, `block #${b.number} is canonical`);
    }
  });

  test('hostile submissions are refused with STRATUM.md\'s codes, and the miner mines on', async (t) => {
    // The next share the pool accepts on the job the miner is still on
    // (a share of an older job would be answered 21, stale, first).
    const nextAccepted = () => new Promise((resolve) => {
      const on = (share) => {
        if (share.job !== miner.job) return;
        miner.off('accepted', on);
        resolve(share);
      };
      miner.on('accepted', on);
    });
    // Submits `seal(share)` right after a fresh accepted share, and returns
    // the pool's error code; a new block in between (21) means try again.
    const refusal = async (what, seal) => {
      for (let tries = 0; tries < 10; tries++) {
        const share = await nextAccepted();
        const error = await miner.submit(share.job.id, seal(share)).then(() => null, (e) => e);
        assert.ok(error, `${what}: accepted`);
        if (error.code !== 21) return error.code;
      }
      throw new Error(`${what}: stale ten times in a row`);
    };
    const before = workerOf(await pool.status(), jsUser);
    const acceptedBefore = miner.stats.accepted;
    const codes = {};
    // Check 7: the same share again.
    codes.duplicate = await refusal('duplicate', (s) => s.seal);
    // Check 8 (TileOutOfRange is error 26): tile_i = m/t.
    codes.tileOutOfRange = await refusal('tile out of range', (s) =>
      P.encodeSeal({ nonce: s.nonce, tileI: s.job.params.m / s.job.params.t, tileJ: s.tileJ }));
    // Check 8 (AboveTarget is 23): the same nonce's tile moved to one that
    // loses at the share difficulty (judged here first).
    codes.corruptedTile = await refusal('corrupted tile', (s) => {
      const { m, n, t: edge } = s.job.params;
      for (let i = 0; i < m / edge; i++) {
        for (let j = 0; j < n / edge; j++) {
          const seal = P.encodeSeal({ nonce: s.nonce, tileI: i, tileJ: j });
          if (!P.verify(s.job.params, s.job.weightsSeed, s.job.preHash, s.job.shareDifficulty, seal).ok) return seal;
        }
      }
      throw new Error('every tile of the nonce is a share');
    });
    // Check 5: a seal one byte short.
    codes.shortSeal = await refusal('15-byte seal', (s) => s.seal.subarray(0, 15));
    // Check 6: a nonce outside this connection's prefix (its top bit flipped).
    codes.foreignNonce = await refusal('nonce outside the prefix', (s) =>
      P.encodeSeal({ nonce: s.nonce ^ (1n << 63n), tileI: s.tileI, tileJ: s.tileJ }));
    assert.deepEqual(codes, { duplicate: 22, tileOutOfRange: 26, corruptedTile: 23, shortSeal: 26, foreignNonce: 28 });
    // Still connected, not banned, and mining: more shares accepted.
    const after = await waitStatus(pool, 'the JS miner\'s shares after the hostile ones', (s) =>
      workerOf(s, jsUser).accepted >= before.accepted + 8, 30_000);
    const js = workerOf(after, jsUser);
    await minerAccepted(acceptedBefore + 8);
    assert.equal(js.duplicate - before.duplicate, 1);
    assert.equal(js.invalid - before.invalid, 4);
    assert.ok(miner.running);
    t.diagnostic(`codes ${JSON.stringify(codes)}; JS worker ${JSON.stringify(js)}`);
  });

  test('the pool pays the JS miner\'s address on chain', async (t) => {
    // The balance rises from 0: the address holds nothing else.
    let rose;
    const risen = new Promise((resolve) => { rose = resolve; });
    const unsub = await api.query.system.account(jsAddress, (account) => {
      if (account.data.free.toBigInt() > 0n) rose(account.data.free.toBigInt());
    });
    const paidBalance = await within(risen, 60_000, `a payout to ${jsAddress}`)
      .catch((e) => { throw new Error(`${e.message}\n${logs()}`); })
      .finally(unsub);
    assert.ok(paidBalance >= THRESHOLD, `paid ${paidBalance}, at least the payout threshold`);
    // Every transfer from the pool's account to it, up to the best block,
    // sums to its balance there (the only way it gets anything).
    const best = await api.rpc.chain.getHeader();
    const atBest = await api.at(best.hash);
    const balance = (await atBest.query.system.account(jsAddress)).data.free.toBigInt();
    let transfers = 0n;
    let count = 0;
    for (let n = 1; n <= best.number.toNumber(); n++) {
      const at = await api.at(await api.rpc.chain.getBlockHash(n));
      for (const { event } of await at.query.system.events()) {
        if (api.events.balances.Transfer.is(event) && event.data.from.toString() === poolAccount.address
          && event.data.to.toString() === jsAddress) {
          transfers += event.data.amount.toBigInt();
          count++;
        }
      }
    }
    assert.ok(count >= 1);
    assert.equal(transfers, balance);
    // The pool marks it paid once the transfer is final.
    const status = await waitStatus(pool, 'the payout marked paid', (s) => BigInt(balanceOf(s, jsAddress)?.paid ?? 0) > 0n, 30_000);
    const ledger = balanceOf(status, jsAddress);
    // The pool never marks more paid than reached the address. Payouts go on
    // meanwhile, so under load `paid` may already count a transfer final
    // after the block `balance` was read at: compare it with the balance at
    // the node's finalized block read after this status instead. The pool
    // marks a payout paid only once its transfer is in its node's finalized
    // state, whose head only moves on, and the address's balance only grows
    // (it receives these transfers and sends nothing), so paid (earlier) <=
    // balance (later) holds whatever lands in between.
    const finalBalance = (await (await api.at(await api.rpc.chain.getFinalizedHead())).query.system.account(jsAddress))
      .data.free.toBigInt();
    assert.ok(BigInt(ledger.paid) <= finalBalance, `paid ${ledger.paid}, balance at the finalized block ${finalBalance}`);
    t.diagnostic(`${count} transfer(s), ${transfers} in all; ledger ${JSON.stringify(ledger)}; after ${Date.now() - t0} ms`);
    t.diagnostic(`JS miner ${JSON.stringify(miner.stats)}: ${Math.round(miner.tilesPerSecond())} tiles/s; share difficulties ${difficulties.map(([ms, d]) => `${d}@${ms}ms`).join(' ')}`);
  });
});
