//! Checkpoint loading: HF safetensors files whose metadata carries the model class
//! and its init arguments as JSON. Weights are fp16 on disk and upcast to f32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::config::{Config, ConfigError};
use crate::DemucsError;

/// The only model class this implementation runs.
pub const HTDEMUCS_CLASS: &str = "demucs.htdemucs.HTDemucs";

/// A weight tensor, upcast to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape, as in PyTorch.
    pub shape: Vec<usize>,
    /// Row-major data.
    pub data: Vec<f32>,
}

/// One network's configuration and weights, by PyTorch state-dict name.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The file it came from.
    pub path: PathBuf,
    /// Its configuration.
    pub config: Config,
    tensors: HashMap<String, Tensor>,
}

pub(crate) fn bad(path: &Path, detail: impl Into<String>) -> DemucsError {
    DemucsError::BadCheckpoint {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

pub(crate) fn unsupported(path: &Path, detail: impl Into<String>) -> DemucsError {
    DemucsError::Unsupported {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Checks the class name and builds the configuration.
pub(crate) fn config_for(
    path: &Path,
    klass: &str,
    args: &Value,
    kwargs: &Value,
) -> Result<Config, DemucsError> {
    match klass {
        HTDEMUCS_CLASS => {}
        "demucs.hdemucs.HDemucs" => {
            return Err(unsupported(path, "HDemucs (Demucs v3) architecture"))
        }
        "demucs.demucs.Demucs" => return Err(unsupported(path, "Demucs v1/v2 architecture")),
        other => return Err(unsupported(path, format!("model class {other}"))),
    }
    Config::from_kwargs(args, kwargs).map_err(|e| match e {
        ConfigError::Invalid(d) => bad(path, d),
        ConfigError::Unsupported(d) => unsupported(path, format!("option {d}")),
    })
}

impl Checkpoint {
    /// Builds a checkpoint from parts (used by the `.th` reader).
    pub(crate) fn from_parts(
        path: &Path,
        config: Config,
        tensors: HashMap<String, Tensor>,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            config,
            tensors,
        }
    }

    /// Reads a `.safetensors` model file.
    pub fn load_safetensors(path: &Path) -> Result<Self, DemucsError> {
        let bytes = std::fs::read(path).map_err(|e| DemucsError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| bad(path, format!("{e}")))?;
        let md = meta
            .metadata()
            .as_ref()
            .ok_or_else(|| bad(path, "no metadata (klass, args, kwargs)"))?;
        if md.contains_key("structure") {
            return Err(unsupported(path, "packed (diffq-quantized) state"));
        }
        let klass = md
            .get("klass")
            .ok_or_else(|| bad(path, "metadata has no klass"))?;
        let parse = |key: &str| -> Result<Value, DemucsError> {
            let text = md.get(key).map_or("null", String::as_str);
            serde_json::from_str(text).map_err(|e| bad(path, format!("metadata {key}: {e}")))
        };
        let config = config_for(path, klass, &parse("args")?, &parse("kwargs")?)?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, format!("{e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let data = to_f32(view.dtype(), view.data()).ok_or_else(|| {
                unsupported(path, format!("tensor {name} has dtype {:?}", view.dtype()))
            })?;
            tensors.insert(
                name,
                Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(Self::from_parts(path, config, tensors))
    }

    /// Takes a weight out, checking its shape.
    pub(crate) fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, DemucsError> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| DemucsError::Weight {
                name: name.to_string(),
                detail: format!("missing from {}", self.path.display()),
            })?;
        if t.shape != shape {
            return Err(DemucsError::Weight {
                name: name.to_string(),
                detail: format!("shape {:?}, the configuration needs {:?}", t.shape, shape),
            });
        }
        Ok(t.data)
    }

    /// Takes a matrix weight out as a [`Weight`] (kept in half precision when
    /// that loses nothing).
    pub(crate) fn take_weight(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> Result<Weight, DemucsError> {
        self.take(name, shape).map(Weight::new)
    }

    /// Names of weights not taken by the model (a mismatch with the configuration).
    pub(crate) fn leftover(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// Converts little-endian tensor bytes to f32.
pub(crate) fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        _ => return None,
    })
}

/// Reads every tensor of a safetensors file (no metadata needed), upcast to f32.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>, DemucsError> {
    let bytes = std::fs::read(path).map_err(|e| DemucsError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(path, format!("{e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data = to_f32(view.dtype(), view.data()).ok_or_else(|| {
            unsupported(path, format!("tensor {name} has dtype {:?}", view.dtype()))
        })?;
        out.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// A convolution or linear weight, held in half precision when every value is
/// exactly a half (the official checkpoints were trained and published that
/// way), else in f32. Half the memory, no loss: the engine computes in f32 and
/// widens a layer's weight when the layer runs (42 M values, about 20 ms per
/// segment against seconds of arithmetic).
#[derive(Debug, Clone)]
pub enum Weight {
    /// Every value is exactly representable as a half.
    Half(Vec<half::f16>),
    /// At least one value is not.
    Full(Vec<f32>),
}

impl Weight {
    /// Keeps `v` as halves when that is exact.
    pub fn new(v: Vec<f32>) -> Self {
        let exact = v
            .iter()
            .all(|x| half::f16::from_f32(*x).to_f32().to_bits() == x.to_bits());
        if exact {
            let mut h = vec![half::f16::ZERO; v.len()];
            half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut h[..], &v);
            Weight::Half(h)
        } else {
            Weight::Full(v)
        }
    }

    /// Values in the weight.
    pub fn len(&self) -> usize {
        match self {
            Weight::Half(h) => h.len(),
            Weight::Full(f) => f.len(),
        }
    }

    /// True when the weight is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values `range` as f32 (borrowed when already f32).
    pub fn f32_range(&self, range: std::ops::Range<usize>) -> std::borrow::Cow<'_, [f32]> {
        match self {
            Weight::Full(f) => std::borrow::Cow::Borrowed(&f[range]),
            Weight::Half(h) => {
                let mut out = vec![0.0f32; range.len()];
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&h[range], &mut out);
                std::borrow::Cow::Owned(out)
            }
        }
    }

    /// All values as f32.
    pub fn f32(&self) -> std::borrow::Cow<'_, [f32]> {
        self.f32_range(0..self.len())
    }
}

#[cfg(test)]
mod weight_tests {
    use super::Weight;

    #[test]
    fn weights_that_are_halves_are_kept_as_halves_and_give_back_the_same_values() {
        let exact: Vec<f32> = (0..1000)
            .map(|i| half::f16::from_f32(i as f32 * 0.013 - 6.0).to_f32())
            .collect();
        let w = Weight::new(exact.clone());
        assert!(matches!(w, Weight::Half(_)));
        assert_eq!(w.f32().as_ref(), &exact[..]);
        assert_eq!(w.f32_range(10..20).as_ref(), &exact[10..20]);
        // One value that is not a half keeps the whole weight in f32.
        let mut inexact = exact.clone();
        inexact[500] = 0.1;
        let w = Weight::new(inexact.clone());
        assert!(matches!(w, Weight::Full(_)));
        assert_eq!(w.f32().as_ref(), &inexact[..]);
    }
}
