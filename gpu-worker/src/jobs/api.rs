//! The job API: JSON-RPC 2.0 over HTTP (POST) and WebSocket, on one port
//! of this machine's loopback interface.
//!
//! | method | params | result |
//! |---|---|---|
//! | `jobs_info` | none | [`Info`]: the chain's puzzle shape, queue and memory |
//! | `jobs_submit` | a job: `{"a": M, "b": M, "label"?: text}` | [`Status`] |
//! | `jobs_status` | job id | [`Status`] |
//! | `jobs_list` | none | [`Status`] of every held job, oldest first |
//! | `jobs_result` | job id, optionally `{"npy": path}` | [`Product`] |
//! | `jobs_cancel` | job id | [`Status`] |
//! | `jobs_remove` | job id | `true` (the job and its memory are gone) |
//!
//! A matrix `M` is `{"shape": [rows, cols], "data": base64}` (row-major
//! `int8` bytes) or `{"npy": "/absolute/path.npy"}` (any signed integer
//! dtype). `A` is `rows x depth`, `B` is `depth x cols`, every value in
//! `-64..=63`, `depth` at most 2^18. The product comes back as `int32`:
//! base64 little-endian bytes inline, or written to the `.npy` path given.
//! Errors carry a code from [`super::codes`] and a message that says what
//! to change.
//!
//! Reading and writing files that a request names is why the API listens
//! on loopback only: anyone who can reach it acts as the worker's user.

use super::{
	input::{JobSpec, MAX_DEPTH, MAX_VALUE, MIN_VALUE},
	npy, JobError, Jobs, Status,
};
use base64::Engine;
use jsonrpsee::{
	server::{Server, ServerHandle},
	types::{ErrorObjectOwned, Params},
	RpcModule,
};
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, path::PathBuf, sync::Arc};

/// `jobs_info`'s answer.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
	/// The puzzle shape and version of the work being mined, or `null`
	/// without a node. Jobs run while it is v2.
	pub chain: Option<ChainShape>,
	/// Jobs with pieces still to mine.
	pub jobs_waiting: usize,
	pub memory_budget_bytes: u64,
	pub memory_held_bytes: u64,
	/// The smallest and largest input value.
	pub value_range: [i64; 2],
	pub max_depth: usize,
}

/// The part of the challenge parameters a job's client cares about.
#[derive(Clone, Debug, Serialize)]
pub struct ChainShape {
	pub version: u32,
	pub m: u32,
	pub k: u32,
	pub n: u32,
	pub t: u32,
	pub r: u32,
}

/// `jobs_result`'s optional second argument.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultTarget {
	/// Write the product here (absolute path) instead of returning it.
	npy: PathBuf,
}

/// `jobs_result`'s answer: the product `A * B`, `int32`.
#[derive(Clone, Debug, Serialize)]
pub struct Product {
	pub shape: [usize; 2],
	pub dtype: &'static str,
	/// Row-major little-endian `int32` bytes in base64, when returned inline.
	#[serde(skip_serializing_if = "Option::is_none")]
	pub data: Option<String>,
	/// The file written, when asked for one.
	#[serde(skip_serializing_if = "Option::is_none")]
	pub npy: Option<PathBuf>,
}

fn rpc_error(e: JobError) -> ErrorObjectOwned {
	ErrorObjectOwned::owned(e.code(), e.to_string(), None::<()>)
}

/// The job spec from positional (`[job]`) or named (`{...}`) params.
fn job_spec(params: &Params) -> Result<JobSpec, ErrorObjectOwned> {
	if params.as_str().is_some_and(|s| s.trim_start().starts_with('{')) {
		params.parse::<JobSpec>()
	} else {
		params.one::<JobSpec>()
	}
}

