//! The HTDemucs configuration, parsed from a checkpoint's `kwargs` (and `args`).

use serde_json::Value;

/// Architecture and metadata of one HTDemucs network, with the reference
/// implementation's defaults for anything the checkpoint leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Source names in output order (`drums`, `bass`, `other`, `vocals`, ...).
    pub sources: Vec<String>,
    /// Input/output audio channels.
    pub audio_channels: usize,
    /// Hidden channels of the first frequency layer.
    pub channels: usize,
    /// Hidden channels of the first time layer.
    pub channels_time: usize,
    /// Channel growth per layer.
    pub growth: f64,
    /// STFT size (hop = nfft / 4).
    pub nfft: usize,
    /// Depth of the encoder and decoder.
    pub depth: usize,
    /// 1×1 rewrite convolutions in every layer.
    pub rewrite: bool,
    /// Weight of the frequency embedding (0 for none).
    pub freq_emb: f64,
    /// Scale of the frequency embedding weights.
    pub emb_scale: f64,
    /// Kernel size of encoder/decoder convolutions.
    pub kernel_size: usize,
    /// Stride of the time layers after the branches merge.
    pub time_stride: usize,
    /// Stride of encoder/decoder convolutions.
    pub stride: usize,
    /// Context of the decoder rewrite convolutions.
    pub context: usize,
    /// Context of the encoder rewrite convolutions.
    pub context_enc: usize,
    /// First layer with GroupNorm.
    pub norm_starts: usize,
    /// Groups of that GroupNorm.
    pub norm_groups: usize,
    /// DConv branches: 1 encoder, 2 decoder, 3 both.
    pub dconv_mode: usize,
    /// Layers per DConv branch.
    pub dconv_depth: usize,
    /// Channel compression inside DConv.
    pub dconv_comp: f64,
    /// Transformer width (0 = the bottom encoder's channels).
    pub bottom_channels: usize,
    /// Transformer layers per branch.
    pub t_layers: usize,
    /// Feed-forward expansion.
    pub t_hidden_scale: f64,
    /// Attention heads.
    pub t_heads: usize,
    /// LayerNorm before the transformer.
    pub t_norm_in: bool,
    /// Pre-norm transformer layers.
    pub t_norm_first: bool,
    /// GroupNorm at the end of each transformer layer.
    pub t_norm_out: bool,
    /// Period of the sinusoidal embeddings.
    pub t_max_period: f64,
    /// LayerScale in the transformer.
    pub t_layer_scale: bool,
    /// GELU (else ReLU) in the transformer.
    pub t_gelu: bool,
    /// Weight of the positional embeddings.
    pub t_weight_pos_embed: f64,
    /// Cross-attention first.
    pub t_cross_first: bool,
    /// Sample rate the model was trained at.
    pub samplerate: u32,
    /// Training segment in seconds, as an exact fraction (numerator, denominator).
    pub segment: (u64, u64),
    /// Run on the training segment length (padding shorter input).
    pub use_train_segment: bool,
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A field has the wrong type or value.
    Invalid(String),
    /// An option the reference supports but this implementation does not.
    Unsupported(String),
}

fn get<'a>(kw: &'a Value, key: &str) -> Option<&'a Value> {
    kw.get(key).filter(|v| !v.is_null())
}

fn uint(kw: &Value, key: &str, default: usize) -> Result<usize, ConfigError> {
    match get(kw, key) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(|u| u as usize)
            .ok_or_else(|| ConfigError::Invalid(format!("{key} = {v} is not a whole number"))),
    }
}

fn float(kw: &Value, key: &str, default: f64) -> Result<f64, ConfigError> {
    match get(kw, key) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .or_else(|| v.as_bool().map(|b| if b { 1.0 } else { 0.0 }))
            .ok_or_else(|| ConfigError::Invalid(format!("{key} = {v} is not a number"))),
    }
}

fn flag(kw: &Value, key: &str, default: bool) -> Result<bool, ConfigError> {
    match get(kw, key) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .or_else(|| v.as_i64().map(|i| i != 0))
            .ok_or_else(|| ConfigError::Invalid(format!("{key} = {v} is not a boolean"))),
    }
}

/// A segment length: a number, or a fraction as `{"_type": "fraction", "numerator":
/// 39, "denominator": 5}`.
pub fn parse_fraction(v: &Value) -> Option<(u64, u64)> {
    if let Some(obj) = v.as_object() {
        let n = obj.get("numerator")?.as_u64()?;
        let d = obj.get("denominator")?.as_u64()?;
        return (d > 0).then_some((n, d));
    }
    if let Some(u) = v.as_u64() {
        return Some((u, 1));
    }
    let f = v.as_f64()?;
    // Decimal seconds (e.g. 7.8 from a bag yaml): exact to the microsecond.
    (f > 0.0).then(|| ((f * 1e6).round() as u64, 1_000_000))
}

