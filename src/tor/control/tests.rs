//! Unit tests of the parsers, quoting, argument checks and SAFECOOKIE
//! hashes; the exchanges with a real tor are in `tests/tor_control.rs`.

use super::handshake::hmac_sha256;
use super::quoting::{check_keyword, check_word, check_word_or_path, from_hex, to_hex};
use super::reply::Assembler;
use super::*;
use std::path::PathBuf;

fn assemble(lines: &[&str]) -> Vec<Reply> {
    let mut assembler = Assembler::default();
    lines.iter().filter_map(|l| assembler.push(l)).collect()
}

#[test]
fn stream_event_with_all_fields() {
    let e = StreamEvent::parse(
        "650 STREAM 22 NEW 0 example.tor:80 SOURCE_ADDR=127.0.0.1:53802 PURPOSE=USER \
             CLIENT_PROTOCOL=SOCKS5 NYM_EPOCH=0 SESSION_GROUP=-4 \
             ISO_FIELDS=SOCKS_USERNAME,SOCKS_PASSWORD,CLIENTADDR,SESSION_GROUP,NYM_EPOCH",
    )
    .expect("parses");
    assert_eq!(e.id.as_str(), "22");
    assert_eq!(e.status, StreamStatus::New);
    assert_eq!(e.circuit, "0");
    assert!(!e.on_circuit());
    assert_eq!((e.target_host.as_str(), e.target_port), ("example.tor", 80));
    assert_eq!(e.source_addr(), Some("127.0.0.1:53802"));
    assert_eq!(e.purpose(), Some("USER"));
    assert_eq!(e.extra("SESSION_GROUP"), Some("-4"));
    assert_eq!(e.reason(), None);
}

#[test]
fn stream_event_failed_with_reasons() {
    let e = StreamEvent::parse(
        "STREAM 85 FAILED 0 invalid:80 REASON=TORPROTOCOL REMOTE_REASON=DONE SOURCE=CACHE",
    )
    .expect("parses");
    assert_eq!(e.status, StreamStatus::Failed);
    assert_eq!(e.reason(), Some("TORPROTOCOL"));
    assert_eq!(e.remote_reason(), Some("DONE"));
    assert_eq!(e.source(), Some("CACHE"));
}

#[test]
fn stream_event_quoted_values_with_spaces_and_escapes() {
    let e = StreamEvent::parse(
            r#"650 STREAM 7 CONTROLLER_WAIT 0 a.tor:443 SOCKS_USERNAME="two words" SOCKS_PASSWORD="q\"uote\\back\n" PURPOSE=USER"#,
        )
        .expect("parses");
    assert_eq!(e.status, StreamStatus::ControllerWait);
    assert_eq!(e.extra("SOCKS_USERNAME"), Some("two words"));
    assert_eq!(e.extra("SOCKS_PASSWORD"), Some("q\"uote\\back\n"));
    assert_eq!(e.purpose(), Some("USER"));
}

#[test]
fn stream_event_unknown_status_and_extra_fields() {
    let e = StreamEvent::parse("650 STREAM 9 TELEPORTED 12 host:1 FUTURE=x FLAG").expect("parses");
    assert_eq!(e.status, StreamStatus::Other("TELEPORTED".to_owned()));
    assert!(e.on_circuit());
    assert_eq!(e.extra("FUTURE"), Some("x"));
    assert_eq!(e.extra("FLAG"), Some(""));
    for (word, status) in [
        ("XOFF_SENT", StreamStatus::XoffSent),
        ("XON_RECV", StreamStatus::XonRecv),
        ("NEWRESOLVE", StreamStatus::NewResolve),
        ("REMAP", StreamStatus::Remap),
    ] {
        assert_eq!(StreamStatus::parse(word), status);
    }
}

#[test]
fn stream_event_targets() {
    let e = StreamEvent::parse("STREAM 3 NEWRESOLVE 0 x.tor:0 PURPOSE=DNS_REQUEST").expect("ok");
    assert_eq!((e.target_host.as_str(), e.target_port), ("x.tor", 0));
    let e = StreamEvent::parse("STREAM 3 NEW 0 [::1]:80").expect("ok");
    assert_eq!(e.target_host, "[::1]");
    let e = StreamEvent::parse(
        "STREAM 25 NEW 0 127.0.0.1.$0000000000000000000000000000000000000000.exit:1 \
             PURPOSE=DIR_FETCH",
    )
    .expect("ok");
    assert_eq!(e.target_port, 1);
}

#[test]
fn bad_stream_events_are_errors_not_panics() {
    for line in [
        "STREAM",
        "STREAM 1 NEW 0",
        "STREAM 1 NEW 0 noport",
        "STREAM 1 NEW 0 host:99999",
        "STREAM !! NEW 0 host:1",
        "STREAM 1 NEW 0 host:1 KEY=\"unterminated",
        "CIRC 1 BUILT",
    ] {
        assert!(StreamEvent::parse(line).is_err(), "{line}");
    }
}

#[test]
fn event_from_reply_keeps_what_it_cannot_parse() {
    let replies = assemble(&["650 STREAM 1 NEW 0 nohostport", "650 CIRC 5 BUILT"]);
    assert!(matches!(
        Event::from_reply(replies[0].clone()),
        Event::Other(_)
    ));
    assert!(matches!(
        Event::from_reply(replies[1].clone()),
        Event::Other(_)
    ));
    let replies = assemble(&["650 STREAM 1 NEW 0 a.tor:80"]);
    assert!(matches!(
        Event::from_reply(replies[0].clone()),
        Event::Stream(_)
    ));
}

