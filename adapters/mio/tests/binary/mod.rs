//! Running the `switchboard` binary from tests: a home directory made by `switchboard
//! init`, its config edited key by key, and node processes whose log lines are read as
//! they come. Everything listens and dials on 127.0.0.1 only.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for a line it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// `switchboard ARGS…`, run to its end.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("switchboard runs")
}

/// A port nothing listens on (bound and let go: free unless another process takes it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A home directory written by `switchboard init`, removed when dropped.
pub struct Home {
    pub path: PathBuf,
}

impl Home {
    /// `switchboard init --home` a fresh directory, listening on 127.0.0.1 (any port).
    pub fn init(name: &str) -> Home {
        let path = std::env::temp_dir().join(format!(
            "switchboard-cli-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        let output = run(&["init", "--home", path.to_str().expect("utf-8 path")]);
        assert!(output.status.success(), "init: {output:?}");
        let home = Home { path };
        home.set("laddr", r#"["127.0.0.1:0"]"#);
        home
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }

    /// Sets `key` (a key the template writes) to `value`, TOML as written.
    pub fn set(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(self.config_path()).expect("config.toml");
        let prefix = format!("{key} = ");
        assert!(
            text.lines().any(|line| line.starts_with(&prefix)),
            "no key {key}"
        );
        let edited: Vec<String> = text
            .lines()
            .map(|line| {
                if line.starts_with(&prefix) {
                    format!("{prefix}{value}")
                } else {
                    line.to_string()
                }
            })
            .collect();
        std::fs::write(self.config_path(), edited.join("\n")).expect("write config.toml");
    }

    /// The node id `switchboard show-node-id` prints.
    pub fn node_id(&self) -> String {
        let output = run(&["show-node-id", "--home", self.arg()]);
        assert!(output.status.success(), "show-node-id: {output:?}");
        String::from_utf8(output.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A `switchboard node` process and the lines it logs.
pub struct NodeProcess {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl NodeProcess {
    /// `switchboard node --home HOME EXTRA…`, logging text at info.
    pub fn start(home: &Path, extra: &[&str]) -> NodeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["node", "--home"])
            .arg(home)
            .args(extra)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("switchboard node starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        NodeProcess {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// The first logged line containing every one of `needles`, waiting up to [`WAIT`].
    pub fn wait_for(&mut self, needles: &[&str]) -> String {
        let matches = |line: &str| needles.iter().all(|needle| line.contains(needle));
        if let Some(line) = self.log.iter().find(|line| matches(line)) {
            return line.clone();
        }
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no line with {needles:?}; the log:\n{}",
            self.log.join("\n")
        );
    }

    /// The `ID@IP:PORT` its first listener is dialed at, from its `listening` line.
    pub fn dial_address(&mut self) -> String {
        let line = self.wait_for(&["listening", "dial="]);
        field(&line, "dial").to_string()
    }

    /// Sends `signal` (a `kill` name, e.g. "TERM") and waits for the process to exit.
    pub fn stop_with(&mut self, signal: &str) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} failed");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the node ignored SIG{signal}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `name=` in a text log line (up to the next space; quoted values whole).
pub fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("no field {name} in {line}"))
        + name.len()
        + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"').unwrap_or(quoted.len());
        &rest[..end + 2]
    } else {
        rest.split(' ').next().unwrap_or(rest)
    }
}
