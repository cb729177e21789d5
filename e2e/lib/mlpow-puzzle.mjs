// Puzzle version 1 of the mlpow chain, written from consensus/SPEC.md alone
// (no code of the Rust implementation was read): seeds, matrices, the
// exact int8 tile product, tickets and the target, the seal, verification,
// and the SCALE encodings a miner or verifier needs (parameters, headers
// and `pre_hash`, runtime API results). Section names below are SPEC.md's.
//
// Hashes come from @noble/hashes, except one thing it cannot do: read a
// BLAKE3 XOF stream from an offset without producing every byte before it.
// "Matrices" says rows are independent 64-byte output blocks; `xofAt`
// computes those blocks with a BLAKE3 compression function written here
// (the unit test checks it against noble's streaming XOF), so a tile needs
// only its own `t` rows of each matrix, even at GPU sizes.

import { blake2b } from '@noble/hashes/blake2b';
import { blake3 } from '@noble/hashes/blake3';
import { endianness } from 'node:os';

// "Notation": the derive_key contexts, exact ASCII.
export const CTX = {
  WEIGHTS_SEED: 'mlpow v1 weights seed',
  JOB_SEED: 'mlpow v1 job seed',
  WEIGHTS: 'mlpow v1 weights',
  ACTIVATIONS: 'mlpow v1 activations',
  TILE_KEY: 'mlpow v1 tile key',
};

// ---------------------------------------------------------------- bytes

export const toHex = (bytes) => Buffer.from(bytes).toString('hex');
export const fromHex = (hex) => {
  const h = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (h.length % 2 || /[^0-9a-fA-F]/.test(h)) throw new Error(`not hex: ${hex}`);
  return new Uint8Array(Buffer.from(h, 'hex'));
};
export const concat = (...parts) => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));

export function u32le(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, Number(n), true);
  return b;
}
export function u64le(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}
// "SCALE encodings": U256 is 32 bytes little-endian.
export function u256le(n) {
  let v = BigInt(n);
  const b = new Uint8Array(32);
  for (let i = 0; i < 32; i++, v >>= 8n) b[i] = Number(v & 0xffn);
  return b;
}

// "SCALE encodings": Compact(n), four modes chosen by size.
export function compact(n) {
  const v = BigInt(n);
  if (v < 1n << 6n) return Uint8Array.of(Number(v << 2n));
  if (v < 1n << 14n) {
    const x = Number((v << 2n) | 1n);
    return Uint8Array.of(x & 0xff, x >> 8);
  }
  if (v < 1n << 30n) return u32le((v << 2n) | 2n);
  const bytes = [];
  for (let x = v; x > 0n; x >>= 8n) bytes.push(Number(x & 0xffn));
  while (bytes.length < 4) bytes.push(0); // "len = 4 for any u32 from 2^30"
  return Uint8Array.of(((bytes.length - 4) << 2) | 3, ...bytes);
}
// `Vec<u8>`: Compact(length), then the bytes.
export const scaleBytes = (bytes) => concat(compact(bytes.length), bytes);

// ------------------------------------------------------------ parameters

const PARAM_FIELDS = ['version', 'm', 'k', 'n', 't', 'r', 'epoch_length'];

// "Parameters": 28 bytes, seven u32 LE in this order.
export const encodeParams = (p) => concat(...PARAM_FIELDS.map((f) => u32le(p[f])));

// "Parameters": the validity rules in their order; the name of the first
// that fails (the ParamsError), or null. Rules 10 and 11 are v2's too, so
// that a v2 set is judged as the chain would judge it.
export const PARAMS_ERRORS = [
  'UnsupportedVersion', 'ZeroDimension', 'NotMultipleOf16', 'InnerDimensionTooLarge',
  'OuterDimensionTooLarge', 'TileTooLarge', 'TileDoesNotDivide', 'VerificationTooExpensive',
  'BadEpochLength', 'BadRank', 'OpeningTooLarge',
];
export function paramsError({ version, m, k, n, t, r, epoch_length: len }) {
  if (version !== 1 && version !== 2) return 'UnsupportedVersion';
  if (!m || !k || !n || !t) return 'ZeroDimension';
  if (m % 16 || k % 16 || n % 16 || t % 16) return 'NotMultipleOf16';
  if (k > 65536) return 'InnerDimensionTooLarge';
  if (m > 65536 || n > 65536) return 'OuterDimensionTooLarge';
  if (t > 128) return 'TileTooLarge';
  if (m % t || n % t) return 'TileDoesNotDivide';
  if (t * t * k > 2 ** 24) return 'VerificationTooExpensive';
  if (len < 1 || len > 1_000_000) return 'BadEpochLength';
  if (version === 1 ? r !== 0 : !(r >= 32 && r <= 128 && (r & (r - 1)) === 0 && k % r === 0 && k <= r * r)) return 'BadRank';
  if (version === 2 && 2 * t * k > 2 ** 19) return 'OpeningTooLarge';
  return null;
}

