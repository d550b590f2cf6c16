//! `onions-client`: resolves `.tor` names inside Tor for the browser.

use argh::FromArgs;
use onions::cli::{self, ConfigScope, Flag};
use onions::client::daemon::{self, DaemonConfig, TorAccess};
use onions::client::resolve::{Resolver, ResolverConfig};
use onions::tor::control::{Auth, ControlAddr, DEFAULT_CONTROL};
use onions::transport::Endpoint;
use std::path::PathBuf;
use std::time::Duration;

#[derive(FromArgs)]
/// Resolve .tor names inside Tor: watch streams on Tor's control port, look
/// names up on mirrors, verify every answer, and redirect the stream to the
/// owner's onion service. Reads TOR_CONTROL_HOST, TOR_CONTROL_PORT,
/// TOR_CONTROL_PASSWD (hex), TOR_CONTROL_COOKIE_AUTH_FILE,
/// TOR_CONTROL_IPC_PATH, TOR_SOCKS_HOST and TOR_SOCKS_PORT as a browser bundle
/// sets them; flags win.
struct Args {
    /// read flags from FILE, one "flag-name = value" a line (see the man page); flags given here win
    #[argh(option)]
    config: Option<PathBuf>,
    /// the control port of Tor, HOST:PORT or unix:PATH (default 127.0.0.1:9051)
    #[argh(option)]
    control: Option<String>,
    /// the control port password
    #[argh(option)]
    control_password: Option<String>,
    /// the control cookie file of Tor
    #[argh(option)]
    cookie: Option<PathBuf>,
    /// a mirror, HOST:PORT (usually a .onion; repeatable)
    #[argh(option)]
    mirror: Vec<String>,
    /// a trusted Quorum key, Base64 (repeatable, at least one)
    #[argh(option)]
    quorum_key: Vec<String>,
    /// the SOCKS port of Tor, for reaching mirrors (default 127.0.0.1:9050)
    #[argh(option)]
    socks: Option<String>,
    /// reach mirrors directly instead of through Tor (local setups only)
    #[argh(switch)]
    direct: bool,
    /// least proof of work accepted, in bits (default 0)
    #[argh(option, default = "0")]
    min_work: u64,
    /// oldest head accepted with an answer, in seconds (default 600; with witnesses, the age of the k-th newest cosignature)
    #[argh(option, default = "onions::lookup::DEFAULT_MAX_HEAD_AGE")]
    max_head_age: u64,
    /// a trusted witness key, Base64 (repeatable)
    #[argh(option)]
    witness_key: Vec<String>,
    /// how many trusted witnesses must have cosigned an answer's head (default: a majority of --witness-key)
    #[argh(option)]
    witnesses: Option<usize>,
    /// seconds to wait for one mirror (default 30)
    #[argh(option, default = "30")]
    timeout: u64,
    /// seconds a mirror that lied is not asked (default 600)
    #[argh(option, default = "600")]
    quarantine: u64,
    /// most names cached (default 10000)
    #[argh(option, default = "10000")]
    cache_size: usize,
    /// lookups run at once (default 4)
    #[argh(option, default = "4")]
    lookup_threads: usize,
    /// most .tor streams waiting for a lookup before new ones are closed (default 256)
    #[argh(option, default = "256")]
    lookup_queue: usize,
    /// hand stream attachment back to Tor and exit (for a supervisor, after the daemon stops)
    #[argh(switch)]
    release: bool,
    /// log level: error, warn, info, debug, trace (default: RUST_LOG, else info)
    #[argh(option)]
    log_level: Option<String>,
}

/// Every flag but `--config`, for config files.
const FLAGS: &[Flag] = &[
    Flag::single("control"),
    Flag::single("control-password"),
    Flag::single("cookie"),
    Flag::repeated("mirror"),
    Flag::repeated("quorum-key"),
    Flag::single("socks"),
    Flag::switch("direct"),
    Flag::single("min-work"),
    Flag::single("max-head-age"),
    Flag::repeated("witness-key"),
    Flag::single("witnesses"),
    Flag::single("timeout"),
    Flag::single("quarantine"),
    Flag::single("cache-size"),
    Flag::single("lookup-threads"),
    Flag::single("lookup-queue"),
    Flag::switch("release").command_line_only(),
    Flag::single("log-level"),
];

