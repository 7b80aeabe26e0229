//! HTDemucs on the GPU: the CPU engine's host-side start and end of a pass
//! (the STFT, normalisation, the iSTFT: [`HTDemucs::prepare`] and
//! [`HTDemucs::finish`]) around the network's layers on the device, in the
//! order `HTDemucs::forward_traced` runs them.

use super::layers::{GAct, GConv, GDecLayer, GEncLayer};
use super::transformer::GCrossTransformer;
use super::{Copy3, Gpu, GpuTensor};
use crate::model::HTDemucs;
use crate::DemucsError;

/// One HTDemucs network with its weights on the device.
pub struct GpuHTDemucs {
    encoder: Vec<GEncLayer>,
    tencoder: Vec<(GEncLayer, bool)>,
    decoder: Vec<GDecLayer>,
    tdecoder: Vec<(GDecLayer, bool)>,
    /// The frequency embedding, scaled, as `[c, f]`.
    freq_emb: Option<(GpuTensor, usize, usize)>,
    /// The 1×1 convolutions around the transformer (to its width and back).
    bottom: Option<[GConv; 4]>,
    transformer: Option<GCrossTransformer>,
    depth: usize,
}

impl std::fmt::Debug for GpuHTDemucs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuHTDemucs")
            .field("depth", &self.depth)
            .finish()
    }
}

impl GpuHTDemucs {
    /// Uploads a network's weights (once; every segment then reuses them).
    pub fn new(gpu: &Gpu, m: &HTDemucs) -> Result<Self, DemucsError> {
        let freq_emb = match &m.freq_emb {
            Some((emb, fr, c)) => {
                let w = m.config.freq_emb as f32;
                let mut t = vec![0.0; c * fr];
                for ci in 0..*c {
                    for f in 0..*fr {
                        t[ci * fr + f] = w * emb[f * c + ci];
                    }
                }
                Some((gpu.upload(&t)?, *fr, *c))
            }
            None => None,
        };
        let bottom = match &m.bottom {
            Some([a, b, c, d]) => Some([
                GConv::time(gpu, a)?,
                GConv::time(gpu, b)?,
                GConv::time(gpu, c)?,
                GConv::time(gpu, d)?,
            ]),
            None => None,
        };
        Ok(Self {
            encoder: m
                .encoder
                .iter()
                .map(|l| GEncLayer::new(gpu, l))
                .collect::<Result<_, _>>()?,
            tencoder: m
                .tencoder
                .iter()
                .map(|l| Ok((GEncLayer::new(gpu, l)?, l.is_empty())))
                .collect::<Result<_, DemucsError>>()?,
            decoder: m
                .decoder
                .iter()
                .map(|l| GDecLayer::new(gpu, l))
                .collect::<Result<_, _>>()?,
            tdecoder: m
                .tdecoder
                .iter()
                .map(|l| Ok((GDecLayer::new(gpu, l)?, l.is_empty())))
                .collect::<Result<_, DemucsError>>()?,
            freq_emb,
            bottom,
            transformer: m
                .transformer
                .as_ref()
                .map(|t| GCrossTransformer::new(gpu, t))
                .transpose()?,
            depth: m.config.depth,
        })
    }

    /// Separates one segment as [`HTDemucs::forward`] does; `cpu` is the same
    /// network on the host (for the STFT and the normalisation).
    pub fn forward(
        &self,
        gpu: &Gpu,
        cpu: &HTDemucs,
        mix: &[Vec<f32>],
    ) -> Result<Vec<Vec<Vec<f32>>>, DemucsError> {
        let p = cpu.prepare(mix)?;
        let mut x = GAct::upload(gpu, &p.x)?;
        let mut xt = GAct::upload(gpu, &p.xt)?;
        drop(p.x);
        drop(p.xt);
        let mut saved = Vec::new();
        let mut saved_t = Vec::new();
        let mut lengths = Vec::new();
        let mut lengths_t = Vec::new();
        for (idx, enc) in self.encoder.iter().enumerate() {
            lengths.push(x.t);
            match self.tencoder.get(idx) {
                Some((tenc, true)) => {
                    lengths_t.push(xt.t);
                    xt = tenc.forward(gpu, xt, None)?;
                    x = enc.forward(gpu, x, Some(&xt))?;
                }
                Some((tenc, false)) => {
                    lengths_t.push(xt.t);
                    xt = tenc.forward(gpu, xt, None)?;
                    x = enc.forward(gpu, x, None)?;
                    saved_t.push(xt.duplicate(gpu)?);
                }
                None => x = enc.forward(gpu, x, None)?,
            }
            if idx == 0 {
                if let Some((emb, efr, ec)) = &self.freq_emb {
                    gpu.copy3(
                        emb,
                        &x.x,
                        &Copy3 {
                            shape: [*ec, *efr, x.t],
                            src: (0, [*efr, 1, 0]),
                            dst: (0, [x.f * x.t, x.t, 1]),
                            accumulate: true,
                        },
                    )?;
                }
            }
            saved.push(x.duplicate(gpu)?);
        }

        if let Some(tr) = &self.transformer {
            let (f, t1, t2) = (x.f, x.t, xt.t);
            let (a, b) = match &self.bottom {
                Some([up, _, up_t, _]) => (
                    up.forward(gpu, &x.x, (1, f * t1))?.0,
                    up_t.forward(gpu, &xt.x, (1, t2))?.0,
                ),
                None => (x.duplicate(gpu)?.x, xt.duplicate(gpu)?.x),
            };
            let (a2, b2) = tr.forward(gpu, &a, (f, t1), &b, t2)?;
            let (a2, b2) = match &self.bottom {
                Some([_, down, _, down_t]) => (
                    down.forward(gpu, &a2, (1, f * t1))?.0,
                    down_t.forward(gpu, &b2, (1, t2))?.0,
                ),
                None => (a2, b2),
            };
            x.x = a2;
            xt.x = b2;
        }

        let offset = self.depth - self.tdecoder.len();
        for (idx, dec) in self.decoder.iter().enumerate() {
            let skip = saved.pop();
            let len = lengths.pop().unwrap_or(x.t);
            match idx.checked_sub(offset).map(|i| &self.tdecoder[i]) {
                Some((tdec, true)) => {
                    let (out, pre) = dec.forward(gpu, x, skip, len, true)?;
                    x = out;
                    let length_t = lengths_t.pop().unwrap_or(xt.t);
                    if let Some(pre) = pre {
                        let pre = GAct {
                            c: pre.c * pre.f,
                            f: 1,
                            ..pre
                        };
                        xt = tdec.forward(gpu, pre, None, length_t, false)?.0;
                    }
                }
                Some((tdec, false)) => {
                    let length_t = lengths_t.pop().unwrap_or(xt.t);
                    let skip_t = saved_t.pop();
                    x = dec.forward(gpu, x, skip, len, false)?.0;
                    xt = tdec.forward(gpu, xt, skip_t, length_t, false)?.0;
                }
                None => x = dec.forward(gpu, x, skip, len, false)?.0,
            }
        }
        let xd = gpu.read(&x.x)?;
        let xtd = gpu.read(&xt.x)?;
        Ok(cpu.finish(&xd, &xtd, &p.norm))
    }
}
