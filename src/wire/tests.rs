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
