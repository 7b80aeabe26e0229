//! Reading untrusted media without risking the process that asks.
//!
//! A crafted container can make a decoder ask for tens of gigabytes (an MP4
//! `stts` entry count of `0xFFFFFFFF`) or loop: an allocation failure cannot be
//! caught in Rust, it aborts the whole process. So the station and `sonantica
//! analyze` read files they did not write in a child process first: the same
//! binary, run as `sonantica sandbox TASK FILE`, which lowers its own
//! address-space and CPU-time limits before it opens the file and answers with a
//! JSON line. A child that aborts, is killed or runs past its time is a clean
//! error naming the file; the parent carries on.
//!
//! Three tasks: `probe` reads the headers and tags (what an upload or a scan
//! stores); `stream` decodes the file and sends its samples to the parent, which
//! analyses or separates them without ever parsing the container itself;
//! `cover` makes an album cover from a picture in the file or an image file.
//!
//! [`Isolation::InProcess`] does the same work in this process, for files the
//! caller trusts (its own stems) and for tests of the parent's logic.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sonantica_audio::{AudioError, AudioInfo, Decoder};

use crate::{PipelineError, PipelineResult};

/// Longest tag value kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_TAG_BYTES: usize = 64 * 1024;
/// Most tag bytes kept per file; tags past it are dropped.
pub const MAX_TAGS_BYTES: usize = 1024 * 1024;

/// What a child may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Address space, bytes.
    pub memory_bytes: u64,
    /// CPU time, seconds.
    pub cpu_seconds: u64,
    /// Wall-clock time before the child is killed.
    pub wall: Duration,
}

impl Default for Limits {
    /// 1 GiB of address space (a decoder needs tens of MB; the analysis keeps a
    /// few MB per hour of audio), 10 minutes of CPU and 15 of wall clock: far
    /// beyond any honest file (a 20-minute track analyses in seconds).
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            cpu_seconds: 600,
            wall: Duration::from_secs(900),
        }
    }
}

/// Where untrusted files are read.
#[derive(Debug, Clone, Default)]
pub enum Isolation {
    /// In this process: for trusted files and tests.
    #[default]
    InProcess,
    /// In a child process: `exe sandbox TASK FILE` under `limits`.
    Child {
        /// The `sonantica` binary.
        exe: PathBuf,
        /// What the child may use.
        limits: Limits,
    },
}

impl Isolation {
    /// A child of the running binary (what `sonantica` itself uses).
    pub fn current_exe() -> PipelineResult<Self> {
        let exe = std::env::current_exe()
            .map_err(|e| PipelineError::io("the running sonantica binary", e))?;
        Ok(Isolation::Child {
            exe,
            limits: Limits::default(),
        })
    }

    /// Reads a file's headers and tags (tags capped at [`MAX_TAG_BYTES`] a value
    /// and [`MAX_TAGS_BYTES`] a file).
    pub fn probe(&self, path: &Path) -> PipelineResult<AudioInfo> {
        match self {
            Isolation::InProcess => probe_here(path),
            Isolation::Child { exe, limits } => match run_child(exe, limits, Task::Probe, path)? {
                Answer::Info(info) => Ok(info),
                other => Err(unexpected(path, &other)),
            },
        }
    }

    /// Decodes the file in the child and streams its samples here (see
    /// [`ChildStream`]); in-process, a plain decoder.
    pub fn stream(&self, path: &Path) -> PipelineResult<Stream> {
        match self {
            Isolation::InProcess => Ok(Stream::Here(Decoder::open(path)?)),
            Isolation::Child { exe, limits } => Ok(Stream::Child(Box::new(ChildStream::open(
                exe, limits, path,
            )?))),
        }
    }

    /// The album cover in `path` (an audio file's picture, or an image file)
    /// as a small JPEG (see [`crate::cover`]); `None` when there is none.
    pub fn cover(&self, path: &Path) -> PipelineResult<Option<Vec<u8>>> {
        match self {
            Isolation::InProcess => crate::cover::cover_of(path),
            Isolation::Child { exe, limits } => match run_child(exe, limits, Task::Cover, path)? {
                Answer::Cover(c) => Ok(c),
                other => Err(unexpected(path, &other)),
            },
        }
    }

