//! Separation jobs: a durable queue in the database and the workers that run it.
//!
//! A job is a row. Workers *claim* the best queued job (highest priority, then
//! oldest) in one `UPDATE … RETURNING`, which SQLite runs atomically, and hold it
//! under a lease they renew while they work. A worker that dies stops renewing;
//! when the lease expires the next worker that asks takes the job again. The
//! stems are written into a hidden staging folder and moved into
//! `media/stems/{track}/{model}/` in the same database transaction that marks the
//! job done — and only if the job is still held by that worker — so a job
//! completes exactly once and a reader never sees half a set of stems.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sonantica_demucs::{load_separator_on, ApplyOptions, Separator};
use sqlx::SqlitePool;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use super::live::{LiveFile, StationLive};
use super::status::JobStatus;
use super::{now_ms, AppError, AppResult, Config, Library, MediaDir};
use sonantica_pipeline::models::{is_model_name, model_name, resolve_job_model};
use sonantica_pipeline::separate::{separate_file_live, ClipMode, SeparateSettings};

/// Priority of a job a user asked for.
pub const PRIORITY_INTERACTIVE: i64 = 10;
/// Priority of jobs queued for a whole library.
pub const PRIORITY_BATCH: i64 = 0;
/// A job whose worker died this many times is failed rather than retried.
const MAX_ATTEMPTS: i64 = 3;

/// A job as stored (with live progress merged in by [`App::job`]).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Job {
    /// Id.
    pub id: i64,
    /// Track to separate.
    pub track_id: i64,
    /// Model name.
    pub model: String,
    /// Where it stands.
    pub status: JobStatus,
    /// Priority (higher first).
    pub priority: i64,
    /// Fraction done, 0..1.
    pub progress: f64,
    /// Estimated seconds left.
    pub eta_s: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The worker running it.
    pub worker: Option<String>,
    /// Times a worker took it.
    pub attempts: i64,
    /// Queued at (ms since the epoch).
    pub created_at: i64,
    /// First started at.
    pub started_at: Option<i64>,
    /// Finished at.
    pub finished_at: Option<i64>,
    /// Where the listener asked the separation to start, in seconds.
    pub from_s: Option<f64>,
    /// The track's length in seconds, when known.
    pub track_duration_s: Option<f64>,
    /// Where its worker computes it: `CPU`, `GPU: <adapter>`, or
    /// `CPU (the GPU failed: <why>)`; none before a worker reported.
    pub device: Option<String>,
    /// The spans of the track whose stems are final, `[start_s, end_s]`: they
    /// grow while the job runs; the whole track once it is done.
    #[sqlx(skip)]
    pub ready: Vec<[f64; 2]>,
    /// How many stems a running job on this station makes, once it has
    /// decoded the track (a player sets up its mixer from it).
    #[sqlx(skip)]
    pub stems: Option<usize>,
}

impl Job {
    /// True for done, failed and cancelled jobs.
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
    }
}

// The statuses as the SQL below spells them (from the type, never by hand).
const QUEUED: JobStatus = JobStatus::Queued;
const RUNNING: JobStatus = JobStatus::Running;
const DONE: JobStatus = JobStatus::Done;
const FAILED: JobStatus = JobStatus::Failed;
const CANCELLED: JobStatus = JobStatus::Cancelled;

const JOB_COLUMNS: &str = "id, track_id, model, status, priority, progress, eta_s, error, \
    worker, attempts, created_at, started_at, finished_at, from_s, device, \
    (SELECT duration_s FROM tracks WHERE tracks.id = jobs.track_id) AS track_duration_s";

/// How a job ended on its worker.
enum Outcome {
    Done(Vec<(String, PathBuf)>),
    Cancelled,
    Failed(String),
}

/// Live state of a running job, shared between its worker thread and the API.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) progress: Mutex<(f64, Option<f64>)>,
    /// Where the job computes, once its model is loaded (see `Job::device`).
    pub(crate) device: Mutex<Option<String>>,
    pub(crate) cancel: AtomicBool,
    /// The stems published so far.
    pub(crate) stems: Arc<Mutex<Option<LiveFile>>>,
}

pub(crate) struct JobsInner {
    pub(crate) config: Config,
    pub(crate) db: SqlitePool,
    pub(crate) media: MediaDir,
    pub(crate) library: Library,
    /// Wakes idle workers (and the dispatcher) when a job is queued.
    pub(crate) jobs_queued: Notify,
    /// Job ids whose state changed (for event streams).
    job_events: broadcast::Sender<i64>,
    live: Mutex<HashMap<i64, Arc<Live>>>,
    separators: Mutex<HashMap<PathBuf, Arc<Separator>>>,
    loading: Mutex<()>,
    pub(crate) shutdown: CancellationToken,
    /// The GPU the station's own jobs run on, if any.
    gpu: Option<sonantica_demucs::gpu::Gpu>,
}

