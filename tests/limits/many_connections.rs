//! No flag at all: a mirror holding 1,000 idle connections while clients
//! vanish mid-message 200 times stays up and keeps answering.

use crate::wire::{lines, read_until_closed, reply_of, status_request};
use crate::{LIMIT, MIRROR_IP, QUORUM_IP};
use onions::name::LookupName;
use onions::record::Record;
use onions::wire::{Id, Reply, Request};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use testkit::checks::assert_found;
use testkit::servers::{attested_seq, log_lines_with, owner, print_key, record, state_dir, Server};
use testkit::TempDir;

/// Raises this process's soft limit on open files to the hard limit (the
/// servers it starts inherit it); returns the new soft limit.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls with a valid pointer to a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let want = limit.rlim_max.min(65_536);
        if limit.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = want;
            }
        }
    }
    // `rlim_t` is narrower on some 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let soft = limit.rlim_cur as u64;
    soft
}

/// Makes dropping `stream` send a reset instead of a clean close.
fn reset_on_drop(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a plain value of the size passed.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// Asserts every stream is still open and has been sent nothing.
fn assert_all_open(streams: &[TcpStream], when: &str) {
    let mut byte = [0u8; 1];
    for (i, stream) in streams.iter().enumerate() {
        stream.set_nonblocking(true).unwrap();
        match (&*stream).read(&mut byte) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok(0) => panic!("{when}: idle connection {i} was closed"),
            other => panic!("{when}: idle connection {i} got {other:?}"),
        }
    }
}

#[test]
fn mirror_survives_a_thousand_idle_connections_and_abrupt_disconnects() {
    // Each process needs a descriptor per connection plus a few dozen; if
    // the hard limit leaves less than that, fewer connections are opened.
    let fds = raise_fd_limit();
    let idle_count = 1000.min(fds.saturating_sub(200) as usize);
    assert!(idle_count >= 100, "only {fds} open files allowed");

    let tmp = TempDir::new("many");
    let qstate = state_dir(&tmp, "quorum");
    let key = print_key(&qstate);
    let quorum = Server::quorum(QUORUM_IP, &qstate, &[]);
    let mut mirror = Server::mirror(
        MIRROR_IP,
        &state_dir(&tmp, "mirror"),
        quorum.addr,
        &key,
        &["--max-connections", "1200"],
    );
    let records: Vec<Record> = (0..3)
        .map(|i| record(&owner(30 + i), &format!("busy-day-{i}.tor"), 1, 0, &[]))
        .collect();
    let mut client = quorum.client();
    for record in &records {
        let reply = client.put(record);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    mirror.wait_head(3, LIMIT);

    let idle: Vec<TcpStream> = (0..idle_count)
        .map(|i| {
            TcpStream::connect(mirror.addr)
                .unwrap_or_else(|e| panic!("idle connection {i} of {idle_count}: {e}"))
        })
        .collect();
    assert_eq!(mirror.status().seq, 3);
    assert_all_open(&idle, "after connecting");

    // 200 clients that vanish mid-message, four ways.
    let lookup = Request::Lookup {
        id: Id::Number(7),
        name: LookupName::from_user("busy-day-0.tor").unwrap(),
    }
    .to_line();
    let half = &lookup[..lookup.len() - 8];
    for i in 0..200 {
        let mut stream = TcpStream::connect(mirror.addr).unwrap();
        match i % 4 {
            // Half a line, then gone.
            0 => stream.write_all(half).unwrap(),
            // Half a line, then end of sending: the server closes too.
            1 => {
                stream.write_all(half).unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                let said = read_until_closed(&mut stream, LIMIT);
                let said: Vec<Reply> = lines(&said).into_iter().map(reply_of).collect();
                assert!(
                    said.iter().all(|r| matches!(r, Reply::Error(_))),
                    "half a line was answered {said:?}"
                );
            }
            // A whole request and half of another, never reading the answer.
            2 => {
                stream.write_all(&status_request("1").to_line()).unwrap();
                stream.write_all(half).unwrap();
            }
            // Half a line, then a reset instead of a close.
            _ => {
                stream.write_all(half).unwrap();
                reset_on_drop(&stream);
            }
        }
    }

    // Still up, still answering, still holding every idle connection.
    let status = mirror.status();
    assert_eq!(status.seq, 3, "{status}");
    assert_eq!(
        status.upstream.as_ref().map(|u| u.connected),
        Some(true),
        "{status}"
    );
    let mut asker = mirror.client();
    for record in &records {
        let name = record.name.as_str();
        assert_found(&asker.lookup(name), name, record, &key);
    }
    assert_all_open(&idle, "after the disconnects");
    assert!(mirror.is_running());
    assert!(
        !mirror.log().contains("panicked"),
        "the mirror panicked:\n{}",
        mirror.log()
    );
    assert!(
        log_lines_with(&mirror, &["--max-connections"]).is_empty(),
        "a connection was refused"
    );

    // And new records still reach it.
    let late = record(&owner(39), "busy-day-late.tor", 1, 0, &[]);
    assert_eq!(attested_seq(&client.put(&late), &late, &key), 4);
    mirror.wait_head(4, LIMIT);
    drop(idle);
}
