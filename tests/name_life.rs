//! A name's whole life (PROTOCOL.md §12) on real `onions-server` processes
//! over real sockets, driven as an operator drives it, with `onions-hs`:
//!
//! - a transfer: the owner signs a statement (`onions-hs transfer`), the
//!   new onion claims the name with it (`claim --transfer`); the Quorum
//!   accepts it, a mirror replicates it, and lookups with their proofs
//!   name the new onion at both;
//! - every forged or replayed transfer refused with its own code: a
//!   statement for another name or another target or with a forged
//!   signature (`bad_transfer`), for an old serial (`stale_serial`),
//!   expired (`transfer_expired`), signed by a key that does not hold the
//!   name (`not_owner`), used twice (`transfer_used`);
//! - a release (`onions-hs release`): the name stops resolving at once,
//!   with proofs of absence at the Quorum and the mirror; claims by others
//!   during the cool-down are `name_taken`, after it accepted; a release
//!   shorter than the Quorum's `--release-cooldown` is `bad_release`.

use onions::record::Record;
use onions::transfer::Transfer;
use onions::wire::{Code, Reply};
use std::path::PathBuf;
use std::time::Duration;
use testkit::servers::{name, onion_of, owner, print_key, record, Server};
use testkit::{run_hs, TempDir};

/// How long a mirror may take to replicate and match a head.
const REPLICATE_LIMIT: Duration = Duration::from_secs(30);

/// Seeds of the keys: the first owner, the onion it moves to, a stranger.
const OLD: u8 = 1;
const NEW: u8 = 2;
const STRANGER: u8 = 3;

/// A Quorum (a head every second, a cool-down of `cooldown` s) and a
/// mirror of it, with the operators' key files beside them.
struct Registry {
    tmp: TempDir,
    quorum: Server,
    mirror: Server,
    key: String,
}

impl Registry {
    fn start(label: &str, cooldown: u64) -> Registry {
        let tmp = TempDir::new(label);
        let cooldown = cooldown.to_string();
        let quorum = Server::quorum(
            "127.0.0.1",
            &tmp.join("quorum"),
            &["--head-interval", "1", "--release-cooldown", &cooldown],
        );
        let key = print_key(&quorum.state);
        let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
        for seed in [OLD, NEW, STRANGER] {
            std::fs::write(
                tmp.join(format!("key{seed}")),
                owner(seed).to_tor_file_bytes(),
            )
            .unwrap();
        }
        Registry {
            tmp,
            quorum,
            mirror,
            key,
        }
    }

    fn path(&self, file: &str) -> String {
        self.tmp.join(file).display().to_string()
    }

    /// Runs `onions-hs COMMAND NAME ...` as the operator of key `seed`
    /// (its own key file and serial state), against the Quorum directly.
    fn hs(&self, seed: u8, command: &str, name: &str, extra: &[&str]) -> (bool, String) {
        let key = self.path(&format!("key{seed}"));
        let state = self.path(&format!("state{seed}"));
        let quorum = self.quorum.addr.to_string();
        let mut args = vec![command, name, "--key", &key, "--state", &state];
        if command != "transfer" {
            args.extend(["--quorum", &quorum, "--direct", "--work", "0"]);
        }
        args.extend(extra);
        let (status, stdout, stderr) = run_hs(&args);
        (status.success(), format!("{stdout}{stderr}"))
    }

    /// `onions-hs lookup NAME` at `server`, verified against the Quorum key.
    fn lookup(&self, server: &Server, name: &str) -> (bool, String) {
        self.hs_lookup(server, &[name])
    }

    /// `onions-hs lookup --onion ADDRESS` at `server`: the names confirmed
    /// to point at the onion of key `seed`.
    fn reverse(&self, server: &Server, seed: u8) -> (bool, String) {
        let onion = onion_of(&owner(seed)).to_string();
        self.hs_lookup(server, &["--onion", &onion])
    }

