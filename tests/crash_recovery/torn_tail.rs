//! A log whose last record entry was cut short is cut back to the last
//! sound entry with a warning, and the lost seq is handed out again; a
//! flipped byte in a record its head follows is refused instead.

use crate::checks::{assert_found, assert_signed};
use crate::claims::claim;
use crate::{CONVERGE_LIMIT, QUORUM_IP};
use onions::merkle::LeafKey;
use onions::record::Record;
use onions::wire::Reply;
use std::path::Path;
use testkit::servers::{attested_seq, log_lines_with, print_key, state_dir, Server};
use testkit::TempDir;

/// One frame of `records.log` (layout in src/store/format.rs): kind byte,
/// body length (u32 little-endian), body, 16-byte checksum.
struct Frame {
    offset: u64,
    kind: u8,
    body_len: u64,
}

/// Kind byte of a record entry with packed texts (src/store/format.rs),
/// as the servers write every record they accept.
const KIND_RECORD: u8 = 4;
/// Kind byte of a packed signed head, as the Quorum writes every head.
const KIND_SIGNED_HEAD: u8 = 5;

/// Walks the frames of a log that is known to be sound.
fn frames(log: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(log).unwrap();
    assert_eq!(
        &bytes[..8],
        b"onionlog",
        "{} has no log header",
        log.display()
    );
    let mut at = 12usize;
    let mut frames = Vec::new();
    while at < bytes.len() {
        let body_len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        frames.push(Frame {
            offset: at as u64,
            kind: bytes[at],
            body_len: body_len as u64,
        });
        at += 5 + body_len + 16;
    }
    assert_eq!(at, bytes.len(), "{} ends inside a frame", log.display());
    frames
}

/// Puts `n` records at a fresh Quorum, stops it cleanly, damages the last
/// record entry of the log with `damage`, restarts it, and checks that the
/// log is cut right before that entry (with a warning), the records before
/// it are served, it is proven absent, and its seq is handed out again.
///
/// The Quorum writes each batch's records and their head with one write
/// (§10.4), so the last record entry is followed by its head; a torn or
/// corrupt record takes the head after it along, as a torn write would.
fn damaged_tail_is_cut(label: &str, damage: impl FnOnce(&Path, &Frame)) {
    const N: u32 = 6;
    let tmp = TempDir::new(label);
    let state = state_dir(&tmp, "quorum");
    let key = print_key(&state);
    let mut quorum = Server::quorum(QUORUM_IP, &state, &[]);
    let records: Vec<Record> = (0..N)
        .map(|i| claim(40, i, &format!("{label}-{i}.tor")))
        .collect();
    let mut client = quorum.client();
    for (i, record) in records.iter().enumerate() {
        let reply = client.put(record);
        assert_eq!(attested_seq(&reply, record, &key), i as u64 + 1, "{reply}");
    }
    let head_before = quorum.current_head().unwrap();
    assert_eq!(head_before.seq, u64::from(N));
    drop(client);
    assert!(
        quorum.terminate().success(),
        "SIGTERM exit:\n{}",
        quorum.log()
    );

    let log = state.join("records.log");
    let all = frames(&log);
    let (at, last) = all
        .iter()
        .enumerate()
        .rfind(|(_, f)| f.kind == KIND_RECORD)
        .expect("the log has record entries");
    assert!(
        all[at + 1..].iter().all(|f| f.kind == KIND_SIGNED_HEAD),
        "only heads follow the last record entry"
    );
    assert!(
        at + 1 < all.len(),
        "the last record entry is followed by its head"
    );
    assert_eq!(
        all.iter().filter(|f| f.kind == KIND_RECORD).count(),
        N as usize,
        "one record entry per put"
    );
    let cut_at = last.offset;
    damage(&log, last);

    quorum.restart();
    let warnings = log_lines_with(&quorum, &["WARN", "torn or corrupt tail"]);
    assert_eq!(
        warnings.len(),
        1,
        "expected one warning about the cut tail:\n{}",
        quorum.log()
    );
    assert!(
        warnings[0].contains("records.log"),
        "the warning names the file: {}",
        warnings[0]
    );
    // The restarted Quorum signs its head right after opening the log, so
    // the log is the cut one plus that head.
    let after_cut = frames(&log);
    assert_eq!(
        after_cut.iter().filter(|f| f.offset < cut_at).count(),
        at,
        "entries before the damaged one were lost"
    );
    assert!(
        after_cut
            .iter()
            .filter(|f| f.offset >= cut_at)
            .all(|f| f.kind == KIND_SIGNED_HEAD),
        "the log is cut right before the damaged entry"
    );
    let status = quorum.status();
    assert_eq!(status.seq, u64::from(N) - 1);
    assert_eq!(status.records, u64::from(N) - 1);
    let head = status.head.expect("the restarted Quorum has no head");
    assert_signed(&head, &key, "after the cut");
    assert_eq!((head.seq, head.size), (u64::from(N) - 1, u64::from(N) - 1));
    let mut client = quorum.client();
    let (kept, lost) = records.split_at(N as usize - 1);
    for (i, record) in kept.iter().enumerate() {
        assert_found(&mut client, record, i as u64 + 1, &key, "after the cut");
    }
    let reply = client.lookup(lost[0].name.as_str());
    let Reply::NotFound { head, proof, .. } = &reply else {
        panic!("the cut record is gone: {reply}");
    };
    assert_signed(head, &key, "after the cut");
    proof
        .verify_absence(&LeafKey::of(&lost[0].name), &head.root)
        .unwrap_or_else(|e| panic!("the absence proof of the cut record does not hold: {e:?}"));

    // The lost seq is handed out again, to the same claim made anew.
    let reply = client.put(&lost[0]);
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    assert_eq!(attested_seq(&reply, &lost[0], &key), u64::from(N));
    drop(client);

    // The cut was durable: a clean restart finds nothing more to cut.
    assert!(quorum.terminate().success());
    quorum.restart();
    assert_eq!(
        log_lines_with(&quorum, &["WARN", "torn or corrupt tail"]).len(),
        1,
        "a clean log was cut again:\n{}",
        quorum.log()
    );
    assert_eq!(quorum.status().seq, u64::from(N));
    assert_found(
        &mut quorum.client(),
        &lost[0],
        u64::from(N),
        &key,
        "second restart",
    );
}

