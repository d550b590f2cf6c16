//! What every phase of the story uses ([`Story`]): the servers, the lying
//! mirror, the network and the record of its client tor's STREAM events;
//! and the fetches through that tor that the phases check: a name loaded
//! through the daemon, a name failed inside Tor (with the guard, or with
//! neither daemon nor guard), and a plain `.onion` address.

use crate::helpers::{lookup_name, strings};
use crate::{FETCH_LIMIT, LOCAL_FAILURE, SERVICE_PORT, TEST_PAGE};
use onions::tor::control::{StreamId, StreamStatus, GUARD_FROM, GUARD_TO};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use testkit::liar::Liar;
use testkit::servers::Server;
use testkit::streams::Watcher;
use testkit::tor::Daemon;
use testkit::tornet::{curl, describe_event, statuses, Run, Tornet};
use testkit::TempDir;

/// What every phase uses.
pub(crate) struct Story {
    // Dropped in this order: the liar, the servers, the event log, the
    // network (stopped by PID), and the files last.
    pub(crate) liar: Liar,
    pub(crate) quorum: Server,
    pub(crate) mirror: Server,
    pub(crate) log: Watcher,
    pub(crate) net: Tornet,
    /// The Quorum's key, Base64.
    pub(crate) key: String,
    /// The test page's onion, the www page's onion.
    pub(crate) onion: String,
    pub(crate) onion2: String,
    pub(crate) socks: SocketAddr,
    /// Where programs' outputs go.
    pub(crate) runs: PathBuf,
    pub(crate) scratch: TempDir,
}

impl Story {
    /// `--control`/`--cookie` of the client tor, as the daemon and
    /// `--release` take them.
    pub(crate) fn access(&self) -> Vec<String> {
        strings(&[
            "--control",
            self.net.get("TORNET_CONTROL"),
            "--cookie",
            self.net.get("TORNET_COOKIE"),
        ])
    }

    /// Starts `onions-client` (log in `log_name`) asking the liar first,
    /// the honest mirror second, both as onions through the client's SOCKS
    /// port; waits until it has attached.
    pub(crate) fn start_daemon(&self, log_name: &str) -> Daemon {
        let liar = format!("{}:{SERVICE_PORT}", self.net.get("TORNET_LIAR_ONION"));
        let mirror = format!("{}:{SERVICE_PORT}", self.net.get("TORNET_MIRROR_ONION"));
        let mut args = self.access();
        args.extend(strings(&[
            "--mirror",
            &liar,
            "--mirror",
            &mirror,
            "--quorum-key",
            &self.key,
            "--socks",
            &self.socks.to_string(),
        ]));
        let mut daemon = Daemon::start(&self.scratch.join(log_name), &args, &[]);
        daemon.wait_log(
            &[&format!(
                "attached to tor at {}",
                self.net.get("TORNET_CONTROL")
            )],
            1,
        );
        daemon
    }

    /// `__LeaveStreamsUnattached` as the client tor has it now.
    pub(crate) fn leave_streams_unattached(&self) -> String {
        self.log
            .conn
            .get_conf("__LeaveStreamsUnattached")
            .expect("GETCONF __LeaveStreamsUnattached")
            .join(",")
    }

    /// Fetches `http://host/` (a `.tor` or `.tor.onion` name) with the
    /// daemon up: the page holds `page`; Tor reported one stream to `host`,
    /// the daemon logged its lookup name redirected to `onion`, and Tor's
    /// SUCCEEDED event shows the stream connected to `onion` (never to the
    /// name).
    pub(crate) fn fetch_named(&mut self, daemon: &mut Daemon, host: &str, onion: &str, page: &str) {
        let (got, id, _) = self.fetch_loading(host, page, Some(daemon));
        let url = format!("http://{host}/");
        let name = lookup_name(host);
        let line = daemon.wait_log(&[&format!("stream {id}: {name} -> ")], 1)[0].clone();
        assert!(
            line.contains(&format!(" -> {onion} ")),
            "stream {id} ({host}) should go to {onion}: {line}"
        );
        let connected = self
            .log
            .wait_event(&id, "SUCCEEDED", |e| e.status == StreamStatus::Succeeded);
        assert_eq!(
            (connected.target_host.as_str(), connected.target_port),
            (onion, 80),
            "{host}: Tor connected stream {id} to the redirect target"
        );
        let events = self.log.events_of(&id);
        assert!(
            statuses(&events).contains(&StreamStatus::ControllerWait),
            "{host}: the daemon took the stream: {events:#?}"
        );
        self.log.assert_no_leak(&url);
        eprintln!(
            "  {url} -> {onion}: {page:?} in {:.2} s (stream {id})",
            got.took.as_secs_f64()
        );
    }

    /// Fetches `http://host/` (a `.tor` name) with the daemon away: curl
    /// fails within [`LOCAL_FAILURE`], and Tor's events show the guard at
    /// work: REMAP to the invalid onion name, FAILED with TORPROTOCOL,
    /// CLOSED, all on circuit 0; and no controller was asked
    /// (`__LeaveStreamsUnattached` is off).
    pub(crate) fn fails_locally(&mut self, host: &str) {
        let (got, id) = self.fetch_failing(host, "with the daemon away");
        self.assert_guarded(&id, host);
        self.log.assert_never_held(&id, host);
        eprintln!(
            "  http://{host}/ failed inside Tor in {:.2} s (curl exit {:?}: {})",
            got.took.as_secs_f64(),
            got.code(),
            got.stderr.trim()
        );
    }