/// The durable separation queue: jobs in the database, leases, priorities,
/// cancellation, progress, and the in-process workers that run them. Cheap to
/// clone.
#[derive(Clone)]
pub struct Jobs {
    pub(crate) inner: Arc<JobsInner>,
}

impl Jobs {
    pub(crate) fn new(
        config: &Config,
        db: SqlitePool,
        library: Library,
        shutdown: CancellationToken,
        gpu: Option<sonantica_demucs::gpu::Gpu>,
    ) -> Self {
        let (job_events, _) = broadcast::channel(256);
        Self {
            inner: Arc::new(JobsInner {
                config: config.clone(),
                db,
                media: library.media().clone(),
                library,
                jobs_queued: Notify::new(),
                job_events,
                live: Mutex::new(HashMap::new()),
                separators: Mutex::new(HashMap::new()),
                loading: Mutex::new(()),
                shutdown,
                gpu,
            }),
        }
    }

    /// The station's configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where separation runs: the GPU's name, the CPU, or remote workers.
    pub fn device(&self) -> String {
        if self.inner.config.queue.is_some() {
            return "remote workers (sonantica worker)".into();
        }
        match &self.inner.gpu {
            Some(g) => g.adapter().to_string(),
            None => format!("CPU ({} threads per job)", self.inner.config.threads),
        }
    }

