//! The local model store: where named models (`htdemucs`, `htdemucs_ft`,
//! `htdemucs_6s`) live, and how a model argument is resolved to a file.

use std::path::{Path, PathBuf};

use crate::{PipelineError, PipelineResult};

/// A model this program knows by name: its HF repository and bag file.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// Name on the command line.
    pub name: &'static str,
    /// Repository under huggingface.co.
    pub repo: &'static str,
    /// What it is.
    pub description: &'static str,
}

/// The official HTDemucs models.
pub const KNOWN: &[KnownModel] = &[
    KnownModel {
        name: "htdemucs",
        repo: "adefossez/HTDemucs",
        description: "Hybrid Transformer Demucs: drums, bass, other, vocals (default)",
    },
    KnownModel {
        name: "htdemucs_ft",
        repo: "adefossez/HTDemucs-ft",
        description: "four fine-tuned htdemucs, one per source: best quality, 4x slower",
    },
    KnownModel {
        name: "htdemucs_6s",
        repo: "adefossez/HTDemucs-6s",
        description: "six sources: drums, bass, other, vocals, guitar, piano",
    },
];

/// The sources a model by this name separates into, in its order, when it is
/// one of the [`KNOWN`] models (a model file's sources are in the file).
pub fn known_sources(name: &str) -> Option<&'static [sonantica_mix::Source]> {
    match name {
        "htdemucs" | "htdemucs_ft" => Some(&sonantica_mix::Source::FOUR),
        "htdemucs_6s" => Some(&sonantica_mix::Source::SIX),
        _ => None,
    }
}

/// The user's data folder: `$XDG_DATA_HOME/sonantica`, else
/// `~/.local/share/sonantica` (else `./sonantica-data` without a home).
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map_or_else(|| PathBuf::from("sonantica-data"), |d| d.join("sonantica"))
}

/// The model store folder: `flag`, else `$SONANTICA_MODELS`, else `models/` in the
/// default data folder.
pub fn store_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    if let Some(d) = std::env::var_os("SONANTICA_MODELS") {
        return PathBuf::from(d);
    }
    default_data_dir().join("models")
}

/// Resolves a model argument: an existing file, or a name in the store.
pub fn resolve(model: &str, store: &Path) -> PipelineResult<PathBuf> {
    let as_path = Path::new(model);
    let is_file_like = as_path
        .extension()
        .is_some_and(|e| e == "yaml" || e == "safetensors" || e == "th");
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    if is_file_like {
        return Err(PipelineError::ModelUnavailable(format!(
            "{model}: no such model file"
        )));
    }
    resolve_name(model, store)
}

/// Resolves a model *name* (never a path) in the store; this is what requests from
/// the network may use.
pub fn resolve_name(model: &str, store: &Path) -> PipelineResult<PathBuf> {
    if !is_model_name(model) {
        return Err(PipelineError::BadInput(format!(
            "{model:?} is not a model name (letters, digits, '_' and '-')"
        )));
    }
    let bag = store.join(format!("{model}.yaml"));
    if bag.is_file() {
        return Ok(bag);
    }
    match KNOWN.iter().find(|k| k.name == model) {
        Some(k) => Err(PipelineError::ModelUnavailable(format!(
            "model {model} is not installed in {}: run `sonantica models pull {model}`, or download \
             https://huggingface.co/{}/resolve/main/{model}.yaml and the .safetensors files it lists into that folder",
            store.display(),
            k.repo
        ))),
        None => Err(PipelineError::ModelUnavailable(format!(
            "unknown model {model:?}: use htdemucs, htdemucs_ft, htdemucs_6s, or a path to a .safetensors, .th or bag .yaml file"
        ))),
    }
}

/// The names of the model bags (`NAME.yaml`) in the store, sorted; names that
/// [`is_model_name`] refuses are left out. An unreadable store has none.
pub fn store_bags(store: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            (path.extension()? == "yaml" && path.is_file() && is_model_name(&stem)).then_some(stem)
        })
        .collect();
    names.sort();
    names
}

/// True for names that can safely become a folder name: 1-64 ASCII letters,
/// digits, `_` and `-`.
pub fn is_model_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The name a model file is known by in the library: its file stem, reduced to
/// the characters [`is_model_name`] allows (`htdemucs.yaml` → `htdemucs`).
pub fn display_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() {
        "model".into()
    } else {
        clean
    }
}

/// The name jobs know a `--model` argument by: the name itself, or a model
/// file's [`display_name`].
pub fn model_name(arg: &str) -> String {
    if is_model_name(arg) {
        arg.to_owned()
    } else {
        display_name(Path::new(arg))
    }
}

/// The model file for a job's model `name`: the configured `default` argument
/// (which may be a path) when the name is its name, else a model in the store.
/// Names from requests and queues never become paths.
pub fn resolve_job_model(name: &str, default: &str, store: &Path) -> PipelineResult<PathBuf> {
    if name == model_name(default) {
        resolve(default, store)
    } else {
        resolve_name(name, store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_bags_are_the_yaml_files_with_model_names() -> anyhow::Result<()> {
        let store = tempfile::tempdir()?;
        for file in ["six.yaml", "a-b_1.yaml", "bad name.yaml", "w.safetensors"] {
            std::fs::write(store.path().join(file), "models: []\n")?;
        }
        std::fs::create_dir(store.path().join("dir.yaml"))?;
        assert_eq!(store_bags(store.path()), ["a-b_1", "six"]);
        assert!(store_bags(&store.path().join("missing")).is_empty());
        Ok(())
    }

    #[test]
    fn names_with_path_characters_are_refused() {
        let store = Path::new("/nonexistent");
        for bad in ["../htdemucs", "a/b", "", ".hidden", "x.yaml", "a b"] {
            assert!(
                matches!(resolve_name(bad, store), Err(PipelineError::BadInput(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            resolve_name("htdemucs", store),
            Err(PipelineError::ModelUnavailable(_))
        ));
    }

    #[test]
    fn display_name_is_a_valid_model_name() {
        assert_eq!(display_name(Path::new("/m/htdemucs.yaml")), "htdemucs");
        assert_eq!(display_name(Path::new("/m/a b.c.th")), "a_b_c");
        assert!(is_model_name(&display_name(Path::new("/m/ü.th"))));
    }
}
