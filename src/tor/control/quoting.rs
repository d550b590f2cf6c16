//! The control protocol's text: splitting a line into tokens with quoted
//! strings kept whole, `KEY=value` pairs, QuotedString decoding and
//! encoding ([`unquote`], [`quote`]), hex, and the checks that keep an
//! argument from smuggling a second command into a line. The parsers and
//! the commands read and write Tor's text through these.

use std::fmt;

/// Splits on spaces, keeping quoted strings (with their quotes) whole.
pub(super) fn split_tokens(text: &str) -> Result<Vec<&str>, ParseError> {
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
        return Err(ParseError::UnterminatedIn(text.to_owned()));
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
pub(super) fn key_values(tokens: &[&str]) -> Result<Vec<(String, String)>, ParseError> {
    tokens
        .iter()
        .map(|token| match token.split_once('=') {
            Some((key, value)) => Ok((key.to_owned(), unquote(value)?)),
            None => Ok(((*token).to_owned(), String::new())),
        })
        .collect()
}

pub(super) fn find<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Decodes a QuotedString (C escapes, `\ooo` octal, `\xHH`); a value that
/// is not quoted is returned as is.
pub fn unquote(value: &str) -> Result<String, ParseError> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_owned());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| ParseError::Unterminated(value.to_owned()))?;
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
) -> Result<(), ParseError> {
    let b = bytes.next().ok_or(ParseError::TrailingBackslash)?;
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
) -> Result<u8, ParseError> {
    let mut value = u32::from(first);
    for _ in 0..max {
        let Some(d) = bytes.peek().and_then(|b| char::from(*b).to_digit(radix)) else {
            break;
        };
        value = value * radix + d;
        bytes.next();
    }
    u8::try_from(value).map_err(|_| ParseError::EscapeNotByte(value))
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

/// Why an argument must not be put on a command line; the connection's
/// commands turn it into [`ControlError::BadArgument`].
///
/// [`ControlError::BadArgument`]: super::ControlError::BadArgument
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BadArgument(pub(super) String);

/// A configuration key or event name: letters, digits and `_`.
pub(super) fn check_keyword(word: &str) -> Result<&str, BadArgument> {
    let valid = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(word)
    } else {
        Err(BadArgument(format!("{word:?} is not a key")))
    }
}

/// A plain argument: printable, no space, no `"`, no `=`.
pub(super) fn check_word(word: &str) -> Result<&str, BadArgument> {
    let valid = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=');
    if valid {
        Ok(word)
    } else {
        Err(BadArgument(format!("{word:?} is not a plain word")))
    }
}

/// A GETINFO key: letters, digits, `-`, `_`, `/`, `.`, `:`.
pub(super) fn check_word_or_path(key: &str) -> Result<&str, BadArgument> {
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/.:".contains(&b));
    if valid {
        Ok(key)
    } else {
        Err(BadArgument(format!("{key:?} is not a GETINFO key")))
    }
}

pub(super) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

pub(super) fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Why a piece of control-protocol text (a reply line, an event, a
/// `KEY=value` list, a control address) does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A line with a quoted string that does not end.
    UnterminatedIn(String),
    /// A quoted value that does not end.
    Unterminated(String),
    /// A quoted string that ends in a backslash.
    TrailingBackslash,
    /// An escape whose value does not fit a byte.
    EscapeNotByte(u32),
    /// An event with too few fields.
    TooFewFields,
    /// An event that is not a STREAM event.
    NotStreamEvent,
    /// A `stream-status` line without 4 fields.
    NotFourFields(String),
    /// Not a stream ID.
    StreamId(String),
    /// A stream target that is not `HOST:PORT`.
    TargetNotHostPort(String),
    /// A stream target with a bad port.
    TargetPort(String),
    /// A PROTOCOLINFO reply that names no authentication method.
    NoAuthMethods,
    /// A control address that is not `HOST:PORT` (nor a socket path).
    ControlAddr {
        /// The address given.
        text: String,
        /// Why it does not resolve.
        why: String,
    },
    /// A control address that resolves to nothing.
    NoAddress(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnterminatedIn(text) => {
                write!(f, "unterminated quoted string in {text:?}")
            }
            ParseError::Unterminated(value) => write!(f, "unterminated quoted string {value:?}"),
            ParseError::TrailingBackslash => write!(f, "quoted string ends in a backslash"),
            ParseError::EscapeNotByte(value) => write!(f, "escape value {value} is not a byte"),
            ParseError::TooFewFields => write!(f, "too few fields"),
            ParseError::NotStreamEvent => write!(f, "not a STREAM event"),
            ParseError::NotFourFields(line) => {
                write!(f, "stream-status line {line:?} has not 4 fields")
            }
            ParseError::StreamId(text) => write!(f, "{text:?} is not a stream ID"),
            ParseError::TargetNotHostPort(target) => {
                write!(f, "target {target:?} is not HOST:PORT")
            }
            ParseError::TargetPort(target) => write!(f, "target {target:?} has a bad port"),
            ParseError::NoAuthMethods => write!(f, "PROTOCOLINFO reply has no AUTH METHODS"),
            ParseError::ControlAddr { text, why } => {
                write!(f, "control address {text:?} is not HOST:PORT ({why})")
            }
            ParseError::NoAddress(text) => write!(f, "control address {text:?} has no address"),
        }
    }
}

impl std::error::Error for ParseError {}
