//! Every error code of protocol.md §8 and §10.6, provoked on real
//! `onions-server` processes over real sockets, and what the server does
//! next.
//!
//! The story: a Quorum (and, for `read_only` and `no_head`, a mirror) is
//! sent each kind of wrong request: a claim on a name another key holds, a
//! stale serial, a tampered or expired record, missing proof of work, a
//! malformed record, a put to a mirror, a lookup at a mirror that has no
//! head to answer against, a line that is not JSON or not UTF-8, a line
//! over `--max-message`, and requests that are JSON but not valid requests.
//! Each gets `{"type":"error","id":...,"code":...,"message":...}` with the
//! request's id echoed (null when it had none) and a message a person can
//! act on. The server keeps serving: a new connection works, and the same
//! connection does too, except after `bad_json` and `too_large`, when the
//! server closes it (§7). A lookup of a name with no entry is not an error
//! in version 2: it gets `not_found` with a head and an absence proof that
//! holds against the head's root. Also: a retried put of the live record
//! gets the same attestation without raising the seq; claims racing for
//! one name have exactly one winner, and racing updates leave the highest
//! serial live; a record issued more than 600 s ahead is refused while one
//! 300 s ahead is not; the default line limit is 16 KiB; and pipelined
//! requests are answered in order.
//!
//! Every reply is decoded with `onions::wire`; the raw line is looked at
//! only to check that it carries an `id` key (null or not).

mod codes;
mod exchange;
mod lines;
mod mirrors;
mod ownership;
mod records;
mod requests;

use std::time::Duration;

const DAY: u64 = 86_400;

/// How long a mirror may take to match a head covering a put.
const HEAD_LIMIT: Duration = Duration::from_secs(20);
