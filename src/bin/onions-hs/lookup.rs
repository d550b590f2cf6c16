//! `lookup`: asking a mirror for a name, or for the names that point at
//! an onion, and printing what was verified.

use onions::cli::{self};
use onions::clock;
use onions::lookup::{self, Policy, Resolution, Witnessed};
use onions::name::LookupName;
use onions::onion::OnionAddress;
use onions::transport::{self, Endpoint, Route};
use onions::wire::{Id, Request};

use crate::args::LookupArgs;

pub(crate) fn lookup(args: LookupArgs) -> Result<(), String> {
    match (&args.name, &args.onion) {
        (Some(name), None) => lookup_name(name, &args),
        (None, Some(onion)) => lookup_onion(onion, &args),
        (Some(_), Some(_)) => Err(
            "give either NAME (what it points at) or --onion ADDRESS (which names point at it), not both"
                .into(),
        ),
        (None, None) => Err(
            "give a NAME to look up, or --onion ADDRESS to find the names that point at it".into(),
        ),
    }
}

/// Where to ask and what to believe, from the flags every lookup shares.
fn lookup_setup(args: &LookupArgs) -> Result<(Endpoint, Route, Policy), String> {
    let server = Endpoint::parse(&args.server).map_err(|e| format!("--server {e}"))?;
    let route = cli::route(args.socks.as_deref(), args.direct).map_err(|e| e.to_string())?;
    let trusted = cli::quorum_keys(&args.quorum_key).map_err(|e| e.to_string())?;
    if trusted.is_empty() {
        return Err("give at least one --quorum-key to check the answer against".into());
    }
    let policy = cli::lookup_policy(
        trusted,
        args.min_work,
        args.max_head_age,
        &args.witness_key,
        args.witnesses,
    )
    .map_err(|e| e.to_string())?;
    Ok((server, route, policy))
}

/// `lookup --onion`: prints each name confirmed to point at the address,
/// reports the names the server listed that were refused, and fails when
/// none points at it.
fn lookup_onion(text: &str, args: &LookupArgs) -> Result<(), String> {
    let onion = OnionAddress::parse(&text.to_ascii_lowercase())
        .map_err(|e| format!("--onion {text:?}: {e}"))?;
    let (server, route, policy) = lookup_setup(args)?;
    let pointing = lookup::reverse(
        &server,
        route,
        &onion,
        &policy,
        clock::now(),
        transport::NETWORK_TIMEOUT,
    )
    .map_err(|e| format!("{server}: {e}"))?;
    for refused in &pointing.refused {
        eprintln!(
            "refused {} (listed by {server}, never shown): {}",
            refused.name, refused.why
        );
    }
    if pointing.confirmed.is_empty() {
        return Err(format!(
            "no name points at {onion} (asked {server}{})",
            if pointing.refused.is_empty() {
                ""
            } else {
                "; the names it listed were refused"
            }
        ));
    }
    for confirmed in &pointing.confirmed {
        println!("{}", confirmed.name);
    }
    let count = match pointing.confirmed.len() {
        1 => "1 name points".to_owned(),
        n => format!("{n} names point"),
    };
    eprintln!(
        "verified: {count} at {onion}, each by a lookup whose proof of presence holds{}",
        if pointing.more {
            format!(
                "; {server} knows more than the {} it lists",
                onions::wire::MAX_REVERSE_NAMES
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `lookup NAME`: prints where the name points, with the head and proof.
fn lookup_name(text: &str, args: &LookupArgs) -> Result<(), String> {
    let name = LookupName::from_user(text).map_err(|e| format!("name {text:?}: {e}"))?;
    let (server, route, policy) = lookup_setup(args)?;
    let request = Request::Lookup {
        id: Id::Number(1),
        name: name.clone(),
    };
    let now = clock::now();
    let reply = transport::request(&server, route, &request, transport::NETWORK_TIMEOUT)
        .map_err(|e| format!("{server}: {e}"))?;
    let witnessed = Witnessed::of_reply(&reply, &policy.witnesses);
    let resolution =
        lookup::check_reply(reply, &name, &policy, now).map_err(|e| format!("{server}: {e}"))?;
    let head = resolution.head();
    let head_line = format!(
        "head seq {} time {} root {} size {}{}",
        head.seq,
        head.time,
        onions::codec::b64_encode(&head.root),
        head.size,
        witnessed.map_or(String::new(), |w| cosigned_line(&w, now))
    );
    match resolution {
        Resolution::Found(answer) => {
            println!("{} -> {}", name, answer.target);
            eprintln!(
                "verified: serial {}, attested at seq {}, expires {}; {head_line}; proof of presence holds",
                answer.record.serial, answer.attestation.seq, answer.record.expires
            );
            Ok(())
        }
        Resolution::Expired(answer) => Err(format!(
            "{}: its record expired at {} (after {head_line}; proof of presence holds)",
            name.registered(),
            answer.record.expires
        )),
        Resolution::Absent(_) => Err(format!(
            "{} is not registered ({head_line}; proof of absence holds)",
            name.registered()
        )),
    }
}

/// What the witnesses say of the answer's head, after the head line.
fn cosigned_line(witnessed: &Witnessed, now: u64) -> String {
    format!(
        ", cosigned by {} trusted witnesses ({} required), fresh as of {} ({} s ago)",
        witnessed.valid,
        witnessed.needed,
        witnessed.fresh_as_of,
        now.saturating_sub(witnessed.fresh_as_of)
    )
}
