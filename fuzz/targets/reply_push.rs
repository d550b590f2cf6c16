//! Fuzz target `reply_push`: the bytes as one line a client or a mirror
//! reads from a server, parsed both as a reply (`onions::wire::Reply`) and
//! as a push on a subscription (`onions::wire::Push`).
//!
//! A finding is a panic, or a round trip that does not hold: whatever
//! parses encodes to a line that parses to the same message. A `found` or
//! `not_found` reply also goes through the client's checks
//! (`onions::lookup::check_reply`) under the worked examples' keys, with
//! and without witnesses: a lying mirror may send anything.

use crate::trust;
use onions::lookup::{check_reply, Witnessed};
use onions::name::LookupName;
use onions::wire::{Push, Reply};

/// Names looked up in the worked examples: a subdomain of a registered
/// name, a name proven absent, a superseded one.
const NAMES: [&str; 3] = ["www.example.tor", "echo.tor", "alfa.tor"];

/// Runs one input; panics only on a finding.
pub fn run(data: &[u8]) {
    if let Ok(reply) = Reply::parse(data) {
        let again = Reply::parse(&reply.to_line())
            .unwrap_or_else(|e| panic!("{reply:?} encodes to a line that fails: {e}"));
        assert_eq!(again, reply, "a reply decodes to what it encoded");
        let _ = (reply.kind(), reply.to_string());
        check_answers(&reply);
    }
    match Push::parse(data) {
        Ok(Ok(push)) => {
            let again = Push::parse(&push.to_line())
                .unwrap_or_else(|e| panic!("{push:?} encodes to a line that fails: {e}"));
            assert_eq!(again, Ok(push), "a push decodes to what it encoded");
        }
        Ok(Err(refusal)) => {
            let again = Push::parse(&refusal.to_line())
                .unwrap_or_else(|e| panic!("{refusal:?} encodes to a line that fails: {e}"));
            assert_eq!(again, Err(refusal), "a refusal decodes to what it encoded");
        }
        Err(_) => {}
    }
}

/// The client's checks of an answer: a `not_found` for the examples'
/// names; a `found` for its own name, one of its subdomains and another
/// name (each check of a sound record costs an Argon2id call).
fn check_answers(reply: &Reply) {
    let names: Vec<String> = match reply {
        Reply::Found { record, .. } => {
            let own = record.name.as_str();
            let sub = record.subdomains.keys().next();
            [
                Some(own.to_owned()),
                sub.map(|s| format!("{}.{own}", s.as_str())),
            ]
            .into_iter()
            .flatten()
            .chain([NAMES[1].to_owned()])
            .collect()
        }
        Reply::NotFound { .. } => NAMES.map(str::to_owned).to_vec(),
        _ => return,
    };
    for name in names.iter().filter_map(|n| LookupName::parse(n).ok()) {
        for policy in trust::policies() {
            let _ = Witnessed::of_reply(reply, &policy.witnesses);
            let _ = check_reply(reply.clone(), &name, policy, trust::NOW);
        }
    }
}
