//! Separation on other machines: with `--queue redis://…` the station puts jobs
//! on Redis (the dispatcher below) instead of running them itself, and
//! `sonantica worker` processes report back through the API: claim a job, report
//! progress, upload stems, complete, fail or hand the job back. Every step checks
//! that the job is still held by the worker that calls, so a job a dead worker
//! held, once taken over, cannot be completed twice, and a late or duplicate
//! upload never touches stored stems.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::jobs::{Job, PRIORITY_INTERACTIVE};
use super::redis_queue::RedisQueue;
use super::status::JobStatus;
use super::{now_ms, AppError, AppResult, Jobs, MediaDir};
use sonantica_mix::Source;
use sonantica_pipeline::models::known_sources;
use sonantica_pipeline::render::check_complete;

/// What a worker's claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The job is now this worker's.
    Claimed(Job),
    /// The job needs no work (done, failed or cancelled): acknowledge the message.
    Finished(Job),
    /// Another live worker holds it: leave the message; it comes back if that
    /// worker dies.
    Busy(Job),
}

/// True for worker names the API accepts: 1-128 of letters, digits and `._:#@-`.
pub fn is_worker_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:#@-".contains(&b))
}

/// True for source names a worker may upload (`vocals`, `no_vocals`, ...).
fn is_source_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// A source name a worker sent, as a source of `job`'s stems.
fn parse_source(job: &Job, name: &str) -> AppResult<Source> {
    name.parse().map_err(|e: sonantica_mix::ParseSourceError| {
        AppError::BadStems(format!("job {}: {e}", job.id))
    })
}

fn names(set: &[Source]) -> String {
    set.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
}

/// The sources a worker completes a job with, checked: known names, each once,
/// and exactly the model's set (for a model file the station does not know,
/// a complete four- or six-stem set).
fn check_source_set(job: &Job, sources: &[String]) -> AppResult<Vec<Source>> {
    let mut parsed: Vec<Source> = Vec::with_capacity(sources.len());
    for s in sources {
        let p = parse_source(job, s)?;
        if parsed.contains(&p) {
            return Err(AppError::BadStems(format!(
                "job {}: {s} is listed twice",
                job.id
            )));
        }
        parsed.push(p);
    }
    match known_sources(&job.model) {
        Some(set) => {
            if parsed.len() != set.len() || !set.iter().all(|s| parsed.contains(s)) {
                return Err(AppError::BadStems(format!(
                    "job {}: {} separates into {}, not {}",
                    job.id,
                    job.model,
                    names(set),
                    names(&parsed)
                )));
            }
        }
        None => {
            check_complete(&parsed)
                .map_err(|m| AppError::BadStems(format!("job {}: {m}", job.id)))?;
            let full = if parsed.len() > Source::FOUR.len() {
                6
            } else {
                4
            };
            if parsed.len() != full {
                return Err(AppError::BadStems(format!(
                    "job {}: {} is neither a four- nor a six-stem set",
                    job.id,
                    names(&parsed)
                )));
            }
        }
    }
    Ok(parsed)
}

/// How far a stem's length may be from the track's: the track's length is the
/// container's declaration until the analysis has measured it, and MP3 and AAC
/// declarations can be off by an encoder delay.
const LENGTH_SLACK_S: f64 = 0.25;

/// Checks one uploaded stem against the job's track: FLAC, the track's sample
/// rate, two channels, a declared length within [`LENGTH_SLACK_S`] of the
/// track's.
fn check_stem(
    shown: &str,
    info: &sonantica_audio::AudioInfo,
    track: &super::library::Track,
) -> AppResult<()> {
    if info.codec != "flac" {
        return Err(AppError::UnsupportedMedia(format!(
            "{shown}: expected FLAC, got {}",
            info.codec
        )));
    }
    if i64::from(info.sample_rate) != track.sample_rate {
        return Err(AppError::BadStems(format!(
            "{shown}: {} Hz, but the track is {} Hz (stems keep the track's rate)",
            info.sample_rate, track.sample_rate
        )));
    }
    // Every HTDemucs model (and so every model file this program loads) is
    // stereo in and out.
    if info.channels != 2 {
        return Err(AppError::BadStems(format!(
            "{shown}: {} channels, but the model's stems are stereo",
            info.channels
        )));
    }
    let Some(frames) = info.frames else {
        return Err(AppError::BadStems(format!(
            "{shown}: the FLAC does not declare its length"
        )));
    };
    if let Some(duration) = track.duration_s {
        let seconds = frames as f64 / f64::from(info.sample_rate);
        if (seconds - duration).abs() > LENGTH_SLACK_S {
            return Err(AppError::BadStems(format!(
                "{shown}: {seconds:.2} s long, but the track is {duration:.2} s"
            )));
        }
    }
    Ok(())
}

