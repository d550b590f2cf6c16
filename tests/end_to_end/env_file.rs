//! The private network's `env` file, read back as the shell writes it.

/// `DIR/env` is shell: single-quoted values, a quote written as `'\''`.
#[test]
fn the_network_env_file_is_unquoted() {
    let env = testkit::tornet::parse_env(
        "TORNET_DIR='/tmp/x'\nTORNET_CONTROL_PASSWORD='it'\\''s'\nTORNET_PIDS='1 2 3'\n",
    )
    .expect("parses");
    assert_eq!(env["TORNET_DIR"], "/tmp/x");
    assert_eq!(env["TORNET_CONTROL_PASSWORD"], "it's");
    assert_eq!(env["TORNET_PIDS"], "1 2 3");
    assert!(testkit::tornet::parse_env("KEY=bare\n").is_err());
    assert!(testkit::tornet::parse_env("KEY='open\n").is_err());
}
