// A pool miner for the mlpow chain, written from consensus/STRATUM.md
// (the protocol, `mlpow-stratum/1`) and consensus/SPEC.md (the puzzle, in
// ./mlpow-puzzle.mjs) alone: it shares no code with the Rust pool or
// worker. Puzzle version 1, seeded; one TCP connection; the search runs on
// the event loop in short slices so that the connection is served between
// them (new jobs are taken within one slice).
//
//   const miner = new StratumMiner({ url: 'stratum+tcp://127.0.0.1:3333', user: 'ADDRESS.rig1' });
//   await miner.start();   // subscribe, authorize, then mine every job it is sent
//   ...
//   miner.stop();

import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

import {
  encodeSeal, fromHex, jobSeed, meetsTarget, nonceTickets, paramsError, target, toHex, weightsRows,
} from './mlpow-puzzle.mjs';

export const PROTOCOL = 'mlpow-stratum/1';

// STRATUM.md "Errors".
export const ERRORS = {
  20: 'other', 21: 'stale', 22: 'duplicate', 23: 'low difficulty', 24: 'unauthorized',
  25: 'not subscribed', 26: 'bad seal', 27: 'bad opening', 28: 'bad nonce', 29: 'banned',
};

export class StratumError extends Error {
  constructor([code, message]) {
    super(`stratum error ${code} (${ERRORS[code] ?? 'unknown'}): ${message}`);
    this.code = code;
  }
}

// How long one slice of the search holds the event loop.
const SLICE_MS = 20;

export class StratumMiner extends EventEmitter {
  // `url`: stratum+tcp://host:port ("Transport"; TLS is not served by the
  // reference pool yet, so it is not spoken here either). `user`:
  // ADDRESS or ADDRESS.WORKER ("mining.authorize").
  constructor({ url, user, agent = 'mlpow-js-miner/0.1' }) {
    super();
    const m = /^stratum\+tcp:\/\/([^:/]+):(\d+)\/?$/.exec(url);
    if (!m) throw new Error(`unsupported pool URL ${url} (stratum+tcp://host:port)`);
    this.host = m[1];
    this.port = Number(m[2]);
    this.user = user;
    this.agent = agent;
    this.nextId = 1;
    this.pending = new Map(); // request id -> { resolve, reject }
    this.shareDifficulty = null; // the last mining.set_difficulty: for jobs notified after it
    this.job = null; // the newest job: the only one worth searching
    this.btCache = { key: null, bt: null };
    this.running = false;
    this.stats = { nonces: 0, tiles: 0, searchMs: 0, found: 0, blocks: 0, accepted: 0, rejected: {} };
  }

