//! A local ClickHouse cluster for tests of the cluster mode (`scripts/cluster`): 2 shards x 2
//! replicas of Debian's clickhouse-server 18.16 (nodes `s1r1`, `s1r2`, `s2r1`, `s2r2`, in that
//! order) and one ZooKeeper, as ordinary processes, in a temporary directory of the test's own.
//! Every node defines the cluster `cowork`, the macros `shard` (`01`, `02`) and `replica` (its
//! name), and `distributed_ddl`, so `ON CLUSTER` DDL, `Replicated*MergeTree` and `Distributed`
//! tables work as in production.
//!
//! A node can be SIGKILLed and started again on its data ([`Cluster::kill_node`],
//! [`Cluster::start_node`]; `"zookeeper"` names ZooKeeper). Dropping the cluster SIGKILLs all of
//! it; so does the script's watcher when the test process dies without dropping it
//! (`--watch-pid`), and nextest's kill of the test's process group.
//!
//! Ports: `scripts/cluster` derives 13 ports from a base port (ZooKeeper on the base, HTTP on
//! base+1..4, TCP on base+11..14, interserver HTTP on base+21..24). The base is picked at random
//! below the kernel's ephemeral range (so no outgoing connection holds one of them), all 13 are
//! checked free, and the base is locked (`flock` on a file under `CARGO_TARGET_TMPDIR`) for the
//! cluster's lifetime so that concurrent test processes never pick the same one; a port taken
//! anyway makes the script exit 4, and then another base is tried.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The nodes, in the order of [`Cluster::urls`].
pub const NODES: [&str; 4] = ["s1r1", "s1r2", "s2r1", "s2r2"];

/// The cluster's name in `<remote_servers>`.
pub const NAME: &str = "cowork";

/// How long one `scripts/cluster` command may take (it bounds its own waits at 90 s).
const SCRIPT_LIMIT: Duration = Duration::from_secs(150);

/// `scripts/cluster`: `COWORK_CLUSTER_SCRIPT`, else the one in this checkout.
pub fn script() -> PathBuf {
    std::env::var_os("COWORK_CLUSTER_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster"))
}

/// Runs `scripts/cluster ARGS` with its output in files beside `dir`, and waits for it at most
/// `within`: SIGKILL and panic after that. Returns its output and exit code.
fn run_script(dir: &Path, args: &[&str], within: Duration) -> Output {
    let out_path = dir.with_extension("out");
    let err_path = dir.with_extension("err");
    let mut child = Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", script().display()));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scripts/cluster {} did not finish within {within:?}:\n{}",
                args.join(" "),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "scripts/cluster {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The ports a cluster uses above its base (see scripts/cluster).
const CLUSTER_PORTS: [u16; 13] = [0, 1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24];

pub struct Cluster {
    urls: Vec<String>,
    zookeeper: String,
    dir: PathBuf,
    _ports: super::PortBlock,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// Starts ZooKeeper and the four nodes and waits until every node answers and reaches
    /// ZooKeeper (about 1-2 s; panics with the script's output after a few tries on new ports).
    pub fn start() -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cluster");
        let pid = std::process::id().to_string();
        let mut last = String::new();
        for _ in 0..5 {
            let started = Instant::now();
            let ports = super::reserve_ports(&CLUSTER_PORTS);
            let base = ports.base.to_string();
            let args = [
                "start",
                "--dir",
                dir.to_str().unwrap(),
                "--base-port",
                &base,
                "--watch-pid",
                &pid,
            ];
            let out = run_script(&dir, &args, SCRIPT_LIMIT);
            if out.status.code() == Some(4) {
                // A port was taken after we checked it: another base.
                last = describe(&args, &out);
                continue;
            }
            assert!(out.status.success(), "{}", describe(&args, &out));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut lines = stdout.lines().rev();
            let urls: Vec<String> = lines
                .next()
                .unwrap_or_default()
                .trim()
                .split(',')
                .map(str::to_string)
                .collect();
            assert!(
                urls.len() == NODES.len() && urls.iter().all(|u| u.starts_with("http://")),
                "scripts/cluster start printed no URLs on its last line:\n{stdout}"
            );
            let zookeeper = lines
                .next()
                .and_then(|l| l.strip_prefix("zookeeper "))
                .unwrap_or_default()
                .trim()
                .to_string();
            eprintln!(
                "ClickHouse cluster {NAME} on {} (ZooKeeper {zookeeper}) ready in {:?}",
                urls.join(","),
                started.elapsed()
            );
            return Cluster {
                urls,
                zookeeper,
                dir,
                _ports: ports,
                _tmp: tmp,
            };
        }
        panic!("the ports of the ClickHouse cluster were taken at every try; last:\n{last}");
    }

    /// The HTTP URLs of the nodes, s1r1 s1r2 s2r1 s2r2.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The HTTP URL of node `name` (s1r1 ...).
    pub fn url(&self, name: &str) -> &str {
        let i = NODES
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no node {name} (nodes: {NODES:?})"));
        &self.urls[i]
    }

    /// ZooKeeper's client address, host:port.
    pub fn zookeeper(&self) -> &str {
        &self.zookeeper
    }

    /// Where the cluster's files are (see `scripts/cluster --help`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILLs node `name` (or `"zookeeper"`) and waits until it is gone; its data stays.
    pub fn kill_node(&self, name: &str) {
        let args = ["kill-node", name, "--dir", self.dir.to_str().unwrap()];
        let out = run_script(&self.dir, &args, Duration::from_secs(30));
        assert!(out.status.success(), "{}", describe(&args, &out));
        eprintln!("kill-node {name}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }

    /// Starts node `name` (or `"zookeeper"`) again on its data and ports, and waits until it
    /// answers and reaches ZooKeeper.
    pub fn start_node(&self, name: &str) {
        let started = Instant::now();
        let args = ["start-node", name, "--dir", self.dir.to_str().unwrap()];
        let out = run_script(&self.dir, &args, SCRIPT_LIMIT);
        assert!(out.status.success(), "{}", describe(&args, &out));
        eprintln!("{name} started again in {:?}", started.elapsed());
    }

    /// The end of node `name`'s error log (or ZooKeeper's log), for failure messages.
    pub fn log_tail(&self, name: &str) -> String {
        let path = if name == "zookeeper" {
            self.dir.join("zookeeper.log")
        } else {
            self.dir.join(name).join("log/error.log")
        };
        let log = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let args = ["stop", "--dir", self.dir.to_str().unwrap(), "--kill"];
        // Bounded like every other wait; a panic in drop would abort, so only report.
        let mut child = match Command::new(script())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return eprintln!("scripts/cluster stop cannot run: {e}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "scripts/cluster stop --dir {} did not finish within 30 s",
            self.dir.display()
        );
    }
}
