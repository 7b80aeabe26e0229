//! `sonantica worker`: takes separation jobs from a station's Redis queue,
//! separates locally and uploads the stems to the station. It needs no shared
//! filesystem and no database: only the station's URL, its worker token, and Redis.
//!
//! A job's Redis message is acknowledged only once the station has stored the
//! stems (or says the job needs no work). While working, the worker reports
//! progress (which renews its hold on the job) and refreshes its message, so no
//! other worker takes it; if this process dies, the message goes to another
//! worker after the visibility timeout. On SIGTERM or Ctrl-C the current job is
//! stopped and handed back to the queue.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sonantica_demucs::{load_separator_on, Separator};
use sonantica_pipeline::models::{resolve_job_model, store_dir};
use sonantica_pipeline::sandbox::Isolation;
use sonantica_pipeline::separate::{
    separate_file_live, ClipMode, LiveStems, SeparateSettings, Separated,
};
use sonantica_pipeline::{PipelineError, PipelineResult};
use sonantica_server::app::redis_queue::{Delivery, RedisQueue};
use sonantica_server::http::error::{ErrorBody, ErrorCode};
use sonantica_server::http::workers::{
    worker_query, ClaimOutcome, ClaimReply, CompleteRequest, FailRequest, PartReply, ProgressReply,
    ProgressRequest, WorkerRequest, PART_MAX_BYTES,
};

use crate::interrupt;

/// Arguments of `sonantica worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The station's address, e.g. http://station.local:7878.
    #[arg(long, value_name = "URL")]
    server: String,
    /// The station's worker token (`serve --worker-token`; not the access
    /// token, which the worker API refuses).
    #[arg(long, env = "SONANTICA_WORKER_TOKEN", hide_env_values = true)]
    worker_token: String,
    /// The Redis queue the station was started with (`serve --queue`).
    #[arg(long, value_name = "redis://HOST:PORT")]
    queue: String,
    /// Threads for separation (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The model used for jobs that name it: htdemucs, htdemucs_ft, htdemucs_6s
    /// (from this machine's model store) or a model file (jobs name it by its
    /// file stem). Jobs naming other models are looked up in the store.
    #[arg(long, default_value = "htdemucs", env = "SONANTICA_MODEL")]
    model: String,
    /// This machine's model store (default: $SONANTICA_MODELS or
    /// ~/.local/share/sonantica/models).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Seconds a job's message may go without a heartbeat before another worker
    /// takes it over.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    visibility_timeout: f64,
    /// Where the network runs: auto (a hardware GPU if there is one, else the
    /// CPU), cpu, or gpu (any GPU, Mesa's software lavapipe included).
    #[arg(long, env = "SONANTICA_DEVICE", default_value = "auto", value_parser = crate::separate::parse_device)]
    device: sonantica_demucs::gpu::DeviceChoice,
    /// This worker's name in job status (default: HOST:PID).
    #[arg(long)]
    name: Option<String>,
}

/// The models loaded (one at a time) and the GPU they run on, if any.
struct Models {
    loaded: HashMap<PathBuf, Arc<Separator>>,
    gpu: Option<sonantica_demucs::gpu::Gpu>,
}

/// The station's API, with retries through restarts.
#[derive(Clone)]
struct Station {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// Sends one request with the agent and the `Authorization` value.
type Send<'a> =
    &'a dyn Fn(&ureq::Agent, &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>;

/// A reply: status and body.
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    /// The body as one of the station's reply types.
    fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).context("the station's answer is not what it should be")
    }

    /// The error body of a refusal, if it is one.
    fn error(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }

    fn detail(&self) -> String {
        self.error()
            .map(|e| e.detail)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }

    /// The stable code of a refusal (what to branch on, never the detail's text).
    fn code(&self) -> Option<ErrorCode> {
        self.error().map(|e| e.error)
    }
}

