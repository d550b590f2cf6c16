//! Requests parse with the right error codes, and every reply and push
//! decodes to what it encodes, with the stored-text encoders giving the
//! same bytes as the typed ones.

use super::*;
use crate::head::SignedHead;
use crate::keys::SigningKey;
use crate::merkle::{Proof, Terminal};
use serde_json::Value;

fn code_of(line: &str) -> Code {
    Request::parse(line.as_bytes()).unwrap_err().code
}

#[test]
fn classifies_bad_lines() {
    assert_eq!(code_of("{"), Code::BadJson);
    assert_eq!(code_of("\u{ff}"), Code::BadJson);
    assert_eq!(code_of("[1]"), Code::BadRequest);
    assert_eq!(code_of(r#"{"type":"dance","id":1}"#), Code::BadRequest);
    assert_eq!(code_of(r#"{"type":"lookup","id":1}"#), Code::BadRequest);
    assert_eq!(
        code_of(r#"{"type":"lookup","id":1.5,"name":"a.tor"}"#),
        Code::BadRequest
    );
    assert_eq!(
        code_of(r#"{"type":"subscribe","id":"x","from":-1}"#),
        Code::BadRequest
    );
}

#[test]
fn echoes_ids_and_round_trips_requests() {
    let err = Request::parse(br#"{"type":"nope","id":"abc"}"#).unwrap_err();
    assert_eq!(err.id, Id::Text("abc".into()));
    match Reply::parse(&err.to_line()).unwrap() {
        Reply::Error(back) => assert_eq!(back, err),
        other => panic!("{other:?}"),
    }
    let lookup = Request::parse(br#"{"type":"lookup","id":2,"name":"WWW.Example.tor"}"#).unwrap();
    match &lookup {
        Request::Lookup { name, .. } => assert_eq!(name.as_str(), "www.example.tor"),
        other => panic!("{other:?}"),
    }
    let line = lookup.to_line();
    assert_eq!(Request::parse(&line[..line.len() - 1]).unwrap(), lookup);
}

fn head() -> SignedHead {
    crate::keys::init().unwrap();
    SignedHead::sign(
        7,
        1_764_000_300,
        0,
        crate::merkle::EMPTY,
        &SigningKey::from_seed(&[42; 32]),
    )
}

#[test]
fn replies_and_pushes_decode_to_what_they_encode() {
    let proof = Proof {
        siblings: vec![[1; 32], crate::merkle::EMPTY],
        terminal: Some(Terminal::Empty),
    };
    let replies = [
        Reply::NotFound {
            id: Id::Number(3),
            head: head(),
            proof,
            cosignatures: vec![crate::cosign::Cosignature::sign(
                &head(),
                5,
                &crate::keys::SigningKey::from_seed(&[4; 32]),
            )],
        },
        Reply::Cosigned {
            id: Id::Number(5),
            count: 2,
        },
        Reply::Subscribed {
            id: Id::Text("s".into()),
            seq: 9,
        },
        Reply::Error(WireError::new(&Id::Null, Code::NoHead, "no head yet")),
    ];
    for reply in replies {
        let line = reply.to_line();
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(serde_json::from_slice::<Value>(&line).unwrap().is_object());
        assert_eq!(Reply::parse(&line).unwrap(), reply);
    }
    let cosigned = Push::Cosignatures {
        head: head(),
        cosignatures: vec![crate::cosign::Cosignature::sign(
            &head(),
            6,
            &crate::keys::SigningKey::from_seed(&[4; 32]),
        )],
    };
    for push in [Push::Head(head()), Push::Heartbeat { seq: 4 }, cosigned] {
        assert_eq!(Push::parse(&push.to_line()).unwrap().unwrap(), push);
    }
    let refusal = WireError::new(&Id::Number(1), Code::Busy, "later").to_line();
    assert_eq!(Push::parse(&refusal).unwrap().unwrap_err().code, Code::Busy);
}

#[test]
fn unknown_types_and_codes_are_refused() {
    assert!(Reply::parse(br#"{"type":"found","id":1}"#).is_err());
    assert!(Reply::parse(br#"{"type":"maybe","id":1}"#).is_err());
    assert!(Reply::parse(br#"{"type":"error","id":1,"code":"not_found","message":"x"}"#).is_err());
    assert!(Push::parse(br#"{"type":"record","seq":1}"#).is_err());
}

/// A valid v3 address: the key of a fixed seed.
fn onion(seed: u8) -> crate::onion::OnionAddress {
    crate::keys::init().unwrap();
    crate::onion::OnionAddress::from_key(SigningKey::from_seed(&[seed; 32]).public())
}

#[test]
fn reverse_requests_need_a_valid_onion() {
    let address = onion(1).to_string();
    let line = format!(r#"{{"type":"reverse","id":"r","onion":"{address}"}}"#);
    let request = Request::parse(line.as_bytes()).unwrap();
    assert_eq!(
        request,
        Request::Reverse {
            id: Id::Text("r".into()),
            onion: onion(1),
        }
    );
    let line = request.to_line();
    assert_eq!(Request::parse(&line[..line.len() - 1]).unwrap(), request);
    let refused = |line: &str| Request::parse(line.as_bytes()).unwrap_err();
    let missing = refused(r#"{"type":"reverse","id":4}"#);
    assert_eq!(
        (missing.code, &missing.id),
        (Code::BadRequest, &Id::Number(4))
    );
    assert!(missing.message.contains("\"onion\""), "{missing}");
    let typo = address.replacen(
        &address[..1],
        if &address[..1] == "a" { "b" } else { "a" },
        1,
    );
    for bad in [
        typo.as_str(),
        "example.tor",
        &address.to_uppercase(),
        &address[..20],
    ] {
        let err = refused(&format!(r#"{{"type":"reverse","id":5,"onion":"{bad}"}}"#));
        assert_eq!(err.code, Code::BadRequest, "{bad}");
        assert!(err.message.contains(bad), "{err}");
        assert!(err.message.contains("onion"), "{err}");
    }
    assert_eq!(
        code_of(r#"{"type":"reverse","id":5,"onion":7}"#),
        Code::BadRequest
    );
}

#[test]
fn names_replies_decode_to_what_they_encode() {
    let name = |text: &str| crate::name::RegisteredName::parse(text).unwrap();
    for (names, more) in [
        (vec![], false),
        (vec![name("alfa.tor"), name("bravo.tor")], false),
        (
            (0..16).map(|i| name(&format!("n{i:02}.tor"))).collect(),
            true,
        ),
    ] {
        let reply = Reply::Names {
            id: Id::Number(9),
            onion: onion(2),
            names,
            more,
        };
        let line = reply.to_line();
        assert_eq!(Reply::parse(&line).unwrap(), reply);
        assert_eq!(reply.kind(), "names");
    }
    let line = Reply::Names {
        id: Id::Number(1),
        onion: onion(2),
        names: vec![name("example.tor")],
        more: false,
    }
    .to_line();
    assert_eq!(
        String::from_utf8(line).unwrap(),
        format!(
            "{{\"type\":\"names\",\"id\":1,\"onion\":\"{}\",\"names\":[\"example.tor\"],\"more\":false}}\n",
            onion(2)
        )
    );
}

#[test]
fn names_replies_out_of_rule_are_refused() {
    let address = onion(3).to_string();
    let reply = |names: &str, more: &str| {
        format!(r#"{{"type":"names","id":1,"onion":"{address}","names":{names},"more":{more}}}"#)
    };
    let seventeen: Vec<String> = (0..17).map(|i| format!("n{i:02}.tor")).collect();
    for (names, more) in [
        (r#"["b.tor","a.tor"]"#.to_owned(), "false"),
        (r#"["a.tor","a.tor"]"#.to_owned(), "false"),
        (r#"["www.a.tor"]"#.to_owned(), "false"),
        (r#"[1]"#.to_owned(), "false"),
        (r#"{}"#.to_owned(), "false"),
        (serde_json::to_string(&seventeen).unwrap(), "true"),
        (r#"[]"#.to_owned(), "1"),
    ] {
        let line = reply(&names, more);
        assert!(
            matches!(Reply::parse(line.as_bytes()), Err(DecodeError::Shape(_))),
            "{line}"
        );
    }
    let no_onion = r#"{"type":"names","id":1,"onion":"x.onion","names":[],"more":false}"#;
    assert!(Reply::parse(no_onion.as_bytes()).is_err());
}

/// The fast path for plain lookups answers exactly as the general one,
/// and everything else falls through to the general path.
#[test]
fn plain_lookups_parse_as_the_general_path_does() {
    for line in [
        r#"{"type":"lookup","id":7,"name":"www.example.tor"}"#,
        r#"{"id":7,"name":"Example.TOR","type":"lookup"}"#,
        r#"{"type":"lookup","id":7,"name":"example.tor","extra":[1,2]}"#,
        r#"{"type":"lookup","id":"seven","name":"example.tor"}"#,
        r#"{"type":"lookup","id":7,"name":"ex\u0061mple.tor"}"#,
        r#"{"type":"lookup","id":7,"name":"bad_name.tor"}"#,
        r#"{"type":"lookup","id":7.0,"name":"example.tor"}"#,
        r#"{"type":"lookup","id":-1,"name":"example.tor"}"#,
        r#"{"type":"lookup","id":7,"name":"a.tor","name":"b.tor"}"#,
        r#"{"type":"status","id":7,"name":"example.tor"}"#,
        r#"{"type":"lookup","id":7}"#,
        r#"[1]"#,
    ] {
        assert_eq!(
            Request::parse(line.as_bytes()),
            Request::parse_general(line.as_bytes()),
            "{line}"
        );
    }
}
