//! An equivocating Quorum (a liar with its key showing one witness a
//! split view): the minority head never gathers two cosignatures, no
//! client accepts an answer under it, and evidence files appear where
//! both heads were seen.

use crate::evidence::wait_evidence;
use crate::network::{lookup, trust_flags, wait_lookup, witness_key_file, Network};
use onions::lookup::Resolution;
use onions::wire::Reply;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testkit::liar::{Liar, Plan};
use testkit::servers::{owner, print_key, record, witness_key, Server};
use testkit::TempDir;

#[test]
fn an_equivocating_quorum_never_gets_its_minority_head_believed() {
    let tmp = TempDir::new("witnesses-split");
    let states: Vec<PathBuf> = (0..3).map(|i| tmp.join(format!("witness{i}"))).collect();
    let keys: Vec<String> = states
        .iter()
        .map(|s| witness_key(&witness_key_file(s), s))
        .collect();
    let trust = trust_flags(&keys);
    let mut quorum_flags = vec!["--head-interval", "1"];
    quorum_flags.extend(trust.iter().map(String::as_str));
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &quorum_flags);
    let quorum_key = print_key(&quorum.state);
    let liar = Liar::upstream(
        "127.0.0.4",
        &tmp.join("liar.log"),
        quorum.addr,
        &quorum.state.join(onions::server::QUORUM_KEY_FILE),
        Plan::Split("hidden.tor".into()),
    );
    let witnesses: Vec<Server> = (0..3)
        .map(|i| {
            let mut flags: Vec<String> = vec![
                "--witness-key".into(),
                witness_key_file(&states[i]).display().to_string(),
                "--cosign-to".into(),
                quorum.addr.to_string(),
            ];
            flags.extend(trust.iter().cloned());
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let upstream = if i == 2 { liar.addr } else { quorum.addr };
            Server::mirror(
                &format!("127.0.0.{}", 11 + i),
                &states[i],
                upstream,
                &quorum_key,
                &flags,
            )
        })
        .collect();
    let mut mirror_flags: Vec<&str> = trust.iter().map(String::as_str).collect();
    mirror_flags.extend(["--witnesses", "2"]);
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
        let reply = client.put(&record(&owner(seed), name, 1, 0, &[]));
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    let net = Network {
        quorum,
        witnesses,
        mirror: honest,
        quorum_key,
        witness_keys: keys,
    };
    let policy = net.policy(2, 600);
    let found = wait_lookup(
        net.mirror.addr,
        "hidden.tor",
        &policy,
        "the honest view",
        |r| matches!(r, Ok(Resolution::Found(_))),
    );
    let real = found.unwrap().head().clone();

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
