//! The job API: JSON-RPC 2.0 over HTTP (POST), on one port of this
//! machine's loopback interface.
//!
//! | method | params | result |
//! |---|---|---|
//! | `jobs_info` | none | [`Info`]: the chain's challenge parameters, queue and memory |
//! | `jobs_submit` | a job: `{"a": M, "b": M, "label"?: text}` | [`Status`] |
//! | `jobs_status` | job id | [`Status`] |
//! | `jobs_list` | none | [`Status`] of every held job, oldest first |
//! | `jobs_result` | job id, optionally `{"rows"?: [start, end], "npy"?: path}` | [`Product`] |
//! | `jobs_cancel` | job id | [`Status`] |
//! | `jobs_remove` | job id | `true` (the job and its memory are gone) |
//!
//! A matrix `M` is `{"shape": [rows, cols], "data": base64}` (row-major
//! `int8` bytes) or `{"npy": "/absolute/path.npy"}` (any signed integer
//! dtype). `A` is `rows x depth`, `B` is `depth x cols`, every value in
//! `-64..=63`, `depth` at most 2^18. The product comes back as `int32`:
//! base64 little-endian bytes inline (all of it, or the rows asked for),
//! or written to the `.npy` path given. Errors carry a code from
//! [`super::codes`] and a message that says what to change.
//!
//! Memory: requests in progress count against the job memory budget with
//! the jobs held ([`super::admit`]): a request's body before it is read, a
//! job's matrices before they are decoded, a result before it is encoded.
//! What does not fit now is refused with error 2005 (busy, retry; HTTP 503
//! when refused before the body is read); what cannot fit with the jobs
//! held, with 2001. One request per connection (`Connection: close`); no
//! WebSocket and no batches, whose messages jsonrpsee would read before
//! any of this could weigh them.
//!
//! Whoever reaches the API spends the worker's memory and reads and writes
//! `.npy` files as the worker's user, so it is kept to this machine's
//! programs: it listens on loopback only, answers only requests whose
//! `Host` is that loopback address (no DNS rebinding), and refuses any
//! request that carries an `Origin` header (browsers send one with every
//! cross-site request, so a web page cannot use it). Files are read and
//! written only inside `--jobs-files-dir`, and only when it is given.
//! Other users of a shared machine can reach loopback too: run the worker
//! where they are trusted, as with the node's RPC.

use super::{
	admit::{self, AdmitLayer, Hold},
	input::{JobSpec, Limits, MAX_DEPTH, MAX_VALUE, MIN_VALUE},
	npy, JobError, Jobs, Reservation, Status,
};
use base64::Engine;
use jsonrpsee::{
	core::BoxError,
	server::{middleware::http::HostFilterLayer, BatchRequestConfig, HttpRequest, HttpResponse, Server, ServerHandle},
	types::{ErrorObjectOwned, Params},
	Extensions, RpcModule,
};
use mlpow_primitives::ChallengeParams;
use serde::{Deserialize, Serialize};
use std::{
	future::Future,
	net::SocketAddr,
	path::PathBuf,
	pin::Pin,
	sync::Arc,
	task::{Context, Poll},
};

/// The API's state: the jobs and the files directory. (Submissions run
/// side by side: each reserves its memory from the budget, atomically,
/// before it allocates.)
pub struct Api {
	pub jobs: Arc<Jobs>,
	/// Canonical; `None`: no files.
	pub files_dir: Option<PathBuf>,
}

impl Api {
	pub fn new(jobs: Arc<Jobs>, files_dir: Option<PathBuf>) -> Self {
		Self { jobs, files_dir }
	}

	/// Reserves `bytes` for what `what` allocates, refused with a JSON-RPC
	/// error; kept until the connection closes when `keep` (what outlives
	/// the method: an answer being written), else until dropped.
	fn reserve(&self, ext: &Extensions, what: &str, bytes: u64, keep: bool) -> Result<Option<Reservation>, JobError> {
		let hold = ext.get::<Hold>();
		let own = hold.map_or(0, Hold::bytes);
		let reservation = self.jobs.reserve(bytes).map_err(|r| admit::refusal(what, r, own))?;
		match hold {
			Some(hold) if keep => {
				hold.keep(reservation);
				Ok(None)
			}
			_ => Ok(Some(reservation)),
		}
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
	/// What held jobs use of the budget.
	pub memory_held_bytes: u64,
	/// What requests in progress have reserved of it.
	pub memory_reserved_bytes: u64,
	/// The longest request body taken (refused with 2001, HTTP 413, before
	/// it is read).
	pub max_request_bytes: u64,
	/// The smallest and largest input value.
	pub value_range: [i64; 2],
	pub max_depth: usize,
}

/// `jobs_result`'s optional second argument.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultTarget {
	/// Only these rows of the product, `[start, end)`.
	#[serde(default)]
	rows: Option<[usize; 2]>,
	/// Write the product here (absolute path) instead of returning it.
	#[serde(default)]
	npy: Option<PathBuf>,
}

