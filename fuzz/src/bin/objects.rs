//! AFL++ entry of the `objects` target: the logic is in
//! `fuzz/targets/objects.rs`, which `tests/fuzz_corpus.rs` runs over the
//! stored corpus.

#[path = "../../targets/objects.rs"]
mod target;
#[path = "../../targets/trust.rs"]
mod trust;

fn main() {
    let _ = onions::keys::init();
    afl::fuzz!(|data: &[u8]| {
        target::run(data);
    });
}
