//! The application layer: the station's services. Nothing here knows about HTTP;
//! `crate::http` translates requests into calls of one service each.
//!
//! - [`App`]: the running station, which holds the services and starts and stops
//!   their background work.
//! - [`Catalog`]: albums and artists from the tags, and search by words.
//! - [`Library`]: tracks from uploads and the library folder, their analysis,
//!   stems, multistem files and renders.
//! - [`Jobs`]: the durable separation queue and the in-process workers.
//! - [`Workers`]: remote `sonantica worker` processes and the Redis dispatcher.
//! - [`Auth`]: the access token.
//! - [`MediaDir`]: every path under `media/`.
//!
//! The file-level work (analysis, separation, rendering, the model store) is
//! `sonantica_pipeline`, shared with the CLI.

pub mod api_keys;
pub mod auth;
pub mod catalog;
mod error;
pub mod jobs;
pub mod library;
pub mod listening;
mod live;
pub mod media;
pub mod playback;
pub mod redis_queue;
pub mod remote;
pub mod status;
pub mod subsonic_login;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sonantica_pipeline::sandbox::Isolation;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::SqlitePool;
use tokio_util::sync::CancellationToken;

pub use auth::Auth;
pub use catalog::Catalog;
pub use error::{AppError, AppResult};
pub use jobs::Jobs;
pub use library::Library;
pub use media::MediaDir;
pub use remote::Workers;

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
    /// instead of running them here. The worker API exists only with a queue.
    pub queue: Option<String>,
    /// The credential of `sonantica worker` processes (needed with `queue`):
    /// the worker API takes it and nothing else, and it opens nothing else.
    pub worker_token: Option<String>,
    /// Where files the station did not write (uploads, the library folder) are
    /// first read: `sonantica serve` uses a child process of itself with
    /// memory and time limits, so a crafted file cannot take the station down.
    /// [`Config::new`] reads in-process (for tests and embedding).
    pub sandbox: Isolation,
    /// The address browsers use (`https://…` behind a TLS proxy): the session
    /// cookie is then marked `Secure`.
    pub public_url: Option<String>,
    /// Where the station's own workers run the network (`--device`);
    /// [`Config::new`] uses the CPU.
    pub device: sonantica_demucs::gpu::DeviceChoice,
    /// The user name Subsonic players sign in with (`--subsonic-user`; default
    /// `admin`, or the one stored before).
    pub subsonic_user: Option<String>,
    /// Their password (`--subsonic-password`): stored in
    /// `DATA/subsonic-login`; without it (and none stored) the Subsonic API
    /// refuses every call and says how to set one.
    pub subsonic_password: Option<String>,
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
            worker_token: None,
            sandbox: Isolation::InProcess,
            public_url: None,
            device: sonantica_demucs::gpu::DeviceChoice::Cpu,
            subsonic_user: None,
            subsonic_password: None,
        }
    }
}

struct Inner {
    config: Config,
    db: SqlitePool,
    library: Library,
    jobs: Jobs,
    workers: Workers,
    auth: Auth,
    subsonic: subsonic_login::SubsonicLogin,
    listening: listening::Listening,
    api_keys: api_keys::ApiKeys,
    shutdown: CancellationToken,
}

/// The running station: its services, sharing one database and media folder.
/// Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("data_dir", &self.inner.config.data_dir)
            .finish()
    }
}

