#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;

/// A node's configuration with its log directory in `dir`; `quorum` is the quorum key and value.
fn node(dir: &Path, node_id: i32, roles: &str, quorum: (&str, &str)) -> BrokerConfig {
    let mut props: BTreeMap<String, String> = [
        ("process.roles", roles),
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
        ),
        ("controller.listener.names", "CONTROLLER"),
        quorum,
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if roles == "broker" {
        props.insert(
            "listeners".to_owned(),
            "PLAINTEXT://127.0.0.1:9092".to_owned(),
        );
    }
    props.insert("node.id".to_owned(), node_id.to_string());
    props.insert("log.dirs".to_owned(), dir.display().to_string());
    let mut config = BrokerConfig::dev_defaults();
    config.apply_properties(&props).unwrap();
    config
}

const VOTERS: (&str, &str) = ("controller.quorum.voters", "1@127.0.0.1:9093");
const BOOTSTRAP: (&str, &str) = ("controller.quorum.bootstrap.servers", "127.0.0.1:9093");

fn cluster(config: &BrokerConfig) -> &ClusterConfig {
    config.cluster.as_ref().unwrap()
}

#[test]
fn random_uuids_are_kafka_ids() {
    for _ in 0..200 {
        let id = random_uuid();
        assert!(is_valid_uuid(&id), "{id}");
        assert!(!id.starts_with('-'), "{id}");
    }
    assert_ne!(random_uuid(), random_uuid());
    // Kafka's own example id.
    assert!(is_valid_uuid("MkU3OEVBNTcwNTJENDM2Qk"));
    assert!(!is_valid_uuid("not-a-cluster-id"));
    assert!(!is_valid_uuid("MkU3OEVBNTcwNTJENDM2Q"));
}

#[test]
fn format_writes_meta_properties_and_load_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = node(&data, 1, "broker,controller", VOTERS);
    let id = random_uuid();
    let FormatOutcome::Formatted(formatted) =
        format(&config, &id, &InitialVoters::Unset, false).unwrap()
    else {
        panic!("not formatted");
    };
    let text = fs::read_to_string(data.join(META_PROPERTIES)).unwrap();
    for line in [
        "version=1".to_owned(),
        format!("cluster.id={id}"),
        "node.id=1".to_owned(),
        format!("directory.id={}", formatted.directory_id),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing in:\n{text}"
        );
    }
    assert!(
        !data.join(QUORUM_BOOTSTRAP_FILE).exists(),
        "static voters need no bootstrap file"
    );
    let loaded = load(&data, cluster(&config)).unwrap();
    assert_eq!(loaded, formatted);
    assert_eq!(loaded.bootstrap_voters, None);
    loaded.check_cluster_id(&id).unwrap();
}

