//! The encoder and decoder layers on the GPU, built from the CPU engine's
//! layers (the same weights, uploaded once) and run step for step as they run
//! (`crate::layers`), so that each can be checked against its CPU twin.

use super::{ConvGeometry, Copy3, Epilogue, Gpu, GpuTensor, MatView};
use crate::layers::{Act, Conv, Conv1d, ConvTranspose2d, DConv, DecLayer, EncLayer, GroupNorm};
use crate::DemucsError;

/// The most floats an unfolded convolution input takes at a time (256 MB).
const COLS_MAX: usize = 64 << 20;

/// A tensor of either branch on the device: `[c, f, t]` (`f = 1` in the time
/// branch), as [`Act`].
#[derive(Debug)]
pub struct GAct {
    /// The data, row-major.
    pub x: GpuTensor,
    /// Channels.
    pub c: usize,
    /// Frequency rows.
    pub f: usize,
    /// Time steps.
    pub t: usize,
}

impl GAct {
    /// A copy on the device.
    pub fn duplicate(&self, gpu: &Gpu) -> Result<Self, DemucsError> {
        Ok(Self {
            x: gpu.duplicate(&self.x)?,
            c: self.c,
            f: self.f,
            t: self.t,
        })
    }

    /// Copies `a` to the device.
    pub fn upload(gpu: &Gpu, a: &Act) -> Result<Self, DemucsError> {
        Ok(Self {
            x: gpu.upload(&a.data)?,
            c: a.c,
            f: a.f,
            t: a.t,
        })
    }

    /// Copies it back.
    pub fn download(&self, gpu: &Gpu) -> Result<Act, DemucsError> {
        Ok(Act {
            data: gpu.read(&self.x)?,
            c: self.c,
            f: self.f,
            t: self.t,
        })
    }
}

/// A 1-D or 2-D convolution as a matrix product over its unfolded input.
pub(super) struct GConv {
    /// `[cout, cin·kh·kw]`.
    w: GpuTensor,
    b: GpuTensor,
    cout: usize,
    cin: usize,
    k: (usize, usize),
    stride: (usize, usize),
    pad: (usize, usize),
    dilation: (usize, usize),
}

impl GConv {
    fn new(gpu: &Gpu, conv: &Conv) -> Result<Self, DemucsError> {
        match conv {
            Conv::Freq(c) => Ok(Self {
                w: gpu.upload(&c.w.f32())?,
                b: gpu.upload(&c.b)?,
                cout: c.cout,
                cin: c.cin,
                k: c.k,
                stride: c.stride,
                pad: c.pad,
                dilation: (1, 1),
            }),
            Conv::Time(c) => Self::time(gpu, c),
        }
    }

    /// A 1-D convolution: over time, and per frequency row of a `[c, f, t]`
    /// input (a 2-D convolution with a `(1, k)` kernel).
    pub(super) fn time(gpu: &Gpu, c: &Conv1d) -> Result<Self, DemucsError> {
        Ok(Self {
            w: gpu.upload(&c.w.f32())?,
            b: gpu.upload(&c.b)?,
            cout: c.cout,
            cin: c.cin,
            k: (1, c.k),
            stride: (1, c.stride),
            pad: (0, c.pad),
            dilation: (1, c.dilation),
        })
    }

