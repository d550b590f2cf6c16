//! The registration before the measurements: both Quorums take the same
//! names over [`INGEST_CONNS`] connections, one put in flight on each.

use crate::{BUSY_RETRIES, INGEST_CONNS, REPLY_LIMIT};
use onions::wire::{Code, Reply};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::line::LineConn;

/// Puts every line over [`INGEST_CONNS`] connections, one in flight on
/// each, retrying (bounded) while answered `busy`; returns puts/s.
pub fn ingest(addr: SocketAddr, lines: &[Vec<u8>]) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..INGEST_CONNS {
            scope.spawn(move || {
                let mut conn = LineConn::connect(addr, REPLY_LIMIT);
                for line in lines.iter().skip(t).step_by(INGEST_CONNS) {
                    for tries in 0.. {
                        conn.send(line);
                        match conn.read_reply().unwrap_or_else(|e| panic!("{e}")) {
                            Reply::Accepted { .. } => break,
                            Reply::Error(e) if e.code == Code::Busy && tries < BUSY_RETRIES => {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            other => panic!("a put to {addr} was answered {other}"),
                        }
                    }
                }
            });
        }
    });
    lines.len() as f64 / start.elapsed().as_secs_f64()
}
