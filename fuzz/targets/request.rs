//! Fuzz target `request`: the bytes as one request line, as a server's
//! workers parse every line a client sends (`onions::wire::Request`).
//!
//! A finding is a panic, or a round trip that does not hold: a request
//! that parses encodes to a line that parses to the same request, and a
//! refusal encodes to an `error` reply that decodes to the same refusal.

use onions::canonical;
use onions::wire::{Reply, Request};

/// Runs one input; panics only on a finding.
pub fn run(data: &[u8]) {
    match Request::parse(data) {
        Ok(request) => {
            let line = request.to_line();
            let again = Request::parse(&line)
                .unwrap_or_else(|e| panic!("{request:?} encodes to a line that fails: {e}"));
            if let (Request::Put { id, record }, Request::Put { id: id2, .. }) = (&request, &again)
            {
                if canonical::has_float(record) {
                    // serde_json (without its float_roundtrip feature) may
                    // read a long decimal as a neighbouring double, and no
                    // record holds a float: only the id must come back.
                    assert_eq!(id, id2, "a put's id decodes to what it encoded");
                    return;
                }
            }
            assert_eq!(again, request, "a request decodes to what it encoded");
        }
        Err(refusal) => {
            let _ = refusal.closes_connection();
            match Reply::parse(&refusal.to_line()) {
                Ok(Reply::Error(again)) => {
                    assert_eq!(again, refusal, "a refusal decodes to what it encoded")
                }
                other => panic!("the refusal {refusal:?} decodes as {other:?}"),
            }
        }
    }
}
