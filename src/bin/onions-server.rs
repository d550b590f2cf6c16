//! `onions-server`: runs the Quorum or a mirror, or prints the Quorum's key.

use argh::FromArgs;
use onions::cli::{self, ConfigScope, Flag};
use onions::cosign::Quorate;
use onions::server::{self, Config, Limits, Role, DEFAULT_PORT};
use onions::transport::{Endpoint, Route};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

#[derive(FromArgs)]
/// Run the onions Quorum (accepts and attests claims) or a mirror (keeps a
/// verified replica and answers lookups), or show a running server's status.
struct Args {
    #[argh(subcommand)]
    command: Option<Command>,
    /// read flags from FILE, one "flag-name = value" a line (see the man page); flags given here win
    #[argh(option)]
    config: Option<PathBuf>,
    /// quorum or mirror
    #[argh(option)]
    role: Option<String>,
    /// IPv4 address and port to listen on (default port 10053)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    listen: String,
    /// directory for the log and, at the Quorum, its key
    #[argh(option)]
    state_dir: Option<PathBuf>,
    /// print the Quorum's public key (Base64), or with --witness-key the witness's, and exit; creates it if absent
    #[argh(switch)]
    print_key: bool,
    /// a mirror's upstream HOST:PORT: the Quorum or another mirror
    #[argh(option)]
    upstream: Option<String>,
    /// reach --upstream through the SOCKS port of Tor at HOST:PORT (default
    /// for a .onion upstream: 127.0.0.1:9050; otherwise direct)
    #[argh(option)]
    upstream_socks: Option<String>,
    /// a trusted Quorum key, Base64 (repeatable; required for a mirror)
    #[argh(option)]
    quorum_key: Vec<String>,
    /// least proof of work accepted, in bits (Quorum default 12, mirror 0)
    #[argh(option)]
    min_work: Option<u64>,
    /// worker threads (default: number of cores)
    #[argh(option)]
    workers: Option<usize>,
    /// longest request line in bytes (default 16384)
    #[argh(option, default = "Limits::default().max_message")]
    max_message: usize,
    /// most open connections (default 1024)
    #[argh(option, default = "Limits::default().max_connections")]
    max_connections: usize,
    /// most requests waiting for a worker before answering busy (default 1024)
    #[argh(option, default = "Limits::default().worker_queue")]
    worker_queue: usize,
    /// most messages queued for one subscriber before it is dropped (default 65536)
    #[argh(option, default = "Limits::default().subscriber_queue")]
    subscriber_queue: usize,
    /// seconds a non-subscriber connection may stay silent (default 120)
    #[argh(option, default = "Limits::default().idle_timeout.as_secs()")]
    idle_timeout: u64,
    /// seconds of silence before a subscriber gets a heartbeat (default 15)
    #[argh(option, default = "Limits::default().heartbeat.as_secs()")]
    heartbeat: u64,
    /// at the Quorum, most seconds between two signed heads (1-60, default 60)
    #[argh(option, default = "Limits::default().head_interval.as_secs()")]
    head_interval: u64,
    /// at the Quorum, least seconds a release must hold its name before anyone else may claim it (default 86400)
    #[argh(option, default = "Limits::default().release_cooldown")]
    release_cooldown: u64,
    /// seconds of upstream silence before a mirror reconnects (default 45)
    #[argh(option, default = "Limits::default().upstream_silence.as_secs()")]
    upstream_silence: u64,
    /// make this mirror a witness that cosigns the heads it audits, with the key in FILE (created on first start)
    #[argh(option)]
    witness_key: Option<PathBuf>,
    /// at a witness, a server HOST:PORT its cosignatures are sent to (repeatable; default: --upstream)
    #[argh(option)]
    cosign_to: Vec<String>,
    /// at a witness, most seconds between two cosignatures of its last head (1-60, default 60)
    #[argh(option, default = "server::witness::COSIGN_INTERVAL.as_secs()")]
    cosign_interval: u64,
    /// a witness key, Base64, whose cosignatures this server collects and passes on (repeatable)
    #[argh(option)]
    trust_witness: Vec<String>,
    /// at a mirror, cosignatures by trusted witnesses a head needs before it answers with it (default: a majority of --trust-witness)
    #[argh(option)]
    witnesses: Option<usize>,
    /// heads whose cosignatures are held (default 64)
    #[argh(option, default = "Limits::default().cosigned_heads")]
    cosigned_heads: usize,
    /// at a mirror, most pushes held back while a head waits for cosignatures (default 65536)
    #[argh(option, default = "Limits::default().held_pushes")]
    held_pushes: usize,
    /// at a mirror, most seconds a head waits for its cosignatures before the mirror answers on without it (default 5)
    #[argh(option, default = "Limits::default().cosign_wait.as_secs()")]
    cosign_wait: u64,
    /// most leads of the reverse index one reverse lookup reads; past it the answer comes from those (default 1024)
    #[argh(option, default = "Limits::default().max_reverse_leads")]
    max_reverse_leads: usize,
    /// at the Quorum, take records its log lost back from this mirror HOST:PORT before starting (a log damaged in the middle, or restored from an old backup)
    #[argh(option)]
    recover_from: Option<String>,
    /// serve Prometheus metrics over HTTP at http://IP:PORT/metrics (off by default; never the --listen address)
    #[argh(option)]
    metrics: Option<String>,
    /// log level: error, warn, info, debug, trace (default: RUST_LOG, else info)
    #[argh(option)]
    log_level: Option<String>,
}

