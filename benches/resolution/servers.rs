//! The Quorum and the mirror the daemon resolves on: their key and the
//! wait until the mirror holds every claim.

use crate::settings::Settings;
use onions::wire::Status;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::line::LineConn;
use testkit::process::Proc;
use testkit::servers::answering_head;

/// Pause between polls.
const POLL: Duration = Duration::from_millis(50);

/// `onions-server --print-key` for the state directory `state`.
pub fn print_key(settings: &Settings, state: &Path) -> String {
    testkit::servers::print_key_with(settings.program("onions-server"), state)
}

/// Waits (bounded) until the server at `addr` has applied records up to
/// `seq` and answers lookups against a head covering it (a mirror's head
/// that matched its audit, the Quorum's newest).
pub fn wait_caught_up(server: &mut Proc, addr: SocketAddr, seq: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        server.check_running();
        let (applied, answering) = match status(addr) {
            Ok(status) => {
                let answering = answering_head(&status).map_or(0, |h| h.seq);
                (status.seq, answering)
            }
            Err(_) => (0, 0),
        };
        if applied >= seq && answering >= seq {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} at seq {applied}, answering against a head of seq {answering}, not {seq}, \
             after {limit:?}; its log ends:\n{}",
            server.what,
            server.log_tail()
        );
        std::thread::sleep(POLL);
    }
}

/// The status of the server at `addr`, on a connection of its own.
fn status(addr: SocketAddr) -> Result<Status, String> {
    LineConn::try_connect(addr, Duration::from_secs(5), Duration::from_secs(10))?.try_status()
}
