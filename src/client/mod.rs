//! `onions-client`: the daemon Tor Browser starts. It watches Tor's streams
//! on the control port, resolves `.tor` names through mirrors (verifying
//! every answer), redirects those streams to the owner's onion address, and
//! hands every other stream straight back to Tor. A name may also be
//! spelled `NAME.tor.onion` (PROTOCOL.md §12.6): the same name, resolved
//! the same way ([`crate::name::Host`] reads both).
//!
//! Either spelling may end in one dot (`example.tor.`), which Tor keeps.
//!
//! Safety while the daemon is away rests on Tor itself: the mapping
//! `*.tor -> tor.invalid.onion` ([`crate::tor::control::GUARD_FROM`]) makes
//! any `.tor` stream nobody redirected fail inside Tor instead of reaching an
//! exit; a `NAME.tor.onion` stream needs no mapping, since Tor refuses any
//! host under `.onion` that is not a valid onion address. A trailing dot
//! defeats both (Tor matches `*.tor` against `example.tor.` literally, and
//! `example.tor.onion.` is no `.onion` host to it), so the guard also maps
//! `*.tor.` and `*.tor.onion.` ([`crate::tor::control::GUARDS_FROM`]).
//! [`daemon::release`] hands waiting streams back so nothing hangs.

pub mod daemon;
pub mod resolve;
