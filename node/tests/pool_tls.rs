//! The pool over TLS (`stratum+ssl://`, issue 25): `mlpow-pool
//! --tls-listen` serves the same protocol, pool and ledger over TLS, and
//! `mlpow-worker --pool stratum+ssl://… --pool-ca` mines through it. A
//! worker that does not trust the pool's certificate refuses to mine for
//! it, and a miner speaking plain TCP to the TLS port gets no answer.
//!
//! The certificate is the pool's own (self-signed for `localhost`, made by
//! the test), as many pools have: the worker trusts it through
//! `--pool-ca`, and only through it.

mod common;

use common::{pool::*, *};
use serde_json::json;
use sp_core::crypto::{AccountId32, Ss58Codec};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_mine_through_the_pool_over_tls_and_check_its_certificate() {
	let tmp = tempfile::tempdir().unwrap();
	let dir = tmp.path();
	let rcgen::CertifiedKey { cert, key_pair } =
		rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
	let (cert_pem, key_pem) = (dir.join("pool-cert.pem"), dir.join("pool-key.pem"));
	std::fs::write(&cert_pem, cert.pem()).unwrap();
	std::fs::write(&key_pem, key_pair.serialize_pem()).unwrap();

	let author = AccountId32::new([0x55; 32]).to_ss58check();
	let mut node = Node::start_dev(&dir.join("node"), &["--author", &author]);
	node.connect(POOL_TIMEOUT).await;
	let (listen, tls_port, status_port) = (free_port(), free_port(), free_port());
	let tls_listen = format!("127.0.0.1:{tls_port}");
	let tls_args =
		["--tls-listen", &tls_listen, "--tls-cert", cert_pem.to_str().unwrap(), "--tls-key", key_pem.to_str().unwrap()];
	let mut pool = start_pool_with(dir, &node, listen, status_port, 1, &tls_args);
	pool.wait_for_log("listening for miners on stratum+ssl://", POOL_TIMEOUT).await;

	// A worker that trusts the pool's certificate mines through TLS.
	let url = format!("stratum+ssl://localhost:{tls_port}");
	let trusted = format!("{}.tls", AccountId32::new([0x66; 32]).to_ss58check());
	let mut worker = start_pool_worker_at(dir, &url, &trusted, 1, &["--pool-ca", cert_pem.to_str().unwrap()]);
	// One that trusts only the system's roots refuses the pool.
	let untrusting = format!("{}.untrusting", AccountId32::new([0x77; 32]).to_ss58check());
	let mut refusing = start_pool_worker_at(dir, &url, &untrusting, 1, &[]);
	let s = wait_status(&mut pool, status_port, "shares and a block over TLS", |s| {
		accepted(s, &trusted) >= 3 && s["blocks_accepted"].as_u64() >= Some(1)
	})
	.await;
	refusing.wait_for_log("certificate", POOL_TIMEOUT).await;
	assert_eq!(accepted(&s, &untrusting), 0, "{s}");
	let log = std::fs::read_to_string(&refusing.log).unwrap();
	assert!(!log.contains("mining for pool"), "the untrusting worker mined for the pool:\n{log}");

	// Plain TCP to the TLS port: a Stratum line gets no Stratum answer.
	let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", tls_port)).await.unwrap();
	let subscribe = json!({ "id": 1, "method": "mining.subscribe", "params": ["plain", "mlpow-stratum/1"] });
	plain.write_all(format!("{subscribe}\n").as_bytes()).await.unwrap();
	let mut answer = Vec::new();
	let read = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut answer)).await;
	assert!(
		!String::from_utf8_lossy(&answer).contains("nonce_prefix"),
		"a plain connection was served on the TLS port: {read:?} {answer:?}"
	);

	// And the plain port still serves plain TCP beside it.
	let plain_user = format!("{}.plain", AccountId32::new([0x88; 32]).to_ss58check());
	let mut plain_worker = start_pool_worker(dir, listen, &plain_user, 1);
	wait_status(&mut pool, status_port, "shares over plain TCP beside TLS", |s| accepted(s, &plain_user) >= 1).await;
	for w in [&mut worker, &mut refusing, &mut plain_worker] {
		w.assert_running();
		w.stop();
	}
}