    /// `x` = `[cin, h, w]` → `[cout, oh, ow]`, `oh`, `ow`.
    pub(super) fn forward(
        &self,
        gpu: &Gpu,
        x: &GpuTensor,
        (h, w): (usize, usize),
    ) -> Result<(GpuTensor, usize, usize), DemucsError> {
        let g = ConvGeometry {
            cin: self.cin,
            h,
            w,
            k: self.k,
            stride: self.stride,
            pad: self.pad,
            dilation: self.dilation,
        };
        let (oh, ow) = g.out();
        let n = oh * ow;
        let out = gpu.zeros(self.cout * n)?;
        let bias = Epilogue {
            bias_rows: Some(&self.b),
            ..Epilogue::default()
        };
        if self.k == (1, 1) && self.stride == (1, 1) && self.pad == (0, 0) {
            gpu.matmul(
                MatView::rows(&out, self.cout, n),
                MatView::rows(&self.w, self.cout, self.cin),
                MatView::rows(x, self.cin, n),
                (self.cout, n, self.cin),
                1,
                bias,
            )?;
            return Ok((out, oh, ow));
        }
        let rows = self.cin * self.k.0 * self.k.1;
        let block = (COLS_MAX / rows).clamp(1, n.max(1));
        let cols = gpu.zeros(rows * block)?;
        for p0 in (0..n).step_by(block) {
            let nb = block.min(n - p0);
            gpu.im2col(x, 0, &cols, &g, (p0, nb))?;
            // Straight into columns p0.. of the output (row stride n).
            gpu.matmul(
                MatView::rows(&out, self.cout, n).offset(p0),
                MatView::rows(&self.w, self.cout, rows),
                MatView::rows(&cols, rows, nb),
                (self.cout, nb, rows),
                1,
                bias,
            )?;
        }
        Ok((out, oh, ow))
    }

    /// Runs on an activation.
    fn forward_act(&self, gpu: &Gpu, x: &GAct) -> Result<GAct, DemucsError> {
        let (y, f, t) = self.forward(gpu, &x.x, (x.f, x.t))?;
        Ok(GAct {
            x: y,
            c: self.cout,
            f,
            t,
        })
    }
}

/// A transposed convolution: the product with the weight, then the
/// overlap-add.
struct GConvTr {
    /// `[cin, cout·kh·kw]`.
    w: GpuTensor,
    b: GpuTensor,
    cin: usize,
    cout: usize,
    k: (usize, usize),
    stride: (usize, usize),
}

impl GConvTr {
    fn new(gpu: &Gpu, c: &ConvTranspose2d) -> Result<Self, DemucsError> {
        Ok(Self {
            w: gpu.upload(&c.w.f32())?,
            b: gpu.upload(&c.b)?,
            cin: c.cin,
            cout: c.cout,
            k: c.k,
            stride: c.stride,
        })
    }

    fn forward(
        &self,
        gpu: &Gpu,
        x: &GpuTensor,
        (h, w): (usize, usize),
    ) -> Result<(GpuTensor, usize, usize), DemucsError> {
        let rows = self.cout * self.k.0 * self.k.1;
        let n = h * w;
        let cols = gpu.zeros(rows * n)?;
        gpu.matmul(
            MatView::rows(&cols, rows, n),
            MatView::rows(&self.w, self.cin, rows).t(),
            MatView::rows(x, self.cin, n),
            (rows, n, self.cin),
            1,
            Epilogue::default(),
        )?;
        let (oh, ow) = (
            (h - 1) * self.stride.0 + self.k.0,
            (w - 1) * self.stride.1 + self.k.1,
        );
        let out = gpu.zeros(self.cout * oh * ow)?;
        gpu.col2im(&cols, &self.b, &out, self.cout, self.k, self.stride, (h, w))?;
        Ok((out, oh, ow))
    }
}

/// A GroupNorm's weights on the device.
struct GNorm {
    groups: usize,
    w: GpuTensor,
    b: GpuTensor,
}

impl GNorm {
    fn new(gpu: &Gpu, n: &GroupNorm) -> Result<Self, DemucsError> {
        Ok(Self {
            groups: n.groups,
            w: gpu.upload(&n.weight)?,
            b: gpu.upload(&n.bias)?,
        })
    }

    /// Normalises `x` (`[c, f·t]`) in place, then GELU with `gelu`.
    fn forward(&self, gpu: &Gpu, x: &GAct, gelu: bool) -> Result<(), DemucsError> {
        gpu.group_norm(
            &x.x,
            (1, x.c, x.f * x.t),
            self.groups,
            &self.w,
            &self.b,
            1e-5,
            gelu,
        )
    }
}

/// [`DConv`] on the device: every frequency row on its own, as the CPU engine.
struct GDConv {
    layers: Vec<(GConv, GNorm, GConv, GNorm, GpuTensor)>,
}

