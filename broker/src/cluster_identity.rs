//! The identity of a cluster node's log directory: formatting it once (`tributary-broker format`, Kafka's
//! `kafka-storage.sh format`) and loading it at every start of a cluster node.
//!
//! Owns `meta.properties` (Kafka's v1 layout: `version`, `cluster.id`, `node.id`, `directory.id`) and
//! `quorum-bootstrap.json`, the initial voter set that `--standalone` / `--initial-controllers` record when the
//! quorum is found through `controller.quorum.bootstrap.servers`. Both are written with
//! [`crate::durable::write_atomically`]. Never reformats a formatted directory and never touches anything else
//! in it; single-node mode does not use it.

use std::{
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
};

use base64::{
    alphabet,
    engine::{
        general_purpose::URL_SAFE_NO_PAD, DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig,
    },
    Engine,
};

use crate::{
    config::{BrokerConfig, ClusterConfig, QuorumConfig},
    durable::{self, DurableWriteError},
};

/// Kafka's name for the file that marks a formatted log directory.
pub const META_PROPERTIES: &str = "meta.properties";
/// Our file for the initial voter set of a quorum found through bootstrap servers (Kafka keeps it in a
/// `bootstrap.checkpoint`; ours is JSON).
pub const QUORUM_BOOTSTRAP_FILE: &str = "quorum-bootstrap.json";