    /// Asks every running job to stop (shutdown: they go back to the queue).
    pub(crate) fn cancel_running(&self) {
        if let Ok(live) = self.inner.live.lock() {
            for l in live.values() {
                l.cancel.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl Jobs {
    /// The name of the default model (a file's stem when it is a path).
    pub fn default_model_name(&self) -> String {
        model_name(&self.inner.config.default_model)
    }

    /// The model file for a model name: the configured default (which may be a
    /// path), or a model in the store. Names from requests never become paths.
    pub fn model_path(&self, name: &str) -> AppResult<PathBuf> {
        let c = &self.inner.config;
        Ok(resolve_job_model(name, &c.default_model, &c.models_dir)?)
    }

    /// Refuses a model that cannot run, with the fix, rather than failing in the
    /// worker. With a Redis queue the models live on the worker machines, so only
    /// the name is checked here.
    fn check_model(&self, model: &str) -> AppResult<()> {
        if self.inner.config.queue.is_some() {
            if is_model_name(model) {
                Ok(())
            } else {
                Err(AppError::BadRequest(format!(
                    "{model:?} is not a model name"
                )))
            }
        } else {
            self.model_path(model).map(|_| ())
        }
    }

    /// Queues a separation of a track (the default model when `model` is `None`).
    /// Returns the job and whether it is new: while a job for the same track and
    /// model is queued or running, or once its stems exist, that job is returned.
    pub async fn enqueue(
        &self,
        track_id: i64,
        model: Option<&str>,
        priority: i64,
    ) -> AppResult<(Job, bool)> {
        self.enqueue_from(track_id, model, priority, None).await
    }

    /// [`Jobs::enqueue`] that separates from `from_s` seconds first (where the
    /// listener is), then the rest of the track. A queued job for the same
    /// track and model moves its start there.
    pub async fn enqueue_from(
        &self,
        track_id: i64,
        model: Option<&str>,
        priority: i64,
        from_s: Option<f64>,
    ) -> AppResult<(Job, bool)> {
        if from_s.is_some_and(|f| !(f.is_finite() && f >= 0.0)) {
            return Err(AppError::BadRequest(
                "from_s must be a number of seconds ≥ 0".into(),
            ));
        }
        let model = match model {
            Some(m) => m.to_owned(),
            None => self.default_model_name(),
        };
        self.check_model(&model)?;
        self.inner.library.track(track_id).await?;
        if let Some(job) = self.existing_job(track_id, &model).await? {
            if from_s.is_some() && job.status == JobStatus::Queued {
                sqlx::query(&format!(
                    "UPDATE jobs SET from_s = ? WHERE id = ? AND status = '{QUEUED}'"
                ))
                .bind(from_s)
                .bind(job.id)
                .execute(&self.inner.db)
                .await?;
                self.job_changed(job.id);
                return Ok((self.job(job.id).await?, false));
            }
            // Running here: the engine makes the stems from there next.
            if let (Some(s), Some(live)) = (from_s, self.live(job.id)) {
                if let Ok(mut stems) = live.stems.lock() {
                    if let Some(stems) = stems.as_mut() {
                        stems.seek(s);
                    }
                }
            }
            return Ok((job, false));
        }
        let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(&format!(
            "INSERT INTO jobs (id, track_id, model, status, priority, created_at, from_s)
             VALUES (
                MAX(COALESCE((SELECT MAX(id) FROM jobs), 0),
                    COALESCE((SELECT id FROM id_high_water WHERE tbl = 'jobs'), 0)) + 1,
                ?, ?, '{QUEUED}', ?, ?, ?) RETURNING id"
        ))
        .bind(track_id)
        .bind(&model)
        .bind(priority)
        .bind(now_ms())
        .bind(from_s)
        .fetch_one(&self.inner.db)
        .await;
        match inserted {
            Ok((id,)) => {
                self.inner.jobs_queued.notify_waiters();
                self.inner.jobs_queued.notify_one();
                Ok((self.job(id).await?, true))
            }
            // Another request queued the same job in between.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                match self.existing_job(track_id, &model).await? {
                    Some(job) => Ok((job, false)),
                    None => Err(AppError::Conflict(
                        "the job changed meanwhile; retry".into(),
                    )),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The active job for (track, model), or the job that produced its stems.
    async fn existing_job(&self, track_id: i64, model: &str) -> AppResult<Option<Job>> {
        let active: Option<Job> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE track_id = ? AND model = ?
             AND status IN ('{QUEUED}', '{RUNNING}')"
        ))
        .bind(track_id)
        .bind(model)
        .fetch_optional(&self.inner.db)
        .await?;
        if active.is_some() {
            return Ok(active);
        }
        let done: Option<Job> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE track_id = ? AND model = ? AND status = '{DONE}'
             AND EXISTS (SELECT 1 FROM stems WHERE stems.track_id = jobs.track_id
                         AND stems.model = jobs.model)
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(track_id)
        .bind(model)
        .fetch_optional(&self.inner.db)
        .await?;
        Ok(done)
    }

    /// Queues every track without stems from `model` at batch priority; returns how
    /// many jobs were queued.
    pub async fn enqueue_library(&self, model: Option<&str>) -> AppResult<usize> {
        let model = match model {
            Some(m) => m.to_owned(),
            None => self.default_model_name(),
        };
        self.check_model(&model)?;
        let ids: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT id FROM tracks t WHERE NOT EXISTS
                (SELECT 1 FROM stems s WHERE s.track_id = t.id AND s.model = ?)
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.track_id = t.id AND j.model = ?
                             AND j.status IN ('{QUEUED}', '{RUNNING}'))
             ORDER BY id"
        ))
        .bind(&model)
        .bind(&model)
        .fetch_all(&self.inner.db)
        .await?;
        let mut queued = 0;
        for (id,) in ids {
            if self.enqueue(id, Some(&model), PRIORITY_BATCH).await?.1 {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// A job, with the live progress of a running one.
    pub async fn job(&self, id: i64) -> AppResult<Job> {
        let job: Job = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.inner.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no job with id {id}")))?;
        Ok(self.with_live_progress(job))
    }

    /// Recent jobs, newest first, optionally only those with `status`.
    pub async fn list_jobs(&self, status: Option<JobStatus>, limit: i64) -> AppResult<Vec<Job>> {
        let rows: Vec<Job> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1)
             ORDER BY id DESC LIMIT ?2"
        ))
        .bind(status)
        .bind(limit)
        .fetch_all(&self.inner.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|j| self.with_live_progress(j))
            .collect())
    }

    /// A running job's progress and ETA as its worker thread has them now (the
    /// database has them as of the last lease renewal).
    fn with_live_progress(&self, mut job: Job) -> Job {
        match job.status {
            JobStatus::Running => {
                if let Some(live) = self.live(job.id) {
                    if let Ok(p) = live.progress.lock() {
                        job.progress = job.progress.max(p.0);
                        job.eta_s = p.1;
                    }
                    if let Ok(stems) = live.stems.lock() {
                        job.ready = stems.as_ref().map(LiveFile::ready_s).unwrap_or_default();
                        job.stems = stems.as_ref().map(LiveFile::stems);
                    }
                }
            }
            JobStatus::Done => {
                job.ready = job
                    .track_duration_s
                    .map(|d| vec![[0.0, d]])
                    .unwrap_or_default();
            }
            _ => {}
        }
        job
    }

