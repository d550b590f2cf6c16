//! A synchronous client for Tor's control port (control-spec §2–4).
//!
//! [`ControlConnection`] connects over TCP or a Unix socket, authenticates
//! ([`Auth`]: SAFECOOKIE, COOKIE, a password, or none), and sends one
//! command at a time. A reader thread owns the socket's read side: it
//! assembles reply lines (`250-` mid lines, `250+` data blocks ending in
//! `.`, the `250 ` end line) into [`Reply`]s, hands replies to the waiting
//! command, and sends asynchronous `6xx` messages to an event channel as
//! [`Event`]s (STREAM events parsed into [`StreamEvent`]). A line it does not
//! understand is logged and skipped; only a broken socket ends it.
//!
//! The client daemon's safety net lives here too, because a cleanup command
//! needs it as much as the daemon: [`ControlConnection::guard_tor_names`]
//! maps every `.tor` name to an invalid onion name, so that Tor fails a
//! `.tor` stream locally whenever no controller redirected it, and
//! [`ControlConnection::hand_back_streams`] undoes `__LeaveStreamsUnattached`
//! and attaches every stream still waiting for a controller.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use sodiumoxide::crypto::auth::hmacsha256;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

/// Tor's usual control port on the local machine.
pub const DEFAULT_CONTROL: &str = "127.0.0.1:9051";

/// How long a command waits for its reply unless told otherwise.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest line accepted from Tor; a longer one ends the connection.
pub const MAX_LINE_BYTES: u64 = 1024 * 1024;

/// The wildcard that [`ControlConnection::guard_tor_names`] maps: every
/// `.tor` name and `tor` itself.
pub const GUARD_FROM: &str = "*.tor";

/// Where the guard sends `.tor` names: not a valid v3 onion name, so Tor
/// refuses the stream itself (`REASON=TORPROTOCOL`) without a circuit.
pub const GUARD_TO: &str = "tor.invalid.onion";

/// CLOSESTREAM reason RESOLVEFAILED: the SOCKS client sees error 4.
pub const REASON_RESOLVEFAILED: u8 = 2;

/// CLOSESTREAM reason MISC.
pub const REASON_MISC: u8 = 1;

const SAFECOOKIE_SERVER_KEY: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
const SAFECOOKIE_CLIENT_KEY: &[u8] = b"Tor safe cookie authentication controller-to-server hash";
const COOKIE_LEN: usize = 32;
const NONCE_LEN: usize = 32;

// ---------------------------------------------------------------- addresses

/// Where Tor's control port listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddr {
    /// A TCP address (`ControlPort 127.0.0.1:9051`).
    Tcp(SocketAddr),
    /// A Unix socket (`ControlPort unix:/path`, `TOR_CONTROL_IPC_PATH`).
    Unix(PathBuf),
}

impl ControlAddr {
    /// Parses `HOST:PORT`, `unix:/path` or an absolute socket path.
    pub fn parse(text: &str) -> Result<ControlAddr, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return Ok(ControlAddr::Unix(PathBuf::from(path)));
        }
        if text.starts_with('/') {
            return Ok(ControlAddr::Unix(PathBuf::from(text)));
        }
        let mut addrs = text
            .to_socket_addrs()
            .map_err(|e| format!("control address {text:?} is not HOST:PORT ({e})"))?;
        addrs
            .next()
            .map(ControlAddr::Tcp)
            .ok_or_else(|| format!("control address {text:?} has no address"))
    }
}

impl fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlAddr::Tcp(addr) => write!(f, "{addr}"),
            ControlAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

// ---------------------------------------------------------- authentication

/// How to authenticate to Tor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// HASHEDPASSWORD with this password (decode `TOR_CONTROL_PASSWD`'s hex
    /// first).
    Password(String),
    /// The cookie in this file: SAFECOOKIE when Tor offers it, else COOKIE.
    CookieFile(PathBuf),
    /// SAFECOOKIE with the cookie file Tor names in PROTOCOLINFO, else NULL
    /// (no authentication) when Tor allows it.
    Auto,
}

/// An authentication method of PROTOCOLINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication configured.
    Null,
    /// `HashedControlPassword`.
    HashedPassword,
    /// The cookie file's bytes in hex.
    Cookie,
    /// The AUTHCHALLENGE exchange over the cookie.
    SafeCookie,
}

impl AuthMethod {
    /// The name PROTOCOLINFO uses.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Null => "NULL",
            AuthMethod::HashedPassword => "HASHEDPASSWORD",
            AuthMethod::Cookie => "COOKIE",
            AuthMethod::SafeCookie => "SAFECOOKIE",
        }
    }
}

/// What PROTOCOLINFO told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolInfo {
    /// Authentication methods, as Tor spells them (`SAFECOOKIE`, ...).
    pub methods: Vec<String>,
    /// The cookie file, when cookie authentication is on.
    pub cookie_file: Option<PathBuf>,
    /// Tor's version.
    pub tor_version: Option<String>,
}

impl ProtocolInfo {
    /// Whether Tor offers `method`.
    pub fn offers(&self, method: AuthMethod) -> bool {
        self.methods.iter().any(|m| m == method.name())
    }

    /// Parses the reply to `PROTOCOLINFO 1`.
    pub fn from_reply(reply: &Reply) -> Result<ProtocolInfo, String> {
        let mut info = ProtocolInfo {
            methods: Vec::new(),
            cookie_file: None,
            tor_version: None,
        };
        for line in &reply.lines {
            if let Some(rest) = line.text.strip_prefix("AUTH ") {
                let pairs = key_values(&split_tokens(rest)?)?;
                let methods = find(&pairs, "METHODS").unwrap_or_default();
                info.methods = methods.split(',').map(str::to_owned).collect();
                info.cookie_file = find(&pairs, "COOKIEFILE").map(PathBuf::from);
            } else if let Some(rest) = line.text.strip_prefix("VERSION ") {
                let pairs = key_values(&split_tokens(rest)?)?;
                info.tor_version = find(&pairs, "Tor").map(str::to_owned);
            }
        }
        if info.methods.iter().all(String::is_empty) {
            return Err("PROTOCOLINFO reply has no AUTH METHODS".to_owned());
        }
        Ok(info)
    }
}