impl GDConv {
    fn new(gpu: &Gpu, d: &DConv) -> Result<Self, DemucsError> {
        let layers = d
            .layers
            .iter()
            .map(|(c1, n1, c2, n2, scale)| {
                Ok((
                    GConv::time(gpu, c1)?,
                    GNorm::new(gpu, n1)?,
                    GConv::time(gpu, c2)?,
                    GNorm::new(gpu, n2)?,
                    gpu.upload(scale)?,
                ))
            })
            .collect::<Result<_, DemucsError>>()?;
        Ok(Self { layers })
    }

    /// `x` = `[c, f, t]`, updated in place.
    fn forward(&self, gpu: &Gpu, x: &GAct) -> Result<(), DemucsError> {
        let (c, f, t) = (x.c, x.f, x.t);
        for (conv1, n1, conv2, n2, scale) in &self.layers {
            let (y, _, _) = conv1.forward(gpu, &x.x, (f, t))?;
            gpu.row_norm(&y, (conv1.cout, f, t), &n1.w, &n1.b, 1e-5, true)?;
            let (z, _, _) = conv2.forward(gpu, &y, (f, t))?;
            drop(y);
            gpu.row_norm(&z, (2 * c, f, t), &n2.w, &n2.b, 1e-5, false)?;
            let g = gpu.glu(&z, 1, c, f * t)?;
            drop(z);
            gpu.scale(&g, scale, c, f * t)?;
            gpu.add(&x.x, &g)?;
        }
        Ok(())
    }
}

/// [`EncLayer`] on the device.
pub struct GEncLayer {
    freq: bool,
    stride: usize,
    empty: bool,
    conv: GConv,
    norm1: Option<GNorm>,
    rewrite: Option<GConv>,
    norm2: Option<GNorm>,
    dconv: Option<GDConv>,
}

fn norm_opt(gpu: &Gpu, n: &Option<GroupNorm>) -> Result<Option<GNorm>, DemucsError> {
    n.as_ref().map(|n| GNorm::new(gpu, n)).transpose()
}

fn conv_opt(gpu: &Gpu, c: &Option<Conv>) -> Result<Option<GConv>, DemucsError> {
    c.as_ref().map(|c| GConv::new(gpu, c)).transpose()
}

fn dconv_opt(gpu: &Gpu, d: &Option<DConv>) -> Result<Option<GDConv>, DemucsError> {
    d.as_ref().map(|d| GDConv::new(gpu, d)).transpose()
}

/// The rewrite convolution, its norm and the GLU.
fn rewrite(gpu: &Gpu, rw: &GConv, norm: &Option<GNorm>, y: GAct) -> Result<GAct, DemucsError> {
    let z = rw.forward_act(gpu, &y)?;
    drop(y);
    if let Some(n) = norm {
        n.forward(gpu, &z, false)?;
    }
    let c = z.c / 2;
    let x = gpu.glu(&z.x, 1, c, z.f * z.t)?;
    Ok(GAct { x, c, ..z })
}

impl GEncLayer {
    /// Uploads a layer's weights.
    pub fn new(gpu: &Gpu, l: &EncLayer) -> Result<Self, DemucsError> {
        Ok(Self {
            freq: l.spec.freq,
            stride: l.spec.stride,
            empty: l.spec.empty,
            conv: GConv::new(gpu, &l.conv)?,
            norm1: norm_opt(gpu, &l.norm1)?,
            rewrite: conv_opt(gpu, &l.rewrite)?,
            norm2: norm_opt(gpu, &l.norm2)?,
            dconv: dconv_opt(gpu, &l.dconv)?,
        })
    }

