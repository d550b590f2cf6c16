//! Row 7: propagation of a put through the Quorum, mirror A and mirror B.
//! Records are put one at a time at the Quorum; at each server a
//! subscriber times the record's push and the first head push covering
//! it, and a poller times the first lookup answered `found` (a head
//! covering it matched that server's audit).
//!
//! A server answers `found` only once the record is stored, and it pushes
//! the record as soon as it is stored, so each poller starts asking when
//! that server's record push arrives, not when the put is sent. Polling
//! from the put kept three clients asking every 100 us all the way through
//! the path, on the same cores as the servers they were timing. And each
//! push and answer is timed when its line has been read, before this
//! process decodes it: decoding a record checks its two keys' points.

use crate::bound::ADDRESSES;
use crate::heads::Timings;
use crate::server::{timing, Server, REPLY_LIMIT};
use crate::table::note;
use crate::{Bench, Report};
use onions::wire::{Push, Reply};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use testkit::line::{lookup_request, LineConn};
use testkit::records::Maker;
use testkit::stats::percentile_ms;

/// Records put one at a time for the propagation latency.
pub const PROPAGATION_SAMPLES: usize = 200;
/// Pause between two lookups of a name not answerable yet.
const ANSWER_POLL: Duration = Duration::from_micros(100);
/// The servers of the propagation measurement, in the order reported.
const HOPS: [&str; 3] = ["Quorum", "mirror A", "mirror B"];

/// What is timed at each server for each put.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seen {
    /// A subscriber to the server received the record's push.
    Record = 0,
    /// A subscriber received a head push covering the record's seq.
    Head = 1,
    /// A lookup of the name at the server was answered `found` (polled
    /// every [`ANSWER_POLL`]): a head covering it is the one it answers
    /// with (at a mirror: it matched the mirror's audit).
    Answer = 2,
}

/// Where a put's record showed up: server, what, sample, when.
type Arrival = (usize, Seen, usize, Instant);

/// Latencies from sending each put: the `accepted` reply, and per server
/// and [`Seen`] (indexed by its value).
pub struct Propagation {
    accepted: Vec<Duration>,
    times: [[Vec<Duration>; 3]; 3],
}

impl Propagation {
    fn of(&self, hop: usize, seen: Seen) -> &[Duration] {
        &self.times[hop][seen as usize]
    }
}

/// Shuts the sockets down when dropped, so threads blocked reading them
/// end at once when the benchmark stops early.
struct Shutter(Vec<TcpStream>);

