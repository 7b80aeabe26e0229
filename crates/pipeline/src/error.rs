//! What the file-level work can report. The station maps each variant to its own
//! error (and so to an HTTP status); the CLI prints them as they are.

use std::path::{Path, PathBuf};

use sonantica_audio::AudioError;
use sonantica_demucs::DemucsError;
use sonantica_meter::MeterError;
use sonantica_mix::MixError;

/// Everything analysing, separating and rendering can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The request itself is wrong: a bad setting, an incomplete set of stems,
    /// stems that do not belong together.
    #[error("{0}")]
    BadInput(String),
    /// A model is named that is not installed in the model store.
    #[error("{0}")]
    ModelUnavailable(String),
    /// Decoding, encoding or resampling failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// Loading or running a separation model failed.
    #[error(transparent)]
    Model(#[from] DemucsError),
    /// The Stem Engine refused its settings.
    #[error(transparent)]
    Mix(#[from] MixError),
    /// The Inspector refused a stream.
    #[error(transparent)]
    Meter(#[from] MeterError),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file crashed, exhausted or hung the decoder in the sandbox: it is not
    /// read any further.
    #[error("{}: cannot be read safely: {why}", path.display())]
    Unreadable {
        /// The file concerned.
        path: PathBuf,
        /// What happened to the decoder.
        why: String,
    },
    /// A model could not be downloaded (network, HTTP, checksum).
    #[error("{0}")]
    Download(String),
    /// Work was cancelled (by the user or by shutdown).
    #[error("cancelled")]
    Cancelled,
    /// An internal invariant failed (a worker thread died).
    #[error("{0}")]
    Internal(String),
}

impl PipelineError {
    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        PipelineError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Result with [`PipelineError`].
pub type PipelineResult<T> = Result<T, PipelineError>;
