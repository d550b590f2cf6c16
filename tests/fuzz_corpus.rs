//! A short pass of the fuzz targets over their stored inputs: the seed
//! corpus (`fuzz/corpus/<target>/`) and every input a fuzzing run found
//! a crash or hang with (`tests/data/fuzz/<target>/`). The targets are the
//! very files the AFL++ binaries run (`fuzz/targets/`); `scripts/fuzz`
//! runs them for hours, this runs them once per input.

#[path = "../fuzz/targets/objects.rs"]
mod objects;
#[path = "../fuzz/targets/replay.rs"]
mod replay;
#[path = "../fuzz/targets/reply_push.rs"]
mod reply_push;
#[path = "../fuzz/targets/request.rs"]
mod request;
#[path = "../fuzz/targets/trust.rs"]
mod trust;

use std::path::{Path, PathBuf};

/// Every stored input of `target`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = [
        root.join("fuzz/corpus").join(target),
        root.join("tests/data/fuzz").join(target),
    ]
    .iter()
    .filter_map(|dir| std::fs::read_dir(dir).ok())
    .flatten()
    .map(|entry| entry.expect("a directory entry").path())
    .filter(|path| path.is_file())
    .collect();
    files.sort();
    files
}

/// Runs `run` over every stored input of `target` and names every input
/// it fails on; `min` seeds at least must be there.
fn pass(target: &str, min: usize, run: fn(&[u8])) {
    onions::keys::init().expect("libsodium");
    let files = inputs(target);
    assert!(
        files.len() >= min,
        "{target}: {} stored inputs, expected at least {min}",
        files.len()
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = std::fs::read(file).expect("a stored input");
            std::panic::catch_unwind(|| run(&data)).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target} fails on {} of {} inputs:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn request_corpus() {
    pass("request", 10, request::run);
}

#[test]
fn reply_push_corpus() {
    pass("reply_push", 10, reply_push::run);
}

#[test]
fn objects_corpus() {
    pass("objects", 10, objects::run);
}

#[test]
fn replay_corpus() {
    pass("replay", 5, replay::run);
}

/// The replay target damages the log it means to: a real log, after its
/// header whatever the offset, and its recomputed checksums are the ones
/// the store writes.
#[test]
fn replay_damages_a_real_log() {
    onions::keys::init().expect("libsodium");
    let base = replay::base();
    assert!(base.starts_with(b"onionlog"), "a real log");
    for at in [0, 1, 7, 500, usize::from(u16::MAX)] {
        let damaged = replay::damage(base, 0, at, b"\xff");
        assert_eq!(damaged[..12], base[..12], "the header is kept");
        assert_ne!(damaged, base, "the log is damaged at {at}");
    }
    assert_eq!(
        replay::damage(base, 0x83, 0, &[]),
        base,
        "checksums as written"
    );
    let names: Vec<&str> = replay::real_logs().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["base", "compacted", "long"]);
    let dir = std::env::temp_dir().join(format!("onions-fuzz-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("records.log"), base).unwrap();
    let opened = onions::store::Store::open_with(&dir, onions::store::OnDamage::Refuse);
    let _ = std::fs::remove_dir_all(&dir);
    let (store, report) = opened.expect("the base log opens");
    assert_eq!((store.seq(), report.truncated_bytes), (6, 0));
    assert_eq!(
        store.current_head().map(|h| h.seq),
        Some(5),
        "a current head"
    );
}

/// The targets trust what the seeds are signed with, so mutations of a
/// sound answer reach every check: the examples' answers verify, with the
/// witnesses' cosignatures where the policy requires two.
#[test]
fn seeds_pass_the_checks_the_targets_run() {
    use onions::lookup::{check_reply, Resolution};
    use onions::name::LookupName;
    use onions::wire::Reply;
    onions::keys::init().expect("libsodium");
    let [plain, witnessed] = trust::policies();
    let seed = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/reply_push");
        Reply::parse(&std::fs::read(path.join(name)).expect("a seed")).expect("a reply")
    };
    let www = LookupName::parse("www.example.tor").unwrap();
    let echo = LookupName::parse("echo.tor").unwrap();
    let found = seed("vectors-v2_answers_found_reply.line");
    let now = trust::NOW;
    assert!(matches!(
        check_reply(found.clone(), &www, plain, now),
        Ok(Resolution::Found(_))
    ));
    assert!(check_reply(found, &www, witnessed, now).is_err());
    let cosigned = seed("found-cosigned.line");
    assert!(matches!(
        check_reply(cosigned, &www, witnessed, now),
        Ok(Resolution::Found(_))
    ));
    let absent = seed("vectors-v2_answers_not_found_reply.line");
    assert!(matches!(
        check_reply(absent, &echo, plain, now),
        Ok(Resolution::Absent(_))
    ));
}
