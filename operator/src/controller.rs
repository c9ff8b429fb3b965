//! Wiring of the controllers: watches, shared context (client, Event recorder, per-object retry backoff) and the
//! error policies. Reconcile logic lives in `cluster` and `topic`, never here.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, ObjectReference, Pod, Service},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    runtime::{
        controller::{Action, Controller},
        events::{Event, EventType, Recorder, Reporter},
        reflector::ObjectRef,
        watcher,
    },
    Api, Client, Resource, ResourceExt,
};

use crate::{
    cluster::{build::FIELD_MANAGER, reconcile},
    crd::{KafkaCluster, Topic},
    kafka_admin::AdminClients,
    metrics::Metrics,
    topic::{self, TopicContext},
};

/// Shortest retry delay after a failed reconcile.
const BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Longest retry delay after repeated failures.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// State shared by every reconcile.
#[derive(Clone)]
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    recorder: Recorder,
    failures: Arc<Mutex<HashMap<String, u32>>>,
    /// Admin clients by bootstrap address, for the reconciles that talk to brokers (a scale-down).
    pub admin: Arc<AdminClients>,
    /// Reach every cluster's brokers at this address instead of its bootstrap Service.
    pub bootstrap_override: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// A context whose Events are reported by `instance` (usually the operator's pod name).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            failures: Arc::default(),
            admin: Arc::default(),
            bootstrap_override: None,
        }
    }

    /// This context, reaching every cluster's brokers at `address` (tests, or an operator outside the
    /// Kubernetes network).
    pub fn with_bootstrap_override(mut self, address: Option<String>) -> Self {
        self.bootstrap_override = address;
        self
    }

    /// Publishes an Event about `object`; a failure is logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, object: &K, event: &Event) {
        self.publish_to(&object.object_ref(&()), event).await;
    }

    async fn publish_to(&self, reference: &ObjectReference, event: &Event) {
        if let Err(error) = self.recorder.publish(event, reference).await {
            tracing::warn!(reason = %event.reason, error = %error, "cannot publish Event");
        }
    }

    /// Logs a failed reconcile of `object`, tells a person with a Warning Event (reason: the error's category), and
    /// schedules the retry with backoff. The Event is published from a task because error policies are
    /// synchronous; repeats of one failure are folded into a series by the recorder, so backoff retries do not
    /// flood the API server.
    fn retry_after_failure<K>(
        &self,
        object: &K,
        category: &'static str,
        error: &dyn std::error::Error,
    ) -> Action
    where
        K: Resource<DynamicType = ()>,
    {
        let delay = self.backoff(&ObjectRef::from_obj(object));
        let message = error_chain(error);
        tracing::warn!(
            kind = %K::kind(&()),
            name = %object.name_any(),
            namespace = object.namespace().as_deref().unwrap_or_default(),
            category,
            error = %message,
            retry_in_s = delay.as_secs(),
            "reconcile failed"
        );
        let ctx = self.clone();
        let reference = object.object_ref(&());
        tokio::spawn(async move {
            let event = Event {
                type_: EventType::Warning,
                reason: category.to_owned(),
                note: Some(format!("{message}; retrying with backoff")),
                action: "Reconcile".to_owned(),
                secondary: None,
            };
            ctx.publish_to(&reference, &event).await;
        });
        Action::requeue(delay)
    }

    /// The delay before retrying `object` after another failure: doubles from 5 s up to 5 min.
    fn backoff<K: Resource<DynamicType = ()>>(&self, object: &ObjectRef<K>) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(object.to_string()).or_default();
        *count = count.saturating_add(1);
        BACKOFF_MIN
            .saturating_mul(1 << (*count - 1).min(6))
            .min(BACKOFF_MAX)
    }

    fn succeeded<K: Resource<DynamicType = ()>>(&self, object: &ObjectRef<K>) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&object.to_string());
    }
}

/// What to do after a KafkaCluster reconcile failed: a transient failure is retried with backoff.
pub fn error_policy(
    cluster: Arc<KafkaCluster>,
    error: &reconcile::Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.retry_after_failure(cluster.as_ref(), error.category(), error)
}

/// What to do after a Topic reconcile failed: retry with backoff (the status already says why).
pub fn topic_error_policy(
    topic: Arc<Topic>,
    error: &topic::reconcile::Error,
    ctx: Arc<TopicContext>,
) -> Action {
    ctx.base
        .retry_after_failure(topic.as_ref(), error.category(), error)
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some errors (kube's among them) already print their source; say each cause once.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// How the controllers run.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Event reporter instance (usually the operator's pod name).
    pub instance: Option<String>,
    /// Watch only this namespace; every namespace when `None`.
    pub namespace: Option<String>,
    /// Reach every cluster's brokers at this `host:port` instead of its bootstrap Service.
    pub bootstrap_override: Option<String>,
    /// Operator metrics.
    pub metrics: Metrics,
}