// ------------------------------------------------------------------ errors

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

impl From<io::Error> for ControlError {
    fn from(e: io::Error) -> Self {
        ControlError::Io(e)
    }
}

// ------------------------------------------------------------------ replies

/// One line of a reply, with its data block if it had one (`250+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    /// The status code.
    pub code: u16,
    /// The text after the code and separator.
    pub text: String,
    /// The data block's lines, dot-unescaped; empty for `-` and ` ` lines.
    pub data: Vec<String>,
}

/// A whole reply or asynchronous message: its last line ends with `NNN `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The lines in order; never empty.
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// The status code of the last line.
    pub fn code(&self) -> u16 {
        self.lines.last().map_or(0, |l| l.code)
    }

    /// Whether the status is 2xx.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.code())
    }

    /// The text of the last line (`OK`, or Tor's error message).
    pub fn message(&self) -> &str {
        self.lines.last().map_or("", |l| l.text.as_str())
    }
}

/// Assembles reply lines into whole replies.
#[derive(Debug, Default)]
struct Assembler {
    lines: Vec<ReplyLine>,
    in_data: bool,
}

impl Assembler {
    /// Takes one line without its CRLF; returns a reply once it is whole.
    fn push(&mut self, line: &str) -> Option<Reply> {
        if self.in_data {
            self.push_data(line);
            return None;
        }
        let Some((code, sep, text)) = split_status(line) else {
            log::warn!("tor control: skipping a line that is not a reply: {line:?}");
            return None;
        };
        self.lines.push(ReplyLine {
            code,
            text: text.to_owned(),
            data: Vec::new(),
        });
        match sep {
            '+' => {
                self.in_data = true;
                None
            }
            '-' => None,
            _ => Some(Reply {
                lines: std::mem::take(&mut self.lines),
            }),
        }
    }

    fn push_data(&mut self, line: &str) {
        if line == "." {
            self.in_data = false;
            return;
        }
        let line = line.strip_prefix('.').unwrap_or(line);
        if let Some(last) = self.lines.last_mut() {
            last.data.push(line.to_owned());
        }
    }
}

/// Splits `NNN<sep>text`; `None` if the line is not a reply line.
fn split_status(line: &str) -> Option<(u16, char, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sep = line[3..].chars().next().unwrap_or(' ');
    if !matches!(sep, ' ' | '-' | '+') {
        return None;
    }
    let text = line.get(4..).unwrap_or("");
    Some((code.parse().ok()?, sep, text))
}

// ------------------------------------------------------------------ events

/// An asynchronous message from Tor (650).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A STREAM event.
    Stream(StreamEvent),
    /// Any other event, unparsed.
    Other(Reply),
}

impl Event {
    /// Parses a 6xx message; a STREAM line that does not parse is logged and
    /// kept as [`Event::Other`].
    pub fn from_reply(reply: Reply) -> Event {
        let Some(first) = reply.lines.first() else {
            return Event::Other(reply);
        };
        if !first.text.starts_with("STREAM ") {
            return Event::Other(reply);
        }
        match StreamEvent::parse(&first.text) {
            Ok(event) => Event::Stream(event),
            Err(why) => {
                log::warn!("tor control: cannot parse {:?}: {why}", first.text);
                Event::Other(reply)
            }
        }
    }
}

/// A stream's ID: 1–16 letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    /// Checks and wraps an ID.
    pub fn parse(text: &str) -> Result<StreamId, String> {
        let valid =
            (1..=16).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric());
        if valid {
            Ok(StreamId(text.to_owned()))
        } else {
            Err(format!("{text:?} is not a stream ID"))
        }
    }

    /// The ID as Tor writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream's status in a STREAM event or in `stream-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    /// A new CONNECT request.
    New,
    /// A new RESOLVE request.
    NewResolve,
    /// The address was rewritten (MapAddress, cache, REDIRECTSTREAM).
    Remap,
    /// A BEGIN cell went out.
    SentConnect,
    /// A RESOLVE cell went out.
    SentResolve,
    /// Connected.
    Succeeded,
    /// Failed; will be closed.
    Failed,
    /// Closed.
    Closed,
    /// Detached from its circuit; may be retried.
    Detached,
    /// Waiting for a controller to attach it (`__LeaveStreamsUnattached`).
    ControllerWait,
    /// Flow control: XOFF sent.
    XoffSent,
    /// Flow control: XOFF received.
    XoffRecv,
    /// Flow control: XON sent.
    XonSent,
    /// Flow control: XON received.
    XonRecv,
    /// A status this client does not know.
    Other(String),
}

impl StreamStatus {
    /// Reads a status word.
    pub fn parse(word: &str) -> StreamStatus {
        match word {
            "NEW" => StreamStatus::New,
            "NEWRESOLVE" => StreamStatus::NewResolve,
            "REMAP" => StreamStatus::Remap,
            "SENTCONNECT" => StreamStatus::SentConnect,
            "SENTRESOLVE" => StreamStatus::SentResolve,
            "SUCCEEDED" => StreamStatus::Succeeded,
            "FAILED" => StreamStatus::Failed,
            "CLOSED" => StreamStatus::Closed,
            "DETACHED" => StreamStatus::Detached,
            "CONTROLLER_WAIT" => StreamStatus::ControllerWait,
            "XOFF_SENT" => StreamStatus::XoffSent,
            "XOFF_RECV" => StreamStatus::XoffRecv,
            "XON_SENT" => StreamStatus::XonSent,
            "XON_RECV" => StreamStatus::XonRecv,
            other => StreamStatus::Other(other.to_owned()),
        }
    }
}

/// A parsed `650 STREAM` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The stream.
    pub id: StreamId,
    /// What happened.
    pub status: StreamStatus,
    /// The circuit (`0`: none).
    pub circuit: String,
    /// The target host as Tor shows it (not lower-cased before attach).
    pub target_host: String,
    /// The target port (0 for resolves).
    pub target_port: u16,
    /// The `KEY=value` fields after the target, unquoted, in order.
    pub extras: Vec<(String, String)>,
}

