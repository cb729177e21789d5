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
	session::{Options, Session},
};
use numpy::{ndarray::Array2, IntoPyArray, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::{
	exceptions::{PyMemoryError, PyRuntimeError, PyValueError},
	prelude::*,
	types::PyDict,
};

/// The most background mining threads a miner starts.
const MAX_BACKGROUND_THREADS: usize = 1024;

/// A miner in this process: a session with a node in the background, and
/// `matmul`, whose products mine on the node's work.
#[pyclass(frozen, module = "mlpow._native")]
struct Miner {
	session: Session,
	node: String,
}

#[pymethods]
impl Miner {
	/// Connects to `node` in the background (it keeps reconnecting).
	/// `backend`: what multiplies the calls: "cpu" (the calling thread),
	/// "cuda" (the first GPU; host arrays are copied to it and back), or
	/// "auto" (CUDA where a driver and a GPU are present, else the CPU).
	/// `background_threads`: CPU threads mining seeded nonces between calls.
	/// `min_fill`: the least share of a puzzle piece a call's data must fill
	/// to be mined (smaller products are multiplied plainly).
	#[new]
	#[pyo3(signature = (node = "ws://127.0.0.1:9944", *, backend = "cpu", min_fill = 0.5, background_threads = 0))]
	fn new(node: &str, backend: &str, min_fill: f64, background_threads: usize) -> PyResult<Self> {
		if !node.starts_with("ws://") {
			return Err(PyValueError::new_err(format!("node {node:?} is not a ws:// URL (ws://127.0.0.1:9944)")));
		}
		if !(0.0..=1.0).contains(&min_fill) {
			return Err(PyValueError::new_err(format!("min_fill {min_fill} is not between 0 and 1")));
		}
		let first_gpu = || cuda::lanes(Some(&[0])).map(|mut lanes| lanes.remove(0));
		let multiplier = match backend {
			"cpu" => cpu::lanes(1).remove(0),
			"cuda" => first_gpu().map_err(|e| PyRuntimeError::new_err(format!("backend \"cuda\": {e:#}")))?,
			"auto" => first_gpu().unwrap_or_else(|_| cpu::lanes(1).remove(0)),
			other => {
				return Err(PyValueError::new_err(format!("backend {other:?}: give \"cpu\", \"cuda\" or \"auto\"")))
			}
		};
		if background_threads > MAX_BACKGROUND_THREADS {
			return Err(PyValueError::new_err(format!(
				"background_threads {background_threads}: at most {MAX_BACKGROUND_THREADS}"
			)));
		}
		let background = if background_threads > 0 { cpu::lanes(background_threads) } else { Vec::new() };
		let options = Options { multiplier: Some(multiplier), background, job_memory: 0, min_fill };
		let session = Session::connect(node, options).map_err(|e| PyRuntimeError::new_err(format!("{e:#}")))?;
		Ok(Self { session, node: node.to_string() })
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
		// `as_slice` also takes Fortran order, which would be read wrongly.
		if !a.is_c_contiguous() {
			return Err(PyValueError::new_err("a is not C-contiguous (numpy.ascontiguousarray(a) makes it so)"));
		}
		let a_values = a.as_slice().map_err(|e| PyValueError::new_err(format!("a: {e}")))?.to_vec();
		// The puzzle multiplies A by B transposed.
		let bt: Vec<i8> = b.as_array().t().iter().copied().collect();
		let matrices = Matrices { rows, depth, cols, a: a_values, bt };
		let session = &self.session;
		let product = py.detach(move || session.matmul(&matrices)).map_err(job_error)?;
		let product = Array2::from_shape_vec((rows, cols), product)
			.map_err(|e| PyValueError::new_err(format!("product shape: {e}")))?;
		Ok(product.into_pyarray(py))
	}

	/// What this miner's calls did: MACs multiplied, mined and plain,
	/// nonces, tickets, winners, and the node's answers to the seals.
	fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
		let s = self.session.stats();
		let d = PyDict::new(py);
		for (key, value) in [
			("calls", s.calls),
			("macs", s.macs),
			("macs_mined", s.macs_mined),
			("macs_plain", s.macs_plain),
			("nonces", s.nonces),
			("tickets", s.tickets),
			("winners", s.winners),
			("blocks_accepted", s.blocks_accepted),
			("stale", s.stale),
			("rejected", s.rejected),
		] {
			d.set_item(key, value)?;
		}
		d.set_item("mining", self.session.mining())?;
		Ok(d)
	}

	fn __repr__(&self) -> String {
		let s = self.session.stats();
		format!("Miner(node={:?}, calls={}, macs_mined={}/{})", self.node, s.calls, s.macs_mined, s.macs)
	}
}

fn shape(array: &PyReadonlyArray2<'_, i8>) -> [usize; 2] {
	let s = array.shape();
	[s[0], s[1]]
}

fn job_error(e: JobError) -> PyErr {
	match e {
		JobError::TooLarge(why) => PyMemoryError::new_err(why),
		other => PyValueError::new_err(other.to_string()),
	}
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
	m.add_class::<Miner>()?;
	Ok(())
}
