//! Subscribers: a connection that asked for the record stream. Until it
//! is caught up, workers read it catch-up batches from the store, one at a
//! time while its unsent bytes stay low; once it has every record and the
//! current head it is live, and what the committer or upstream thread
//! makes durable is fanned out to it as it comes. A live subscriber that
//! falls more than `--subscriber-queue` messages behind is dropped.

use super::EventLoop;
use super::Subscription;
use crate::server::events::{HeadMark, Outgoing};
use crate::server::workers::Job;
use mio::Token;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A catching-up subscriber is fed more once its unsent bytes fall below this.
const FEED_LOW_WATER: usize = 256 * 1024;

impl EventLoop {
    pub(super) fn on_subscribed(&mut self, token: Token, bytes: Vec<u8>, from: u64) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.busy = false;
        conn.inbuf.clear();
        conn.queue(bytes);
        conn.sub = Some(Subscription {
            cursor: from.saturating_sub(1),
            head: None,
            live: false,
            feeding: false,
            last_sent: Instant::now(),
        });
        self.shared
            .stats
            .subscribers
            .fetch_add(1, Ordering::Relaxed);
        log::info!("session {}: subscribed from seq {from}", conn.session);
        self.flush(token);
        self.maybe_feed(token);
    }

    /// Asks a worker for the next catch-up batch, if one is due.
    pub(super) fn maybe_feed(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Some(sub) = conn.sub.as_mut() else {
            return;
        };
        if sub.live || sub.feeding || conn.out_bytes > FEED_LOW_WATER {
            return;
        }
        let job = Job::Feed {
            conn: token,
            session: conn.session,
            after: sub.cursor,
            sent: sub.head.map(|h| h.id),
        };
        if self.jobs.try_send(job).is_ok() {
            sub.feeding = true;
        }
    }

    pub(super) fn on_feed(
        &mut self,
        token: Token,
        bytes: Vec<u8>,
        cursor: u64,
        head: Option<HeadMark>,
        complete: bool,
    ) {
        let (applied, current) = (self.applied, self.current);
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Some(sub) = conn.sub.as_mut() else {
            return;
        };
        sub.feeding = false;
        sub.cursor = sub.cursor.max(cursor);
        if head.is_some() {
            sub.head = head;
        }
        if !bytes.is_empty() {
            sub.last_sent = Instant::now();
        }
        if complete && sub.cursor >= applied && current.is_none_or(|c| sub.head == Some(c)) {
            sub.live = true;
            log::info!("session {}: caught up at seq {}", conn.session, sub.cursor);
        }
        conn.queue(bytes);
        self.flush(token);
    }

    pub(super) fn on_committed(&mut self, pushes: &[Outgoing]) {
        for push in pushes {
            match push {
                Outgoing::Record { seq, .. } => self.applied = self.applied.max(*seq),
                Outgoing::Head { mark, current, .. } => {
                    if *current {
                        self.current = Some(*mark);
                    }
                }
                Outgoing::Cosignatures { .. } => {}
            }
        }
        let depth = self.limits.subscriber_queue;
        let mut lagging = Vec::new();
        let mut fed = Vec::new();
        for (token, conn) in self.conns.iter_mut() {
            let Some(sub) = conn.sub.as_mut() else {
                continue;
            };
            if !sub.live {
                lagging.push(*token);
                continue;
            }
            for push in pushes {
                let line = match push {
                    Outgoing::Record { seq, line } if *seq > sub.cursor => {
                        sub.cursor = *seq;
                        line
                    }
                    Outgoing::Head { mark, line, .. } if mark.follows(sub.head.as_ref()) => {
                        sub.head = Some(*mark);
                        line
                    }
                    Outgoing::Cosignatures { line } => line,
                    _ => continue,
                };
                sub.last_sent = Instant::now();
                conn.out_bytes += line.len();
                conn.out.push_back(line.clone());
            }
            fed.push(*token);
        }
        // Write first, then judge: a subscriber that reads promptly is not
        // dropped for a batch larger than its queue.
        for token in fed {
            self.flush(token);
            let behind = self.conns.get(&token).map_or(0, |c| c.out.len());
            if behind > depth {
                if let Some(conn) = self.conns.get(&token) {
                    log::warn!(
                        "session {}: subscriber {behind} messages behind (--subscriber-queue {depth}); dropped, it catches up by seq when it returns",
                        conn.session
                    );
                }
                self.shared.metrics.subscriber_dropped();
                self.close(token, "subscriber queue full");
            }
        }
        for token in lagging {
            self.maybe_feed(token);
        }
    }
}