    /// Runs every Inspector meter over the file, which is decoded in the
    /// sandbox and streamed here: this process never parses the container.
    pub fn analyze(
        &self,
        path: &Path,
        progress: impl FnMut(u64),
    ) -> PipelineResult<crate::analysis::Analysis> {
        let mut a = crate::analysis::analyze_source(self.stream(path)?, path, progress)?;
        cap_tags(&mut a.info.tags);
        Ok(a)
    }
}

/// What a child is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// [`Isolation::probe`].
    Probe,
    /// [`Isolation::stream`].
    Stream,
    /// [`Isolation::cover`].
    Cover,
}

impl Task {
    /// The name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Task::Probe => "probe",
            Task::Stream => "stream",
            Task::Cover => "cover",
        }
    }

    /// The task named `name`.
    pub fn from_name(name: &str) -> Option<Task> {
        [Task::Probe, Task::Stream, Task::Cover]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// One line of a child's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Info(AudioInfo),
    Decoded(u64),
    Cover(Option<Vec<u8>>),
    Error(ChildError),
}

/// An error, as the child reports it (the parent rebuilds it with its path).
#[derive(Debug, Serialize, Deserialize)]
struct ChildError {
    kind: ErrorKind,
    detail: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ErrorKind {
    Io,
    Empty,
    Unsupported,
    Corrupt,
    Other,
}

fn unexpected(path: &Path, answer: &Answer) -> PipelineError {
    PipelineError::Internal(format!(
        "{}: the sandbox answered {answer:?}",
        path.display()
    ))
}

fn probe_here(path: &Path) -> PipelineResult<AudioInfo> {
    let mut info = Decoder::open(path)?.info().clone();
    cap_tags(&mut info.tags);
    Ok(info)
}

/// Keeps tags within [`MAX_TAG_BYTES`] a value and [`MAX_TAGS_BYTES`] in all.
pub fn cap_tags(tags: &mut Vec<(String, String)>) {
    let mut total = 0usize;
    tags.retain_mut(|(k, v)| {
        for s in [&mut *k, &mut *v] {
            if s.len() > MAX_TAG_BYTES {
                let mut end = MAX_TAG_BYTES;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
        }
        total += k.len() + v.len();
        total <= MAX_TAGS_BYTES
    });
}

/// A running child with its watcher (the wall clock) and its stderr reader.
struct Spawned {
    child: Arc<Mutex<Child>>,
    stdout: Option<ChildStdout>,
    err_reader: Option<std::thread::JoinHandle<String>>,
    done_tx: Option<std::sync::mpsc::Sender<()>>,
    watcher: Option<std::thread::JoinHandle<()>>,
    started: Instant,
}

fn spawn(exe: &Path, limits: &Limits, task: Task, path: &Path) -> PipelineResult<Spawned> {
    let mut child = Command::new(exe)
        .arg("sandbox")
        .arg(task.name())
        .arg("--memory-bytes")
        .arg(limits.memory_bytes.to_string())
        .arg("--cpu-seconds")
        .arg(limits.cpu_seconds.to_string())
        .arg("--")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| PipelineError::io(exe, e))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        return Err(PipelineError::Internal("the sandbox has no pipes".into()));
    };
    // The wall clock: a watcher kills a child that outlives its limit. The
    // reading thread holds the lock only to wait, after the child closed its
    // output.
    let child = Arc::new(Mutex::new(child));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let wall = limits.wall;
    let watched = Arc::clone(&child);
    let watcher = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(wall) {
            if let Ok(mut c) = watched.lock() {
                let _ = c.kill();
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.by_ref().take(64 * 1024).read_to_end(&mut text);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        String::from_utf8_lossy(&text).into_owned()
    });
    Ok(Spawned {
        child,
        stdout: Some(stdout),
        err_reader: Some(err_reader),
        done_tx: Some(done_tx),
        watcher: Some(watcher),
        started: Instant::now(),
    })
}

impl Spawned {
    /// Waits for the child (after its output ended): its status and stderr.
    fn finish(&mut self) -> PipelineResult<(std::process::ExitStatus, String)> {
        self.stdout = None;
        let status = match self.child.lock() {
            Ok(mut c) => c.wait().map_err(|e| PipelineError::io("the sandbox", e)),
            Err(_) => Err(PipelineError::Internal(
                "the sandbox lock is poisoned".into(),
            )),
        };
        if let Some(tx) = self.done_tx.take() {
            let _ = tx.send(());
        }
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        let stderr_text = self
            .err_reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        Ok((status?, stderr_text))
    }

