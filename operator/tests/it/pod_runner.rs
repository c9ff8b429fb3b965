//! A stand-in kubelet for broker pods: the test control plane has no scheduler and no kubelet, so this runs each
//! broker Pod of a namespace as a local `tributary-broker` process and reports its status back, as a kubelet
//! would. Each pod gets its own loopback address (127.0.2.<ordinal + 1>), ConfigMap volumes are written to files,
//! volumes from the StatefulSet's claim templates become directories named after their claim (so data survives
//! a pod's replacement, like a PersistentVolume), a process that exits is restarted (restartPolicy Always), and
//! the Ready condition follows the container's HTTP readiness probe.
//!
//! It knows broker pods only: addresses in the arguments are rewritten to the pod's loopback address, because pod
//! DNS names do not resolve here.

use std::{
    collections::{BTreeMap, HashMap},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::{ConfigMap, Container, Pod},
    jiff::Timestamp,
};
use kube::{
    api::{DeleteParams, ListParams, Patch, PatchParams},
    Api, Client, ResourceExt,
};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::support;

/// Label the StatefulSet controller puts on each pod with its ordinal.
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// How often pods are listed and probed.
const TICK: Duration = Duration::from_millis(250);

struct RunningPod {
    uid: String,
    child: Child,
    ip: Ipv4Addr,
    readiness: Option<(u16, String)>,
    /// The readiness probe's `periodSeconds` (Kubernetes' default 10 s when unset).
    probe_period: Duration,
    /// No readiness probe before this: a restarted container stays not Ready until the kubelet's next
    /// probe. Kubelet probes on the period's tick, so a restart is visible as not Ready for up to one
    /// period; the runner always waits the whole period, so that anyone watching the pod sees it.
    probe_not_before: Option<std::time::Instant>,
    ready: bool,
    /// Set by [`PodRunner::kill_and_hold`]: an exited process stays down (as a container in back-off does) until
    /// [`PodRunner::resume`], so a test can watch the cluster without the broker for longer than a restart takes.
    held: bool,
    restarts: i32,
    started_at: String,
    command: Vec<String>,
    log: PathBuf,
    /// The container's `terminationMessagePolicy` is `FallbackToLogsOnError`: an exit with an error keeps the
    /// log's tail as the termination message.
    message_from_logs: bool,
    /// `lastState.terminated` of the container: (exit code, message, finished at), from its last exit.
    last_terminated: Option<(i32, String, String)>,
}

/// Runs the broker pods of one namespace until dropped.
pub(crate) struct PodRunner {
    running: Arc<Mutex<HashMap<String, RunningPod>>>,
    task: tokio::task::JoinHandle<()>,
    root: tempfile::TempDir,
}

impl Drop for PodRunner {
    fn drop(&mut self) {
        self.task.abort();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for (_, mut pod) in running.drain() {
            let _ = pod.child.start_kill();
        }
    }
}

