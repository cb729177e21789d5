//! `mlpow._native`: the mining session of `mlpow-worker`
//! ([`mlpow_worker::session`]) as a Python class. The `mlpow` package
//! (`python/mlpow`) wraps it: it accepts numpy arrays and torch tensors and
//! says plainly what is wrong with bad input before anything gets here.
//!
//! Everything a call needs is checked again here (shapes, dtype, the 7-bit
//! range), so the module is safe to call directly; errors are Python
//! exceptions, never a panic across the boundary.

use mlpow_worker::{
	cpu, cuda,
	jobs::{input::Matrices, JobError},
	session::{self, Options, Session, Source},
};
use numpy::{ndarray::Array2, IntoPyArray, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::{
	exceptions::{PyMemoryError, PyRuntimeError, PyValueError},
	prelude::*,
	types::PyDict,
};
use std::sync::Arc;

mod dlpack;

/// The most background mining threads a miner starts.
const MAX_BACKGROUND_THREADS: usize = 1024;
/// The longest packing window, in seconds: a call waits at most this for
/// company, and a typo of milliseconds for seconds should not hang a model.
const MAX_PACK_WINDOW: f64 = 10.0;

/// A miner in this process: a session with a node in the background, and
/// `matmul`, whose products mine on the node's work.
#[pyclass(frozen, module = "mlpow._native")]
struct Miner {
	session: Session,
	node: String,
	/// An offline miner's winners, which no node takes: kept for `found()`.
	found: Option<std::sync::Mutex<tokio::sync::mpsc::Receiver<mlpow_worker::miner::Found>>>,
}

/// What multiplies a miner's calls, by name.
fn multiplier(backend: &str) -> PyResult<Box<dyn mlpow_worker::backend::Lane>> {
	let first_gpu = || cuda::lanes(Some(&[0])).map(|mut lanes| lanes.remove(0));
	Ok(match backend {
		"cpu" => cpu::lanes(1).remove(0),
		"cuda" => first_gpu().map_err(|e| PyRuntimeError::new_err(format!("backend \"cuda\": {e:#}")))?,
		"auto" => first_gpu().unwrap_or_else(|_| cpu::lanes(1).remove(0)),
		other => return Err(PyValueError::new_err(format!("backend {other:?}: give \"cpu\", \"cuda\" or \"auto\""))),
	})
}

fn check_min_fill(min_fill: f64) -> PyResult<()> {
	if !(0.0..=1.0).contains(&min_fill) {
		return Err(PyValueError::new_err(format!("min_fill {min_fill} is not between 0 and 1")));
	}
	Ok(())
}

#[pymethods]
impl Miner {
	/// Connects to `node` in the background (it keeps reconnecting): a
	/// node's `ws://` RPC, or a pool's `stratum+tcp://host:port` (or
	/// `stratum+ssl://host:port`, checked against the system's roots and
	/// the PEM file `pool_ca` if given), mined for as `user`
	/// (`ADDRESS.WORKER`).
	/// `backend`: what multiplies the calls: "cpu" (the calling thread),
	/// "cuda" (the first GPU; host arrays are copied to it and back), or
	/// "auto" (CUDA where a driver and a GPU are present, else the CPU).
	/// `background_threads`: CPU threads mining seeded nonces between calls.
	/// `min_fill`: the least share of a puzzle piece a call's data must fill
	/// to be mined (smaller products are multiplied plainly).
	/// `pack_window`: seconds a small call with a registered weight waits
	/// for calls from other threads with the same weight, to mine their rows
	/// together in one piece (0: never; at most 10).
	#[new]
	#[pyo3(signature = (node = "ws://127.0.0.1:9944", *, user = None, pool_ca = None, backend = "cpu", min_fill = 0.5, background_threads = 0, pack_window = 0.0))]
	fn new(
		node: &str,
		user: Option<&str>,
		pool_ca: Option<std::path::PathBuf>,
		backend: &str,
		min_fill: f64,
		background_threads: usize,
		pack_window: f64,
	) -> PyResult<Self> {
		let source = match (node.starts_with("stratum+"), user) {
			(true, Some(user)) => {
				let pool = mlpow_worker::pool::parse_pool_url(node).map_err(PyValueError::new_err)?;
				let pools =
					mlpow_worker::pool::Pools::new(vec![pool], pool_ca.as_deref()).map_err(PyValueError::new_err)?;
				Source::Pool { pools, user: user.to_string() }
			}
			(true, None) => {
				return Err(PyValueError::new_err("a pool needs user=\"ADDRESS.WORKER\" (the payout address)"))
			}
			(false, None) if node.starts_with("ws://") => Source::Node(node.to_string()),
			(false, Some(_)) => return Err(PyValueError::new_err("user= is for a pool (stratum+tcp://host:port)")),
			(false, None) => {
				return Err(PyValueError::new_err(format!(
					"node {node:?} is neither a ws:// URL (ws://127.0.0.1:9944) nor a pool (stratum+tcp://host:port)"
				)))
			}
		};
		check_min_fill(min_fill)?;
		if !(0.0..=MAX_PACK_WINDOW).contains(&pack_window) {
			return Err(PyValueError::new_err(format!(
				"pack_window {pack_window} is not between 0 and {MAX_PACK_WINDOW} seconds"
			)));
		}
		let multiplier = multiplier(backend)?;
		if background_threads > MAX_BACKGROUND_THREADS {
			return Err(PyValueError::new_err(format!(
				"background_threads {background_threads}: at most {MAX_BACKGROUND_THREADS}"
			)));
		}
		let background = if background_threads > 0 { cpu::lanes(background_threads) } else { Vec::new() };
		let options = Options {
			multiplier: Some(multiplier),
			background,
			job_memory: 0,
			min_fill,
			pack_window: std::time::Duration::from_secs_f64(pack_window),
		};
		let session = Session::start(source, options).map_err(|e| PyRuntimeError::new_err(format!("{e:#}")))?;
		Ok(Self { session, node: node.to_string(), found: None })
	}

	/// A miner without a node, mining its calls on work it makes itself:
	/// puzzle v2 at `params` ("M,K,N,T,R") and `difficulty`, a fixed
	/// header. Its winners go nowhere but `found()`. For benchmarks and
	/// tests on machines without a chain (the GPU machine).
	#[staticmethod]
	#[pyo3(signature = (params, difficulty, *, backend = "cpu", min_fill = 0.5))]
	fn offline(params: &str, difficulty: u64, backend: &str, min_fill: f64) -> PyResult<Self> {
		let params = mlpow_worker::parse_params(params).map_err(|e| PyValueError::new_err(format!("params: {e}")))?;
		if params.version != mlpow_primitives::PUZZLE_V2 {
			return Err(PyValueError::new_err("params: calls mine puzzle v2 only (give M,K,N,T,R)"));
		}
		if difficulty == 0 {
			return Err(PyValueError::new_err("difficulty 0 has no target"));
		}
		check_min_fill(min_fill)?;
		let options = Options { min_fill, ..Options::new(multiplier(backend)?) };
		let (session, found) = Session::offline(options);
		session.miner().set_job(Some(mlpow_worker::backend::Job {
			version: 1,
			pre_hash: [0x6d; 32],
			number: 1,
			difficulty: difficulty.into(),
			params,
			weights_seed: [0x77; 32],
		}));
		Ok(Self { session, node: "offline".into(), found: Some(std::sync::Mutex::new(found)) })
	}

	/// An offline miner's winners since the last call, each `(nonce,
	/// tile_i, tile_j, seal bytes)`, every seal verified before it was kept;
	/// a miner with a node sends them there instead (empty here).
	fn found(&self) -> Vec<(u64, u32, u32, Vec<u8>)> {
		let Some(found) = &self.found else { return Vec::new() };
		let mut rx = found.lock().unwrap_or_else(|e| e.into_inner());
		let mut out = Vec::new();
		while let Ok(f) = rx.try_recv() {
			out.push((f.winner.id.nonce, f.winner.id.tile_i, f.winner.id.tile_j, f.winner.seal));
		}
		out
	}

	/// The exact product `a @ b` (int32) of `a` (`m x k`) and `b`
	/// (`k x n`), int8 values in -64..=63, mined where it is worth it.
	fn matmul<'py>(
		&self,
		py: Python<'py>,
		a: PyReadonlyArray2<'py, i8>,
		b: PyReadonlyArray2<'py, i8>,
	) -> PyResult<Bound<'py, PyArray2<i32>>> {
		let ([rows, depth], [depth_b, cols]) = (shape(&a), shape(&b));
		if depth != depth_b {
			return Err(PyValueError::new_err(format!(
				"shapes {rows} x {depth} and {depth_b} x {cols} do not multiply: a's columns must equal b's rows"
			)));
		}
		let a_values = c_order("a", &a)?;
		let matrices = Matrices { rows, depth, cols, a: a_values, bt: transposed(&b) };
		let session = &self.session;
		let product = py.detach(move || session.matmul(&matrices)).map_err(job_error)?;
		into_array(py, product, rows, cols)
	}

	/// `b` (`k x n`, int8 in -64..=63) registered as a weight: its puzzle
	/// pieces are committed by the first product that uses them and
	/// reused by every later one ([`Miner::matmul_by`]).
	fn register_weight(&self, b: PyReadonlyArray2<'_, i8>) -> PyResult<Weight> {
		let [depth, cols] = shape(&b);
		let weight = session::Weight::new(depth, cols, transposed(&b)).map_err(job_error)?;
		Ok(Weight { inner: Arc::new(weight) })
	}

	/// The exact product `a @ w` (int32) of `a` (`m x k`) and a
	/// registered weight `w` (`k x n`).
	fn matmul_by<'py>(
		&self,
		py: Python<'py>,
		a: PyReadonlyArray2<'py, i8>,
		w: &Weight,
	) -> PyResult<Bound<'py, PyArray2<i32>>> {
		let [rows, depth] = shape(&a);
		let weight = w.inner.clone();
		if depth != weight.depth() {
			return Err(PyValueError::new_err(format!(
				"shapes {rows} x {depth} and {} x {} do not multiply: a's columns must equal the weight's rows",
				weight.depth(),
				weight.cols()
			)));
		}
		let a_values = c_order("a", &a)?;
		let session = &self.session;
		let cols = weight.cols();
		let product = py.detach(move || session.matmul_by(&a_values, rows, &weight)).map_err(job_error)?;
		into_array(py, product, rows, cols)
	}

	/// The exact product `a @ b` written into `out`, for tensors in the
	/// memory of this miner's GPU (a `backend="cuda"` miner), taken through
	/// DLPack and never copied to the host: `a` (`m x k`) and `b` (`k x
	/// n`) int8 in -64..=63 (checked on the GPU), any non-negative strides
	/// (a `Linear.weight.t()` view as it is); `out` int32 `m x n`, rows
	/// apart by any stride, columns adjacent, sharing no memory with `a`
	/// or `b`. `stream`: the CUDA stream the tensors were made on (its
	/// handle, 1 for the legacy default), which the producers order their
	/// pending work before and the call waits for before reading (None:
	/// the whole device); it waits for its own work before returning.
	/// `b` may also be a [`DeviceWeight`] from `register_weight_device`.
	#[pyo3(signature = (a, b, out, stream = None))]
	fn matmul_device(
		&self,
		py: Python<'_>,
		a: &Bound<'_, PyAny>,
		b: &Bound<'_, PyAny>,
		out: &Bound<'_, PyAny>,
		stream: Option<isize>,
	) -> PyResult<()> {
		let caller = caller_stream(stream)?;
		let weight = b.cast::<DeviceWeight>().ok().map(|w| w.get().inner.clone());
		let mut taken = vec![dlpack::take(py, "a", a, stream)?, dlpack::take(py, "out", out, stream)?];
		if weight.is_none() {
			taken.push(dlpack::take(py, "b", b, stream)?);
		}
		let ma = on_gpu("a", dlpack::Matrix::of("a", &taken[0], 8)?)?;
		let mo = on_gpu("out", dlpack::Matrix::of("out", &taken[1], 32)?)?;
		let (da, dout) = (ma.as_device_matrix(), mo.as_device_out("out")?);
		let session = &self.session;
		match weight {
			Some(weight) => {
				let (depth, cols) = weight.shape();
				if ma.cols as usize != depth {
					return Err(PyValueError::new_err(format!(
						"shapes {} x {} and {depth} x {cols} do not multiply: a's columns must equal the weight's rows",
						ma.rows, ma.cols
					)));
				}
				// SAFETY: as below; the weight is the miner's own memory.
				py.detach(move || unsafe { session.matmul_device_by(&da, &weight, &dout, caller) })
			}
			None => {
				let mb = on_gpu("b", dlpack::Matrix::of("b", &taken[2], 8)?)?;
				if ma.cols != mb.rows {
					return Err(PyValueError::new_err(format!(
						"shapes {} x {} and {} x {} do not multiply: a's columns must equal b's rows",
						ma.rows, ma.cols, mb.rows, mb.cols
					)));
				}
				let dbt = mb.as_device_matrix().t();
				// SAFETY: the managed tensors are held (`taken`) until after
				// the call, which waits for its own work before it returns;
				// the producers ordered their pending work before `stream`,
				// which the call waits for before it reads (the whole device
				// without one).
				py.detach(move || unsafe { session.matmul_device(&da, &dbt, &dout, caller) })
			}
		}
		.map_err(job_error)?;
		drop(taken);
		Ok(())
	}

	/// `b` (`k x n`, int8 in -64..=63, a tensor on this miner's GPU, any
	/// non-negative strides) registered as a weight: copied into the
	/// miner's own GPU memory and checked there once; its puzzle pieces are
	/// committed by the first product that mines them and reused by every
	/// later `matmul_device` given the weight, so a call commits only `a`.
	/// Later changes to `b` are not seen: register it again. `stream` as
	/// in `matmul_device`.
	#[pyo3(signature = (b, stream = None))]
	fn register_weight_device(
		&self,
		py: Python<'_>,
		b: &Bound<'_, PyAny>,
		stream: Option<isize>,
	) -> PyResult<DeviceWeight> {
		let caller = caller_stream(stream)?;
		let taken = dlpack::take(py, "b", b, stream)?;
		let dbt = on_gpu("b", dlpack::Matrix::of("b", &taken, 8)?)?.as_device_matrix().t();
		let session = &self.session;
		// SAFETY: the managed tensor is held until after the call, which
		// waits for the copy before it returns; the producer ordered its
		// pending work before `stream`, which the call waits for first.
		let weight = py.detach(move || unsafe { session.register_weight_device(&dbt, caller) }).map_err(job_error)?;
		drop(taken);
		Ok(DeviceWeight { inner: Arc::new(weight) })
	}

	/// What this miner's calls did: MACs multiplied, mined and plain,
	/// nonces, tickets, winners, and the node's answers to the seals.
	fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
		let s = self.session.stats();
		let d = PyDict::new(py);
		for (key, value) in [
			("calls", s.calls),
			("calls_packed", s.calls_packed),
			("macs", s.macs),
			("macs_mined", s.macs_mined),
			("macs_plain", s.macs_plain),
			("nonces", s.nonces),
			("tickets", s.tickets),
			("winners", s.winners),
			("blocks_accepted", s.blocks_accepted),
			("stale", s.stale),
			("rejected", s.rejected),
			("dropped", s.dropped),
			("unsent", s.unsent),
		] {
			d.set_item(key, value)?;
		}
		d.set_item("mining", self.session.mining())?;
		Ok(d)
	}

	/// Stops mining and waits up to `timeout` seconds until every winner
	/// found so far (a block, or a pool's share) has been sent and
	/// answered, then disconnects; later products are multiplied plainly.
	/// `True` when nothing was left unsent. Dropping the miner does the
	/// same with a 3 s wait.
	#[pyo3(signature = (timeout = 10.0))]
	fn close(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
		if !(timeout.is_finite() && (0.0..=86_400.0).contains(&timeout)) {
			return Err(PyValueError::new_err(format!("timeout {timeout} is not a number of seconds up to a day")));
		}
		let session = &self.session;
		Ok(py.detach(move || session.close(std::time::Duration::from_secs_f64(timeout))))
	}

	fn __repr__(&self) -> String {
		let s = self.session.stats();
		format!("Miner(node={:?}, calls={}, macs_mined={}/{})", self.node, s.calls, s.macs_mined, s.macs)
	}
}

