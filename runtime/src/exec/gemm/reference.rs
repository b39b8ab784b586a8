//! The reference GEMM: a triple loop that accumulates in f64. Slow and
//! obviously correct, so tests compare the tuned provider against it.

use super::{check_operands, element, scale_only, GemmProvider, MatPtr, MatRef};

/// `C = alpha·A·B + beta·C` by a plain triple loop, each dot product
/// accumulated in f64. Ignores `threads`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

impl GemmProvider for Reference {
    fn name(&self) -> &'static str {
        "reference"
    }

    unsafe fn gemm_shared(
        &self,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: MatRef,
        b: MatRef,
        beta: f32,
        c: MatPtr,
        _threads: usize,
    ) -> Result<(), String> {
        check_operands(m, n, k, &a, &b, &c)?;
        if alpha == 0.0 || k == 0 {
            // SAFETY: checked operands; `c` under this function's contract.
            return unsafe { scale_only(m, n, beta, c) };
        }
        let read = |mat: &MatRef, i: usize, j: usize| -> Result<f64, String> {
            let at = element(mat.offset, mat.row_stride, mat.col_stride, i, j)?;
            mat.data.get(at).map(|&v| f64::from(v)).ok_or_else(|| "operand index out of range".to_string())
        };
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for p in 0..k {
                    acc += read(&a, i, p)? * read(&b, p, j)?;
                }
                let at = element(c.offset, c.row_stride, c.col_stride, i, j)?;
                if at >= c.len {
                    return Err("C index out of range".into());
                }
                // SAFETY: `at < c.len` lies in the storage, which is valid
                // for reads and writes, and the element is this product's
                // alone (the contract of `gemm_shared`).
                unsafe {
                    let v = c.ptr.add(at);
                    let prior = if beta == 0.0 { 0.0 } else { f64::from(beta) * f64::from(*v) };
                    *v = (f64::from(alpha) * acc + prior) as f32;
                }
            }
        }
        Ok(())
    }
}
