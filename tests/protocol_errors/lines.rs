//! Lines that are not JSON or not UTF-8 (`bad_json`) and lines over the
//! limit (`too_large`, 16 KiB by default): an error reply, then the
//! connection closes. Requests followed at once by the end of sending are
//! all answered before the server closes.

use crate::exchange::{
    assert_closed, assert_error, decode, next_reply, status_works, still_serving, text,
};
use onions::wire::{Code, Id, Reply};
use std::time::Duration;
use testkit::servers::{print_key, Server};
use testkit::TempDir;

#[test]
fn bad_json_gets_an_error_and_the_connection_closes() {
    let tmp = TempDir::new("errors-json");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let lines: [(&str, &[u8]); 4] = [
        ("an unfinished object", b"{\n"),
        ("bytes that are not UTF-8", b"\xff\xfe\xfd\n"),
        (
            "a request with a non-UTF-8 string",
            b"{\"type\":\"status\",\"id\":\"\xc3\x28\"}\n",
        ),
        ("trailing garbage", b"{\"type\":\"status\",\"id\":1} x\n"),
    ];
    for (what, line) in lines {
        let mut client = quorum.client();
        status_works(&mut client, "before");
        client.send_raw(line);
        let reply = next_reply(&mut client)
            .unwrap_or_else(|| panic!("{what}: closed without an error reply"));
        assert_error(&reply, &Id::Null, Code::BadJson);
        assert_closed(&mut client, what);
        still_serving(&quorum, &key);
    }
    // What follows a bad line in the same write is not answered: the
    // connection ends with the error.
    let mut client = quorum.client();
    client.send_raw(b"{\n{\"type\":\"status\",\"id\":\"after\"}\n");
    let reply = next_reply(&mut client).expect("an error reply");
    assert_error(&reply, &Id::Null, Code::BadJson);
    assert_closed(&mut client, "a bad line followed by a good one");
    // A good line before a bad one is answered first.
    let mut client = quorum.client();
    client.send_raw(b"{\"type\":\"status\",\"id\":\"before\"}\n\xff\n");
    match next_reply(&mut client).expect("the status reply") {
        Reply::Status { id, .. } => assert_eq!(id, text("before")),
        other => panic!("expected status: {other}"),
    }
    let reply = next_reply(&mut client).expect("an error reply");
    assert_error(&reply, &Id::Null, Code::BadJson);
    assert_closed(&mut client, "a good line followed by a bad one");
}

#[test]
fn too_large_gets_an_error_and_the_connection_closes() {
    let tmp = TempDir::new("errors-large");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &["--max-message", "2048"]);
    let key = print_key(&quorum.state);
    // A status request padded with spaces to exactly `len` bytes.
    let padded = |len: usize| {
        let mut line = br#"{"type":"status","id":"big"}"#.to_vec();
        line.resize(len, b' ');
        line
    };

    // A line of exactly the limit is served.
    let mut client = quorum.client();
    let mut line = padded(2048);
    line.push(b'\n');
    client.send_raw(&line);
    match next_reply(&mut client).expect("a reply to a line at the limit") {
        Reply::Status { id, .. } => assert_eq!(id, text("big")),
        other => panic!("expected status: {other}"),
    }

    // One byte more is too large, and the connection is closed.
    let mut line = padded(2049);
    line.push(b'\n');
    client.send_raw(&line);
    let reply = next_reply(&mut client).expect("an error reply to a long line");
    let message = assert_error(&reply, &Id::Null, Code::TooLarge);
    assert!(message.contains("2048"), "{message}");
    assert_closed(&mut client, "a line over the limit");
    still_serving(&quorum, &key);

    // So is a long line that has not even ended yet.
    let mut client = quorum.client();
    client.send_raw(&padded(3000));
    let reply = next_reply(&mut client).expect("an error reply to an endless line");
    assert_error(&reply, &Id::Null, Code::TooLarge);
    assert_closed(&mut client, "an unfinished line over the limit");
    still_serving(&quorum, &key);
    assert!(
        quorum.log().contains("--max-message"),
        "the limit is logged when hit:\n{}",
        quorum.log()
    );
}

/// Sends `bytes` on a fresh connection from a thread of its own (the server
/// may stop reading) and returns the first reply, and whether the
/// connection then ended (end of stream, or a reset because the server
/// closed with bytes unread).
fn first_reply_then_end(addr: std::net::SocketAddr, bytes: Vec<u8>) -> (Reply, bool) {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(testkit::servers::REPLY_LIMIT))
        .unwrap();
    stream
        .set_write_timeout(Some(testkit::servers::REPLY_LIMIT))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // Fails once the server has closed; that is expected.
        let _ = writer.write_all(&bytes);
    });
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .unwrap_or_else(|e| panic!("no reply: {e}"));
    assert_eq!(line.pop(), Some(b'\n'), "the reply ended mid-line");
    let reply = decode(&line);
    let mut rest = Vec::new();
    let ended = match reader.read_until(b'\n', &mut rest) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    sender.join().unwrap();
    (reply, ended)
}

#[test]
fn the_default_limit_is_16_kib() {
    let tmp = TempDir::new("errors-default-limit");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    let key = print_key(&quorum.state);
    let padded = |len: usize| {
        let mut line = br#"{"type":"status","id":"pad"}"#.to_vec();
        line.resize(len, b' ');
        line.push(b'\n');
        line
    };
    let mut client = quorum.client();
    client.send_raw(&padded(16 * 1024));
    match next_reply(&mut client).expect("a reply") {
        Reply::Status { id, .. } => assert_eq!(id, text("pad")),
        other => panic!("expected status: {other}"),
    }
    client.send_raw(&padded(16 * 1024 + 1));
    let reply = next_reply(&mut client).expect("an error reply");
    assert_error(&reply, &Id::Null, Code::TooLarge);
    assert_closed(&mut client, "a line of 16 KiB + 1");
    // A line many times the limit still gets its error reply first.
    let (reply, ended) = first_reply_then_end(quorum.addr, padded(1 << 20));
    assert_error(&reply, &Id::Null, Code::TooLarge);
    assert!(ended, "the connection should end after too_large");
    still_serving(&quorum, &key);
}

#[test]
fn requests_then_end_of_sending_are_answered_then_closed() {
    use std::io::{Read, Write};
    let tmp = TempDir::new("errors-half-close");
    let quorum = Server::quorum("127.0.0.1", &tmp.join("quorum"), &[]);
    for count in [1, 2] {
        let mut stream = std::net::TcpStream::connect(quorum.addr).unwrap();
        stream
            .set_read_timeout(Some(testkit::servers::REPLY_LIMIT))
            .unwrap();
        // The requests and the end of sending leave in one go, so the
        // server may see the close in the same event as the input.
        let lines: Vec<u8> = (0..count)
            .flat_map(|i| format!("{{\"type\":\"status\",\"id\":\"s{i}\"}}\n").into_bytes())
            .collect();
        stream.write_all(&lines).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut said = Vec::new();
        stream
            .read_to_end(&mut said)
            .unwrap_or_else(|e| panic!("{count} requests then a close: no end of stream: {e}"));
        let replies: Vec<Reply> = said
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(decode)
            .collect();
        assert_eq!(replies.len(), count, "{count} requests then a close");
        for (i, reply) in replies.iter().enumerate() {
            match reply {
                Reply::Status { id, .. } => assert_eq!(*id, text(&format!("s{i}"))),
                other => panic!("expected status s{i}: {other}"),
            }
        }
    }
}