impl Drop for Miner {
	/// Python drops the miner with the GIL held, and the session's tasks
	/// log through Python's `logging` (which takes the GIL) while it waits
	/// for its winners' answers: wait without it.
	fn drop(&mut self) {
		let session = &self.session;
		Python::attach(|py| py.detach(|| session.close(session::DROP_GRACE)));
	}
}

/// A weight registered with a miner: `b` (`k x n`) held transposed, with
/// its committed pieces.
#[pyclass(frozen, module = "mlpow._native")]
struct Weight {
	inner: Arc<session::Weight>,
}

#[pymethods]
impl Weight {
	/// `(k, n)`: the shape of `b`.
	#[getter]
	fn shape(&self) -> (usize, usize) {
		(self.inner.depth(), self.inner.cols())
	}

	/// Puzzle pieces committed so far under the chain's current shape.
	#[getter]
	fn pieces_prepared(&self) -> usize {
		self.inner.pieces_prepared()
	}

	fn __repr__(&self) -> String {
		format!(
			"Weight(shape=({}, {}), pieces_prepared={})",
			self.inner.depth(),
			self.inner.cols(),
			self.inner.pieces_prepared()
		)
	}
}

/// A weight registered from a tensor on the miner's GPU: `b` (`k x n`)
/// copied into the miner's own GPU memory, with its committed pieces.
#[pyclass(frozen, module = "mlpow._native")]
struct DeviceWeight {
	inner: Arc<cuda::DeviceWeight>,
}

