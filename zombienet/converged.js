// Zombienet js-script: every node of the network has the same block at a
// common height of at least `args[0]`, and their best blocks are within
// `args[1]` (default 3) blocks of each other. Returns 1 when that holds;
// zombienet's "within N seconds" bounds the wait.
//
// While it waits it also watches every node's imported heads (forks
// included) and prints the heights at which the two miners produced
// competing blocks, and which one each node kept.

async function run(nodeName, networkInfo, args) {
  const minHeight = Number(args[0] || 1);
  const maxSpread = Number(args[1] || 3);
  const nodes = networkInfo.relay;
  const apis = await Promise.all(nodes.map((n) => zombie.connect(n.wsUri)));
  const seen = new Map(); // height -> Set of hashes imported by any node
  const unsubs = await Promise.all(
    apis.map((api) =>
      api.rpc.chain.subscribeAllHeads((h) => {
        const n = h.number.toNumber();
        if (!seen.has(n)) seen.set(n, new Set());
        seen.get(n).add(h.hash.toHex());
      }),
    ),
  );
  try {
    for (;;) {
      const bests = await Promise.all(apis.map(async (api) => (await api.rpc.chain.getHeader()).number.toNumber()));
      const low = Math.min(...bests);
      const high = Math.max(...bests);
      if (low >= minHeight && high - low <= maxSpread) {
        const hashes = await Promise.all(apis.map(async (api) => (await api.rpc.chain.getBlockHash(low)).toHex()));
        if (hashes.every((h) => h === hashes[0])) {
          const forks = [...seen.entries()].filter(([, s]) => s.size > 1).map(([h, s]) => `#${h} x${s.size}`);
          console.log(
            `\n\t[${nodeName}] converged: ${nodes.map((n, i) => `${n.name} #${bests[i]}`).join(', ')}; ` +
              `common block #${low} ${hashes[0]}; competing blocks seen while waiting: ${forks.length ? forks.join(', ') : 'none'}`,
          );
          return 1;
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    unsubs.forEach((u) => u());
    await Promise.all(apis.map((api) => api.disconnect()));
  }
}

module.exports = { run };
