//! `onions-client`: the daemon Tor Browser starts. It watches Tor's streams
//! on the control port, resolves `.tor` names through mirrors (verifying
//! every answer), redirects those streams to the owner's onion address, and
//! hands every other stream straight back to Tor.
//!
//! Safety while the daemon is away rests on Tor itself: the mapping
//! `*.tor -> tor.invalid.onion` ([`crate::tor::control::GUARD_FROM`]) makes
//! any `.tor` stream nobody redirected fail inside Tor instead of reaching an
//! exit, and [`daemon::release`] hands waiting streams back so nothing hangs.

pub mod daemon;
pub mod resolve;