// ------------------------------------------------------------------ seeds

// derive_key(context, material): one hasher per context, cloned per use,
// so the context key is derived once and not on every ticket.
const kdf = new Map();
export function deriveKey(context, material) {
  let template = kdf.get(context);
  if (!template) kdf.set(context, (template = blake3.create({ context })));
  return template.clone().update(material).digest();
}

// "Seeds".
export const weightsSeed = (anchor, epochIndex) => deriveKey(CTX.WEIGHTS_SEED, concat(anchor, u64le(epochIndex)));
export const jobSeed = (preHash, wSeed) => deriveKey(CTX.JOB_SEED, concat(preHash, wSeed));

// ------------------------------------------------------------ BLAKE3 XOF

// BLAKE3's compression function (BLAKE3 spec, section 2.2), 32-bit words.
const IV = Uint32Array.of(0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19);
const PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
// The message word order of each of the 7 rounds.
const SCHEDULE = (() => {
  const rounds = [];
  for (let r = 0, order = [...Array(16).keys()]; r < 7; r++, order = PERMUTATION.map((i) => order[i])) rounds.push(order);
  return rounds;
})();
const FLAG = { CHUNK_START: 1, CHUNK_END: 2, ROOT: 8, DERIVE_KEY_CONTEXT: 32, DERIVE_KEY_MATERIAL: 64 };

// compress(cv, block, counter, blockLen, flags) into `out` (16 words).
function compress(cv, block, counter, blockLen, flags, out) {
  const s = out;
  s.set(cv, 0);
  s.set(IV.subarray(0, 4), 8);
  s[12] = counter >>> 0;
  s[13] = Math.floor(counter / 2 ** 32);
  s[14] = blockLen;
  s[15] = flags;
  const g = (a, b, c, d, x, y) => {
    s[a] = s[a] + s[b] + x; s[d] = ((s[d] ^ s[a]) >>> 16) | ((s[d] ^ s[a]) << 16);
    s[c] = s[c] + s[d]; s[b] = ((s[b] ^ s[c]) >>> 12) | ((s[b] ^ s[c]) << 20);
    s[a] = s[a] + s[b] + y; s[d] = ((s[d] ^ s[a]) >>> 8) | ((s[d] ^ s[a]) << 24);
    s[c] = s[c] + s[d]; s[b] = ((s[b] ^ s[c]) >>> 7) | ((s[b] ^ s[c]) << 25);
  };
  for (const m of SCHEDULE) {
    g(0, 4, 8, 12, block[m[0]], block[m[1]]);
    g(1, 5, 9, 13, block[m[2]], block[m[3]]);
    g(2, 6, 10, 14, block[m[4]], block[m[5]]);
    g(3, 7, 11, 15, block[m[6]], block[m[7]]);
    g(0, 5, 10, 15, block[m[8]], block[m[9]]);
    g(1, 6, 11, 12, block[m[10]], block[m[11]]);
    g(2, 7, 8, 13, block[m[12]], block[m[13]]);
    g(3, 4, 9, 14, block[m[14]], block[m[15]]);
  }
  for (let i = 0; i < 8; i++) {
    s[i] ^= s[i + 8];
    s[i + 8] ^= cv[i];
  }
}

// One input block of at most 64 bytes as 16 little-endian words.
function blockWords(bytes) {
  if (bytes.length > 64) throw new Error('xofAt: input longer than one block');
  const padded = new Uint8Array(64);
  padded.set(bytes);
  const view = new DataView(padded.buffer);
  return Uint32Array.from({ length: 16 }, (_, i) => view.getUint32(4 * i, true));
}

const contextKeys = new Map();
function contextKey(context) {
  let key = contextKeys.get(context);
  if (!key) {
    const ctx = new TextEncoder().encode(context);
    const out = new Uint32Array(16);
    compress(IV, blockWords(ctx), 0, ctx.length, FLAG.CHUNK_START | FLAG.CHUNK_END | FLAG.ROOT | FLAG.DERIVE_KEY_CONTEXT, out);
    contextKeys.set(context, (key = out.slice(0, 8)));
  }
  return key;
}

