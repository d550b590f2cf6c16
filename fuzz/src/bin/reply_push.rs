//! AFL++ entry of the `reply_push` target: the logic is in
//! `fuzz/targets/reply_push.rs`, which `tests/fuzz_corpus.rs` runs over the
//! stored corpus.

#[path = "../../targets/reply_push.rs"]
mod target;
#[path = "../../targets/trust.rs"]
mod trust;

fn main() {
    let _ = onions::keys::init();
    afl::fuzz!(|data: &[u8]| {
        target::run(data);
    });
}
