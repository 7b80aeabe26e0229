use std::path::PathBuf;

/// Everything that can go wrong loading or running a separation model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemucsError {
    /// Reading a model file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a model we can read (truncated, corrupt, wrong format).
    #[error("{}: not a readable Demucs checkpoint: {detail}", path.display())]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The checkpoint is a model architecture or option we do not run.
    #[error("{}: unsupported model: {detail}. Supported: HTDemucs checkpoints (htdemucs, htdemucs_ft, htdemucs_6s and bags of HTDemucs models) as .safetensors, .th or bag .yaml", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        detail: String,
    },
    /// A weight is missing or has the wrong shape for the configuration.
    #[error("weight {name}: {detail}")]
    Weight {
        /// The PyTorch state-dict name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// The input cannot be processed (wrong channel count, empty).
    #[error("{0}")]
    Input(String),
    /// The GPU failed: none found, out of memory, lost, or a driver error.
    #[error("GPU: {0}")]
    Gpu(String),
    /// The run was cancelled by its caller.
    #[error("cancelled")]
    Cancelled,
}