/// `jobs_result`'s answer: the product `A * B` (or the rows asked for),
/// `int32`.
#[derive(Clone, Debug, Serialize)]
pub struct Product {
	pub shape: [usize; 2],
	pub dtype: &'static str,
	/// The rows of the whole product these are, `[start, end)`, when asked
	/// for some.
	#[serde(skip_serializing_if = "Option::is_none")]
	pub rows: Option<[usize; 2]>,
	/// Row-major little-endian `int32` bytes in base64, when returned inline.
	#[serde(skip_serializing_if = "Option::is_none")]
	pub data: Option<Base64>,
	/// The file written, when asked for one.
	#[serde(skip_serializing_if = "Option::is_none")]
	pub npy: Option<PathBuf>,
}

/// `int32` values written as base64 of their little-endian bytes straight
/// into the JSON answer, a few KiB at a time (no byte or text copy of the
/// whole).
#[derive(Clone, Debug)]
pub struct Base64(pub Vec<i32>);

impl Base64 {
	/// The length of the text: base64 of `4 * values` bytes.
	pub fn encoded_len(values: usize) -> u64 {
		(values as u64).saturating_mul(4).div_ceil(3).saturating_mul(4)
	}
}

impl std::fmt::Display for Base64 {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		// 768 values are 3072 bytes, a multiple of 3: padding only at the end.
		let (mut bytes, mut text) = ([0u8; 3072], [0u8; 4096]);
		for chunk in self.0.chunks(768) {
			let raw = &mut bytes[..chunk.len() * 4];
			for (out, v) in raw.chunks_exact_mut(4).zip(chunk) {
				out.copy_from_slice(&v.to_le_bytes());
			}
			let n =
				base64::engine::general_purpose::STANDARD.encode_slice(raw, &mut text).map_err(|_| std::fmt::Error)?;
			f.write_str(std::str::from_utf8(&text[..n]).map_err(|_| std::fmt::Error)?)?;
		}
		Ok(())
	}
}

impl Serialize for Base64 {
	fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
		serializer.collect_str(self)
	}
}

fn rpc_error(e: JobError) -> ErrorObjectOwned {
	ErrorObjectOwned::owned(e.code(), e.to_string(), None::<()>)
}

/// The job spec from positional (`[job]`) or named (`{...}`) params.
fn job_spec<'a>(params: &'a Params<'a>) -> Result<JobSpec<'a>, ErrorObjectOwned> {
	if params.as_str().is_some_and(|s| s.trim_start().starts_with('{')) {
		params.parse::<JobSpec>()
	} else {
		params.one::<JobSpec>()
	}
}

/// What the JSON of an answer holds besides its data.
const ANSWER_BASE: u64 = 4 << 10;

fn product(api: &Api, params: Params, ext: &Extensions) -> Result<Product, ErrorObjectOwned> {
	let mut seq = params.sequence();
	let id: u64 = seq.next()?;
	let target: ResultTarget = seq.optional_next()?.unwrap_or_default();
	let (total, cols) = api.jobs.product_shape(id).map_err(rpc_error)?;
	let [start, end] = target.rows.unwrap_or([0, total]);
	if start >= end || end > total {
		return Err(rpc_error(JobError::Invalid(format!(
			"rows [{start}, {end}) are not a range within the product's {total} rows"
		))));
	}
	let values = (end - start) * cols;
	let copied = (values as u64).saturating_mul(4);
	let rows = target.rows.map(|_| [start, end]);
	match target.npy {
		Some(path) => {
			let write_failed = |e| rpc_error(JobError::WriteFailed(e));
			let path = api.limits().file(&path, true).map_err(write_failed)?;
			// The rows copied, and the file's write buffer: gone when this returns.
			let _reserved = api
				.reserve(ext, "writing the product", copied.saturating_add(npy::WRITE_BUFFER), false)
				.map_err(rpc_error)?;
			let c = api.jobs.product_rows(id, start..end, |c| Ok(c.to_vec())).map_err(rpc_error)?;
			npy::write_i32(&path, end - start, cols, &c).map_err(write_failed)?;
			Ok(Product { shape: [end - start, cols], dtype: "int32", rows, data: None, npy: Some(path) })
		}
		None => {
			// The rows copied, and the answer: its JSON is written into a
			// buffer that doubles as it grows (up to twice the text while
			// it is copied), then waits for the client to read it.
			let answer = Base64::encoded_len(values).saturating_add(ANSWER_BASE);
			let bytes = copied.saturating_add(answer.saturating_mul(2));
			let what = format!("returning {} rows of {cols} (send \"rows\" for fewer, or \"npy\")", end - start);
			api.reserve(ext, &what, bytes, true).map_err(rpc_error)?;
			let c = api.jobs.product_rows(id, start..end, |c| Ok(c.to_vec())).map_err(rpc_error)?;
			Ok(Product { shape: [end - start, cols], dtype: "int32", rows, data: Some(Base64(c)), npy: None })
		}
	}
}