fn check_worker(worker: &str) -> AppResult<()> {
    if is_worker_name(worker) {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "{worker:?} is not a worker name (1-128 letters, digits and ._:#@-)"
        )))
    }
}

/// A device as a worker describes it (shown to listeners as it is): one line
/// of at most 200 characters.
fn check_device(device: &str) -> AppResult<()> {
    if device.is_empty() || device.chars().count() > 200 || device.chars().any(char::is_control) {
        Err(AppError::BadRequest(
            "device must be one line of 1-200 characters".into(),
        ))
    } else {
        Ok(())
    }
}

/// Remote `sonantica worker` processes: the claims, progress, stem uploads and
/// results they send, and the dispatcher that puts queued jobs on Redis. Every
/// step checks that the calling worker holds the job. Cheap to clone.
#[derive(Clone)]
pub struct Workers {
    jobs: Jobs,
}

impl Workers {
    pub(crate) fn new(jobs: Jobs) -> Self {
        Self { jobs }
    }

    /// The staging folder of a remote worker's upload for a job.
    fn remote_staging(&self, job: &Job, worker: &str) -> PathBuf {
        self.jobs
            .inner
            .media
            .remote_staging(job.track_id, &job.model, job.id, worker)
    }

    /// The job if `worker` holds it (running, under its name), else a conflict
    /// that says why.
    async fn held_by(&self, id: i64, worker: &str) -> AppResult<Job> {
        check_worker(worker)?;
        let job = self.jobs.job(id).await?;
        if job.status == JobStatus::Running && job.worker.as_deref() == Some(worker) {
            Ok(job)
        } else {
            Err(AppError::Conflict(format!(
                "job {id} is not held by {worker} (it is {}{})",
                job.status,
                job.worker
                    .as_deref()
                    .map(|w| format!(", worker {w}"))
                    .unwrap_or_default()
            )))
        }
    }