    /// Why a child ended without a proper answer, as an error about `path`.
    fn failure(&mut self, path: &Path, limits: &Limits) -> PipelineError {
        let (status, stderr_text) = match self.finish() {
            Ok(r) => r,
            Err(e) => return e,
        };
        let why = if self.started.elapsed() >= limits.wall {
            format!("reading it took longer than {} s", limits.wall.as_secs())
        } else if let Some(panic) =
            stderr_text
                .lines()
                .find(|l| l.contains("panicked at"))
                .map(|l| {
                    // The message is on the lines after "panicked at FILE:LINE:COL:".
                    let rest = stderr_text.split_once(l).map_or("", |(_, r)| r);
                    rest.lines()
                        .map(str::trim)
                        .find(|m| !m.is_empty() && !m.starts_with("stack backtrace"))
                        .unwrap_or("no message")
                        .to_owned()
                })
        {
            format!("the decoder failed on it ({panic})")
        } else if stderr_text.contains("memory allocation") {
            format!(
                "it asks for more than {} MB of memory",
                limits.memory_bytes >> 20
            )
        } else {
            exit_reason(&status, limits)
        };
        PipelineError::Unreadable {
            path: path.to_path_buf(),
            why,
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A reader that stops early (an error in the parent) ends the child.
        if self.watcher.is_some() {
            if let Ok(mut c) = self.child.lock() {
                let _ = c.kill();
            }
            let _ = self.finish();
        }
    }
}

/// Runs `task` on `path` in a child and reads its answer.
fn run_child(exe: &Path, limits: &Limits, task: Task, path: &Path) -> PipelineResult<Answer> {
    let mut spawned = spawn(exe, limits, task, path)?;
    let stdout = spawned
        .stdout
        .take()
        .ok_or_else(|| PipelineError::Internal("the sandbox has no output".into()))?;
    let mut last = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Ok(a) = serde_json::from_str::<Answer>(&line) {
            last = Some(a);
        }
    }
    match last {
        Some(Answer::Error(e)) => {
            let _ = spawned.finish();
            Err(rebuild(path, e))
        }
        Some(a) => match spawned.finish() {
            Ok((status, _)) if status.success() => Ok(a),
            _ => Err(spawned.failure(path, limits)),
        },
        None => Err(spawned.failure(path, limits)),
    }
}

/// The end of a stream's binary blocks: a JSON answer line follows.
const END_OF_BLOCKS: u32 = u32::MAX;

/// A file decoded in a child and streamed to this process as planar f32 blocks
/// (the child's stdout: the [`AudioInfo`] as a JSON line, then for each block
/// its frame count as u32 and every channel's samples as f32, in the machine's
/// byte order (parent and child are the same binary on the same machine), then
/// [`END_OF_BLOCKS`] and a JSON answer). This process never parses the file's
/// container.
pub struct ChildStream {
    spawned: Spawned,
    out: BufReader<ChildStdout>,
    info: AudioInfo,
    planes: Vec<Vec<f32>>,
    path: PathBuf,
    limits: Limits,
    done: bool,
}

impl ChildStream {
    fn open(exe: &Path, limits: &Limits, path: &Path) -> PipelineResult<Self> {
        let mut spawned = spawn(exe, limits, Task::Stream, path)?;
        let stdout = spawned
            .stdout
            .take()
            .ok_or_else(|| PipelineError::Internal("the sandbox has no output".into()))?;
        let mut out = BufReader::with_capacity(1 << 20, stdout);
        let mut line = String::new();
        let info = match out.read_line(&mut line) {
            Ok(n) if n > 0 => match serde_json::from_str::<Answer>(&line) {
                Ok(Answer::Info(info)) => info,
                Ok(Answer::Error(e)) => {
                    let _ = spawned.finish();
                    return Err(rebuild(path, e));
                }
                _ => return Err(spawned.failure(path, limits)),
            },
            _ => return Err(spawned.failure(path, limits)),
        };
        if info.channels == 0 || info.channels > 64 {
            return Err(PipelineError::Unreadable {
                path: path.to_path_buf(),
                why: format!("it declares {} channels", info.channels),
            });
        }
        Ok(Self {
            planes: vec![Vec::new(); info.channels],
            spawned,
            out,
            info,
            path: path.to_path_buf(),
            limits: *limits,
            done: false,
        })
    }

