//! The I/O half of the Topic reconciler: resolve the cluster, pick the owning Topic, describe the topic on the
//! brokers, apply the plan, write the status. Deletion goes through a finalizer and follows
//! `spec.deletionPolicy`; it never waits on a cluster that is gone, so namespace deletion cannot hang on it.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    api::{Patch, PatchParams},
    runtime::{
        controller::Action,
        events::{Event, EventType},
        finalizer::{finalizer, Event as FinalizerEvent},
    },
    Api, Resource, ResourceExt,
};
use serde::Serialize;

use super::{
    plan::{kafka_topic_name, owner, plan, replica_targets},
    status::{self, Outcome},
    TopicContext,
};
use crate::{
    cluster::{build::bootstrap_address, validate},
    crd::{DeletionPolicy, KafkaCluster, Topic, TopicStatus},
    kafka_admin::{self, AdminClient, NewTopic},
};

/// Finalizer that lets the operator delete the Kafka topic before the Topic disappears.
pub const FINALIZER: &str = "tributary.dev/topic";
/// Field manager of the Topic status.
const FIELD_MANAGER: &str = "tributary-operator";
/// Resync of a Ready topic, which also repairs changes made behind the operator's back.
const REQUEUE_READY: Duration = Duration::from_secs(600);
/// Retry while the cluster is missing or a conflict lasts (neither is announced by a watch on this Topic).
const REQUEUE_WAITING: Duration = Duration::from_secs(30);

/// A reconcile step that failed; the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Topic is namespaced, so the API server always sets a namespace.
    #[error("Topic {name} has no namespace")]
    MissingNamespace { name: String },
    /// Reading the referenced KafkaCluster failed.
    #[error("cannot read KafkaCluster {name}")]
    GetCluster { name: String, source: kube::Error },
    /// An admin call to the brokers failed.
    #[error("cannot {step} topic {topic}")]
    Kafka {
        step: &'static str,
        topic: String,
        source: kafka_admin::Error,
    },
    /// Writing the Topic status failed.
    #[error("cannot write the status of Topic {name}")]
    PatchStatus { name: String, source: kube::Error },
    /// Adding or removing the finalizer failed.
    #[error("cannot update the finalizer of Topic {name}")]
    Finalizer { name: String, source: kube::Error },
    /// The finalizer helper refused the object (it has no name, or the finalizer name is invalid).
    #[error("cannot run the finalizer of Topic {name}: {reason}")]
    FinalizerState { name: String, reason: String },
}

impl Error {
    /// Short category, used as Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::MissingNamespace { .. } => "MissingNamespace",
            Error::GetCluster { .. } => "GetClusterFailed",
            Error::Kafka { .. } => "KafkaUnavailable",
            Error::PatchStatus { .. } => "PatchStatusFailed",
            Error::Finalizer { .. } | Error::FinalizerState { .. } => "FinalizerFailed",
        }
    }
}

/// The body of a server-side apply of the status subresource: only the fields this manager owns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusApply<'a> {
    api_version: String,
    kind: String,
    status: &'a TopicStatus,
}

/// Reconciles one Topic.
pub async fn reconcile(topic: Arc<Topic>, ctx: Arc<TopicContext>) -> Result<Action, Error> {
    let name = topic.name_any();
    let namespace = topic
        .namespace()
        .ok_or_else(|| Error::MissingNamespace { name: name.clone() })?;
    let topics: Api<Topic> = Api::namespaced(ctx.base.client.clone(), &namespace);
    let result = finalizer(&topics, FINALIZER, topic, |event| async {
        match event {
            FinalizerEvent::Apply(topic) => apply(&topic, &namespace, &ctx).await,
            FinalizerEvent::Cleanup(topic) => cleanup(&topic, &namespace, &ctx).await,
        }
    })
    .await;
    result.map_err(|error| match error {
        kube::runtime::finalizer::Error::ApplyFailed(error)
        | kube::runtime::finalizer::Error::CleanupFailed(error) => error,
        kube::runtime::finalizer::Error::AddFinalizer(source)
        | kube::runtime::finalizer::Error::RemoveFinalizer(source) => Error::Finalizer {
            name: name.clone(),
            source,
        },
        other => Error::FinalizerState {
            name: name.clone(),
            reason: other.to_string(),
        },
    })
}

/// Where the Topic's cluster is, or why it cannot be reached.
enum ClusterAddress {
    /// The bootstrap address, and how many brokers the cluster's spec asks for.
    Found {
        address: String,
        brokers: i32,
    },
    NotFound,
    Invalid,
}

