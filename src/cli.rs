//! Helpers the binaries share for turning flags into typed values and
//! failing the way every onions program fails: one line on stderr naming
//! the value and what is wrong, and a non-zero exit.

use crate::keys::PublicKey;
use crate::transport::{Route, DEFAULT_SOCKS};
use std::net::SocketAddr;

/// Runs a program's body; on error prints `PROGRAM: error` and exits 1.
pub fn run(program: &str, body: impl FnOnce() -> Result<(), String>) {
    if let Err(e) = crate::keys::init()
        .map_err(str::to_owned)
        .and_then(|()| body())
    {
        eprintln!("{program}: {e}");
        std::process::exit(1);
    }
}

/// Parses the command line like `argh::from_env`, but reports a usage
/// error on one line, as every other error is.
pub fn parse_args<T: argh::TopLevelCommand>(program: &str) -> T {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match T::from_args(&[program], &args) {
        Ok(parsed) => parsed,
        Err(exit) if exit.status.is_ok() => {
            println!("{}", exit.output);
            std::process::exit(0);
        }
        Err(exit) => {
            let reason: Vec<&str> = exit
                .output
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            eprintln!("{program}: {}", reason.join("; "));
            std::process::exit(2);
        }
    }
}

/// Chooses Tor's SOCKS port (the default) or a direct connection.
pub fn route(socks: Option<&str>, direct: bool) -> Result<Route, String> {
    match (socks, direct) {
        (Some(_), true) => Err("--socks and --direct exclude each other".into()),
        (_, true) => Ok(Route::Direct),
        (socks, false) => {
            let text = socks.unwrap_or(DEFAULT_SOCKS);
            let addr: SocketAddr = text
                .parse()
                .map_err(|_| format!("--socks {text:?}: expected IP:PORT of Tor's SOCKS port"))?;
            Ok(Route::Socks(addr))
        }
    }
}

/// Parses every `--quorum-key`.
pub fn quorum_keys(texts: &[String]) -> Result<Vec<PublicKey>, String> {
    texts
        .iter()
        .map(|t| {
            PublicKey::from_base64(t).ok_or_else(|| {
                format!("--quorum-key {t:?}: expected Base64 of a 32-byte ed25519 key (onions-server --print-key)")
            })
        })
        .collect()
}
