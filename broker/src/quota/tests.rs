use std::time::Duration;

use super::{
    apply_alterations,
    manager::{SampledRate, TokenBucket},
    resolve, resolve_ip, validate_value, ClientQuotas, EntityName, QuotaEntity, QuotaError,
    CONNECTION_CREATION_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE,
};

fn named(name: &str) -> EntityName {
    EntityName::Named(name.to_owned())
}

fn quotas(entries: &[(QuotaEntity, f64)]) -> ClientQuotas {
    let mut quotas = ClientQuotas::new();
    for (entity, value) in entries {
        quotas
            .entry(entity.clone())
            .or_default()
            .insert(PRODUCER_BYTE_RATE.to_owned(), *value);
    }
    quotas
}

#[test]
fn entities_are_checked_as_kafkas_controller_checks_them() {
    let ok = QuotaEntity::from_components([("user", Some("alice")), ("client-id", None)])
        .expect("a valid entity");
    assert_eq!(
        ok,
        QuotaEntity::user_client(named("alice"), EntityName::Default)
    );
    assert_eq!(ok.to_string(), "user=alice,client-id=<default>");
    let refused = [
        (vec![], QuotaError::EmptyEntity),
        (
            vec![("group", Some("g"))],
            QuotaError::UnknownEntityType("group".into()),
        ),
        (
            vec![("user", Some("a")), ("user", Some("b"))],
            QuotaError::DuplicateEntityType("user".into()),
        ),
        (
            vec![("client-id", Some(""))],
            QuotaError::EmptyName("client-id".into()),
        ),
        (
            vec![("ip", Some("127.0.0.1")), ("user", Some("a"))],
            QuotaError::IpCombined,
        ),
        (
            vec![("ip", Some("not-an-ip"))],
            QuotaError::InvalidIp("not-an-ip".into()),
        ),
    ];
    for (components, expected) in refused {
        assert_eq!(
            QuotaEntity::from_components(components.clone()),
            Err(expected),
            "{components:?}"
        );
    }
}

#[test]
fn values_are_typed_like_kafkas_quota_configs() {
    let client = QuotaEntity::client(named("c"));
    let ip = QuotaEntity::ip(EntityName::Default);
    assert_eq!(validate_value(&client, PRODUCER_BYTE_RATE, 1024.0), Ok(()));
    assert_eq!(validate_value(&client, REQUEST_PERCENTAGE, 12.5), Ok(()));
    assert_eq!(validate_value(&ip, CONNECTION_CREATION_RATE, 10.0), Ok(()));
    assert_eq!(
        validate_value(&client, PRODUCER_BYTE_RATE, 10.5),
        Err(QuotaError::Fractional(PRODUCER_BYTE_RATE.into()))
    );
    assert_eq!(
        validate_value(&client, PRODUCER_BYTE_RATE, 0.0),
        Err(QuotaError::NotPositive(PRODUCER_BYTE_RATE.into()))
    );
    assert_eq!(
        validate_value(&ip, CONNECTION_CREATION_RATE, 3e9),
        Err(QuotaError::TooLarge(CONNECTION_CREATION_RATE.into()))
    );
    assert!(matches!(
        validate_value(&ip, PRODUCER_BYTE_RATE, 1.0),
        Err(QuotaError::UnknownKey { .. })
    ));
    assert!(matches!(
        validate_value(&client, CONNECTION_CREATION_RATE, 1.0),
        Err(QuotaError::UnknownKey { .. })
    ));
}

#[test]
fn resolution_follows_kafkas_precedence_and_shares_meters_by_entity() {
    let d = || EntityName::Default;
    let levels = [
        QuotaEntity::user_client(named("u"), named("c")),
        QuotaEntity::user_client(named("u"), d()),
        QuotaEntity::user(named("u")),
        QuotaEntity::user_client(d(), named("c")),
        QuotaEntity::user_client(d(), d()),
        QuotaEntity::user(d()),
        QuotaEntity::client(named("c")),
        QuotaEntity::client(d()),
    ];
    // With every level set, each one wins once all the more specific ones are gone.
    for (winner, _) in levels.iter().enumerate() {
        let set: Vec<(QuotaEntity, f64)> = levels[winner..]
            .iter()
            .enumerate()
            .map(|(i, e)| (e.clone(), (winner + i + 1) as f64 * 100.0))
            .collect();
        let (key, limit) =
            resolve(&quotas(&set), PRODUCER_BYTE_RATE, "u", "c").expect("a quota applies");
        assert_eq!(limit, (winner + 1) as f64 * 100.0, "level {winner}");
        let expected = match winner {
            2 | 5 => ("u", ""),
            6 | 7 => ("", "c"),
            _ => ("u", "c"),
        };
        assert_eq!(
            (key.user.as_str(), key.client_id.as_str()),
            expected,
            "level {winner}"
        );
    }
    assert_eq!(
        resolve(&ClientQuotas::new(), PRODUCER_BYTE_RATE, "u", "c"),
        None
    );
    // Another key does not apply.
    let only_produce = quotas(&[(QuotaEntity::client(d()), 5.0)]);
    assert_eq!(resolve(&only_produce, REQUEST_PERCENTAGE, "u", "c"), None);
    // A client without an id escapes client-id quotas, as in Kafka.
    assert_eq!(resolve(&only_produce, PRODUCER_BYTE_RATE, "u", ""), None);
}

