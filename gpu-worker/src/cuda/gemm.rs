//! The cuBLASLt int8 GEMM the v1 pipeline runs (and the benchmark's
//! yardstick), prepared once per shape.

use super::launch::alloc;
use super::GEMM_WORKSPACE;
use anyhow::{anyhow, bail};
use cudarc::{
	cublaslt::{result as lt, sys as lt_sys},
	driver::{CudaContext, CudaSlice, CudaStream, DevicePtr, DevicePtrMut},
};
use std::{ffi::c_void, sync::Arc};

/// A prepared cuBLASLt int8 GEMM: `C (rows x n, i32, row-major) = A (rows x
/// k, i8, row-major) * Bt^T`, with `Bt` (`n x k`, row-major) the weights.
///
/// cuBLASLt is column-major, so it computes the transpose: `C^T (n x rows,
/// column-major, which is C row-major) = op(Bt') * A'`, where `Bt'` is `Bt`
/// seen column-major (`k x n`, transposed by `op = T`) and `A'` is `A` seen
/// column-major (`k x rows`). That is the "TN" layout, both operands
/// contiguous along `k`, which int8 IMMA kernels require.
///
/// [`Gemm::strided`] takes leading dimensions (`lda`, `ldb`, `ldc`
/// elements between rows) for operands the caller keeps on the device, and
/// [`Gemm::run_raw`] their addresses, with `beta` 1 to accumulate.
pub(super) struct Gemm {
	handle: lt_sys::cublasLtHandle_t,
	desc: lt_sys::cublasLtMatmulDesc_t,
	layouts: [lt_sys::cublasLtMatrixLayout_t; 3],
	algo: lt_sys::cublasLtMatmulAlgo_t,
	workspace: CudaSlice<u8>,
	shape: (usize, usize, usize),
	/// Elements between rows of `A`, `Bt` and `C`.
	ld: (usize, usize, usize),
}

/// What a strided GEMM may assume of the memory it is given: the least
/// alignment of every address, in bytes (the heuristic then picks only
/// kernels that need no more), and its scratch space.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lent {
	pub align: u32,
	pub workspace: usize,
}

// SAFETY: the handles are only used by the lane's thread, one call at a time.
unsafe impl Send for Gemm {}

impl Gemm {
	pub(super) fn new(
		ctx: &Arc<CudaContext>,
		stream: &Arc<CudaStream>,
		rows: usize,
		n: usize,
		k: usize,
	) -> anyhow::Result<Self> {
		Self::strided(ctx, stream, (rows, n, k), (k, k, n), None)
	}

	/// `C (rows x n, rows ldc apart) = A (rows x k, lda apart) * Bt^T (n x
	/// k, ldb apart)`, each row contiguous; `lent`: on memory of the
	/// caller's, aligned only as it says (`None`: our own allocations).
	pub(super) fn strided(
		ctx: &Arc<CudaContext>,
		stream: &Arc<CudaStream>,
		(rows, n, k): (usize, usize, usize),
		(lda, ldb, ldc): (usize, usize, usize),
		lent: Option<Lent>,
	) -> anyhow::Result<Self> {
		let workspace = lent.map_or(GEMM_WORKSPACE, |l| l.workspace);
		if lda < k || ldb < k || ldc < n {
			bail!("leading dimensions ({lda}, {ldb}, {ldc}) shorter than the rows ({k}, {k}, {n})");
		}
		let err = |what: &'static str| move |e: lt::CublasError| anyhow!("cuBLASLt {what}: {e:?}");
		// Built up in place, so that `Drop` frees whatever was created when a
		// later step fails.
		let mut g = Gemm {
			workspace: alloc::<u8>(ctx, stream, workspace, "the GEMM workspace")?,
			handle: lt::create_handle().map_err(err("create"))?,
			desc: std::ptr::null_mut(),
			layouts: [std::ptr::null_mut(); 3],
			// SAFETY: an opaque array of integers; only written by the
			// heuristic below before use.
			algo: unsafe { std::mem::zeroed() },
			shape: (rows, n, k),
			ld: (lda, ldb, ldc),
		};
		g.desc =
			lt::create_matmul_desc(lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32I, lt_sys::cudaDataType::CUDA_R_32I)
				.map_err(err("matmul descriptor"))?;
		let transpose: i32 = 1; // CUBLAS_OP_T
						  // SAFETY: `desc` is live; the attribute is an i32-sized enum.
		unsafe {
			lt::set_matmul_desc_attribute(
				g.desc,
				lt_sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
				&transpose as *const i32 as *const c_void,
				std::mem::size_of::<i32>(),
			)
		}
		.map_err(err("transpose A"))?;
		let (r, n64, k64) = (rows as u64, n as u64, k as u64);
		g.layouts[0] = lt::create_matrix_layout(lt_sys::cudaDataType::CUDA_R_8I, k64, n64, ldb as i64)
			.map_err(err("layout Bt"))?;
		g.layouts[1] =
			lt::create_matrix_layout(lt_sys::cudaDataType::CUDA_R_8I, k64, r, lda as i64).map_err(err("layout A"))?;
		g.layouts[2] =
			lt::create_matrix_layout(lt_sys::cudaDataType::CUDA_R_32I, n64, r, ldc as i64).map_err(err("layout C"))?;
		let pref = lt::create_matmul_pref().map_err(err("preference"))?;
		let ws = workspace as u64;
		use lt_sys::cublasLtMatmulPreferenceAttributes_t as Pref;
		let aligned = [
			Pref::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
			Pref::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
			Pref::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
			Pref::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
		];
		// SAFETY: `pref` and every descriptor are live; the attributes are a
		// u64 (workspace) and u32s (alignments).
		let heuristic = unsafe {
			lt::set_matmul_pref_attribute(
				pref,
				Pref::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
				&ws as *const u64 as *const c_void,
				std::mem::size_of::<u64>(),
			)
			.map_err(err("workspace preference"))
			.and_then(|()| {
				// Without these the heuristic assumes 256-byte alignment, and a
				// kernel that needs it faults on a tensor that has less.
				for attr in aligned.into_iter().filter(|_| lent.is_some()) {
					let align = lent.map_or(256, |l| l.align);
					lt::set_matmul_pref_attribute(
						pref,
						attr,
						&align as *const u32 as *const c_void,
						std::mem::size_of::<u32>(),
					)
					.map_err(err("alignment preference"))?;
				}
				Ok(())
			})
			.and_then(|()| {
				lt::get_matmul_algo_heuristic(
					g.handle,
					g.desc,
					g.layouts[0],
					g.layouts[1],
					g.layouts[2],
					g.layouts[2],
					pref,
				)
				.map_err(|e| anyhow!("cuBLASLt has no int8 GEMM for {rows}x{n}x{k} on this GPU: {e:?}"))
			})
		};
		// SAFETY: `pref` is live and not used again.
		let _ = unsafe { lt::destroy_matmul_pref(pref) };
		g.algo = heuristic?.algo;
		Ok(g)
	}