    /// A window of the stems a running job on this station has published so
    /// far (see [`super::Library::multistem_window`]): `None` when no job for
    /// the track and model runs here; a [`AppError::NotReady`] conflict when
    /// part of the window is not final yet.
    pub async fn live_window(
        &self,
        track_id: i64,
        model: Option<&str>,
        start_s: f64,
        duration_s: f64,
    ) -> AppResult<Option<std::fs::File>> {
        let model = model.map_or_else(|| self.default_model_name(), str::to_owned);
        let Some(live) = self.running_live(track_id, &model).await? else {
            return Ok(None);
        };
        let tmp = self.inner.media.tmp();
        tokio::task::spawn_blocking(move || {
            super::live::window(&live.stems, &tmp, start_s, duration_s)
        })
        .await
        .map_err(|e| AppError::Internal(format!("cutting the live window failed: {e}")))?
        .map(Some)
    }

    /// The stems a running job on this station is making, streamed from
    /// `start_s` at `rate` (see [`Library::pcm_stream`]): the stream waits at
    /// the edge of what is ready for the engine to make more. `None` when no
    /// job for the track and model runs here; a [`AppError::NotReady`]
    /// conflict while the job is still decoding the track.
    pub async fn live_stream(
        &self,
        track_id: i64,
        model: &str,
        rate: u32,
        start_s: f64,
    ) -> AppResult<Option<super::playback::PcmStream>> {
        super::playback::check_stream_args(rate, start_s)?;
        let Some(live) = self.running_live(track_id, model).await? else {
            return Ok(None);
        };
        let reader = super::live::LiveReader::new(Arc::clone(&live.stems), start_s)?.ok_or(
            AppError::NotReady {
                detail: "the separation has just started: ask again in a moment".into(),
                ready: Vec::new(),
            },
        )?;
        super::playback::start_pcm(
            super::playback::Source::Live(Box::new(reader)),
            rate,
            0,
            track_id,
        )
        .map(Some)
    }

    /// The live state of the job running here for a track and model.
    async fn running_live(&self, track_id: i64, model: &str) -> AppResult<Option<Arc<Live>>> {
        let running: Option<(i64,)> = sqlx::query_as(&format!(
            "SELECT id FROM jobs WHERE track_id = ? AND model = ? AND status = '{RUNNING}'"
        ))
        .bind(track_id)
        .bind(model)
        .fetch_optional(&self.inner.db)
        .await?;
        Ok(running.and_then(|(id,)| self.live(id)))
    }

    fn live(&self, id: i64) -> Option<Arc<Live>> {
        self.inner.live.lock().ok()?.get(&id).cloned()
    }

    /// The live state of a job a remote worker runs, made with its first
    /// part (progress as last reported).
    pub(crate) fn remote_live(
        &self,
        id: i64,
        progress: (f64, Option<f64>),
    ) -> AppResult<Arc<Live>> {
        let mut map = self
            .inner
            .live
            .lock()
            .map_err(|_| AppError::Internal("the live jobs' lock is poisoned".into()))?;
        Ok(Arc::clone(map.entry(id).or_insert_with(|| {
            Arc::new(Live {
                progress: Mutex::new(progress),
                ..Live::default()
            })
        })))
    }

    /// Forgets a remote job's live state (it ended, or went to another
    /// worker): readers waiting for more stop, and its temporary file goes
    /// with the last of them.
    pub(crate) fn drop_live(&self, id: i64) {
        let gone = self.inner.live.lock().ok().and_then(|mut m| m.remove(&id));
        if let Some(live) = gone {
            super::live::end(&live.stems);
        }
    }

    /// Drops the live state of remote jobs that no longer run (their lease ran
    /// out and they were queued again, or failed).
    pub(crate) async fn prune_remote_live(&self) -> AppResult<()> {
        let ids: Vec<i64> = match self.inner.live.lock() {
            Ok(m) => m.keys().copied().collect(),
            Err(_) => return Ok(()),
        };
        for id in ids {
            let running: Option<(i64,)> = sqlx::query_as(&format!(
                "SELECT id FROM jobs WHERE id = ? AND status = '{RUNNING}'"
            ))
            .bind(id)
            .fetch_optional(&self.inner.db)
            .await?;
            if running.is_none() {
                self.drop_live(id);
            }
        }
        Ok(())
    }

    /// Records a remote worker's progress where [`Self::job`] reads it.
    pub(crate) fn remote_progress(&self, id: i64, progress: f64, eta_s: Option<f64>) {
        if let Some(live) = self.live(id) {
            if let Ok(mut p) = live.progress.lock() {
                *p = (progress, eta_s);
            }
        }
    }

    /// A receiver of the ids of jobs whose state changed.
    pub fn job_events(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.inner.job_events.subscribe()
    }

