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
    Scale,
    Norm,
    Im2col,
    Col2im,
    Copy,
    Softmax,
}

const GELU: &str = include_str!("shaders/gelu.wgsl");

impl Kernel {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Matmul => "matmul",
            Self::Gelu => "gelu",
            Self::Add => "add",
            Self::Glu => "glu",
            Self::Scale => "scale",
            Self::Norm => "norm",
            Self::Im2col => "im2col",
            Self::Col2im => "col2im",
            Self::Copy => "copy",
            Self::Softmax => "softmax",
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
            Self::Gelu | Self::Add | Self::Glu | Self::Scale => {
                include_str!("shaders/elementwise.wgsl")
            }
            Self::Norm => include_str!("shaders/norm.wgsl"),
            Self::Im2col | Self::Col2im => include_str!("shaders/conv.wgsl"),
            Self::Copy => include_str!("shaders/copy.wgsl"),
            Self::Softmax => include_str!("shaders/softmax.wgsl"),
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
    /// Applies ReLU last.
    pub relu: bool,
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
            | u32::from(epi.gelu) << 3
            | u32::from(epi.relu) << 4;
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
        self.norm(
            x,
            &NormShape {
                len: per * n,
                inner: per * n,
                outer_stride: 0,
                chan_div: n.max(1),
                per,
                groups,
                channels: c,
                by_column: false,
                item_rows: 1,
                item_stride: per * n,
                row_stride: 0,
                count: batch * groups,
            },
            (weight, bias),
            eps,
            gelu,
        )
    }

    /// DConv's one-group norm per frequency row of `x` = `[c, f, t]`: each
    /// row's `c·t` floats together, a per-channel affine, then GELU with
    /// `gelu`.
    #[allow(clippy::too_many_arguments)]
    pub fn row_norm(
        &self,
        x: &GpuTensor,
        (c, f, t): (usize, usize, usize),
        weight: &GpuTensor,
        bias: &GpuTensor,
        eps: f32,
        gelu: bool,
    ) -> Result<(), DemucsError> {
        self.norm(
            x,
            &NormShape {
                len: c * t,
                inner: t,
                outer_stride: f * t,
                chan_div: t.max(1),
                per: c,
                groups: 1,
                channels: c,
                by_column: false,
                item_rows: f,
                item_stride: c * f * t,
                row_stride: t,
                count: f,
            },
            (weight, bias),
            eps,
            gelu,
        )
    }

    /// LayerNorm over the last axis of `x` = `[rows, d]`, in place; with
    /// `whole`, one norm over all of `x` (the transformer's one-group norm of
    /// `[tokens, d]`) with the same per-column affine.
    pub fn layer_norm(
        &self,
        x: &GpuTensor,
        d: usize,
        (weight, bias): (&GpuTensor, &GpuTensor),
        eps: f32,
        whole: bool,
    ) -> Result<(), DemucsError> {
        let d = d.max(1);
        let (len, count) = if whole { (x.len, 1) } else { (d, x.len / d) };
        self.norm(
            x,
            &NormShape {
                len,
                inner: len,
                outer_stride: 0,
                chan_div: 1,
                per: 0,
                groups: 1,
                channels: d,
                by_column: true,
                item_rows: 1,
                item_stride: len,
                row_stride: 0,
                count,
            },
            (weight, bias),
            eps,
            false,
        )
    }

    fn norm(
        &self,
        x: &GpuTensor,
        s: &NormShape,
        (weight, bias): (&GpuTensor, &GpuTensor),
        eps: f32,
        gelu: bool,
    ) -> Result<(), DemucsError> {
        let w = |v: usize| u32_of(v, "norm");
        let flags = u32::from(gelu) | u32::from(s.by_column) << 1;
        self.dispatch(
            Kernel::Norm,
            &[
                w(s.len)?,
                w(s.inner.max(1))?,
                w(s.outer_stride)?,
                w(s.chan_div)?,
                w(s.per)?,
                w(s.groups.max(1))?,
                w(s.channels.max(1))?,
                flags,
                w(s.item_rows.max(1))?,
                w(s.item_stride)?,
                w(s.row_stride)?,
                w(s.count)?,
                eps.to_bits(),
            ],
            &[&x.buffer, &weight.buffer, &bias.buffer],
            spread(s.count)?,
        )
    }

    /// `x[i] ·= s[(i / len) % c]`: LayerScale over `[c, len]` channel rows,
    /// or over `[tokens, c]` with `len = 1`.
    pub fn scale(
        &self,
        x: &GpuTensor,
        s: &GpuTensor,
        c: usize,
        len: usize,
    ) -> Result<(), DemucsError> {
        self.dispatch(
            Kernel::Scale,
            &[
                u32_of(x.len, "scale")?,
                u32_of(c, "scale")?,
                u32_of(len.max(1), "scale")?,
                0,
            ],
            &[&x.buffer, &s.buffer],
            spread(x.len.div_ceil(256))?,
        )
    }

    /// Softmax of each row of `x` = `[rows, n]`, in place.
    pub fn softmax_rows(&self, x: &GpuTensor, n: usize) -> Result<(), DemucsError> {
        self.softmax_rows_n(x, n, x.len / n.max(1))
    }

    /// Softmax of the first `rows` rows of `n` floats of `x`, in place.
    pub fn softmax_rows_n(&self, x: &GpuTensor, n: usize, rows: usize) -> Result<(), DemucsError> {
        self.dispatch(
            Kernel::Softmax,
            &[u32_of(n, "softmax")?, u32_of(rows, "softmax")?],
            &[&x.buffer],
            spread(rows)?,
        )
    }

    /// A new tensor holding what `x` holds.
    pub fn duplicate(&self, x: &GpuTensor) -> Result<GpuTensor, DemucsError> {
        let y = self.zeros(x.len)?;
        self.copy3(
            x,
            &y,
            &Copy3 {
                shape: [1, 1, x.len],
                src: (0, [0, 0, 1]),
                dst: (0, [0, 0, 1]),
                accumulate: false,
            },
        )?;
        Ok(y)
    }

    /// A strided copy (see [`Copy3`]): slices, pads, transposes, broadcasts.
    pub fn copy3(&self, src: &GpuTensor, dst: &GpuTensor, c: &Copy3) -> Result<(), DemucsError> {
        let n = c.shape[0] * c.shape[1] * c.shape[2];
        let w = |v: usize| u32_of(v, "copy");
        self.dispatch(
            Kernel::Copy,
            &[
                w(n)?,
                w(c.shape[0])?,
                w(c.shape[1].max(1))?,
                w(c.shape[2].max(1))?,
                w(c.src.0)?,
                w(c.src.1[0])?,
                w(c.src.1[1])?,
                w(c.src.1[2])?,
                w(c.dst.0)?,
                w(c.dst.1[0])?,
                w(c.dst.1[1])?,
                w(c.dst.1[2])?,
                u32::from(c.accumulate),
            ],
            &[&src.buffer, &dst.buffer],
            spread(n.div_ceil(256))?,
        )
    }

    /// Columns `p0 .. p0 + nb` of the unfolded input of a 2-D convolution
    /// over `x` (`[cin, h, w]` from float `x_off`) into `cols` =
    /// `[cin·kh·kw, nb]`.
    pub fn im2col(
        &self,
        x: &GpuTensor,
        x_off: usize,
        cols: &GpuTensor,
        g: &ConvGeometry,
        (p0, nb): (usize, usize),
    ) -> Result<(), DemucsError> {
        let n = g.cin * g.k.0 * g.k.1 * nb;
        let w = |v: usize| u32_of(v, "im2col");
        let (oh, ow) = g.out();
        self.dispatch(
            Kernel::Im2col,
            &[
                w(n)?,
                w(g.cin)?,
                w(g.h)?,
                w(g.w)?,
                w(g.k.0)?,
                w(g.k.1)?,
                w(g.stride.0)?,
                w(g.stride.1)?,
                w(g.pad.0)?,
                w(g.pad.1)?,
                w(g.dilation.0)?,
                w(g.dilation.1)?,
                w(oh)?,
                w(ow)?,
                w(p0)?,
                w(nb)?,
                w(x_off)?,
            ],
            &[&x.buffer, &cols.buffer],
            spread(n.div_ceil(256))?,
        )
    }

    /// The overlap-add of a transposed convolution: `cols` =
    /// `[cout·kh·kw, h·w]` into `out` = `[cout, oh, ow]`, plus `bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn col2im(
        &self,
        cols: &GpuTensor,
        bias: &GpuTensor,
        out: &GpuTensor,
        cout: usize,
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (h, w): (usize, usize),
    ) -> Result<(), DemucsError> {
        let (oh, ow) = ((h - 1) * sh + kh, (w - 1) * sw + kw);
        let n = cout * oh * ow;
        let u = |v: usize| u32_of(v, "col2im");
        self.dispatch(
            Kernel::Col2im,
            &[
                u(n)?,
                u(kh)?,
                u(kw)?,
                u(sh)?,
                u(sw)?,
                u(h)?,
                u(w)?,
                u(oh)?,
                u(ow)?,
            ],
            &[&cols.buffer, &bias.buffer, &out.buffer],
            spread(n.div_ceil(256))?,
        )
    }
}