/// The API's methods.
pub fn module(api: Api) -> RpcModule<Api> {
	let mut m = RpcModule::new(api);
	let registered = [
		m.register_method("jobs_info", |_, api, _| -> Result<Info, ErrorObjectOwned> {
			let jobs = &api.jobs;
			let (budget, _) = jobs.memory();
			let (held, reserved) = jobs.usage();
			Ok(Info {
				chain: jobs.chain(),
				jobs_waiting: jobs.waiting(),
				memory_budget_bytes: budget,
				memory_held_bytes: held,
				memory_reserved_bytes: reserved,
				max_request_bytes: admit::max_body(budget) as u64,
				value_range: [MIN_VALUE, MAX_VALUE],
				max_depth: MAX_DEPTH,
			})
		})
		.map(|_| ()),
		// Decoding a large job takes a while: off the async executor.
		m.register_blocking_method("jobs_submit", |params, api, ext| -> Result<Status, ErrorObjectOwned> {
			let mut spec = job_spec(&params)?;
			// Reserved once the shapes are known, before anything is
			// decoded or read; what the job keeps becomes its own, the rest
			// (B before its transpose, read buffers) is freed on return.
			let (matrices, reservation) = spec
				.load_with(&api.limits(), |_, peak| {
					api.reserve(&ext, "reading the job", peak, false).map_err(|e| match e {
						JobError::TooLarge(why) => {
							JobError::TooLarge(format!("{} MiB while it is read: {why}", peak.div_ceil(1 << 20)))
						}
						e => e,
					})
				})
				.map_err(rpc_error)?;
			let status = match reservation {
				Some(mut r) => api.jobs.submit_reserved(matrices, spec.label.take(), &mut r),
				None => api.jobs.submit(matrices, spec.label.take()),
			}
			.map_err(rpc_error)?;
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
		m.register_method("jobs_list", |_, api, ext| -> Result<Vec<Status>, ErrorObjectOwned> {
			api.reserve(ext, "listing the jobs", api.jobs.list_bytes(), true).map_err(rpc_error)?;
			Ok(api.jobs.list())
		})
		.map(|_| ()),
		m.register_blocking_method("jobs_result", |params, api, ext| product(&api, params, &ext)).map(|_| ()),
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

/// In-flight requests jsonrpsee serves at once (each one's memory counts
/// against the budget; this bounds what it costs besides).
pub const MAX_REQUESTS: u32 = 64;

/// Serves the API on `addr` (a loopback address) until the handle stops.
pub async fn serve(addr: SocketAddr, api: Api) -> anyhow::Result<(SocketAddr, ServerHandle)> {
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
	let budget = api.jobs.memory().0;
	let max_body = admit::max_body(budget);
	let middleware = tower::ServiceBuilder::new()
		.layer(HostFilterLayer::new(hosts).map_err(|e| anyhow::anyhow!("job API host filter: {e}"))?)
		.layer(RejectOriginLayer)
		.layer(AdmitLayer::new(api.jobs.clone(), max_body));
	let server = Server::builder()
		.max_request_body_size(max_body)
		// What an answer may take is reserved by its method.
		.max_response_body_size(budget.min(u32::MAX as u64) as u32)
		.max_connections(MAX_REQUESTS)
		.http_only()
		.set_batch_request_config(BatchRequestConfig::Disabled)
		.set_http_middleware(middleware)
		.build_from_tcp(listener)
		.map_err(|e| anyhow::anyhow!("job API on {addr}: {e}"))?;
	Ok((local, server.start(module(api))))
}

/// Refuses requests that carry an `Origin` header with 403: browsers add
/// one to cross-site requests and to WebSocket handshakes, and the
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