    pub(crate) fn job_changed(&self, id: i64) {
        let _ = self.inner.job_events.send(id);
    }

    /// Cancels a queued or running job; a finished job is a conflict.
    pub async fn cancel_job(&self, id: i64) -> AppResult<Job> {
        let changed = sqlx::query(
            &format!("UPDATE jobs SET status = '{CANCELLED}', finished_at = ?, eta_s = NULL, lease_until = NULL
             WHERE id = ? AND status IN ('{QUEUED}', '{RUNNING}')"),
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.inner.db)
        .await?
        .rows_affected();
        let job = self.job(id).await?;
        if changed == 0 {
            return Err(AppError::Conflict(format!(
                "job {id} is already {}",
                job.status
            )));
        }
        if let Some(live) = self.live(id) {
            live.cancel.store(true, Ordering::SeqCst);
        }
        // A remote worker's uploads go now (a local worker removes its own
        // staging when it sees the cancel).
        if let (Some(worker), Some(_)) = (&job.worker, &self.inner.config.queue) {
            self.drop_live(id);
            let media = &self.inner.media;
            let _ =
                std::fs::remove_dir_all(media.remote_staging(job.track_id, &job.model, id, worker));
            media.remove_track_stems_if_empty(job.track_id);
        }
        self.job_changed(id);
        Ok(job)
    }

    /// Cancels every active job of a track (before the track changes or goes).
    pub(crate) async fn cancel_track_jobs(&self, track_id: i64) -> AppResult<()> {
        let ids: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT id FROM jobs WHERE track_id = ? AND status IN ('{QUEUED}', '{RUNNING}')"
        ))
        .bind(track_id)
        .fetch_all(&self.inner.db)
        .await?;
        for (id,) in ids {
            match self.cancel_job(id).await {
                Ok(_) | Err(AppError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Takes the next job for `worker`: the best queued one, or a running one whose
    /// lease expired (its worker died). A job that has died on its worker
    /// [`MAX_ATTEMPTS`] times is failed instead.
    pub async fn claim_job(&self, worker: &str) -> AppResult<Option<Job>> {
        let now = now_ms();
        let lease = now + self.inner.config.job_lease.as_millis() as i64;
        self.fail_abandoned_jobs(now).await?;
        let id: Option<(i64,)> = sqlx::query_as(&format!(
            "UPDATE jobs SET status = '{RUNNING}', worker = ?1, lease_until = ?2,
                attempts = attempts + 1, started_at = COALESCE(started_at, ?3), error = NULL
             WHERE id = (SELECT id FROM jobs
                         WHERE status = '{QUEUED}' OR (status = '{RUNNING}' AND lease_until < ?3)
                         ORDER BY priority DESC, id LIMIT 1)
             RETURNING id"
        ))
        .bind(worker)
        .bind(lease)
        .bind(now)
        .fetch_optional(&self.inner.db)
        .await?;
        match id {
            Some((id,)) => {
                self.job_changed(id);
                Ok(Some(self.job(id).await?))
            }
            None => Ok(None),
        }
    }

    /// Fails running jobs whose lease ran out before `expired_before` and whose
    /// worker already stopped [`MAX_ATTEMPTS`] times (say, the job runs workers out
    /// of memory), rather than handing them out for ever.
    pub(crate) async fn fail_abandoned_jobs(&self, expired_before: i64) -> AppResult<()> {
        let failed = sqlx::query(&format!(
            "UPDATE jobs SET status = '{FAILED}', finished_at = ?1, lease_until = NULL,
                error = 'the worker running this job stopped ' || attempts || ' times'
             WHERE status = '{RUNNING}' AND lease_until < ?2 AND attempts >= ?3"
        ))
        .bind(now_ms())
        .bind(expired_before)
        .bind(MAX_ATTEMPTS)
        .execute(&self.inner.db)
        .await?;
        if failed.rows_affected() > 0 {
            let _ = self.inner.job_events.send(-1);
        }
        Ok(())
    }

    /// Renews `worker`'s lease on a job and records its progress. False when the
    /// job is no longer this worker's (cancelled, or taken after a lapse).
    pub(crate) async fn renew_job(
        &self,
        id: i64,
        worker: &str,
        progress: f64,
        eta: Option<f64>,
        device: Option<&str>,
    ) -> bool {
        let lease = now_ms() + self.inner.config.job_lease.as_millis() as i64;
        sqlx::query(&format!(
            "UPDATE jobs SET lease_until = ?, progress = ?, eta_s = ?,
                device = COALESCE(?, device)
             WHERE id = ? AND worker = ? AND status = '{RUNNING}'"
        ))
        .bind(lease)
        .bind(progress)
        .bind(eta)
        .bind(device)
        .bind(id)
        .bind(worker)
        .execute(&self.inner.db)
        .await
        .is_ok_and(|r| r.rows_affected() == 1)
    }

    /// A job's worker loop: claim, run, repeat, until shutdown.
    pub(crate) async fn worker_loop(&self, n: usize) {
        let worker = format!(
            "{}:{}#{n}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
            std::process::id()
        );
        let shutdown = self.inner.shutdown.clone();
        // Expired leases are found by polling; new jobs wake the loop at once.
        let poll = (self.inner.config.job_lease / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            let notified = self.inner.jobs_queued.notified();
            match self.claim_job(&worker).await {
                Ok(Some(job)) => self.run_job(job, &worker).await,
                Ok(None) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = notified => {}
                        _ = tokio::time::sleep(poll) => {}
                    }
                }
                Err(e) => {
                    tracing::error!("job queue: {e}");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(poll) => {}
                    }
                }
            }
        }
    }

