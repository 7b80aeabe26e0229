//! The application's errors. The HTTP layer maps each variant to a status in one
//! `match` (see `http::error`); the CLI prints them as they are.

use std::path::{Path, PathBuf};

use sonantica_audio::AudioError;
use sonantica_demucs::DemucsError;
use sonantica_mix::MixError;
use sonantica_pipeline::PipelineError;

/// Everything the library, job queue and renderers can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The thing asked for does not exist (a track, job, stem or model).
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (bad parameter, unknown source name, ...).
    #[error("{0}")]
    BadRequest(String),
    /// The uploaded or scanned file is not audio we can decode.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// An upload exceeded the configured size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The request conflicts with the current state (e.g. cancelling a finished job).
    #[error("{0}")]
    Conflict(String),
    /// A running job's stems are not final yet where they were asked for.
    #[error("{detail}")]
    NotReady {
        /// What was asked and what to do.
        detail: String,
        /// The spans that are final, in seconds.
        ready: Vec<[f64; 2]>,
    },
    /// A worker completed a job whose stems the station does not have (never
    /// uploaded, or lost in a restart): it should upload them again.
    #[error("{0}")]
    StemsMissing(String),
    /// A worker's stems do not fit the job (unknown or repeated sources, another
    /// rate, channel count or length than the track and model): nothing was kept.
    #[error("{0}")]
    BadStems(String),
    /// The access token is missing or wrong.
    #[error("a valid access token is required")]
    Unauthorized,
    /// Too many wrong logins from this client: it must wait this many seconds.
    #[error("too many failed logins: try again in {0} s")]
    TooManyAttempts(u64),
    /// A browser request from another site, or of a kind a browser form could
    /// send, where the station needs its own page's JSON.
    #[error("{0}")]
    Forbidden(String),
    /// A model is named that is not installed in the model store.
    #[error("{0}")]
    ModelUnavailable(String),
    /// The file-level work failed: decoding, encoding, the model, the Stem
    /// Engine or the Inspector (see [`PipelineError`]).
    #[error(transparent)]
    Pipeline(PipelineError),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database could not be migrated to this version's schema.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The job queue (Redis) cannot be reached or refused a command.
    #[error("{0}")]
    Queue(String),
    /// Work was cancelled (by the user or by shutdown).
    #[error("cancelled")]
    Cancelled,
    /// An internal invariant failed (a worker thread died, a stored row is malformed).
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        AppError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

impl From<PipelineError> for AppError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::BadInput(m) => AppError::BadRequest(m),
            PipelineError::ModelUnavailable(m) => AppError::ModelUnavailable(m),
            PipelineError::Io { path, source } => AppError::Io { path, source },
            PipelineError::Cancelled => AppError::Cancelled,
            PipelineError::Internal(m) => AppError::Internal(m),
            other => AppError::Pipeline(other),
        }
    }
}

impl From<AudioError> for AppError {
    fn from(e: AudioError) -> Self {
        AppError::Pipeline(PipelineError::Audio(e))
    }
}

impl From<DemucsError> for AppError {
    fn from(e: DemucsError) -> Self {
        AppError::Pipeline(PipelineError::Model(e))
    }
}

impl From<MixError> for AppError {
    fn from(e: MixError) -> Self {
        AppError::Pipeline(PipelineError::Mix(e))
    }
}

/// Result with [`AppError`].
pub type AppResult<T> = Result<T, AppError>;