// Bytes offset .. offset+length of xof(context, material), for material of
// at most 64 bytes (every matrix stream's is 32 or 40): the input is then
// one block of one chunk, the root, and output block b is that block
// compressed with counter b ("Notation", "Matrices").
export function xofAt(context, material, offset, length) {
  const key = contextKey(context);
  const block = blockWords(material);
  const flags = FLAG.CHUNK_START | FLAG.CHUNK_END | FLAG.ROOT | FLAG.DERIVE_KEY_MATERIAL;
  const first = Math.floor(offset / 64);
  const last = Math.ceil((offset + length) / 64);
  const bytes = new Uint8Array(64 * (last - first));
  const view = new DataView(bytes.buffer);
  const out = new Uint32Array(16);
  for (let b = first; b < last; b++) {
    compress(key, block, b, material.length, flags, out);
    for (let w = 0; w < 16; w++) view.setUint32(64 * (b - first) + 4 * w, out[w], true);
  }
  return bytes.subarray(offset - 64 * first, offset - 64 * first + length);
}

// -------------------------------------------------------------- matrices

// "Matrices": rows `row .. row+rows` of Bt (n x k) and of A (m x k), as i8.
export function weightsRows(params, wSeed, row, rows) {
  const bytes = xofAt(CTX.WEIGHTS, wSeed, row * params.k, rows * params.k);
  return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}
