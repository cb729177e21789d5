//! Tensors taken through DLPack (<https://dmlc.github.io/dlpack/latest/>):
//! any producer's (PyTorch, numpy, CuPy, JAX) matrices read where they
//! lie, a CUDA tensor's on its GPU, never copied to the host.
//!
//! A producer's `__dlpack__` returns a capsule named `dltensor_versioned`
//! (DLPack 1.x, asked for with `max_version=(1, 0)`) or `dltensor` (older
//! producers) holding a managed tensor: the description (address, device,
//! shape, strides in elements, dtype) and a deleter that releases the
//! producer's reference. Taking it renames the capsule `used_…`, as the
//! protocol asks, so the producer no longer frees it; [`Taken`] calls the
//! deleter once, when it is dropped.

use mlpow_worker::cuda::operand::{DeviceMatrix, DeviceOut};
use pyo3::{
	exceptions::{PyTypeError, PyValueError},
	ffi,
	prelude::*,
	types::{PyCapsule, PyCapsuleMethods, PyDict},
};
use std::ffi::{c_void, CStr};

/// `DLDeviceType` values this module knows.
pub const CPU: i32 = 1;
pub const CUDA: i32 = 2;
pub const CUDA_HOST: i32 = 3;
pub const CUDA_MANAGED: i32 = 13;

/// `DLDataTypeCode::kDLInt`.
const INT: u8 = 0;

