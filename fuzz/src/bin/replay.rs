//! AFL++ entry of the `replay` target: the logic is in
//! `fuzz/targets/replay.rs`, which `tests/fuzz_corpus.rs` runs over the
//! stored corpus.

#[path = "../../targets/replay.rs"]
mod target;

fn main() {
    let _ = onions::keys::init();
    // Build the log inputs damage before the first input, not during it.
    let _ = target::base();
    afl::fuzz!(|data: &[u8]| {
        target::run(data);
    });
}
