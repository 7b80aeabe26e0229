//! Opening any model file: a single network (`.safetensors`, `.th`) or a bag
//! (`.yaml` naming its networks, with optional weights and segment).

use std::path::{Path, PathBuf};

use crate::apply::Separator;
use crate::config::parse_fraction;
use crate::model::HTDemucs;
use crate::weights::{bad, Checkpoint};
use crate::DemucsError;

#[derive(Debug, serde::Deserialize)]
struct BagFile {
    models: Vec<String>,
    #[serde(default)]
    weights: Option<Vec<Vec<f64>>>,
    #[serde(default)]
    segment: Option<serde_yaml_ng::Value>,
}

/// The networks a bag `.yaml` names, in order.
pub fn bag_members(text: &str) -> Result<Vec<String>, String> {
    let bag: BagFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    if bag.models.is_empty() {
        return Err("the bag names no models".into());
    }
    Ok(bag.models)
}

/// Reads one network's checkpoint, by extension.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, DemucsError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Checkpoint::load_safetensors(path),
        Some("th") => crate::torch::load_th(path),
        _ => Err(bad(path, "expected a .safetensors, .th or bag .yaml file")),
    }
}

/// The file of network `sig` next to a bag: `{sig}.safetensors`, `{sig}.th`, or a
/// legacy `{sig}-{checksum}.th`.
fn find_member(dir: &Path, sig: &str) -> Option<PathBuf> {
    for ext in ["safetensors", "th"] {
        let p = dir.join(format!("{sig}.{ext}"));
        if p.is_file() {
            return Some(p);
        }
    }
    let prefix = format!("{sig}-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "th")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// [`load_separator`], then onto `gpu` if there is one. A GPU that cannot
/// take the model (too little memory, a driver error) leaves it on the CPU,
/// and the second value says why, for the caller to report: a station or a
/// worker goes on working.
pub fn load_separator_on(
    path: &Path,
    gpu: Option<&crate::gpu::Gpu>,
) -> Result<(Separator, Option<String>), DemucsError> {
    let mut s = load_separator(path)?;
    let stayed = match gpu {
        Some(g) => s
            .use_gpu(g)
            .err()
            .map(|e| format!("{}: the model stays on the CPU: {e}", g.adapter())),
        None => None,
    };
    Ok((s, stayed))
}

/// Opens a model file: a single network or a bag.
pub fn load_separator(path: &Path) -> Result<Separator, DemucsError> {
    if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
        return Ok(Separator::single(HTDemucs::load(load_checkpoint(path)?)?));
    }
    let text = std::fs::read_to_string(path).map_err(|e| DemucsError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let bag: BagFile =
        serde_yaml_ng::from_str(&text).map_err(|e| bad(path, format!("bag: {e}")))?;
    if bag.models.is_empty() {
        return Err(bad(path, "bag names no models"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut models = Vec::new();
    for sig in &bag.models {
        let member = find_member(dir, sig).ok_or_else(|| {
            bad(
                path,
                format!("model {sig} of the bag is missing: expected {sig}.safetensors next to it"),
            )
        })?;
        models.push(HTDemucs::load(load_checkpoint(&member)?)?);
    }
    let segment = match &bag.segment {
        None => None,
        Some(v) => {
            let json = serde_json::to_value(v).map_err(|e| bad(path, format!("segment: {e}")))?;
            Some(parse_fraction(&json).ok_or_else(|| bad(path, format!("segment {json}")))?)
        }
    };
    let weights = bag.weights.map(|w| {
        w.into_iter()
            .map(|r| r.into_iter().map(|v| v as f32).collect())
            .collect()
    });
    Separator::bag(models, weights, segment).map_err(|e| bad(path, e.to_string()))
}