impl StreamEvent {
    /// Parses `STREAM <id> <status> <circ> <host:port> [KEY=value ...]`,
    /// with or without the leading `650 `.
    pub fn parse(line: &str) -> Result<StreamEvent, String> {
        let text = line
            .strip_prefix("650 ")
            .or_else(|| line.strip_prefix("650-"))
            .unwrap_or(line);
        let tokens = split_tokens(text)?;
        let [keyword, id, status, circuit, target, rest @ ..] = tokens.as_slice() else {
            return Err("too few fields".to_owned());
        };
        if *keyword != "STREAM" {
            return Err("not a STREAM event".to_owned());
        }
        let (target_host, target_port) = split_target(target)?;
        Ok(StreamEvent {
            id: StreamId::parse(id)?,
            status: StreamStatus::parse(status),
            circuit: (*circuit).to_owned(),
            target_host,
            target_port,
            extras: key_values(rest)?,
        })
    }

    /// The value of an extra field.
    pub fn extra(&self, key: &str) -> Option<&str> {
        find(&self.extras, key)
    }

    /// `REASON=`: why the stream failed or closed.
    pub fn reason(&self) -> Option<&str> {
        self.extra("REASON")
    }

    /// `REMOTE_REASON=`: the reason the far end gave.
    pub fn remote_reason(&self) -> Option<&str> {
        self.extra("REMOTE_REASON")
    }

    /// `SOURCE=`: CACHE or EXIT, on REMAP.
    pub fn source(&self) -> Option<&str> {
        self.extra("SOURCE")
    }

    /// `SOURCE_ADDR=`: the application's address, on NEW.
    pub fn source_addr(&self) -> Option<&str> {
        self.extra("SOURCE_ADDR")
    }

    /// `PURPOSE=`: USER, DNS_REQUEST, DIR_FETCH, ...
    pub fn purpose(&self) -> Option<&str> {
        self.extra("PURPOSE")
    }

    /// Whether the stream sits on a circuit.
    pub fn on_circuit(&self) -> bool {
        self.circuit != "0"
    }
}

/// One line of `GETINFO stream-status`. Tor shows a stream waiting for a
/// controller as `NEW` (or `NEWRESOLVE`), like one waiting for a circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// The stream.
    pub id: StreamId,
    /// Its status.
    pub status: StreamStatus,
    /// Its circuit (`0`: none).
    pub circuit: String,
    /// The target host.
    pub target_host: String,
    /// The target port.
    pub target_port: u16,
}

impl StreamEntry {
    /// Parses `<id> <status> <circ> <host:port>`.
    pub fn parse(line: &str) -> Result<StreamEntry, String> {
        let fields: Vec<&str> = line.split(' ').collect();
        let [id, status, circuit, target] = fields.as_slice() else {
            return Err(format!("stream-status line {line:?} has not 4 fields"));
        };
        let (target_host, target_port) = split_target(target)?;
        Ok(StreamEntry {
            id: StreamId::parse(id)?,
            status: StreamStatus::parse(status),
            circuit: (*circuit).to_owned(),
            target_host,
            target_port,
        })
    }

    /// Whether the stream may be waiting for a controller: NEW or
    /// NEWRESOLVE on no circuit.
    pub fn may_wait_for_controller(&self) -> bool {
        matches!(self.status, StreamStatus::New | StreamStatus::NewResolve) && self.circuit == "0"
    }
}

fn split_target(target: &str) -> Result<(String, u16), String> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| format!("target {target:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("target {target:?} has a bad port"))?;
    Ok((host.to_owned(), port))
}

// --------------------------------------------------------- tokens, quoting

/// Splits on spaces, keeping quoted strings (with their quotes) whole.
fn split_tokens(text: &str) -> Result<Vec<&str>, String> {
    let mut tokens = Vec::new();
    let (mut start, mut quoted, mut escaped) = (None, false, false);
    for (i, c) in text.char_indices() {
        if quoted {
            (quoted, escaped) = step_quoted(c, escaped);
            continue;
        }
        match c {
            ' ' => {
                if let Some(s) = start.take() {
                    tokens.push(&text[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
                quoted = c == '"';
            }
        }
    }
    if quoted {
        return Err(format!("unterminated quoted string in {text:?}"));
    }
    tokens.extend(start.map(|s| &text[s..]));
    Ok(tokens)
}

/// One character inside a quoted string: returns (still quoted, escaping).
fn step_quoted(c: char, escaped: bool) -> (bool, bool) {
    match (escaped, c) {
        (true, _) => (true, false),
        (false, '\\') => (true, true),
        (false, '"') => (false, false),
        _ => (true, false),
    }
}

/// Turns `KEY=value` tokens into pairs (values unquoted); a bare word
/// becomes a key with an empty value.
fn key_values(tokens: &[&str]) -> Result<Vec<(String, String)>, String> {
    tokens
        .iter()
        .map(|token| match token.split_once('=') {
            Some((key, value)) => Ok((key.to_owned(), unquote(value)?)),
            None => Ok(((*token).to_owned(), String::new())),
        })
        .collect()
}

fn find<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Decodes a QuotedString (C escapes, `\ooo` octal, `\xHH`); a value that
/// is not quoted is returned as is.
pub fn unquote(value: &str) -> Result<String, String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_owned());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| format!("unterminated quoted string {value:?}"))?;
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.bytes().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\\' {
            unescape_one(&mut bytes, &mut out)?;
        } else {
            out.push(b);
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn unescape_one(
    bytes: &mut std::iter::Peekable<std::str::Bytes<'_>>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let b = bytes.next().ok_or("quoted string ends in a backslash")?;
    match b {
        b'n' => out.push(b'\n'),
        b'r' => out.push(b'\r'),
        b't' => out.push(b'\t'),
        b'x' => out.push(take_digits(bytes, 16, 2, 0)?),
        b'0'..=b'7' => out.push(take_digits(bytes, 8, 2, b - b'0')?),
        other => out.push(other),
    }
    Ok(())
}

/// Reads up to `max` more digits in `radix` after `first`.
fn take_digits(
    bytes: &mut std::iter::Peekable<std::str::Bytes<'_>>,
    radix: u32,
    max: usize,
    first: u8,
) -> Result<u8, String> {
    let mut value = u32::from(first);
    for _ in 0..max {
        let Some(d) = bytes.peek().and_then(|b| char::from(*b).to_digit(radix)) else {
            break;
        };
        value = value * radix + d;
        bytes.next();
    }
    u8::try_from(value).map_err(|_| format!("escape value {value} is not a byte"))
}

/// Quotes `value` as a QuotedString Tor decodes back to the same bytes.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A configuration key or event name: letters, digits and `_`.
fn check_keyword(word: &str) -> Result<&str, ControlError> {
    let valid = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(word)
    } else {
        Err(ControlError::BadArgument(format!("{word:?} is not a key")))
    }
}

