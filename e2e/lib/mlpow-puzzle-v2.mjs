// Puzzle version 2 of the mlpow chain, written from consensus/SPEC-v2.md
// (and SPEC.md, which it builds on) alone: no code of the Rust
// implementation was read. Section names below are SPEC-v2.md's.
//
// What v1 and v2 share (BLAKE3 derive_key/keyed hash, the seekable XOF
// `xofAt`, SCALE, job_seed, the target, headers) is reused from the v1
// transcription in ./mlpow-puzzle.mjs.

import { blake3 } from '@noble/hashes/blake3';

import {
  concat, deriveKey, digestValue, encodeParams, fromHex, jobSeed, paramsError as paramsErrorV1,
  target, toHex, u32le, u64le, xofAt,
} from './mlpow-puzzle.mjs';

export { encodeVerifyError, encodeVerifyResult } from './mlpow-puzzle.mjs';

// "Context strings".
export const CTX2 = {
  A: 'mlpow v2 activations',
  BT: 'mlpow v2 weights',
  NOISE_SEED: 'mlpow v2 noise seed',
  NOISE_A: 'mlpow v2 noise A',
  NOISE_BT: 'mlpow v2 noise B',
  SELECT_A: 'mlpow v2 select A',
  SELECT_BT: 'mlpow v2 select B',
  TICKET_KEY: 'mlpow v2 ticket key',
  LEAF: 'mlpow v2 leaf',
  NODE: 'mlpow v2 node',
};

export const MODE_SEEDED = 0;
export const MODE_CHOSEN = 1;

// ------------------------------------------------------------ parameters

// "Verifying a v2 seal", step 1: SPEC.md's rules 1 to 11 in order, then
// (the v2 code's own check) a version other than 2 is UnsupportedVersion.
export function paramsError(params) {
  const bad = paramsErrorV1(params);
  if (bad) return bad;
  if (params.version !== 2) return 'UnsupportedVersion';
  return null;
}

// ---------------------------------------------------------------- values

// "Values": seven(b) = (b as i8) >> 1, arithmetic.
export const seven = (b) => ((b << 24) >> 24) >> 1;
function sevenAll(bytes) {
  const out = new Int8Array(bytes.length);
  for (let p = 0; p < bytes.length; p++) out[p] = seven(bytes[p]);
  return out;
}

// ------------------------------------------------------------- matrices

// "The matrices", seeded: rows `row .. row + rows` of A (from job_seed) and
// of Bt (from weights_seed), each element byte y*k + z of its stream.
export const seededARows = (params, jSeed, row, rows) => sevenAll(xofAt(CTX2.A, jSeed, row * params.k, rows * params.k));
export const seededBtRows = (params, wSeed, row, rows) => sevenAll(xofAt(CTX2.BT, wSeed, row * params.k, rows * params.k));

// i8 elements as their bytes.
export const asBytes = (i8) => new Uint8Array(i8.buffer, i8.byteOffset, i8.byteLength);
export const asI8 = (u8) => new Int8Array(u8.buffer, u8.byteOffset, u8.byteLength);

// ----------------------------------------------------------- commitments

const ZERO32 = new Uint8Array(32);

// depth(x) = ceil(log2(x)), 0 for x = 1.
export function depth(x) {
  let d = 0;
  while (2 ** d < x) d++;
  return d;
}

// A block of t rows (t*k bytes) -> its leaf.
export const leaf = (rowBytes) => deriveKey(CTX2.LEAF, rowBytes);
export const node = (left, right) => deriveKey(CTX2.NODE, concat(left, right));

// The leaves of a matrix (rows x k, Int8Array): one per t rows.
export function leaves(matrix, rows, k, t) {
  const bytes = asBytes(matrix);
  const out = [];
  for (let i = 0; i < rows / t; i++) out.push(leaf(bytes.subarray(i * t * k, (i + 1) * t * k)));
  return out;
}

// Every level of the tree, from the padded leaves (level 0) to the root.
function levels(leafList) {
  const d = depth(leafList.length);
  let level = leafList.slice();
  while (level.length < 2 ** d) level.push(ZERO32);
  const all = [level];
  while (level.length > 1) {
    const up = [];
    for (let p = 0; p < level.length; p += 2) up.push(node(level[p], level[p + 1]));
    all.push((level = up));
  }
  return all;
}
export const merkleRoot = (leafList) => levels(leafList).at(-1)[0];
// The d sibling hashes of leaf `index`, from the leaf level up.
export function merklePath(leafList, index) {
  const all = levels(leafList);
  const path = [];
  for (let l = 0; l < all.length - 1; l++) path.push(all[l][(index >> l) ^ 1]);
  return path;
}
// The root from leaf hash h at index i through path p.
export function rootFromPath(h, index, path) {
  let acc = h;
  for (let l = 0; l < path.length; l++) {
    acc = (Math.floor(index / 2 ** l) % 2 === 0) ? node(acc, path[l]) : node(path[l], acc);
  }
  return acc;
}
// commit_a / commit_bt of a chosen matrix.
export const commit = (matrix, rows, k, t) => merkleRoot(leaves(matrix, rows, k, t));

