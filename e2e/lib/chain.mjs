// Starts a real mlpow-node and mlpow-worker on free ports, waits until the
// node's RPC answers, connects @polkadot/api, and tears everything down.
//
// The binaries come from the Cargo target directory that scripts/test.sh
// builds into (MLPOW_NODE_BIN / MLPOW_WORKER_BIN override them).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { ApiPromise, WsProvider } from '@polkadot/api';

const targetDir = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache', 'mlpow', 'target');
export const NODE_BIN = process.env.MLPOW_NODE_BIN || join(targetDir, 'debug', 'mlpow-node');
export const WORKER_BIN = process.env.MLPOW_WORKER_BIN || join(targetDir, 'debug', 'mlpow-worker');

// Alice's address, the reward account of the miners these tests start.
export const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';

// The node's custom mining RPC, described so that @polkadot/api decorates
// it as `api.rpc.mlpow.*` (instead of warning that it is undecorated).
// Answers are JSON objects; see consensus/work for their fields.
export const MLPOW_RPC = {
  mlpow: {
    getWork: { description: 'The current mining work item', params: [], type: 'Json' },
    submitSeal: {
      description: 'Submit a seal for the work item with this version',
      params: [
        { name: 'version', type: 'u64' },
        { name: 'seal', type: 'Text' },
      ],
      type: 'Json',
    },
  },
};