/// What else the program does besides running a server.
#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Status(StatusArgs),
}

#[derive(FromArgs)]
/// Show a running server's status: role, head, records, upstream and lag,
/// audit, witnesses, alarms. Exit status 0 when all is well, 1 when the
/// server cannot be reached, 2 when it raises an alarm.
#[argh(subcommand, name = "status")]
struct StatusArgs {
    /// the server, IP:PORT (default 127.0.0.1:10053)
    #[argh(option, default = "String::from(\"127.0.0.1:10053\")")]
    server: String,
    /// print the status reply as JSON, for scripts
    #[argh(switch)]
    json: bool,
}

/// Exit status of `status` when the server cannot be reached.
const UNREACHABLE: i32 = 1;
/// Exit status of `status` when the server raises an alarm.
const ALARMED: i32 = 2;

/// Every flag but `--config`, for config files.
const FLAGS: &[Flag] = &[
    Flag::single("role"),
    Flag::single("listen"),
    Flag::single("state-dir"),
    Flag::switch("print-key").command_line_only(),
    Flag::single("upstream"),
    Flag::single("upstream-socks"),
    Flag::repeated("quorum-key"),
    Flag::single("min-work"),
    Flag::single("workers"),
    Flag::single("max-message"),
    Flag::single("max-connections"),
    Flag::single("worker-queue"),
    Flag::single("subscriber-queue"),
    Flag::single("idle-timeout"),
    Flag::single("heartbeat"),
    Flag::single("head-interval"),
    Flag::single("release-cooldown"),
    Flag::single("upstream-silence"),
    Flag::single("witness-key"),
    Flag::repeated("cosign-to"),
    Flag::single("cosign-interval"),
    Flag::repeated("trust-witness"),
    Flag::single("witnesses"),
    Flag::single("cosigned-heads"),
    Flag::single("held-pushes"),
    Flag::single("cosign-wait"),
    Flag::single("max-reverse-leads"),
    Flag::single("recover-from").command_line_only(),
    Flag::single("metrics"),
    Flag::single("log-level"),
];