impl Drop for Shutter {
    fn drop(&mut self) {
        for stream in &self.0 {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Puts `puts` (records `first..`) one at a time at the Quorum and times
/// the reply, and at the Quorum, A and B the record push, the covering
/// head push and the first `found` answer; the next put goes once every
/// one of those came for the previous one.
fn time_propagation(servers: [&Server; 3], puts: &[Vec<u8>], first: usize) -> Propagation {
    let samples = puts.len();
    let names: Vec<String> = (0..samples).map(|k| Maker::name(first + k)).collect();
    let mut subs: Vec<LineConn> = servers
        .iter()
        .map(|s| {
            let seq = s.status().seq;
            let mut conn = LineConn::connect(s.addr, REPLY_LIMIT);
            conn.subscribe(seq + 1);
            conn
        })
        .collect();
    let shutter = Shutter(subs.iter().map(LineConn::handle).collect());
    let (tx, rx) = mpsc::channel::<Arrival>();
    let mut put_at: Vec<Option<Instant>> = vec![None; samples];
    let mut accepted = Vec::with_capacity(samples);
    let mut times: [[Vec<Option<Duration>>; 3]; 3] =
        std::array::from_fn(|_| std::array::from_fn(|_| vec![None; samples]));
    std::thread::scope(|scope| {
        for ((hop, conn), server) in subs.iter_mut().enumerate().zip(servers) {
            let (ask_tx, ask_rx) = mpsc::channel::<usize>();
            let tx_pushes = tx.clone();
            scope.spawn(move || read_pushes(conn, hop, first, samples, &tx_pushes, &ask_tx));
            let tx = tx.clone();
            let (addr, names) = (server.addr, &names);
            scope.spawn(move || poll_answers(addr, hop, names, &ask_rx, &tx));
        }
        drop(tx);
        let mut quorum = LineConn::connect(servers[0].addr, REPLY_LIMIT);
        for (j, line) in puts.iter().enumerate() {
            let sent = Instant::now();
            put_at[j] = Some(sent);
            quorum.send(line);
            match quorum.read_reply().unwrap_or_else(|e| panic!("put: {e}")) {
                Reply::Accepted { .. } => {}
                other => panic!("put refused: {other}"),
            }
            accepted.push(sent.elapsed());
            let deadline = Instant::now() + REPLY_LIMIT;
            while times.iter().flatten().any(|t| t[j].is_none()) {
                let left = deadline.saturating_duration_since(Instant::now());
                let (hop, seen, k, at) = rx.recv_timeout(left).unwrap_or_else(|e| {
                    let mut missing = Vec::new();
                    for (h, hop) in times.iter().enumerate() {
                        for s in [Seen::Record, Seen::Head, Seen::Answer] {
                            if hop[s as usize][j].is_none() {
                                missing.push(format!("{} {s:?}", HOPS[h]));
                            }
                        }
                    }
                    panic!("sample {j}: nothing more within {REPLY_LIMIT:?} ({e}); missing: {missing:?}")
                });
                times[hop][seen as usize][k] = put_at[k].map(|t| at.saturating_duration_since(t));
            }
        }
        drop(shutter);
    });
    let times = times.map(|hop| {
        hop.map(|t| {
            t.into_iter()
                .map(|d| d.expect("every sample was seen everywhere"))
                .collect()
        })
    });
    Propagation { accepted, times }
}

/// The sample a record of this name is, if any.
fn sample_of(name: &str, first: usize, samples: usize) -> Option<usize> {
    name.strip_prefix("bench-")
        .and_then(|n| n.strip_suffix(".tor"))
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|i| i.checked_sub(first))
        .filter(|k| *k < samples)
}

/// Reads pushes from a subscription, reporting each sample's record push
/// and the first head push that covers its seq, and telling `ask` of each
/// record push, so that the server's poller starts asking for it.
fn read_pushes(
    conn: &mut LineConn,
    hop: usize,
    first: usize,
    samples: usize,
    tx: &mpsc::Sender<Arrival>,
    ask: &mpsc::Sender<usize>,
) {
    let mut covered = 0;
    let mut pending: Vec<(usize, u64)> = Vec::new();
    let deadline = Instant::now() + REPLY_LIMIT * 4;
    while covered < samples && Instant::now() < deadline {
        let Ok((push, at)) = conn.read_push_at() else {
            return;
        };
        match push {
            Push::Record { seq, record, .. } => {
                if let Some(k) = sample_of(record.name.as_str(), first, samples) {
                    pending.push((k, seq));
                    if tx.send((hop, Seen::Record, k, at)).is_err() || ask.send(k).is_err() {
                        return;
                    }
                }
            }
            Push::Head(head) => {
                let mut still = Vec::with_capacity(pending.len());
                for (k, seq) in pending.drain(..) {
                    if seq > head.seq {
                        still.push((k, seq));
                        continue;
                    }
                    covered += 1;
                    if tx.send((hop, Seen::Head, k, at)).is_err() {
                        return;
                    }
                }
                pending = still;
            }
            Push::Heartbeat { .. } | Push::Cosignatures { .. } => {}
        }
    }
}

/// For each sample it is told of (its record was pushed by this server),
/// looks its name up at `addr` until the answer is `found`, and reports
/// when.
fn poll_answers(
    addr: SocketAddr,
    hop: usize,
    names: &[String],
    asks: &mpsc::Receiver<usize>,
    tx: &mpsc::Sender<Arrival>,
) {
    let mut conn = LineConn::connect(addr, REPLY_LIMIT);
    let mut id = 0u64;
    while let Ok(k) = asks.recv() {
        let asked = Instant::now();
        let name = &names[k];
        loop {
            id += 1;
            match conn.request_at(&lookup_request(id, name)) {
                (Reply::Found { record, .. }, at) if record.name.as_str() == name => {
                    if tx.send((hop, Seen::Answer, k, at)).is_err() {
                        return;
                    }
                    break;
                }
                (Reply::NotFound { .. }, _) => {}
                (Reply::Error(e), _) if e.code.is_transient() => {}
                (other, _) => panic!("{}: lookup of {name} answered {other}", HOPS[hop]),
            }
            assert!(
                asked.elapsed() < REPLY_LIMIT,
                "{}: {name} not answerable within {REPLY_LIMIT:?}",
                HOPS[hop]
            );
            std::thread::sleep(ANSWER_POLL);
        }
    }
}

impl Bench {
    /// Phase "propagation Quorum -> A -> B": the put lines `puts` (the
    /// records after the ingested ones) timed one at a time; the latencies
    /// and each server's head timings over them.
    pub fn propagation(&mut self, puts: &[Vec<u8>]) -> (Propagation, [Timings; 3]) {
        let n = self.settings.records;
        let t = Instant::now();
        let servers =
            [&self.quorum, &self.mirror_a, &self.mirror_b].map(|s| s.as_ref().expect("started"));
        let before = servers.map(|s| timing(&s.status()));
        let propagation = time_propagation(servers, puts, n);
        let after = servers.map(|s| timing(&s.status()));
        let propagation_heads = [0, 1, 2].map(|i| (before[i], after[i]));
        self.phase(
            "propagation Quorum -> A -> B",
            t,
            &format!("{} puts", puts.len()),
        );
        (propagation, propagation_heads)
    }
}

impl Report {
    /// Row 7: put to answerable and to record push at mirror B, then every
    /// step at every server.
    pub fn print_propagation(&self) {
        let p = &self.propagation;
        let samples = format!(
            "{} puts, one at a time; answer polled every {} us from the server's record push",
            p.accepted.len(),
            ANSWER_POLL.as_micros()
        );
        for (i, (seen, what)) in [
            (Seen::Answer, "answerable at mirror B (lookup found)"),
            (Seen::Record, "mirror B record push arrives"),
        ]
        .into_iter()
        .enumerate()
        {
            for pct in [50, 90] {
                note(
                    if i == 0 && pct == 50 { "7" } else { "" },
                    &format!("propagation put -> {what}, p{pct}"),
                    format!("{:.2} ms", percentile_ms(p.of(2, seen), pct)),
                    if i == 0 && pct == 50 {
                        samples.clone()
                    } else {
                        String::new()
                    },
                );
            }
        }
        let pair =
            |v: &[Duration]| format!("{:.2}/{:.2}", percentile_ms(v, 50), percentile_ms(v, 90));
        println!(
            "   from the put, p50/p90 ms: accepted reply {}",
            pair(&p.accepted)
        );
        for (seen, what) in [
            (Seen::Record, "record push received from"),
            (Seen::Head, "head push covering it from"),
            (Seen::Answer, "lookup answered found by"),
        ] {
            let steps: Vec<String> = HOPS
                .iter()
                .enumerate()
                .map(|(h, name)| format!("{name} {}", pair(p.of(h, seen))))
                .collect();
            println!("   {what}: {}", steps.join(", "));
        }
        self.print_propagation_floor();
    }

    /// The `profile` note of row 7: the least time the path can take on
    /// this machine before any hand-off between threads or servers. Each
    /// hop makes the record durable before passing it on: three
    /// fdatasyncs in series (the Quorum's batch with its head, then each
    /// mirror's records; a mirror's head is not fsynced). And each server
    /// checks the record first: the Quorum one verification and the point
    /// checks of its onion addresses, each mirror those and the
    /// attestation's verification, on one core each.
    fn print_propagation_floor(&self) {
        let core = |rate: f64| self.cores as f64 / rate;
        let fsyncs = 3.0 * self.baselines.fsync();
        let quorum = core(self.rates.verify()) + ADDRESSES * core(self.rates.point());
        let mirror = quorum + core(self.rates.verify());
        let checks = quorum + 2.0 * mirror;
        let floor = fsyncs + checks;
        println!(
            "   profile propagation: floor {:.2} ms before any hand-off = 3 fdatasyncs in series \
             {:.2} ms (this run's baseline {:.3} ms each) + the record's checks at the 3 servers \
             {:.2} ms (Quorum {:.3}, each mirror {:.3}); the p50 is {:.2}x the floor",
            floor * 1e3,
            fsyncs * 1e3,
            self.baselines.fsync() * 1e3,
            checks * 1e3,
            quorum * 1e3,
            mirror * 1e3,
            percentile_ms(self.propagation.of(2, Seen::Answer), 50) / (floor * 1e3)
        );
    }
}
