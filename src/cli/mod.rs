//! Helpers the binaries share for turning flags into typed values and
//! failing the way every onions program fails: one line on stderr naming
//! the value and what is wrong, and a non-zero exit.
//!
//! # Config files
//!
//! `onions-server`, `onions-client` and `onions-hs claim` also read their
//! flags from a file given with `--config FILE`. The format is one
//! `flag-name = value` a line:
//!
//! ```text
//! # The Quorum on this host.
//! role = quorum
//! listen = 127.0.0.1:10053
//! state-dir = /var/lib/onions/quorum
//! ```
//!
//! - The names are the program's long flags without `--`.
//! - A line whose first non-blank character is `#` is a comment; blank
//!   lines are ignored. A `#` anywhere else is part of the value.
//! - The value is everything after the first `=`, with surrounding blanks
//!   removed; a value wrapped in double quotes loses the quotes (so
//!   `contact = "  x "` keeps its blanks). There are no escapes.
//! - A switch takes `true` or `false`.
//! - Flags that may be repeated on the command line (`quorum-key`,
//!   `mirror`, `sub`, `witness-key`) may repeat; any other name may appear
//!   once.
//! - A positional argument (the NAME of `onions-hs claim`) is written
//!   under its name, `name = example.tor`.
//!
//! The file becomes command-line arguments placed before the real ones, and
//! every flag given on the command line replaces what the file says about
//! it: an explicit flag wins, also for repeatable flags (one
//! `--quorum-key` on the command line drops every `quorum-key` line).
//! A switch set to `true` in a file cannot be turned off on the command
//! line; edit the file. Relative paths in values are relative to the
//! working directory, not to the file.
//!
//! Inside, `config` reads such files, folds them into the command line and
//! remembers where each value came from, so that an error can name the
//! line; `flags` holds the [`Flag`] tables that say what a file may set,
//! and the check that a table matches what argh accepts. The rest, here, is
//! what every program calls: [`run`], [`parse_args_with_config`] and the
//! flag-to-type helpers.

use crate::cosign::Quorate;
use crate::keys::PublicKey;
use crate::lookup::Policy;
use crate::transport::{Route, DEFAULT_SOCKS};
use crate::verify::Verifier;
use config::with_origin;
use std::net::SocketAddr;

pub mod complete;
mod config;
mod config_error;
mod flags;
#[cfg(test)]
mod tests;

pub use config::{
    expand_config, locate, parse_args_with_config, parse_config, ConfigEntry, ConfigScope,
    Expanded, Origin, USAGE_EXIT,
};
pub use config_error::{ConfigError, LineProblem};
pub use flags::{check_flag_table, Flag, FlagKind, CONFIG_FLAG};

/// Runs a program's body; on error prints `PROGRAM: error` and exits 1.
///
/// When the error starts with a flag (`--listen "x": ...`) whose value came
/// from the config file, the file and line are put in front of it:
/// `PROGRAM: /etc/onions/mirror.conf:12: --listen "x": ...`.
pub fn run(program: &str, body: impl FnOnce() -> Result<(), String>) {
    if let Err(e) = crate::keys::init()
        .map_err(str::to_owned)
        .and_then(|()| body())
    {
        eprintln!("{program}: {}", with_origin(&e));
        std::process::exit(1);
    }
}

/// Why the route flags do not give a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Both `--socks` and `--direct` were given.
    Exclusive,
    /// The SOCKS address is not `IP:PORT`.
    BadSocks {
        /// The flag that gave it, without dashes (`socks` unless renamed
        /// with [`RouteError::for_flag`]).
        flag: &'static str,
        /// The value given.
        text: String,
    },
}

