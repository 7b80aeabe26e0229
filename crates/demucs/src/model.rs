//! `HTDemucs`: the hybrid time/frequency network (`htdemucs.py`).

use realfft::num_complex::Complex32;

use crate::config::Config;
use crate::layers::{Act, Conv1d, Conv1dConfig, DecLayer, EncLayer, LayerSpec};
use crate::spec::Stft;
use crate::transformer::CrossTransformer;
use crate::weights::Checkpoint;
use crate::DemucsError;

/// One HTDemucs network with its weights.
pub struct HTDemucs {
    pub(crate) config: Config,
    pub(crate) encoder: Vec<EncLayer>,
    pub(crate) tencoder: Vec<EncLayer>,
    pub(crate) decoder: Vec<DecLayer>,
    pub(crate) tdecoder: Vec<DecLayer>,
    /// Frequency embedding `[freqs, channels]`, already multiplied by its scale.
    pub(crate) freq_emb: Option<(Vec<f32>, usize, usize)>,
    pub(crate) bottom: Option<[Conv1d; 4]>,
    pub(crate) transformer: Option<CrossTransformer>,
    stft: Stft,
}

impl std::fmt::Debug for HTDemucs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HTDemucs")
            .field("config", &self.config)
            .finish()
    }
}

fn mean_std(x: &[f32]) -> (f32, f32) {
    let n = x.len() as f64;
    let (sum, sq) = crate::ops::sum_and_squares(x);
    let mean = sum / n;
    // torch.std is the unbiased estimate.
    let var = ((sq - n * mean * mean) / (n - 1.0).max(1.0)).max(0.0);
    (mean as f32, var.sqrt() as f32)
}