impl Station {
    /// Sends a request, retrying while the station cannot be reached or answers
    /// 5xx (it may be restarting), until `give_up` says stop.
    fn call(&self, what: &str, give_up: &dyn Fn() -> bool, send: Send<'_>) -> Result<Reply> {
        let auth = format!("Bearer {}", self.token);
        let mut wait = Duration::from_millis(200);
        let mut warned = false;
        loop {
            let outcome = send(&self.agent, &auth).and_then(|mut r| {
                let status = r.status().as_u16();
                let body = r.body_mut().with_config().limit(1 << 20).read_to_vec()?;
                Ok(Reply { status, body })
            });
            match outcome {
                Ok(r) if r.status < 500 => return Ok(r),
                Ok(r) => {
                    if !warned {
                        eprintln!(
                            "{what}: the station answered {} ({}); retrying",
                            r.status,
                            r.detail()
                        );
                        warned = true;
                    }
                }
                Err(e) => {
                    if !warned {
                        eprintln!("{what}: {e}; retrying until the station is back");
                        warned = true;
                    }
                }
            }
            if give_up() {
                bail!("{what}: stopped while the station was unreachable");
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    fn post(&self, path: &str, body: &impl Serialize, give_up: &dyn Fn() -> bool) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let text = serde_json::to_string(body)?;
        self.call(path, give_up, &|a, auth| {
            a.post(&url)
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(text.as_str())
        })
    }

    /// Downloads `path` into `dest`.
    fn download(&self, path: &str, dest: &Path, give_up: &dyn Fn() -> bool) -> Result<()> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let mut wait = Duration::from_millis(200);
        loop {
            let attempt = (|| -> Result<Option<String>> {
                let mut r = self.agent.get(&url).header("Authorization", &auth).call()?;
                if r.status() != 200 {
                    let mut b = Vec::new();
                    let _ = r.body_mut().as_reader().take(4096).read_to_end(&mut b);
                    return Ok(Some(format!(
                        "{}: {}",
                        r.status(),
                        String::from_utf8_lossy(&b)
                    )));
                }
                let mut f = std::fs::File::create(dest)?;
                std::io::copy(&mut r.body_mut().as_reader(), &mut f)?;
                Ok(None)
            })();
            match attempt {
                Ok(None) => return Ok(()),
                Ok(Some(err)) if !err.starts_with('5') => bail!("downloading {path}: {err}"),
                _ if give_up() => bail!("downloading {path}: stopped"),
                _ => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn put_file(&self, path: &str, file: &Path, give_up: &dyn Fn() -> bool) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        self.call(path, give_up, &|a, auth| {
            let f = std::fs::File::open(file).map_err(ureq::Error::Io)?;
            a.put(&url)
                .header("Authorization", auth)
                .header("Content-Type", "audio/flac")
                .send(f)
        })
    }
}

/// Runs the worker until SIGTERM or Ctrl-C.
pub fn run(args: WorkerArgs) -> Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    if !(args.visibility_timeout > 0.0 && args.visibility_timeout.is_finite()) {
        bail!("--visibility-timeout must be positive");
    }
    sonantica_demucs::ops::set_threads(threads);
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into());
        format!("{host}:{}", std::process::id())
    });
    if !sonantica_server::app::remote::is_worker_name(&name) {
        bail!("--name {name:?}: use 1-128 letters, digits and ._:#@-");
    }
    let store = store_dir(args.models_dir.as_deref());
    let station = Station {
        base: args.server.trim_end_matches('/').to_owned(),
        token: args.worker_token.clone(),
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into(),
    };
    let mut queue = RedisQueue::new(&args.queue)?;
    let visibility = Duration::from_secs_f64(args.visibility_timeout);
    let gpu = args
        .device
        .open()
        .with_context(|| format!("--device {}", args.device))?;
    let mut models = Models {
        loaded: HashMap::new(),
        gpu,
    };
    eprintln!(
        "worker {name}: taking jobs from {} for {} on {}",
        args.queue,
        station.base,
        models.gpu.as_ref().map_or_else(
            || format!("the CPU ({threads} threads)"),
            |g| g.adapter().to_string()
        )
    );
    let mut queue_down = false;
    while !interrupt::interrupted() {
        let delivery = match queue.next(&name, visibility, Duration::from_secs(1)) {
            Ok(d) => {
                if queue_down {
                    eprintln!("worker {name}: Redis is reachable again");
                    queue_down = false;
                }
                d
            }
            Err(e) => {
                if !queue_down {
                    eprintln!("worker {name}: {e}; retrying");
                    queue_down = true;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let Some(d) = delivery else { continue };
        let job = Job {
            station: &station,
            queue: &mut queue,
            delivery: d,
            name: &name,
            model_flag: &args.model,
            store: &store,
        };
        if let Err(e) = job.run(&mut models) {
            eprintln!("worker {name}: {e:#}");
        }
    }
    eprintln!("worker {name}: stopped");
    Ok(())
}

struct Job<'a> {
    station: &'a Station,
    queue: &'a mut RedisQueue,
    delivery: Delivery,
    name: &'a str,
    model_flag: &'a str,
    store: &'a Path,
}

impl Job<'_> {
    /// Acknowledges the message, retrying while Redis is away (a message left
    /// unacknowledged would only be delivered again and found finished).
    fn ack(&mut self) {
        for attempt in 0..30 {
            match self.queue.ack(&self.delivery) {
                Ok(()) => {
                    if attempt > 0 {
                        eprintln!("job {}: acknowledged on Redis", self.delivery.job_id);
                    }
                    return;
                }
                Err(e) if attempt == 0 => {
                    eprintln!("job {}: acknowledging: {e}; retrying", self.delivery.job_id);
                }
                Err(_) => {}
            }
            if interrupt::interrupted() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn model_path(&self, model: &str) -> Result<PathBuf> {
        Ok(resolve_job_model(model, self.model_flag, self.store)?)
    }

    /// Claims the job, separates its track and reports the result. Every way
    /// out acknowledges the message, except a job another live worker holds
    /// (its message comes back if that worker dies).
    fn run(mut self, models: &mut Models) -> Result<()> {
        let id = self.delivery.job_id;
        let Some(reply) = self.claim()? else {
            return Ok(());
        };
        let (model, track) = (reply.job.model, reply.job.track_id);
        let started = Instant::now();
        eprintln!("job {id}: separating track {track} with {model}");
        let separator = match self.separator(&model, models) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("on worker {}: {e:#}", self.name);
                return self.fail(msg);
            }
        };
        let work = tempfile::tempdir().context("cannot create a temporary folder")?;
        let input = work.path().join("input");
        self.station
            .download(&reply.audio_url, &input, &|| interrupt::interrupted())?;
        let parts = RemoteParts::new(self.station, id, self.name);
        let from_s = reply.job.from_s;
        match self.separate(separator, input, work.path().join("stems"), from_s, parts)? {
            Err(PipelineError::Cancelled) if interrupt::interrupted() => {
                // Shutting down: hand the job back; the station queues it again.
                eprintln!("job {id}: handed back to the queue");
                self.station.post(
                    &format!("/api/worker/jobs/{id}/release"),
                    &WorkerRequest {
                        worker: self.name.to_owned(),
                    },
                    &|| false,
                )?;
                self.ack();
                Ok(())
            }
            Err(PipelineError::Cancelled) => {
                eprintln!("job {id}: cancelled on the station");
                self.ack();
                Ok(())
            }
            Err(e) => {
                let msg = format!("on worker {}: {e}", self.name);
                self.fail(msg)
            }
            Ok(done) => {
                if let Some(refused) = self.upload(id, &done.stems)? {
                    return self.fail(format!("on worker {}: {refused}", self.name));
                }
                eprintln!(
                    "job {id}: done in {:.1} s ({:.1} s of audio)",
                    started.elapsed().as_secs_f64(),
                    done.seconds
                );
                self.ack();
                Ok(())
            }
        }
    }

    /// Asks the station for the job: its reply when this worker now holds it;
    /// `None` (message acknowledged unless another worker holds the job) when
    /// there is nothing to do.
    fn claim(&mut self) -> Result<Option<ClaimReply>> {
        let id = self.delivery.job_id;
        let claim = self.station.post(
            &format!("/api/worker/jobs/{id}/claim"),
            &WorkerRequest {
                worker: self.name.to_owned(),
            },
            &|| interrupt::interrupted(),
        )?;
        if claim.status == 404 {
            self.ack();
            return Ok(None);
        }
        if claim.status != 200 {
            bail!(
                "job {id}: claim refused: {} {}",
                claim.status,
                claim.detail()
            );
        }
        let reply: ClaimReply = claim.json()?;
        match reply.outcome {
            ClaimOutcome::Claimed => Ok(Some(reply)),
            ClaimOutcome::Finished => {
                self.ack();
                Ok(None)
            }
            // Another live worker has it; its message comes back if it dies.
            ClaimOutcome::Busy => Ok(None),
        }
    }

    /// The job's model, loaded once and kept for the next job that names it.
    fn separator(&self, model: &str, models: &mut Models) -> Result<Arc<Separator>> {
        let p = self.model_path(model)?;
        if let Some(s) = models.loaded.get(&p) {
            return Ok(Arc::clone(s));
        }
        let (s, stayed) = load_separator_on(&p, models.gpu.as_ref())?;
        if let Some(why) = stayed {
            eprintln!("{why}");
        }
        let s = Arc::new(s);
        models.loaded.clear();
        models.loaded.insert(p, Arc::clone(&s));
        Ok(s)
    }

    /// Reports the job failed and acknowledges its message.
    fn fail(&mut self, error: String) -> Result<()> {
        let id = self.delivery.job_id;
        eprintln!("job {id}: failed: {error}");
        self.station.post(
            &format!("/api/worker/jobs/{id}/fail"),
            &FailRequest {
                worker: self.name.to_owned(),
                error,
            },
            &|| false,
        )?;
        self.ack();
        Ok(())
    }

    /// Separates `input` into `out_dir` on a thread while this one reports
    /// progress (which says whether to go on) and refreshes the message, once
    /// a second. The outer error is this worker's; the inner one the
    /// separation's.
    fn separate(
        &mut self,
        separator: Arc<Separator>,
        input: PathBuf,
        out_dir: PathBuf,
        from_s: Option<f64>,
        mut parts: RemoteParts,
    ) -> Result<Result<Separated, PipelineError>> {
        let id = self.delivery.job_id;
        let cancel = Arc::clone(&parts.cancel);
        let progress = Arc::new(Mutex::new((0.0f64, None::<f64>)));
        let settings = SeparateSettings {
            // The station's file is decoded in a sandboxed child of this binary.
            decode_in: Isolation::current_exe()?,
            // Parts are served as they come, so each must be final when made:
            // a stem past full scale is clamped there (as the station's own
            // jobs do) rather than all stems scaled by the whole track's peak.
            clip: ClipMode::Clamp,
            from_s,
            ..SeparateSettings::default()
        };
        let engine = Arc::clone(&separator);
        let handle = {
            let cancel = Arc::clone(&cancel);
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || {
                let t0 = Instant::now();
                separate_file_live(
                    &input,
                    &separator,
                    &out_dir,
                    &settings,
                    &mut |p| {
                        crate::alloc::release_freed();
                        let frac = p.done as f64 / p.total.max(1) as f64;
                        let eta = (p.done > 0).then(|| {
                            t0.elapsed().as_secs_f64() / p.done as f64 * (p.total - p.done) as f64
                        });
                        if let Ok(mut g) = progress.lock() {
                            *g = (frac.min(1.0), eta);
                        }
                    },
                    &|| cancel.load(Ordering::SeqCst) || interrupt::interrupted(),
                    &mut parts,
                )
            })
        };
        let mut last_beat = Instant::now() - Duration::from_secs(10);
        let mut touch_failed = false;
        let mut reported = String::new();
        loop {
            let finished = handle.is_finished();
            // The device as the run ended (a GPU given up during it) is
            // reported once more before the stems go up.
            let device = engine.device();
            if finished && device == reported {
                break;
            }
            if finished || last_beat.elapsed() >= Duration::from_secs(1) {
                last_beat = Instant::now();
                let (p, eta) = progress.lock().map(|g| *g).unwrap_or((0.0, None));
                // One attempt per beat: a station that is restarting is skipped.
                let r = self.station.post(
                    &format!("/api/worker/jobs/{id}/progress"),
                    &ProgressRequest {
                        worker: self.name.to_owned(),
                        progress: p,
                        eta_s: eta,
                        device: Some(device.clone()),
                    },
                    &|| true,
                );
                reported = device;
                if let Ok(r) = r {
                    let go_on = r.json::<ProgressReply>().ok().map(|v| v.go_on);
                    if r.status == 200 && go_on == Some(false) || r.status == 404 {
                        cancel.store(true, Ordering::SeqCst);
                    }
                }
                match self.queue.touch(&self.delivery, self.name) {
                    Ok(()) => touch_failed = false,
                    Err(e) if !touch_failed => {
                        // The job goes on; its message is acknowledged later.
                        eprintln!("job {id}: refreshing the message: {e}");
                        touch_failed = true;
                    }
                    Err(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("the separation thread panicked"))
    }

    /// Uploads every stem and completes the job; again from the start if the
    /// station lost uploads in a restart. `Some(why)` when the station refused
    /// the stems as not fitting the job (422): the job should fail.
    fn upload(&mut self, id: i64, stems: &[(String, PathBuf)]) -> Result<Option<String>> {
        let never = || false;
        let worker = worker_query(self.name);
        for attempt in 1..=5 {
            for (source, path) in stems {
                let r = self.station.put_file(
                    &format!("/api/worker/jobs/{id}/stems/{source}?{worker}"),
                    path,
                    &never,
                )?;
                match r.status {
                    204 => {}
                    409 => {
                        eprintln!("job {id}: {}; dropping the result", r.detail());
                        return Ok(None);
                    }
                    422 => return Ok(Some(r.detail())),
                    s => bail!("job {id}: uploading {source}: {s} {}", r.detail()),
                }
            }
            let r = self.station.post(
                &format!("/api/worker/jobs/{id}/complete"),
                &CompleteRequest {
                    worker: self.name.to_owned(),
                    sources: stems.iter().map(|(s, _)| s.clone()).collect(),
                },
                &never,
            )?;
            match r.status {
                200 => return Ok(None),
                409 if r.code() == Some(ErrorCode::StemsMissing) && attempt < 5 => continue,
                409 => {
                    eprintln!("job {id}: {}; dropping the result", r.detail());
                    return Ok(None);
                }
                422 => return Ok(Some(r.detail())),
                s => bail!("job {id}: completing: {s} {}", r.detail()),
            }
        }
        bail!("job {id}: the station kept losing the uploaded stems")
    }
}

/// Sends the stems to the station part by part as the engine makes them, so
/// that its listeners hear them while the job runs (live stems), and hands the
/// engine the second a listener sought to. The parts are what the finished
/// stems will hold; the station keeps them only until the job completes.
struct RemoteParts {
    station: Station,
    /// `/api/worker/jobs/{id}/parts?worker=NAME`.
    path: String,
    /// Set when the station says the job is not this worker's any more; the
    /// heartbeat sets it too.
    cancel: Arc<AtomicBool>,
    frames: usize,
    bytes: Vec<u8>,
    wanted: Option<f64>,
    /// The station refused a part for a reason that will not pass (an older
    /// station, a part it cannot check) or stayed away: the job goes on
    /// without parts.
    off: bool,
}

impl RemoteParts {
    fn new(station: &Station, id: i64, worker: &str) -> Self {
        Self {
            station: station.clone(),
            path: format!("/api/worker/jobs/{id}/parts?{}", worker_query(worker)),
            cancel: Arc::new(AtomicBool::new(false)),
            frames: 0,
            bytes: Vec::new(),
            wanted: None,
            off: false,
        }
    }

    /// Sends `self.bytes` (frames from `at`, `stems` stems).
    fn send(&mut self, at: usize, stems: usize) -> PipelineResult<()> {
        let url = format!(
            "{}{}&at={at}&frames={}&stems={stems}",
            self.station.base, self.path, self.frames
        );
        // A station that is away for long stops the parts, not the job: its
        // stems are uploaded whole at the end as always.
        let deadline = Instant::now() + Duration::from_secs(20);
        let cancel = Arc::clone(&self.cancel);
        let stopped = move || cancel.load(Ordering::SeqCst) || interrupt::interrupted();
        let give_up = || stopped() || Instant::now() > deadline;
        let bytes = &self.bytes;
        let reply = self
            .station
            .call("sending a part of the stems", &give_up, &|a, auth| {
                a.put(&url)
                    .header("Authorization", auth)
                    .header("Content-Type", "application/octet-stream")
                    .send(&bytes[..])
            });
        match reply {
            Ok(r) if r.status == 200 => {
                if let Some(s) = r.json::<PartReply>().ok().and_then(|p| p.wanted_s) {
                    self.wanted = Some(s);
                }
                Ok(())
            }
            // Cancelled on the station, or taken over: stop.
            Ok(r) if r.status == 409 => {
                self.cancel.store(true, Ordering::SeqCst);
                Err(PipelineError::Cancelled)
            }
            Ok(r) => {
                eprintln!(
                    "live stems: the station refused a part ({} {}); it gets the stems when they are done",
                    r.status,
                    r.detail()
                );
                self.off = true;
                Ok(())
            }
            Err(_) if stopped() => Err(PipelineError::Cancelled),
            Err(e) => {
                eprintln!("live stems: {e:#}; the station gets the stems when they are done");
                self.off = true;
                Ok(())
            }
        }
    }
}

impl LiveStems for RemoteParts {
    fn begin(&mut self, _rate: u32, frames: usize) -> PipelineResult<()> {
        self.frames = frames;
        Ok(())
    }

    fn ready(&mut self, at: usize, block: &[Vec<Vec<f32>>]) -> PipelineResult<()> {
        let n = block.first().and_then(|s| s.first()).map_or(0, Vec::len);
        let channels = 2 * block.len();
        // A quarter of the station's limit per request.
        let step = (PART_MAX_BYTES / 4 / (channels * 4)).max(1);
        let mut from = 0;
        while from < n && !self.off {
            let to = (from + step).min(n);
            self.bytes.clear();
            for i in from..to {
                for stem in block {
                    // The multistem layout: each stem's first and last channel.
                    for c in [&stem[0], &stem[stem.len() - 1]] {
                        self.bytes.extend_from_slice(&c[i].to_le_bytes());
                    }
                }
            }
            self.send(at + from, block.len())?;
            from = to;
        }
        Ok(())
    }

    fn wanted_s(&mut self) -> Option<f64> {
        self.wanted.take()
    }
}