    /// A worker asks for a job it received from the queue.
    pub async fn claim(&self, id: i64, worker: &str) -> AppResult<Claim> {
        check_worker(worker)?;
        let now = now_ms();
        let lease = now + self.jobs.inner.config.job_lease.as_millis() as i64;
        let claimed = sqlx::query(
            "UPDATE jobs SET status = ?5, worker = ?1, lease_until = ?2,
                attempts = attempts + 1, started_at = COALESCE(started_at, ?3), error = NULL,
                dispatched = 1
             WHERE id = ?4 AND (status = ?6 OR (status = ?5 AND lease_until < ?3))",
        )
        .bind(worker)
        .bind(lease)
        .bind(now)
        .bind(id)
        .bind(JobStatus::Running)
        .bind(JobStatus::Queued)
        .execute(&self.jobs.inner.db)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            // Parts a previous holder sent are not this worker's.
            self.jobs.drop_live(id);
        }
        let job = self.jobs.job(id).await?;
        self.jobs.job_changed(id);
        Ok(if claimed {
            Claim::Claimed(job)
        } else if job.is_finished() {
            Claim::Finished(job)
        } else {
            Claim::Busy(job)
        })
    }

    /// A worker reports progress (and so renews its lease). False: stop, the job
    /// was cancelled or is no longer this worker's.
    pub async fn progress(
        &self,
        id: i64,
        worker: &str,
        progress: f64,
        eta_s: Option<f64>,
        device: Option<&str>,
    ) -> AppResult<bool> {
        check_worker(worker)?;
        if !(0.0..=1.0).contains(&progress) {
            return Err(AppError::BadRequest("progress must be within 0..1".into()));
        }
        if let Some(d) = device {
            check_device(d)?;
        }
        self.jobs.job(id).await?;
        let ours = self
            .jobs
            .renew_job(id, worker, progress, eta_s, device)
            .await;
        if ours {
            self.jobs.remote_progress(id, progress, eta_s);
        }
        self.jobs.job_changed(id);
        Ok(ours)
    }

    /// The audio file of the track of a job `worker` holds.
    pub async fn audio_file(&self, id: i64, worker: &str) -> AppResult<PathBuf> {
        let job = self.held_by(id, worker).await?;
        let library = &self.jobs.inner.library;
        library.track_file(&library.track(job.track_id).await?)
    }

    /// Receives one stem (FLAC) for a job the worker holds into the job's staging
    /// folder, after checking it against the job: a source of the job's model,
    /// FLAC, at the track's sample rate, with the model's channels and the
    /// track's length (see [`check_stem`]). Nothing is kept on any failure.
    pub async fn put_stem<S, B, E>(
        &self,
        id: i64,
        worker: &str,
        source: &str,
        body: S,
    ) -> AppResult<()>
    where
        S: futures_util::Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        AppError: From<E>,
    {
        if !is_source_name(source) {
            return Err(AppError::BadRequest(format!(
                "{source:?} is not a source name"
            )));
        }
        let max = self.jobs.inner.config.max_upload_bytes;
        let (staged, _) = self
            .jobs
            .inner
            .media
            .receive(".stem-", body, max, || {
                "the stem is larger than --max-upload-mb".into()
            })
            .await?;
        let job = self.held_by(id, worker).await?;
        let parsed = parse_source(&job, source)?;
        if let Some(set) = known_sources(&job.model) {
            if !set.contains(&parsed) {
                return Err(AppError::BadStems(format!(
                    "job {id}: {} has no {source} stem (its sources: {})",
                    job.model,
                    names(set)
                )));
            }
        }
        let track = self.jobs.inner.library.track(job.track_id).await?;
        let dir = self.remote_staging(&job, worker);
        let dest = MediaDir::staged_stem(&dir, source);
        let sandbox = self.jobs.inner.config.sandbox.clone();
        let shown = format!("stem {source} of job {id}");
        tokio::task::spawn_blocking(move || -> AppResult<()> {
            // The worker's file is read like any file the station did not write.
            let info = sandbox
                .probe(staged.path())
                .map_err(|e| AppError::UnsupportedMedia(format!("{shown}: {e}")))?;
            check_stem(&shown, &info, &track)?;
            std::fs::create_dir_all(&dir).map_err(|e| AppError::io(&dir, e))?;
            staged
                .persist(&dest)
                .map_err(|e| AppError::io(&dest, e.error))?;
            Ok(())
        })
        .await
        .map_err(|e| AppError::Internal(format!("storing a stem failed: {e}")))??;
        // Cancelled or taken over while the stem was checked: keep nothing.
        if let Err(e) = self.held_by(id, worker).await {
            let _ = std::fs::remove_dir_all(self.remote_staging(&job, worker));
            self.jobs
                .inner
                .media
                .remove_track_stems_if_empty(job.track_id);
            return Err(e);
        }
        Ok(())
    }

    /// Receives one part of a job's stems as the worker makes them (live
    /// stems, issue 16): `bytes` are little-endian f32 frames from frame `at`
    /// in the multistem layout (each stem's left and right, in source order)
    /// of stems `frames` long at the track's rate. They are served at once
    /// (windows, streams) and dropped when the job ends; the stems the job
    /// completes with are what is stored. Returns a second the listener sought
    /// to whose stems are not made yet: the worker should make them next.
    pub async fn put_part<B: AsRef<[u8]> + Send + 'static>(
        &self,
        id: i64,
        worker: &str,
        at: usize,
        frames: usize,
        stems: usize,
        bytes: B,
    ) -> AppResult<Option<f64>> {
        let job = self.held_by(id, worker).await?;
        let expected = known_sources(&job.model).map_or(
            [Source::FOUR.len(), Source::SIX.len()].contains(&stems),
            |set| set.len() == stems,
        );
        if !expected {
            return Err(AppError::BadStems(format!(
                "job {id}: {} does not separate into {stems} stems",
                job.model
            )));
        }
        let track = self.jobs.inner.library.track(job.track_id).await?;
        let rate = u32::try_from(track.sample_rate)
            .ok()
            .filter(|r| *r > 0)
            .ok_or_else(|| AppError::BadStems(format!("job {id}: the track has no sample rate")))?;
        // The parts' temporary file is as long as the stems say: bound it by
        // the track's length.
        let Some(duration) = track.duration_s else {
            return Err(AppError::BadStems(format!(
                "job {id}: the track's length is not known yet, so parts cannot be checked"
            )));
        };
        let seconds = frames as f64 / f64::from(rate);
        if (seconds - duration).abs() > LENGTH_SLACK_S {
            return Err(AppError::BadStems(format!(
                "job {id}: parts of stems {seconds:.2} s long, but the track is {duration:.2} s"
            )));
        }
        let live = self.jobs.remote_live(id, (job.progress, job.eta_s))?;
        let tmp = self.jobs.inner.media.tmp();
        let wanted = tokio::task::spawn_blocking(move || {
            let part = super::live::Part {
                rate,
                frames,
                stems,
                at,
                bytes: bytes.as_ref(),
            };
            super::live::receive_part(&live.stems, &tmp, &part)
        })
        .await
        .map_err(|e| AppError::Internal(format!("storing a part failed: {e}")))??;
        // Cancelled or taken over meanwhile: keep nothing of it.
        if let Err(e) = self.held_by(id, worker).await {
            self.jobs.drop_live(id);
            return Err(e);
        }
        self.jobs.job_changed(id);
        Ok(wanted)
    }

    /// Moves a worker's uploaded stems into place and marks the job done, once.
    /// Completing a job that is already done is a no-op (a retried request).
    /// The set must be the model's sources, each once (for a model file the
    /// station does not know, a complete four- or six-stem set), all of one
    /// length; anything else is refused with every upload of the job removed.
    pub async fn complete(&self, id: i64, worker: &str, sources: &[String]) -> AppResult<Job> {
        check_worker(worker)?;
        let current = self.jobs.job(id).await?;
        if current.status == JobStatus::Done {
            // A retried request. Uploads this worker made again in the meantime
            // (a stem re-sent while the first complete was being finished) are
            // of no use now: without this they stayed behind (seen once in CI,
            // a `.small4.job6.<worker>.tmp` after a station restart).
            let _ = std::fs::remove_dir_all(self.remote_staging(&current, worker));
            return Ok(current);
        }
        let job = self.held_by(id, worker).await?;
        let staging = self.remote_staging(&job, worker);
        let refuse = |e: AppError| {
            let _ = std::fs::remove_dir_all(&staging);
            self.jobs
                .inner
                .media
                .remove_track_stems_if_empty(job.track_id);
            e
        };
        let parsed = check_source_set(&job, sources).map_err(refuse)?;
        let mut stems = Vec::new();
        let mut missing = Vec::new();
        for s in &parsed {
            let path = MediaDir::staged_stem(&staging, s.name());
            if path.is_file() {
                stems.push((s.name().to_owned(), path));
            } else {
                missing.push(s.name());
            }
        }
        if !missing.is_empty() {
            return Err(AppError::StemsMissing(format!(
                "job {id}: stems {} have not been uploaded (or were lost in a restart): upload them again",
                missing.join(", ")
            )));
        }
        let extra: Vec<String> = std::fs::read_dir(&staging)
            .map_err(|e| AppError::io(&staging, e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !stems.iter().any(|(_, p)| p.file_name() == Some(n.as_ref())))
            .collect();
        if !extra.is_empty() {
            return Err(refuse(AppError::BadStems(format!(
                "job {id}: uploads that are not in the completed set: {}",
                extra.join(", ")
            ))));
        }
        let sandbox = self.jobs.inner.config.sandbox.clone();
        let paths: Vec<PathBuf> = stems.iter().map(|(_, p)| p.clone()).collect();
        let lengths = tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .map(|p| sandbox.probe(p).map(|i| i.frames))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| AppError::Internal(format!("checking stems failed: {e}")))?
        .map_err(|e| refuse(AppError::BadStems(format!("job {id}: {e}"))))?;
        if lengths.windows(2).any(|w| w[0] != w[1]) {
            let listed: Vec<String> = stems
                .iter()
                .zip(&lengths)
                .map(|((s, _), n)| format!("{s} {}", n.unwrap_or(0)))
                .collect();
            return Err(refuse(AppError::BadStems(format!(
                "job {id}: the stems differ in length (frames: {}); they must come from one separation",
                listed.join(", ")
            ))));
        }
        let result = self.jobs.finish_job(&job, worker, &staging, stems).await;
        let _ = std::fs::remove_dir_all(&staging);
        // Its parts were served until the finished stems were in place.
        self.jobs.drop_live(id);
        result?;
        self.jobs.job_changed(id);
        self.jobs.job(id).await
    }

    /// A worker gives up on a job with an error.
    pub async fn fail(&self, id: i64, worker: &str, error: &str) -> AppResult<()> {
        let job = self.held_by(id, worker).await?;
        self.jobs.fail_job(id, worker, error).await?;
        self.jobs.drop_live(id);
        let _ = std::fs::remove_dir_all(self.remote_staging(&job, worker));
        self.jobs
            .inner
            .media
            .remove_track_stems_if_empty(job.track_id);
        self.jobs.job_changed(id);
        Ok(())
    }

    /// A worker hands a job back (it is shutting down): queued again, and put on
    /// the queue again by the dispatcher.
    pub async fn release(&self, id: i64, worker: &str) -> AppResult<()> {
        let job = self.held_by(id, worker).await?;
        sqlx::query(
            "UPDATE jobs SET status = ?, worker = NULL, lease_until = NULL,
                attempts = attempts - 1, eta_s = NULL, dispatched = 0
             WHERE id = ? AND worker = ? AND status = ?",
        )
        .bind(JobStatus::Queued)
        .bind(id)
        .bind(worker)
        .bind(JobStatus::Running)
        .execute(&self.jobs.inner.db)
        .await?;
        self.jobs.drop_live(id);
        let _ = std::fs::remove_dir_all(self.remote_staging(&job, worker));
        self.jobs
            .inner
            .media
            .remove_track_stems_if_empty(job.track_id);
        self.jobs.job_changed(id);
        self.jobs.inner.jobs_queued.notify_one();
        Ok(())
    }

    /// Puts queued jobs on Redis until shutdown. Jobs whose worker vanished for
    /// twice the lease (their message lost with a Redis that kept no data) are
    /// queued and put on Redis again; a duplicate message is harmless, since a
    /// claim of a finished or held job does nothing.
    pub(crate) async fn dispatch_loop(&self, url: String) {
        let queue = match RedisQueue::new(&url) {
            Ok(q) => Arc::new(Mutex::new(q)),
            Err(e) => {
                tracing::error!("job queue: {e}");
                return;
            }
        };
        let shutdown = self.jobs.inner.shutdown.clone();
        let mut failing = false;
        while !shutdown.is_cancelled() {
            let notified = self.jobs.inner.jobs_queued.notified();
            match self.dispatch_once(&queue).await {
                Ok(n) => {
                    if failing {
                        tracing::info!("job queue: Redis is reachable again");
                        failing = false;
                    }
                    if n > 0 {
                        tracing::info!("job queue: {n} job(s) put on Redis");
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::error!("job queue: {e} (retrying)");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn dispatch_once(&self, queue: &Arc<Mutex<RedisQueue>>) -> AppResult<usize> {
        let now = now_ms();
        let lease = self.jobs.inner.config.job_lease.as_millis() as i64;
        self.jobs.fail_abandoned_jobs(now - 2 * lease).await?;
        sqlx::query(
            "UPDATE jobs SET status = ?, worker = NULL, lease_until = NULL, dispatched = 0
             WHERE status = ? AND lease_until < ?",
        )
        .bind(JobStatus::Queued)
        .bind(JobStatus::Running)
        .bind(now - 2 * lease)
        .execute(&self.jobs.inner.db)
        .await?;
        self.jobs.prune_remote_live().await?;
        let todo: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, priority FROM jobs WHERE status = ? AND dispatched = 0
             ORDER BY priority DESC, id",
        )
        .bind(JobStatus::Queued)
        .fetch_all(&self.jobs.inner.db)
        .await?;
        let mut sent = 0;
        for (id, priority) in todo {
            let q = Arc::clone(queue);
            tokio::task::spawn_blocking(move || -> AppResult<String> {
                let mut q = q
                    .lock()
                    .map_err(|_| AppError::Internal("the queue lock is poisoned".into()))?;
                q.publish(id, priority >= PRIORITY_INTERACTIVE)
            })
            .await
            .map_err(|e| AppError::Internal(format!("queue thread: {e}")))??;
            sqlx::query("UPDATE jobs SET dispatched = 1 WHERE id = ? AND status = ?")
                .bind(id)
                .bind(JobStatus::Queued)
                .execute(&self.jobs.inner.db)
                .await?;
            sent += 1;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_and_source_names_cannot_make_paths() {
        assert!(is_worker_name("host-1:4242#0"));
        for bad in ["", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(!is_worker_name(bad), "{bad:?}");
        }
        assert!(is_source_name("no_vocals"));
        for bad in ["../x", "Vocals", "a.flac", ""] {
            assert!(!is_source_name(bad), "{bad:?}");
        }
    }
}