// ----------------------------------------------------------------- noise

// "The noise": noise_seed over pre_hash, the parameters, the mode, the
// commitments and the nonce (133 bytes of material).
export function noiseSeed(preHash, params, mode, commitA, commitBt, nonce) {
  const material = concat(preHash, encodeParams(params), [mode], commitA, commitBt, u64le(nonce));
  if (material.length !== 133) throw new Error('noise seed material is not 133 bytes');
  return deriveKey(CTX2.NOISE_SEED, material);
}

// Rows `row .. row + rows` of E_L (m x r) or G_L (n x r).
export const noiseARows = (r, seed, row, rows) => sevenAll(xofAt(CTX2.NOISE_A, seed, row * r, rows * r));
export const noiseBtRows = (r, seed, row, rows) => sevenAll(xofAt(CTX2.NOISE_BT, seed, row * r, rows * r));

// xof(context, material) read in order from byte 0, one byte at a time.
class Stream {
  constructor(context, material) {
    this.context = context;
    this.material = material;
    this.block = -1;
    this.bytes = null;
    this.pos = 0;
  }
  next() {
    const b = Math.floor(this.pos / 64);
    if (b !== this.block) {
      this.block = b;
      this.bytes = xofAt(this.context, this.material, 64 * b, 64);
    }
    return this.bytes[this.pos++ % 64];
  }
}

