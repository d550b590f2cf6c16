//! The commands a [`ControlConnection`] sends once authenticated:
//! configuration (SETCONF, RESETCONF, GETCONF, SETEVENTS, GETINFO,
//! MAPADDRESS), streams (ATTACHSTREAM, REDIRECTSTREAM, CLOSESTREAM,
//! `stream-status`), and the client daemon's safety net: the guard mappings
//! (`*.tor`, and `*.tor.` and `*.tor.onion.` for hosts ending in a dot) and
//! handing waiting streams back to Tor ([`HandBack`]). Every
//! key, word and value goes through `quoting` (a check, or [`quote`])
//! before it is put on a line; stream IDs were checked when parsed.

use super::connection::ControlConnection;
use super::error::ControlError;
use super::event::{StreamEntry, StreamId};
use super::quoting::{check_keyword, check_word, check_word_or_path, quote};
use super::{GUARDS_FROM, GUARD_TO};
use crate::name::Host;
use std::fmt;

impl ControlConnection {
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

    /// `CLOSESTREAM id reason` (see [`REASON_RESOLVEFAILED`](super::REASON_RESOLVEFAILED)).
    pub fn close_stream(&self, id: &StreamId, reason: u8) -> Result<(), ControlError> {
        self.checked(&format!("CLOSESTREAM {id} {reason}"))
            .map(drop)
    }

    /// `GETINFO stream-status`, parsed.
    pub fn stream_status(&self) -> Result<Vec<StreamEntry>, ControlError> {
        let text = self.get_info("stream-status")?;
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| StreamEntry::parse(l).map_err(ControlError::Parse))
            .collect()
    }

    // ---- the daemon's safety net

    /// Maps each of [`GUARDS_FROM`] (`*.tor`, `*.tor.`, `*.tor.onion.`) to
    /// [`GUARD_TO`] with MAPADDRESS, so that a `.tor` stream nobody
    /// redirects fails inside Tor (`REMAP` to the invalid name, then
    /// `FAILED ... REASON=TORPROTOCOL`, SOCKS error 1) instead of reaching
    /// an exit, however the name is spelled: Tor matches the host as the
    /// application wrote it, trailing dot included (see the module
    /// `tor::control`). Harmless while a controller redirects `.tor`
    /// streams: Tor applies a mapping only when a stream is attached, after
    /// REDIRECTSTREAM. Lasts until Tor exits; the same `MapAddress` lines in
    /// torrc cover a Tor restart.
    pub fn guard_tor_names(&self) -> Result<(), ControlError> {
        GUARDS_FROM
            .iter()
            .try_for_each(|from| self.map_address(from, GUARD_TO))
    }

    /// Whether Tor maps every one of [`GUARDS_FROM`] to [`GUARD_TO`] (from
    /// torrc or a controller).
    pub fn tor_names_guarded(&self) -> Result<bool, ControlError> {
        Ok(self.unguarded()?.is_empty())
    }

    /// The wildcards of [`GUARDS_FROM`] that Tor does not map to
    /// [`GUARD_TO`], by torrc or by a controller: the spellings of a `.tor`
    /// name that would reach an exit with no daemon running.
    pub fn unguarded(&self) -> Result<Vec<&'static str>, ControlError> {
        let mut mappings = String::new();
        for key in ["address-mappings/config", "address-mappings/control"] {
            mappings.push_str(&self.get_info(key)?);
            mappings.push('\n');
        }
        Ok(GUARDS_FROM
            .into_iter()
            .filter(|from| {
                let wanted = format!("{from} {GUARD_TO} ");
                !mappings.lines().any(|l| l.starts_with(&wanted))
            })
            .collect())
    }

    /// The wildcards of [`GUARDS_FROM`] that no `MapAddress` line of the
    /// configuration (torrc, `GETCONF MapAddress`) maps to [`GUARD_TO`]:
    /// those are missing after a Tor restart until a controller maps them
    /// again (a torrc written for `*.tor` alone lacks the trailing-dot
    /// spellings). Read from the configuration, not the mappings in force,
    /// since a controller's MAPADDRESS of the same wildcard takes a torrc
    /// mapping's place there.
    pub fn unguarded_in_torrc(&self) -> Result<Vec<&'static str>, ControlError> {
        let lines = self.get_conf("MapAddress")?;
        Ok(GUARDS_FROM
            .into_iter()
            .filter(|from| {
                !lines.iter().any(|line| {
                    let mut words = line.split_whitespace();
                    let same = |word: Option<&str>, want: &str| {
                        word.is_some_and(|w| w.eq_ignore_ascii_case(want))
                    };
                    same(words.next(), from)
                        && same(words.next(), GUARD_TO)
                        && words.next().is_none()
                })
            })
            .collect())
    }

    /// Gives streams back to Tor: `RESETCONF __LeaveStreamsUnattached`, then
    /// `ATTACHSTREAM id 0` for every stream that may be waiting for a
    /// controller (Tor does not attach those itself, they would time out
    /// after `SocksTimeout`). A name's stream fails locally: Tor answers
    /// its attach with 551 and fails the stream (a `.tor` one, or any
    /// spelling with a trailing dot, through the guard; a `.tor.onion` one
    /// because it is no valid onion address).
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
    /// Streams to names (`.tor` or `.tor.onion`) that Tor failed itself.
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

/// True for the client's hosts, valid or not, in any case: `.tor` names
/// and their `.tor.onion` spelling (and bare `tor`, `tor.onion`), with or
/// without trailing dots, as [`Host::classify`] decides. Such a host must
/// never reach an exit.
pub fn is_tor_target(host: &str) -> bool {
    Host::classify(host).is_ours()
}
