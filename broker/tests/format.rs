//! The `format` and `random-uuid` subcommands as a user runs them, and a cluster node's start on a formatted
//! (and on an unformatted) log directory.
#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

fn broker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary-broker"));
    command.env("NO_COLOR", "1").env("RUST_BACKTRACE", "0");
    command
}

fn run(args: &[&str]) -> Output {
    broker().args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Node 1 of the Kafka combined-mode fixture, with its log directory in `dir` and, when `any_port`, port 0
/// listeners so that the test can start it.
fn node_config(dir: &Path, any_port: bool) -> PathBuf {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kraft/server-1.properties");
    let mut props = std::fs::read_to_string(fixture).unwrap().replace(
        "/tmp/kraft-combined-logs-1",
        &dir.join("data").display().to_string(),
    );
    if any_port {
        props = props
            .replace("PLAINTEXT://:9092", "PLAINTEXT://127.0.0.1:0")
            .replace("CONTROLLER://:9093", "CONTROLLER://127.0.0.1:0")
            .replace(
                "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
                "PLAINTEXT://localhost:0",
            );
    }
    let path = dir.join("server.properties");
    std::fs::write(&path, props).unwrap();
    path
}

fn random_uuid() -> String {
    let out = run(&["random-uuid"]);
    assert!(
        out.status.success(),
        "random-uuid failed: {}",
        text(&out.stderr)
    );
    let id = text(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 22, "not a Kafka id: {id:?}");
    id
}

#[test]
fn format_writes_meta_properties_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(dir.path(), false);
    let config = config.to_str().unwrap();
    let id = random_uuid();
    assert_ne!(id, random_uuid());

    let out = run(&["format", "-t", &id, "-c", config]);
    assert!(out.status.success(), "format failed: {}", text(&out.stderr));
    let meta = std::fs::read_to_string(dir.path().join("data/meta.properties")).unwrap();
    for line in ["version=1", &format!("cluster.id={id}"), "node.id=1"] {
        assert!(
            meta.lines().any(|l| l == line),
            "{line} missing in meta.properties:\n{meta}"
        );
    }
    let directory_id = meta
        .lines()
        .find_map(|l| l.strip_prefix("directory.id="))
        .unwrap_or_else(|| panic!("no directory.id in:\n{meta}"));
    assert_eq!(directory_id.len(), 22);

    let out = run(&["format", "--cluster-id", &random_uuid(), "--config", config]);
    assert!(!out.status.success(), "a second format succeeded");
    assert!(
        text(&out.stderr).contains("is already formatted; use --ignore-formatted"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&[
        "format",
        "-t",
        &random_uuid(),
        "-c",
        config,
        "--ignore-formatted",
    ]);
    assert!(
        out.status.success(),
        "--ignore-formatted failed: {}",
        text(&out.stderr)
    );
    let after = std::fs::read_to_string(dir.path().join("data/meta.properties")).unwrap();
    assert_eq!(after, meta, "--ignore-formatted changed meta.properties");
}

#[test]
fn format_refuses_flags_that_do_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(dir.path(), false);
    let config = config.to_str().unwrap();
    let out = run(&["format", "-t", &random_uuid(), "-c", config, "--standalone"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("this configuration sets controller.quorum.voters"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["format", "-t", "my-cluster", "-c", config]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not a base64url-encoded 16-byte UUID"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("data/meta.properties").exists());
}

#[test]
fn a_cluster_node_starts_only_on_a_formatted_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(dir.path(), true);
    let addresses = dir.path().join("addresses");
    let start = || {
        broker()
            .arg("--config")
            .arg(&config)
            .args(["--http-listen", "127.0.0.1:0", "--bound-addresses-file"])
            .arg(&addresses)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = start().wait_with_output().unwrap();
    assert!(!out.status.success(), "started on an unformatted directory");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is not formatted: run `tributary-broker format -t $(tributary-broker random-uuid) -c FILE`"),
        "{stderr}"
    );

    let out = run(&[
        "format",
        "-t",
        &random_uuid(),
        "-c",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "format failed: {}", text(&out.stderr));
    let mut child = start();
    let deadline = Instant::now() + Duration::from_secs(20);
    let written = loop {
        if let Ok(written) = std::fs::read_to_string(&addresses) {
            break written;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("broker exited with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "no {} in 20 s",
            addresses.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    for key in [
        "kafka=127.0.0.1:",
        "listener.PLAINTEXT=127.0.0.1:",
        "controller=127.0.0.1:",
        "http=127.0.0.1:",
    ] {
        let line = written.lines().find(|l| l.starts_with(key));
        let port = line
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        assert!(
            port.is_some_and(|p| p != 0),
            "no bound {key}PORT in:\n{written}"
        );
    }
}