#[test]
fn a_formatted_directory_is_not_formatted_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = node(dir.path(), 1, "broker,controller", VOTERS);
    let first = random_uuid();
    format(&config, &first, &InitialVoters::Unset, false).unwrap();
    let before = fs::read(dir.path().join(META_PROPERTIES)).unwrap();

    let err = format(&config, &random_uuid(), &InitialVoters::Unset, false).unwrap_err();
    assert!(
        matches!(err, FormatError::AlreadyFormatted { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--ignore-formatted"), "{err}");

    let outcome = format(&config, &random_uuid(), &InitialVoters::Unset, true).unwrap();
    assert_eq!(outcome, FormatOutcome::AlreadyFormatted);
    assert_eq!(
        fs::read(dir.path().join(META_PROPERTIES)).unwrap(),
        before,
        "must stay untouched"
    );
    assert_eq!(
        load(dir.path(), cluster(&config)).unwrap().cluster_id,
        first
    );
}

#[test]
fn standalone_records_this_node_as_the_only_voter() {
    let dir = tempfile::tempdir().unwrap();
    let config = node(dir.path(), 1, "broker,controller", BOOTSTRAP);
    let FormatOutcome::Formatted(formatted) =
        format(&config, &random_uuid(), &InitialVoters::Standalone, false).unwrap()
    else {
        panic!("not formatted");
    };
    let expected = vec![BootstrapVoter {
        id: 1,
        host: "127.0.0.1".to_owned(),
        port: 9093,
        directory_id: formatted.directory_id.clone(),
    }];
    assert_eq!(formatted.bootstrap_voters.as_ref(), Some(&expected));
    let loaded = load(dir.path(), cluster(&config)).unwrap();
    assert_eq!(loaded.bootstrap_voters, Some(expected));
}

#[test]
fn initial_controllers_fix_every_directory_id() {
    let ids: Vec<String> = (0..3).map(|_| random_uuid()).collect();
    let list = format!(
        "1@c1:9093:{},2@c2:9093:{},3@[::1]:9093:{}",
        ids[0], ids[1], ids[2]
    );
    let dir = tempfile::tempdir().unwrap();
    let config = node(dir.path(), 2, "broker,controller", BOOTSTRAP);
    let voters = InitialVoters::InitialControllers(list);
    let FormatOutcome::Formatted(formatted) =
        format(&config, &random_uuid(), &voters, false).unwrap()
    else {
        panic!("not formatted");
    };
    assert_eq!(formatted.directory_id, ids[1]);
    let loaded = load(dir.path(), cluster(&config))
        .unwrap()
        .bootstrap_voters
        .unwrap();
    assert_eq!(loaded.len(), 3);
    assert_eq!((loaded[2].host.as_str(), loaded[2].port), ("::1", 9093));

    let other = tempfile::tempdir().unwrap();
    let config = node(other.path(), 4, "broker,controller", BOOTSTRAP);
    let err = format(&config, &random_uuid(), &voters, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--initial-controllers does not list this node (node.id 4)"
    );
    assert!(!other.path().join(META_PROPERTIES).exists());
}

#[test]
fn voter_flags_must_fit_the_quorum_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let uuid = random_uuid();
    let cases = [
        (
            node(dir.path(), 1, "broker,controller", VOTERS),
            InitialVoters::Standalone,
            "--standalone is for a quorum found through controller.quorum.bootstrap.servers; this configuration sets controller.quorum.voters",
        ),
        (
            node(dir.path(), 1, "broker,controller", BOOTSTRAP),
            InitialVoters::Unset,
            "controller.quorum.voters is not set on this controller: give --standalone (a new one-voter quorum), --initial-controllers ID@HOST:PORT:DIRECTORY_ID,... (a new quorum of several) or --no-initial-controllers (join an existing quorum)",
        ),
        (
            node(dir.path(), 4, "broker", BOOTSTRAP),
            InitialVoters::Standalone,
            "--standalone is for nodes with the controller role; this node has process.roles=broker",
        ),
        (
            node(dir.path(), 1, "broker,controller", BOOTSTRAP),
            InitialVoters::InitialControllers("1@c1:9093".to_owned()),
            r#"--initial-controllers "1@c1:9093": expected ID@HOST:PORT:DIRECTORY_ID entries"#,
        ),
        (
            node(dir.path(), 1, "broker,controller", BOOTSTRAP),
            InitialVoters::InitialControllers(format!("1@c1:9093:{uuid},1@c2:9093:{}", random_uuid())),
            "a node id is listed twice",
        ),
    ];
    for (config, voters, expected) in cases {
        let err = format(&config, &random_uuid(), &voters, false)
            .unwrap_err()
            .to_string();
        assert!(err.ends_with(expected), "{voters:?}: {err}");
    }
    assert!(
        !dir.path().join(META_PROPERTIES).exists(),
        "a refused format wrote something"
    );
    // A broker-only node with bootstrap servers formats without a flag, and joins the quorum it finds.
    let broker = node(dir.path(), 4, "broker", BOOTSTRAP);
    format(&broker, &uuid, &InitialVoters::Unset, false).unwrap();
    assert_eq!(
        load(dir.path(), cluster(&broker)).unwrap().bootstrap_voters,
        None
    );
}

#[test]
fn format_refuses_single_node_configs_and_bad_cluster_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut single = BrokerConfig::dev_defaults();
    single.data_dir = dir.path().to_owned();
    let err = format(&single, &random_uuid(), &InitialVoters::Unset, false).unwrap_err();
    assert!(matches!(err, FormatError::NotAClusterNode), "{err:?}");
    let config = node(dir.path(), 1, "broker,controller", VOTERS);
    let err = format(&config, "my-cluster", &InitialVoters::Unset, false).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(r#"cluster id "my-cluster" is not"#),
        "{err}"
    );
}