    /// As [`EncLayer::forward`].
    pub fn forward(&self, gpu: &Gpu, x: GAct, inject: Option<&GAct>) -> Result<GAct, DemucsError> {
        let mut x = x;
        if !self.freq {
            // A 4-D input to a time layer is flattened to [c·f, t], and padded
            // to a whole number of strides.
            x.c *= x.f;
            x.f = 1;
            let rem = x.t % self.stride;
            if rem != 0 {
                let t2 = x.t + self.stride - rem;
                let padded = gpu.zeros(x.c * t2)?;
                gpu.copy3(
                    &x.x,
                    &padded,
                    &Copy3 {
                        shape: [1, x.c, x.t],
                        src: (0, [0, x.t, 1]),
                        dst: (0, [0, t2, 1]),
                        accumulate: false,
                    },
                )?;
                x = GAct {
                    x: padded,
                    t: t2,
                    ..x
                };
            }
        }
        let y = self.conv.forward_act(gpu, &x)?;
        drop(x);
        if self.empty {
            return Ok(y);
        }
        if let Some(inj) = inject {
            // [c, t] added to every frequency row of [c, f, t].
            gpu.copy3(
                &inj.x,
                &y.x,
                &Copy3 {
                    shape: [y.c, y.f, y.t],
                    src: (0, [inj.f * inj.t, if inj.f == 1 { 0 } else { inj.t }, 1]),
                    dst: (0, [y.f * y.t, y.t, 1]),
                    accumulate: true,
                },
            )?;
        }
        match &self.norm1 {
            Some(n) => n.forward(gpu, &y, true)?,
            None => gpu.gelu(&y.x)?,
        }
        if let Some(d) = &self.dconv {
            d.forward(gpu, &y)?;
        }
        match &self.rewrite {
            Some(rw) => rewrite(gpu, rw, &self.norm2, y),
            None => Ok(y),
        }
    }
}

/// [`DecLayer`] on the device.
pub struct GDecLayer {
    freq: bool,
    empty: bool,
    last: bool,
    chin: usize,
    chout: usize,
    pad: usize,
    conv_tr: GConvTr,
    norm2: Option<GNorm>,
    rewrite: Option<GConv>,
    norm1: Option<GNorm>,
    dconv: Option<GDConv>,
}

impl GDecLayer {
    /// Uploads a layer's weights.
    pub fn new(gpu: &Gpu, l: &DecLayer) -> Result<Self, DemucsError> {
        Ok(Self {
            freq: l.spec.freq,
            empty: l.spec.empty,
            last: l.last,
            chin: l.spec.chin,
            chout: l.spec.chout,
            pad: if l.spec.pad { l.spec.kernel / 4 } else { 0 },
            conv_tr: GConvTr::new(gpu, &l.conv_tr)?,
            norm2: norm_opt(gpu, &l.norm2)?,
            rewrite: conv_opt(gpu, &l.rewrite)?,
            norm1: norm_opt(gpu, &l.norm1)?,
            dconv: dconv_opt(gpu, &l.dconv)?,
        })
    }

    /// As [`DecLayer::forward`].
    pub fn forward(
        &self,
        gpu: &Gpu,
        x: GAct,
        skip: Option<GAct>,
        length: usize,
        keep_pre: bool,
    ) -> Result<(GAct, Option<GAct>), DemucsError> {
        let mut x = x;
        if self.freq && x.f == 1 && x.c != self.chin {
            x.f = x.c / self.chin;
            x.c = self.chin;
        }
        let y = if self.empty {
            x
        } else {
            if let Some(s) = skip {
                gpu.add(&x.x, &s.x)?;
            }
            let y = match &self.rewrite {
                Some(rw) => rewrite(gpu, rw, &self.norm1, x)?,
                None => x,
            };
            if let Some(d) = &self.dconv {
                d.forward(gpu, &y)?;
            }
            y
        };
        let h = if self.freq { y.f } else { 1 };
        let (z, zf, zt) = self.conv_tr.forward(gpu, &y.x, (h, y.t))?;
        let pre = keep_pre.then_some(y);
        let c = self.chout;
        let z = GAct {
            x: z,
            c,
            f: zf,
            t: zt,
        };
        if let Some(n) = &self.norm2 {
            n.forward(gpu, &z, false)?;
        }
        let pad = self.pad;
        let out = if self.freq {
            let f2 = zf - 2 * pad;
            let out = gpu.zeros(c * f2 * zt)?;
            gpu.copy3(
                &z.x,
                &out,
                &Copy3 {
                    shape: [c, f2, zt],
                    src: (pad * zt, [zf * zt, zt, 1]),
                    dst: (0, [f2 * zt, zt, 1]),
                    accumulate: false,
                },
            )?;
            GAct {
                x: out,
                c,
                f: f2,
                t: zt,
            }
        } else {
            let out = gpu.zeros(c * length)?;
            gpu.copy3(
                &z.x,
                &out,
                &Copy3 {
                    shape: [1, c, length],
                    src: (pad, [0, zt, 1]),
                    dst: (0, [0, length, 1]),
                    accumulate: false,
                },
            )?;
            GAct {
                x: out,
                c,
                f: 1,
                t: length,
            }
        };
        drop(z);
        if !self.last {
            gpu.gelu(&out.x)?;
        }
        Ok((out, pre))
    }
}