    /// `onions-hs lookup` of `what` at `server`, directly, verified against
    /// the Quorum key: what [`Registry::lookup`] and [`Registry::reverse`]
    /// share.
    fn hs_lookup(&self, server: &Server, what: &[&str]) -> (bool, String) {
        let addr = server.addr.to_string();
        let mut args = vec!["lookup"];
        args.extend(what);
        args.extend(["--server", &addr, "--direct", "--quorum-key", &self.key]);
        let (status, stdout, stderr) = run_hs(&args);
        (status.success(), format!("{stdout}{stderr}"))
    }

    /// Waits until the mirror answers with a head covering the Quorum's
    /// newest seq.
    fn replicated(&self) {
        let seq = self.quorum.status().seq;
        self.mirror.wait_head(seq, REPLICATE_LIMIT);
    }

    /// Sends `record` to the Quorum and returns the error code it got, or
    /// `None` when it was accepted.
    fn put(&self, record: &Record) -> Option<Code> {
        match self.quorum.client().put(record) {
            Reply::Accepted { .. } => None,
            Reply::Error(e) => Some(e.code),
            other => panic!("a put answered with {other}"),
        }
    }
}

/// A record of `name` by `seed` with `serial`, carrying `statement`.
fn taking(seed: u8, name: &str, serial: u64, statement: &Transfer) -> Record {
    let mut r = record(&owner(seed), name, serial, 0, &[]);
    r.transfer = Some(statement.clone());
    r.sign_with(&owner(seed));
    r
}

/// A statement by `signer` from `from` to `to` for `name` at `serial`,
/// valid from `issued` for `lifetime` seconds.
fn statement(
    signer: u8,
    (name_text, from, to): (&str, u8, u8),
    serial: u64,
    (issued, lifetime): (u64, u64),
) -> Transfer {
    let mut t = Transfer::sign(
        name(name_text),
        onion_of(&owner(to)),
        serial,
        (issued, issued + lifetime),
        &owner(signer),
    );
    if signer != from {
        // A statement naming `from` but signed by another key: the
        // signature cannot hold.
        t.from = onion_of(&owner(from));
    }
    t
}

#[test]
fn transfers_hand_a_name_to_a_new_onion_and_replicate() {
    let reg = Registry::start("life-transfer", 60);
    let www = onion_of(&owner(STRANGER)).to_string();
    let (ok, said) = reg.hs(
        OLD,
        "claim",
        "example.tor",
        &["--sub", &format!("www={www}")],
    );
    assert!(ok, "{said}");
    reg.replicated();
    let (ok, said) = reg.lookup(&reg.mirror, "example.tor");
    assert!(
        ok && said.contains(&onion_of(&owner(OLD)).to_string()),
        "{said}"
    );

    let statement_file = reg.path("statement.json");
    let to = onion_of(&owner(NEW)).to_string();
    let (ok, said) = reg.hs(
        OLD,
        "transfer",
        "example.tor",
        &["--to", &to, "--out", &statement_file],
    );
    assert!(ok, "{said}");
    let written = Transfer::from_json(&std::fs::read_to_string(&statement_file).unwrap()).unwrap();
    assert_eq!(
        (written.from, written.to, written.serial),
        (onion_of(&owner(OLD)), onion_of(&owner(NEW)), 1),
        "the statement hands over serial 1, the one the old key used"
    );

    // The new onion's operator cannot take a name the statement does not
    // name, and does not spend the work to find out.
    let (ok, said) = reg.hs(NEW, "claim", "other.tor", &["--transfer", &statement_file]);
    assert!(!ok && said.contains("example.tor"), "{said}");

    let (ok, said) = reg.hs(
        NEW,
        "claim",
        "example.tor",
        &["--transfer", &statement_file],
    );
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("moved from {} to {to}", onion_of(&owner(OLD)))),
        "{said}"
    );
    reg.replicated();
    for (server, which) in [(&reg.quorum, "Quorum"), (&reg.mirror, "mirror")] {
        let (ok, said) = reg.lookup(server, "example.tor");
        assert!(ok, "{which}: {said}");
        assert!(
            said.contains(&format!("example.tor -> {to}"))
                && said.contains("proof of presence holds"),
            "{which}: {said}"
        );
        // The old record's subdomains went with it.
        let (ok, said) = reg.lookup(server, "www.example.tor");
        assert!(!ok, "{which}: www left with the old record: {said}");
        assert_eq!(server.status().records, 1, "{which}: one live name");
        // Reverse lookups follow the name to its new onion (§12.5).
        let (ok, said) = reg.reverse(server, NEW);
        assert!(ok && said.contains("example.tor"), "{which}: {said}");
        let (ok, said) = reg.reverse(server, OLD);
        assert!(!ok && !said.contains("example.tor\n"), "{which}: {said}");
    }

    // The old key has lost the name: its renewal is name_taken.
    let (ok, said) = reg.hs(OLD, "claim", "example.tor", &[]);
    assert!(!ok && said.contains("name_taken"), "{said}");
    // The new owner renews without the statement.
    let (ok, said) = reg.hs(NEW, "claim", "example.tor", &[]);
    assert!(ok, "{said}");
}

