//! Test fixtures: builders on the CRD types, so a test states only what it cares about
//! (`KafkaCluster::test().brokers(5)`).

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta};

use crate::crd::{
    ClusterRef, DeletionPolicy, KafkaCluster, KafkaClusterSpec, Listeners, Storage, Topic,
    TopicSpec,
};

impl KafkaCluster {
    /// A valid, stored three-broker cluster `demo` in namespace `kafka`.
    pub(crate) fn test() -> Self {
        let mut cluster = KafkaCluster::new(
            "demo",
            KafkaClusterSpec {
                brokers: 3,
                image: "tributary:test".into(),
                image_pull_policy: None,
                storage: Storage {
                    size: Quantity("10Gi".into()),
                    storage_class_name: None,
                    delete_claims_on_scale_down: false,
                    delete_claims_on_delete: false,
                    scale_down_free_space_percent: 10,
                },
                resources: None,
                broker_config: Default::default(),
                listeners: Listeners::default(),
                pod_template: None,
            },
        );
        cluster.metadata = ObjectMeta {
            name: Some("demo".into()),
            namespace: Some("kafka".into()),
            uid: Some("6f1e7a53-1b7c-4a52-9f2e-3f5d2b1c0a99".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        };
        cluster
    }

    pub(crate) fn name(mut self, name: &str) -> Self {
        self.metadata.name = Some(name.into());
        self
    }

    pub(crate) fn brokers(mut self, brokers: i32) -> Self {
        self.spec.brokers = brokers;
        self
    }

    pub(crate) fn image(mut self, image: &str) -> Self {
        self.spec.image = image.into();
        self
    }

    pub(crate) fn storage_size(mut self, size: &str) -> Self {
        self.spec.storage.size = Quantity(size.into());
        self
    }

    pub(crate) fn broker_config(mut self, key: &str, value: &str) -> Self {
        self.spec.broker_config.insert(key.into(), value.into());
        self
    }

    pub(crate) fn ports(mut self, kafka: i32, http: i32) -> Self {
        self.spec.listeners = Listeners { kafka, http };
        self
    }
}

impl Topic {
    /// A valid Topic `orders` (3 partitions, replication factor 3) on cluster `demo` in namespace `kafka`.
    pub(crate) fn test() -> Self {
        let mut topic = Topic::new(
            "orders",
            TopicSpec {
                cluster_ref: ClusterRef {
                    name: "demo".into(),
                },
                topic_name: None,
                partitions: 3,
                replication_factor: 3,
                config: Default::default(),
                deletion_policy: DeletionPolicy::default(),
            },
        );
        topic.metadata.namespace = Some("kafka".into());
        topic
    }

    pub(crate) fn partitions(mut self, partitions: i32) -> Self {
        self.spec.partitions = partitions;
        self
    }

    pub(crate) fn replication_factor(mut self, replication_factor: i32) -> Self {
        self.spec.replication_factor = replication_factor;
        self
    }

    pub(crate) fn topic_name(mut self, topic_name: &str) -> Self {
        self.spec.topic_name = Some(topic_name.into());
        self
    }

    pub(crate) fn cluster(mut self, cluster: &str) -> Self {
        self.spec.cluster_ref.name = cluster.into();
        self
    }

    pub(crate) fn named(mut self, name: &str) -> Self {
        self.metadata.name = Some(name.into());
        self
    }

    pub(crate) fn config(mut self, key: &str, value: &str) -> Self {
        self.spec.config.insert(key.into(), value.into());
        self
    }

    /// Sets `metadata.creationTimestamp` to `seconds` after the Unix epoch.
    pub(crate) fn created_at(mut self, seconds: i64) -> Self {
        let at = k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid timestamp");
        self.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at));
        self
    }
}

impl KafkaCluster {
    pub(crate) fn storage_class(mut self, class: &str) -> Self {
        self.spec.storage.storage_class_name = Some(class.into());
        self
    }

    pub(crate) fn delete_claims(mut self, on_scale_down: bool, on_delete: bool) -> Self {
        self.spec.storage.delete_claims_on_scale_down = on_scale_down;
        self.spec.storage.delete_claims_on_delete = on_delete;
        self
    }
}