fn main() {
    let args: Args = cli::parse_args_with_config(
        "onions-client",
        &[ConfigScope {
            subcommand: None,
            flags: FLAGS,
        }],
    );
    cli::run("onions-client", || {
        let _logger =
            onions::logging::start(args.log_level.as_deref()).map_err(|e| e.to_string())?;
        if let Some(file) = &args.config {
            log::debug!("flags from {} (command-line flags win)", file.display());
        }
        let tor = tor_access(&args)?;
        if args.release {
            let attached = daemon::release(&tor).map_err(|e| format!("{}: {e}", tor.control))?;
            log::info!("released: .tor names guarded; {attached}");
            return Ok(());
        }
        let resolver = Resolver::new(resolver_config(&args)?);
        let config = DaemonConfig {
            tor,
            lookup_threads: args.lookup_threads,
            lookup_queue: args.lookup_queue,
        };
        daemon::run(config, resolver).map_err(|e| e.to_string())
    });
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn tor_access(args: &Args) -> Result<TorAccess, String> {
    let control = match (&args.control, env("TOR_CONTROL_IPC_PATH")) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => format!("unix:{path}"),
        (None, None) => match (env("TOR_CONTROL_HOST"), env("TOR_CONTROL_PORT")) {
            (None, None) => DEFAULT_CONTROL.to_owned(),
            (host, port) => format!(
                "{}:{}",
                host.unwrap_or_else(|| "127.0.0.1".into()),
                port.unwrap_or_else(|| "9051".into())
            ),
        },
    };
    let control =
        ControlAddr::parse(&control).map_err(|e| format!("--control {control:?}: {e}"))?;
    let auth = match (&args.control_password, &args.cookie) {
        (Some(_), Some(_)) => {
            return Err("--control-password and --cookie exclude each other".into())
        }
        (Some(pw), None) => Auth::Password(pw.clone()),
        (None, Some(path)) => Auth::CookieFile(path.clone()),
        (None, None) => env_auth()?,
    };
    Ok(TorAccess { control, auth })
}

/// Authentication from the browser bundle's environment.
fn env_auth() -> Result<Auth, String> {
    if let Some(hex) = env("TOR_CONTROL_PASSWD") {
        let bytes = decode_hex(&hex).ok_or("TOR_CONTROL_PASSWD: expected hex")?;
        let password =
            String::from_utf8(bytes).map_err(|_| "TOR_CONTROL_PASSWD: not UTF-8 text")?;
        return Ok(Auth::Password(password));
    }
    Ok(env("TOR_CONTROL_COOKIE_AUTH_FILE").map_or(Auth::Auto, |p| Auth::CookieFile(p.into())))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn resolver_config(args: &Args) -> Result<ResolverConfig, String> {
    let mirrors = args
        .mirror
        .iter()
        .map(|m| Endpoint::parse(m).map_err(|e| format!("--mirror {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if mirrors.is_empty() {
        return Err("give at least one --mirror HOST:PORT".into());
    }
    let trusted = cli::quorum_keys(&args.quorum_key).map_err(|e| e.to_string())?;
    if trusted.is_empty() {
        return Err(
            "give at least one --quorum-key BASE64 (onions-server --print-key at the Quorum)"
                .into(),
        );
    }
    let socks =
        args.socks
            .clone()
            .or_else(|| match (env("TOR_SOCKS_HOST"), env("TOR_SOCKS_PORT")) {
                (None, None) => None,
                (host, port) => Some(format!(
                    "{}:{}",
                    host.unwrap_or_else(|| "127.0.0.1".into()),
                    port.unwrap_or_else(|| "9050".into())
                )),
            });
    Ok(ResolverConfig {
        mirrors,
        route: cli::route(socks.as_deref(), args.direct).map_err(|e| e.to_string())?,
        policy: cli::lookup_policy(
            trusted,
            args.min_work,
            args.max_head_age,
            &args.witness_key,
            args.witnesses,
        )
        .map_err(|e| e.to_string())?,
        timeout: Duration::from_secs(args.timeout.max(1)),
        quarantine: Duration::from_secs(args.quarantine),
        cache_size: args.cache_size.max(1),
    })
}

#[cfg(test)]
mod tests {
    use onions::cli::complete::{check_completions, check_man_page, Hint, Hints};

    /// How the values of onions-client's flags complete (see
    /// `onions::cli::complete`).
    const HINTS: Hints = &[
        ("config", Hint::File),
        ("cookie", Hint::File),
        (
            "control",
            Hint::Words(&["127.0.0.1:9051", "127.0.0.1:9151", "unix:/run/tor/control"]),
        ),
        ("socks", Hint::Words(&["127.0.0.1:9050", "127.0.0.1:9150"])),
        (
            "log-level",
            Hint::Words(&["error", "warn", "info", "debug", "trace"]),
        ),
    ];

    #[test]
    fn the_completions_are_generated_from_the_flags() {
        check_completions::<super::Args>("onions-client", HINTS)
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }

    #[test]
    fn the_man_page_documents_every_flag_and_no_other() {
        check_man_page::<super::Args>("onions-client")
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }

    #[test]
    fn the_config_flag_table_matches_the_flags() {
        onions::cli::check_flag_table::<super::Args>(&[], super::FLAGS)
            .unwrap_or_else(|problems| panic!("{problems:#?}"));
    }
}