    /// Loads the default model ahead of the first job (a full-size one takes
    /// seconds to read), so that a separation starts computing at once: live
    /// stems are waited for from the moment the listener asks.
    pub(crate) async fn preload_default_model(&self) {
        let Ok(path) = self.model_path(&self.default_model_name()) else {
            return; // not installed: the first job says so
        };
        let jobs = self.clone();
        let loaded = tokio::task::spawn_blocking(move || jobs.separator(&path)).await;
        match loaded {
            Ok(Ok(_)) => tracing::info!("default model {} loaded", self.default_model_name()),
            Ok(Err(e)) => tracing::warn!("the default model could not be loaded: {e}"),
            Err(e) => tracing::warn!("loading the default model failed: {e}"),
        }
    }

    fn separator(&self, path: &std::path::Path) -> AppResult<Arc<Separator>> {
        // One load at a time: a job that starts while the model is being
        // preloaded waits for it instead of reading it a second time.
        let _loading = self.inner.loading.lock();
        if let Some(s) = self
            .inner
            .separators
            .lock()
            .ok()
            .and_then(|m| m.get(path).cloned())
        {
            return Ok(s);
        }
        let (s, stayed) = load_separator_on(path, self.inner.gpu.as_ref())?;
        if let Some(why) = stayed {
            tracing::warn!("{why}");
        }
        let s = Arc::new(s);
        if let Ok(mut m) = self.inner.separators.lock() {
            // One model in memory at a time: a full-size one is hundreds of MB.
            m.clear();
            m.insert(path.to_path_buf(), Arc::clone(&s));
        }
        Ok(s)
    }

    /// Runs one claimed job to its end.
    async fn run_job(&self, job: Job, worker: &str) {
        let id = job.id;
        tracing::info!(
            "job {id}: separating track {} with {} (attempt {})",
            job.track_id,
            job.model,
            job.attempts
        );
        let live = Arc::new(Live::default());
        if let Ok(mut m) = self.inner.live.lock() {
            m.insert(id, Arc::clone(&live));
        }
        let staging = self.inner.media.job_staging(job.track_id, &job.model, id);
        let outcome = self.separate_job(&job, worker, &live, &staging).await;
        // Readers of its stems stop waiting for more (all are ready if it
        // succeeded).
        super::live::end(&live.stems);
        let result = match outcome {
            Ok(Outcome::Done(stems)) => self.finish_job(&job, worker, &staging, stems).await,
            Ok(Outcome::Cancelled) => {
                if self.inner.shutdown.is_cancelled() {
                    // Stopped by shutdown: hand the job back to the queue.
                    sqlx::query(&format!(
                        "UPDATE jobs SET status = '{QUEUED}', worker = NULL, lease_until = NULL,
                            attempts = attempts - 1, eta_s = NULL
                         WHERE id = ? AND worker = ? AND status = '{RUNNING}'"
                    ))
                    .bind(id)
                    .bind(worker)
                    .execute(&self.inner.db)
                    .await
                    .map(|_| ())
                    .map_err(AppError::from)
                } else {
                    Ok(())
                }
            }
            Ok(Outcome::Failed(error)) | Err(AppError::Internal(error)) => {
                tracing::error!("job {id} failed: {error}");
                self.fail_job(id, worker, &error).await
            }
            Err(e) => {
                tracing::error!("job {id} failed: {e}");
                self.fail_job(id, worker, &e.to_string()).await
            }
        };
        // Its published stems are served until the finished ones are in place.
        if let Ok(mut m) = self.inner.live.lock() {
            m.remove(&id);
        }
        let _ = std::fs::remove_dir_all(&staging);
        self.inner.media.remove_track_stems_if_empty(job.track_id);
        if let Err(e) = result {
            tracing::error!("job {id}: could not record the result: {e}");
        }
        self.job_changed(id);
    }

