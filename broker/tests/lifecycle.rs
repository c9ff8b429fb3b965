//! The broker binary's lifecycle: /healthz and /readyz, a SIGTERM that leaves a clean log (the next start scans
//! nothing), and a `kill -9` that makes the next start recover.
#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use bytes::BytesMut;
use kafka_protocol::{
    messages::{
        fetch_request::{FetchPartition, FetchTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
        FetchRequest, ProduceRequest,
    },
    protocol::Request,
    records::RecordBatchDecoder,
};
use kafka_protocol::{
    messages::{
        metadata_request::MetadataRequestTopic, ApiKey, MetadataRequest, RequestHeader, TopicName,
    },
    protocol::{Encodable, StrBytes},
};
use nix::{sys::signal, unistd::Pid};
use tributary_broker::{
    log::builder::BatchBuilder,
    testing::{call_over_tcp, small_disk::SmallDisk},
};

struct Running {
    child: Child,
    http: u16,
    kafka: u16,
    log: std::path::PathBuf,
}

/// Starts the broker on ports the kernel picks (port 0) and learns them from `--bound-addresses-file`; then
/// waits for /readyz. Each start gets new ports: nothing here needs the old address back.
fn start(data: &Path, run: usize) -> Running {
    let log = data.with_file_name(format!("broker-{run}.log"));
    let addresses = data.with_file_name(format!("addresses-{run}"));
    let child = Command::new(env!("CARGO_BIN_EXE_tributary-broker"))
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .arg("--bound-addresses-file")
        .arg(&addresses)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running {
        child,
        http: 0,
        kafka: 0,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (kafka, http) = loop {
        if let Some(ports) = bound_ports(&addresses) {
            break ports;
        }
        running.assert_alive();
        assert!(
            Instant::now() < deadline,
            "broker wrote no {} in 20 s; log:\n{}",
            addresses.display(),
            running.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    (running.kafka, running.http) = (kafka, http);
    while http_status(running.http, "/readyz") != Some(200) {
        running.assert_alive();
        assert!(
            Instant::now() < deadline,
            "broker not ready in 20 s; log:\n{}",
            running.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

/// The Kafka and HTTP ports in a `--bound-addresses-file` (`kafka=127.0.0.1:PORT`, `http=127.0.0.1:PORT`), once
/// the broker has written it.
fn bound_ports(path: &Path) -> Option<(u16, u16)> {
    let text = std::fs::read_to_string(path).ok()?;
    let port = |key: &str| -> Option<u16> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))?;
        line.rsplit_once(':')?.1.parse().ok()
    };
    Some((port("kafka")?, port("http")?))
}

/// A failed assertion must not leave a broker running.
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "broker exited with {status} during start-up; log:\n{}",
                self.log_text()
            );
        }
    }

    fn signal(&mut self, sig: signal::Signal) -> std::process::ExitStatus {
        signal::kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "broker did not exit after {sig}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The whole HTTP response (status line, headers, body) to a GET of `path`.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The value of the metric sample `series` (name and labels exactly as exposed) in a /metrics scrape.
fn metric(port: u16, series: &str) -> Option<f64> {
    http_get(port, "/metrics")?
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn call<R: Request>(port: u16, request: R, version: i16) -> R::Response {
    call_over_tcp(port, &request, version, Duration::from_secs(20)).unwrap()
}

/// Produces one record of `size` bytes with acks=1: `(error code, base offset)`.
fn produce(port: u16, topic: &'static str, size: usize) -> (i16, i64) {
    let batch = BatchBuilder::new()
        .record(None, Some(Bytes::from(vec![b'r'; size])))
        .build()
        .unwrap();
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let response = call(port, request, 9);
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// How many records a consumer reads from `topic`-0, from offset 0 to the end.
fn count_records(port: u16, topic: &'static str) -> i64 {
    let mut next = 0;
    loop {
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_max_bytes(8 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(topic)))
                .with_partitions(vec![FetchPartition::default()
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(8 << 20)])]);
        let response = call(port, request, 11);
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch at {next}");
        let mut bytes = data.records.clone().unwrap_or_default();
        let batches = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        let Some(last) = batches
            .iter()
            .flat_map(|b| &b.records)
            .map(|r| r.offset)
            .max()
        else {
            return next;
        };
        next = last + 1;
    }
}

/// Creates a topic through Metadata auto-creation, so the log has a partition directory to close or recover.
fn auto_create_topic(port: u16, topic: &'static str) {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(9)
        .with_correlation_id(1);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(topic))))]))
        .with_allow_auto_topic_creation(true);
    let mut body = BytesMut::new();
    header
        .encode(&mut body, ApiKey::Metadata.request_header_version(9))
        .unwrap();
    request.encode(&mut body, 9).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(&(body.len() as i32).to_be_bytes())
        .unwrap();
    stream.write_all(&body).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).unwrap();
}

