//! An equivocating Quorum (a liar with its key showing one witness a
//! split view): the minority head never gathers two cosignatures, no
//! client accepts an answer under it, and evidence files appear where
//! both heads were seen.

use crate::evidence::wait_evidence;
use crate::network::{
    collecting_flags, liar_under, lookup, put_accepted, start_witness, trust_flags, wait_found,
    witnessed_quorum, Network,
};
use onions::lookup::Resolution;
use std::time::{Duration, Instant};
use testkit::liar::Plan;
use testkit::servers::{print_key, Server};
use testkit::TempDir;

#[test]
fn an_equivocating_quorum_never_gets_its_minority_head_believed() {
    let tmp = TempDir::new("witnesses-split");
    let (states, keys, quorum) = witnessed_quorum(&tmp);
    let trust = trust_flags(&keys);
    let quorum_key = print_key(&quorum.state);
    let liar = liar_under(&tmp, &quorum, Plan::Split("hidden.tor".into()));
    let witnesses: Vec<Server> = states
        .iter()
        .enumerate()
        .map(|(i, state)| {
            let mut flags = trust.clone();
            flags.extend(["--cosign-to".into(), quorum.addr.to_string()]);
            let upstream = if i == 2 { liar.addr } else { quorum.addr };
            start_witness(i, state, upstream, &quorum_key, &flags)
        })
        .collect();
    let mirror_flags = collecting_flags(&trust);
    let honest = Server::mirror(
        "127.0.0.21",
        &tmp.join("honest"),
        witnesses[0].addr,
        &quorum_key,
        &mirror_flags,
    );
    let misled = Server::mirror(
        "127.0.0.22",
        &tmp.join("misled"),
        witnesses[2].addr,
        &quorum_key,
        &mirror_flags,
    );
    let mut client = quorum.client();
    for (seed, name) in [(1, "example.tor"), (2, "hidden.tor")] {
        put_accepted(&mut client, seed, name);
    }
    let net = Network {
        quorum,
        witnesses,
        mirror: honest,
        quorum_key,
        witness_keys: keys,
    };
    let policy = net.policy(2, 600);
    let honest_view = wait_found(net.mirror.addr, "hidden.tor", &policy, "the honest view");
    let real = honest_view.head().clone();

    for (state, what) in [
        (&states[2], "the witness shown the split view"),
        (&states[0], "an honest witness"),
        (&tmp.join("misled"), "the mirror under the misled witness"),
    ] {
        wait_evidence(state, "equivocation", what);
    }
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        for server in [net.mirror.addr, misled.addr] {
            let result = lookup(server, "hidden.tor", &policy);
            if let Ok(resolution) = &result {
                let head = resolution.head();
                assert!(
                    !head.conflicts(&real) || head == &real,
                    "an answer under the minority head was accepted: {result:?}"
                );
                assert!(
                    !matches!(resolution, Resolution::Absent(h) if h.seq >= real.seq),
                    "the hidden name was denied under a head covering it: {result:?}"
                );
            }
        }
        let current = misled.current_head();
        assert!(
            current.as_ref().is_none_or(|h| !h.conflicts(&real)),
            "the misled mirror answers with the minority head: {current:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for server in [&net.witnesses[2], &net.witnesses[0]] {
        let audit = server.status().audit.unwrap();
        assert_eq!(audit.state, onions::wire::AuditState::Alarm, "{audit:?}");
        let evidence = audit.evidence.expect("status shows the evidence");
        assert!(evidence.heads.contains(&real), "{evidence:?}");
    }
}