async fn cluster_address(
    topic: &Topic,
    namespace: &str,
    ctx: &TopicContext,
) -> Result<ClusterAddress, Error> {
    let cluster_name = &topic.spec.cluster_ref.name;
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.base.client.clone(), namespace);
    let cluster = clusters
        .get_opt(cluster_name)
        .await
        .map_err(|source| Error::GetCluster {
            name: cluster_name.clone(),
            source,
        })?;
    let Some(cluster) = cluster.filter(|c| c.meta().deletion_timestamp.is_none()) else {
        return Ok(ClusterAddress::NotFound);
    };
    let brokers = cluster.spec.brokers;
    if let Some(address) = &ctx.bootstrap_override {
        return Ok(ClusterAddress::Found {
            address: address.clone(),
            brokers,
        });
    }
    Ok(match validate(&cluster) {
        Ok(valid) => ClusterAddress::Found {
            address: bootstrap_address(&valid),
            brokers,
        },
        Err(_) => ClusterAddress::Invalid,
    })
}

async fn apply(topic: &Topic, namespace: &str, ctx: &TopicContext) -> Result<Action, Error> {
    let kafka_name = kafka_topic_name(topic);
    let generation = topic.meta().generation;

    let namespace_topics = topics_in(ctx, namespace);
    let owning = owner(topic, namespace_topics.iter().map(AsRef::as_ref));
    if owning.uid() != topic.uid() {
        let owner_name = owning.name_any();
        if !has_condition(topic, status::CONFLICT) {
            warn(
                ctx,
                topic,
                status::REASON_CONFLICT,
                "Reconcile",
                format!("Kafka topic {kafka_name} is already managed by Topic {owner_name}; delete one of them"),
            )
            .await;
        }
        let outcome = Outcome::Conflict {
            kafka_name: &kafka_name,
            owner: &owner_name,
        };
        write_status(ctx, topic, namespace, generation, &outcome).await?;
        return Ok(Action::requeue(REQUEUE_WAITING));
    }

    let (address, brokers) = match cluster_address(topic, namespace, ctx).await? {
        ClusterAddress::Found { address, brokers } => (address, brokers),
        ClusterAddress::NotFound => {
            let cluster = &topic.spec.cluster_ref.name;
            let outcome = Outcome::ClusterNotFound { cluster };
            write_status(ctx, topic, namespace, generation, &outcome).await?;
            return Ok(Action::requeue(REQUEUE_WAITING));
        }
        ClusterAddress::Invalid => {
            let cluster = &topic.spec.cluster_ref.name;
            let outcome = Outcome::ClusterInvalid { cluster };
            write_status(ctx, topic, namespace, generation, &outcome).await?;
            return Ok(Action::requeue(REQUEUE_WAITING));
        }
    };
    let admin = ctx.admin.get(&address);

    match converge(topic, &kafka_name, &admin, ctx).await {
        Ok(converged) => {
            let outcome = Outcome::Reconciled {
                kafka_name: &kafka_name,
                partitions: converged.partitions,
                topic_id: converged.topic_id,
                drift: &converged.drift,
            };
            write_status(ctx, topic, namespace, generation, &outcome).await?;
            if let Some(first) = converged.drift.first() {
                if status::is_ready(topic.status.as_ref()) || topic.status.is_none() {
                    let reason = status::drift_reason(first);
                    warn(ctx, topic, reason, "Reconcile", first.to_string()).await;
                }
            }
            Ok(Action::requeue(REQUEUE_READY))
        }
        Err(Error::Kafka { step, source, .. })
            if source.needs_spec_change()
                && !awaits_brokers(&source, topic.spec.replication_factor, brokers) =>
        {
            let message = format!("cannot {step} topic {kafka_name}: {source}");
            tracing::warn!(topic = %kafka_name, namespace, error = %message, "brokers refused the Topic spec");
            warn(
                ctx,
                topic,
                status::REASON_INVALID_SPEC,
                "Reconcile",
                message.clone(),
            )
            .await;
            let outcome = Outcome::InvalidSpec { message: &message };
            write_status(ctx, topic, namespace, generation, &outcome).await?;
            // Retrying the same spec cannot help; the next edit triggers a reconcile.
            Ok(Action::await_change())
        }
        Err(error @ Error::Kafka { .. }) => {
            let message = crate::controller::error_chain(&error);
            let outcome = Outcome::KafkaUnavailable { message: &message };
            write_status(ctx, topic, namespace, generation, &outcome).await?;
            Err(error)
        }
        Err(other) => Err(other),
    }
}

