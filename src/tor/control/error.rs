//! [`ControlError`]: every way talking to the control port fails, each with
//! the one-line message a person sees; the failures a person can fix (no
//! tor listening, a refused cookie or password, no usable method) say how.
//! One type for the whole module, so every caller handles failure alike.

use super::auth::AuthMethod;
use super::quoting::{BadArgument, ParseError};
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why talking to Tor's control port failed.
#[derive(Debug)]
pub enum ControlError {
    /// Nothing listens at the control address.
    NotListening {
        /// The address tried.
        addr: String,
        /// What connect said.
        source: io::Error,
    },
    /// The connection broke.
    Io(io::Error),
    /// Tor closed the control connection.
    Closed,
    /// No reply within the reply timeout; the connection is shut down.
    Timeout {
        /// The command's first word.
        command: String,
    },
    /// Tor sent something this client cannot read.
    Protocol(String),
    /// Tor refused a command.
    Rejected {
        /// The command's first word.
        command: String,
        /// Tor's status code (5xx).
        code: u16,
        /// Tor's message.
        message: String,
    },
    /// Tor refused the credentials (515); Tor closes the connection.
    AuthFailed {
        /// The method tried.
        method: AuthMethod,
        /// Tor's message.
        message: String,
        /// The cookie file used, for cookie methods.
        cookie_file: Option<PathBuf>,
    },
    /// The cookie file cannot be read or is not 32 bytes.
    CookieFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// SAFECOOKIE: Tor's server hash does not match the cookie.
    ServerHashMismatch {
        /// The cookie file used, if known.
        cookie_file: Option<PathBuf>,
    },
    /// Tor offers no method this client can use with what it was given.
    NoAuthMethod {
        /// What Tor offers.
        offered: Vec<String>,
        /// What the caller asked for.
        wanted: &'static str,
    },
    /// An argument cannot be sent (a space, a line break, a bad key).
    BadArgument(String),
    /// A reply or event from Tor does not parse.
    Parse(ParseError),
}

impl From<ParseError> for ControlError {
    fn from(e: ParseError) -> ControlError {
        ControlError::Parse(e)
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NotListening { addr, source } => write!(
                f,
                "Tor's control port {addr} does not answer ({source}); is tor running with \
                 ControlPort {addr} in its torrc?"
            ),
            ControlError::Io(e) => write!(f, "control connection failed: {e}"),
            ControlError::Closed => write!(f, "Tor closed the control connection"),
            ControlError::Timeout { command } => {
                write!(
                    f,
                    "Tor did not answer {command} in time; connection dropped"
                )
            }
            ControlError::Protocol(why) => write!(f, "unreadable reply from Tor: {why}"),
            ControlError::Parse(why) => write!(f, "unreadable reply from Tor: {why}"),
            ControlError::Rejected {
                command,
                code,
                message,
            } => write!(f, "Tor refused {command}: {code} {message}"),
            ControlError::AuthFailed { .. } => auth_failed_text(self, f),
            ControlError::CookieFile { path, why } => write!(
                f,
                "cannot use Tor's control cookie {}: {why}; run as a user who may read it \
                 (Debian: the debian-tor group) or point to the right file",
                path.display()
            ),
            ControlError::ServerHashMismatch { cookie_file } => write!(
                f,
                "Tor's SAFECOOKIE answer does not match the cookie{}: the file belongs to \
                 another tor or is stale",
                cookie_file
                    .as_ref()
                    .map(|p| format!(" in {}", p.display()))
                    .unwrap_or_default()
            ),
            ControlError::NoAuthMethod { offered, wanted } => write!(
                f,
                "Tor's control port offers {} but {wanted} was asked for; {}",
                offered.join(","),
                no_method_hint(offered)
            ),
            ControlError::BadArgument(why) => write!(f, "cannot send to Tor: {why}"),
        }
    }
}

fn auth_failed_text(error: &ControlError, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let ControlError::AuthFailed {
        method,
        message,
        cookie_file,
    } = error
    else {
        return Ok(());
    };
    match (method, cookie_file) {
        (AuthMethod::HashedPassword, _) => write!(
            f,
            "Tor refused the control password (515 {message}); give the password whose \
             hash is tor's HashedControlPassword"
        ),
        (_, Some(path)) => write!(
            f,
            "Tor refused the cookie from {} (515 {message}); use this tor's current \
             CookieAuthFile",
            path.display()
        ),
        (_, None) => write!(
            f,
            "Tor refused {} authentication (515 {message})",
            method.name()
        ),
    }
}

fn no_method_hint(offered: &[String]) -> &'static str {
    if offered.iter().any(|m| m == "HASHEDPASSWORD") {
        "give the control password"
    } else if offered.iter().any(|m| m.contains("COOKIE")) {
        "use the cookie file (CookieAuthentication 1)"
    } else {
        "check tor's ControlPort authentication settings"
    }
}

impl std::error::Error for ControlError {}

impl From<BadArgument> for ControlError {
    fn from(bad: BadArgument) -> ControlError {
        ControlError::BadArgument(bad.0)
    }
}

impl From<io::Error> for ControlError {
    fn from(e: io::Error) -> Self {
        ControlError::Io(e)
    }
}