/// Why a log directory's identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "log directory {dir} is not formatted: run `tributary-broker format -t $(tributary-broker random-uuid) \
         -c FILE` once, with the same cluster id on every node of the cluster"
    )]
    NotFormatted { dir: PathBuf },
    #[error("reading {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path} has version {version}; only version 1 (KRaft) is supported")]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error(
        "{path} was formatted for node.id {found} but the configuration says node.id {configured}; a log \
         directory belongs to one node"
    )]
    NodeIdMismatch {
        path: PathBuf,
        found: i32,
        configured: i32,
    },
    #[error("cluster id mismatch: expected {expected}, found {found}")]
    ClusterIdMismatch { expected: String, found: String },
    #[error("{path} is malformed")]
    BootstrapFile {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Why `format` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(
        "log directory {dir} is already formatted; use --ignore-formatted to leave it as it is and succeed"
    )]
    AlreadyFormatted { dir: PathBuf },
    #[error("process.roles is not set: only cluster nodes are formatted; a single-node broker needs no format")]
    NotAClusterNode,
    #[error("cluster id {value:?} is not a base64url-encoded 16-byte UUID (22 characters, from `tributary-broker random-uuid`)")]
    InvalidClusterId { value: String },
    #[error("{flag} is for a quorum found through controller.quorum.bootstrap.servers; this configuration sets controller.quorum.voters")]
    VoterFlagWithStaticVoters { flag: &'static str },
    #[error("{flag} is for nodes with the controller role; this node has process.roles={roles}")]
    VoterFlagOnBroker {
        flag: &'static str,
        roles: &'static str,
    },
    #[error(
        "controller.quorum.voters is not set on this controller: give --standalone (a new one-voter quorum), \
         --initial-controllers ID@HOST:PORT:DIRECTORY_ID,... (a new quorum of several) or --no-initial-controllers \
         (join an existing quorum)"
    )]
    VoterFlagRequired,
    #[error("--initial-controllers {value:?}: {reason}")]
    InvalidInitialControllers { value: String, reason: &'static str },
    #[error("--initial-controllers does not list this node (node.id {node_id})")]
    NotInInitialControllers { node_id: i32 },
    #[error("reading --initial-controllers-file {path}")]
    InitialControllersFile { path: PathBuf, source: io::Error },
    #[error("reading the existing identity")]
    Existing(#[source] IdentityError),
    #[error("creating log directory {dir}")]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("this controller has no controller listener to record as its voter endpoint")]
    NoControllerListener,
    #[error("encoding {QUORUM_BOOTSTRAP_FILE}")]
    Encode(#[source] serde_json::Error),
    #[error("writing the identity")]
    Write(#[source] DurableWriteError),
}

/// One voter of the initial quorum, as `format` recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BootstrapVoter {
    pub id: i32,
    pub host: String,
    pub port: u16,
    /// The voter's log directory id (KIP-853 tells a voter's incarnations apart by it).
    pub directory_id: String,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct BootstrapFile {
    version: u32,
    voters: Vec<BootstrapVoter>,
}

/// What a formatted log directory says about this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIdentity {
    /// Kafka's 22-character base64url cluster id; every node of a cluster has the same.
    pub cluster_id: String,
    pub node_id: i32,
    /// This directory's id, new at every format.
    pub directory_id: String,
    /// The initial voter set recorded by `format --standalone | --initial-controllers`; None with static
    /// `controller.quorum.voters` (the configuration has them) or `--no-initial-controllers`.
    pub bootstrap_voters: Option<Vec<BootstrapVoter>>,
}

impl ClusterIdentity {
    /// Checks the cluster id another node (or the quorum) reports against ours.
    pub fn check_cluster_id(&self, found: &str) -> Result<(), IdentityError> {
        if found == self.cluster_id {
            Ok(())
        } else {
            Err(IdentityError::ClusterIdMismatch {
                expected: self.cluster_id.clone(),
                found: found.to_owned(),
            })
        }
    }
}

/// The voter-set choice of `format`, Kafka's `--standalone | --initial-controllers | --no-initial-controllers`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InitialVoters {
    /// No flag: right for static voters and for broker-only nodes.
    #[default]
    Unset,
    Standalone,
    /// The raw `ID@HOST:PORT:DIRECTORY_ID,...` list.
    InitialControllers(String),
    NoInitialControllers,
}

/// What `format` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatOutcome {
    Formatted(ClusterIdentity),
    /// `--ignore-formatted` and the directory was formatted already: nothing was written.
    AlreadyFormatted,
}

/// A new id in Kafka's form: a random (v4) UUID as 22 characters of unpadded base64url. Like Kafka's, it never
/// starts with `-` (it would read as a flag) and is never one of the reserved all-zero / `...01` ids.
pub fn random_uuid() -> String {
    loop {
        let uuid = uuid::Uuid::new_v4();
        let value = uuid.as_u128();
        if value <= 1 {
            continue;
        }
        let text = URL_SAFE_NO_PAD.encode(uuid.as_bytes());
        if !text.starts_with('-') {
            return text;
        }
    }
}

/// Decodes ids as Java's base64url decoder does, which ignores the unused low bits of the last character:
/// Kafka's documented example id `MkU3OEVBNTcwNTJENDM2Qk` has some set.
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Whether `value` is a Kafka id: base64url without padding that decodes to 16 bytes.
/// A wire Uuid in Kafka's text form (base64url without padding, as in `meta.properties`).
pub fn uuid_text(uuid: &uuid::Uuid) -> String {
    URL_SAFE_NO_PAD.encode(uuid.as_bytes())
}

/// Kafka's text form of a Uuid read back for the wire; None when it is not one.
pub fn parse_uuid_text(value: &str) -> Option<uuid::Uuid> {
    let bytes = LENIENT_URL_SAFE.decode(value).ok()?;
    uuid::Uuid::from_slice(&bytes).ok()
}

pub fn is_valid_uuid(value: &str) -> bool {
    value.len() == 22
        && LENIENT_URL_SAFE
            .decode(value)
            .is_ok_and(|bytes| bytes.len() == 16)
}

/// Formats `config`'s log directory for the cluster `cluster_id`, like `kafka-storage.sh format`.
pub fn format(
    config: &BrokerConfig,
    cluster_id: &str,
    voters: &InitialVoters,
    ignore_formatted: bool,
) -> Result<FormatOutcome, FormatError> {
    let cluster = config
        .cluster
        .as_ref()
        .ok_or(FormatError::NotAClusterNode)?;
    if !is_valid_uuid(cluster_id) {
        return Err(FormatError::InvalidClusterId {
            value: cluster_id.to_owned(),
        });
    }
    let dir = &config.data_dir;
    let meta_path = dir.join(META_PROPERTIES);
    match fs::metadata(&meta_path) {
        Ok(_) if ignore_formatted => return Ok(FormatOutcome::AlreadyFormatted),
        Ok(_) => return Err(FormatError::AlreadyFormatted { dir: dir.clone() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(FormatError::Existing(IdentityError::Read {
                path: meta_path,
                source,
            }))
        }
    }
    let (directory_id, bootstrap_voters) = initial_voters(cluster, voters)?;
    fs::create_dir_all(dir).map_err(|source| FormatError::CreateDir {
        dir: dir.clone(),
        source,
    })?;
    // meta.properties last: it is what marks the directory formatted, so a crash before it leaves a directory
    // that formats again.
    if let Some(voters) = &bootstrap_voters {
        let file = BootstrapFile {
            version: 1,
            voters: voters.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&file).map_err(FormatError::Encode)?;
        json.push(b'\n');
        durable::write_atomically(&dir.join(QUORUM_BOOTSTRAP_FILE), &json)
            .map_err(FormatError::Write)?;
    }
    let meta = format!(
        "# Written by tributary-broker format; identifies this log directory. Do not edit.\n\
         version=1\ncluster.id={cluster_id}\nnode.id={}\ndirectory.id={directory_id}\n",
        cluster.node_id
    );
    durable::write_atomically(&meta_path, meta.as_bytes()).map_err(FormatError::Write)?;
    Ok(FormatOutcome::Formatted(ClusterIdentity {
        cluster_id: cluster_id.to_owned(),
        node_id: cluster.node_id,
        directory_id,
        bootstrap_voters,
    }))
}

/// This directory's id and the initial voter set to record, from the voter flags.
fn initial_voters(
    cluster: &ClusterConfig,
    voters: &InitialVoters,
) -> Result<(String, Option<Vec<BootstrapVoter>>), FormatError> {
    let flag = match voters {
        InitialVoters::Unset => None,
        InitialVoters::Standalone => Some("--standalone"),
        InitialVoters::InitialControllers(_) => Some("--initial-controllers"),
        InitialVoters::NoInitialControllers => Some("--no-initial-controllers"),
    };
    if let Some(flag) = flag {
        if matches!(cluster.quorum, QuorumConfig::StaticVoters(_)) {
            return Err(FormatError::VoterFlagWithStaticVoters { flag });
        }
        if !cluster.roles.is_controller() {
            return Err(FormatError::VoterFlagOnBroker {
                flag,
                roles: cluster.roles.as_str(),
            });
        }
    }
    let bootstrap_controller =
        cluster.roles.is_controller() && matches!(cluster.quorum, QuorumConfig::Bootstrap(_));
    match voters {
        InitialVoters::Unset if bootstrap_controller => Err(FormatError::VoterFlagRequired),
        InitialVoters::Unset | InitialVoters::NoInitialControllers => Ok((random_uuid(), None)),
        InitialVoters::Standalone => {
            let directory_id = random_uuid();
            let (host, port) = cluster
                .controller_advertised
                .clone()
                .ok_or(FormatError::NoControllerListener)?;
            let voter = BootstrapVoter {
                id: cluster.node_id,
                host,
                port,
                directory_id: directory_id.clone(),
            };
            Ok((directory_id, Some(vec![voter])))
        }
        InitialVoters::InitialControllers(value) => {
            let voters = parse_initial_controllers(value)?;
            // The list fixes every voter's directory id in advance, so this directory takes its own from it.
            let directory_id = voters
                .iter()
                .find(|v| v.id == cluster.node_id)
                .map(|v| v.directory_id.clone())
                .ok_or(FormatError::NotInInitialControllers {
                    node_id: cluster.node_id,
                })?;
            Ok((directory_id, Some(voters)))
        }
    }
}

/// What `--initial-controllers-file` asks of the node `config` describes: the list in `file` when the file
/// exists, is not empty and lists this node, else to join an existing quorum. A node the list leaves out
/// joins too: a cluster formed with its first nodes starts its later ones with the same flags.
pub fn initial_voters_from_file(
    file: &Path,
    config: &BrokerConfig,
) -> Result<InitialVoters, FormatError> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(InitialVoters::NoInitialControllers)
        }
        Err(source) => {
            return Err(FormatError::InitialControllersFile {
                path: file.to_owned(),
                source,
            })
        }
    };
    let list = text.trim();
    if list.is_empty() {
        return Ok(InitialVoters::NoInitialControllers);
    }
    let listed = match &config.cluster {
        Some(cluster) => parse_initial_controllers(list)?
            .iter()
            .any(|voter| voter.id == cluster.node_id),
        None => false,
    };
    Ok(if listed {
        InitialVoters::InitialControllers(list.to_owned())
    } else {
        InitialVoters::NoInitialControllers
    })
}

/// Parses Kafka's `--initial-controllers` list: `ID@HOST:PORT:DIRECTORY_ID,...`.
fn parse_initial_controllers(value: &str) -> Result<Vec<BootstrapVoter>, FormatError> {
    let bad = |reason| FormatError::InvalidInitialControllers {
        value: value.to_owned(),
        reason,
    };
    let mut voters: Vec<BootstrapVoter> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, rest) = entry
            .split_once('@')
            .ok_or_else(|| bad("expected ID@HOST:PORT:DIRECTORY_ID entries"))?;
        let id: i32 = id
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| bad("ids are integers >= 0"))?;
        let (address, directory_id) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected ID@HOST:PORT:DIRECTORY_ID entries"))?;
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
            .filter(|(h, p)| !h.is_empty() && *p != 0)
            .ok_or_else(|| bad("expected ID@HOST:PORT:DIRECTORY_ID entries"))?;
        if !is_valid_uuid(directory_id) {
            return Err(bad(
                "directory ids are 22-character base64url UUIDs (tributary-broker random-uuid)",
            ));
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(bad("a node id is listed twice"));
        }
        if voters.iter().any(|v| v.directory_id == directory_id) {
            return Err(bad("a directory id is listed twice"));
        }
        voters.push(BootstrapVoter {
            id,
            host: host.to_owned(),
            port,
            directory_id: directory_id.to_owned(),
        });
    }
    if voters.is_empty() {
        return Err(bad("at least one controller is needed"));
    }
    Ok(voters)
}

/// Loads the identity of a formatted log directory and checks it against the configuration (the node id). A
/// cluster node calls it before opening its logs and refuses to start on an error; comparing the cluster id
/// with other nodes' is the caller's ([`ClusterIdentity::check_cluster_id`]).
pub fn load(log_dir: &Path, config: &ClusterConfig) -> Result<ClusterIdentity, IdentityError> {
    let path = log_dir.join(META_PROPERTIES);
    let file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(IdentityError::NotFormatted {
                dir: log_dir.to_owned(),
            })
        }
        Err(source) => return Err(IdentityError::Read { path, source }),
    };
    let props: BTreeMap<String, String> = java_properties::read(io::BufReader::new(file))
        .map_err(|e| IdentityError::Malformed {
            path: path.clone(),
            reason: e.to_string(),
        })?
        .into_iter()
        .collect();
    let get = |key: &str| -> Result<String, IdentityError> {
        props
            .get(key)
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| IdentityError::Malformed {
                path: path.clone(),
                reason: format!("{key} is missing"),
            })
    };
    let version = get("version")?;
    if version != "1" {
        return Err(IdentityError::UnsupportedVersion { path, version });
    }
    let cluster_id = get("cluster.id")?;
    let directory_id = get("directory.id")?;
    for (key, value) in [("cluster.id", &cluster_id), ("directory.id", &directory_id)] {
        if !is_valid_uuid(value) {
            return Err(IdentityError::Malformed {
                path,
                reason: format!("{key} {value:?} is not a 22-character base64url UUID"),
            });
        }
    }
    let node_id_text = get("node.id")?;
    let node_id: i32 = node_id_text.parse().map_err(|_| IdentityError::Malformed {
        path: path.clone(),
        reason: format!("node.id {node_id_text:?} is not an integer"),
    })?;
    if node_id != config.node_id {
        return Err(IdentityError::NodeIdMismatch {
            path,
            found: node_id,
            configured: config.node_id,
        });
    }
    Ok(ClusterIdentity {
        cluster_id,
        node_id,
        directory_id,
        bootstrap_voters: load_bootstrap_voters(log_dir)?,
    })
}

fn load_bootstrap_voters(log_dir: &Path) -> Result<Option<Vec<BootstrapVoter>>, IdentityError> {
    let path = log_dir.join(QUORUM_BOOTSTRAP_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IdentityError::Read { path, source }),
    };
    let file: BootstrapFile =
        serde_json::from_slice(&bytes).map_err(|source| IdentityError::BootstrapFile {
            path: path.clone(),
            source,
        })?;
    if file.version != 1 {
        return Err(IdentityError::UnsupportedVersion {
            path,
            version: file.version.to_string(),
        });
    }
    Ok(Some(file.voters))
}

#[cfg(test)]
mod tests;