impl PodRunner {
    /// Starts running the pods labelled `app.kubernetes.io/component=broker` in `namespace` with `broker_bin`.
    pub(crate) fn start(client: Client, namespace: &str, broker_bin: PathBuf) -> Self {
        let root = tempfile::tempdir().expect("pod runner root");
        let running: Arc<Mutex<HashMap<String, RunningPod>>> = Arc::default();
        let kubelet = Kubelet {
            pods: Api::namespaced(client.clone(), namespace),
            config_maps: Api::namespaced(client, namespace),
            broker_bin,
            root: root.path().to_owned(),
            running: running.clone(),
        };
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = kubelet.tick().await {
                    eprintln!("pod runner: {error}");
                }
                tokio::time::sleep(TICK).await;
            }
        });
        Self {
            running,
            task,
            root,
        }
    }

    /// The loopback address a pod's processes listen on.
    pub(crate) fn pod_ip(ordinal: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 2, ordinal + 1)
    }

    /// Kills a pod's process with SIGKILL, as a crash would; the runner restarts it.
    pub(crate) fn crash(&self, pod: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let process = running
            .get_mut(pod)
            .unwrap_or_else(|| panic!("pod {pod} is not running"));
        process.child.start_kill().expect("kill the pod's process");
    }

    /// Kills a pod's process with SIGKILL and keeps it down until [`PodRunner::resume`]; the pod turns not Ready.
    pub(crate) fn kill_and_hold(&self, pod: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let process = running
            .get_mut(pod)
            .unwrap_or_else(|| panic!("pod {pod} is not running"));
        process.held = true;
        process.child.start_kill().expect("kill the pod's process");
    }

    /// Lets a pod held by [`PodRunner::kill_and_hold`] restart (on the runner's next tick).
    pub(crate) fn resume(&self, pod: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .get_mut(pod)
            .unwrap_or_else(|| panic!("pod {pod} is not running"))
            .held = false;
    }

    /// Deletes the volumes of `pod` (the directories of its claims), as a replaced disk would leave it; kill and
    /// hold the pod first, and delete it after, so that its next incarnation formats them anew.
    pub(crate) fn wipe_volumes(&self, pod: &str) {
        let volumes = self.root.path().join("volumes");
        for entry in std::fs::read_dir(&volumes)
            .expect("list the volumes")
            .flatten()
        {
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with(&format!("-{pod}"))
            {
                std::fs::remove_dir_all(entry.path()).expect("delete a volume");
            }
        }
    }

    /// The last lines a pod's process wrote to stderr, for failure messages.
    pub(crate) fn log_tail(&self, pod: &str) -> String {
        let path = self.root.path().join(format!("{pod}.log"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

struct Kubelet {
    pods: Api<Pod>,
    config_maps: Api<ConfigMap>,
    broker_bin: PathBuf,
    root: PathBuf,
    running: Arc<Mutex<HashMap<String, RunningPod>>>,
}

impl Kubelet {
    async fn tick(&self) -> Result<(), String> {
        let pods = self
            .pods
            .list(&ListParams::default().labels("app.kubernetes.io/component=broker"))
            .await
            .map_err(|e| format!("list pods: {e}"))?
            .items;
        // Processes whose pod is gone (or was replaced) stop.
        let live: HashMap<String, String> = pods
            .iter()
            .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
            .collect();
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.retain(|name, process| {
                let keep = live.get(name) == Some(&process.uid);
                if !keep {
                    let _ = process.child.start_kill();
                }
                keep
            });
        }
        for pod in pods {
            let name = pod.name_any();
            if pod.metadata.deletion_timestamp.is_some() {
                self.terminate(&pod).await?;
                continue;
            }
            let known = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&name);
            if !known {
                let process = self.launch(&pod).await?;
                self.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.clone(), process);
                self.report(&name).await?;
                continue;
            }
            self.supervise(&name).await?;
        }
        Ok(())
    }

    /// SIGTERM, a bounded wait, then the pod object is removed (a kubelet confirms deletion the same way).
    async fn terminate(&self, pod: &Pod) -> Result<(), String> {
        let name = pod.name_any();
        let process = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        if let Some(mut process) = process {
            if let Some(pid) = process.child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(10), process.child.wait())
                .await
                .is_err()
            {
                let _ = process.child.start_kill();
            }
        }
        self.pods
            .delete(&name, &DeleteParams::default().grace_period(0))
            .await
            .map(drop)
            .or_else(|e| match e {
                kube::Error::Api(status) if status.code == 404 => Ok(()),
                other => Err(format!("delete pod {name}: {other}")),
            })
    }

    /// Restarts an exited process and follows readiness, reporting any change.
    async fn supervise(&self, name: &str) -> Result<(), String> {
        // `held`: Some(whether it just turned not Ready) for a process that exited while held.
        let (exited, probe, held) = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            let Some(process) = running.get_mut(name) else {
                return Ok(());
            };
            let exit = process.child.try_wait().ok().flatten();
            let exited = exit.is_some();
            if let Some(code) = exit.map(|status| status.code().unwrap_or(137)) {
                // What a kubelet keeps of the exit; with FallbackToLogsOnError an error exit's message is the
                // log's last 80 lines, at most 2048 bytes.
                let message = if process.message_from_logs && code != 0 {
                    tail_for_message(&process.log)
                } else {
                    String::new()
                };
                process.last_terminated = Some((code, message, now()));
            }
            if exited && process.held {
                // Down until resumed: not Ready (reported once), as a kubelet shows a container in back-off.
                (
                    false,
                    None,
                    Some(std::mem::replace(&mut process.ready, false)),
                )
            } else {
                if !exited
                    && process
                        .probe_not_before
                        .is_some_and(|at| std::time::Instant::now() < at)
                {
                    return Ok(());
                }
                (
                    exited,
                    process
                        .readiness
                        .clone()
                        .map(|(port, path)| (process.ip, port, path)),
                    None,
                )
            }
        };
        match held {
            Some(true) => return self.report(name).await,
            Some(false) => return Ok(()),
            None => {}
        }
        if exited {
            {
                let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(process) = running.get_mut(name) {
                    process.child = spawn(&process.command, &process.log)?;
                    process.restarts += 1;
                    process.ready = false;
                    process.probe_not_before =
                        Some(std::time::Instant::now() + process.probe_period);
                    process.started_at = now();
                }
            }
            return self.report(name).await;
        }
        let ready = match probe {
            Some((ip, port, path)) => support::http_ok((ip, port).into(), &path).await,
            None => true,
        };
        let changed = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            match running.get_mut(name) {
                Some(process) if process.ready != ready => {
                    process.ready = ready;
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.report(name).await?;
        }
        Ok(())
    }

    /// Starts the pod's first container as a local process.
    async fn launch(&self, pod: &Pod) -> Result<RunningPod, String> {
        let name = pod.name_any();
        let spec = pod.spec.as_ref().ok_or("pod without spec")?;
        let container = spec.containers.first().ok_or("pod without containers")?;
        let ordinal: u8 = pod
            .labels()
            .get(POD_INDEX_LABEL)
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| format!("pod {name} has no {POD_INDEX_LABEL} label"))?;
        let ip = PodRunner::pod_ip(ordinal);
        let env = environment(pod, container);

        // Volumes: ConfigMaps become files, claim-template volumes directories named after their claim. Files
        // are written once every mount is known, with mount paths and addresses in them localized too.
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        for mount in container.volume_mounts.iter().flatten() {
            let volume = spec.volumes.iter().flatten().find(|v| v.name == mount.name);
            let dir = match volume.and_then(|v| v.config_map.as_ref()) {
                Some(source) => {
                    let dir = self.root.join(&name).join(&mount.name);
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    let config_map = self
                        .config_maps
                        .get(&source.name)
                        .await
                        .map_err(|e| format!("get ConfigMap {}: {e}", source.name))?;
                    for (key, value) in config_map.data.unwrap_or_default() {
                        files.push((dir.join(key), value));
                    }
                    dir
                }
                None => {
                    let claim = format!("{}-{name}", mount.name);
                    let dir = self.root.join("volumes").join(claim);
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    dir
                }
            };
            mounts.push((mount.mount_path.clone(), dir));
        }
        for (path, value) in files {
            std::fs::write(path, localize_file(&value, ip, &mounts)).map_err(|e| e.to_string())?;
        }

        // Init containers (the volume format) run to completion first, as a kubelet runs them; they share the
        // broker container's mounts here.
        for init in spec.init_containers.iter().flatten() {
            let init_env = environment(pod, init);
            let mut command = vec![self.broker_bin.display().to_string()];
            for arg in init.args.iter().flatten() {
                command.push(localize(&expand(arg, &init_env), ip, &mounts));
            }
            let log = self.root.join(format!("{name}.log"));
            let status = spawn(&command, &log)?
                .wait()
                .await
                .map_err(|e| format!("wait for init container {}: {e}", init.name))?;
            if !status.success() {
                return Err(format!(
                    "init container {} of pod {name} failed ({status}); see {}",
                    init.name,
                    log.display()
                ));
            }
        }

        let mut command = vec![self.broker_bin.display().to_string()];
        for arg in container.args.iter().flatten() {
            command.push(localize(&expand(arg, &env), ip, &mounts));
        }
        let probe_period = Duration::from_secs(
            container
                .readiness_probe
                .as_ref()
                .and_then(|p| p.period_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(10),
        );
        let readiness = container
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|get| {
                let port = match &get.port {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(port) => {
                        u16::try_from(*port).ok()
                    }
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(named) => {
                        container
                            .ports
                            .iter()
                            .flatten()
                            .find(|p| p.name.as_deref() == Some(named))
                            .and_then(|p| u16::try_from(p.container_port).ok())
                    }
                }?;
                Some((port, get.path.clone().unwrap_or_else(|| "/".to_owned())))
            });
        let log = self.root.join(format!("{name}.log"));
        let child = spawn(&command, &log)?;
        Ok(RunningPod {
            uid: pod.uid().unwrap_or_default(),
            child,
            ip,
            readiness,
            probe_period,
            probe_not_before: None,
            ready: false,
            held: false,
            restarts: 0,
            started_at: now(),
            command,
            log,
            message_from_logs: container.termination_message_policy.as_deref()
                == Some("FallbackToLogsOnError"),
            last_terminated: None,
        })
    }

    /// Writes the pod status a kubelet would.
    async fn report(&self, name: &str) -> Result<(), String> {
        let status = {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            let Some(p) = running.get(name) else {
                return Ok(());
            };
            let ready = if p.ready { "True" } else { "False" };
            let condition = |type_: &str, status: &str| json!({ "type": type_, "status": status, "lastTransitionTime": p.started_at });
            json!({
                "status": {
                    "phase": "Running",
                    "hostIP": "127.0.0.1",
                    "podIP": p.ip.to_string(),
                    "podIPs": [{ "ip": p.ip.to_string() }],
                    "startTime": p.started_at,
                    "conditions": [
                        condition("PodScheduled", "True"),
                        condition("Initialized", "True"),
                        condition("ContainersReady", ready),
                        condition("Ready", ready),
                    ],
                    "containerStatuses": [{
                        "name": "broker",
                        "ready": p.ready,
                        "started": true,
                        "restartCount": p.restarts,
                        "image": "local",
                        "imageID": "local",
                        "state": { "running": { "startedAt": p.started_at } },
                        "lastState": p.last_terminated.as_ref().map_or(json!({}), |(code, message, at)| json!({
                            "terminated": {
                                "exitCode": code,
                                "message": message,
                                "finishedAt": at,
                                "startedAt": at,
                            },
                        })),
                    }],
                }
            })
        };
        self.pods
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map(drop)
            .map_err(|e| format!("patch status of pod {name}: {e}"))
    }
}

