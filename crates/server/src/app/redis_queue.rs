//! The Redis queue: separation jobs delivered to `sonantica worker` processes on
//! any machine through Redis Streams with a consumer group.
//!
//! The job row in the database stays the truth (status, progress, stems); a
//! Redis message only delivers the job's id to one worker. Two streams carry
//! them, interactive before batch. A worker acknowledges a message only after its
//! stems are stored on the server (or the job turned out to be finished). A
//! message whose worker died stays pending in the group; once it has been idle
//! for the visibility timeout, the next worker that asks claims it (XAUTOCLAIM).
//! A live worker keeps its message fresh by re-claiming it for itself (XCLAIM
//! with idle 0) as it reports progress.

use std::time::Duration;

use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamReadOptions, StreamReadReply,
};
use redis::{Commands, Connection};

use super::{AppError, AppResult};

/// Stream of interactive jobs (read first).
pub const STREAM_INTERACTIVE: &str = "sonantica:jobs:interactive";
/// Stream of library-batch jobs.
pub const STREAM_BATCH: &str = "sonantica:jobs:batch";
/// The consumer group every worker joins.
pub const GROUP: &str = "sonantica-workers";

/// One delivered job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The stream it came from.
    pub stream: String,
    /// The message id.
    pub id: String,
    /// The job id in the server's database.
    pub job_id: i64,
}

/// A connection to the queue, re-established after Redis restarts.
pub struct RedisQueue {
    client: redis::Client,
    conn: Option<Connection>,
    url: String,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("url", &self.url)
            .finish()
    }
}

fn queue_err(url: &str, e: redis::RedisError) -> AppError {
    AppError::Queue(format!("Redis at {url}: {e}"))
}

impl RedisQueue {
    /// Parses the URL (`redis://HOST:PORT[/DB]`); connects on first use.
    pub fn new(url: &str) -> AppResult<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| AppError::BadRequest(format!("--queue {url}: {e}")))?;
        Ok(RedisQueue {
            client,
            conn: None,
            url: url.to_owned(),
        })
    }

    /// Runs `f` on a connection, reconnecting first if needed; on any error the
    /// connection is dropped so that the next call starts afresh.
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> AppResult<T> {
        if self.conn.is_none() {
            let conn = self
                .client
                .get_connection_with_timeout(Duration::from_secs(5))
                .map_err(|e| queue_err(&self.url, e))?;
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
            self.conn = Some(conn);
            // A fresh server (or one restarted without persistence) has no group.
            self.ensure_group()?;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(AppError::Queue("no Redis connection".into()));
        };
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.conn = None;
                Err(queue_err(&self.url, e))
            }
        }
    }

    fn ensure_group(&mut self) -> AppResult<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        for stream in [STREAM_INTERACTIVE, STREAM_BATCH] {
            let r: redis::RedisResult<()> = conn.xgroup_create_mkstream(stream, GROUP, "0");
            if let Err(e) = r {
                if e.code() != Some("BUSYGROUP") {
                    self.conn = None;
                    return Err(queue_err(&self.url, e));
                }
            }
        }
        Ok(())
    }

    /// Checks that Redis answers.
    pub fn ping(&mut self) -> AppResult<()> {
        self.with(|c| redis::cmd("PING").query::<String>(c).map(|_| ()))
    }

    /// Puts a job on the queue.
    pub fn publish(&mut self, job_id: i64, interactive: bool) -> AppResult<String> {
        let stream = if interactive {
            STREAM_INTERACTIVE
        } else {
            STREAM_BATCH
        };
        self.with(|c| c.xadd(stream, "*", &[("job", job_id.to_string())]))
    }

    /// The next job for `consumer`: first a message another worker left idle for
    /// longer than `visibility` (it died), then a new interactive one, then a new
    /// batch one, waiting up to `block` for one to arrive.
    pub fn next(
        &mut self,
        consumer: &str,
        visibility: Duration,
        block: Duration,
    ) -> AppResult<Option<Delivery>> {
        for stream in [STREAM_INTERACTIVE, STREAM_BATCH] {
            let idle = visibility.as_millis() as usize;
            let reply: StreamAutoClaimReply = self.with(|c| {
                c.xautoclaim_options(
                    stream,
                    GROUP,
                    consumer,
                    idle,
                    "0-0",
                    StreamAutoClaimOptions::default().count(1),
                )
            })?;
            if let Some(d) = reply
                .claimed
                .iter()
                .find_map(|m| delivery(stream, &m.id, m.get::<String>("job")))
            {
                return Ok(Some(d));
            }
            // Deleted entries (acknowledged elsewhere) are simply gone.
        }
        let quick = StreamReadOptions::default().group(GROUP, consumer).count(1);
        let r: Option<StreamReadReply> =
            self.with(|c| c.xread_options(&[STREAM_INTERACTIVE], &[">"], &quick))?;
        if let Some(d) = first(r) {
            return Ok(Some(d));
        }
        let wait = StreamReadOptions::default()
            .group(GROUP, consumer)
            .count(1)
            .block(block.as_millis().max(1) as usize);
        let r: Option<StreamReadReply> = self
            .with(|c| c.xread_options(&[STREAM_INTERACTIVE, STREAM_BATCH], &[">", ">"], &wait))?;
        Ok(first(r))
    }

    /// Resets the idle time of a message this consumer holds (a heartbeat), so
    /// that no other worker claims it while this one works.
    pub fn touch(&mut self, d: &Delivery, consumer: &str) -> AppResult<()> {
        self.with(|c| {
            redis::cmd("XCLAIM")
                .arg(&d.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(0)
                .arg(&d.id)
                .arg("JUSTID")
                .query::<redis::Value>(c)
                .map(|_| ())
        })
    }

    /// Acknowledges (and deletes) a message: its job needs no more work.
    pub fn ack(&mut self, d: &Delivery) -> AppResult<()> {
        self.with(|c| {
            let _: i64 = c.xack(&d.stream, GROUP, &[&d.id])?;
            let _: i64 = c.xdel(&d.stream, &[&d.id])?;
            Ok(())
        })
    }
}

fn delivery(stream: &str, id: &str, job: Option<String>) -> Option<Delivery> {
    Some(Delivery {
        stream: stream.to_owned(),
        id: id.to_owned(),
        job_id: job?.parse().ok()?,
    })
}

fn first(reply: Option<StreamReadReply>) -> Option<Delivery> {
    reply?.keys.into_iter().find_map(|k| {
        k.ids
            .into_iter()
            .find_map(|m| delivery(&k.key, &m.id, m.get::<String>("job")))
    })
}