#[test]
fn load_explains_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let config = node(dir.path(), 1, "broker,controller", VOTERS);
    let err = load(dir.path(), cluster(&config)).unwrap_err();
    assert!(matches!(err, IdentityError::NotFormatted { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("run `tributary-broker format -t $(tributary-broker random-uuid) -c FILE`"),
        "{err}"
    );

    let uuid = random_uuid();
    format(&config, &uuid, &InitialVoters::Unset, false).unwrap();
    let mut moved = node(
        dir.path(),
        1,
        "broker,controller",
        ("controller.quorum.voters", "1@a:9093,2@b:9093"),
    );
    moved.set_node_id(2).unwrap();
    let err = load(dir.path(), cluster(&moved)).unwrap_err();
    assert!(
        matches!(
            err,
            IdentityError::NodeIdMismatch {
                found: 1,
                configured: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("formatted for node.id 1 but the configuration says node.id 2"),
        "{err}"
    );

    let identity = load(dir.path(), cluster(&config)).unwrap();
    let other = random_uuid();
    let err = identity.check_cluster_id(&other).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cluster id mismatch: expected {uuid}, found {other}")
    );

    let meta = dir.path().join(META_PROPERTIES);
    fs::write(&meta, "version=0\ncluster.id=x\nbroker.id=1\n").unwrap();
    let err = load(dir.path(), cluster(&config)).unwrap_err();
    assert!(
        matches!(err, IdentityError::UnsupportedVersion { .. }),
        "{err:?}"
    );
    fs::write(&meta, format!("version=1\ncluster.id={uuid}\nnode.id=1\n")).unwrap();
    let err = load(dir.path(), cluster(&config)).unwrap_err().to_string();
    assert!(
        err.ends_with("is malformed: directory.id is missing"),
        "{err}"
    );
}

#[test]
fn an_initial_controllers_file_forms_the_nodes_it_lists_and_joins_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("initial-controllers");
    let (first, later) = (random_uuid(), random_uuid());
    let list = format!("0@c0:9093:{first},1@c1:9093:{later}");
    let listed = node(&dir.path().join("d1"), 1, "broker,controller", BOOTSTRAP);
    let left_out = node(&dir.path().join("d3"), 3, "broker,controller", BOOTSTRAP);

    // No file: the quorum has formed (or never will from this file), so every node joins.
    assert_eq!(
        initial_voters_from_file(&file, &listed).unwrap(),
        InitialVoters::NoInitialControllers
    );
    fs::write(&file, format!("{list}\n")).unwrap();
    assert_eq!(
        initial_voters_from_file(&file, &listed).unwrap(),
        InitialVoters::InitialControllers(list.clone())
    );
    assert_eq!(
        initial_voters_from_file(&file, &left_out).unwrap(),
        InitialVoters::NoInitialControllers,
        "a node the list leaves out joins the quorum the listed ones form"
    );
    fs::write(&file, "  \n").unwrap();
    assert_eq!(
        initial_voters_from_file(&file, &listed).unwrap(),
        InitialVoters::NoInitialControllers
    );
    fs::write(&file, "0@c0:9093").unwrap();
    assert!(matches!(
        initial_voters_from_file(&file, &listed),
        Err(FormatError::InvalidInitialControllers { .. })
    ));

    // The listed node formats with its directory id from the list.
    fs::write(&file, &list).unwrap();
    let voters = initial_voters_from_file(&file, &listed).unwrap();
    let id = random_uuid();
    match format(&listed, &id, &voters, false).unwrap() {
        FormatOutcome::Formatted(identity) => assert_eq!(identity.directory_id, later),
        other => panic!("{other:?}"),
    }
}
