//! The application layer: library, jobs, storage, analysis and rendering. Nothing
//! here knows about HTTP; `crate::http` translates requests into these calls.
//!
//! - [`App`]: the running station (database, media folder, job workers).
//! - [`library`]: tracks from uploads and the library folder, with their analysis.
//! - [`jobs`]: the durable separation queue and its workers.
//! - [`auth`]: the access token.
//!
//! The file-level work (analysis, separation, rendering, the model store) is
//! `sonantica_pipeline`, shared with the CLI.

pub mod auth;
mod error;
pub mod jobs;
pub mod library;
pub mod media;
pub mod redis_queue;
pub mod remote;
pub mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sonantica_demucs::Separator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::SqlitePool;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

pub use error::{AppError, AppResult};
pub use media::MediaDir;

/// How the station is set up (`sonantica serve` flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// Data folder: `sonantica.db`, `media/` (uploads, stems) and, by default, `models/`.
    pub data_dir: PathBuf,
    /// A read-only music folder to scan.
    pub library: Option<PathBuf>,
    /// The model store.
    pub models_dir: PathBuf,
    /// Default model for jobs: a name in the store or a model file.
    pub default_model: String,
    /// Concurrent separation jobs.
    pub workers: usize,
    /// Threads per separation job.
    pub threads: usize,
    /// Largest accepted upload in bytes.
    pub max_upload_bytes: u64,
    /// How long a worker holds a job without renewing it before another may take it.
    pub job_lease: Duration,
    /// Sets the access token (stored hashed) instead of generating one.
    pub token: Option<String>,
    /// `redis://HOST:PORT`: put jobs on Redis for `sonantica worker` processes
    /// instead of running them here.
    pub queue: Option<String>,
}

impl Config {
    /// Defaults for a data folder: models in `DATA/models`, the `htdemucs` model, one
    /// worker using every core, 1 GiB uploads, 30 s leases.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Config {
            models_dir: data_dir.join("models"),
            data_dir,
            library: None,
            default_model: "htdemucs".into(),
            workers: 1,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_upload_bytes: 1 << 30,
            job_lease: Duration::from_secs(30),
            token: None,
            queue: None,
        }
    }
}

/// Live state of a running job, shared between its worker thread and the API.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) progress: Mutex<(f64, Option<f64>)>,
    pub(crate) cancel: AtomicBool,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) db: SqlitePool,
    pub(crate) media: MediaDir,
    pub(crate) library_root: Option<PathBuf>,
    /// Wakes idle workers when a job is queued.
    pub(crate) jobs_queued: Notify,
    /// Wakes the analysis task when a track is added.
    pub(crate) analysis_queued: Notify,
    /// Job ids whose state changed (for event streams).
    pub(crate) job_events: broadcast::Sender<i64>,
    pub(crate) live: Mutex<HashMap<i64, Arc<Live>>>,
    pub(crate) separators: Mutex<HashMap<PathBuf, Arc<Separator>>>,
    pub(crate) token_hash: Mutex<[u8; 32]>,
    pub(crate) shutdown: CancellationToken,
    /// Serialises library scans.
    pub(crate) scanning: tokio::sync::Mutex<()>,
}

/// The running station. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("data_dir", &self.inner.config.data_dir)
            .finish()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl App {
    /// Opens (or creates) the data folder and database, migrates it, tidies what
    /// an interrupted run left behind, and sets up the access token. Returns the
    /// new token when one was generated (it is stored only hashed: show it once).
    pub async fn open(config: Config) -> AppResult<(App, Option<String>)> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| AppError::io(&config.data_dir, e))?;
        let media = MediaDir::new(config.data_dir.join("media"));
        media.create()?;
        let library_root = match &config.library {
            Some(dir) => Some(
                dir.canonicalize()
                    .map_err(|e| AppError::io(dir, e))
                    .and_then(|d| {
                        if d.is_dir() {
                            Ok(d)
                        } else {
                            Err(AppError::BadRequest(format!(
                                "{}: the library must be a folder",
                                dir.display()
                            )))
                        }
                    })?,
            ),
            None => None,
        };
        let options = SqliteConnectOptions::new()
            .filename(config.data_dir.join("sonantica.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let db = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&db).await?;
        let (job_events, _) = broadcast::channel(256);
        let app = App {
            inner: Arc::new(Inner {
                media,
                library_root,
                db,
                jobs_queued: Notify::new(),
                analysis_queued: Notify::new(),
                job_events,
                live: Mutex::new(HashMap::new()),
                separators: Mutex::new(HashMap::new()),
                token_hash: Mutex::new([0; 32]),
                shutdown: CancellationToken::new(),
                scanning: tokio::sync::Mutex::new(()),
                config,
            }),
        };
        app.tidy_media().await?;
        let token = app.setup_token().await?;
        Ok((app, token))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The media folder (`DATA/media`) and every path in it.
    pub fn media(&self) -> &MediaDir {
        &self.inner.media
    }

    /// The database pool.
    pub fn db(&self) -> &SqlitePool {
        &self.inner.db
    }

    /// A token that is cancelled when the station shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Starts the background work: job workers, the analysis task and the start-up
    /// library scan. They stop when [`App::shutdown`] is called.
    pub fn start_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        if let Some(url) = self.inner.config.queue.clone() {
            let app = self.clone();
            handles.push(tokio::spawn(async move { app.dispatch_loop(url).await }));
        } else {
            for n in 0..self.inner.config.workers.max(1) {
                let app = self.clone();
                handles.push(tokio::spawn(async move { app.worker_loop(n).await }));
            }
        }
        let app = self.clone();
        handles.push(tokio::spawn(async move { app.analysis_loop().await }));
        if self.inner.library_root.is_some() {
            let app = self.clone();
            handles.push(tokio::spawn(async move {
                match app.scan_library().await {
                    Ok(r) => tracing::info!(
                        "library scan: {} added, {} changed, {} removed, {} unchanged, {} unreadable",
                        r.added,
                        r.changed,
                        r.removed,
                        r.unchanged,
                        r.failed.len()
                    ),
                    Err(e) => tracing::error!("library scan failed: {e}"),
                }
            }));
        }
        handles
    }

    /// Asks every background task to stop; running jobs are handed back to the
    /// queue and resume at the next start.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        if let Ok(live) = self.inner.live.lock() {
            for l in live.values() {
                l.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// Removes what an interrupted run can leave in `media/`: half-received uploads,
    /// unfinished stem folders and renders, and upload files no track refers to.
    async fn tidy_media(&self) -> AppResult<()> {
        let known: Vec<(String,)> = sqlx::query_as("SELECT path FROM tracks WHERE origin = ?")
            .bind(status::TrackOrigin::Upload)
            .fetch_all(&self.inner.db)
            .await?;
        let known: std::collections::HashSet<String> = known.into_iter().map(|(p,)| p).collect();
        self.inner.media.tidy(|rel| known.contains(rel))
    }
}