// A TCP port nothing listens on right now.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// One child process with its output in a log file.
export class Proc {
  constructor(name, bin, args, log) {
    this.name = name;
    this.log = log;
    const out = openSync(log, 'w');
    this.child = spawn(bin, args, { stdio: ['ignore', out, out] });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => resolve({ code, signal }));
      this.child.on('error', (error) => resolve({ error }));
    });
    this.status = null;
    this.exited.then((s) => {
      this.status = s;
    });
    live.add(this);
  }

  tail(lines = 40) {
    try {
      return readFileSync(this.log, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  // SIGINT (what Ctrl-C sends), then SIGKILL after 20 s.
  async stop() {
    live.delete(this);
    if (this.status) return;
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// Children still running if the test process exits abruptly.
const live = new Set();
process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

async function rpcCall(port, method, params = []) {
  const res = await fetch(`http://127.0.0.1:${port}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

// Starts `mlpow-node` for `chain` under `base` and waits until its RPC
// answers. `extra` are further arguments. Returns the process and its ports.
export async function startNode(chain, base, name, extra, timeoutMs) {
  const rpcPort = await freePort();
  const p2pPort = await freePort();
  // `--dev` is the dev chain as an authority with a throwaway network key;
  // any other chain mines only with `--validator`, which needs a network key
  // and a reward account.
  const chainArgs = chain === 'dev'
    ? ['--dev']
    : ['--chain', chain, '--validator', '--author', ALICE, '--node-key', randomBytes(32).toString('hex')];
  const args = [
    ...chainArgs,
    '--base-path', join(base, name),
    '--rpc-port', String(rpcPort),
    '--port', String(p2pPort),
    '--no-prometheus', '--no-mdns', '--no-telemetry',
    ...extra,
  ];
  const node = new Proc(name, NODE_BIN, args, join(base, `${name}.log`));
  // Ready when system_health answers (the node first compiles its
  // runtime and opens the database).
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (node.status) throw new Error(`${name} exited ${JSON.stringify(node.status)}:\n${node.tail()}`);
    try {
      await rpcCall(rpcPort, 'system_health');
      return { node, rpcPort, p2pPort };
    } catch {
      if (Date.now() > deadline) {
        await node.stop();
        throw new Error(`${name} RPC not ready after ${timeoutMs} ms:\n${node.tail()}`);
      }
      await sleep(200);
    }
  }
}

// A node of chain `chain` ('dev' or 'local') with one CPU mining worker,
// and an ApiPromise connected to it. Call `stop()` when done.
export async function startChain(chain, { timeoutMs = 120_000, nodeArgs = [] } = {}) {
  // `chain` is 'dev', 'local' or a spec file's path: only its name in the directory's.
  const base = mkdtempSync(join(tmpdir(), `mlpow-e2e-${basename(chain).replace(/[^\w-]/g, '_')}-`));
  const procs = [];
  const stop = async (api) => {
    if (api) await api.disconnect().catch(() => {});
    for (const p of procs.reverse()) await p.stop();
    if (!process.env.MLPOW_KEEP_LOGS) rmSync(base, { recursive: true, force: true });
  };
  try {
    const { node, rpcPort, p2pPort } = await startNode(chain, base, 'node', nodeArgs, timeoutMs);
    procs.push(node);
    const ws = `ws://127.0.0.1:${rpcPort}`;
    const worker = new Proc('mlpow-worker', WORKER_BIN, ['--node', ws, '--threads', '1'], join(base, 'worker.log'));
    procs.push(worker);
    const api = await ApiPromise.create({ provider: new WsProvider(ws), rpc: MLPOW_RPC, throwOnConnect: true, noInitWarn: true });
    const logs = () => `--- node log:\n${node.tail()}\n--- worker log:\n${worker.tail()}`;
    const peerId = await rpcCall(rpcPort, 'system_localPeerId');
    const bootnode = `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${peerId}`;
    return { chainName: chain, api, ws, base, node, worker, logs, bootnode, stop: () => stop(api) };
  } catch (e) {
    await stop();
    throw e;
  }
}

// A second node of `chain` under `chain.base` (from `startChain`) that mines
// nothing and syncs from it, from genesis, checking every block as it
// imports it. Returns its ApiPromise; call `stop()` when done.
export async function startPeer(chain, name, { timeoutMs = 120_000 } = {}) {
  const { node, rpcPort } = await startNode(
    chain.chainName, chain.base, name, ['--bootnodes', chain.bootnode], timeoutMs);
  try {
    const api = await ApiPromise.create({
      provider: new WsProvider(`ws://127.0.0.1:${rpcPort}`), rpc: MLPOW_RPC, throwOnConnect: true, noInitWarn: true,
    });
    return { api, node, stop: async () => { await api.disconnect().catch(() => {}); await node.stop(); } };
  } catch (e) {
    await node.stop();
    throw e;
  }
}

// A promise that one subscription settles: `subscribe(ok, fail)` starts it
// and returns (a promise of) its unsubscribe function, which is called as
// soon as the promise settles, on success, failure or timeout alike.
function settleOnce(timeoutMs, what, subscribe) {
  return new Promise((resolve, reject) => {
    let unsub = null;
    let done = false;
    const finish = (settle, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (unsub) unsub();
      settle(value);
    };
    const timer = setTimeout(() => finish(reject, new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    Promise.resolve()
      .then(() => subscribe((v) => finish(resolve, v), (e) => finish(reject, e)))
      .then(
        (u) => {
          unsub = u;
          if (done) u();
        },
        (e) => finish(reject, e),
      );
  });
}

// Resolves with the first new best header for which `predicate` holds.
export function waitForHeader(api, predicate, timeoutMs, what) {
  return settleOnce(timeoutMs, what, (ok, fail) =>
    api.rpc.chain.subscribeNewHeads((header) => {
      Promise.resolve(predicate(header)).then((yes) => yes && ok(header), fail);
    }),
  );
}

// Signs and sends `tx` from `signer`; resolves once it is in a block, with
// that block's hash, the transaction's events and its decoded error (if
// its dispatch failed).
export function submit(api, tx, signer, timeoutMs = 120_000) {
  const what = `${tx.method.section}.${tx.method.method}`;
  return settleOnce(timeoutMs, `${what} in a block`, (ok, fail) =>
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (status.isInvalid || status.isDropped || status.isUsurped) {
        fail(new Error(`${what}: ${status.type}`));
      } else if (status.isInBlock) {
        ok({ blockHash: status.asInBlock, events: events.map((r) => r.event), error: describeError(api, dispatchError) });
      }
    }),
  );
}

// `Module.Error` or the plain variant (`BadOrigin`), or null.
export function describeError(api, dispatchError) {
  if (!dispatchError) return null;
  if (dispatchError.isModule) {
    const { section, name } = api.registry.findMetaError(dispatchError.asModule);
    return `${section}.${name}`;
  }
  return dispatchError.type;
}

// The events of `events` from pallet `section` named `method`.
export function eventsOf(events, section, method) {
  return events.filter((e) => e.section === section && e.method === method);
}
