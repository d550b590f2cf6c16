//! AFL++ entry of the `request` target: the logic is in
//! `fuzz/targets/request.rs`, which `tests/fuzz_corpus.rs` runs over the
//! stored corpus.

#[path = "../../targets/request.rs"]
mod target;

fn main() {
    let _ = onions::keys::init();
    afl::fuzz!(|data: &[u8]| {
        target::run(data);
    });
}