#[cfg(test)]
mod tests {
    //! Every encoder and decoder layer of the fixture models against the CPU
    //! engine's, on whatever adapter the machine has (lavapipe in CI).
    use super::*;
    use crate::gpu::testing::{fixture, gpu, noise};
    use crate::layers::Act;

    /// Largest difference relative to the largest magnitude of `want`.
    fn rel(got: &Act, want: &Act) -> f64 {
        assert_eq!((got.c, got.f, got.t), (want.c, want.f, want.t));
        crate::gpu::testing::rel(&got.data, &want.data)
    }

    fn act(c: usize, f: usize, t: usize, seed: u64) -> Act {
        Act {
            data: noise(c * f * t, seed),
            c,
            f,
            t,
        }
    }

    #[test]
    fn every_encoder_and_decoder_layer_matches_the_cpu_engine() -> Result<(), DemucsError> {
        let gpu = gpu();
        for name in ["small4.safetensors", "small6.safetensors"] {
            let sep = fixture(name);
            let model = &sep.models()[0];
            for (i, l) in model.encoder.iter().chain(&model.tencoder).enumerate() {
                let s = l.spec;
                let (f, t) = if !s.freq {
                    (1, 103)
                } else if s.pad {
                    (s.stride * 6, 37)
                } else {
                    (s.kernel, 37)
                };
                let x = act(s.chin, f, t, i as u64);
                let want = l.forward(x.clone(), None);
                let got = GEncLayer::new(&gpu, l)?
                    .forward(&gpu, GAct::upload(&gpu, &x)?, None)?
                    .download(&gpu)?;
                let e = rel(&got, &want);
                assert!(e < 1e-5, "{name} encoder layer {i} ({s:?}): {e:e}");
                if s.freq && !s.empty {
                    // With the time branch injected into every row.
                    let inj = act(s.chout, 1, t, 99);
                    let want = l.forward(x.clone(), Some(&inj));
                    let got = GEncLayer::new(&gpu, l)?
                        .forward(
                            &gpu,
                            GAct::upload(&gpu, &x)?,
                            Some(&GAct::upload(&gpu, &inj)?),
                        )?
                        .download(&gpu)?;
                    let e = rel(&got, &want);
                    assert!(e < 1e-5, "{name} encoder layer {i} injected: {e:e}");
                }
            }
            for (i, l) in model.decoder.iter().chain(&model.tdecoder).enumerate() {
                let s = l.spec;
                let (f, t) = if s.freq { (5, 29) } else { (1, 41) };
                let length = t * s.stride;
                let x = act(s.chin, f, t, 50 + i as u64);
                let skip = act(s.chin, f, t, 80 + i as u64);
                let (want, want_pre) = l.forward(x.clone(), Some(skip.clone()), length, true);
                let (got, got_pre) = GDecLayer::new(&gpu, l)?.forward(
                    &gpu,
                    GAct::upload(&gpu, &x)?,
                    Some(GAct::upload(&gpu, &skip)?),
                    length,
                    true,
                )?;
                let e = rel(&got.download(&gpu)?, &want);
                assert!(e < 1e-5, "{name} decoder layer {i} ({s:?}): {e:e}");
                let (Some(gp), Some(wp)) = (got_pre, want_pre) else {
                    panic!(
                        "{name} decoder layer {i}: no activation before the transposed convolution"
                    );
                };
                let e = rel(&gp.download(&gpu)?, &wp);
                assert!(e < 1e-5, "{name} decoder layer {i}, before conv_tr: {e:e}");
            }
        }
        Ok(())
    }
}