/// Milliseconds since the Unix epoch.
/// A transaction that writes: `BEGIN IMMEDIATE`, which takes SQLite's write
/// lock at once, waiting for it up to the busy timeout. A plain (deferred)
/// `BEGIN` takes it at the first write instead, and SQLite answers
/// "database is locked" there without waiting when another connection is
/// writing (seen under load: an upload failed while the analysis wrote).
pub(crate) async fn write_tx(
    db: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    db.begin_with("BEGIN IMMEDIATE").await
}

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
        if config.queue.is_some() && config.worker_token.is_none() {
            return Err(AppError::BadRequest(
                "a queue needs a worker token (--worker-token or SONANTICA_WORKER_TOKEN, at least 16 characters): the credential `sonantica worker` processes use".into(),
            ));
        }
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
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let db = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        // WAL is a setting of the file, made once here while the pool has its
        // one connection. Not in the connect options: those would send it on
        // every new connection, and that pragma takes a lock SQLite does not
        // wait for (busy_timeout), so a request that opened a connection while
        // a job wrote failed with "database is locked".
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
            .fetch_one(&db)
            .await?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("the database stays in {mode} journal mode: writes wait on reads");
        }
        sqlx::migrate!("./migrations").run(&db).await?;
        let shutdown = CancellationToken::new();
        let library = Library::new(library::LibrarySetup {
            db: db.clone(),
            media,
            root: library_root,
            default_model: sonantica_pipeline::models::model_name(&config.default_model),
            max_upload_bytes: config.max_upload_bytes,
            sandbox: config.sandbox.clone(),
            shutdown: shutdown.clone(),
        });
        library.tidy_media().await?;
        // Tracks stored by an older version join their albums.
        library.catalog().catalogue_pending().await?;
        // The GPU is opened once, when the station runs jobs itself; a
        // `--device gpu` without one stops the start with what was found.
        let gpu = if config.queue.is_none() {
            config
                .device
                .open()
                .map_err(|e| AppError::BadRequest(format!("--device {}: {e}", config.device)))?
        } else {
            None
        };
        let jobs = Jobs::new(&config, db.clone(), library.clone(), shutdown.clone(), gpu);
        let workers = Workers::new(jobs.clone());
        let (auth, token) = Auth::open(
            db.clone(),
            config.token.as_deref(),
            config.worker_token.as_deref(),
        )
        .await?;
        let subsonic = subsonic_login::SubsonicLogin::open(
            &config.data_dir,
            config.subsonic_user.as_deref(),
            config.subsonic_password.as_deref(),
        )?;
        let listening = listening::Listening::new(db.clone());
        let api_keys = api_keys::ApiKeys::new(db.clone());
        let app = App {
            inner: Arc::new(Inner {
                config,
                db,
                library,
                jobs,
                workers,
                auth,
                subsonic,
                listening,
                api_keys,
                shutdown,
            }),
        };
        Ok((app, token))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The library: tracks, analysis, stems, renders.
    pub fn library(&self) -> &Library {
        &self.inner.library
    }

    /// The albums and artists.
    pub fn catalog(&self) -> &Catalog {
        self.inner.library.catalog()
    }

    /// The separation queue.
    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// Remote workers.
    pub fn workers(&self) -> &Workers {
        &self.inner.workers
    }

    /// The access token.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// The API keys of Subsonic players.
    pub fn api_keys(&self) -> &api_keys::ApiKeys {
        &self.inner.api_keys
    }

    /// Plays, stars and playlists.
    pub fn listening(&self) -> &listening::Listening {
        &self.inner.listening
    }

    /// The login of Subsonic players.
    pub fn subsonic_login(&self) -> &subsonic_login::SubsonicLogin {
        &self.inner.subsonic
    }

    /// The media folder (`DATA/media`) and every path in it.
    pub fn media(&self) -> &MediaDir {
        self.inner.library.media()
    }

    /// The database pool.
    pub fn db(&self) -> &SqlitePool {
        &self.inner.db
    }

    /// A token that is cancelled when the station shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Starts the background work: job workers (or the Redis dispatcher), the
    /// analysis task and the start-up library scan. They stop when
    /// [`App::shutdown`] is called.
    pub fn start_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        if let Some(url) = self.inner.config.queue.clone() {
            let workers = self.inner.workers.clone();
            handles.push(tokio::spawn(
                async move { workers.dispatch_loop(url).await },
            ));
        } else {
            let jobs = self.inner.jobs.clone();
            handles.push(tokio::spawn(
                async move { jobs.preload_default_model().await },
            ));
            for n in 0..self.inner.config.workers.max(1) {
                let jobs = self.inner.jobs.clone();
                handles.push(tokio::spawn(async move { jobs.worker_loop(n).await }));
            }
        }
        let library = self.inner.library.clone();
        handles.push(tokio::spawn(async move { library.analysis_loop().await }));
        if self.inner.library.has_folder() {
            let (library, jobs) = (self.inner.library.clone(), self.inner.jobs.clone());
            handles.push(tokio::spawn(async move {
                match library.scan_library(&jobs).await {
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
        self.inner.jobs.cancel_running();
    }
}