export function activationRows(params, jSeed, nonce, row, rows) {
  const bytes = xofAt(CTX.ACTIVATIONS, concat(jSeed, u64le(nonce)), row * params.k, rows * params.k);
  return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

// ------------------------------------------------------ tiles and tickets

// "The product and its tiles": the t x t tile whose rows of A start at
// aRow (of the rows given in `a`) and rows of Bt at bRow, exactly. Every
// partial sum stays within +-2^30 (rule 4), so JS numbers are exact. Two
// rows by two columns at a time (t is a multiple of 16): each loaded
// element serves two products, twice as fast as one dot at a time in V8.
export function tileProduct(a, aRow, bt, bRow, t, k, out = new Int32Array(t * t)) {
  for (let r = 0; r < t; r += 2) {
    const a0 = (aRow + r) * k;
    const a1 = a0 + k;
    for (let c = 0; c < t; c += 2) {
      const b0 = (bRow + c) * k;
      const b1 = b0 + k;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (let x = 0; x < k; x++) {
        const u = a[a0 + x], v = a[a1 + x], p = bt[b0 + x], q = bt[b1 + x];
        s00 += u * p; s01 += u * q; s10 += v * p; s11 += v * q;
      }
      const o = r * t + c;
      out[o] = s00; out[o + 1] = s01; out[o + t] = s10; out[o + t + 1] = s11;
    }
  }
  return out;
}

// The tile bytes: t*t elements as i32 LE, row-major.
const LE = endianness() === 'LE';
export function tileBytes(tile) {
  if (LE) return new Uint8Array(tile.buffer, tile.byteOffset, tile.byteLength);
  const out = new Uint8Array(tile.length * 4);
  const view = new DataView(out.buffer);
  tile.forEach((v, i) => view.setInt32(4 * i, v, true));
  return out;
}

export const tileKey = (jSeed, nonce, i, j) => deriveKey(CTX.TILE_KEY, concat(jSeed, u64le(nonce), u32le(i), u32le(j)));
export const tileDigest = (key, bytes) => blake3(bytes, { key });

// "Difficulty and the target".
const MAX = (1n << 256n) - 1n;
export function target(difficulty) {
  const d = BigInt(difficulty);
  if (d === 0n) throw new Error('difficulty 0 has no target');
  return MAX / d;
}
export const digestValue = (digest) => BigInt(`0x${toHex(digest)}`);

// value <= target, with a cheap first look at the top 32 bits: nearly every
// ticket is decided there, without building a BigInt.
export function meetsTarget(digest, tgt) {
  const top = Number(tgt >> 224n);
  const head = ((digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | digest[3]) >>> 0;
  if (head !== top) return head < top;
  return digestValue(digest) <= tgt;
}

// ------------------------------------------------------------------ seal

// "The seal": nonce u64 LE || tile_i u32 LE || tile_j u32 LE, 16 bytes.
export const encodeSeal = ({ nonce, tileI, tileJ }) => concat(u64le(nonce), u32le(tileI), u32le(tileJ));
export function decodeSeal(bytes) {
  if (bytes.length !== 16) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, 16);
  return { nonce: v.getBigUint64(0, true), tileI: v.getUint32(8, true), tileJ: v.getUint32(12, true) };
}

// One ticket: the tile, its key and digest, from only its rows.
export function ticket(params, wSeed, jSeed, nonce, i, j) {
  const { t, k } = params;
  const a = activationRows(params, jSeed, nonce, i * t, t);
  const bt = weightsRows(params, wSeed, j * t, t);
  const tile = tileProduct(a, 0, bt, 0, t, k);
  const key = tileKey(jSeed, nonce, i, j);
  return { tile, key, digest: tileDigest(key, tileBytes(tile)) };
}

// "What a miner does": every ticket of one nonce, in (tile_i, tile_j)
// order, from the epoch's whole Bt (n x k, `weightsRows(params, seed, 0,
// n)`). A is generated once and serves every row band; `visit(i, j,
// digest)` sees each digest (the tile buffer is reused: copy what it keeps).
export function nonceTickets(params, bt, jSeed, nonce, visit, tile = new Int32Array(params.t * params.t)) {
  const { m, n, k, t } = params;
  const a = activationRows(params, jSeed, nonce, 0, m);
  const keyPrefix = concat(jSeed, u64le(nonce));
  for (let i = 0; i < m / t; i++) {
    for (let j = 0; j < n / t; j++) {
      tileProduct(a, i * t, bt, j * t, t, k, tile);
      const key = deriveKey(CTX.TILE_KEY, concat(keyPrefix, u32le(i), u32le(j)));
      visit(i, j, tileDigest(key, tileBytes(tile)));
    }
  }
  return (m / t) * (n / t);
}

// "Verification", in its order: { ok: true, digest } or { ok: false, error }
// with the error as golden.json names it (`BadParams(TileDoesNotDivide)`).
export function verify(params, wSeed, preHash, difficulty, seal) {
  const bad = paramsError(params);
  if (bad) return { ok: false, error: `BadParams(${bad})` };
  if (BigInt(difficulty) === 0n) return { ok: false, error: 'ZeroDifficulty' };
  const s = decodeSeal(seal);
  if (!s) return { ok: false, error: 'MalformedSeal' };
  if (s.tileI >= params.m / params.t || s.tileJ >= params.n / params.t) return { ok: false, error: 'TileOutOfRange' };
  const { digest } = ticket(params, wSeed, jobSeed(preHash, wSeed), s.nonce, s.tileI, s.tileJ);
  return meetsTarget(digest, target(difficulty)) ? { ok: true, digest } : { ok: false, error: 'AboveTarget' };
}

// "Runtime APIs": VerifyError's SCALE (BadParams carries its rule's index),
// and verify_seal's Result<SealCheck, VerifyError>.
const VERIFY_ERRORS = ['BadParams', 'ZeroDifficulty', 'MalformedSeal', 'TileOutOfRange', 'AboveTarget', 'OpeningOutOfRange', 'OpeningMismatch'];
export function encodeVerifyError(error) {
  const m = /^BadParams\((\w+)\)$/.exec(error);
  if (m) return Uint8Array.of(0, PARAMS_ERRORS.indexOf(m[1]));
  const index = VERIFY_ERRORS.indexOf(error);
  if (index < 1) throw new Error(`unknown VerifyError ${error}`);
  return Uint8Array.of(index);
}
export const encodeVerifyResult = (r) => (r.ok ? concat([0], r.digest) : concat([1], encodeVerifyError(r.error)));
// `MlpowApi_challenge`'s result: parameters, seed, epoch index (68 bytes).
export const encodeChallenge = (params, wSeed, epochIndex) => concat(encodeParams(params), wSeed, u64le(epochIndex));

// ---------------------------------------------------------------- headers

// "The header and `pre_hash`": digest items and the header's SCALE.
export const ENGINE_POW = new TextEncoder().encode('pow_');
export function encodeDigestItem(item) {
  switch (item.kind) {
    case 'PreRuntime': return concat([6], item.engineId, scaleBytes(item.data));
    case 'Seal': return concat([5], item.engineId, scaleBytes(item.data));
    case 'Consensus': return concat([4], item.engineId, scaleBytes(item.data));
    case 'Other': return concat([0], scaleBytes(item.data));
    case 'RuntimeEnvironmentUpdated': return Uint8Array.of(8);
    default: throw new Error(`unknown digest item ${item.kind}`);
  }
}
export const encodeHeader = ({ parentHash, number, stateRoot, extrinsicsRoot, digest }) =>
  concat(parentHash, compact(number), stateRoot, extrinsicsRoot, compact(digest.length), ...digest.map(encodeDigestItem));
export const blake2_256 = (bytes) => blake2b(bytes, { dkLen: 32 });
// pre_hash: the header without its last (seal) item; the block hash: with it.
export const sealItem = (seal) => ({ kind: 'Seal', engineId: ENGINE_POW, data: seal });