    /// The stream's properties (tags capped).
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// The next block (one `Vec` per channel), or `None` at the end.
    pub fn next_block(&mut self) -> PipelineResult<Option<&[Vec<f32>]>> {
        if self.done {
            return Ok(None);
        }
        let mut head = [0u8; 4];
        if self.out.read_exact(&mut head).is_err() {
            self.done = true;
            return Err(self.spawned.failure(&self.path, &self.limits));
        }
        let n = u32::from_ne_bytes(head);
        if n == END_OF_BLOCKS {
            self.done = true;
            let mut line = String::new();
            let _ = self.out.read_line(&mut line);
            let answer = serde_json::from_str::<Answer>(&line);
            return match (answer, self.spawned.finish()) {
                (Ok(Answer::Error(e)), _) => Err(rebuild(&self.path, e)),
                (Ok(Answer::Decoded(_)), Ok((status, _))) if status.success() => Ok(None),
                _ => Err(self.spawned.failure(&self.path, &self.limits)),
            };
        }
        // A block is at most what a decoder makes of one packet.
        let n = n as usize;
        if n > MAX_BLOCK_FRAMES {
            self.done = true;
            return Err(self.spawned.failure(&self.path, &self.limits));
        }
        for plane in &mut self.planes {
            // Straight into the samples: no conversion (bytemuck checks the cast).
            plane.resize(n, 0.0);
            if self
                .out
                .read_exact(bytemuck::cast_slice_mut(plane.as_mut_slice()))
                .is_err()
            {
                self.done = true;
                return Err(self.spawned.failure(&self.path, &self.limits));
            }
        }
        Ok(Some(&self.planes))
    }
}

/// Decoded audio, from a decoder in this process or a sandboxed child.
pub enum Stream {
    /// A decoder here (trusted files).
    Here(Decoder),
    /// A child's stream.
    Child(Box<ChildStream>),
}

impl Stream {
    /// The stream's properties.
    pub fn info(&self) -> &AudioInfo {
        match self {
            Stream::Here(d) => d.info(),
            Stream::Child(c) => c.info(),
        }
    }

    /// The next block, or `None` at the end.
    pub fn next_block(&mut self) -> PipelineResult<Option<&[Vec<f32>]>> {
        match self {
            Stream::Here(d) => Ok(d.next_block()?),
            Stream::Child(c) => c.next_block(),
        }
    }

    /// The next block as vectors of its own, or `None` at the end. A child's
    /// samples are read straight into them: for a reader that keeps blocks
    /// (the analysis shares each between two threads), one copy fewer.
    pub fn take_block(&mut self) -> PipelineResult<Option<Vec<Vec<f32>>>> {
        match self {
            Stream::Here(d) => Ok(d.next_block()?.map(<[Vec<f32>]>::to_vec)),
            Stream::Child(c) => {
                let channels = c.planes.len();
                if c.next_block()?.is_none() {
                    return Ok(None);
                }
                let block = std::mem::replace(&mut c.planes, vec![Vec::new(); channels]);
                Ok(Some(block))
            }
        }
    }
}

/// Most frames one streamed block may hold.
const MAX_BLOCK_FRAMES: usize = 1 << 20;

/// The child's side of a stream: decodes `path` and writes the blocks to `out`.
fn stream_here(
    path: &Path,
    out: &mut dyn std::io::Write,
    streaming: &mut bool,
) -> PipelineResult<u64> {
    let mut d = Decoder::open(path)?;
    let mut info = d.info().clone();
    cap_tags(&mut info.tags);
    let head = serde_json::to_string(&Answer::Info(info))
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    let io = |e| PipelineError::io("the sandbox's output", e);
    writeln!(out, "{head}").map_err(io)?;
    *streaming = true;
    while let Some(block) = d.next_block()? {
        let n = block.first().map_or(0, Vec::len);
        for chunk in 0..n.div_ceil(MAX_BLOCK_FRAMES) {
            let from = chunk * MAX_BLOCK_FRAMES;
            let to = (from + MAX_BLOCK_FRAMES).min(n);
            out.write_all(&((to - from) as u32).to_ne_bytes())
                .map_err(io)?;
            for plane in block {
                out.write_all(bytemuck::cast_slice(&plane[from..to]))
                    .map_err(io)?;
            }
        }
    }
    out.write_all(&END_OF_BLOCKS.to_ne_bytes()).map_err(io)?;
    *streaming = false;
    Ok(d.frames_decoded())
}

