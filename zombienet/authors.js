// Zombienet js-script: how many distinct reward accounts authored the blocks
// of this node's best chain (from each header's `pow_` pre-runtime digest).
// With two miners competing, both should have won blocks.

async function run(nodeName, networkInfo) {
  const api = await zombie.connect(networkInfo.nodesByName[nodeName].wsUri);
  try {
    const best = (await api.rpc.chain.getHeader()).number.toNumber();
    const authors = new Map();
    for (let n = 1; n <= best; n++) {
      const header = await api.rpc.chain.getHeader(await api.rpc.chain.getBlockHash(n));
      const pre = header.digest.logs.find((l) => l.isPreRuntime);
      const [engine, data] = pre.asPreRuntime;
      if (engine.toHex() !== '0x706f775f') throw new Error(`block #${n}: pre-runtime digest is not pow_`);
      const author = api.createType('AccountId', data).toString();
      authors.set(author, (authors.get(author) || 0) + 1);
    }
    console.log(`\n\t[${nodeName}] authors of blocks 1..${best}: ${[...authors].map(([a, c]) => `${a} x${c}`).join(', ')}`);
    return authors.size;
  } finally {
    await api.disconnect();
  }
}

module.exports = { run };
