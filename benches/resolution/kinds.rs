//! The five kinds of fetch a round makes, and the benchmark's view of the
//! network that makes them: the same page by its `.onion` address (the
//! daemon attaching the stream, or Tor), by a cached and an uncached
//! `.tor` name, and after a lookup done by hand.

use crate::control::Control;
use crate::fetch::{fetch, fetch_by_hand, Fetch, PAGE_TEXT};
use std::net::SocketAddr;

/// The kinds of fetch of one round.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    /// `http://ONION/`, the daemon attaching the stream (as for every
    /// stream while it runs).
    Onion,
    /// `http://ONION/` with `__LeaveStreamsUnattached` off for the fetch:
    /// Tor attaches the stream itself, as with no daemon.
    Plain,
    /// `http://example.tor/`, answered from the daemon's cache.
    Cached,
    /// `http://nI.tor/`, a name the daemon has not seen.
    Uncached,
    /// The round's `nI.tor` asked of the mirror by the benchmark itself,
    /// then `http://ONION/`: the network's share of an uncached name.
    ByHand,
}

/// Every kind, in the order of [`Kind::index`].
pub const KINDS: [Kind; 5] = [
    Kind::Onion,
    Kind::Plain,
    Kind::Cached,
    Kind::Uncached,
    Kind::ByHand,
];

impl Kind {
    /// Where the kind is in [`KINDS`].
    pub fn index(self) -> usize {
        KINDS
            .iter()
            .position(|k| *k == self)
            .expect("every kind is listed")
    }

    /// The kind's row label in the results.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Onion => ".onion (the daemon attaches it)",
            Kind::Plain => ".onion (tor attaches it, as without)",
            Kind::Cached => "example.tor (cached)",
            Kind::Uncached => "nI.tor (uncached, a new name each)",
            Kind::ByHand => "mirror lookup by hand, then .onion",
        }
    }
}

/// The benchmark's view of the network, for fetches.
pub struct Target<'a> {
    /// The client tor's SOCKS port.
    pub proxy: SocketAddr,
    /// The benchmark's control connection to the client tor.
    pub control: &'a Control,
    /// The test page's onion address.
    pub onion: &'a str,
    /// The mirror's onion address.
    pub mirror: &'a str,
}

impl Target<'_> {
    /// One fetch of `kind`; `name` is the round's uncached name.
    pub fn fetch(&self, kind: Kind, name: &str) -> (String, Result<Fetch, String>) {
        let result = match kind {
            Kind::Onion => fetch(self.proxy, self.onion, PAGE_TEXT),
            Kind::Plain => {
                self.control.leave_streams_unattached(false);
                let result = fetch(self.proxy, self.onion, PAGE_TEXT);
                self.control.leave_streams_unattached(true);
                result
            }
            Kind::Cached => fetch(self.proxy, "example.tor", PAGE_TEXT),
            Kind::Uncached => fetch(self.proxy, name, PAGE_TEXT),
            Kind::ByHand => fetch_by_hand(self.proxy, self.mirror, name, self.onion),
        };
        let host = match kind {
            Kind::Onion | Kind::Plain => self.onion.to_owned(),
            Kind::Cached => "example.tor".to_owned(),
            Kind::Uncached => name.to_owned(),
            Kind::ByHand => format!("{name} by hand"),
        };
        (host, result)
    }
}
