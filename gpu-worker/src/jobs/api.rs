//! The job API: JSON-RPC 2.0 over HTTP (POST) and WebSocket, on one port
//! of this machine's loopback interface.
//!
//! | method | params | result |
//! |---|---|---|
//! | `jobs_info` | none | [`Info`]: the chain's challenge parameters, queue and memory |
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
//! Whoever reaches the API spends the worker's memory and reads and writes
//! `.npy` files as the worker's user, so it is kept to this machine's
//! programs: it listens on loopback only, answers only requests whose
//! `Host` is that loopback address (no DNS rebinding), and refuses any
//! request that carries an `Origin` header (browsers send one with every
//! cross-site request and WebSocket, so a web page cannot use it). Files
//! are read and written only inside `--jobs-files-dir`, and only when it
//! is given. Other users of a shared machine can reach loopback too: run
//! the worker where they are trusted, as with the node's RPC.

use super::{
	input::{JobSpec, Limits, MAX_DEPTH, MAX_VALUE, MIN_VALUE},
	npy, JobError, Jobs, Status,
};
use base64::Engine;
use jsonrpsee::{
	core::BoxError,
	server::{middleware::http::HostFilterLayer, HttpRequest, HttpResponse, Server, ServerHandle},
	types::{ErrorObjectOwned, Params},
	RpcModule,
};
use mlpow_primitives::ChallengeParams;
use serde::{Deserialize, Serialize};
use std::{
	future::Future,
	net::SocketAddr,
	path::PathBuf,
	pin::Pin,
	sync::{Arc, Mutex},
	task::{Context, Poll},
};

/// The API's state: the jobs, the files directory, and a lock that lets
/// one submission at a time read its matrices (each is checked against the
/// free budget before it allocates; two at once could both pass).
pub struct Api {
	pub jobs: Arc<Jobs>,
	/// Canonical; `None`: no files.
	pub files_dir: Option<PathBuf>,
	submitting: Mutex<()>,
}

impl Api {
	pub fn new(jobs: Arc<Jobs>, files_dir: Option<PathBuf>) -> Self {
		Self { jobs, files_dir, submitting: Mutex::new(()) }
	}

	fn limits(&self) -> Limits {
		let (budget, held) = self.jobs.memory();
		Limits { max_bytes: budget.saturating_sub(held), files_dir: self.files_dir.clone() }
	}
}

/// `jobs_info`'s answer.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
	/// The challenge parameters of the work being mined (version and
	/// shape), or `null` without a node. Jobs run while it is v2.
	pub chain: Option<ChallengeParams>,
	/// Jobs with pieces still to mine.
	pub jobs_waiting: usize,
	pub memory_budget_bytes: u64,
	pub memory_held_bytes: u64,
	/// The smallest and largest input value.
	pub value_range: [i64; 2],
	pub max_depth: usize,
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

fn product(api: &Api, params: Params) -> Result<Product, ErrorObjectOwned> {
	let mut seq = params.sequence();
	let id: u64 = seq.next()?;
	let target: Option<ResultTarget> = seq.optional_next()?;
	let (rows, cols, c) = api.jobs.product(id).map_err(rpc_error)?;
	match target {
		Some(ResultTarget { npy: path }) => {
			let write_failed = |e| rpc_error(JobError::WriteFailed(e));
			let path = api.limits().file(&path, true).map_err(write_failed)?;
			npy::write_i32(&path, rows, cols, &c).map_err(write_failed)?;
			Ok(Product { shape: [rows, cols], dtype: "int32", data: None, npy: Some(path) })
		}
		None => {
			let bytes: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
			let data = base64::engine::general_purpose::STANDARD.encode(bytes);
			Ok(Product { shape: [rows, cols], dtype: "int32", data: Some(data), npy: None })
		}
	}
}