/// Which floats a normalisation takes together (see `shaders/norm.wgsl`).
struct NormShape {
    len: usize,
    inner: usize,
    outer_stride: usize,
    chan_div: usize,
    per: usize,
    groups: usize,
    channels: usize,
    by_column: bool,
    item_rows: usize,
    item_stride: usize,
    row_stride: usize,
    count: usize,
}

/// A strided copy: for `(a, b, c)` below `shape`,
/// `dst[dst.0 + a·dst.1[0] + b·dst.1[1] + c·dst.1[2]]` gets (or, with
/// `accumulate`, adds) the `src` element addressed the same way.
#[derive(Debug, Clone, Copy)]
pub struct Copy3 {
    /// Extents.
    pub shape: [usize; 3],
    /// Source offset and strides.
    pub src: (usize, [usize; 3]),
    /// Destination offset and strides.
    pub dst: (usize, [usize; 3]),
    /// Adds instead of overwriting.
    pub accumulate: bool,
}

/// The shape of a 2-D convolution over `[cin, h, w]` (a 1-D one is `h = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input channels.
    pub cin: usize,
    /// Input height (frequencies; 1 for a 1-D convolution).
    pub h: usize,
    /// Input width (time).
    pub w: usize,
    /// Kernel.
    pub k: (usize, usize),
    /// Stride.
    pub stride: (usize, usize),
    /// Zero padding on each side.
    pub pad: (usize, usize),
    /// Spacing of the kernel's taps.
    pub dilation: (usize, usize),
}

impl ConvGeometry {
    /// The output's height and width.
    pub fn out(&self) -> (usize, usize) {
        let span = |k: usize, d: usize| d * (k - 1) + 1;
        (
            (self.h + 2 * self.pad.0).saturating_sub(span(self.k.0, self.dilation.0))
                / self.stride.0
                + 1,
            (self.w + 2 * self.pad.1).saturating_sub(span(self.k.1, self.dilation.1))
                / self.stride.1
                + 1,
        )
    }
}
