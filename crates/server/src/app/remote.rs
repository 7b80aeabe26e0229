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

use sha2::{Digest, Sha256};

use super::jobs::{Job, PRIORITY_INTERACTIVE};
use super::redis_queue::RedisQueue;
use super::status::JobStatus;
use super::{now_ms, AppError, AppResult, Jobs, MediaDir};
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

fn check_worker(worker: &str) -> AppResult<()> {
    if is_worker_name(worker) {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "{worker:?} is not a worker name (1-128 letters, digits and ._:#@-)"
        )))
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
        let tag: String = Sha256::digest(worker.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        self.jobs
            .inner
            .media
            .remote_staging(job.track_id, &job.model, job.id, &tag)
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
    ) -> AppResult<bool> {
        check_worker(worker)?;
        if !(0.0..=1.0).contains(&progress) {
            return Err(AppError::BadRequest("progress must be within 0..1".into()));
        }
        self.jobs.job(id).await?;
        let ours = self.jobs.renew_job(id, worker, progress, eta_s).await;
        self.jobs.job_changed(id);
        Ok(ours)
    }

    /// Receives one stem (FLAC) for a job the worker holds into the job's staging
    /// folder, after checking that it decodes. Nothing is kept on any failure.
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
        let dir = self.remote_staging(&job, worker);
        let dest = MediaDir::staged_stem(&dir, source);
        let shown = format!("stem {source} of job {id}");
        tokio::task::spawn_blocking(move || -> AppResult<()> {
            match sonantica_audio::Decoder::open(staged.path()) {
                Ok(d) if d.info().codec == "flac" => {}
                Ok(d) => {
                    return Err(AppError::UnsupportedMedia(format!(
                        "{shown}: expected FLAC, got {}",
                        d.info().codec
                    )))
                }
                Err(e) => return Err(AppError::UnsupportedMedia(format!("{shown}: {e}"))),
            }
            std::fs::create_dir_all(&dir).map_err(|e| AppError::io(&dir, e))?;
            staged
                .persist(&dest)
                .map_err(|e| AppError::io(&dest, e.error))?;
            Ok(())
        })
        .await
        .map_err(|e| AppError::Internal(format!("storing a stem failed: {e}")))?
    }

    /// Moves a worker's uploaded stems into place and marks the job done, once.
    /// Completing a job that is already done is a no-op (a retried request).
    pub async fn complete(&self, id: i64, worker: &str, sources: &[String]) -> AppResult<Job> {
        check_worker(worker)?;
        let current = self.jobs.job(id).await?;
        if current.status == JobStatus::Done {
            return Ok(current);
        }
        let job = self.held_by(id, worker).await?;
        let staging = self.remote_staging(&job, worker);
        let mut stems = Vec::new();
        let mut missing = Vec::new();
        for s in sources {
            if !is_source_name(s) {
                return Err(AppError::BadRequest(format!("{s:?} is not a source name")));
            }
            let path = MediaDir::staged_stem(&staging, s);
            if path.is_file() {
                stems.push((s.clone(), path));
            } else {
                missing.push(s.as_str());
            }
        }
        if !missing.is_empty() {
            return Err(AppError::StemsMissing(format!(
                "job {id}: stems {} have not been uploaded (or were lost in a restart): upload them again",
                missing.join(", ")
            )));
        }
        let parsed: Vec<sonantica_mix::Source> = sources
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|e: sonantica_mix::ParseSourceError| AppError::BadRequest(e.to_string()))?;
        check_complete(&parsed).map_err(|m| AppError::BadRequest(format!("job {id}: {m}")))?;
        let result = self.jobs.finish_job(&job, worker, &staging, stems).await;
        let _ = std::fs::remove_dir_all(&staging);
        result?;
        self.jobs.job_changed(id);
        self.jobs.job(id).await
    }

    /// A worker gives up on a job with an error.
    pub async fn fail(&self, id: i64, worker: &str, error: &str) -> AppResult<()> {
        let job = self.held_by(id, worker).await?;
        self.jobs.fail_job(id, worker, error).await?;
        let _ = std::fs::remove_dir_all(self.remote_staging(&job, worker));
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
        let _ = std::fs::remove_dir_all(self.remote_staging(&job, worker));
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
