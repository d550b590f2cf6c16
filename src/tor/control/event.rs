//! Asynchronous messages ([`Event`]) and the STREAM event the client daemon
//! lives on: [`StreamEvent`], its [`StreamId`] and [`StreamStatus`], and the
//! lines of `GETINFO stream-status` ([`StreamEntry`]). Parsing never panics:
//! what does not parse is an error, or an [`Event::Other`] for the caller to
//! ignore.

use super::quoting::{find, key_values, split_tokens, ParseError};
use super::reply::Reply;
use std::fmt;

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
    pub fn parse(text: &str) -> Result<StreamId, ParseError> {
        let valid =
            (1..=16).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric());
        if valid {
            Ok(StreamId(text.to_owned()))
        } else {
            Err(ParseError::StreamId(text.to_owned()))
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
    pub fn parse(line: &str) -> Result<StreamEvent, ParseError> {
        let text = line
            .strip_prefix("650 ")
            .or_else(|| line.strip_prefix("650-"))
            .unwrap_or(line);
        let tokens = split_tokens(text)?;
        let [keyword, id, status, circuit, target, rest @ ..] = tokens.as_slice() else {
            return Err(ParseError::TooFewFields);
        };
        if *keyword != "STREAM" {
            return Err(ParseError::NotStreamEvent);
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
    pub fn parse(line: &str) -> Result<StreamEntry, ParseError> {
        let fields: Vec<&str> = line.split(' ').collect();
        let [id, status, circuit, target] = fields.as_slice() else {
            return Err(ParseError::NotFourFields(line.to_owned()));
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

fn split_target(target: &str) -> Result<(String, u16), ParseError> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| ParseError::TargetNotHostPort(target.to_owned()))?;
    let port = port
        .parse()
        .map_err(|_| ParseError::TargetPort(target.to_owned()))?;
    Ok((host.to_owned(), port))
}