    /// Stream `id` (to `host`) failed inside Tor through the guard.
    pub(crate) fn assert_guarded(&mut self, id: &StreamId, host: &str) {
        self.log.assert_guard_failed(id, host);
    }

    /// Fetches `http://host/` (a `.tor.onion` name) with the daemon away
    /// and no guard mapping: curl fails within [`LOCAL_FAILURE`] and Tor's
    /// events show Tor refusing the host itself: no REMAP (no mapping
    /// touched it), no controller asked, FAILED with TORPROTOCOL, CLOSED,
    /// nothing on a circuit or sent out.
    pub(crate) fn refused_by_tor(&mut self, host: &str) {
        let (got, id) = self.fetch_failing(host, "with neither daemon nor guard");
        let events = self.log.assert_refused_by_tor(&id, host);
        assert_eq!(
            statuses(&events),
            [
                StreamStatus::New,
                StreamStatus::Failed,
                StreamStatus::Closed
            ],
            "{host}: {events:#?}"
        );
        let shown: Vec<String> = events.iter().map(describe_event).collect();
        eprintln!(
            "  http://{host}/ failed inside Tor in {:.2} s without a guard \
             (curl exit {:?}: {}); stream {id}:\n    {}",
            got.took.as_secs_f64(),
            got.code(),
            got.stderr.trim(),
            shown.join("\n    ")
        );
    }

    /// Fetches `http://host/`, which must load a page holding `page` within
    /// [`FETCH_LIMIT`] (else the failure shows `daemon`'s log, if any);
    /// returns curl's run, the one stream Tor reported to `host`, and the
    /// mark of the events from before the fetch.
    fn fetch_loading(
        &mut self,
        host: &str,
        page: &str,
        daemon: Option<&Daemon>,
    ) -> (Run, StreamId, usize) {
        let mark = self.log.mark();
        let url = format!("http://{host}/");
        let got = curl(&self.runs, self.socks, &url, FETCH_LIMIT);
        assert!(
            got.success() && got.stdout.contains(page),
            "curl {url} should load {page:?}: {}\n{}events:\n{}",
            got.describe(),
            daemon.map_or(String::new(), |d| format!("daemon log:\n{}\n", d.log())),
            self.log.dump_from(mark)
        );
        let id = self.log.new_stream_to(mark, host);
        (got, id, mark)
    }

    /// Fetches `http://host/`, which must fail within [`LOCAL_FAILURE`]
    /// (`when`: in what state of daemon and guard); returns curl's run and
    /// the one stream Tor reported to `host`.
    fn fetch_failing(&mut self, host: &str, when: &str) -> (Run, StreamId) {
        let mark = self.log.mark();
        let url = format!("http://{host}/");
        let got = curl(&self.runs, self.socks, &url, Duration::from_secs(20));
        assert!(
            !got.success() && got.took < LOCAL_FAILURE,
            "curl {url} should fail at once {when}: {}\nevents:\n{}",
            got.describe(),
            self.log.dump_from(mark)
        );
        let id = self.log.new_stream_to(mark, host);
        (got, id)
    }

    /// Removes the `*.tor` guard mapping from the client tor (MAPADDRESS of
    /// an address to itself removes its mapping), or puts it back.
    pub(crate) fn set_guard(&self, on: bool) {
        let to = if on { GUARD_TO } else { GUARD_FROM };
        self.log
            .conn
            .map_address(GUARD_FROM, to)
            .unwrap_or_else(|e| panic!("MAPADDRESS {GUARD_FROM}={to}: {e}"));
        let guarded = self.log.conn.tor_names_guarded().expect("address-mappings");
        assert_eq!(
            guarded,
            on,
            "the guard mapping is {}",
            if on { "back" } else { "gone" }
        );
    }

    /// Fetches the test page by its plain `.onion` address (no name
    /// involved): it loads. `daemon_up`: whether a controller took the
    /// stream (CONTROLLER_WAIT) or Tor attached it itself.
    pub(crate) fn plain_works(&mut self, daemon_up: bool) {
        let onion = self.onion.clone();
        let (got, id, mark) = self.fetch_loading(&onion, TEST_PAGE, None);
        let url = format!("http://{onion}/");
        self.log
            .wait_event(&id, "SUCCEEDED", |e| e.status == StreamStatus::Succeeded);
        let waited = statuses(&self.log.events_of(&id)).contains(&StreamStatus::ControllerWait);
        assert_eq!(
            waited,
            daemon_up,
            "{url}: CONTROLLER_WAIT only while a daemon attaches streams:\n{}",
            self.log.dump_from(mark)
        );
        eprintln!(
            "  {url} loads in {:.2} s ({})",
            got.took.as_secs_f64(),
            if daemon_up {
                "the daemon attached it"
            } else {
                "Tor attached it itself"
            }
        );
    }
}