#[test]
fn assembles_mid_and_data_lines() {
    let replies = assemble(&[
        "250-PROTOCOLINFO 1",
        "250+stream-status=",
        "1 NEW 0 a.tor:80",
        "..dotted",
        ".",
        "250 OK",
    ]);
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert!(reply.is_ok());
    assert_eq!(reply.message(), "OK");
    assert_eq!(reply.lines[1].data, vec!["1 NEW 0 a.tor:80", ".dotted"]);
}

#[test]
fn skips_lines_it_does_not_understand() {
    let replies = assemble(&["garbage", "25", "2500", "250-a", "xyz", "552 No"]);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].code(), 552);
    assert_eq!(replies[0].lines.len(), 2);
    assert!(!replies[0].is_ok());
}

#[test]
fn events_between_replies_stay_separate() {
    let replies = assemble(&[
        "650 STREAM 1 NEW 0 a:1",
        "250-x=1",
        "250 OK",
        "650 CIRC 1 BUILT",
    ]);
    let codes: Vec<u16> = replies.iter().map(Reply::code).collect();
    assert_eq!(codes, vec![650, 250, 650]);
}

#[test]
fn protocolinfo_with_quoted_cookie_path() {
    let replies = assemble(&[
        "250-PROTOCOLINFO 1",
        r#"250-AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE="/var/run/tor/a \"b\"/control_auth_cookie""#,
        r#"250-VERSION Tor="0.4.9.11""#,
        "250 OK",
    ]);
    let info = ProtocolInfo::from_reply(&replies[0]).expect("parses");
    assert!(info.offers(AuthMethod::SafeCookie));
    assert!(info.offers(AuthMethod::HashedPassword));
    assert!(!info.offers(AuthMethod::Null));
    assert_eq!(
        info.cookie_file,
        Some(PathBuf::from("/var/run/tor/a \"b\"/control_auth_cookie"))
    );
    assert_eq!(info.tor_version.as_deref(), Some("0.4.9.11"));
}

#[test]
fn quote_round_trips() {
    for text in ["plain", "pa ss\"w\\ord", "tab\tnl\ncr\r", "\u{1}ctl", "ünï"] {
        assert_eq!(unquote(&quote(text)).expect("unquotes"), text);
    }
    assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(unquote(r#""\101\x42\7""#).expect("unquotes"), "AB\u{7}");
    assert_eq!(unquote("bare").expect("bare"), "bare");
    assert!(unquote("\"open").is_err());
    assert!(unquote("\"\\777\"").is_err());
}

#[test]
fn stream_status_lines() {
    let entry = StreamEntry::parse("88 NEW 0 late.tor:80").expect("parses");
    assert!(entry.may_wait_for_controller());
    let entry = StreamEntry::parse("80 SENTCONNECT 0 x.onion:80").expect("parses");
    assert!(!entry.may_wait_for_controller());
    assert!(StreamEntry::parse("88 NEW 0").is_err());
}

#[test]
fn arguments_are_checked() {
    assert!(check_keyword("__LeaveStreamsUnattached").is_ok());
    assert!(check_keyword("Map Address").is_err());
    assert!(check_word("*.tor").is_ok());
    assert!(check_word("a=b").is_err());
    assert!(check_word("a\r\nSIGNAL HALT").is_err());
    assert!(check_word_or_path("address-mappings/control").is_ok());
    assert!(check_word_or_path("a b").is_err());
    assert!(StreamId::parse("12345678901234567").is_err());
}

#[test]
fn control_addresses() {
    assert_eq!(
        ControlAddr::parse("unix:/run/tor/control"),
        Ok(ControlAddr::Unix(PathBuf::from("/run/tor/control")))
    );
    assert_eq!(
        ControlAddr::parse("127.0.0.1:9051").map(|a| a.to_string()),
        Ok("127.0.0.1:9051".to_owned())
    );
    assert!(ControlAddr::parse("no-port").is_err());
}

#[test]
fn safecookie_hashes_match_a_known_answer() {
    // HMAC-SHA256(server key, 32×0x01 || 32×0x02 || 32×0x03), computed
    // independently with Python's hmac module.
    let message = [[1u8; 32], [2u8; 32], [3u8; 32]].concat();
    assert_eq!(
        to_hex(&hmac_sha256(SAFECOOKIE_SERVER_KEY, &message)),
        SERVER_HASH_VECTOR
    );
    assert_eq!(from_hex("0aFF"), Some(vec![10, 255]));
    assert_eq!(from_hex("0"), None);
}

const SERVER_HASH_VECTOR: &str = "1830D2DE6E061E60ADFA2C0C2A9257B7126E51B074F39BD4519D89229DF08827";

#[test]
fn tor_targets_are_names_in_either_spelling_valid_or_not() {
    let v3 = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";
    for host in [
        "example.tor",
        "WWW.Example.TOR",
        "tor",
        "bad_name.tor",
        "example.tor.onion",
        "www.example.TOR.ONION",
        "tor.onion",
        "bad_name-.tor.onion",
        "example.tor.",
        "www.example.tor.onion.",
        "tor.",
        "example.tor..",
    ] {
        assert!(is_tor_target(host), "{host}");
    }
    let rooted = format!("{v3}.");
    for host in [
        v3,
        &rooted,
        "x.tor.onion.evil",
        "x.tor.onion.evil.",
        "example.com",
        "example.com.",
        "example.torr",
    ] {
        assert!(!is_tor_target(host), "{host}");
    }
}