fn product(jobs: &Jobs, params: Params) -> Result<Product, ErrorObjectOwned> {
	let mut seq = params.sequence();
	let id: u64 = seq.next()?;
	let target: Option<ResultTarget> = seq.optional_next()?;
	let (rows, cols, c) = jobs.product(id).map_err(rpc_error)?;
	match target {
		Some(ResultTarget { npy: path }) => {
			if !path.is_absolute() {
				return Err(rpc_error(JobError::WriteFailed(format!("{}: give an absolute path", path.display()))));
			}
			npy::write_i32(&path, rows, cols, &c).map_err(|e| rpc_error(JobError::WriteFailed(e)))?;
			Ok(Product { shape: [rows, cols], dtype: "int32", data: None, npy: Some(path) })
		}
		None => {
			let bytes: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
			let data = base64::engine::general_purpose::STANDARD.encode(bytes);
			Ok(Product { shape: [rows, cols], dtype: "int32", data: Some(data), npy: None })
		}
	}
}

/// The API's methods over `jobs`.
pub fn module(jobs: Arc<Jobs>) -> RpcModule<Arc<Jobs>> {
	let mut m = RpcModule::new(jobs);
	let registered = [
		m.register_method("jobs_info", |_, jobs, _| -> Result<Info, ErrorObjectOwned> {
			let (budget, held) = jobs.memory();
			Ok(Info {
				chain: jobs.chain().map(|p| ChainShape { version: p.version, m: p.m, k: p.k, n: p.n, t: p.t, r: p.r }),
				jobs_waiting: jobs.waiting(),
				memory_budget_bytes: budget,
				memory_held_bytes: held,
				value_range: [MIN_VALUE, MAX_VALUE],
				max_depth: MAX_DEPTH,
			})
		})
		.map(|_| ()),
		// Decoding a large job takes a while: off the async executor.
		m.register_blocking_method("jobs_submit", |params, jobs, _| -> Result<Status, ErrorObjectOwned> {
			let spec = job_spec(&params)?;
			let (budget, held) = jobs.memory();
			let matrices = spec.load(budget.saturating_sub(held)).map_err(rpc_error)?;
			let status = jobs.submit(matrices, spec.label).map_err(rpc_error)?;
			log::info!(
				"job {} queued: {} x {} by {} x {}{}",
				status.id,
				status.shape[0],
				status.shape[1],
				status.shape[1],
				status.shape[2],
				status.label.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()
			);
			Ok(status)
		})
		.map(|_| ()),
		m.register_method("jobs_status", |params, jobs, _| jobs.status(params.one()?).map_err(rpc_error)).map(|_| ()),
		m.register_method("jobs_list", |_, jobs, _| jobs.list()).map(|_| ()),
		m.register_blocking_method("jobs_result", |params, jobs, _| product(&jobs, params)).map(|_| ()),
		m.register_method("jobs_cancel", |params, jobs, _| jobs.cancel(params.one()?).map_err(rpc_error)).map(|_| ()),
		m.register_method("jobs_remove", |params, jobs, _| -> Result<bool, ErrorObjectOwned> {
			jobs.remove(params.one()?).map_err(rpc_error)?;
			Ok(true)
		})
		.map(|_| ()),
	];
	for r in registered {
		r.expect("method names are distinct");
	}
	m
}

/// Serves the API on `addr` (a loopback address) until the handle stops.
/// Requests and responses may be `max_body` bytes long.
pub async fn serve(addr: SocketAddr, jobs: Arc<Jobs>, max_body: u32) -> anyhow::Result<(SocketAddr, ServerHandle)> {
	if !addr.ip().is_loopback() {
		anyhow::bail!(
			"the job API reads and writes files that requests name, so it listens on loopback only (127.0.0.1 or \
			 ::1), not {addr}"
		);
	}
	let server = Server::builder()
		.max_request_body_size(max_body)
		.max_response_body_size(max_body)
		.build(addr)
		.await
		.map_err(|e| anyhow::anyhow!("job API on {addr}: {e}"))?;
	let local = server.local_addr()?;
	Ok((local, server.start(module(jobs))))
}
