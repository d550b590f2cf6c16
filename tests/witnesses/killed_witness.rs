//! A witness killed with SIGKILL while heads stream in never cosigns two
//! conflicting heads (every cosignature it sent is recorded).

use crate::network::witness_key_file;
use crate::recorder::Recorder;
use crate::LIMIT;
use onions::wire::Reply;
use std::time::{Duration, Instant};
use testkit::servers::{owner, print_key, record, witness_key, Server};
use testkit::TempDir;

#[test]
fn a_witness_killed_at_random_never_cosigns_two_conflicting_heads() {
    let tmp = TempDir::new("witnesses-kill");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let quorum_key = print_key(&quorum.state);
    let recorder = Recorder::start();
    let state = tmp.join("witness");
    let key_file = witness_key_file(&state);
    let key = witness_key(&key_file, &state);
    let mut witness = Server::mirror(
        "127.0.0.11",
        &state,
        quorum.addr,
        &quorum_key,
        &[
            "--witness-key",
            &key_file.display().to_string(),
            "--cosign-to",
            &recorder.addr.to_string(),
            "--cosign-interval",
            "1",
        ],
    );
    let mut client = quorum.client();
    let mut seed = 0u8;
    let mut rng = 0x9e37_79b9_u32;
    for round in 0..6 {
        for _ in 0..5 {
            seed = seed.wrapping_add(1);
            let reply = client.put(&record(&owner(seed), &format!("n{seed}.tor"), 1, 0, &[]));
            assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            std::thread::sleep(Duration::from_millis(u64::from(rng % 40)));
        }
        if round % 2 == 0 {
            witness.kill9();
        } else {
            witness.terminate();
        }
        witness.restart();
    }
    let last = quorum.wait_head(u64::from(seed), LIMIT);
    let deadline = Instant::now() + LIMIT;
    while !recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|(h, _)| h.seq >= last.seq)
    {
        assert!(
            Instant::now() < deadline,
            "the witness cosigns the newest head"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = recorder.seen.lock().unwrap().clone();
    assert!(seen.len() >= 6, "cosignatures were sent: {}", seen.len());
    for (head, cosig) in &seen {
        assert_eq!(cosig.witness.to_base64(), key);
        assert!(cosig.holds_for(&head.id()));
    }
    for (i, (a, _)) in seen.iter().enumerate() {
        for (b, _) in &seen[i + 1..] {
            assert!(
                !a.conflicts(b),
                "conflicting heads cosigned: {a:?} and {b:?}"
            );
        }
    }
    let mut times: Vec<(u64, u64)> = Vec::new();
    for (head, cosig) in &seen {
        times.push((cosig.time, head.seq));
    }
    times.sort_unstable();
    assert!(
        times.windows(2).all(|w| w[0].1 <= w[1].1),
        "a later cosignature never names a lower head: {times:?}"
    );
}