#[test]
fn forged_and_replayed_transfers_are_refused_each_with_its_code() {
    let reg = Registry::start("life-forged", 60);
    let now = onions::clock::now();
    let live = record(&owner(OLD), "example.tor", 5, 0, &[]);
    assert_eq!(reg.put(&live), None);
    let valid = statement(OLD, ("example.tor", OLD, NEW), 5, (now, 600));

    let cases = [
        (
            "a statement for another name",
            statement(OLD, ("other.tor", OLD, NEW), 5, (now, 600)),
            Code::BadTransfer,
        ),
        (
            "a statement to another target",
            statement(OLD, ("example.tor", OLD, STRANGER), 5, (now, 600)),
            Code::BadTransfer,
        ),
        (
            "a statement whose signature is not the owner's",
            statement(STRANGER, ("example.tor", OLD, NEW), 5, (now, 600)),
            Code::BadTransfer,
        ),
        (
            "a statement for an old serial",
            statement(OLD, ("example.tor", OLD, NEW), 4, (now, 600)),
            Code::StaleSerial,
        ),
        (
            "an expired statement",
            statement(OLD, ("example.tor", OLD, NEW), 5, (now - 7200, 3600)),
            Code::TransferExpired,
        ),
        (
            "a statement signed by a key that does not hold the name",
            statement(STRANGER, ("example.tor", STRANGER, NEW), 5, (now, 600)),
            Code::NotOwner,
        ),
    ];
    for (what, forged, code) in cases {
        assert_eq!(
            reg.put(&taking(NEW, "example.tor", 6, &forged)),
            Some(code),
            "{what}"
        );
    }
    assert_eq!(reg.quorum.status().seq, 1, "nothing was accepted");

    // A statement for a name no record holds transfers nothing.
    let free = statement(OLD, ("free.tor", OLD, NEW), 1, (now, 600));
    assert_eq!(
        reg.put(&taking(NEW, "free.tor", 2, &free)),
        Some(Code::NotOwner)
    );

    // The valid one works once; a retry of the same record is accepted
    // with its attestation; another record with it is transfer_used.
    let taken = taking(NEW, "example.tor", 6, &valid);
    assert_eq!(reg.put(&taken), None);
    assert_eq!(reg.put(&taken), None, "a retry of the same record");
    assert_eq!(
        reg.put(&taking(NEW, "example.tor", 7, &valid)),
        Some(Code::TransferUsed)
    );
    // The old owner cannot use the name any more, nor hand it on again.
    let again = statement(OLD, ("example.tor", OLD, STRANGER), 5, (now, 600));
    assert_eq!(
        reg.put(&taking(STRANGER, "example.tor", 6, &again)),
        Some(Code::NotOwner)
    );
    assert_eq!(
        reg.put(&record(&owner(OLD), "example.tor", 9, 0, &[])),
        Some(Code::NameTaken)
    );

    // A record carrying both a statement and the release mark is malformed.
    let mut both = taking(NEW, "example.tor", 8, &valid);
    both.release = true;
    both.sign_with(&owner(NEW));
    let value = both.to_value();
    assert_eq!(value["release"], true);
    let reply = reg
        .quorum
        .client()
        .request_json(&serde_json::json!({"type": "put", "id": 1, "record": value}));
    assert!(
        matches!(&reply, Reply::Error(e) if e.code == Code::BadRecord && e.message.contains("not both")),
        "{reply}"
    );
    assert_eq!(reg.quorum.status().seq, 2, "only the valid transfer");
}