impl HTDemucs {
    /// Builds the network from a checkpoint, following the reference constructor
    /// layer by layer; every weight must be used, with the shape it implies.
    pub fn load(mut ck: Checkpoint) -> Result<Self, DemucsError> {
        let cfg = ck.config.clone();
        let ck = &mut ck;
        let mut encoder = Vec::new();
        let mut tencoder = Vec::new();
        let mut decoder = Vec::new();
        let mut tdecoder = Vec::new();
        let mut freq_emb = None;

        let mut chin = cfg.audio_channels;
        let mut chin_z = chin * 2; // complex as channels
        let mut chout = cfg.channels_time;
        let mut chout_z = cfg.channels;
        let mut freqs = cfg.nfft / 2;
        for index in 0..cfg.depth {
            let norm = index >= cfg.norm_starts;
            let freq = freqs > 1;
            let (mut ker, mut stri) = (cfg.kernel_size, cfg.stride);
            if !freq {
                ker = cfg.time_stride * 2;
                stri = cfg.time_stride;
            }
            let mut pad = true;
            let mut last_freq = false;
            if freq && freqs <= cfg.kernel_size {
                ker = freqs;
                pad = false;
                last_freq = true;
            }
            if last_freq {
                chout_z = chout_z.max(chout);
                chout = chout_z;
            }
            let dconv_enc = (cfg.dconv_mode & 1 != 0).then_some((cfg.dconv_comp, cfg.dconv_depth));
            let dconv_dec = (cfg.dconv_mode & 2 != 0).then_some((cfg.dconv_comp, cfg.dconv_depth));
            let spec = LayerSpec {
                chin: chin_z,
                chout: chout_z,
                kernel: ker,
                stride: stri,
                freq,
                pad,
                norm,
                norm_groups: cfg.norm_groups,
                rewrite: cfg.rewrite,
                context: cfg.context_enc,
                dconv: dconv_enc,
                empty: false,
            };
            encoder.push(EncLayer::load(ck, &format!("encoder.{index}"), spec)?);
            if freq {
                let tspec = LayerSpec {
                    chin,
                    chout,
                    kernel: cfg.kernel_size,
                    stride: cfg.stride,
                    freq: false,
                    pad: true,
                    empty: last_freq,
                    ..spec
                };
                tencoder.push(EncLayer::load(ck, &format!("tencoder.{index}"), tspec)?);
            }
            if index == 0 {
                chin = cfg.audio_channels * cfg.sources.len();
                chin_z = chin * 2;
            }
            let dspec = LayerSpec {
                chin: chout_z,
                chout: chin_z,
                context: cfg.context,
                dconv: dconv_dec,
                ..spec
            };
            decoder.insert(0, (index, dspec));
            if freq {
                let tdspec = LayerSpec {
                    chin: chout,
                    chout: chin,
                    kernel: cfg.kernel_size,
                    stride: cfg.stride,
                    freq: false,
                    pad: true,
                    empty: last_freq,
                    context: cfg.context,
                    dconv: dconv_dec,
                    ..spec
                };
                tdecoder.insert(0, (index, tdspec));
            }
            chin = chout;
            chin_z = chout_z;
            chout = (cfg.growth * chout as f64) as usize;
            chout_z = (cfg.growth * chout_z as f64) as usize;
            if freq {
                freqs = if freqs <= cfg.kernel_size {
                    1
                } else {
                    freqs / cfg.stride
                };
            }
            if index == 0 && cfg.freq_emb > 0.0 {
                let w = ck.take("freq_emb.embedding.weight", &[freqs, chin_z])?;
                let scale = cfg.emb_scale as f32;
                freq_emb = Some((w.into_iter().map(|v| v * scale).collect(), freqs, chin_z));
            }
        }
        // The reference inserts each decoder layer at the front: decoder.0 is the
        // deepest.
        let decoder = decoder
            .into_iter()
            .enumerate()
            .map(|(pos, (index, s))| DecLayer::load(ck, &format!("decoder.{pos}"), s, index == 0))
            .collect::<Result<Vec<_>, _>>()?;
        let nt = tdecoder.len();
        let tdecoder = tdecoder
            .into_iter()
            .enumerate()
            .map(|(pos, (index, s))| DecLayer::load(ck, &format!("tdecoder.{pos}"), s, index == 0))
            .collect::<Result<Vec<_>, _>>()?;
        debug_assert_eq!(nt, tdecoder.len());

        let mut tc = cfg.channels * (cfg.growth.powi(cfg.depth as i32 - 1) as usize);
        let bottom = if cfg.bottom_channels > 0 {
            let b = cfg.bottom_channels;
            let conv = |ck: &mut Checkpoint, name: &str, i: usize, o: usize| {
                Conv1d::load(ck, name, i, o, 1, Conv1dConfig::default())
            };
            let layers = [
                conv(ck, "channel_upsampler", tc, b)?,
                conv(ck, "channel_downsampler", b, tc)?,
                conv(ck, "channel_upsampler_t", tc, b)?,
                conv(ck, "channel_downsampler_t", b, tc)?,
            ];
            tc = b;
            Some(layers)
        } else {
            None
        };
        let transformer = if cfg.t_layers > 0 {
            Some(CrossTransformer::load(ck, &cfg, tc)?)
        } else {
            None
        };
        let left = ck.leftover();
        if !left.is_empty() {
            return Err(DemucsError::Weight {
                name: left[0].to_string(),
                detail: format!("{} weights are not used by this configuration", left.len()),
            });
        }
        Ok(Self {
            stft: Stft::new(cfg.nfft),
            config: cfg,
            encoder,
            tencoder,
            decoder,
            tdecoder,
            freq_emb,
            bottom,
            transformer,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Separates one segment. `mix` is `[channels][len]` with `len` the training
    /// length; returns `[sources][channels][len]`.
    pub fn forward(&self, mix: &[Vec<f32>]) -> Result<Vec<Vec<Vec<f32>>>, DemucsError> {
        self.forward_traced(mix, &mut |_, _| {})
    }

    /// [`HTDemucs::forward`], reporting each layer's output to `trace` under its
    /// PyTorch module name (`encoder.0`, `crosstransformer.layers_t.2`, ...).
    pub fn forward_traced(
        &self,
        mix: &[Vec<f32>],
        trace: &mut dyn FnMut(&str, &[f32]),
    ) -> Result<Vec<Vec<Vec<f32>>>, DemucsError> {
        let cfg = &self.config;
        let Prepared {
            mut x,
            mut xt,
            norm,
        } = self.prepare(mix)?;
        let mut saved = Vec::new();
        let mut saved_t = Vec::new();
        let mut lengths = Vec::new();
        let mut lengths_t = Vec::new();
        for (idx, enc) in self.encoder.iter().enumerate() {
            lengths.push(x.t);
            match self.tencoder.get(idx) {
                // The time branch's last layer feeds the frequency branch.
                Some(tenc) if tenc.is_empty() => {
                    lengths_t.push(xt.t);
                    xt = tenc.forward(xt, None);
                    trace(&format!("tencoder.{idx}"), &xt.data);
                    x = enc.forward(x, Some(&xt));
                }
                // Otherwise the two branches are independent: side by side.
                Some(tenc) => {
                    lengths_t.push(xt.t);
                    (xt, x) = crate::ops::join(|| tenc.forward(xt, None), || enc.forward(x, None));
                    trace(&format!("tencoder.{idx}"), &xt.data);
                    saved_t.push(xt.clone());
                }
                None => x = enc.forward(x, None),
            }
            trace(&format!("encoder.{idx}"), &x.data);
            if idx == 0 {
                if let Some((emb, efr, ec)) = &self.freq_emb {
                    let w = cfg.freq_emb as f32;
                    for c in 0..*ec {
                        for f in 0..*efr {
                            let e = w * emb[f * ec + c];
                            x.data[(c * x.f + f) * x.t..(c * x.f + f + 1) * x.t]
                                .iter_mut()
                                .for_each(|v| *v += e);
                        }
                    }
                }
            }
            saved.push(x.clone());
        }

        if let Some(tr) = &self.transformer {
            let (f, t1, t2) = (x.f, x.t, xt.t);
            let (mut a, mut b) = (x.data.clone(), xt.data.clone());
            if let Some([up, _, up_t, _]) = &self.bottom {
                a = up.forward(&a, f * t1).0;
                b = up_t.forward(&b, t2).0;
            }
            let (a2, b2) = tr.forward(&a, f, t1, &b, t2, trace);
            trace("crosstransformer.x", &a2);
            trace("crosstransformer.xt", &b2);
            let (a2, b2) = match &self.bottom {
                Some([_, down, _, down_t]) => {
                    (down.forward(&a2, f * t1).0, down_t.forward(&b2, t2).0)
                }
                None => (a2, b2),
            };
            x.data = a2;
            xt.data = b2;
        }

        let offset = cfg.depth - self.tdecoder.len();
        for (idx, dec) in self.decoder.iter().enumerate() {
            let skip = saved.pop();
            let len = lengths.pop().unwrap_or(x.t);
            let tdec = idx.checked_sub(offset).map(|i| &self.tdecoder[i]);
            match tdec {
                // The frequency branch's activation feeds the time branch's
                // first layer.
                Some(tdec) if tdec.is_empty() => {
                    let (out, pre) = dec.forward(x, skip, len, true);
                    x = out;
                    trace(&format!("decoder.{idx}"), &x.data);
                    let length_t = lengths_t.pop().unwrap_or(xt.t);
                    if let Some(pre) = pre {
                        let pre = Act {
                            c: pre.c * pre.f,
                            f: 1,
                            ..pre
                        };
                        xt = tdec.forward(pre, None, length_t, false).0;
                    }
                    trace(&format!("tdecoder.{}", idx - offset), &xt.data);
                }
                // Otherwise the two branches are independent: side by side.
                Some(tdec) => {
                    let length_t = lengths_t.pop().unwrap_or(xt.t);
                    let skip_t = saved_t.pop();
                    let (freq, time) = crate::ops::join(
                        || dec.forward(x, skip, len, false).0,
                        || tdec.forward(xt, skip_t, length_t, false).0,
                    );
                    (x, xt) = (freq, time);
                    trace(&format!("decoder.{idx}"), &x.data);
                    trace(&format!("tdecoder.{}", idx - offset), &xt.data);
                }
                None => {
                    x = dec.forward(x, skip, len, false).0;
                    trace(&format!("decoder.{idx}"), &x.data);
                }
            }
        }

        Ok(self.finish(&x.data, &xt.data, &norm))
    }
}

/// What the network's input was normalised by, for [`HTDemucs::finish`].
#[derive(Clone, Copy)]
pub(crate) struct Norms {
    mean: f32,
    std: f32,
    meant: f32,
    stdt: f32,
    frames: usize,
    length: usize,
    plane: usize,
}

/// The network's two inputs and how they were normalised.
pub(crate) struct Prepared {
    /// The spectrogram, complex as channels, normalised.
    pub(crate) x: Act,
    /// The waveform, normalised.
    pub(crate) xt: Act,
    pub(crate) norm: Norms,
}

impl HTDemucs {
    /// The host-side start of a forward pass (both engines): checks the
    /// segment, takes its spectrogram and normalises both branches' inputs.
    pub(crate) fn prepare(&self, mix: &[Vec<f32>]) -> Result<Prepared, DemucsError> {
        let cfg = &self.config;
        let ch = cfg.audio_channels;
        if mix.len() != ch {
            return Err(DemucsError::Input(format!(
                "the model takes {ch} channels, got {}",
                mix.len()
            )));
        }
        let length = mix[0].len();
        if cfg.use_train_segment && length != cfg.training_length() {
            return Err(DemucsError::Input(format!(
                "a segment must be {} samples, got {length}",
                cfg.training_length()
            )));
        }
        // Spectrogram, complex as channels: [c0re, c0im, c1re, c1im, ...].
        let mut specs = Vec::with_capacity(ch);
        let mut frames = 0;
        for (z, t) in crate::ops::par_map(ch, |c| self.stft.spec(&mix[c])) {
            frames = t;
            specs.push(z);
        }
        let fr = cfg.nfft / 2;
        let plane = fr * frames;
        let mut mag = Vec::with_capacity(2 * ch * plane);
        for z in &specs {
            mag.extend(z.iter().map(|v| v.re));
            mag.extend(z.iter().map(|v| v.im));
        }
        drop(specs);
        let (mean, std) = mean_std(&mag);
        // Normalised in place (into_iter + collect reuses the buffer): the
        // spectrogram is not held through the whole network.
        let x = Act {
            data: mag.into_iter().map(|v| (v - mean) / (1e-5 + std)).collect(),
            c: 2 * ch,
            f: fr,
            t: frames,
        };
        let flat: Vec<f32> = mix.iter().flatten().copied().collect();
        let (meant, stdt) = mean_std(&flat);
        let xt = Act {
            data: flat
                .into_iter()
                .map(|v| (v - meant) / (1e-5 + stdt))
                .collect(),
            c: ch,
            f: 1,
            t: length,
        };

        Ok(Prepared {
            x,
            xt,
            norm: Norms {
                mean,
                std,
                meant,
                stdt,
                frames,
                length,
                plane,
            },
        })
    }

    /// The host-side end of a forward pass: the frequency branch's output
    /// (`x`) back to waveforms, plus the time branch's (`xt`), denormalised.
    pub(crate) fn finish(&self, x: &[f32], xt: &[f32], norm: &Norms) -> Vec<Vec<Vec<f32>>> {
        let cfg = &self.config;
        let ch = cfg.audio_channels;
        let Norms {
            mean,
            std,
            meant,
            stdt,
            frames,
            length,
            plane,
        } = *norm;
        // Frequency branch back to waveforms.
        let sources = cfg.sources.len();
        let per_source = 2 * ch * plane;
        // Every (source, channel) goes back to a waveform on its own.
        let waves = crate::ops::par_map(sources * ch, |sc| {
            let (s, c) = (sc / ch, sc % ch);
            let re = &x[s * per_source + (2 * c) * plane..][..plane];
            let im = &x[s * per_source + (2 * c + 1) * plane..][..plane];
            let z: Vec<Complex32> = re
                .iter()
                .zip(im)
                .map(|(r, i)| Complex32::new(r * std + mean, i * std + mean))
                .collect();
            let mut wave = self.stft.ispec(&z, frames, length);
            let time = &xt[sc * length..(sc + 1) * length];
            for (w, t) in wave.iter_mut().zip(time) {
                *w += t * stdt + meant;
            }
            wave
        });
        let mut waves = waves.into_iter();
        (0..sources)
            .map(|_| waves.by_ref().take(ch).collect())
            .collect()
    }
}