	/// Enqueues `c = a * bt^T` on `stream`.
	pub(super) fn run(
		&mut self,
		stream: &Arc<CudaStream>,
		bt: &CudaSlice<i8>,
		a: &CudaSlice<i8>,
		c: &mut CudaSlice<i32>,
	) -> anyhow::Result<()> {
		let (rows, n, k) = self.shape;
		if self.ld != (k, k, n) {
			bail!("a strided GEMM runs on addresses (run_raw)");
		}
		if bt.len() < n * k || a.len() < rows * k || c.len() < rows * n {
			bail!("GEMM buffers smaller than {rows}x{n}x{k}");
		}
		let (bt_ptr, _b) = bt.device_ptr(stream);
		let (a_ptr, _a) = a.device_ptr(stream);
		let (c_ptr, _c) = c.device_ptr_mut(stream);
		// SAFETY: the buffers hold the shapes (checked above).
		unsafe { self.run_raw(stream, bt_ptr, a_ptr, c_ptr, false) }
	}

	/// Enqueues `c = a * bt^T` (or `c += a * bt^T`, `accumulate`) on
	/// `stream`, on device addresses.
	///
	/// # Safety
	/// The addresses hold the shapes and leading dimensions this GEMM was
	/// made for, valid until the stream has run it; nothing else writes `c`.
	pub(super) unsafe fn run_raw(
		&mut self,
		stream: &Arc<CudaStream>,
		bt_ptr: u64,
		a_ptr: u64,
		c_ptr: u64,
		accumulate: bool,
	) -> anyhow::Result<()> {
		let (rows, n, k) = self.shape;
		let (alpha, beta) = (1i32, i32::from(accumulate));
		let workspace = self.workspace.len();
		let (w_ptr, _w) = self.workspace.device_ptr_mut(stream);
		// SAFETY: the descriptors are live and describe these buffers (the
		// caller vouches for them); alpha and beta are i32 as the scale type
		// says.
		unsafe {
			lt::matmul(
				self.handle,
				self.desc,
				&alpha as *const i32 as *const c_void,
				&beta as *const i32 as *const c_void,
				bt_ptr as *const c_void,
				self.layouts[0],
				a_ptr as *const c_void,
				self.layouts[1],
				c_ptr as *const c_void,
				self.layouts[2],
				c_ptr as *mut c_void,
				self.layouts[2],
				&self.algo,
				w_ptr as *mut c_void,
				workspace,
				stream.cu_stream() as lt_sys::cudaStream_t,
			)
		}
		.map_err(|e| anyhow!("cuBLASLt int8 GEMM {rows}x{n}x{k}: {e:?}"))
	}
}

impl Drop for Gemm {
	fn drop(&mut self) {
		// SAFETY: each was created in `new` (or is still null) and is
		// destroyed once, here.
		unsafe {
			for l in self.layouts.into_iter().filter(|l| !l.is_null()) {
				let _ = lt::destroy_matrix_layout(l);
			}
			if !self.desc.is_null() {
				let _ = lt::destroy_matmul_desc(self.desc);
			}
			let _ = lt::destroy_handle(self.handle);
		}
	}
}
