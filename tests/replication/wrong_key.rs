//! A mirror told to trust the wrong key: it applies nothing, says why and
//! answers `no_head`, while the Quorum carries on.

use crate::checks::assert_serves;
use crate::REPLICATE_LIMIT;
use onions::keys::SigningKey;
use onions::wire::{AuditState, Code, Reply};
use testkit::checks::accepted;
use testkit::servers::{attested_seq, onion_of, owner, print_key, record, wait_until, Server};
use testkit::TempDir;

#[test]
fn a_mirror_trusting_the_wrong_key_applies_nothing() {
    let tmp = TempDir::new("replication-wrong-key");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let first = record(&owner(21), "trusted.tor", 1, 0, &[]);
    let reply = quorum.client().put(&first);
    assert_eq!(attested_seq(&reply, &first, &key), 1);

    let wrong = SigningKey::from_seed(&[22; 32]).public().to_base64();
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &wrong, &[]);
    wait_until(
        "the mirror to log why it refuses the Quorum's records",
        REPLICATE_LIMIT,
        || {
            let log = mirror.log();
            log.contains("not a trusted Quorum key") && log.contains(&key)
        },
    );
    // Nothing applied, no head taken, so nothing to answer with.
    let assert_empty = |when: &str| {
        let status = mirror.status();
        assert_eq!(status.seq, 0, "{when}: {status}");
        assert_eq!(status.records, 0, "{when}: {status}");
        assert_eq!(status.quorum_keys, vec![wrong.clone()], "{when}: {status}");
        assert!(status.head.is_none(), "{when}: {status}");
        let audit = status.audit.as_ref().expect("a mirror reports its audit");
        assert_eq!(audit.state, AuditState::None, "{when}: {status}");
        assert!(audit.matched.is_none(), "{when}: {status}");
        assert_eq!(audit.checked, 0, "{when}: {status}");
        let lookup = mirror.client().lookup("trusted.tor");
        assert!(
            matches!(&lookup, Reply::Error(e) if e.code == Code::NoHead),
            "{when}: {lookup}"
        );
    };
    assert_empty("at first");

    // The Quorum carries on: it accepts and answers as before.
    let second = record(&owner(23), "carry-on.tor", 1, 0, &[]);
    let reply = quorum.client().put(&second);
    assert_eq!(attested_seq(&reply, &second, &key), 2);
    assert_serves(
        &quorum,
        "carry-on.tor",
        &second,
        &accepted(&reply),
        &key,
        &onion_of(&owner(23)),
    );
    // And the mirror still has nothing, now that more was offered.
    wait_until(
        "the mirror to refuse again after reconnecting",
        REPLICATE_LIMIT,
        || mirror.log().matches("not a trusted Quorum key").count() >= 2,
    );
    assert_empty("after reconnecting");
}
