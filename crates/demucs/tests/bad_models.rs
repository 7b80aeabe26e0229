//! Missing, truncated, corrupt and wrong-architecture model files give clear errors.

mod common;
use common::*;

use std::collections::HashMap;
use std::path::PathBuf;

use sonantica_demucs::{load_separator, DemucsError};

fn err_of(path: &std::path::Path) -> DemucsError {
    match load_separator(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    }
}

#[test]
fn missing_truncated_and_corrupt_files_are_refused_with_the_path() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nope.safetensors");
    let e = err_of(&missing);
    assert!(matches!(e, DemucsError::Io { .. }), "{e}");
    assert!(e.to_string().contains("nope.safetensors"));

    let bytes = std::fs::read(fixture("small4.safetensors"))?;
    let truncated = dir.path().join("cut.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
    let e = err_of(&truncated);
    assert!(matches!(e, DemucsError::BadCheckpoint { .. }), "{e}");
    assert!(e.to_string().contains("cut.safetensors"), "{e}");

    let noise = dir.path().join("noise.th");
    std::fs::write(&noise, vec![7u8; 5000])?;
    let e = err_of(&noise);
    assert!(matches!(e, DemucsError::BadCheckpoint { .. }), "{e}");

    let th = std::fs::read_dir(fixture(""))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "th"))
        .ok_or_else(|| anyhow::anyhow!("no .th fixture"))?;
    let th_bytes = std::fs::read(th)?;
    let cut_th = dir.path().join("cut.th");
    std::fs::write(&cut_th, &th_bytes[..th_bytes.len() * 2 / 3])?;
    assert!(matches!(err_of(&cut_th), DemucsError::BadCheckpoint { .. }));

    let yaml = dir.path().join("bag.yaml");
    std::fs::write(&yaml, "models: ['nothere']\n")?;
    let e = err_of(&yaml);
    assert!(e.to_string().contains("nothere"), "{e}");

    let other = dir.path().join("model.onnx");
    std::fs::write(&other, b"x")?;
    assert!(err_of(&other)
        .to_string()
        .contains(".safetensors, .th or bag .yaml"));
    Ok(())
}

#[test]
fn other_architectures_and_unsupported_options_are_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = vec![0u8; 8];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data)?;
    let write = |name: &str, klass: &str, kwargs: &str| -> anyhow::Result<PathBuf> {
        let path = dir.path().join(name);
        let meta: HashMap<String, String> = [
            ("klass".to_string(), klass.to_string()),
            ("args".to_string(), "[]".to_string()),
            ("kwargs".to_string(), kwargs.to_string()),
        ]
        .into();
        safetensors::serialize_to_file([("w", view.clone())], Some(meta), &path)?;
        Ok(path)
    };
    let hdemucs = write(
        "h.safetensors",
        "demucs.hdemucs.HDemucs",
        r#"{"sources": ["a"]}"#,
    )?;
    let e = err_of(&hdemucs);
    assert!(matches!(e, DemucsError::Unsupported { .. }), "{e}");
    assert!(
        e.to_string().contains("HDemucs") && e.to_string().contains("Supported: HTDemucs"),
        "{e}"
    );
    let wiener = write(
        "w.safetensors",
        "demucs.htdemucs.HTDemucs",
        r#"{"sources": ["a"], "wiener_iters": 1}"#,
    )?;
    assert!(err_of(&wiener).to_string().contains("wiener_iters"));
    // Right class, wrong weights: the first mismatch is named.
    let empty = write(
        "e.safetensors",
        "demucs.htdemucs.HTDemucs",
        r#"{"sources": ["a", "b"]}"#,
    )?;
    let e = err_of(&empty);
    assert!(matches!(e, DemucsError::Weight { .. }), "{e}");
    assert!(e.to_string().contains("encoder.0.conv.weight"), "{e}");
    Ok(())
}