#[pymethods]
impl DeviceWeight {
	/// `(k, n)`: the shape of `b`.
	#[getter]
	fn shape(&self) -> (usize, usize) {
		self.inner.shape()
	}

	/// The GPU (its ordinal) whose memory holds the weight.
	#[getter]
	fn device(&self) -> usize {
		self.inner.ordinal()
	}

	/// Puzzle pieces committed so far under the chain's current shape.
	#[getter]
	fn pieces_prepared(&self) -> usize {
		self.inner.pieces_prepared()
	}

	/// Puzzle pieces cut and committed over the weight's life (equal to
	/// `pieces_prepared` while products reuse them).
	#[getter]
	fn pieces_committed(&self) -> u64 {
		self.inner.pieces_committed()
	}

	fn __repr__(&self) -> String {
		let (k, n) = self.inner.shape();
		format!(
			"DeviceWeight(shape=({k}, {n}), device={}, pieces_prepared={})",
			self.inner.ordinal(),
			self.inner.pieces_prepared()
		)
	}
}

/// DLPack's `stream` argument checked, and what the call waits for: a
/// handle (1 the legacy default stream, 2 the per-thread one), or `None`
/// for the whole device (also for -1, "no ordering asked for"). 0 means
/// nothing in DLPack and is refused, as are other negative values.
fn caller_stream(stream: Option<isize>) -> PyResult<Option<u64>> {
	if matches!(stream, Some(s) if s == 0 || s < -1) {
		return Err(PyValueError::new_err(format!(
			"stream {stream:?}: give a CUDA stream's handle, 1 for the legacy default stream, or None"
		)));
	}
	Ok(stream.filter(|&s| s > 0).map(|s| s as u64))
}