fn main() {
    onions::allocator::tune();
    let args: Args = cli::parse_args_with_config(
        "onions-server",
        &[ConfigScope {
            subcommand: None,
            flags: FLAGS,
        }],
    );
    if let Some(Command::Status(status)) = &args.command {
        std::process::exit(show_status(status));
    }
    cli::run("onions-server", || {
        let state_dir = args.state_dir.clone().ok_or("give --state-dir DIR")?;
        if args.print_key {
            let key = match &args.witness_key {
                Some(file) => {
                    server::load_or_create_key_file(file, "witness").map_err(|e| e.to_string())?
                }
                None => server::load_or_create_quorum_key(&state_dir).map_err(|e| e.to_string())?,
            };
            println!("{}", key.public().to_base64());
            return Ok(());
        }
        // Every flag is checked before the logger starts, so that a bad
        // flag (or config line) is reported on one line.
        let plan = plan(&args)?;
        let _logger =
            onions::logging::start(args.log_level.as_deref()).map_err(|e| e.to_string())?;
        if let Some(file) = &args.config {
            log::info!("flags from {} (command-line flags win)", file.display());
        }
        server::run(plan.config(state_dir)?).map_err(|e| e.to_string())
    });
}

/// `onions-server status`: asks the server, prints, and returns the exit
/// status.
fn show_status(args: &StatusArgs) -> i32 {
    let request = onions::wire::Request::Status {
        id: onions::wire::Id::Number(1),
    };
    let reply = Endpoint::parse(&args.server)
        .map_err(|e| format!("--server {e}"))
        .and_then(|server| {
            onions::transport::request(
                &server,
                Route::Direct,
                &request,
                onions::transport::NETWORK_TIMEOUT,
            )
            .map_err(|e| format!("{server}: {e}"))
        });
    let status = match reply {
        Ok(onions::wire::Reply::Status { status, .. }) => status,
        Ok(other) => {
            eprintln!("onions-server status: {}: answered {other}", args.server);
            return UNREACHABLE;
        }
        Err(e) => {
            eprintln!("onions-server status: {e}");
            return UNREACHABLE;
        }
    };
    if args.json {
        print!(
            "{}",
            String::from_utf8_lossy(&status.to_line(&onions::wire::Id::Number(1)))
        );
    } else {
        print!(
            "{}",
            onions::status_text::render(&status, onions::clock::now())
        );
    }
    if onions::status_text::alarms(&status).is_empty() {
        0
    } else {
        ALARMED
    }
}

/// A server's configuration, checked, before anything touches the disk.
struct Plan {
    /// `None` for the Quorum: its key is loaded from the state directory.
    mirror: Option<Role>,
    listen: SocketAddr,
    min_work: u64,
    workers: usize,
    limits: Limits,
    witnesses: Quorate,
    witness: Option<WitnessPlan>,
    recover_from: Option<(Endpoint, Route)>,
    metrics: Option<SocketAddr>,
}

/// A witness's key file, where its cosignatures go and how, and how often.
type WitnessPlan = (PathBuf, Vec<Endpoint>, Route, Duration);

fn plan(args: &Args) -> Result<Plan, String> {
    let mirror = match args.role.as_deref() {
        Some("quorum") => {
            if args.upstream.is_some() {
                return Err("--upstream is for mirrors; the Quorum has none".into());
            }
            None
        }
        Some("mirror") => Some(mirror_role(args)?),
        Some(other) => return Err(format!("--role {other:?}: expected quorum or mirror")),
        None => return Err("give --role quorum or --role mirror".into()),
    };
    let default_work = match mirror {
        None => onions::work::DEFAULT_WORK,
        Some(_) => 0,
    };
    let listen = listen_addr(&args.listen)?;
    Ok(Plan {
        mirror,
        listen,
        min_work: args.min_work.unwrap_or(default_work),
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        limits: limits(args)?,
        witnesses: witnesses(args)?,
        witness: witness(args)?,
        recover_from: recover_from(args)?,
        metrics: metrics_addr(args.metrics.as_deref(), listen)?,
    })
}

/// `--metrics IP:PORT`: any address but the protocol's.
fn metrics_addr(text: Option<&str>, listen: SocketAddr) -> Result<Option<SocketAddr>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let addr = text.parse::<SocketAddr>().map_err(|_| {
        format!("--metrics {text:?}: expected IP:PORT, e.g. 127.0.0.1:10063 or [::1]:10063")
    })?;
    server::metrics::check_addr(addr, listen).map_err(|e| e.to_string())?;
    Ok(Some(addr))
}

