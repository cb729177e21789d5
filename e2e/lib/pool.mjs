// Starts the real `mlpow-pool` (in front of a node from ./chain.mjs) and
// reads its `GET /status`. Flags as README.md "Pooled mining" and
// `mlpow-pool --help` give them.

import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { NODE_BIN, Proc, freePort } from './chain.mjs';

export const POOL_BIN = process.env.MLPOW_POOL_BIN || join(NODE_BIN, '..', 'mlpow-pool');

// The pool's JSON status, or null while it does not answer.
export async function poolStatus(statusPort) {
  try {
    const res = await fetch(`http://127.0.0.1:${statusPort}/status`);
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

// `mlpow-pool` for the node at `ws`, its data under `base`; resolves once
// its status answers (it listens for miners before it serves status).
export async function startPool(base, ws, extra = [], timeoutMs = 60_000) {
  const port = await freePort();
  const statusPort = await freePort();
  const args = [
    '--node', ws,
    '--listen', `127.0.0.1:${port}`,
    '--status', `127.0.0.1:${statusPort}`,
    '--data-dir', join(base, 'pool-data'),
    ...extra,
  ];
  const proc = new Proc('mlpow-pool', POOL_BIN, args, join(base, 'pool.log'));
  const deadline = Date.now() + timeoutMs;
  while (!(await poolStatus(statusPort))) {
    if (proc.status || Date.now() > deadline) {
      await proc.stop();
      throw new Error(`mlpow-pool not ready (${JSON.stringify(proc.status)}):\n${proc.tail()}`);
    }
    await sleep(100);
  }
  return { proc, url: `stratum+tcp://127.0.0.1:${port}`, statusPort, status: () => poolStatus(statusPort) };
}

// Polls the status until `done(status)` holds; resolves with that status.
export async function waitStatus(pool, what, done, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    last = (await pool.status()) ?? last;
    if (last && done(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(last)}`);
    await sleep(250);
  }
}