// selections(context): k values in 0 .. r, a fresh Fisher-Yates shuffle of
// the identity per chunk of r, all chunks from one stream read in order.
export function selections(context, seed, k, r) {
  const stream = new Stream(context, seed);
  const out = new Uint8Array(k);
  for (let c = 0; c < k / r; c++) {
    const perm = Array.from({ length: r }, (_, q) => q);
    for (let i = r - 1; i >= 1; i--) {
      const limit = 256 - (256 % (i + 1));
      let b;
      do b = stream.next(); while (b >= limit);
      const j = b % (i + 1);
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    out.set(perm, c * r);
  }
  return out;
}

// Everything a nonce's noise needs, save the rows of E_L and G_L.
export function noise(preHash, params, mode, commitA, commitBt, nonce) {
  const seed = noiseSeed(preHash, params, mode, commitA, commitBt, nonce);
  return {
    seed,
    s: selections(CTX2.SELECT_A, seed, params.k, params.r),
    sPrime: selections(CTX2.SELECT_BT, seed, params.k, params.r),
  };
}

// A'[x][z] = A[x][z] + E[x][sel[z]] for the given rows (each in -128..=126).
export function addNoise(rows, noiseRows, sel, count, k, r) {
  const out = new Int8Array(count * k);
  for (let x = 0; x < count; x++) {
    for (let z = 0; z < k; z++) out[x * k + z] = rows[x * k + z] + noiseRows[x * r + sel[z]];
  }
  return out;
}

// ------------------------------------------------- transcript and ticket

const rotl32 = (w, s) => (s === 0 ? w >>> 0 : ((w << s) | (w >>> (32 - s))) >>> 0);

// "The transcript and the ticket": the 16-word state of the tile whose
// noisy rows of A' start at aRow of `a` and of Bt' at bRow of `bt`.
// Every running sum is an exact i32 (rule 4), so JS numbers hold them, and
// `^` takes their two's complement bits. Two rows by two columns at a time
// (t is even): each loaded element serves two products.
export function tileState(a, aRow, bt, bRow, t, k, r) {
  const W = new Uint32Array(16);
  for (let x = 0; x < t; x += 2) {
    const a0 = (aRow + x) * k;
    const a1 = a0 + k;
    for (let y = 0; y < t; y += 2) {
      const b0 = (bRow + y) * k;
      const b1 = b0 + k;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0; // P_c, running along k
      let f00 = 0, f01 = 0, f10 = 0, f11 = 0; // fold: XOR of P_0 .. P_c
      for (let c = 0; c < k; c += r) {
        for (let z = c; z < c + r; z++) {
          const u = a[a0 + z], v = a[a1 + z], p = bt[b0 + z], q = bt[b1 + z];
          s00 += u * p; s01 += u * q; s10 += v * p; s11 += v * q;
        }
        f00 ^= s00; f01 ^= s01; f10 ^= s10; f11 ^= s11;
      }
      W[y % 16] ^= rotl32(f00, x % 32) ^ rotl32(f10, (x + 1) % 32);
      W[(y + 1) % 16] ^= rotl32(f01, x % 32) ^ rotl32(f11, (x + 1) % 32);
    }
  }
  return W;
}

// W[0 .. 16] as u32 LE (64 bytes).
export function stateBytes(W) {
  const out = new Uint8Array(64);
  const view = new DataView(out.buffer);
  W.forEach((w, p) => view.setUint32(4 * p, w, true));
  return out;
}
export const ticketKey = (seed) => deriveKey(CTX2.TICKET_KEY, seed);
// keyed_hash(ticket_key, i u32 LE || j u32 LE || W as u32 LE): 72 bytes.
export function ticket(key, i, j, W) {
  const input = new Uint8Array(72);
  const view = new DataView(input.buffer);
  view.setUint32(0, i, true);
  view.setUint32(4, j, true);
  input.set(stateBytes(W), 8);
  return blake3(input, { key });
}

// ---------------------------------------------------------------- seal

export const SEAL_HEAD = 17;

// "The seal": the exact length for a mode.
export function sealLength(params, mode) {
  const { m, n, t, k } = params;
  if (mode === MODE_SEEDED) return SEAL_HEAD;
  return SEAL_HEAD + 64 + 2 * t * k + 32 * (depth(m / t) + depth(n / t));
}

// seal: { nonce, tileI, tileJ, mode } and, chosen, { commitA, commitBt,
// aRows, aPath, btRows, btPath } (rows as Int8Array or bytes, paths as
// arrays of 32-byte hashes).
export function encodeSeal(seal) {
  const head = concat(u64le(seal.nonce), u32le(seal.tileI), u32le(seal.tileJ), [seal.mode]);
  if (seal.mode === MODE_SEEDED) return head;
  const bytesOf = (x) => (x instanceof Int8Array ? asBytes(x) : x);
  return concat(head, seal.commitA, seal.commitBt, bytesOf(seal.aRows), ...seal.aPath, bytesOf(seal.btRows), ...seal.btPath);
}

// The seal's parts, or null when its length or mode byte is not one the
// spec allows ("Verifying a v2 seal", step 3). Needs the parameters for
// the chosen mode's layout.
export function decodeSeal(params, bytes) {
  if (bytes.length < SEAL_HEAD) return null;
  const mode = bytes[16];
  if (mode !== MODE_SEEDED && mode !== MODE_CHOSEN) return null;
  if (bytes.length !== sealLength(params, mode)) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, SEAL_HEAD);
  const seal = { nonce: v.getBigUint64(0, true), tileI: v.getUint32(8, true), tileJ: v.getUint32(12, true), mode };
  if (mode === MODE_CHOSEN) {
    const { m, n, t, k } = params;
    let p = SEAL_HEAD;
    const take = (len) => bytes.subarray(p, (p += len));
    const takePath = (d) => Array.from({ length: d }, () => take(32));
    seal.commitA = take(32);
    seal.commitBt = take(32);
    seal.aRows = asI8(take(t * k));
    seal.aPath = takePath(depth(m / t));
    seal.btRows = asI8(take(t * k));
    seal.btPath = takePath(depth(n / t));
  }
  return seal;
}

// ---------------------------------------------------------- verification

// One tile's ticket from its t rows of A and Bt (Int8Array, t*k each).
export function tileTicket(params, preHash, mode, commitA, commitBt, nonce, tileI, tileJ, aRows, btRows) {
  const { t, k, r } = params;
  const { seed, s, sPrime } = noise(preHash, params, mode, commitA, commitBt, nonce);
  const aNoisy = addNoise(aRows, noiseARows(r, seed, tileI * t, t), s, t, k, r);
  const btNoisy = addNoise(btRows, noiseBtRows(r, seed, tileJ * t, t), sPrime, t, k, r);
  const W = tileState(aNoisy, 0, btNoisy, 0, t, k, r);
  return { noiseSeed: seed, state: W, ticket: ticket(ticketKey(seed), tileI, tileJ, W) };
}

const inRange = (v) => v >= -64 && v <= 63;
const sameBytes = (x, y) => x.length === y.length && x.every((b, i) => b === y[i]);