#[cfg(unix)]
fn exit_reason(status: &std::process::ExitStatus, limits: &Limits) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        // SIGABRT: an allocation beyond the address-space limit.
        Some(6) => format!(
            "it asks for more than {} MB of memory",
            limits.memory_bytes >> 20
        ),
        // SIGXCPU / SIGKILL: out of CPU time, or killed.
        Some(24) => format!("decoding used more than {} s of CPU", limits.cpu_seconds),
        Some(9) => "the decoder was killed".into(),
        Some(s) => format!("the decoder crashed (signal {s})"),
        None => format!("the decoder exited with {status}"),
    }
}

#[cfg(not(unix))]
fn exit_reason(status: &std::process::ExitStatus, _limits: &Limits) -> String {
    format!("the decoder exited with {status}")
}

fn rebuild(path: &Path, e: ChildError) -> PipelineError {
    let path = path.to_path_buf();
    PipelineError::Audio(match e.kind {
        ErrorKind::Io => AudioError::Io {
            path,
            source: std::io::Error::other(e.detail),
        },
        ErrorKind::Empty => AudioError::Empty { path },
        ErrorKind::Unsupported => AudioError::Unsupported {
            path,
            detail: e.detail,
        },
        ErrorKind::Corrupt | ErrorKind::Other => AudioError::Corrupt {
            path,
            position_s: 0.0,
            detail: e.detail,
        },
    })
}

/// The child's side: runs `task` on `path` in this process and writes the JSON
/// answer lines to `out`. (The caller lowers the limits first.) Returns whether
/// it succeeded.
pub fn child_main(task: Task, path: &Path, out: &mut dyn std::io::Write) -> bool {
    let mut streaming = false;
    let result = match task {
        Task::Probe => probe_here(path).map(Answer::Info),
        Task::Cover => crate::cover::cover_of(path).map(Answer::Cover),
        // The blocks go out as they decode; the answer line follows the end mark.
        Task::Stream => stream_here(path, &mut *out, &mut streaming).map(Answer::Decoded),
    };
    if streaming && result.is_err() {
        let _ = out.write_all(&END_OF_BLOCKS.to_ne_bytes());
    }
    let mut line = |a: &Answer| {
        if let Ok(s) = serde_json::to_string(a) {
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    };
    let (answer, ok) = match result {
        Ok(a) => (a, true),
        Err(e) => (
            Answer::Error(ChildError {
                kind: match &e {
                    // The file could not be opened or read at all; a decoder
                    // that runs out of bytes mid-stream reports an I/O error
                    // too, but that is damaged audio.
                    PipelineError::Audio(AudioError::Io { source, .. })
                        if matches!(
                            source.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                        ) =>
                    {
                        ErrorKind::Io
                    }
                    PipelineError::Audio(AudioError::Io { .. }) => ErrorKind::Corrupt,
                    PipelineError::Audio(AudioError::Empty { .. }) => ErrorKind::Empty,
                    PipelineError::Audio(AudioError::Unsupported { .. }) => ErrorKind::Unsupported,
                    PipelineError::Audio(
                        AudioError::Corrupt { .. } | AudioError::Truncated { .. },
                    ) => ErrorKind::Corrupt,
                    _ => ErrorKind::Other,
                },
                detail: match e {
                    PipelineError::Audio(AudioError::Unsupported { detail, .. }) => detail,
                    other => other.to_string(),
                },
            }),
            false,
        ),
    };
    line(&answer);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_capped_per_value_and_per_file() {
        let mut tags = vec![
            ("title".to_string(), "é".repeat(MAX_TAG_BYTES)),
            ("artist".to_string(), "x".repeat(10)),
        ];
        cap_tags(&mut tags);
        assert!(tags[0].1.len() <= MAX_TAG_BYTES, "{}", tags[0].1.len());
        assert_eq!(tags[1].1, "x".repeat(10));
        let mut many: Vec<(String, String)> = (0..40)
            .map(|i| (format!("k{i}"), "v".repeat(MAX_TAG_BYTES)))
            .collect();
        cap_tags(&mut many);
        let total: usize = many.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(total <= MAX_TAGS_BYTES, "{total}");
        assert!(many.len() >= 15, "{} tags kept", many.len());
    }
}