impl Config {
    /// The API of `K` in the watched namespace(s).
    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match &self.namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
}

/// Runs the KafkaCluster and Topic controllers until SIGTERM or Ctrl-C.
pub async fn run(client: Client, config: Config) {
    let ctx = Arc::new(
        Context::new(client.clone(), config.instance.clone())
            .with_bootstrap_override(config.bootstrap_override.clone()),
    );
    tokio::join!(
        run_clusters(&client, &config, ctx.clone()),
        run_topics(&client, &config, ctx)
    );
}

async fn run_clusters(client: &Client, config: &Config, ctx: Arc<Context>) {
    // Only the objects this operator manages are watched, so it does not cache every ConfigMap in the cluster.
    let owned =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={FIELD_MANAGER}"));
    let metrics = config.metrics.clone();
    let controller = Controller::new(
        config.api::<KafkaCluster>(client),
        watcher::Config::default(),
    );
    metrics.watch_store("KafkaCluster", controller.store());
    controller
        .owns(config.api::<StatefulSet>(client), owned.clone())
        .owns(config.api::<Service>(client), owned.clone())
        .owns(config.api::<ConfigMap>(client), owned.clone())
        .owns(config.api::<PodDisruptionBudget>(client), owned.clone())
        // Broker pods belong to the StatefulSet, not to the KafkaCluster: their label names the cluster. A pod's
        // status change (Ready, a termination message that reports a replaced voter) reconciles at once
        // instead of at the next requeue.
        .watches(config.api::<Pod>(client), owned, |pod| {
            let namespace = pod.namespace()?;
            pod.labels()
                .get("app.kubernetes.io/instance")
                .map(|name| ObjectRef::<KafkaCluster>::new(name).within(&namespace))
        })
        .shutdown_on_signal()
        .run(
            move |cluster, ctx| {
                let metrics = metrics.clone();
                async move {
                    metrics
                        .instrument(
                            "KafkaCluster",
                            reconcile::Error::category,
                            reconcile::reconcile(cluster, ctx),
                        )
                        .await
                }
            },
            error_policy,
            ctx.clone(),
        )
        .for_each(|result| {
            let ctx = ctx.clone();
            async move {
                match result {
                    Ok((object, _)) => ctx.succeeded(&object),
                    Err(error) => tracing::debug!(error = %error, "controller stream error"),
                }
            }
        })
        .await;
}

async fn run_topics(client: &Client, config: &Config, ctx: Arc<Context>) {
    let controller = Controller::new(config.api::<Topic>(client), watcher::Config::default());
    let topics = controller.store();
    let metrics = config.metrics.clone();
    metrics.watch_store("Topic", topics.clone());
    // A KafkaCluster that appears (or changes) wakes the Topics that wait for it.
    let waiting = topics.clone();
    let controller = controller.watches(
        config.api::<KafkaCluster>(client),
        watcher::Config::default(),
        move |cluster| {
            let namespace = cluster.namespace();
            let name = cluster.name_any();
            waiting
                .state()
                .into_iter()
                .filter(|t| t.namespace() == namespace && t.spec.cluster_ref.name == name)
                .map(|t| ObjectRef::from(t.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    let topic_ctx = Arc::new(TopicContext {
        base: ctx.clone(),
        topics,
        admin: AdminClients::default(),
        bootstrap_override: config.bootstrap_override.clone(),
    });
    controller
        .shutdown_on_signal()
        .run(
            move |topic, ctx| {
                let metrics = metrics.clone();
                async move {
                    metrics
                        .instrument(
                            "Topic",
                            topic::reconcile::Error::category,
                            topic::reconcile::reconcile(topic, ctx),
                        )
                        .await
                }
            },
            topic_error_policy,
            topic_ctx,
        )
        .for_each(|result| {
            let ctx = ctx.clone();
            async move {
                match result {
                    Ok((object, _)) => ctx.succeeded(&object),
                    Err(error) => tracing::debug!(error = %error, "Topic controller stream error"),
                }
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_name_every_cause() {
        let error = reconcile::Error::ApplyStatefulSet {
            name: "demo".into(),
            source: kube::Error::Service(Box::new(std::io::Error::other("connection refused"))),
        };
        assert_eq!(
            error_chain(&error),
            "cannot apply StatefulSet demo: ServiceError: connection refused"
        );
    }
}
