//! A full disk never loses an acknowledged record: the Quorum's state
//! directory is a small tmpfs filled to the last byte while many clients
//! put, some the same record on several connections at once, some
//! different ones. Then space is freed and the Quorum restarted: every
//! record answered `accepted` is there at its seq, and no seq names two
//! records.
//!
//! Mounting a tmpfs needs root (CI runs as root); elsewhere the test says
//! it cannot run and fails, rather than pass without checking anything,
//! unless ONIONS_TEST_NO_ROOT=1 asks to leave it out.

use onions::record::Record;
use onions::wire::{Code, Reply};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testkit::servers::{owner, record, Client, Server};
use testkit::TempDir;

/// Size of the tmpfs: room for the log's start, little more.
const TMPFS_SIZE: &str = "512k";
/// Clients putting at once.
const CLIENTS: usize = 12;
/// Puts each client makes.
const PUTS: usize = 30;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(path)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            path: path.to_owned(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system of `dir` to the last byte with `filler`.
fn fill(filler: &Path) {
    let mut file = std::fs::File::create(filler).unwrap();
    let mut chunk = 64 * 1024;
    while chunk > 0 {
        match file.write(&vec![0u8; chunk]) {
            Ok(0) | Err(_) => chunk /= 2,
            Ok(_) => {}
        }
    }
    let _ = file.sync_all();
}

/// Whether this process may mount file systems.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_full_disk_never_loses_an_accepted_record_nor_reuses_a_seq() {
    if !is_root() {
        assert!(
            std::env::var_os("ONIONS_TEST_NO_ROOT").is_some(),
            "this test mounts a tmpfs and needs root; run it as root or set ONIONS_TEST_NO_ROOT=1 to leave it out"
        );
        return;
    }
    let tmp = TempDir::new("full-disk");
    let state = tmp.join("quorum");
    let _tmpfs = Tmpfs::mount(&state);
    let mut quorum = Server::quorum("127.0.0.1", &state, &["--workers", "4"]);
    let filler = state.join("filler");
    fill(&filler);

    let shared: Vec<Record> = (0..4)
        .map(|i| record(&owner(100 + i), &format!("shared{i}.tor"), 1, 0, &[]))
        .collect();
    let addr = quorum.addr;
    let outcomes: Vec<(Record, Reply)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let shared = &shared;
                scope.spawn(move || {
                    let mut client = Client::connect(addr);
                    let mut seen = Vec::new();
                    for n in 0..PUTS {
                        let rec = if n % 2 == 0 {
                            shared[n / 2 % shared.len()].clone()
                        } else {
                            let seed = (c * PUTS + n) as u8;
                            record(&owner(seed), &format!("n{c}x{n}.tor"), 1, 0, &[])
                        };
                        let reply = client.put(&rec);
                        seen.push((rec, reply));
                    }
                    seen
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a client thread"))
            .collect()
    });
    let refused = outcomes
        .iter()
        .filter(|(_, r)| matches!(r, Reply::Error(e) if e.code == Code::Internal))
        .count();
    assert!(refused > 0, "the full disk refused puts");

    std::fs::remove_file(&filler).unwrap();
    quorum.terminate();
    quorum.restart();
    let mut by_seq: HashMap<u64, onions::record::RecordId> = HashMap::new();
    let mut client = quorum.client();
    let mut accepted = 0;
    for (rec, reply) in &outcomes {
        let Reply::Accepted { attestation, .. } = reply else {
            continue;
        };
        accepted += 1;
        assert_eq!(attestation.record, rec.id(), "{reply}");
        if let Some(other) = by_seq.insert(attestation.seq, rec.id()) {
            assert_eq!(other, rec.id(), "seq {} names two records", attestation.seq);
        }
        let found = client.lookup(rec.name.as_str());
        let Reply::Found {
            record: got,
            attestation: got_att,
            ..
        } = &found
        else {
            panic!(
                "{} was answered accepted at seq {} but is gone after the restart: {found}\n{}",
                rec.name,
                attestation.seq,
                quorum.log()
            );
        };
        assert_eq!(got.id(), rec.id());
        assert_eq!(got_att.seq, attestation.seq);
    }
    eprintln!(
        "{} puts: {accepted} accepted, {refused} refused as internal",
        outcomes.len()
    );
    let after = client.put(&record(&owner(250), "after.tor", 1, 0, &[]));
    assert!(
        matches!(after, Reply::Accepted { .. }),
        "with space again, puts are accepted: {after}"
    );
    quorum.terminate();
    std::thread::sleep(Duration::from_millis(100));
}