/// `--recover-from`: the Quorum only.
fn recover_from(args: &Args) -> Result<Option<(Endpoint, Route)>, String> {
    let Some(text) = &args.recover_from else {
        return Ok(None);
    };
    if args.role.as_deref() != Some("quorum") {
        return Err("--recover-from is for the Quorum: a mirror takes lost records from its upstream by itself".into());
    }
    let from = Endpoint::parse(text).map_err(|e| format!("--recover-from {e}"))?;
    let route = if from.host.ends_with(".onion") {
        cli::route(None, false).map_err(|e| e.to_string())?
    } else {
        Route::Direct
    };
    Ok(Some((from, route)))
}

/// `--trust-witness` and `--witnesses`.
fn witnesses(args: &Args) -> Result<Quorate, String> {
    cli::witness_policy("trust-witness", &args.trust_witness, args.witnesses)
        .map_err(|e| e.to_string())
}

/// `--witness-key`, `--cosign-to` and `--cosign-interval`.
fn witness(args: &Args) -> Result<Option<WitnessPlan>, String> {
    let Some(file) = &args.witness_key else {
        if !args.cosign_to.is_empty() {
            return Err("--cosign-to is for witnesses; give --witness-key FILE too".into());
        }
        return Ok(None);
    };
    if args.role.as_deref() != Some("mirror") {
        return Err(
            "--witness-key is for mirrors: a witness checks the Quorum from its own replica".into(),
        );
    }
    if !(1..=60).contains(&args.cosign_interval) {
        return Err(format!(
            "--cosign-interval {}: give 1 to 60 seconds",
            args.cosign_interval
        ));
    }
    let targets = if args.cosign_to.is_empty() {
        args.upstream.iter().cloned().collect()
    } else {
        args.cosign_to.clone()
    };
    let targets = targets
        .iter()
        .map(|t| Endpoint::parse(t).map_err(|e| format!("--cosign-to {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let route = match &args.upstream_socks {
        Some(socks) => {
            cli::route(Some(socks), false).map_err(|e| e.for_flag("upstream-socks").to_string())?
        }
        None if targets.iter().any(|t| t.host.ends_with(".onion")) => {
            cli::route(None, false).map_err(|e| e.to_string())?
        }
        None => Route::Direct,
    };
    Ok(Some((
        file.clone(),
        targets,
        route,
        Duration::from_secs(args.cosign_interval),
    )))
}

impl Plan {
    /// Creates the state directory and, at the Quorum, loads or creates
    /// its key.
    fn config(self, state_dir: PathBuf) -> Result<Config, String> {
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| format!("--state-dir {}: {e}", state_dir.display()))?;
        let role = match self.mirror {
            Some(role) => role,
            None => Role::Quorum {
                key: server::load_or_create_quorum_key(&state_dir).map_err(|e| e.to_string())?,
            },
        };
        let witness = match self.witness {
            Some((file, cosign_to, route, interval)) => Some(server::witness::Setup {
                key: server::load_or_create_key_file(&file, "witness")
                    .map_err(|e| e.to_string())?,
                cosign_to,
                route,
                interval,
            }),
            None => None,
        };
        Ok(Config {
            role,
            listen: self.listen,
            state_dir,
            min_work: self.min_work,
            workers: self.workers,
            limits: self.limits,
            witnesses: self.witnesses,
            witness,
            recover_from: self.recover_from,
            metrics: self.metrics,
        })
    }
}

fn mirror_role(args: &Args) -> Result<Role, String> {
    let upstream = args
        .upstream
        .as_deref()
        .ok_or("a mirror needs --upstream HOST:PORT")?;
    let upstream = Endpoint::parse(upstream).map_err(|e| format!("--upstream {e}"))?;
    let route = match (&args.upstream_socks, upstream.host.ends_with(".onion")) {
        (Some(socks), _) => {
            cli::route(Some(socks), false).map_err(|e| e.for_flag("upstream-socks").to_string())?
        }
        (None, true) => cli::route(None, false).map_err(|e| e.to_string())?,
        (None, false) => Route::Direct,
    };
    let trusted = cli::quorum_keys(&args.quorum_key).map_err(|e| e.to_string())?;
    if trusted.is_empty() {
        return Err(
            "a mirror needs --quorum-key BASE64 (onions-server --print-key at the Quorum)".into(),
        );
    }
    Ok(Role::Mirror {
        upstream,
        route,
        trusted,
    })
}

/// `IP` or `IP:PORT`, IPv4 only.
fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Ok(SocketAddr::V4(SocketAddrV4::new(ip, DEFAULT_PORT)));
    }
    text.parse::<SocketAddrV4>()
        .map(SocketAddr::V4)
        .map_err(|_| format!("--listen {text:?}: expected an IPv4 address, optionally with :PORT"))
}

