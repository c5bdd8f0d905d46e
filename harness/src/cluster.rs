//! The cluster: one network namespace holding a bridge (the switch), one namespace per
//! node with a veth into it, and the node processes started inside them. Only addresses in
//! 10.77.0.0/24, inside namespaces made here: nothing links them to the host's network.
//! Dropping a [`Cluster`] kills its processes and deletes its namespaces, whatever failed.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard::Keypair;
use switchboard_mio::{DataDir, key_file};

use crate::record::{LOG_FILE, ROSTER_FILE, Record, RosterEntry};

/// Port every node listens on, each at its own address.
const PORT: u16 = 26656;

/// Clusters made by this process so far: part of the names, so two never clash.
static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

/// What a cluster's nodes run.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Persistent peers (roster indices).
    pub persistent: Vec<usize>,
    /// Further workload options (`--period-ms`, `--drop-nth-message`, …).
    pub args: Vec<String>,
}

struct NodeProcess {
    netns: String,
    data_dir: PathBuf,
    spec: NodeSpec,
    child: Option<Child>,
    paused: bool,
}

/// A running cluster (see the module documentation).
pub struct Cluster {
    prefix: String,
    switch: String,
    namespaces: Vec<String>,
    nodes: Vec<NodeProcess>,
    dir: PathBuf,
    workload: PathBuf,
    keep_files: bool,
}

/// Fails unless this process can make network namespaces and the tools are there: the
/// message says what is missing and how to skip the harness explicitly.
pub fn preflight() -> Result<(), String> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    let skip = "set SWITCHBOARD_NETNS=skip to skip the real-process harness explicitly";
    if !root {
        return Err(format!(
            "the real-process harness needs root (network namespaces, nftables); {skip}"
        ));
    }
    for (tool, args) in [
        ("ip", &["netns", "list"][..]),
        ("nft", &["--version"][..]),
        ("prlimit", &["--version"][..]),
    ] {
        match Command::new(tool).args(args).output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                return Err(format!(
                    "`{tool} {}` failed: {}; {skip}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
            Err(error) => {
                return Err(format!(
                    "`{tool}` not runnable ({error}): install iproute2, nftables and \
                     util-linux; {skip}"
                ));
            }
        }
    }
    Ok(())
}

/// Runs `program args`, an error with its stderr if it fails.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{program}: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether `name` (a namespace, or a data directory without its `switchboard-`) was made
/// by a harness process that is gone.
fn orphaned(name: &str) -> bool {
    let pid = name
        .strip_prefix("sbh")
        .and_then(|rest| rest.split('x').next())
        .unwrap_or_default();
    !pid.is_empty()
        && pid.bytes().all(|byte| byte.is_ascii_digit())
        && !Path::new("/proc").join(pid).exists()
}

/// What an earlier harness process that is gone (killed before its cleanup ran) left:
/// processes killed (the workloads die with their parent, but a paused one only once
/// continued), namespaces and data directories deleted, so they do not pile up.
fn delete_orphans() {
    if let Ok(entries) = fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.strip_prefix("switchboard-").is_some_and(orphaned) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for name in list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        if orphaned(name) {
            let pids = run("ip", &["netns", "pids", name]).unwrap_or_default();
            for pid in pids.lines().filter_map(|pid| pid.trim().parse().ok()) {
                let _ = kill(pid, libc::SIGKILL);
            }
            let _ = run("ip", &["netns", "delete", name]);
        }
    }
}

