//! The evidence files a server writes, waited for and checked offline
//! with `onions-hs evidence`.

use crate::LIMIT;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::run_hs;

/// The evidence files of `kind` in the state directory `state`: whole
/// ones only, not the `.json.tmp` a server writes before renaming it.
pub(crate) fn evidence_files(state: &Path, kind: &str) -> Vec<PathBuf> {
    let prefix = format!("evidence-{kind}-");
    let Ok(dir) = std::fs::read_dir(state) else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".json"))
        })
        .collect()
}

/// Waits (bounded) for an evidence file of `kind` in `state`, and checks
/// it offline with `onions-hs evidence`.
pub(crate) fn wait_evidence(state: &Path, kind: &str, what: &str) {
    let deadline = Instant::now() + LIMIT;
    let file = loop {
        if let Some(file) = evidence_files(state, kind).into_iter().next() {
            break file;
        }
        assert!(Instant::now() < deadline, "no {kind} evidence at {what}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (status, out, err) = run_hs([std::ffi::OsStr::new("evidence"), file.as_os_str()]);
    assert!(status.success(), "{what}: {}: {out}{err}", file.display());
}
