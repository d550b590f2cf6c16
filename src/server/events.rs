//! What the other threads hand the event loop: [`LoopEvent`]s sent
//! through an [`Outbox`] (the channel and the loop's waker), the
//! [`Outgoing`] push lines to fan out to subscribers in stream order, and
//! the [`HeadMark`] that tells heads in that stream apart.

use crate::head::SignedHead;
use crate::merkle::Hash;
use crossbeam_channel::{Receiver, Sender};
use mio::{Token, Waker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What identifies a head in the stream: its seq, time and id. Heads are
/// sent to a subscriber only when newer than the last it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadMark {
    /// The head's seq.
    pub seq: u64,
    /// The head's time.
    pub time: u64,
    /// The head's id.
    pub id: Hash,
}

impl HeadMark {
    /// The mark of `head`.
    pub fn of(head: &SignedHead) -> HeadMark {
        HeadMark {
            seq: head.seq,
            time: head.time,
            id: head.id(),
        }
    }

    /// True when this head is another one, lower in neither seq nor time
    /// (PROTOCOL.md §10.6: what a server forwards).
    pub fn follows(&self, last: Option<&HeadMark>) -> bool {
        last.is_none_or(|l| self.seq >= l.seq && self.time >= l.time && self.id != l.id)
    }
}

/// One line to fan out to subscribers, in stream order.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A record push.
    Record {
        /// Its seq.
        seq: u64,
        /// The push line.
        line: Vec<u8>,
    },
    /// A head push.
    Head {
        /// Which head.
        mark: HeadMark,
        /// The push line.
        line: Vec<u8>,
        /// True when the server now answers against it (always at the
        /// Quorum; at a mirror when it matched the audit): catch-up sends
        /// the current head, so a subscriber whose catch-up ended on an
        /// older one reads again.
        current: bool,
    },
    /// A `cosignatures` push: sent to every live subscriber as it comes.
    Cosignatures {
        /// The push line.
        line: Vec<u8>,
    },
}

/// A reply line for a connection; `close` ends it once sent.
pub struct Reply {
    /// The connection.
    pub conn: Token,
    /// The reply line.
    pub bytes: Vec<u8>,
    /// Close after sending.
    pub close: bool,
}

/// A message to the event loop from another thread.
pub enum LoopEvent {
    /// One reply.
    Reply(Reply),
    /// The replies to a batch of lines a worker answered together: one
    /// message (and at most one wake) for all of them.
    Replies(Vec<Reply>),
    /// The connection is now a subscriber wanting seqs from `from`.
    Subscribed {
        /// The connection.
        conn: Token,
        /// The `subscribed` line.
        bytes: Vec<u8>,
        /// First seq wanted.
        from: u64,
    },
    /// Catch-up lines read from the store for a subscriber.
    Feed {
        /// The connection.
        conn: Token,
        /// Push lines in stream order.
        bytes: Vec<u8>,
        /// Highest seq this feed covers.
        cursor: u64,
        /// The head among the lines, if any.
        head: Option<HeadMark>,
        /// True when the feed reached the end of the store.
        complete: bool,
    },
    /// Records made durable and heads, as push lines, to fan out.
    Committed {
        /// In stream order.
        pushes: Arc<Vec<Outgoing>>,
    },
}

/// The way back into the event loop: a channel and the loop's waker.
///
/// Under load many threads answer at once; one wake is enough for all
/// the events the loop has not yet taken, so a sender wakes the loop only
/// when no wake is pending (`Inbox::rearm` clears the mark before it
/// takes events): fewer system calls per answer.
#[derive(Clone)]
pub struct Outbox {
    tx: Sender<LoopEvent>,
    waker: Arc<Waker>,
    pending: Arc<AtomicBool>,
}

/// The loop's side of the [`Outbox`].
pub struct Inbox {
    rx: Receiver<LoopEvent>,
    pending: Arc<AtomicBool>,
}

/// A channel into the event loop whose `poll` the `waker` belongs to.
pub fn channel(waker: Arc<Waker>) -> (Outbox, Inbox) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let pending = Arc::new(AtomicBool::new(false));
    let inbox = Inbox {
        rx,
        pending: Arc::clone(&pending),
    };
    (Outbox { tx, waker, pending }, inbox)
}

impl Outbox {
    /// Sends an event and wakes the loop unless a wake is pending. A
    /// closed loop means shutdown is under way, and the event no longer
    /// matters.
    pub fn send(&self, event: LoopEvent) {
        if self.tx.send(event).is_ok() && !self.pending.swap(true, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake the event loop: {e}");
            }
        }
    }

    /// Sends the replies of a batch as one event (none if there are none):
    /// one hand-off for a worker's job or a committed batch.
    pub fn send_replies(&self, mut replies: Vec<Reply>) {
        match replies.len() {
            0 => {}
            1 => self.send(LoopEvent::Reply(replies.remove(0))),
            _ => self.send(LoopEvent::Replies(replies)),
        }
    }
}

impl Inbox {
    /// Clears the pending mark before the loop takes events with
    /// [`Inbox::next`], so that an event sent after the last one it takes
    /// wakes it again.
    pub fn rearm(&self) {
        self.pending.store(false, Ordering::SeqCst);
    }

    /// The next event sent, if any.
    pub fn next(&self) -> Option<LoopEvent> {
        self.rx.try_recv().ok()
    }
}