/// The API's methods.
pub fn module(api: Api) -> RpcModule<Api> {
	let mut m = RpcModule::new(api);
	let registered = [
		m.register_method("jobs_info", |_, api, _| -> Result<Info, ErrorObjectOwned> {
			let jobs = &api.jobs;
			let (budget, held) = jobs.memory();
			Ok(Info {
				chain: jobs.chain(),
				jobs_waiting: jobs.waiting(),
				memory_budget_bytes: budget,
				memory_held_bytes: held,
				value_range: [MIN_VALUE, MAX_VALUE],
				max_depth: MAX_DEPTH,
			})
		})
		.map(|_| ()),
		// Decoding a large job takes a while: off the async executor.
		m.register_blocking_method("jobs_submit", |params, api, _| -> Result<Status, ErrorObjectOwned> {
			let spec = job_spec(&params)?;
			let _one_at_a_time = api.submitting.lock().unwrap_or_else(|p| p.into_inner());
			let matrices = spec.load(&api.limits()).map_err(rpc_error)?;
			let status = api.jobs.submit(matrices, spec.label).map_err(rpc_error)?;
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
		m.register_method("jobs_status", |params, api, _| api.jobs.status(params.one()?).map_err(rpc_error))
			.map(|_| ()),
		m.register_method("jobs_list", |_, api, _| api.jobs.list()).map(|_| ()),
		m.register_blocking_method("jobs_result", |params, api, _| product(&api, params)).map(|_| ()),
		m.register_method("jobs_cancel", |params, api, _| api.jobs.cancel(params.one()?).map_err(rpc_error))
			.map(|_| ()),
		m.register_method("jobs_remove", |params, api, _| -> Result<bool, ErrorObjectOwned> {
			api.jobs.remove(params.one()?).map_err(rpc_error)?;
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
pub async fn serve(addr: SocketAddr, api: Api, max_body: u32) -> anyhow::Result<(SocketAddr, ServerHandle)> {
	if !addr.ip().is_loopback() {
		anyhow::bail!(
			"the job API reads and writes files and spends the worker's memory for whoever calls it, so it listens \
			 on loopback only (127.0.0.1 or ::1), not {addr}"
		);
	}
	// Bound first, so that the host filter knows the port (`:0` picks one).
	let listener = std::net::TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("job API on {addr}: {e}"))?;
	listener.set_nonblocking(true)?;
	let local = listener.local_addr()?;
	let port = local.port();
	let hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
	let middleware = tower::ServiceBuilder::new()
		.layer(HostFilterLayer::new(hosts).map_err(|e| anyhow::anyhow!("job API host filter: {e}"))?)
		.layer(RejectOriginLayer);
	let server = Server::builder()
		.max_request_body_size(max_body)
		.max_response_body_size(max_body)
		.set_http_middleware(middleware)
		.build_from_tcp(listener)
		.map_err(|e| anyhow::anyhow!("job API on {addr}: {e}"))?;
	Ok((local, server.start(module(api))))
}

/// Refuses requests that carry an `Origin` header with 403: browsers add
/// one to cross-site requests and to every WebSocket handshake, and the
/// API's real clients (scripts, services on this machine) send none.
#[derive(Clone, Copy, Debug)]
struct RejectOriginLayer;

impl<S> tower::Layer<S> for RejectOriginLayer {
	type Service = RejectOrigin<S>;

	fn layer(&self, inner: S) -> Self::Service {
		RejectOrigin(inner)
	}
}

#[derive(Clone, Debug)]
struct RejectOrigin<S>(S);

impl<S, B> tower::Service<HttpRequest<B>> for RejectOrigin<S>
where
	S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
	S::Error: Into<BoxError> + 'static,
	S::Future: Send + 'static,
{
	type Response = HttpResponse;
	type Error = BoxError;
	type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

	fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
		self.0.poll_ready(cx).map_err(Into::into)
	}

	fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
		if request.headers().contains_key("origin") {
			return Box::pin(std::future::ready(Ok(jsonrpsee::server::http::response::denied())));
		}
		let inner = self.0.call(request);
		Box::pin(async move { inner.await.map_err(Into::into) })
	}
}