/// The versioned tensor's flag for memory the consumer must not write.
const FLAG_READ_ONLY: u64 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DLDevice {
	pub device_type: i32,
	pub device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLDataType {
	pub code: u8,
	pub bits: u8,
	pub lanes: u16,
}

#[repr(C)]
#[derive(Debug)]
pub struct DLTensor {
	pub data: *mut c_void,
	pub device: DLDevice,
	pub ndim: i32,
	pub dtype: DLDataType,
	pub shape: *mut i64,
	/// `NULL`: compact and row-major.
	pub strides: *mut i64,
	pub byte_offset: u64,
}

#[repr(C)]
pub struct DLManagedTensor {
	pub dl_tensor: DLTensor,
	pub manager_ctx: *mut c_void,
	pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

#[repr(C)]
pub struct DLPackVersion {
	pub major: u32,
	pub minor: u32,
}

#[repr(C)]
pub struct DLManagedTensorVersioned {
	pub version: DLPackVersion,
	pub manager_ctx: *mut c_void,
	pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
	pub flags: u64,
	pub dl_tensor: DLTensor,
}

// The layouts of dlpack.h on every 64-bit platform.
const _: () = assert!(std::mem::size_of::<DLTensor>() == 48);
const _: () = assert!(std::mem::size_of::<DLManagedTensor>() == 64);
const _: () = assert!(std::mem::size_of::<DLManagedTensorVersioned>() == 80);
const _: () = assert!(std::mem::offset_of!(DLManagedTensorVersioned, dl_tensor) == 32);

/// A managed tensor taken from its capsule: the description stays valid,
/// and the producer's memory alive, until this is dropped (which calls
/// the deleter, once).
pub enum Taken {
	Legacy(*mut DLManagedTensor),
	Versioned(*mut DLManagedTensorVersioned),
}

impl Taken {
	pub fn tensor(&self) -> &DLTensor {
		// SAFETY: the pointer came from a capsule of its kind and stays
		// valid until the deleter runs, in `drop`.
		unsafe {
			match *self {
				Self::Legacy(m) => &(*m).dl_tensor,
				Self::Versioned(m) => &(*m).dl_tensor,
			}
		}
	}

	/// Whether the producer forbids writing the memory (DLPack 1.x only).
	pub fn read_only(&self) -> bool {
		// SAFETY: as in `tensor`.
		matches!(*self, Self::Versioned(m) if unsafe { (*m).flags } & FLAG_READ_ONLY != 0)
	}
}

impl Drop for Taken {
	fn drop(&mut self) {
		// SAFETY: each managed tensor is taken once (its capsule renamed)
		// and its deleter called once, here, as the protocol asks.
		unsafe {
			match *self {
				Self::Legacy(m) => {
					if let Some(deleter) = (*m).deleter {
						deleter(m)
					}
				}
				Self::Versioned(m) => {
					if let Some(deleter) = (*m).deleter {
						deleter(m)
					}
				}
			}
		}
	}
}

/// The managed tensor of `obj` (anything with `__dlpack__`), asked for on
/// `stream` (`None` for CPU tensors; a CUDA stream's handle, or 1 for the
/// legacy default stream): the producer orders its pending work on the
/// tensor before that stream's.
pub fn take(py: Python<'_>, name: &str, obj: &Bound<'_, PyAny>, stream: Option<isize>) -> PyResult<Taken> {
	if !obj.hasattr("__dlpack__")? {
		return Err(PyTypeError::new_err(format!(
			"{name} is a {}: give a tensor that supports DLPack (a torch tensor, a numpy array)",
			obj.get_type().name()?
		)));
	}
	// Host memory takes no stream (numpy refuses one): asked where the
	// tensor is first, as the protocol advises.
	let on_host = match obj.call_method0("__dlpack_device__") {
		Ok(device) => matches!(device.extract::<(i32, i32)>(), Ok((CPU | CUDA_HOST, _))),
		Err(_) => false,
	};
	let kwargs = PyDict::new(py);
	kwargs.set_item("stream", if on_host { None } else { stream })?;
	kwargs.set_item("max_version", (1, 0))?;
	let capsule = match obj.call_method("__dlpack__", (), Some(&kwargs)) {
		Ok(capsule) => capsule,
		// A producer older than DLPack 1.0 knows no `max_version`.
		Err(e) if e.is_instance_of::<PyTypeError>(py) => {
			kwargs.del_item("max_version")?;
			obj.call_method("__dlpack__", (), Some(&kwargs))?
		}
		Err(e) => return Err(e),
	};
	let capsule = capsule
		.cast_into::<PyCapsule>()
		.map_err(|_| PyTypeError::new_err(format!("{name}.__dlpack__() did not return a capsule")))?;
	let found = capsule.name()?.map(|n| unsafe { n.as_cstr() }.to_owned());
	let (versioned, used): (bool, &CStr) = match found.as_deref().map(CStr::to_bytes) {
		Some(b"dltensor_versioned") => (true, c"used_dltensor_versioned"),
		Some(b"dltensor") => (false, c"used_dltensor"),
		other => {
			return Err(PyValueError::new_err(format!(
				"{name}'s DLPack capsule is named {:?}: already used, or not a tensor",
				other.map(String::from_utf8_lossy)
			)))
		}
	};
	let pointer = capsule.pointer_checked(found.as_deref())?.as_ptr();
	// SAFETY: a live capsule; renaming it is how a consumer marks it used
	// (its destructor then leaves the tensor to us).
	if unsafe { ffi::PyCapsule_SetName(capsule.as_ptr(), used.as_ptr()) } != 0 {
		return Err(PyErr::fetch(py));
	}
	if versioned {
		let m = pointer as *mut DLManagedTensorVersioned;
		// SAFETY: a `dltensor_versioned` capsule holds this struct.
		let major = unsafe { (*m).version.major };
		let taken = Taken::Versioned(m);
		if major != 1 {
			return Err(PyValueError::new_err(format!("{name} is a DLPack {major}.x tensor; this reads 1.x")));
		}
		Ok(taken)
	} else {
		Ok(Taken::Legacy(pointer as *mut DLManagedTensor))
	}
}

/// A matrix as DLPack describes it: where, on what, of which type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
	pub device: (i32, i32),
	pub address: u64,
	pub rows: u32,
	pub cols: u32,
	/// In elements.
	pub strides: (u64, u64),
	pub dtype: DLDataType,
	pub read_only: bool,
}

impl Matrix {
	/// `taken`'s tensor as a matrix of `bits`-bit integers, or the reason
	/// it is not one.
	pub fn of(name: &str, taken: &Taken, bits: u8) -> PyResult<Self> {
		let t = taken.tensor();
		let dtype = t.dtype;
		if (dtype.code, dtype.bits, dtype.lanes) != (INT, bits, 1) {
			return Err(PyTypeError::new_err(format!(
				"{name} holds DLPack dtype (code {}, {} bits, {} lanes): give int{bits}",
				dtype.code, dtype.bits, dtype.lanes
			)));
		}
		if t.ndim != 2 {
			return Err(PyValueError::new_err(format!(
				"{name} has {} dimensions: give a matrix (2 dimensions)",
				t.ndim
			)));
		}
		// SAFETY: `shape` holds `ndim` values, and `strides` too unless NULL.
		let shape = unsafe { [*t.shape, *t.shape.add(1)] };
		let mut strides = if t.strides.is_null() { [shape[1], 1] } else { unsafe { [*t.strides, *t.strides.add(1)] } };
		// The stride of a dimension of size 1 says nothing, and producers
		// write anything there (PyTorch up to 2.9 exports 1): a single row
		// is a compact one, a single column's elements adjacent.
		if shape[1] == 1 {
			strides[1] = 1;
		}
		if shape[0] == 1 {
			strides[0] = shape[1].saturating_mul(strides[1]);
		}
		if shape[0] <= 0 || shape[1] <= 0 {
			return Err(PyValueError::new_err(format!("{name} is empty ({} x {})", shape[0], shape[1])));
		}
		let too_big = |x: i64| u32::try_from(x).is_err();
		if too_big(shape[0]) || too_big(shape[1]) {
			return Err(PyValueError::new_err(format!("{name} is {} x {}: too large", shape[0], shape[1])));
		}
		if strides[0] < 0 || strides[1] < 0 {
			return Err(PyValueError::new_err(format!(
				"{name} has negative strides {strides:?} (a flipped view): give a copy (.contiguous())"
			)));
		}
		Ok(Self {
			device: (t.device.device_type, t.device.device_id),
			address: (t.data as u64).wrapping_add(t.byte_offset),
			rows: shape[0] as u32,
			cols: shape[1] as u32,
			strides: (strides[0] as u64, strides[1] as u64),
			dtype,
			read_only: taken.read_only(),
		})
	}

	/// Whether the memory is on a CUDA device (or CUDA-managed).
	pub fn on_gpu(&self) -> bool {
		matches!(self.device.0, CUDA | CUDA_MANAGED)
	}

	/// Where the memory is, in words.
	pub fn place(&self) -> String {
		match self.device.0 {
			CPU => "host memory".into(),
			CUDA => format!("the memory of GPU {}", self.device.1),
			CUDA_HOST => "pinned host memory".into(),
			CUDA_MANAGED => format!("managed memory of GPU {}", self.device.1),
			other => format!("memory of DLPack device type {other}"),
		}
	}

	pub fn as_device_matrix(&self) -> DeviceMatrix {
		DeviceMatrix {
			ptr: self.address,
			rows: self.rows,
			cols: self.cols,
			row_stride: self.strides.0,
			col_stride: self.strides.1,
		}
	}

	/// An output: rows apart by their stride, columns adjacent, writable.
	pub fn as_device_out(&self, name: &str) -> PyResult<DeviceOut> {
		if self.read_only {
			return Err(PyValueError::new_err(format!("{name} is read-only: give a writable tensor")));
		}
		if self.strides.1 != 1 {
			return Err(PyValueError::new_err(format!(
				"{name}'s columns are {} apart: give a row-major tensor (torch.empty(m, n, ...))",
				self.strides.1
			)));
		}
		Ok(DeviceOut { ptr: self.address, rows: self.rows, cols: self.cols, ldc: self.strides.0 })
	}
}

/// What a DLPack producer says of `obj`, for tests and messages: device
/// (type, id), shape, strides, dtype (code, bits, lanes), address and
/// whether it is read-only, as a dict. The capsule is taken and released.
#[pyfunction]
pub fn dlpack_describe<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>, bits: u8) -> PyResult<Bound<'py, PyDict>> {
	let taken = take(py, "the tensor", obj, None)?;
	let m = Matrix::of("the tensor", &taken, bits)?;
	let d = PyDict::new(py);
	d.set_item("device", m.device)?;
	d.set_item("shape", (m.rows, m.cols))?;
	d.set_item("strides", m.strides)?;
	d.set_item("dtype", (m.dtype.code, m.dtype.bits, m.dtype.lanes))?;
	d.set_item("address", m.address)?;
	d.set_item("read_only", m.read_only)?;
	d.set_item("versioned", matches!(taken, Taken::Versioned(_)))?;
	Ok(d)
}