  // Connects, subscribes and authorizes; resolves once authorized, and the
  // search starts with the first job.
  async start() {
    this.socket = connect(this.port, this.host);
    this.socket.setNoDelay(true);
    await new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('error', (e) => this.emit('disconnect', e));
    this.socket.on('close', () => this.#closed(new Error('connection closed')));
    this.#readLines();
    this.running = true;
    // "mining.subscribe" comes first (anything else is answered 25).
    const sub = await this.request('mining.subscribe', [this.agent, PROTOCOL]);
    this.session = sub.session;
    // "nonce_prefix": the top `b` bits of every nonce this connection submits.
    this.prefixBits = sub.nonce_prefix_bits;
    this.prefix = BigInt(sub.nonce_prefix);
    if (!(this.prefixBits >= 8 && this.prefixBits <= 32) || this.prefix >> BigInt(this.prefixBits)) {
      throw new Error(`bad nonce prefix ${sub.nonce_prefix}/${sub.nonce_prefix_bits}`);
    }
    await this.request('mining.authorize', [this.user, '']);
    // The search ends with stop(); a failure in it (an exhausted nonce
    // space) stops the miner too, and says why.
    this.loop = this.#search().catch((error) => {
      this.emit('failed', error);
      this.stop();
    });
    return sub;
  }

  stop() {
    this.running = false;
    this.socket?.destroy();
  }

  // One JSON-RPC request; resolves with its result, or rejects with a
  // StratumError carrying the pool's code. Answers may come out of order
  // ("Transport"), so they are matched by id.
  request(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  // mining.submit: the worker, the job id, the seal as 0x hex.
  submit(jobId, seal, worker = this.user) {
    return this.request('mining.submit', [worker, jobId, `0x${toHex(seal)}`]);
  }

  // Tiles (tickets) per second of search so far.
  tilesPerSecond() {
    return this.stats.searchMs ? (this.stats.tiles * 1000) / this.stats.searchMs : 0;
  }

  // "Framing": one JSON object per line, `\r\n` or `\n`, empty lines ignored.
  #readLines() {
    let buffered = '';
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk) => {
      buffered += chunk;
      let end;
      while ((end = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, end).replace(/\r$/, '');
        buffered = buffered.slice(end + 1);
        if (line.trim()) this.#message(JSON.parse(line));
      }
    });
  }

  #message(msg) {
    if (msg.method === undefined || msg.method === null) {
      const waiter = this.pending.get(msg.id);
      if (!waiter) return;
      this.pending.delete(msg.id);
      if (msg.error) waiter.reject(new StratumError(msg.error));
      else waiter.resolve(msg.result);
    } else if (msg.method === 'mining.set_difficulty') {
      this.shareDifficulty = BigInt(msg.params[0]);
      this.emit('difficulty', this.shareDifficulty);
    } else if (msg.method === 'mining.notify') {
      this.#notify(msg.params[0]);
    }
  }

  #closed(error) {
    this.running = false;
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
    this.#wake?.();
  }

  // "mining.notify". A job is judged at the share difficulty last set
  // before it was notified; the same job sent again (`clean_jobs` false)
  // under a lower difficulty takes shares at its lowest. Only the newest
  // job can make a block, so the search always moves to it; a job sent
  // again keeps its place in the nonce space (restarting would only find
  // shares the pool already has: error 22).
  #notify(p) {
    const difficulty = this.shareDifficulty ?? 1n;
    if (this.job && this.job.id === p.job_id) {
      if (difficulty < this.job.shareDifficulty) this.#setShareDifficulty(this.job, difficulty);
      this.emit('job', this.job);
      return;
    }
    const params = p.params;
    const why = paramsError(params) ?? (params.version !== 1 ? 'puzzle v2 is not implemented by this miner' : null);
    const preHash = fromHex(p.pre_hash);
    const wSeed = fromHex(p.weights_seed);
    const job = {
      id: p.job_id,
      clean: p.clean_jobs,
      number: p.number,
      params,
      preHash,
      weightsSeed: wSeed,
      jobSeed: jobSeed(preHash, wSeed),
      blockDifficulty: BigInt(p.difficulty),
      blockTarget: target(BigInt(p.difficulty)),
      unusable: why,
      counter: 0n,
    };
    this.#setShareDifficulty(job, difficulty);
    this.job = job;
    this.emit('job', job);
    this.#wake?.();
  }

  #setShareDifficulty(job, difficulty) {
    job.shareDifficulty = difficulty;
    job.shareTarget = target(difficulty);
  }

  // The weights Bt (n x k) of an epoch, made once per weights seed.
  #weights(job) {
    const key = `${toHex(job.weightsSeed)}/${job.params.n}/${job.params.k}`;
    if (this.btCache.key !== key) this.btCache = { key, bt: weightsRows(job.params, job.weightsSeed, 0, job.params.n) };
    return this.btCache.bt;
  }

  #wake = null;

  async #search() {
    let tile = new Int32Array(0);
    while (this.running) {
      const job = this.job;
      if (!job || job.unusable) {
        if (job?.unusable) this.emit('warning', `job ${job.id} cannot be mined: ${job.unusable}`);
        await new Promise((resolve) => { this.#wake = resolve; });
        this.#wake = null;
        continue;
      }
      if (tile.length !== job.params.t ** 2) tile = new Int32Array(job.params.t ** 2);
      const started = performance.now();
      const bt = this.#weights(job);
      const space = 1n << BigInt(64 - this.prefixBits);
      const high = this.prefix << BigInt(64 - this.prefixBits);
      // "What a miner does": every tile of every nonce, each compared with
      // the share target. Messages (a new job) are read between slices.
      while (this.job === job && performance.now() - started < SLICE_MS) {
        if (job.counter >= space) throw new Error(`job ${job.id}: nonce space exhausted`);
        const nonce = high | job.counter++;
        this.stats.tiles += nonceTickets(job.params, bt, job.jobSeed, nonce, (tileI, tileJ, digest) => {
          if (meetsTarget(digest, job.shareTarget)) this.#found(job, { nonce, tileI, tileJ }, digest);
        }, tile);
        this.stats.nonces++;
      }
      this.stats.searchMs += performance.now() - started;
      await yieldToLoop();
    }
  }

  // A share: submit it at once ("mining.submit"); one that also meets the
  // block's target is a block, which the pool passes to its node.
  #found(job, ticket, digest) {
    const seal = encodeSeal(ticket);
    const isBlock = meetsTarget(digest, job.blockTarget);
    const share = { job, seal, digest, isBlock, ...ticket };
    this.stats.found++;
    if (isBlock) this.stats.blocks++;
    this.emit('share', share);
    this.submit(job.id, seal).then(
      () => {
        this.stats.accepted++;
        this.emit('accepted', share);
      },
      (error) => {
        const code = error.code ?? 'closed';
        this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1;
        this.emit('rejected', share, error);
      },
    );
  }
}
