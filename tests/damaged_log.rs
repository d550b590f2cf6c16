//! A damaged log never makes the Quorum's head go down, and what it lost
//! comes back from a mirror.
//!
//! - A byte damaged in the middle of the Quorum's `records.log`: the
//!   Quorum refuses to start, on one line naming the fix, instead of
//!   cutting the log and handing out again seqs its mirrors hold; started
//!   with `--recover-from MIRROR` it takes the records back, answers them,
//!   and the mirror converges with what comes next.
//! - A Quorum whose log went back (restored from an old backup): its
//!   mirror stops replicating from it, raises the alarm in its log and
//!   `status`, and goes on once the Quorum has taken the records back.

use onions::wire::Reply;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::servers::{owner, print_key, record, wait_until, Server};
use testkit::{ChildGuard, TempDir};

/// How long replication may take.
const LIMIT: Duration = Duration::from_secs(30);
/// Records put before the damage.
const RECORDS: u8 = 20;

fn put_all(quorum: &Server, from: u8, to: u8) {
    let mut client = quorum.client();
    for i in from..to {
        let reply = client.put(&record(&owner(i), &format!("n{i}.tor"), 1, 0, &[]));
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
}

fn assert_all_found(server: &Server, to: u8) {
    let mut client = server.client();
    for i in 1..to {
        let reply = client.lookup(&format!("n{i}.tor"));
        assert!(
            matches!(reply, Reply::Found { .. }),
            "n{i}.tor at {}: {reply}",
            server.addr
        );
    }
}

/// `onions-server status` of `server` (with `--json`): exit code and stdout.
fn status_command(server: &Server, json: bool) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onions-server"));
    command.args(["status", "--server", &server.addr.to_string()]);
    if json {
        command.arg("--json");
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Flips one byte at `fraction` of the log in `state`.
fn damage(state: &Path, fraction: f64) {
    let path = state.join("records.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = (bytes.len() as f64 * fraction) as usize;
    bytes[at] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_log_damaged_in_the_middle_is_refused_then_recovered_from_a_mirror() {
    let tmp = TempDir::new("damaged");
    let mut quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror("127.0.0.2", &tmp.join("mirror"), quorum.addr, &key, &[]);
    put_all(&quorum, 1, RECORDS + 1);
    mirror.wait_seq(u64::from(RECORDS), LIMIT);
    let (addr, state) = (quorum.addr, quorum.state.clone());
    quorum.terminate();
    damage(&state, 0.4);

    let mut child = Command::new(env!("CARGO_BIN_EXE_onions-server"))
        .args(["--role", "quorum", "--min-work", "0", "--listen"])
        .arg(addr.to_string())
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut guard = ChildGuard::new(child, "the Quorum on a damaged log");
    let status = guard
        .wait_within(LIMIT)
        .expect("the Quorum refuses its damaged log and exits");
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(!status.success(), "a damaged log is refused: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("damaged at byte") && err.contains("--recover-from"),
        "{err}"
    );

    let mirror_addr = mirror.addr.to_string();
    let quorum = Server::quorum_at(addr, &state, &["--recover-from", &mirror_addr]);
    assert!(
        quorum.status().seq >= u64::from(RECORDS),
        "{}",
        quorum.status()
    );
    assert!(quorum.log().contains("took"), "{}", quorum.log());
    assert_all_found(&quorum, RECORDS + 1);
    put_all(&quorum, RECORDS + 1, RECORDS + 2);
    let seq = quorum.status().seq;
    assert_eq!(
        seq,
        u64::from(RECORDS) + 1,
        "the next seq follows the recovered ones"
    );
    mirror.wait_seq(seq, LIMIT);
    mirror.wait_head(seq, LIMIT);
    assert_all_found(&mirror, RECORDS + 2);
}

#[test]
fn a_mirror_stops_and_alarms_when_its_upstream_went_back() {
    let tmp = TempDir::new("went-back");
    let mut quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--head-interval", "1"]);
    let key = print_key(&quorum.state);
    let mirror = Server::mirror(
        "127.0.0.2",
        &tmp.join("mirror"),
        quorum.addr,
        &key,
        &["--upstream-silence", "2"],
    );
    put_all(&quorum, 1, RECORDS + 1);
    mirror.wait_seq(u64::from(RECORDS), LIMIT);
    let (code, out) = status_command(&mirror, false);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("lag 0 records") && out.contains("alarms        none"),
        "{out}"
    );
    let (code, json) = status_command(&mirror, true);
    assert_eq!(code, 0, "{json}");
    let Ok(Reply::Status { status, .. }) = Reply::parse(json.trim_end().as_bytes()) else {
        panic!("--json prints the status reply: {json}");
    };
    assert_eq!(status.seq, u64::from(RECORDS));
    let (addr, state) = (quorum.addr, quorum.state.clone());
    quorum.terminate();
    let (code, out) = status_command(&quorum, false);
    assert_eq!(code, 1, "a server that cannot be reached: {out}");
    std::fs::remove_file(state.join("records.log")).unwrap();
    let mut quorum = Server::quorum_at(addr, &state, &["--head-interval", "1"]);
    wait_until("the mirror's alarm", LIMIT, || {
        mirror
            .status()
            .upstream
            .and_then(|u| u.alarm)
            .is_some_and(|a| a.contains("below this mirror's seq"))
    });
    assert!(mirror.log().contains("UPSTREAM ALARM"), "{}", mirror.log());
    let (code, out) = status_command(&mirror, false);
    assert_eq!(code, 2, "an alarmed server: {out}");
    assert!(out.contains("ALARM         upstream:"), "{out}");
    assert_eq!(mirror.status().seq, u64::from(RECORDS));

    quorum.terminate();
    let mirror_addr = mirror.addr.to_string();
    let quorum = Server::quorum_at(addr, &state, &["--recover-from", &mirror_addr]);
    assert_all_found(&quorum, RECORDS + 1);
    put_all(&quorum, RECORDS + 1, RECORDS + 2);
    mirror.wait_seq(u64::from(RECORDS) + 1, Duration::from_secs(90));
    wait_until("the alarm clears", LIMIT, || {
        mirror.status().upstream.is_some_and(|u| u.alarm.is_none())
    });
}
