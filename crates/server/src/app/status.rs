//! The states the station stores, as types: in the database they are TEXT
//! columns holding the lowercase names, in JSON the same names. Code compares
//! these values, never their spelling.

use serde::{Deserialize, Serialize};

/// Where a separation job stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it under a lease.
    Running,
    /// The stems are stored.
    Done,
    /// It failed; the job's `error` says why.
    Failed,
    /// Cancelled by the user.
    Cancelled,
}

impl JobStatus {
    /// Done, failed or cancelled: it will not change again.
    pub const fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// The name, as stored and sent.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
        .ok_or_else(|| format!("status {s:?}: use queued, running, done, failed or cancelled"))
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a track's file comes from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum TrackOrigin {
    /// Uploaded: the station owns the file (under `media/uploads/`).
    Upload,
    /// Found in the read-only library folder.
    Library,
}

/// Whether a track's Inspector analysis is there.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum AnalysisStatus {
    /// Not computed yet.
    Pending,
    /// Stored in `analysis`.
    Done,
    /// Failed; `analysis_error` says why.
    Failed,
}
