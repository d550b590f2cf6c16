//! A Quorum that hands a live name to another key, bare or with a
//! transfer statement its owner never signed: every witness refuses to
//! cosign and writes ownership evidence.

use crate::evidence::wait_evidence;
use crate::network::{liar_under, put_accepted, start_witness, witness_key_file};
use crate::recorder::Recorder;
use crate::LIMIT;
use testkit::liar::Plan;
use testkit::servers::{print_key, witness_key, Server};
use testkit::TempDir;

#[test]
fn a_quorum_that_hands_a_live_name_to_another_key_gets_no_cosignature() {
    witnesses_refuse_a_handover(
        "witnesses-handover",
        Plan::HandOver("example.tor".into()),
        "name_taken",
    );
}

/// The same with the new record carrying a transfer statement (§12.2)
/// signed by a key that never held the name: the rule broken is
/// `transfer` (§12.4).
#[test]
fn a_quorum_that_accepts_a_transfer_its_owner_never_signed_gets_no_cosignature() {
    witnesses_refuse_a_handover(
        "witnesses-transfer",
        Plan::TransferFromStranger("example.tor".into()),
        "transfer",
    );
}

/// A lying upstream hands example.tor, live, to another key as `plan`
/// says: every witness writes ownership evidence naming `rule`, raises its
/// alarm, and cosigns no head covering the handover.
fn witnesses_refuse_a_handover(label: &str, plan: Plan, rule: &str) {
    let tmp = TempDir::new(label);
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let quorum_key = print_key(&quorum.state);
    let liar = liar_under(&tmp, &quorum, plan);
    let recorder = Recorder::start();
    let cosign_to = ["--cosign-to".to_owned(), recorder.addr.to_string()];
    let witnesses: Vec<(Server, String)> = (0..3)
        .map(|i| {
            let state = tmp.join(format!("witness{i}"));
            let key = witness_key(&witness_key_file(&state), &state);
            let server = start_witness(i, &state, liar.addr, &quorum_key, &cosign_to);
            (server, key)
        })
        .collect();
    put_accepted(&mut quorum.client(), 1, "example.tor");
    let handed = quorum.wait_head(1, LIMIT).seq + 1;
    for (witness, key) in &witnesses {
        wait_evidence(&witness.state, "ownership", "a witness");
        let status = witness.status().cosignatures.unwrap().witness.unwrap();
        assert!(
            status.alarm.as_deref().is_some_and(|a| a.contains(rule)),
            "{status:?}"
        );
        let seen = recorder.seen.lock().unwrap().clone();
        assert!(
            seen.iter()
                .all(|(h, c)| c.witness.to_base64() != *key || h.seq < handed),
            "a witness cosigned a head covering the handed-over name"
        );
    }
}