/// A plain argument: printable, no space, no `"`, no `=`.
fn check_word(word: &str) -> Result<&str, ControlError> {
    let valid = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=');
    if valid {
        Ok(word)
    } else {
        Err(ControlError::BadArgument(format!(
            "{word:?} is not a plain word"
        )))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

// ----------------------------------------------------------------- sockets

/// The control socket, TCP or Unix.
#[derive(Debug)]
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn connect(addr: &ControlAddr, timeout: Duration) -> io::Result<Socket> {
        match addr {
            ControlAddr::Tcp(sa) => TcpStream::connect_timeout(sa, timeout).map(Socket::Tcp),
            ControlAddr::Unix(path) => UnixStream::connect(path).map(Socket::Unix),
        }
    }

    fn try_clone(&self) -> io::Result<Socket> {
        match self {
            Socket::Tcp(s) => s.try_clone().map(Socket::Tcp),
            Socket::Unix(s) => s.try_clone().map(Socket::Unix),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Both),
            Socket::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_write_timeout(Some(timeout)),
            Socket::Unix(s) => s.set_write_timeout(Some(timeout)),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.flush(),
            Socket::Unix(s) => s.flush(),
        }
    }
}

// ------------------------------------------------------------ reader thread

/// Reads messages until the socket ends: events to `events`, the rest to
/// `replies`.
fn read_loop(socket: Socket, replies: Sender<Reply>, events: Sender<Event>) {
    let mut reader = BufReader::new(socket);
    let mut assembler = Assembler::default();
    while let Some(line) = read_line(&mut reader) {
        let Some(reply) = assembler.push(&line) else {
            continue;
        };
        if (600..700).contains(&reply.code()) {
            // Nobody listening for events is fine; replies still flow.
            let _ = events.send(Event::from_reply(reply));
        } else if replies.send(reply).is_err() {
            return;
        }
    }
}

