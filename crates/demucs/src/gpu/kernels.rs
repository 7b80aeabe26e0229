//! The kernels and the operations built on them. Each takes tensors already on
//! the device and records work; nothing waits until a read.

use super::{Gpu, GpuTensor};
use crate::DemucsError;

/// One compiled entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kernel {
    Matmul,
    Gelu,
    Add,
    Glu,
    Norm,
}

const GELU: &str = include_str!("shaders/gelu.wgsl");

impl Kernel {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Matmul => "matmul",
            Self::Gelu => "gelu",
            Self::Add => "add",
            Self::Glu => "glu",
            Self::Norm => "norm",
        }
    }

    pub(super) fn entry(self) -> &'static str {
        "main"
    }

    /// The WGSL: the shader file with `//INCLUDE gelu` filled in and, for
    /// files of several kernels, only this kernel's `#if NAME … #endif` block
    /// kept.
    pub(super) fn source(self) -> String {
        let file = match self {
            Self::Matmul => include_str!("shaders/matmul.wgsl"),
            Self::Gelu | Self::Add | Self::Glu => include_str!("shaders/elementwise.wgsl"),
            Self::Norm => include_str!("shaders/norm.wgsl"),
        };
        let mut out = String::new();
        let mut keep = true;
        for line in file.lines() {
            if let Some(name) = line.strip_prefix("#if ") {
                keep = name.trim() == self.name();
                continue;
            }
            if line.starts_with("#endif") {
                keep = true;
                continue;
            }
            if !keep {
                continue;
            }
            if line.trim() == "//INCLUDE gelu" {
                out.push_str(GELU);
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// Workgroups for `count` items per workgroup-sized step: x first, then y (a
/// dimension holds at most 65535).
fn spread(count: usize) -> Result<[u32; 3], DemucsError> {
    const MAX: usize = 65_535;
    let y = count.div_ceil(MAX);
    if y > MAX {
        return Err(DemucsError::Gpu(format!("{count} workgroups are too many")));
    }
    Ok([count.min(MAX) as u32, y as u32, 1])
}

fn u32_of(v: usize, what: &str) -> Result<u32, DemucsError> {
    u32::try_from(v).map_err(|_| DemucsError::Gpu(format!("{what} {v} does not fit 32 bits")))
}

/// A matrix inside a tensor: element (r, c) of batch item b is at
/// `off + b·bs + r·rs + c·cs`.
#[derive(Debug, Clone, Copy)]
pub struct MatView<'a> {
    /// The tensor holding it.
    pub t: &'a GpuTensor,
    /// First element.
    pub off: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
    /// Batch stride.
    pub bs: usize,
}

impl<'a> MatView<'a> {
    /// A row-major `[rows, cols]` matrix at the start of `t` (batch items
    /// follow each other).
    pub fn rows(t: &'a GpuTensor, rows: usize, cols: usize) -> Self {
        Self {
            t,
            off: 0,
            rs: cols,
            cs: 1,
            bs: rows * cols,
        }
    }

    /// The transpose of this view.
    pub fn t(self) -> Self {
        Self {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// The same view starting `by` floats later.
    pub fn offset(self, by: usize) -> Self {
        Self {
            off: self.off + by,
            ..self
        }
    }

    /// The same view with batch stride `bs`.
    pub fn batch_stride(self, bs: usize) -> Self {
        Self { bs, ..self }
    }
}

/// What a matrix product does after the sum.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Adds C's previous contents.
    pub accumulate: bool,
    /// Adds `bias[r]` to row r (a convolution's per-channel bias).
    pub bias_rows: Option<&'a GpuTensor>,
    /// Adds `bias[c]` to column c (a linear layer's bias, tokens in rows).
    pub bias_cols: Option<&'a GpuTensor>,
    /// Applies GELU last.
    pub gelu: bool,
}

impl Gpu {
    /// `C[b] = A[b]·B[b]` for `batch` items, `[m, k]·[k, n]`, then `epi`.
    /// `c` must not share a tensor with `a`, `b` or a bias.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        c: MatView<'_>,
        a: MatView<'_>,
        b: MatView<'_>,
        (m, n, k): (usize, usize, usize),
        batch: usize,
        epi: Epilogue<'_>,
    ) -> Result<(), DemucsError> {
        let bias = epi.bias_rows.or(epi.bias_cols);
        let flags = u32::from(epi.accumulate)
            | u32::from(epi.bias_rows.is_some()) << 1
            | u32::from(epi.bias_cols.is_some()) << 2
            | u32::from(epi.gelu) << 3;
        let w = |v: usize| u32_of(v, "matmul");
        let params = [
            w(m)?,
            w(n)?,
            w(k)?,
            flags,
            w(a.off)?,
            w(a.rs)?,
            w(a.cs)?,
            w(a.bs)?,
            w(b.off)?,
            w(b.rs)?,
            w(b.cs)?,
            w(b.bs)?,
            w(c.off)?,
            w(c.rs)?,
            w(c.cs)?,
            w(c.bs)?,
            0,
        ];
        // An unused bias binding still needs a buffer: A's is read-only too.
        let bias_buf = bias.map_or(&a.t.buffer, |t| &t.buffer);
        self.dispatch(
            Kernel::Matmul,
            &params,
            &[&a.t.buffer, &b.t.buffer, &c.t.buffer, bias_buf],
            [
                u32_of(n.div_ceil(64), "matmul columns")?,
                u32_of(m.div_ceil(64), "matmul rows")?,
                u32_of(batch, "matmul batch")?,
            ],
        )
    }

    /// GELU in place.
    pub fn gelu(&self, x: &GpuTensor) -> Result<(), DemucsError> {
        self.dispatch(
            Kernel::Gelu,
            &[u32_of(x.len, "gelu")?, 0, 0, 0],
            &[&x.buffer],
            spread(x.len.div_ceil(256))?,
        )
    }

    /// `x += y` (the same length).
    pub fn add(&self, x: &GpuTensor, y: &GpuTensor) -> Result<(), DemucsError> {
        if x.len != y.len {
            return Err(DemucsError::Gpu(format!(
                "add: {} and {} floats",
                x.len, y.len
            )));
        }
        self.dispatch(
            Kernel::Add,
            &[u32_of(x.len, "add")?, 0, 0, 0],
            &[&x.buffer, &y.buffer],
            spread(x.len.div_ceil(256))?,
        )
    }

    /// GLU over channels: `x` = `[batch][2c, n]` → a new `[batch][c, n]`.
    pub fn glu(
        &self,
        x: &GpuTensor,
        batch: usize,
        c: usize,
        n: usize,
    ) -> Result<GpuTensor, DemucsError> {
        let out = self.zeros(batch * c * n)?;
        self.dispatch(
            Kernel::Glu,
            &[
                u32_of(out.len, "glu")?,
                u32_of(c, "glu")?,
                u32_of(n, "glu")?,
                0,
            ],
            &[&x.buffer, &out.buffer],
            spread(out.len.div_ceil(256))?,
        )?;
        Ok(out)
    }

    /// GroupNorm of `x` = `[batch][c, n]` with `groups` groups (PyTorch:
    /// biased variance, per-channel affine), then GELU with `gelu`, in place.
    #[allow(clippy::too_many_arguments)]
    pub fn group_norm(
        &self,
        x: &GpuTensor,
        (batch, c, n): (usize, usize, usize),
        groups: usize,
        weight: &GpuTensor,
        bias: &GpuTensor,
        eps: f32,
        gelu: bool,
    ) -> Result<(), DemucsError> {
        if groups == 0 || c % groups != 0 {
            return Err(DemucsError::Gpu(format!(
                "GroupNorm: {c} channels in {groups} groups"
            )));
        }
        let per = c / groups;
        let count = batch * groups;
        self.dispatch(
            Kernel::Norm,
            &[
                u32_of(per * n, "GroupNorm")?,
                u32_of(c, "GroupNorm")?,
                u32_of(per, "GroupNorm")?,
                u32::from(gelu),
                eps.to_bits(),
                u32_of(count, "GroupNorm")?,
            ],
            &[&x.buffer, &weight.buffer, &bias.buffer],
            spread(count)?,
        )
    }

    /// LayerNorm over the last axis of `x` = `[rows, d]`, in place.
    pub fn layer_norm(
        &self,
        x: &GpuTensor,
        d: usize,
        weight: &GpuTensor,
        bias: &GpuTensor,
        eps: f32,
    ) -> Result<(), DemucsError> {
        let rows = x.len / d.max(1);
        self.dispatch(
            Kernel::Norm,
            &[
                u32_of(d, "LayerNorm")?,
                u32_of(d, "LayerNorm")?,
                0,
                0,
                eps.to_bits(),
                u32_of(rows, "LayerNorm")?,
            ],
            &[&x.buffer, &weight.buffer, &bias.buffer],
            spread(rows)?,
        )
    }
}
