//! Every code spelled as the protocol says, each placed where a test
//! provokes it; the v1 `not_found` error is gone.

use onions::wire::{Code, Reply};

/// Where each code of `onions::wire::Code` is provoked. The match has no
/// wildcard, so a new code does not compile until it is placed here.
fn provoked_by(code: Code) -> &'static str {
    match code {
        Code::BadJson => "bad_json_gets_an_error_and_the_connection_closes",
        Code::TooLarge => "too_large_gets_an_error_and_the_connection_closes",
        Code::BadRequest => "bad_requests_get_an_error_and_the_connection_stays_open",
        Code::BadRecord => "record_errors_signature_expiry_shape_and_future",
        Code::BadSignature => "record_errors_signature_expiry_shape_and_future",
        Code::InsufficientWork => "insufficient_work_below_the_minimum_or_not_done",
        Code::Expired => "record_errors_signature_expiry_shape_and_future",
        Code::NameTaken => "ownership_errors_name_taken_and_stale_serial",
        Code::StaleSerial => "ownership_errors_name_taken_and_stale_serial",
        Code::BadTransfer | Code::TransferExpired | Code::NotOwner | Code::TransferUsed => {
            "tests/name_life.rs: forged_and_replayed_transfers_are_refused_each_with_its_code"
        }
        Code::BadRelease => {
            "tests/name_life.rs: a_release_leaves_the_live_set_and_frees_the_name_after_the_cooldown"
        }
        Code::ReadOnly => "read_only_at_a_mirror_and_not_found",
        Code::NoHead => "no_head_at_a_mirror_that_never_received_a_head",
        Code::Busy => "tests/limits/ (a limit has to be hit)",
        Code::Internal => "none: a storage failure cannot be provoked from outside",
    }
}

#[test]
fn every_code_is_spelled_as_the_protocol_says_and_not_found_is_gone() {
    let spelled = [
        ("bad_json", Code::BadJson),
        ("too_large", Code::TooLarge),
        ("bad_request", Code::BadRequest),
        ("bad_record", Code::BadRecord),
        ("bad_signature", Code::BadSignature),
        ("insufficient_work", Code::InsufficientWork),
        ("expired", Code::Expired),
        ("name_taken", Code::NameTaken),
        ("stale_serial", Code::StaleSerial),
        ("bad_transfer", Code::BadTransfer),
        ("transfer_expired", Code::TransferExpired),
        ("not_owner", Code::NotOwner),
        ("transfer_used", Code::TransferUsed),
        ("bad_release", Code::BadRelease),
        ("read_only", Code::ReadOnly),
        ("busy", Code::Busy),
        ("no_head", Code::NoHead),
        ("internal", Code::Internal),
    ];
    for (text, code) in spelled {
        assert_eq!(code.as_str(), text);
        assert_eq!(Code::parse(text), Some(code));
        assert!(!provoked_by(code).is_empty());
    }
    // Version 2 answers a missing name with a not_found reply, so an error
    // with the old code is not a reply a client accepts (§10.6).
    assert_eq!(Code::parse("not_found"), None);
    let old = br#"{"type":"error","id":2,"code":"not_found","message":"no such name"}"#;
    assert!(Reply::parse(old).is_err(), "the v1 not_found error parsed");
    // Only busy, no_head and internal are worth asking again elsewhere.
    for (_, code) in spelled {
        assert_eq!(
            code.is_transient(),
            matches!(code, Code::Busy | Code::NoHead | Code::Internal),
            "{code}"
        );
    }
}
