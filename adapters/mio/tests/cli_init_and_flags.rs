//! The `switchboard` command line: `init` writes a home a `node` runs from, flags override
//! the config file, and bad input is refused with what is wrong in it.

#![cfg(unix)]

mod binary;

use binary::{Home, NodeProcess, free_port, run};

#[test]
fn a_node_runs_from_the_home_init_wrote_and_prints_its_dialable_address() {
    let home = Home::init("from-file");
    let mode = std::fs::metadata(home.path.join("node_key")).expect("node_key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let port = free_port();
    home.set("laddr", &format!(r#"["127.0.0.1:{port}"]"#));
    let mut node = NodeProcess::start(&home.path, &[]);
    assert_eq!(
        node.dial_address(),
        format!("{}@127.0.0.1:{port}", home.node_id())
    );
}

#[test]
fn a_flag_overrides_the_file() {
    let home = Home::init("flag-wins");
    let port = free_port();
    home.set("laddr", &format!(r#"["127.0.0.1:{port}"]"#));
    let mut node = NodeProcess::start(&home.path, &["--listen=127.0.0.1:0"]);
    let dial = node.dial_address();
    assert!(
        dial.starts_with(&format!("{}@127.0.0.1:", home.node_id())),
        "{dial}"
    );
    assert!(
        !dial.ends_with(&format!(":{port}")),
        "the file's laddr won: {dial}"
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_name_and_line() {
    let home = Home::init("bad-key");
    let text = std::fs::read_to_string(home.config_path()).expect("config.toml");
    let line = text
        .lines()
        .position(|line| line == "[p2p]")
        .expect("[p2p]")
        + 2;
    std::fs::write(
        home.config_path(),
        text.replace("[p2p]\n", "[p2p]\nmax_peers = 3\n"),
    )
    .expect("write");
    let output = run(&["node", "--home", home.arg()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_peers"), "{stderr}");
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
}

#[test]
fn a_node_without_a_key_says_to_run_init() {
    let missing = std::env::temp_dir().join(format!("switchboard-cli-none-{}", std::process::id()));
    let output = run(&["node", "--home", missing.to_str().expect("utf-8")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("switchboard init --home"), "{stderr}");
    assert!(!missing.exists(), "node created the home it refused");
}

#[test]
fn a_bad_listen_port_is_named() {
    let output = run(&["node", "--listen", "1.2.3.4:99999"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--listen") && stderr.contains("port 99999"),
        "{stderr}"
    );
}

#[test]
fn version_and_each_subcommands_help() {
    let output = run(&["--version"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        concat!("switchboard ", env!("CARGO_PKG_VERSION"))
    );
    for (command, flag) in [
        ("node", "--listen"),
        ("init", "--home"),
        ("status", "--rpc"),
        ("show-node-id", "--home"),
        ("demo", "--nodes"),
    ] {
        let output = run(&[command, "--help"]);
        assert!(output.status.success(), "{command} --help: {output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(flag),
            "{command} --help lacks {flag}: {stdout}"
        );
    }
}