impl Cluster {
    /// Makes the namespaces, the bridge and the links, writes each node's key and the
    /// roster; starts nothing. `workload` is the `switchboard-workload` binary.
    pub fn create(workload: &Path, specs: Vec<NodeSpec>) -> Result<Cluster, String> {
        delete_orphans();
        let number = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("sbh{}x{number}", std::process::id());
        let dir = std::env::temp_dir().join(format!("switchboard-{prefix}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let switch = format!("{prefix}sw");
        let mut cluster = Cluster {
            prefix,
            switch: switch.clone(),
            namespaces: Vec::new(),
            nodes: Vec::new(),
            dir,
            workload: workload.to_path_buf(),
            keep_files: true,
        };
        cluster.add_netns(&switch)?;
        run(
            "ip",
            &["-n", &switch, "link", "add", "br0", "type", "bridge"],
        )?;
        run("ip", &["-n", &switch, "link", "set", "br0", "up"])?;
        let mut roster = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let netns = format!("{}n{index}", cluster.prefix);
            cluster.add_netns(&netns)?;
            let port = format!("s{index}");
            run(
                "ip",
                &[
                    "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                    "netns", &netns,
                ],
            )?;
            run(
                "ip",
                &["-n", &switch, "link", "set", &port, "master", "br0"],
            )?;
            run("ip", &["-n", &switch, "link", "set", &port, "up"])?;
            let addr = Cluster::address(index);
            run("ip", &["-n", &netns, "link", "set", "lo", "up"])?;
            run(
                "ip",
                &[
                    "-n",
                    &netns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", &netns, "link", "set", "eth0", "up"])?;
            let data_dir = cluster.dir.join(format!("node{index}"));
            let data = DataDir::open(&data_dir).map_err(|error| error.to_string())?;
            let rng = &mut switchboard_mio::os_seeded_rng().map_err(|e| e.to_string())?;
            let keypair = Keypair::generate(rng);
            key_file::save(&data.key_path(), &keypair).map_err(|error| error.to_string())?;
            roster.push(RosterEntry {
                peer_id: keypair.peer_id().to_string(),
                addr: SocketAddr::new(addr.into(), PORT),
            });
            cluster.nodes.push(NodeProcess {
                netns,
                data_dir,
                spec,
                child: None,
                paused: false,
            });
        }
        let roster = serde_json::to_string_pretty(&roster).map_err(|e| e.to_string())?;
        fs::write(cluster.dir.join(ROSTER_FILE), roster).map_err(|e| e.to_string())?;
        Ok(cluster)
    }

    fn add_netns(&mut self, name: &str) -> Result<(), String> {
        run("ip", &["netns", "add", name])?;
        self.namespaces.push(name.to_string());
        Ok(())
    }

    /// Node `index`'s address.
    pub fn address(index: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, 10 + index as u8)
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Where the nodes' data directories and logs are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace node `index` runs in.
    pub fn netns(&self, index: usize) -> &str {
        &self.nodes[index].netns
    }

    /// The switch's namespace (the bridge and every node's port on it, `s<index>`).
    pub fn switch(&self) -> &str {
        &self.switch
    }

    /// Starts node `index`'s process (again, after a kill: same data directory).
    pub fn start(&mut self, index: usize) -> Result<(), String> {
        let roster = self.dir.join(ROSTER_FILE);
        let node = &mut self.nodes[index];
        let output = File::options()
            .create(true)
            .append(true)
            .open(node.data_dir.join("stderr.log"))
            .map_err(|error| error.to_string())?;
        let persistent: Vec<String> = node.spec.persistent.iter().map(usize::to_string).collect();
        let child = Command::new("ip")
            .args(["netns", "exec", &node.netns])
            .arg(&self.workload)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--index", &index.to_string(), "--roster"])
            .arg(&roster)
            .args(["--persistent", &persistent.join(",")])
            .args(&node.spec.args)
            .stdin(Stdio::null())
            .stdout(output.try_clone().map_err(|error| error.to_string())?)
            .stderr(output)
            .spawn()
            .map_err(|error| format!("cannot start node {index}: {error}"))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// Node `index`'s process id, while it runs (`ip netns exec` execs the workload, so the
    /// child is the node).
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.nodes[index].child.as_ref().map(Child::id)
    }

    /// Sends `signal` (`libc::SIGSTOP`, `SIGCONT`, `SIGTERM`, `SIGUSR1`) to node `index`'s
    /// process.
    pub fn signal(&mut self, index: usize, signal: libc::c_int) -> Result<(), String> {
        let pid = self.pid(index).ok_or(format!("node {index} not running"))?;
        let pid = libc::pid_t::try_from(pid).map_err(|error| error.to_string())?;
        kill(pid, signal).map_err(|error| format!("signal {signal} to node {index}: {error}"))?;
        match signal {
            libc::SIGSTOP => self.nodes[index].paused = true,
            libc::SIGCONT => self.nodes[index].paused = false,
            _ => {}
        }
        Ok(())
    }

    /// SIGKILLs node `index` and reaps it.
    pub fn kill(&mut self, index: usize) -> Result<(), String> {
        let node = &mut self.nodes[index];
        let mut child = node
            .child
            .take()
            .ok_or(format!("node {index} not running"))?;
        child.kill().map_err(|error| error.to_string())?;
        child.wait().map_err(|error| error.to_string())?;
        Ok(())
    }

    /// Stops every node cleanly: SIGUSR1 (stop sending) to all, `quiet` for what is in
    /// flight to land, SIGTERM (shut down, flushing the peers), then up to `timeout` for
    /// them to exit. Nodes still running then are SIGKILLed and named in the error.
    pub fn stop_all(&mut self, quiet: Duration, timeout: Duration) -> Result<(), String> {
        for index in 0..self.nodes.len() {
            if self.nodes[index].paused {
                self.signal(index, libc::SIGCONT)?;
            }
            self.signal(index, libc::SIGUSR1)?;
        }
        std::thread::sleep(quiet);
        for index in 0..self.nodes.len() {
            self.signal(index, libc::SIGTERM)?;
        }
        let deadline = Instant::now() + timeout;
        let mut failed = Vec::new();
        for (index, node) in self.nodes.iter_mut().enumerate() {
            let Some(mut child) = node.child.take() else {
                continue;
            };
            loop {
                match child.try_wait() {
                    Ok(Some(status)) if status.success() => break,
                    Ok(Some(status)) => {
                        failed.push(format!("node {index} exited with {status}"));
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        failed.push(format!("node {index} did not stop within {timeout:?}"));
                        break;
                    }
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    /// Every node's log: its records and how many lines were not one (torn by a kill).
    pub fn logs(&self) -> Result<Vec<(Vec<Record>, usize)>, String> {
        self.nodes
            .iter()
            .map(|node| {
                let path = node.data_dir.join(LOG_FILE);
                let text = fs::read_to_string(&path)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
                let mut records = Vec::new();
                let mut torn = 0;
                for line in text.lines() {
                    match serde_json::from_str(line) {
                        Ok(record) => records.push(record),
                        Err(_) => torn += 1,
                    }
                }
                Ok((records, torn))
            })
            .collect()
    }

    /// Deletes the data directories when the cluster is dropped (kept by default, for a
    /// failure to be read).
    pub fn remove_files_on_drop(&mut self) {
        self.keep_files = false;
    }
}

/// kill(2).
fn kill(pid: libc::pid_t, signal: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) takes two integers and touches no memory of this process.
    #[allow(unsafe_code)]
    let result = unsafe { libc::kill(pid, signal) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // A stopped process dies of SIGKILL too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for name in self.namespaces.iter().rev() {
            let _ = run("ip", &["netns", "delete", name]);
        }
        if !self.keep_files {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
