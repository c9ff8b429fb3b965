//! Test fixtures: builders on the CRD types, so a test states only what it cares about
//! (`KafkaCluster::test().brokers(5)`).

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta};

use crate::crd::{KafkaCluster, KafkaClusterSpec, Listeners, Storage};

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