#[test]
fn ip_quotas_fall_back_to_the_default_ip() {
    let mut q = ClientQuotas::new();
    apply_alterations(
        &mut q,
        &[
            (
                QuotaEntity::ip(EntityName::Default),
                [(CONNECTION_CREATION_RATE.to_owned(), Some(5.0))].into(),
            ),
            (
                QuotaEntity::ip(named("127.0.0.2")),
                [(CONNECTION_CREATION_RATE.to_owned(), Some(50.0))].into(),
            ),
        ],
    );
    assert_eq!(resolve_ip(&q, "127.0.0.2"), Some(50.0));
    assert_eq!(resolve_ip(&q, "127.0.0.3"), Some(5.0));
}

#[test]
fn alterations_set_remove_and_drop_empty_entities() {
    let entity = QuotaEntity::client(named("c"));
    let mut q = ClientQuotas::new();
    apply_alterations(
        &mut q,
        &[(
            entity.clone(),
            [
                (PRODUCER_BYTE_RATE.to_owned(), Some(10.0)),
                (REQUEST_PERCENTAGE.to_owned(), Some(20.0)),
            ]
            .into(),
        )],
    );
    assert_eq!(q[&entity].len(), 2);
    apply_alterations(
        &mut q,
        &[(
            entity.clone(),
            [(PRODUCER_BYTE_RATE.to_owned(), None)].into(),
        )],
    );
    assert_eq!(q[&entity].keys().collect::<Vec<_>>(), [REQUEST_PERCENTAGE]);
    apply_alterations(
        &mut q,
        &[(
            entity.clone(),
            [(REQUEST_PERCENTAGE.to_owned(), None)].into(),
        )],
    );
    assert!(q.is_empty(), "an entity without values is gone: {q:?}");
}

/// How the metadata image embeds the quotas.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Embedded {
    #[serde(
        default,
        skip_serializing_if = "ClientQuotas::is_empty",
        with = "super::serde_entries"
    )]
    client_quotas: ClientQuotas,
}

#[test]
fn quotas_survive_the_metadata_snapshot() {
    let image = Embedded {
        client_quotas: quotas(&[
            (
                QuotaEntity::user_client(named("u"), EntityName::Default),
                1.0,
            ),
            (QuotaEntity::client(named("c")), 2.0),
        ]),
    };
    let json = serde_json::to_string(&image).expect("encodes");
    let back: Embedded = serde_json::from_str(&json).expect("decodes");
    assert_eq!(back.client_quotas, image.client_quotas);
    // Metadata written before quotas existed still loads.
    let old: Embedded = serde_json::from_str("{}").expect("decodes");
    assert!(old.client_quotas.is_empty());
}

#[test]
fn rate_divides_by_at_least_all_but_one_window_like_kafkas_rate() {
    let mut rate = SampledRate::new(11, Duration::from_secs(1));
    rate.record(10_000.0, 0);
    // A first burst is spread over 10 windows, not over the milliseconds it took.
    assert_eq!(rate.rate(0), 1_000.0);
    assert_eq!(rate.throttle(1_000.0, 0), Duration::ZERO);
    // Twice the bound: the delay that brings it back is one more full span (Kafka's (O - T) / T × W).
    rate.record(10_000.0, 0);
    assert_eq!(rate.rate(0), 2_000.0);
    assert_eq!(rate.throttle(1_000.0, 0), Duration::from_secs(10));
    // Half a window later the span is 10.5 s: 20000 / 10.5 per second, 9.5 s to wait.
    assert_eq!(rate.throttle(1_000.0, 500), Duration::from_millis(9_500));
    // Samples older than all windows no longer count.
    assert_eq!(rate.rate(30_000), 0.0);
}

#[test]
fn token_bucket_allows_a_burst_then_refills_at_the_rate() {
    // 2 mutations/s over 11 one-second windows: a burst of 22.
    let mut bucket = TokenBucket::new(2.0, 11, Duration::from_secs(1), 0);
    assert_eq!(bucket.tokens(2.0, 0), 22.0);
    bucket.take(30.0, 2.0, 0);
    assert_eq!(bucket.throttle(2.0, 0), Duration::from_secs(4));
    assert_eq!(bucket.throttle(2.0, 4_000), Duration::ZERO);
    assert_eq!(bucket.tokens(2.0, 100_000), 22.0, "never above the burst");
}