/// Whether the brokers refused a replication factor only because fewer brokers are registered and unfenced than
/// the cluster will have: brokers of a new cluster register one by one and a fenced broker does not count, so a
/// Topic applied together with its cluster, or during a broker's restart, is retried rather than parked as an
/// invalid spec until someone edits it.
fn awaits_brokers(
    error: &crate::kafka_admin::Error,
    replication_factor: i32,
    brokers: i32,
) -> bool {
    error.kafka_error() == Some(kafka_protocol::error::ResponseError::InvalidReplicationFactor)
        && (1..=brokers).contains(&replication_factor)
}

/// What the brokers hold after `converge`.
struct Converged {
    partitions: i32,
    topic_id: uuid::Uuid,
    drift: Vec<super::plan::Drift>,
}

/// Creates the topic or brings the existing one to the spec, announcing each change with an Event.
async fn converge(
    topic: &Topic,
    kafka_name: &str,
    admin: &AdminClient,
    ctx: &TopicContext,
) -> Result<Converged, Error> {
    let kafka = |step: &'static str| {
        move |source| Error::Kafka {
            step,
            topic: kafka_name.to_owned(),
            source,
        }
    };
    let described = admin
        .describe_topic(kafka_name)
        .await
        .map_err(kafka("describe"))?;
    let Some(described) = described else {
        let replication_factor = i16::try_from(topic.spec.replication_factor).unwrap_or(i16::MAX);
        let new_topic = NewTopic {
            name: kafka_name,
            partitions: topic.spec.partitions,
            replication_factor,
            config: &topic.spec.config,
        };
        let mut topic_id = admin
            .create_topic(&new_topic)
            .await
            .map_err(kafka("create"))?;
        if topic_id.is_nil() {
            // CreateTopics before v7 has no id; Metadata has it.
            topic_id = admin
                .describe_topic(kafka_name)
                .await
                .map_err(kafka("describe"))?
                .map(|d| d.id)
                .unwrap_or_default();
        }
        let recreated = topic.status.as_ref().is_some_and(|s| s.topic_id.is_some());
        let note = format!(
            "created topic {kafka_name} with {} partitions, replication factor {}",
            topic.spec.partitions, topic.spec.replication_factor
        );
        if recreated {
            warn(
                ctx,
                topic,
                "Recreated",
                "Create",
                format!("the topic had been deleted outside Kubernetes; {note}"),
            )
            .await;
        } else {
            normal(ctx, topic, "Created", "Create", note).await;
        }
        tracing::info!(topic = %kafka_name, partitions = topic.spec.partitions, "created topic");
        return Ok(Converged {
            partitions: topic.spec.partitions,
            topic_id,
            drift: Vec::new(),
        });
    };

    if topic
        .status
        .as_ref()
        .and_then(|s| s.topic_id.as_ref())
        .is_none()
    {
        normal(
            ctx,
            topic,
            "Adopted",
            "Adopt",
            format!(
                "topic {kafka_name} already existed with {} partitions; it is now managed by this Topic",
                described.partitions
            ),
        )
        .await;
    }
    let overrides = admin
        .topic_config_overrides(kafka_name)
        .await
        .map_err(kafka("describe the config of"))?;
    let planned = plan(topic, &described, &overrides);
    let mut partitions = described.partitions;
    if let Some(count) = planned.grow_partitions_to {
        admin
            .create_partitions(kafka_name, count)
            .await
            .map_err(kafka("add partitions to"))?;
        normal(
            ctx,
            topic,
            "PartitionsIncreased",
            "Scale",
            format!("topic {kafka_name} grew from {partitions} to {count} partitions"),
        )
        .await;
        tracing::info!(topic = %kafka_name, from = partitions, to = count, "grew topic");
        partitions = count;
    }
    if !planned.config_changes.is_empty() {
        admin
            .alter_topic_config(kafka_name, &planned.config_changes)
            .await
            .map_err(kafka("change the config of"))?;
        let changed = planned
            .config_changes
            .iter()
            .map(|change| match change {
                kafka_admin::ConfigChange::Set { name, value } => format!("{name}={value}"),
                kafka_admin::ConfigChange::Delete { name } => format!("{name} (reset to default)"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        normal(
            ctx,
            topic,
            "ConfigChanged",
            "Configure",
            format!("topic {kafka_name}: {changed}"),
        )
        .await;
        tracing::info!(topic = %kafka_name, changes = %changed, "changed topic config");
    }
    let mut drift = planned.drift;
    if let Some(factor) = planned.change_replication_factor_to {
        let cluster = admin
            .cluster_metadata()
            .await
            .map_err(kafka("read the cluster for"))?;
        match replica_targets(&cluster, kafka_name, factor) {
            Ok(targets) if !targets.is_empty() => {
                admin
                    .alter_partition_reassignments(kafka_name, &targets)
                    .await
                    .map_err(kafka("reassign the partitions of"))?;
                normal(
                    ctx,
                    topic,
                    "ReplicationFactorChanged",
                    "Reassign",
                    format!(
                        "topic {kafka_name}: replication factor {} -> {factor}; {} partitions reassigned (new \
                         replicas catch up as followers before they count)",
                        described.replication_factor,
                        targets.len()
                    ),
                )
                .await;
                tracing::info!(topic = %kafka_name, from = described.replication_factor, to = factor,
                    partitions = targets.len(), "reassigning for a new replication factor");
            }
            Ok(_) => {}
            Err(refused) => drift.push(refused),
        }
    }
    Ok(Converged {
        partitions,
        topic_id: described.id,
        drift,
    })
}

async fn cleanup(topic: &Topic, namespace: &str, ctx: &TopicContext) -> Result<Action, Error> {
    let kafka_name = kafka_topic_name(topic);
    if topic.spec.deletion_policy == DeletionPolicy::Orphan {
        tracing::info!(topic = %kafka_name, namespace, "Topic deleted; Kafka topic kept (deletionPolicy Orphan)");
        return Ok(Action::await_change());
    }
    // A duplicate never owned the Kafka topic, so deleting it must not delete the owner's data.
    let namespace_topics = topics_in(ctx, namespace);
    if owner(topic, namespace_topics.iter().map(AsRef::as_ref)).uid() != topic.uid() {
        return Ok(Action::await_change());
    }
    let address = match cluster_address(topic, namespace, ctx).await? {
        ClusterAddress::Found { address, .. } => address,
        // With the cluster gone (or being deleted with its namespace) there is nothing to delete from, and
        // holding the finalizer would block namespace deletion.
        ClusterAddress::NotFound | ClusterAddress::Invalid => {
            tracing::info!(topic = %kafka_name, namespace, "Topic deleted; its KafkaCluster is gone or invalid, nothing to delete");
            return Ok(Action::await_change());
        }
    };
    let admin = ctx.admin.get(&address);
    let deleted = admin
        .delete_topic(&kafka_name)
        .await
        .map_err(|source| Error::Kafka {
            step: "delete",
            topic: kafka_name.clone(),
            source,
        })?;
    if deleted {
        tracing::info!(topic = %kafka_name, namespace, "deleted topic");
    }
    Ok(Action::await_change())
}

/// Every Topic of `namespace` the controller knows, to find the owner of a Kafka topic name.
fn topics_in(ctx: &TopicContext, namespace: &str) -> Vec<Arc<Topic>> {
    ctx.topics
        .state()
        .into_iter()
        .filter(|t| t.namespace().as_deref() == Some(namespace))
        .collect()
}

fn has_condition(topic: &Topic, type_: &str) -> bool {
    topic
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == type_))
}