/// One line without CRLF; `None` at the end of the stream, on an error, or
/// when a line is longer than [`MAX_LINE_BYTES`].
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut buf = Vec::new();
    match reader.take(MAX_LINE_BYTES).read_until(b'\n', &mut buf) {
        Ok(0) => return None,
        Ok(_) => {}
        Err(e) => {
            log::debug!("tor control: read failed: {e}");
            return None;
        }
    }
    if buf.last() != Some(&b'\n') {
        log::warn!(
            "tor control: no complete line ({} bytes, limit {MAX_LINE_BYTES}); closing",
            buf.len()
        );
        return None;
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

// -------------------------------------------------------------- connection

/// A control connection: commands from any thread, one at a time; events on
/// a channel (see [`ControlConnection::events`]).
#[derive(Debug)]
pub struct ControlConnection {
    addr: ControlAddr,
    socket: Socket,
    writer: Mutex<Socket>,
    replies: Receiver<Reply>,
    events: Receiver<Event>,
    reader: Option<JoinHandle<()>>,
    reply_timeout: Duration,
    protocol_info: Mutex<Option<ProtocolInfo>>,
}

impl ControlConnection {
    /// Connects to `addr` without authenticating.
    pub fn connect(
        addr: &ControlAddr,
        timeout: Duration,
    ) -> Result<ControlConnection, ControlError> {
        let socket =
            Socket::connect(addr, timeout).map_err(|source| ControlError::NotListening {
                addr: addr.to_string(),
                source,
            })?;
        socket.set_write_timeout(timeout)?;
        let (reply_tx, replies) = crossbeam_channel::unbounded();
        let (event_tx, events) = crossbeam_channel::unbounded();
        let read_half = socket.try_clone()?;
        let reader = std::thread::Builder::new()
            .name("tor-control".to_owned())
            .spawn(move || read_loop(read_half, reply_tx, event_tx))?;
        Ok(ControlConnection {
            addr: addr.clone(),
            writer: Mutex::new(socket.try_clone()?),
            socket,
            replies,
            events,
            reader: Some(reader),
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            protocol_info: Mutex::new(None),
        })
    }

    /// Connects to `addr` and authenticates with `auth`.
    pub fn open(
        addr: &ControlAddr,
        auth: &Auth,
        timeout: Duration,
    ) -> Result<ControlConnection, ControlError> {
        let connection = ControlConnection::connect(addr, timeout)?;
        connection.authenticate(auth)?;
        Ok(connection)
    }

    /// The address connected to.
    pub fn addr(&self) -> &ControlAddr {
        &self.addr
    }

    /// Sets how long a command waits for its reply.
    pub fn set_reply_timeout(&mut self, timeout: Duration) {
        self.reply_timeout = timeout;
    }

    /// The event channel. Events queue without bound until read; the channel
    /// disconnects when the connection ends.
    pub fn events(&self) -> Receiver<Event> {
        self.events.clone()
    }

    /// Sends one command line (no CRLF) and returns Tor's reply, whatever
    /// its status. A timeout shuts the connection down, since a late reply
    /// would be taken for the next command's.
    pub fn command(&self, line: &str) -> Result<Reply, ControlError> {
        if line.contains(['\r', '\n']) {
            return Err(ControlError::BadArgument(
                "a command is one line".to_owned(),
            ));
        }
        let verb = line.split(' ').next().unwrap_or("").to_owned();
        let mut writer = self.writer.lock();
        // A reply left over from an earlier, abandoned command is stale.
        while self.replies.try_recv().is_ok() {}
        if let Err(e) = writer.write_all(format!("{line}\r\n").as_bytes()) {
            return Err(closed_or(e));
        }
        match self.replies.recv_timeout(self.reply_timeout) {
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Timeout) => {
                self.socket.shutdown();
                Err(ControlError::Timeout { command: verb })
            }
            Err(RecvTimeoutError::Disconnected) => Err(ControlError::Closed),
        }
    }

    /// Sends a command and fails unless Tor answers 2xx.
    fn checked(&self, line: &str) -> Result<Reply, ControlError> {
        let reply = self.command(line)?;
        if reply.is_ok() {
            return Ok(reply);
        }
        Err(ControlError::Rejected {
            command: line.split(' ').next().unwrap_or("").to_owned(),
            code: reply.code(),
            message: reply.message().to_owned(),
        })
    }

    // ---- authentication

    /// `PROTOCOLINFO 1`. Tor answers it only once before authentication,
    /// so the answer is kept and returned again on later calls.
    pub fn protocol_info(&self) -> Result<ProtocolInfo, ControlError> {
        let mut cached = self.protocol_info.lock();
        if let Some(info) = cached.as_ref() {
            return Ok(info.clone());
        }
        let reply = self.checked("PROTOCOLINFO 1")?;
        let info = ProtocolInfo::from_reply(&reply).map_err(ControlError::Protocol)?;
        *cached = Some(info.clone());
        Ok(info)
    }

    /// Authenticates as `auth` says, after asking Tor what it accepts.
    pub fn authenticate(&self, auth: &Auth) -> Result<(), ControlError> {
        let info = self.protocol_info()?;
        match auth {
            Auth::Password(password) => self.auth_password_if_offered(&info, password),
            Auth::CookieFile(path) => self.auth_cookie_file(&info, path),
            Auth::Auto => self.auth_auto(&info),
        }
    }

    fn auth_password_if_offered(
        &self,
        info: &ProtocolInfo,
        password: &str,
    ) -> Result<(), ControlError> {
        if info.offers(AuthMethod::HashedPassword) || info.offers(AuthMethod::Null) {
            return self.authenticate_password(password);
        }
        Err(ControlError::NoAuthMethod {
            offered: info.methods.clone(),
            wanted: "a password",
        })
    }

    fn auth_cookie_file(&self, info: &ProtocolInfo, path: &Path) -> Result<(), ControlError> {
        let cookie = read_cookie(path)?;
        let result = if info.offers(AuthMethod::SafeCookie) {
            self.authenticate_safecookie(&cookie)
        } else if info.offers(AuthMethod::Cookie) {
            self.authenticate_cookie(&cookie)
        } else {
            return Err(ControlError::NoAuthMethod {
                offered: info.methods.clone(),
                wanted: "a cookie file",
            });
        };
        result.map_err(|e| with_cookie_path(e, path))
    }

    fn auth_auto(&self, info: &ProtocolInfo) -> Result<(), ControlError> {
        let cookie_methods = info.offers(AuthMethod::SafeCookie) || info.offers(AuthMethod::Cookie);
        match (&info.cookie_file, cookie_methods) {
            (Some(path), true) => match self.auth_cookie_file(info, path) {
                Err(ControlError::CookieFile { .. }) if info.offers(AuthMethod::Null) => {
                    self.authenticate_null()
                }
                other => other,
            },
            _ if info.offers(AuthMethod::Null) => self.authenticate_null(),
            _ => Err(ControlError::NoAuthMethod {
                offered: info.methods.clone(),
                wanted: "cookie or no authentication",
            }),
        }
    }

    /// SAFECOOKIE: AUTHCHALLENGE with a random nonce, check Tor's hash of the
    /// cookie, then AUTHENTICATE with ours.
    pub fn authenticate_safecookie(&self, cookie: &[u8]) -> Result<(), ControlError> {
        sodiumoxide::init()
            .map_err(|()| ControlError::Protocol("libsodium failed to start".to_owned()))?;
        let mut client_nonce = [0u8; NONCE_LEN];
        sodiumoxide::randombytes::randombytes_into(&mut client_nonce);
        let line = format!("AUTHCHALLENGE SAFECOOKIE {}", to_hex(&client_nonce));
        let (server_hash, server_nonce) = parse_challenge(&self.checked(&line)?)?;
        let message = [cookie, &client_nonce[..], &server_nonce[..]].concat();
        let expected = hmac_sha256(SAFECOOKIE_SERVER_KEY, &message);
        if !sodiumoxide::utils::memcmp(&expected, &server_hash) {
            return Err(ControlError::ServerHashMismatch { cookie_file: None });
        }
        let response = hmac_sha256(SAFECOOKIE_CLIENT_KEY, &message);
        self.send_auth(
            &format!("AUTHENTICATE {}", to_hex(&response)),
            AuthMethod::SafeCookie,
        )
    }

    /// COOKIE: the cookie's bytes in hex.
    pub fn authenticate_cookie(&self, cookie: &[u8]) -> Result<(), ControlError> {
        self.send_auth(
            &format!("AUTHENTICATE {}", to_hex(cookie)),
            AuthMethod::Cookie,
        )
    }

    /// HASHEDPASSWORD: the password as a quoted string.
    pub fn authenticate_password(&self, password: &str) -> Result<(), ControlError> {
        self.send_auth(
            &format!("AUTHENTICATE {}", quote(password)),
            AuthMethod::HashedPassword,
        )
    }

    /// NULL: no credentials.
    pub fn authenticate_null(&self) -> Result<(), ControlError> {
        self.send_auth("AUTHENTICATE", AuthMethod::Null)
    }

    fn send_auth(&self, line: &str, method: AuthMethod) -> Result<(), ControlError> {
        let reply = self.command(line)?;
        match reply.code() {
            250 => Ok(()),
            515 => Err(ControlError::AuthFailed {
                method,
                message: reply.message().to_owned(),
                cookie_file: None,
            }),
            code => Err(ControlError::Rejected {
                command: "AUTHENTICATE".to_owned(),
                code,
                message: reply.message().to_owned(),
            }),
        }
    }

    // ---- configuration

    /// `SETCONF k="v" ...`: sets the keys at once (a repeated key gives
    /// several lines, as for `MapAddress`).
    pub fn set_conf(&self, pairs: &[(&str, &str)]) -> Result<(), ControlError> {
        let mut line = String::from("SETCONF");
        for (key, value) in pairs {
            line.push_str(&format!(" {}={}", check_keyword(key)?, quote(value)));
        }
        self.checked(&line).map(drop)
    }

    /// `RESETCONF k ...`: back to torrc's value or the default.
    pub fn reset_conf(&self, keys: &[&str]) -> Result<(), ControlError> {
        let mut line = String::from("RESETCONF");
        for key in keys {
            line.push(' ');
            line.push_str(check_keyword(key)?);
        }
        self.checked(&line).map(drop)
    }

    /// `GETCONF key`: its values, one per configured line (none when unset).
    pub fn get_conf(&self, key: &str) -> Result<Vec<String>, ControlError> {
        let reply = self.checked(&format!("GETCONF {}", check_keyword(key)?))?;
        Ok(reply
            .lines
            .iter()
            .filter_map(|l| l.text.split_once('=').map(|(_, v)| v.to_owned()))
            .collect())
    }

    /// `SETEVENTS e ...` (replaces the set; none turns events off).
    pub fn set_events(&self, events: &[&str]) -> Result<(), ControlError> {
        let mut line = String::from("SETEVENTS");
        for event in events {
            line.push(' ');
            line.push_str(check_keyword(event)?);
        }
        self.checked(&line).map(drop)
    }

    /// `GETINFO key`: the value, a data block's lines joined with `\n`.
    pub fn get_info(&self, key: &str) -> Result<String, ControlError> {
        let reply = self.checked(&format!("GETINFO {}", check_word_or_path(key)?))?;
        let prefix = format!("{key}=");
        let line = reply
            .lines
            .iter()
            .find(|l| l.text.starts_with(&prefix))
            .ok_or_else(|| ControlError::Protocol(format!("GETINFO reply lacks {key}")))?;
        if line.data.is_empty() {
            Ok(line.text[prefix.len()..].to_owned())
        } else {
            Ok(line.data.join("\n"))
        }
    }

    /// `MAPADDRESS from=to`. Wildcards (`*.tor`) work; the mapping lasts
    /// until Tor exits.
    pub fn map_address(&self, from: &str, to: &str) -> Result<(), ControlError> {
        self.checked(&format!(
            "MAPADDRESS {}={}",
            check_word(from)?,
            check_word(to)?
        ))
        .map(drop)
    }

    // ---- streams

    /// `ATTACHSTREAM id circuit`; circuit 0 lets Tor choose.
    pub fn attach_stream(&self, id: &StreamId, circuit: u64) -> Result<(), ControlError> {
        self.checked(&format!("ATTACHSTREAM {id} {circuit}"))
            .map(drop)
    }

    /// `REDIRECTSTREAM id address`: changes the stream's target host.
    pub fn redirect_stream(&self, id: &StreamId, address: &str) -> Result<(), ControlError> {
        self.checked(&format!("REDIRECTSTREAM {id} {}", check_word(address)?))
            .map(drop)
    }

    /// `CLOSESTREAM id reason` (see [`REASON_RESOLVEFAILED`]).
    pub fn close_stream(&self, id: &StreamId, reason: u8) -> Result<(), ControlError> {
        self.checked(&format!("CLOSESTREAM {id} {reason}"))
            .map(drop)
    }

    /// `GETINFO stream-status`, parsed.
    pub fn stream_status(&self) -> Result<Vec<StreamEntry>, ControlError> {
        let text = self.get_info("stream-status")?;
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| StreamEntry::parse(l).map_err(ControlError::Protocol))
            .collect()
    }

    // ---- the daemon's safety net

    /// Maps [`GUARD_FROM`] to [`GUARD_TO`] with MAPADDRESS, so that a `.tor`
    /// stream nobody redirects fails inside Tor (`REMAP` to the invalid
    /// name, then `FAILED ... REASON=TORPROTOCOL`, SOCKS error 1) instead of
    /// reaching an exit. Harmless while a controller redirects `.tor`
    /// streams: Tor applies it only when a stream is attached, after
    /// REDIRECTSTREAM. Lasts until Tor exits; `MapAddress *.tor
    /// tor.invalid.onion` in torrc covers a Tor restart.
    pub fn guard_tor_names(&self) -> Result<(), ControlError> {
        self.map_address(GUARD_FROM, GUARD_TO)
    }

    /// Whether Tor maps [`GUARD_FROM`] to [`GUARD_TO`] (from torrc or a
    /// controller).
    pub fn tor_names_guarded(&self) -> Result<bool, ControlError> {
        let wanted = format!("{GUARD_FROM} {GUARD_TO} ");
        for key in ["address-mappings/config", "address-mappings/control"] {
            let text = self.get_info(key)?;
            if text.lines().any(|l| l.starts_with(&wanted)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Gives streams back to Tor: `RESETCONF __LeaveStreamsUnattached`, then
    /// `ATTACHSTREAM id 0` for every stream that may be waiting for a
    /// controller (Tor does not attach those itself, they would time out
    /// after `SocksTimeout`). With the guard in place a `.tor` one fails
    /// locally: Tor answers its attach with 551 and fails the stream.
    /// Other refusals (a stream that was not waiting after all) are logged
    /// at debug level.
    pub fn hand_back_streams(&self) -> Result<HandBack, ControlError> {
        self.reset_conf(&["__LeaveStreamsUnattached"])?;
        let mut handed = HandBack::default();
        for entry in self.stream_status()? {
            if !entry.may_wait_for_controller() {
                continue;
            }
            match self.attach_stream(&entry.id, 0) {
                Ok(()) => handed.attached += 1,
                Err(ControlError::Rejected { code: 551, .. })
                    if is_tor_target(&entry.target_host) =>
                {
                    handed.failed_in_tor += 1;
                }
                Err(ControlError::Rejected { code, message, .. }) => {
                    log::debug!(
                        "tor control: stream {} not attached: {code} {message}",
                        entry.id
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(handed)
    }
}

/// What [`ControlConnection::hand_back_streams`] did with waiting streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandBack {
    /// Streams Tor took back and attached normally.
    pub attached: usize,
    /// `.tor` streams the guard mapping failed inside Tor.
    pub failed_in_tor: usize,
}

impl fmt::Display for HandBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} waiting streams handed back ({} attached, {} .tor streams failed inside tor)",
            self.attached + self.failed_in_tor,
            self.attached,
            self.failed_in_tor
        )
    }
}

/// True for `.tor` names (and bare `tor`), in any case.
pub fn is_tor_target(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "tor" || host.ends_with(".tor")
}

impl Drop for ControlConnection {
    fn drop(&mut self) {
        self.socket.shutdown();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A write error after Tor hung up is [`ControlError::Closed`].
fn closed_or(e: io::Error) -> ControlError {
    match e.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ControlError::Closed,
        _ => ControlError::Io(e),
    }
}

/// A GETINFO key: letters, digits, `-`, `_`, `/`, `.`, `:`.
fn check_word_or_path(key: &str) -> Result<&str, ControlError> {
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/.:".contains(&b));
    if valid {
        Ok(key)
    } else {
        Err(ControlError::BadArgument(format!(
            "{key:?} is not a GETINFO key"
        )))
    }
}

fn read_cookie(path: &Path) -> Result<Vec<u8>, ControlError> {
    let cookie = std::fs::read(path).map_err(|e| ControlError::CookieFile {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    if cookie.len() != COOKIE_LEN {
        return Err(ControlError::CookieFile {
            path: path.to_owned(),
            why: format!("it holds {} bytes, not {COOKIE_LEN}", cookie.len()),
        });
    }
    Ok(cookie)
}

fn with_cookie_path(error: ControlError, path: &Path) -> ControlError {
    match error {
        ControlError::AuthFailed {
            method, message, ..
        } => ControlError::AuthFailed {
            method,
            message,
            cookie_file: Some(path.to_owned()),
        },
        ControlError::ServerHashMismatch { .. } => ControlError::ServerHashMismatch {
            cookie_file: Some(path.to_owned()),
        },
        other => other,
    }
}

/// Reads `AUTHCHALLENGE SERVERHASH=<hex> SERVERNONCE=<hex>`.
fn parse_challenge(reply: &Reply) -> Result<(Vec<u8>, Vec<u8>), ControlError> {
    let bad = |why: &str| ControlError::Protocol(format!("AUTHCHALLENGE reply: {why}"));
    let text = reply.message();
    let rest = text
        .strip_prefix("AUTHCHALLENGE ")
        .ok_or_else(|| bad(text))?;
    let pairs = key_values(&split_tokens(rest).map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    let hex = |key| find(&pairs, key).and_then(from_hex);
    let hash = hex("SERVERHASH").filter(|h| h.len() == 32);
    let nonce = hex("SERVERNONCE").filter(|n| n.len() == NONCE_LEN);
    match (hash, nonce) {
        (Some(hash), Some(nonce)) => Ok((hash, nonce)),
        _ => Err(bad(text)),
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut state = hmacsha256::State::init(key);
    state.update(message);
    state.finalize().0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(lines: &[&str]) -> Vec<Reply> {
        let mut assembler = Assembler::default();
        lines.iter().filter_map(|l| assembler.push(l)).collect()
    }

    #[test]
    fn stream_event_with_all_fields() {
        let e = StreamEvent::parse(
            "650 STREAM 22 NEW 0 example.tor:80 SOURCE_ADDR=127.0.0.1:53802 PURPOSE=USER \
             CLIENT_PROTOCOL=SOCKS5 NYM_EPOCH=0 SESSION_GROUP=-4 \
             ISO_FIELDS=SOCKS_USERNAME,SOCKS_PASSWORD,CLIENTADDR,SESSION_GROUP,NYM_EPOCH",
        )
        .expect("parses");
        assert_eq!(e.id.as_str(), "22");
        assert_eq!(e.status, StreamStatus::New);
        assert_eq!(e.circuit, "0");
        assert!(!e.on_circuit());
        assert_eq!((e.target_host.as_str(), e.target_port), ("example.tor", 80));
        assert_eq!(e.source_addr(), Some("127.0.0.1:53802"));
        assert_eq!(e.purpose(), Some("USER"));
        assert_eq!(e.extra("SESSION_GROUP"), Some("-4"));
        assert_eq!(e.reason(), None);
    }

    #[test]
    fn stream_event_failed_with_reasons() {
        let e = StreamEvent::parse(
            "STREAM 85 FAILED 0 invalid:80 REASON=TORPROTOCOL REMOTE_REASON=DONE SOURCE=CACHE",
        )
        .expect("parses");
        assert_eq!(e.status, StreamStatus::Failed);
        assert_eq!(e.reason(), Some("TORPROTOCOL"));
        assert_eq!(e.remote_reason(), Some("DONE"));
        assert_eq!(e.source(), Some("CACHE"));
    }

    #[test]
    fn stream_event_quoted_values_with_spaces_and_escapes() {
        let e = StreamEvent::parse(
            r#"650 STREAM 7 CONTROLLER_WAIT 0 a.tor:443 SOCKS_USERNAME="two words" SOCKS_PASSWORD="q\"uote\\back\n" PURPOSE=USER"#,
        )
        .expect("parses");
        assert_eq!(e.status, StreamStatus::ControllerWait);
        assert_eq!(e.extra("SOCKS_USERNAME"), Some("two words"));
        assert_eq!(e.extra("SOCKS_PASSWORD"), Some("q\"uote\\back\n"));
        assert_eq!(e.purpose(), Some("USER"));
    }

    #[test]
    fn stream_event_unknown_status_and_extra_fields() {
        let e =
            StreamEvent::parse("650 STREAM 9 TELEPORTED 12 host:1 FUTURE=x FLAG").expect("parses");
        assert_eq!(e.status, StreamStatus::Other("TELEPORTED".to_owned()));
        assert!(e.on_circuit());
        assert_eq!(e.extra("FUTURE"), Some("x"));
        assert_eq!(e.extra("FLAG"), Some(""));
        for (word, status) in [
            ("XOFF_SENT", StreamStatus::XoffSent),
            ("XON_RECV", StreamStatus::XonRecv),
            ("NEWRESOLVE", StreamStatus::NewResolve),
            ("REMAP", StreamStatus::Remap),
        ] {
            assert_eq!(StreamStatus::parse(word), status);
        }
    }

    #[test]
    fn stream_event_targets() {
        let e =
            StreamEvent::parse("STREAM 3 NEWRESOLVE 0 x.tor:0 PURPOSE=DNS_REQUEST").expect("ok");
        assert_eq!((e.target_host.as_str(), e.target_port), ("x.tor", 0));
        let e = StreamEvent::parse("STREAM 3 NEW 0 [::1]:80").expect("ok");
        assert_eq!(e.target_host, "[::1]");
        let e = StreamEvent::parse(
            "STREAM 25 NEW 0 127.0.0.1.$0000000000000000000000000000000000000000.exit:1 \
             PURPOSE=DIR_FETCH",
        )
        .expect("ok");
        assert_eq!(e.target_port, 1);
    }

    #[test]
    fn bad_stream_events_are_errors_not_panics() {
        for line in [
            "STREAM",
            "STREAM 1 NEW 0",
            "STREAM 1 NEW 0 noport",
            "STREAM 1 NEW 0 host:99999",
            "STREAM !! NEW 0 host:1",
            "STREAM 1 NEW 0 host:1 KEY=\"unterminated",
            "CIRC 1 BUILT",
        ] {
            assert!(StreamEvent::parse(line).is_err(), "{line}");
        }
    }

    #[test]
    fn event_from_reply_keeps_what_it_cannot_parse() {
        let replies = assemble(&["650 STREAM 1 NEW 0 nohostport", "650 CIRC 5 BUILT"]);
        assert!(matches!(
            Event::from_reply(replies[0].clone()),
            Event::Other(_)
        ));
        assert!(matches!(
            Event::from_reply(replies[1].clone()),
            Event::Other(_)
        ));
        let replies = assemble(&["650 STREAM 1 NEW 0 a.tor:80"]);
        assert!(matches!(
            Event::from_reply(replies[0].clone()),
            Event::Stream(_)
        ));
    }

    #[test]
    fn assembles_mid_and_data_lines() {
        let replies = assemble(&[
            "250-PROTOCOLINFO 1",
            "250+stream-status=",
            "1 NEW 0 a.tor:80",
            "..dotted",
            ".",
            "250 OK",
        ]);
        assert_eq!(replies.len(), 1);
        let reply = &replies[0];
        assert!(reply.is_ok());
        assert_eq!(reply.message(), "OK");
        assert_eq!(reply.lines[1].data, vec!["1 NEW 0 a.tor:80", ".dotted"]);
    }

    #[test]
    fn skips_lines_it_does_not_understand() {
        let replies = assemble(&["garbage", "25", "2500", "250-a", "xyz", "552 No"]);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].code(), 552);
        assert_eq!(replies[0].lines.len(), 2);
        assert!(!replies[0].is_ok());
    }

    #[test]
    fn events_between_replies_stay_separate() {
        let replies = assemble(&[
            "650 STREAM 1 NEW 0 a:1",
            "250-x=1",
            "250 OK",
            "650 CIRC 1 BUILT",
        ]);
        let codes: Vec<u16> = replies.iter().map(Reply::code).collect();
        assert_eq!(codes, vec![650, 250, 650]);
    }

    #[test]
    fn protocolinfo_with_quoted_cookie_path() {
        let replies = assemble(&[
            "250-PROTOCOLINFO 1",
            r#"250-AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE="/var/run/tor/a \"b\"/control_auth_cookie""#,
            r#"250-VERSION Tor="0.4.9.11""#,
            "250 OK",
        ]);
        let info = ProtocolInfo::from_reply(&replies[0]).expect("parses");
        assert!(info.offers(AuthMethod::SafeCookie));
        assert!(info.offers(AuthMethod::HashedPassword));
        assert!(!info.offers(AuthMethod::Null));
        assert_eq!(
            info.cookie_file,
            Some(PathBuf::from("/var/run/tor/a \"b\"/control_auth_cookie"))
        );
        assert_eq!(info.tor_version.as_deref(), Some("0.4.9.11"));
    }

    #[test]
    fn quote_round_trips() {
        for text in ["plain", "pa ss\"w\\ord", "tab\tnl\ncr\r", "\u{1}ctl", "ünï"] {
            assert_eq!(unquote(&quote(text)).expect("unquotes"), text);
        }
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(unquote(r#""\101\x42\7""#).expect("unquotes"), "AB\u{7}");
        assert_eq!(unquote("bare").expect("bare"), "bare");
        assert!(unquote("\"open").is_err());
        assert!(unquote("\"\\777\"").is_err());
    }

    #[test]
    fn stream_status_lines() {
        let entry = StreamEntry::parse("88 NEW 0 late.tor:80").expect("parses");
        assert!(entry.may_wait_for_controller());
        let entry = StreamEntry::parse("80 SENTCONNECT 0 x.onion:80").expect("parses");
        assert!(!entry.may_wait_for_controller());
        assert!(StreamEntry::parse("88 NEW 0").is_err());
    }

    #[test]
    fn arguments_are_checked() {
        assert!(check_keyword("__LeaveStreamsUnattached").is_ok());
        assert!(check_keyword("Map Address").is_err());
        assert!(check_word("*.tor").is_ok());
        assert!(check_word("a=b").is_err());
        assert!(check_word("a\r\nSIGNAL HALT").is_err());
        assert!(check_word_or_path("address-mappings/control").is_ok());
        assert!(check_word_or_path("a b").is_err());
        assert!(StreamId::parse("12345678901234567").is_err());
    }

    #[test]
    fn control_addresses() {
        assert_eq!(
            ControlAddr::parse("unix:/run/tor/control"),
            Ok(ControlAddr::Unix(PathBuf::from("/run/tor/control")))
        );
        assert_eq!(
            ControlAddr::parse("127.0.0.1:9051").map(|a| a.to_string()),
            Ok("127.0.0.1:9051".to_owned())
        );
        assert!(ControlAddr::parse("no-port").is_err());
    }

    #[test]
    fn safecookie_hashes_match_a_known_answer() {
        // HMAC-SHA256(server key, 32×0x01 || 32×0x02 || 32×0x03), computed
        // independently with Python's hmac module.
        let message = [[1u8; 32], [2u8; 32], [3u8; 32]].concat();
        assert_eq!(
            to_hex(&hmac_sha256(SAFECOOKIE_SERVER_KEY, &message)),
            SERVER_HASH_VECTOR
        );
        assert_eq!(from_hex("0aFF"), Some(vec![10, 255]));
        assert_eq!(from_hex("0"), None);
    }

    const SERVER_HASH_VECTOR: &str =
        "1830D2DE6E061E60ADFA2C0C2A9257B7126E51B074F39BD4519D89229DF08827";
}