    pub(crate) async fn fail_job(&self, id: i64, worker: &str, error: &str) -> AppResult<()> {
        sqlx::query(&format!(
            "UPDATE jobs SET status = '{FAILED}', error = ?, finished_at = ?, lease_until = NULL,
                eta_s = NULL
             WHERE id = ? AND worker = ? AND status = '{RUNNING}'"
        ))
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .bind(worker)
        .execute(&self.inner.db)
        .await?;
        Ok(())
    }

    /// Separates in a blocking thread while this task renews the lease and
    /// publishes progress.
    async fn separate_job(
        &self,
        job: &Job,
        worker: &str,
        live: &Arc<Live>,
        staging: &std::path::Path,
    ) -> AppResult<Outcome> {
        let model_path = match self.model_path(&job.model) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::Failed(e.to_string())),
        };
        let track = match self.inner.library.track(job.track_id).await {
            Ok(t) => t,
            Err(e) => return Ok(Outcome::Failed(e.to_string())),
        };
        let input = match self.inner.library.track_file(&track) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::Failed(e.to_string())),
        };
        let _ = std::fs::remove_dir_all(staging);
        let sandbox = self.inner.config.sandbox.clone();
        let shown = (input.display().to_string(), track.path.clone());
        let app = self.clone();
        let threads = self.inner.config.threads;
        let work_live = Arc::clone(live);
        let out = staging.to_path_buf();
        let tmp = self.inner.media.tmp();
        let from_s = job.from_s;
        let mut work = tokio::task::spawn_blocking(move || {
            let separator = app.separator(&model_path)?;
            let live = &work_live;
            if let Ok(mut d) = live.device.lock() {
                *d = Some(separator.device());
            }
            sonantica_demucs::ops::set_threads(threads);
            let started = Instant::now();
            let settings = SeparateSettings {
                apply: ApplyOptions {
                    shifts: 1,
                    ..ApplyOptions::default()
                },
                // Decoded in the sandbox: a file that would crash the decoder
                // fails this job, not the station.
                decode_in: sandbox,
                // Stems are served while the job runs, so each part must be
                // final when made: a stem past full scale is clamped there
                // rather than all stems scaled by the whole track's peak.
                clip: ClipMode::Clamp,
                from_s,
                ..SeparateSettings::default()
            };
            // Every source: the multistem layout.
            let stems = separator.sources().len();
            let mut sink = StationLive::new(Arc::clone(&live.stems), &tmp, stems)?;
            let done = separate_file_live(
                &input,
                &separator,
                &out,
                &settings,
                &mut |p| {
                    let frac = p.done as f64 / p.total.max(1) as f64;
                    let elapsed = started.elapsed().as_secs_f64();
                    let eta =
                        (p.done > 0).then(|| elapsed / p.done as f64 * (p.total - p.done) as f64);
                    if let Ok(mut g) = live.progress.lock() {
                        *g = (frac.min(1.0), eta);
                    }
                },
                &|| live.cancel.load(Ordering::SeqCst),
                &mut sink,
            );
            // A GPU given up during the run shows in the job.
            if let Ok(mut d) = live.device.lock() {
                *d = Some(separator.device());
            }
            done.map_err(AppError::from)
        });
        let beat = (self.inner.config.job_lease / 3)
            .clamp(Duration::from_millis(100), Duration::from_secs(2));
        let mut last = (-1.0, None);
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tokio::time::sleep(beat) => {
                    let now = live.progress.lock().map(|g| *g).unwrap_or((0.0, None));
                    let device = live.device.lock().ok().and_then(|d| d.clone());
                    if !self.renew_job(job.id, worker, now.0, now.1, device.as_deref()).await {
                        // Cancelled by a user, or the lease lapsed and another
                        // worker has it: stop.
                        live.cancel.store(true, Ordering::SeqCst);
                    }
                    if now != last {
                        last = now;
                        self.job_changed(job.id);
                    }
                }
            }
        };
        // The device as the run ended (a GPU given up shows), also for a job
        // shorter than one beat.
        let device = live.device.lock().ok().and_then(|d| d.clone());
        if device.is_some() {
            sqlx::query("UPDATE jobs SET device = ? WHERE id = ? AND worker = ?")
                .bind(device)
                .bind(job.id)
                .bind(worker)
                .execute(&self.inner.db)
                .await?;
        }
        match result {
            Err(e) => Err(AppError::Internal(format!(
                "the separation thread failed: {e}"
            ))),
            Ok(Err(AppError::Cancelled)) => Ok(Outcome::Cancelled),
            // The reason names the track's file as stored, not where it lies.
            Ok(Err(e)) => Ok(Outcome::Failed(e.to_string().replace(&shown.0, &shown.1))),
            Ok(Ok(done)) => Ok(Outcome::Done(done.stems)),
        }
    }

    /// Moves the staged stems into place and records them, in one transaction
    /// that first checks the job is still this worker's.
    pub(crate) async fn finish_job(
        &self,
        job: &Job,
        worker: &str,
        staging: &std::path::Path,
        stems: Vec<(String, PathBuf)>,
    ) -> AppResult<()> {
        // The multichannel file the Studio plays is written now, before the
        // job is done, so that the stems play the moment it is.
        let media = &self.inner.media;
        let ext = super::library::multistem_format(stems.len()).1;
        let staged_all = media.staged_multistem(job.track_id, &job.model, job.id, ext);
        let files: Vec<PathBuf> = stems.iter().map(|(_, p)| p.clone()).collect();
        let built = {
            let out = staged_all.clone();
            tokio::task::spawn_blocking(move || super::library::write_multistem(&files, &out))
                .await
                .map_err(|e| AppError::Internal(format!("multistem thread: {e}")))
                .and_then(|r| r)
        };
        if let Err(e) = &built {
            // Not fatal: it is built on the first request instead.
            tracing::warn!("job {}: the multistem file: {e}", job.id);
            let _ = std::fs::remove_file(&staged_all);
        }
        let result = self.record_finish(job, worker, staging, stems).await;
        match (&result, built) {
            (Ok(true), Ok(())) => {
                let dest = media.multistem(job.track_id, &job.model, ext);
                if let Err(e) = std::fs::rename(&staged_all, &dest) {
                    tracing::warn!("job {}: the multistem file: {e}", job.id);
                    let _ = std::fs::remove_file(&staged_all);
                }
            }
            _ => {
                let _ = std::fs::remove_file(&staged_all);
            }
        }
        result.map(|_| ())
    }

    /// Marks the job done and moves its stems into place, in one transaction
    /// with their rows; false when the job was no longer this worker's.
    async fn record_finish(
        &self,
        job: &Job,
        worker: &str,
        staging: &std::path::Path,
        stems: Vec<(String, PathBuf)>,
    ) -> AppResult<bool> {
        let mut tx = super::write_tx(&self.inner.db).await?;
        let ours = sqlx::query(&format!(
            "UPDATE jobs SET status = '{DONE}', progress = 1, eta_s = NULL, finished_at = ?,
                lease_until = NULL
             WHERE id = ? AND worker = ? AND status = '{RUNNING}'"
        ))
        .bind(now_ms())
        .bind(job.id)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !ours {
            tx.rollback().await?;
            tracing::info!(
                "job {}: finished, but it was cancelled or taken over",
                job.id
            );
            return Ok(false);
        }
        let media = &self.inner.media;
        let final_dir = media.model_stems(job.track_id, &job.model);
        let old = media.replaced_stems(job.track_id, &job.model, job.id);
        if final_dir.exists() {
            std::fs::rename(&final_dir, &old).map_err(|e| AppError::io(&final_dir, e))?;
        }
        if let Err(e) = std::fs::rename(staging, &final_dir) {
            let _ = std::fs::rename(&old, &final_dir);
            return Err(AppError::io(&final_dir, e));
        }
        let _ = std::fs::remove_dir_all(&old);
        // The multichannel file of the old stems, if any, is stale now.
        for f in media.multistems(job.track_id, &job.model) {
            let _ = std::fs::remove_file(f);
        }
        let recorded = async {
            sqlx::query("DELETE FROM stems WHERE track_id = ? AND model = ?")
                .bind(job.track_id)
                .bind(&job.model)
                .execute(&mut *tx)
                .await?;
            for (source, path) in &stems {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                sqlx::query(
                    "INSERT INTO stems (track_id, model, source, path) VALUES (?, ?, ?, ?)",
                )
                .bind(job.track_id)
                .bind(&job.model)
                .bind(source)
                .bind(MediaDir::stem_rel(job.track_id, &job.model, &name))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = recorded {
            // The rows did not land: the folder would be an orphan.
            let _ = std::fs::remove_dir_all(&final_dir);
            return Err(e.into());
        }
        tracing::info!("job {}: done", job.id);
        Ok(true)
    }
}