async fn write_status(
    ctx: &TopicContext,
    topic: &Topic,
    namespace: &str,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    let next = status::status(topic.status.as_ref(), generation, outcome, &now);
    if topic.status.as_ref() == Some(&next) {
        return Ok(());
    }
    let name = topic.name_any();
    let body = StatusApply {
        api_version: Topic::api_version(&()).into_owned(),
        kind: Topic::kind(&()).into_owned(),
        status: &next,
    };
    let api: Api<Topic> = Api::namespaced(ctx.base.client.clone(), namespace);
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| Error::PatchStatus { name, source })?;
    Ok(())
}

async fn normal(ctx: &TopicContext, topic: &Topic, reason: &str, action: &str, note: String) {
    publish(ctx, topic, EventType::Normal, reason, action, note).await;
}

async fn warn(ctx: &TopicContext, topic: &Topic, reason: &str, action: &str, note: String) {
    publish(ctx, topic, EventType::Warning, reason, action, note).await;
}

async fn publish(
    ctx: &TopicContext,
    topic: &Topic,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    ctx.base.publish(topic, &event).await;
}

#[cfg(test)]
mod tests {
    use super::awaits_brokers;
    use crate::kafka_admin::Error;

    fn refused(code: i16) -> Error {
        Error::Broker {
            api: "CreateTopics",
            code,
            message: None,
        }
    }

    #[test]
    fn a_replication_factor_the_cluster_will_reach_waits_for_its_brokers() {
        // 38: INVALID_REPLICATION_FACTOR; 40: INVALID_CONFIG.
        assert!(awaits_brokers(&refused(38), 3, 3), "3 of 3 brokers: wait");
        assert!(
            !awaits_brokers(&refused(38), 4, 3),
            "more replicas than brokers: the spec is wrong"
        );
        assert!(
            !awaits_brokers(&refused(40), 3, 3),
            "another refusal stays a spec error"
        );
    }
}