fn now() -> String {
    // Kubernetes times have second precision.
    Timestamp::from_second(Timestamp::now().as_second())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The termination message a kubelet takes from a container's log: its last 80 lines, at most the last 2048
/// bytes of them.
fn tail_for_message(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    let mut start = tail.len().saturating_sub(2048);
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    tail[start..].to_owned()
}

fn spawn(command: &[String], log: &Path) -> Result<Child, String> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    Command::new(&command[0])
        .args(&command[1..])
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start {}: {e}", command[0]))
}

/// The container's environment, with the downward-API fields a broker pod uses.
fn environment(pod: &Pod, container: &Container) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in container.env.iter().flatten() {
        let value = match (
            &var.value,
            var.value_from.as_ref().and_then(|v| v.field_ref.as_ref()),
        ) {
            (Some(value), _) => Some(value.clone()),
            (None, Some(field)) => match field.field_path.as_str() {
                "metadata.name" => Some(pod.name_any()),
                "metadata.namespace" => pod.namespace(),
                path => path
                    .strip_prefix("metadata.labels['")
                    .and_then(|rest| rest.strip_suffix("']"))
                    .and_then(|label| pod.labels().get(label).cloned()),
            },
            _ => None,
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    env
}

/// Expands `$(VAR)` references as Kubernetes does for container args.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = arg.to_owned();
    for (name, value) in env {
        out = out.replace(&format!("$({name})"), value);
    }
    out
}