// "Verifying a v2 seal", in its order. { ok: true, seal, digest } or
// { ok: false, error }, the error as v2.json names it. Where the ticket was
// computed (Ok and AboveTarget) it is also given as `ticket`, for tests;
// verify_seal does not return a losing one.
export function verify(params, wSeed, preHash, difficulty, sealBytes) {
  const bad = paramsError(params);
  if (bad) return { ok: false, error: `BadParams(${bad})` };
  if (BigInt(difficulty) === 0n) return { ok: false, error: 'ZeroDifficulty' };
  const seal = decodeSeal(params, sealBytes);
  if (!seal) return { ok: false, error: 'MalformedSeal' };
  const { m, n, t } = params;
  if (seal.tileI >= m / t || seal.tileJ >= n / t) return { ok: false, error: 'TileOutOfRange' };
  let aRows, btRows, commitA, commitBt;
  if (seal.mode === MODE_CHOSEN) {
    if (!seal.aRows.every(inRange) || !seal.btRows.every(inRange)) return { ok: false, error: 'OpeningOutOfRange' };
    if (!sameBytes(rootFromPath(leaf(asBytes(seal.aRows)), seal.tileI, seal.aPath), seal.commitA)) return { ok: false, error: 'OpeningMismatch' };
    if (!sameBytes(rootFromPath(leaf(asBytes(seal.btRows)), seal.tileJ, seal.btPath), seal.commitBt)) return { ok: false, error: 'OpeningMismatch' };
    ({ aRows, btRows, commitA, commitBt } = seal);
  } else {
    commitA = jobSeed(preHash, wSeed);
    commitBt = wSeed;
    aRows = seededARows(params, commitA, seal.tileI * t, t);
    btRows = seededBtRows(params, wSeed, seal.tileJ * t, t);
  }
  const tk = tileTicket(params, preHash, seal.mode, commitA, commitBt, seal.nonce, seal.tileI, seal.tileJ, aRows, btRows).ticket;
  if (digestValue(tk) > target(difficulty)) return { ok: false, error: 'AboveTarget', ticket: tk };
  return { ok: true, seal: { nonce: seal.nonce, tileI: seal.tileI, tileJ: seal.tileJ }, digest: tk, ticket: tk };
}

// ----------------------------------------------------------------- miner

// "What a miner does" (not consensus): one nonce over whole matrices A
// (m x k) and Bt (n x k): every tile's state and ticket in row-major tile
// order, and the noisy matrices.
export function nonceTickets(params, preHash, mode, commitA, commitBt, A, Bt, nonce) {
  const { m, n, k, t, r } = params;
  const { seed, s, sPrime } = noise(preHash, params, mode, commitA, commitBt, nonce);
  const aNoisy = addNoise(A, noiseARows(r, seed, 0, m), s, m, k, r);
  const btNoisy = addNoise(Bt, noiseBtRows(r, seed, 0, n), sPrime, n, k, r);
  const key = ticketKey(seed);
  const states = [];
  const tickets = [];
  for (let i = 0; i < m / t; i++) {
    for (let j = 0; j < n / t; j++) {
      const W = tileState(aNoisy, i * t, btNoisy, j * t, t, k, r);
      states.push(W);
      tickets.push(ticket(key, i, j, W));
    }
  }
  return { noiseSeed: seed, s, sPrime, aNoisy, btNoisy, states, tickets };
}

// The whole product X * Y^T (rows x cols), i32, row-major.
export function product(X, rows, Y, cols, k) {
  const out = new Int32Array(rows * cols);
  for (let x = 0; x < rows; x++) {
    for (let y = 0; y < cols; y++) {
      let sum = 0;
      for (let z = 0; z < k; z++) sum += X[x * k + z] * Y[y * k + z];
      out[x * cols + y] = sum;
    }
  }
  return out;
}

// A chosen-mode seal of tile (i, j) over whole matrices A and Bt.
export function chosenSeal(params, A, Bt, nonce, tileI, tileJ) {
  const { m, n, k, t } = params;
  const la = leaves(A, m, k, t);
  const lb = leaves(Bt, n, k, t);
  return encodeSeal({
    nonce, tileI, tileJ, mode: MODE_CHOSEN,
    commitA: merkleRoot(la), commitBt: merkleRoot(lb),
    aRows: A.subarray(tileI * t * k, (tileI + 1) * t * k), aPath: merklePath(la, tileI),
    btRows: Bt.subarray(tileJ * t * k, (tileJ + 1) * t * k), btPath: merklePath(lb, tileJ),
  });
}

export { fromHex, toHex };