#[test]
fn torn_last_entry_is_cut_and_its_seq_reused() {
    damaged_tail_is_cut("torn", |log, last| {
        // The write stopped 10 bytes before the record's end.
        let file = std::fs::OpenOptions::new().write(true).open(log).unwrap();
        file.set_len(last.offset + 5 + last.body_len + 16 - 10)
            .unwrap();
    });
}

/// A flipped byte in the last record, whose head follows intact, is not a
/// torn tail: the head shows that the write completed, so the record was
/// acknowledged and may be on mirrors. The Quorum refuses to cut it and
/// hand its seq out again, on one line naming the fix.
#[test]
fn flipped_byte_in_the_last_record_before_its_head_is_refused() {
    let tmp = TempDir::new("flipped");
    let state = state_dir(&tmp, "quorum");
    let mut quorum = Server::quorum(QUORUM_IP, &state, &[]);
    let mut client = quorum.client();
    for i in 0..3 {
        let reply = client.put(&claim(40, i, &format!("flipped-{i}.tor")));
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    drop(client);
    let addr = quorum.addr;
    assert!(quorum.terminate().success());
    let log = state.join("records.log");
    let last = frames(&log)
        .into_iter()
        .rfind(|f| f.kind == KIND_RECORD)
        .expect("the log has record entries");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[(last.offset + 5 + last.body_len / 2) as usize] ^= 0x01;
    std::fs::write(&log, &bytes).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_onions-server"))
        .args(["--role", "quorum", "--min-work", "0", "--listen"])
        .arg(format!(
            "{}:{}",
            addr.ip(),
            testkit::free_port_on(QUORUM_IP)
        ))
        .arg("--state-dir")
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let status = testkit::ChildGuard::new(child, "the Quorum on a damaged log")
        .wait_within(CONVERGE_LIMIT)
        .expect("the Quorum refuses its damaged log and exits");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("--recover-from"), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "nothing was cut");
}
