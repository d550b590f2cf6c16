//! One watcher of Tor's STREAM events on a control connection of the
//! test's own: it keeps every event, in order, and waits (bounded) for the
//! ones a test expects. On the client-daemon tests' tor it also sends SOCKS
//! requests and finds their streams by source address; on the tornet
//! network's client it finds streams by target. On both it catches `.tor`
//! names that leave and checks how Tor failed a stream inside itself.

use crate::tor::SocksRequest;
use crate::tornet::statuses;
use crossbeam_channel::Receiver;
use onions::tor::control::{
    is_tor_target, ControlConnection, Event, StreamEvent, StreamId, StreamStatus, GUARD_TO,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A control connection of the test's own that receives every STREAM event
/// (Tor sends them to each controller that asked) and keeps them all, in
/// order.
pub struct Watcher {
    /// The connection, for GETCONF, GETINFO and probes.
    pub conn: ControlConnection,
    events: Receiver<Event>,
    /// Every STREAM event received so far, in order.
    pub seen: Vec<StreamEvent>,
    /// How long an expected event may take.
    limit: Duration,
}

impl Watcher {
    /// Subscribes to STREAM events on `conn`, a connection of the test's
    /// own; each expected event may take up to `limit`.
    pub fn on(conn: ControlConnection, limit: Duration) -> Watcher {
        let events = conn.events();
        conn.set_events(&["STREAM"]).expect("SETEVENTS STREAM");
        Watcher {
            conn,
            events,
            seen: Vec::new(),
            limit,
        }
    }

    /// Takes every event that has arrived, waiting at most `wait` for the
    /// first.
    pub fn pump(&mut self, wait: Duration) {
        let mut next = self.events.recv_timeout(wait).ok();
        while let Some(event) = next {
            if let Event::Stream(event) = event {
                self.seen.push(event);
            }
            next = self.events.try_recv().ok();
        }
    }

    /// How many events have been seen: later searches can start there.
    pub fn mark(&mut self) -> usize {
        self.pump(Duration::ZERO);
        self.seen.len()
    }

    /// Waits (bounded by the watcher's limit) until `check` finds something
    /// in the events so far.
    pub fn wait_for<T>(&mut self, what: &str, check: impl Fn(&[StreamEvent]) -> Option<T>) -> T {
        self.wait_for_within(what, self.limit, check)
    }

    /// The same, bounded by `limit`.
    pub fn wait_for_within<T>(
        &mut self,
        what: &str,
        limit: Duration,
        check: impl Fn(&[StreamEvent]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = check(&self.seen) {
                return found;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!(
                    "no STREAM event showing {what} within {limit:?}; saw:\n{}",
                    self.dump()
                );
            };
            self.pump(left.min(Duration::from_millis(100)));
        }
    }

    /// The streams to `host` (as the application asked) that Tor reported
    /// NEW since `mark`, waiting (bounded) for at least one.
    pub fn new_streams_to(&mut self, mark: usize, host: &str) -> Vec<StreamId> {
        self.wait_for(&format!("a new stream to {host}"), |seen| {
            let ids: Vec<StreamId> = seen[mark.min(seen.len())..]
                .iter()
                .filter(|e| e.status == StreamStatus::New && e.target_host == host)
                .map(|e| e.id.clone())
                .collect();
            (!ids.is_empty()).then_some(ids)
        })
    }

    /// The one stream to `host` reported NEW since `mark`.
    pub fn new_stream_to(&mut self, mark: usize, host: &str) -> StreamId {
        let ids = self.new_streams_to(mark, host);
        assert_eq!(
            ids.len(),
            1,
            "one stream to {host} expected since event {mark}:\n{}",
            self.dump_from(mark)
        );
        ids[0].clone()
    }

    /// Sends a SOCKS `CONNECT host:port` to `proxy` and returns it with
    /// its stream (see [`Watcher::open`]).
    pub fn connect(
        &mut self,
        proxy: SocketAddr,
        host: &str,
        port: u16,
    ) -> (SocksRequest, StreamId) {
        self.open(|| SocksRequest::connect(proxy, host, port))
    }

    /// Sends a SOCKS `RESOLVE host` (Tor's 0xF0) to `proxy` and returns it
    /// with its stream.
    pub fn resolve(&mut self, proxy: SocketAddr, host: &str) -> (SocksRequest, StreamId) {
        self.open(|| SocksRequest::resolve(proxy, host))
    }

    /// Sends a SOCKS request and finds its stream: the first NEW or
    /// NEWRESOLVE event after the request whose `SOURCE_ADDR` is the
    /// client's address (a port may be reused by a later client, so events
    /// from before the request do not count).
    fn open(&mut self, send: impl FnOnce() -> SocksRequest) -> (SocksRequest, StreamId) {
        self.pump(Duration::ZERO);
        let mark = self.seen.len();
        let request = send();
        let source = request.source.to_string();
        let what = format!("a new stream from {source} ({})", request.what);
        let id = self.wait_for(&what, |seen| {
            seen[mark..]
                .iter()
                .find(|e| {
                    matches!(e.status, StreamStatus::New | StreamStatus::NewResolve)
                        && e.source_addr() == Some(source.as_str())
                })
                .map(|e| e.id.clone())
        });
        (request, id)
    }

    /// Waits (bounded) for an event of stream `id` that matches `check`.
    pub fn wait_event(
        &mut self,
        id: &StreamId,
        what: &str,
        check: impl Fn(&StreamEvent) -> bool,
    ) -> StreamEvent {
        self.wait_for(&format!("{what} for stream {id}"), |seen| {
            seen.iter().find(|e| e.id == *id && check(e)).cloned()
        })
    }

    /// Waits (bounded) until stream `id` is CLOSED; returns its events.
    pub fn wait_closed(&mut self, id: &StreamId) -> Vec<StreamEvent> {
        self.wait_event(id, "CLOSED", |e| e.status == StreamStatus::Closed);
        self.events_of(id)
    }

    /// Waits (bounded) until stream `id` is CLOSED and asserts that the
    /// `*.tor` guard failed it inside Tor: REMAP to [`GUARD_TO`], FAILED
    /// with TORPROTOCOL, CLOSED, nothing on a circuit or sent out. What a
    /// `.tor` name gets while no daemon redirects it. Returns its events.
    pub fn assert_guard_failed(&mut self, id: &StreamId, what: &str) -> Vec<StreamEvent> {
        let expected = [
            StreamStatus::Remap,
            StreamStatus::Failed,
            StreamStatus::Closed,
        ];
        let events = self.assert_failed_inside(id, what, &expected);
        let remap = events.iter().find(|e| e.status == StreamStatus::Remap);
        assert_eq!(
            remap.map(|e| e.target_host.as_str()),
            Some(GUARD_TO),
            "{what}: {events:#?}"
        );
        events
    }

    /// Waits (bounded) until stream `id` is CLOSED and asserts that Tor
    /// refused its host itself, no mapping involved: FAILED with
    /// TORPROTOCOL, CLOSED, nothing on a circuit or sent out. What a
    /// `.tor.onion` name gets with neither daemon nor guard. Returns its
    /// events.
    pub fn assert_refused_by_tor(&mut self, id: &StreamId, what: &str) -> Vec<StreamEvent> {
        self.assert_failed_inside(id, what, &[StreamStatus::Failed, StreamStatus::Closed])
    }

    /// Waits (bounded) until stream `id` is CLOSED and asserts that it
    /// failed inside Tor: past NEW (and CONTROLLER_WAIT, if a controller
    /// held it) its statuses are `expected`, its FAILED gives TORPROTOCOL,
    /// none of its events is on a circuit or sent out, and no `.tor` name
    /// has left. Returns its events.
    fn assert_failed_inside(
        &mut self,
        id: &StreamId,
        what: &str,
        expected: &[StreamStatus],
    ) -> Vec<StreamEvent> {
        let events = self.wait_closed(id);
        let held = events
            .iter()
            .take_while(|e| matches!(e.status, StreamStatus::New | StreamStatus::ControllerWait))
            .count();
        assert_eq!(statuses(&events[held..]), expected, "{what}: {events:#?}");
        let failed = events.iter().find(|e| e.status == StreamStatus::Failed);
        assert_eq!(
            failed.and_then(|e| e.reason()),
            Some("TORPROTOCOL"),
            "{what}: {events:#?}"
        );
        for event in &events {
            assert!(
                !event.on_circuit()
                    && !matches!(
                        event.status,
                        StreamStatus::SentConnect | StreamStatus::SentResolve
                    ),
                "{what}: on a circuit or sent out: {event:?}"
            );
        }
        self.assert_no_leak(what);
        events
    }

    /// Asserts that stream `id` never waited for a controller: Tor handled
    /// it without asking one (no daemon attaches streams).
    pub fn assert_never_held(&self, id: &StreamId, what: &str) {
        assert!(
            !statuses(&self.events_of(id)).contains(&StreamStatus::ControllerWait),
            "{what}: no controller should be asked:\n{}",
            self.dump()
        );
    }

    /// The events of stream `id` so far.
    pub fn events_of(&self, id: &StreamId) -> Vec<StreamEvent> {
        self.seen.iter().filter(|e| e.id == *id).cloned().collect()
    }

    /// Every event so far that shows a `.tor` target on a circuit or sent
    /// out (SENTCONNECT, SENTRESOLVE, SUCCEEDED): a name that leaked.
    pub fn leaks(&mut self) -> Vec<StreamEvent> {
        self.pump(Duration::ZERO);
        self.seen
            .iter()
            .filter(|e| is_tor_target(&e.target_host))
            .filter(|e| {
                e.on_circuit()
                    || matches!(
                        e.status,
                        StreamStatus::SentConnect
                            | StreamStatus::SentResolve
                            | StreamStatus::Succeeded
                    )
            })
            .cloned()
            .collect()
    }

    /// Fails the test if any event so far shows a `.tor` name leaving.
    pub fn assert_no_leak(&mut self, when: &str) {
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "{when}: a .tor target on a circuit or sent out: {leaks:#?}\nall events:\n{}",
            self.dump()
        );
    }

    /// The events so far, one per line, for failure messages.
    pub fn dump(&self) -> String {
        self.dump_from(0)
    }

    /// The events from index `mark` on, one per line.
    pub fn dump_from(&self, mark: usize) -> String {
        self.seen[mark.min(self.seen.len())..]
            .iter()
            .map(crate::tornet::describe_event)
            .collect::<Vec<_>>()
            .join("\n")
    }
}