fn limits(args: &Args) -> Result<Limits, String> {
    let positive = |name: &str, value: u64| {
        if value == 0 {
            Err(format!("--{name} must be at least 1"))
        } else {
            Ok(value)
        }
    };
    Ok(Limits {
        max_message: positive("max-message", args.max_message as u64)? as usize,
        max_connections: positive("max-connections", args.max_connections as u64)? as usize,
        worker_queue: positive("worker-queue", args.worker_queue as u64)? as usize,
        subscriber_queue: positive("subscriber-queue", args.subscriber_queue as u64)? as usize,
        idle_timeout: Duration::from_secs(positive("idle-timeout", args.idle_timeout)?),
        heartbeat: Duration::from_secs(positive("heartbeat", args.heartbeat)?),
        head_interval: head_interval(args.head_interval)?,
        release_cooldown: positive("release-cooldown", args.release_cooldown)?,
        upstream_silence: Duration::from_secs(positive("upstream-silence", args.upstream_silence)?),
        cosigned_heads: positive("cosigned-heads", args.cosigned_heads as u64)? as usize,
        held_pushes: positive("held-pushes", args.held_pushes as u64)? as usize,
        cosign_wait: Duration::from_secs(positive("cosign-wait", args.cosign_wait)?),
        max_reverse_leads: positive("max-reverse-leads", args.max_reverse_leads as u64)? as usize,
    })
}

/// `--head-interval`: 1 to 60 s, since PROTOCOL.md §10.4 asks for a head
/// at least every 60 s.
fn head_interval(seconds: u64) -> Result<Duration, String> {
    if !(1..=60).contains(&seconds) {
        return Err(format!(
            "--head-interval {seconds}: give 1 to 60 seconds (a head at least every minute)"
        ));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use onions::cli::complete::{check_completions, check_man_page, Hint, Hints};

    /// How the values of onions-server's flags complete (see
    /// `onions::cli::complete`).
    const HINTS: Hints = &[
        ("config", Hint::File),
        ("state-dir", Hint::Dir),
        ("witness-key", Hint::File),
        ("role", Hint::Words(&["quorum", "mirror"])),
        (
            "log-level",
            Hint::Words(&["error", "warn", "info", "debug", "trace"]),
        ),
        (
            "listen",
            Hint::Words(&["127.0.0.1:10053", "127.0.0.1:10054"]),
        ),
        (
            "metrics",
            Hint::Words(&["127.0.0.1:10063", "127.0.0.1:10064"]),
        ),
        ("server", Hint::Words(&["127.0.0.1:10053"])),
    ];

    #[test]
    fn the_completions_are_generated_from_the_flags() {
        check_completions::<super::Args>("onions-server", HINTS)
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }

    #[test]
    fn the_man_page_documents_every_flag_and_no_other() {
        check_man_page::<super::Args>("onions-server")
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }

    #[test]
    fn the_config_flag_table_matches_the_flags() {
        onions::cli::check_flag_table::<super::Args>(&[], super::FLAGS)
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }
}
