//! Faults with nothing lost: a mining node SIGKILLed again and again, each
//! time just as a block is being imported, restarts on an intact database;
//! its worker, never restarted, reconnects every time and mines on.

mod common;

use common::*;
use std::{
	process::Command,
	time::{Duration, Instant},
};

const TIMEOUT: Duration = Duration::from_secs(120);
const KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_imports_leaves_an_intact_database() {
	let dir = tempfile::tempdir().unwrap();
	let base = dir.path().join("chain");
	let mut node = Node::start_dev(&base, &[]);
	let rpc_port = node.rpc_port;
	let mut client = node.connect(TIMEOUT).await;
	let mut worker = start_worker(&node, 1);
	let mut seen = Vec::new(); // hashes of blocks 1.., as last reported

	for round in 1..=KILLS {
		// Wait for a new best block, then kill at once: the node is writing
		// it (import, finality, the next proposal) and the worker is
		// submitting the next one.
		let start = best_number(&client).await;
		let deadline = Instant::now() + scaled(TIMEOUT);
		let best = loop {
			node.proc.assert_running();
			let best = best_number(&client).await;
			if best > start {
				break best;
			}
			assert!(Instant::now() < deadline, "round {round}: no block after #{start}");
			tokio::time::sleep(Duration::from_millis(10)).await;
		};
		seen.clear();
		for n in 1..=best {
			seen.push(block_hash(&client, n).await);
		}
		node.proc.child.kill().unwrap(); // SIGKILL
		node.proc.child.wait().unwrap();
		drop(client);

		// Same database, same port: it opens, every block is there, and the
		// worker (still running) brings new ones.
		node = Node::start_dev_on(&base, rpc_port, &[]);
		client = node.connect(TIMEOUT).await;
		let after = best_number(&client).await;
		assert!(after + 1 >= best, "round {round}: best #{after} after a kill at #{best}");
		for (n, hash) in (1..=after.min(best)).zip(&seen) {
			assert_eq!(block_hash(&client, n).await, *hash, "round {round}: block #{n}");
		}
		wait_for_block(&client, &mut node, best + 2, TIMEOUT).await;
		worker.assert_running();
		println!("round {round}: killed at #{best}, restarted at #{after}, mining again");
	}
	let best = best_number(&client).await;
	drop(client);
	worker.stop();
	node.proc.stop();

	// Every block's body and state survived: the whole chain exports, and
	// re-imports into a fresh database with every seal checked. Exported up
	// to `best` exactly: the worker may still have sealed a block between
	// reading `best` and stopping, and that one would make the count differ.
	let export = dir.path().join("chain.bin");
	let out = Command::new(node_bin())
		.args(["export-blocks", "--dev", "--binary", "--base-path", base.to_str().unwrap(), "--from", "1"])
		.args(["--to", &best.to_string()])
		.arg(&export)
		.output()
		.unwrap();
	assert!(out.status.success(), "export-blocks: {}", String::from_utf8_lossy(&out.stderr));
	let fresh = dir.path().join("fresh");
	let out = Command::new(node_bin())
		.args(["import-blocks", "--dev", "--binary", "--base-path", fresh.to_str().unwrap()])
		.arg(&export)
		.output()
		.unwrap();
	let log = String::from_utf8_lossy(&out.stderr);
	assert!(out.status.success(), "import-blocks: {log}");
	let info = Command::new(node_bin())
		.args(["chain-info", "--dev", "--base-path", fresh.to_str().unwrap()])
		.output()
		.unwrap();
	let info = String::from_utf8_lossy(&info.stdout).to_string();
	let imported = info
		.find('{')
		.and_then(|i| serde_json::from_str::<serde_json::Value>(&info[i..]).ok())
		.and_then(|v| v["best_number"].as_u64());
	assert_eq!(imported, Some(best as u64), "chain-info of the re-imported chain: {info}");
	let worker_log = std::fs::read_to_string(&worker.log).unwrap();
	assert!(worker_log.matches("reconnecting").count() >= KILLS, "the worker reconnected after every kill");
	println!("{KILLS} kills; the chain of {best} blocks exports and re-imports with every seal checked");
}