impl RouteError {
    /// The same error, naming `flag` (say `upstream-socks`) as the one that
    /// gave a bad SOCKS address.
    pub fn for_flag(self, flag: &'static str) -> RouteError {
        match self {
            RouteError::BadSocks { text, .. } => RouteError::BadSocks { flag, text },
            other => other,
        }
    }
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::Exclusive => write!(f, "--socks and --direct exclude each other"),
            RouteError::BadSocks { flag, text } => {
                write!(f, "--{flag} {text:?}: expected IP:PORT of Tor's SOCKS port")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// Chooses Tor's SOCKS port (the default) or a direct connection.
pub fn route(socks: Option<&str>, direct: bool) -> Result<Route, RouteError> {
    match (socks, direct) {
        (Some(_), true) => Err(RouteError::Exclusive),
        (_, true) => Ok(Route::Direct),
        (socks, false) => {
            let text = socks.unwrap_or(DEFAULT_SOCKS);
            let addr: SocketAddr = text.parse().map_err(|_| RouteError::BadSocks {
                flag: "socks",
                text: text.to_owned(),
            })?;
            Ok(Route::Socks(addr))
        }
    }
}

/// Why key flags (`--quorum-key`, `--witness-key`, `--trust-witness`) and
/// `--witnesses` do not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFlagError {
    /// A value is not Base64 of an ed25519 key.
    BadKey {
        /// The flag, without dashes.
        flag: String,
        /// The value given.
        text: String,
        /// Where the right value comes from.
        hint: &'static str,
    },
    /// `--witnesses K` with K above 0 but no witness key.
    NoWitnessKeys {
        /// K.
        needed: usize,
        /// The key flag, without dashes.
        flag: String,
    },
    /// `--witnesses K` with fewer keys than K.
    TooFewKeys {
        /// K.
        needed: usize,
        /// How many keys were given.
        given: usize,
        /// The key flag, without dashes.
        flag: String,
    },
}

impl std::fmt::Display for KeyFlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyFlagError::BadKey { flag, text, hint } => write!(
                f,
                "--{flag} {text:?}: expected Base64 of a 32-byte ed25519 key ({hint})"
            ),
            KeyFlagError::NoWitnessKeys { needed, flag } => write!(
                f,
                "--witnesses {needed}: no --{flag} is given; give the key of each witness to trust, or leave --witnesses out"
            ),
            KeyFlagError::TooFewKeys {
                needed,
                given,
                flag,
            } => write!(
                f,
                "--witnesses {needed}: only {given} --{flag} keys are given; give more keys or a lower --witnesses"
            ),
        }
    }
}

impl std::error::Error for KeyFlagError {}

/// Parses every `--quorum-key`.
pub fn quorum_keys(texts: &[String]) -> Result<Vec<PublicKey>, KeyFlagError> {
    public_keys("quorum-key", texts, "onions-server --print-key")
}

/// Parses the trusted witness keys given with `--FLAG` (`--witness-key` at
/// a client, `--trust-witness` at a server) and `--witnesses K`, which
/// defaults to a majority of them ([`Quorate::majority`]). K may not exceed
/// the keys given: a client could never be satisfied.
pub fn witness_policy(
    flag: &str,
    texts: &[String],
    needed: Option<usize>,
) -> Result<Quorate, KeyFlagError> {
    let trusted = public_keys(
        flag,
        texts,
        "onions-server --witness-key FILE --print-key at the witness",
    )?;
    let needed = needed.unwrap_or_else(|| Quorate::majority(trusted.len()));
    if needed > 0 && trusted.is_empty() {
        return Err(KeyFlagError::NoWitnessKeys {
            needed,
            flag: flag.to_owned(),
        });
    }
    if needed > trusted.len() {
        return Err(KeyFlagError::TooFewKeys {
            needed,
            given: trusted.len(),
            flag: flag.to_owned(),
        });
    }
    Ok(Quorate { trusted, needed })
}

/// What a client believes, from the flags `onions-client` and `onions-hs
/// lookup` share: the trusted Quorum keys, `--min-work`,
/// `--max-head-age`, and the witnesses of `--witness-key` and
/// `--witnesses`.
pub fn lookup_policy(
    trusted: Vec<PublicKey>,
    min_work: u64,
    max_head_age: u64,
    witness_keys: &[String],
    witnesses: Option<usize>,
) -> Result<Policy, KeyFlagError> {
    Ok(Policy {
        verifier: Verifier {
            min_work,
            trusted,
            max_skew: None,
        },
        max_head_age,
        witnesses: witness_policy("witness-key", witness_keys, witnesses)?,
    })
}

/// Parses every `--FLAG` as an ed25519 public key in Base64; a bad one is
/// named with where the right value comes from (`hint`).
fn public_keys(
    flag: &str,
    texts: &[String],
    hint: &'static str,
) -> Result<Vec<PublicKey>, KeyFlagError> {
    texts
        .iter()
        .map(|t| {
            PublicKey::from_base64(t).ok_or_else(|| KeyFlagError::BadKey {
                flag: flag.to_owned(),
                text: t.clone(),
                hint,
            })
        })
        .collect()
}
