use std::path::PathBuf;

/// Everything that can go wrong reading, writing or converting audio.
///
/// Every variant that concerns a file names it, so that a message can be shown to a
/// user as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The operating system refused a read or write (missing file, permissions, full disk).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file has no bytes at all.
    #[error("{}: file is empty", path.display())]
    Empty {
        /// The file concerned.
        path: PathBuf,
    },
    /// The content is not audio in a format we decode, or uses an unsupported feature.
    #[error("{}: unsupported or not audio ({detail})", path.display())]
    Unsupported {
        /// The file concerned.
        path: PathBuf,
        /// What was not recognised.
        detail: String,
    },
    /// The file is audio but damaged: a frame failed its checks.
    #[error("{}: corrupt audio at {position_s:.2} s ({detail})", path.display())]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// Roughly where decoding stopped, in seconds.
        position_s: f64,
        /// What the decoder reported.
        detail: String,
    },
    /// Fewer frames decode than the header declares: the file was cut short, or
    /// damaged frames were skipped.
    #[error(
        "{}: incomplete audio (truncated or damaged): the header declares {expected} frames but only {decoded} decode",
        path.display()
    )]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// Frames the header announced.
        expected: u64,
        /// Frames actually decoded.
        decoded: u64,
    },
    /// A writer or converter was asked for something it cannot do.
    #[error("{0}")]
    InvalidArgument(String),
}

impl AudioError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AudioError::Io {
            path: path.into(),
            source,
        }
    }
}