/// Rewrites a mounted ConfigMap file for a local process: mount paths to their directories, wildcard listener
/// addresses to the pod's loopback address, and the brokers' pod DNS names
/// (`<sts>-<ordinal>.<headless>.<ns>.svc`) to their loopback addresses.
fn localize_file(text: &str, ip: Ipv4Addr, mounts: &[(String, PathBuf)]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut line = line.to_owned();
        for (mount_path, dir) in mounts {
            line = line.replace(mount_path.as_str(), &dir.display().to_string());
        }
        line = line.replace("0.0.0.0:", &format!("{ip}:"));
        out.push_str(&localize_pod_names(&line));
    }
    out
}

/// Replaces each `<name>-<ordinal>.<rest>.svc` host with that pod's loopback address.
fn localize_pod_names(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(end) = rest.find(".svc") {
        let (before, after) = rest.split_at(end);
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        let host = &before[start..];
        let ordinal = host
            .split('.')
            .next()
            .and_then(|pod| pod.rsplit_once('-'))
            .and_then(|(_, ordinal)| ordinal.parse::<u8>().ok());
        out.push_str(&before[..start]);
        match ordinal {
            Some(ordinal) => out.push_str(&PodRunner::pod_ip(ordinal).to_string()),
            None => out.push_str(&format!("{host}.svc")),
        }
        rest = &after[".svc".len()..];
    }
    out.push_str(rest);
    out
}

/// Rewrites an argument for a local process: mount paths to their directories, wildcard and pod-DNS listener
/// addresses to the pod's loopback address.
fn localize(arg: &str, ip: Ipv4Addr, mounts: &[(String, PathBuf)]) -> String {
    let mut out = arg.to_owned();
    for (mount_path, dir) in mounts {
        out = out.replace(mount_path.as_str(), &dir.display().to_string());
    }
    out = out.replace("0.0.0.0:", &format!("{ip}:"));
    if let Some(address) = out.strip_prefix("--advertised-listener=") {
        let port = address.rsplit(':').next().unwrap_or("9092");
        out = format!("--advertised-listener={ip}:{port}");
    }
    out
}

#[test]
fn mounted_properties_are_localized() {
    let mounts = vec![(
        "/var/lib/tributary/data".to_owned(),
        PathBuf::from("/tmp/v/data-demo-1"),
    )];
    let text = "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093\n\
                controller.quorum.voters=0@demo-0.demo-brokers.ns.svc:9093,1@demo-1.demo-brokers.ns.svc:9093\n\
                log.dirs=/var/lib/tributary/data\n\
                other=a.svc\n";
    assert_eq!(
        localize_file(text, Ipv4Addr::new(127, 0, 2, 2), &mounts),
        "listeners=PLAINTEXT://127.0.2.2:9092,CONTROLLER://127.0.2.2:9093\n\
         controller.quorum.voters=0@127.0.2.1:9093,1@127.0.2.2:9093\n\
         log.dirs=/tmp/v/data-demo-1\n\
         other=a.svc\n"
    );
}