#[test]
fn a_release_leaves_the_live_set_and_frees_the_name_after_the_cooldown() {
    const COOLDOWN: u64 = 4;
    let reg = Registry::start("life-release", COOLDOWN);
    let (ok, said) = reg.hs(OLD, "claim", "example.tor", &[]);
    assert!(ok, "{said}");

    // Only the holder may release, and for at least the cool-down.
    let (ok, said) = reg.hs(STRANGER, "release", "example.tor", &["--cooldown", "60"]);
    assert!(!ok && said.contains("name_taken"), "{said}");
    let (ok, said) = reg.hs(OLD, "release", "example.tor", &["--cooldown", "1"]);
    assert!(
        !ok && said.contains("bad_release") && said.contains(&COOLDOWN.to_string()),
        "{said}"
    );
    let (ok, said) = reg.hs(OLD, "release", "free.tor", &["--cooldown", "60"]);
    assert!(!ok && said.contains("not_owner"), "{said}");

    let (ok, said) = reg.hs(
        OLD,
        "release",
        "example.tor",
        &["--cooldown", &COOLDOWN.to_string()],
    );
    assert!(ok && said.contains("released"), "{said}");
    reg.replicated();
    for (server, which) in [(&reg.quorum, "Quorum"), (&reg.mirror, "mirror")] {
        let (ok, said) = reg.lookup(server, "example.tor");
        assert!(
            !ok && said.contains("not registered") && said.contains("proof of absence holds"),
            "{which}: {said}"
        );
        assert_eq!(server.status().records, 0, "{which}: nothing live");
        let (ok, said) = reg.reverse(server, OLD);
        assert!(!ok, "{which}: a released name points nowhere: {said}");
    }

    // During the cool-down nobody else may claim it.
    let (ok, said) = reg.hs(NEW, "claim", "example.tor", &[]);
    assert!(
        !ok && said.contains("name_taken") && said.contains("released"),
        "{said}"
    );
    // After it, the name is free.
    std::thread::sleep(Duration::from_secs(COOLDOWN + 1));
    let (ok, said) = reg.hs(NEW, "claim", "example.tor", &[]);
    assert!(ok, "{said}");
    reg.replicated();
    let (ok, said) = reg.lookup(&reg.mirror, "example.tor");
    assert!(
        ok && said.contains(&onion_of(&owner(NEW)).to_string()),
        "{said}"
    );
}

/// The statement file `onions-hs transfer` writes is refused by `claim`
/// when it was made for another onion, before any work.
#[test]
fn a_statement_for_another_onion_is_refused_before_the_work() {
    let reg = Registry::start("life-statement", 60);
    let file = reg.path("statement.json");
    let to = onion_of(&owner(STRANGER)).to_string();
    let (ok, said) = reg.hs(
        OLD,
        "transfer",
        "example.tor",
        &["--to", &to, "--serial", "3", "--out", &file],
    );
    assert!(ok, "{said}");
    let (ok, said) = reg.hs(NEW, "claim", "example.tor", &["--transfer", &file]);
    assert!(!ok && said.contains(&to), "{said}");
    assert!(
        !PathBuf::from(reg.path("state2")).exists(),
        "no serial used"
    );
}