#[test]
fn sigterm_closes_cleanly_and_kill_9_forces_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let mut first = start(&data, 1);
    assert_eq!(http_status(first.http, "/healthz"), Some(200));
    auto_create_topic(first.kafka, "lifecycle");
    assert!(
        data.join("lifecycle-0").is_dir(),
        "auto-created partition directory missing"
    );
    let status = first.signal(signal::Signal::SIGTERM);
    assert!(
        status.success(),
        "SIGTERM should exit 0, got {status}; log:\n{}",
        first.log_text()
    );
    assert!(
        data.join(".kafka_cleanshutdown").exists(),
        "no clean shutdown marker after SIGTERM"
    );

    let mut second = start(&data, 2);
    assert!(
        second.log_text().contains("clean_shutdown=true"),
        "restart after SIGTERM should trust the clean log; log:\n{}",
        second.log_text()
    );
    assert!(
        !data.join(".kafka_cleanshutdown").exists(),
        "the marker must be removed once the broker runs"
    );
    second.signal(signal::Signal::SIGKILL);

    let mut third = start(&data, 3);
    assert!(
        third.log_text().contains("clean_shutdown=false"),
        "restart after kill -9 must recover; log:\n{}",
        third.log_text()
    );
    third.signal(signal::Signal::SIGTERM);
}

/// What a new user sees filling a small data directory: writes are refused with KAFKA_STORAGE_ERROR at once
/// (not after a timeout), the cause is logged once and counted, everything written stays readable, and
/// writes resume as soon as space is freed.
#[test]
fn a_full_disk_refuses_writes_at_once_keeps_reads_and_resumes_when_space_is_freed() {
    let root = tempfile::tempdir().unwrap();
    let disk = match SmallDisk::mount(&root.path().join("disk"), 16 << 20) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    // Room the test frees later; the broker ignores files in its data directory.
    disk.fill("ballast", 6 << 20).unwrap();
    let mut broker = start(disk.path(), 1);
    auto_create_topic(broker.kafka, "filling");
    let record = 256 << 10;
    let mut acknowledged = 0;
    let refused = loop {
        assert!(acknowledged < 64, "16 MiB never filled up");
        let started = Instant::now();
        let (error, offset) = produce(broker.kafka, "filling", record);
        if error != 0 {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "the refusal took {:?}",
                started.elapsed()
            );
            break error;
        }
        assert_eq!(offset, acknowledged);
        acknowledged += 1;
    };
    assert_eq!(refused, 56, "KAFKA_STORAGE_ERROR");
    assert!(acknowledged > 4, "only {acknowledged} records fitted");
    assert_eq!(produce(broker.kafka, "filling", record).0, 56);
    assert_eq!(count_records(broker.kafka, "filling"), acknowledged);
    let failures = metric(
        broker.http,
        "tributary_storage_write_failures_total{reason=\"no_space\"}",
    );
    assert!(failures.is_some_and(|n| n >= 2.0), "{failures:?}");
    assert_eq!(metric(broker.http, "tributary_storage_full"), Some(1.0));
    let log = broker.log_text();
    let logged: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("write to partition failed"))
        .collect();
    assert_eq!(logged.len(), 1, "one line per failing episode:\n{log}");
    assert!(
        logged[0].contains("filling") && logged[0].contains("reserve"),
        "{}",
        logged[0]
    );

    disk.free("ballast").unwrap();
    let (error, offset) = produce(broker.kafka, "filling", record);
    assert_eq!((error, offset), (0, acknowledged), "writes resume at once");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(broker.http, "tributary_storage_full") != Some(0.0) {
        broker.assert_alive();
        assert!(Instant::now() < deadline, "the probe never saw space again");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count_records(broker.kafka, "filling"), acknowledged + 1);
    assert!(broker.log_text().contains("partition writes again"));
    drop(broker);
}