impl Config {
    /// Parses `kwargs` (and positional `args`, where the sources may be) of
    /// `demucs.htdemucs.HTDemucs`. Options this implementation does not run are
    /// refused by name.
    pub fn from_kwargs(args: &Value, kwargs: &Value) -> Result<Self, ConfigError> {
        let kw = kwargs;
        let sources_value = get(kw, "sources").or_else(|| args.as_array().and_then(|a| a.first()));
        let sources: Vec<String> = sources_value
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .filter(|s: &Vec<String>| !s.is_empty())
            .ok_or_else(|| ConfigError::Invalid("no source names (sources)".into()))?;

        let unsupported = |what: &str| Err(ConfigError::Unsupported(what.to_string()));
        if !flag(kw, "cac", true)? {
            return unsupported("cac = false (magnitude masking)");
        }
        if uint(kw, "wiener_iters", 0)? != 0 {
            return unsupported("wiener_iters > 0 (Wiener filtering)");
        }
        if get(kw, "multi_freqs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            return unsupported("multi_freqs");
        }
        if let Some(emb) = get(kw, "t_emb").and_then(Value::as_str) {
            if emb != "sin" {
                return unsupported(&format!("t_emb = {emb:?} (only \"sin\")"));
            }
        }
        for key in [
            "t_sparse_self_attn",
            "t_sparse_cross_attn",
            "t_norm_in_group",
            "t_group_norm",
        ] {
            if flag(kw, key, false)? {
                return unsupported(key);
            }
        }
        if uint(kw, "t_sin_random_shift", 0)? != 0 {
            return unsupported("t_sin_random_shift > 0 (random positions at inference)");
        }
        for key in ["dconv_attn", "dconv_lstm"] {
            if uint(kw, key, 0)? != 0 {
                return unsupported(key);
            }
        }

        let channels = uint(kw, "channels", 48)?;
        let segment = match kw.get("segment") {
            None => (10, 1),
            Some(Value::Null) => {
                return Err(ConfigError::Invalid(
                    "segment is not a number or fraction".into(),
                ))
            }
            Some(v) => {
                parse_fraction(v).ok_or_else(|| ConfigError::Invalid(format!("segment = {v}")))?
            }
        };
        let config = Config {
            sources,
            audio_channels: uint(kw, "audio_channels", 2)?,
            channels,
            channels_time: uint(kw, "channels_time", channels)?,
            growth: float(kw, "growth", 2.0)?,
            nfft: uint(kw, "nfft", 4096)?,
            depth: uint(kw, "depth", 4)?,
            rewrite: flag(kw, "rewrite", true)?,
            freq_emb: float(kw, "freq_emb", 0.2)?,
            emb_scale: float(kw, "emb_scale", 10.0)?,
            kernel_size: uint(kw, "kernel_size", 8)?,
            time_stride: uint(kw, "time_stride", 2)?,
            stride: uint(kw, "stride", 4)?,
            context: uint(kw, "context", 1)?,
            context_enc: uint(kw, "context_enc", 0)?,
            norm_starts: uint(kw, "norm_starts", 4)?,
            norm_groups: uint(kw, "norm_groups", 4)?,
            dconv_mode: uint(kw, "dconv_mode", 1)?,
            dconv_depth: uint(kw, "dconv_depth", 2)?,
            dconv_comp: float(kw, "dconv_comp", 8.0)?,
            bottom_channels: uint(kw, "bottom_channels", 0)?,
            t_layers: uint(kw, "t_layers", 5)?,
            t_hidden_scale: float(kw, "t_hidden_scale", 4.0)?,
            t_heads: uint(kw, "t_heads", 8)?,
            t_norm_in: flag(kw, "t_norm_in", true)?,
            t_norm_first: flag(kw, "t_norm_first", true)?,
            t_norm_out: flag(kw, "t_norm_out", true)?,
            t_max_period: float(kw, "t_max_period", 10000.0)?,
            t_layer_scale: flag(kw, "t_layer_scale", true)?,
            t_gelu: flag(kw, "t_gelu", true)?,
            t_weight_pos_embed: float(kw, "t_weight_pos_embed", 1.0)?,
            t_cross_first: flag(kw, "t_cross_first", false)?,
            samplerate: uint(kw, "samplerate", 44100)? as u32,
            segment,
            use_train_segment: flag(kw, "use_train_segment", true)?,
        };
        if config.nfft < 16 || !config.nfft.is_power_of_two() {
            return Err(ConfigError::Invalid(format!("nfft = {}", config.nfft)));
        }
        if config.depth == 0
            || config.kernel_size == 0
            || config.stride == 0
            || config.audio_channels == 0
        {
            return Err(ConfigError::Invalid(
                "depth, kernel_size, stride and audio_channels must be positive".into(),
            ));
        }
        if config.samplerate == 0 {
            return Err(ConfigError::Invalid("samplerate = 0".into()));
        }
        Ok(config)
    }

    /// Samples per training segment: `int(segment · samplerate)`.
    pub fn training_length(&self) -> usize {
        (self.segment.0 * u64::from(self.samplerate) / self.segment.1) as usize
    }

    /// STFT hop.
    pub fn hop(&self) -> usize {
        self.nfft / 4
    }
}
