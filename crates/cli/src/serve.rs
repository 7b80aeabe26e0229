//! `sonantica serve`: the listening station (library, separation jobs, API).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use sonantica_pipeline::models::default_data_dir;
use sonantica_server::{App, Config};

/// Arguments of `sonantica serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data folder: database, media (uploads, stems) and the model store
    /// (default: $SONANTICA_DATA, else ~/.local/share/sonantica).
    #[arg(long, value_name = "DIR", env = "SONANTICA_DATA")]
    data_dir: Option<PathBuf>,
    /// Address to listen on. Anything but a loopback address makes the station
    /// reachable from other machines.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// A music folder to scan into the library (read only: no file in it is ever
    /// modified); scanned at start-up and by POST /api/library/scan.
    #[arg(long, value_name = "DIR")]
    library: Option<PathBuf>,
    /// Default separation model: htdemucs, htdemucs_ft, htdemucs_6s (from the model
    /// store) or a path to a .safetensors, .th or bag .yaml file.
    #[arg(long, default_value = "htdemucs", env = "SONANTICA_MODEL")]
    model: String,
    /// Model store (default: $SONANTICA_MODELS, else DATA/models).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Separation jobs run at the same time.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Threads per separation job (default: all cores divided among the workers).
    #[arg(long)]
    threads: Option<usize>,
    /// The access token (at least 16 characters; stored hashed). Without it, one is
    /// generated on first run and printed once.
    #[arg(long, env = "SONANTICA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Largest upload accepted, in MB.
    #[arg(long, value_name = "MB", default_value_t = 1024)]
    max_upload_mb: u64,
    /// Put separation jobs on this Redis queue for `sonantica worker` processes
    /// (on this or other machines) instead of running them here. Needs
    /// --worker-token.
    #[arg(long, value_name = "redis://HOST:PORT", requires = "worker_token")]
    queue: Option<String>,
    /// The credential of `sonantica worker` processes (at least 16 characters,
    /// not the access token): the worker API takes it and nothing else, and it
    /// opens nothing else. Used only with --queue.
    #[arg(long, env = "SONANTICA_WORKER_TOKEN", hide_env_values = true)]
    worker_token: Option<String>,
    /// The address browsers use, when a TLS proxy publishes the station
    /// (`https://music.example.org`): the session cookie is then `Secure`.
    #[arg(long, value_name = "URL", env = "SONANTICA_PUBLIC_URL")]
    public_url: Option<String>,
    /// Where the station's own jobs run the network: auto (a hardware GPU if
    /// there is one, else the CPU), cpu, or gpu (any GPU, Mesa's software
    /// lavapipe included; the start fails without one).
    #[arg(long, env = "SONANTICA_DEVICE", default_value = "auto", value_parser = crate::separate::parse_device)]
    device: sonantica_demucs::gpu::DeviceChoice,
    /// The user name Subsonic players (Symfonium, DSub, Feishin, …) sign in
    /// with at http://HOST:PORT/ (default admin, or the one set before).
    #[arg(long, env = "SONANTICA_SUBSONIC_USER", value_name = "NAME")]
    subsonic_user: Option<String>,
    /// Their password. Subsonic's token sign-in needs it readable by the
    /// station: it is kept in DATA/subsonic-login (owner only), not hashed, so
    /// use one you use nowhere else. Stored: later starts need not repeat it.
    #[arg(long, env = "SONANTICA_SUBSONIC_PASSWORD", hide_env_values = true)]
    subsonic_password: Option<String>,
    /// Seconds a worker holds a job without renewing it before another worker may
    /// take it over (after a crash).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, hide = true)]
    job_lease_secs: f64,
}

/// Runs the command until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    if args.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    if !(args.job_lease_secs > 0.0 && args.job_lease_secs.is_finite()) {
        bail!("--job-lease-secs must be positive");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,symphonia=warn,sqlx=warn,tower_http=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let mut config = Config::new(&data_dir);
    config.models_dir = args
        .models_dir
        .or_else(|| std::env::var_os("SONANTICA_MODELS").map(PathBuf::from))
        .unwrap_or_else(|| data_dir.join("models"));
    config.library = args.library;
    config.default_model = args.model;
    config.workers = args.workers;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    config.threads = args
        .threads
        .unwrap_or_else(|| (cores / args.workers).max(1));
    config.token = args.token;
    // Uploads and library files are first read by a child process of this
    // binary with memory and time limits.
    config.sandbox = sonantica_pipeline::sandbox::Isolation::current_exe()?;
    config.max_upload_bytes = args.max_upload_mb.saturating_mul(1 << 20);
    config.job_lease = Duration::from_secs_f64(args.job_lease_secs);
    if let Some(url) = &args.queue {
        // Checked now, so that a typo is an error at start-up.
        let mut q = sonantica_server::app::redis_queue::RedisQueue::new(url)?;
        if let Err(e) = q.ping() {
            eprintln!("note: {e}; jobs wait in the database until Redis is reachable");
        }
    }
    config.queue = args.queue;
    config.worker_token = args.worker_token;
    config.public_url = args.public_url;
    config.device = args.device;
    config.subsonic_user = args.subsonic_user;
    config.subsonic_password = args.subsonic_password;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (app, new_token) = App::open(config)
            .await
            .with_context(|| format!("cannot open the data folder {}", data_dir.display()))?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        if let Some(t) = new_token {
            println!("Your access token (shown only now; it is stored hashed):\n\n    {t}\n");
            println!(
                "Use it as `Authorization: Bearer TOKEN`, or log in from the browser. \
                 To set your own, restart with --token or SONANTICA_TOKEN."
            );
        }
        if !addr.ip().is_loopback() {
            eprintln!(
                "note: listening on {addr}: other machines on the network can reach this station"
            );
        }
        if app.config().queue.is_some() {
            println!("Separation jobs go to the Redis queue for `sonantica worker` processes.");
        } else if let Err(e) = app.jobs().model_path(&app.jobs().default_model_name()) {
            eprintln!("note: separation will not work until the model is installed: {e}");
        }
        println!(
            "Sonántica is listening on http://{addr}/ (data in {})",
            data_dir.display()
        );
        match app.subsonic_login().get() {
            Some(l) => println!(
                "Subsonic players: server http://{addr}/, user {:?} and the Subsonic password.",
                l.user
            ),
            None => println!(
                "Subsonic players are refused until you set a password: --subsonic-password."
            ),
        }
        sonantica_server::serve(app, listener, shutdown_signal())
            .await
            .context("the server stopped")?;
        eprintln!("stopped; running jobs go back to the queue and resume at the next start");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