/// `m`, if it is on a GPU; else an error naming where it is.
fn on_gpu(name: &str, m: dlpack::Matrix) -> PyResult<dlpack::Matrix> {
	if !m.on_gpu() {
		return Err(PyValueError::new_err(format!(
			"{name} is in {}: matmul and register_weight take host arrays; matmul_device and \
			 register_weight_device take tensors on the miner's GPU",
			m.place()
		)));
	}
	Ok(m)
}

fn shape<T: numpy::Element>(array: &PyReadonlyArray2<'_, T>) -> [usize; 2] {
	let s = array.shape();
	[s[0], s[1]]
}

/// The values of `array`, row-major; `as_slice` would also take Fortran
/// order, which would be read wrongly.
fn c_order(name: &str, array: &PyReadonlyArray2<'_, i8>) -> PyResult<Vec<i8>> {
	if !array.is_c_contiguous() {
		return Err(PyValueError::new_err(format!(
			"{name} is not C-contiguous (numpy.ascontiguousarray({name}) makes it so)"
		)));
	}
	Ok(array.as_slice().map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?.to_vec())
}

/// `b` transposed (the puzzle multiplies `A` by `Bt`), from any layout.
fn transposed(b: &PyReadonlyArray2<'_, i8>) -> Vec<i8> {
	b.as_array().t().iter().copied().collect()
}

fn into_array(py: Python<'_>, product: Vec<i32>, rows: usize, cols: usize) -> PyResult<Bound<'_, PyArray2<i32>>> {
	let product = Array2::from_shape_vec((rows, cols), product)
		.map_err(|e| PyValueError::new_err(format!("product shape: {e}")))?;
	Ok(product.into_pyarray(py))
}

fn job_error(e: JobError) -> PyErr {
	match e {
		JobError::TooLarge(why) => PyMemoryError::new_err(why),
		JobError::Device(why) => PyRuntimeError::new_err(format!("the GPU failed: {why}")),
		other => PyValueError::new_err(other.to_string()),
	}
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
	// Records go to `logging` (warnings show on stderr with no set-up, as
	// Python's own do); a process that set a logger up before gets them too.
	// (`try_init`: a logger another extension installed first stays.)
	let _ = pyo3_log::try_init();
	m.add_class::<Miner>()?;
	m.add_class::<Weight>()?;
	m.add_class::<DeviceWeight>()?;
	m.add_function(wrap_pyfunction!(dlpack::dlpack_describe, m)?)?;
	Ok(())
}
