//! The `switchboard node` binary stops cleanly on SIGTERM (and SIGINT, the same handler): it
//! says GOAWAY(Quitting) to its peers, which log the reason, saves its address book and
//! exits with success. Two real processes on 127.0.0.1.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use switchboard_mio::DataDir;

/// A `switchboard node` process and the lines it logs.
struct NodeProcess {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
    data_dir: PathBuf,
}

impl NodeProcess {
    fn start(name: &str, extra: &[String]) -> NodeProcess {
        let data_dir = std::env::temp_dir().join(format!(
            "switchboard-stop-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&data_dir);
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["node", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(extra)
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
            data_dir,
        }
    }

    /// The first logged line containing `needle`, waiting up to `timeout`.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(line) = self.log.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; the log:\n{}", self.log.join("\n"));
    }

    /// Sends `signal` (a `kill` name, e.g. "TERM") and waits for the process to exit.
    fn stop_with(&mut self, signal: &str) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
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
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

#[test]
fn sigterm_says_goodbye_to_peers_saves_the_book_and_exits_cleanly() {
    let mut first = NodeProcess::start("first", &[]);
    let listening = first.wait_for("listening on", Duration::from_secs(10));
    let addr = listening
        .rsplit(' ')
        .next()
        .expect("an address ends the line")
        .to_string();
    let mut second = NodeProcess::start("second", &["--seed".to_string(), addr]);
    second.wait_for("joined:", Duration::from_secs(10));
    first.wait_for("joined:", Duration::from_secs(10));

    let status = first.stop_with("TERM");
    assert!(status.success(), "exit status {status}");
    first.wait_for("stopped", Duration::from_secs(5));
    let left = second.wait_for("left:", Duration::from_secs(10));
    assert!(left.contains("Quitting"), "{left}");
    let book = DataDir::open(&first.data_dir)
        .expect("data dir")
        .load_address_book()
        .expect("readable");
    assert!(book.is_some(), "the address book was not saved at shutdown");

    let status = second.stop_with("INT");
    assert!(status.success(), "exit status {status}");
    second.wait_for("stopped", Duration::from_secs(5));
}
