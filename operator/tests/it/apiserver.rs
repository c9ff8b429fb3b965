//! The operator against a real kube-apiserver + kube-controller-manager (no scheduler, no kubelet: Pods and PVCs
//! stay Pending).

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Service},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    Api, Client, ResourceExt,
};
use serde_json::json;
use tributary_operator::{
    controller,
    crd::{KafkaCluster, Topic},
};

use crate::support::{self, *};

/// The API server evaluates the CRDs' CEL rules.
async fn check_cel_rules(client: &Client, namespace: &str) {
    let topics: Api<Topic> = Api::namespaced(client.clone(), namespace);
    let topic: Topic = serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Topic",
        "metadata": { "name": "orders" },
        "spec": { "clusterRef": { "name": CLUSTER }, "partitions": 6, "replicationFactor": 3 },
    }))
    .expect("Topic from JSON");
    // Right after Established, the new resource can take a moment to be served everywhere.
    eventually("creating a Topic", || async {
        topics
            .create(&PostParams::default(), &topic)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert_partition_decrease_refused(&topics, "orders", 3).await;

    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), namespace);
    let (code, message) = refusal(
        clusters
            .create(&PostParams::default(), &kafka_cluster("empty", 0))
            .await,
        "a KafkaCluster with 0 brokers",
    );
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("a cluster needs at least one broker"),
        "the refusal should name the rule: {message}"
    );
}

#[tokio::test]
#[ignore = "needs a running kube-apiserver: run it through hack/test.sh (it starts one with hack/k8s-env.sh)"]
async fn operator_against_a_real_apiserver() {
    let client = support::client().await;

    // 1. CRDs.
    install_crds(&client).await;
    let namespace = fresh_namespace(&client).await;

    // 2. CEL rules, enforced by the API server.
    check_cel_rules(&client, &namespace).await;

    // 3. The controller, in-process.
    let operator = tokio::spawn(controller::run(
        client.clone(),
        controller::Config {
            instance: Some("it".to_owned()),
            namespace: Some(namespace.clone()),
            ..controller::Config::default()
        },
    ));
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &namespace);
    let cluster = clusters
        .create(&PostParams::default(), &kafka_cluster(CLUSTER, 3))
        .await
        .expect("create KafkaCluster");

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let stateful_sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);

    let config_map = eventually("the ConfigMap", || async {
        config_maps
            .get_opt(&format!("{CLUSTER}-config"))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not there".to_owned())
    })
    .await;
    assert!(
        owned_by(config_map.owner_references(), &cluster),
        "ConfigMap owners: {:?}",
        config_map.owner_references()
    );
    for name in [format!("{CLUSTER}-brokers"), format!("{CLUSTER}-bootstrap")] {
        let service = eventually(&format!("Service {name}"), || async {
            services
                .get_opt(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "not there".to_owned())
        })
        .await;
        assert!(
            owned_by(service.owner_references(), &cluster),
            "Service {name} owners: {:?}",
            service.owner_references()
        );
        let spec = service.spec.expect("Service spec");
        if name.ends_with("-brokers") {
            assert_eq!(spec.cluster_ip.as_deref(), Some("None"), "headless Service");
        } else {
            assert_ne!(
                spec.cluster_ip.as_deref(),
                Some("None"),
                "bootstrap Service"
            );
        }
    }
    let stateful_set = eventually("the StatefulSet", || async {
        stateful_sets
            .get_opt(CLUSTER)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not there".to_owned())
    })
    .await;
    assert!(
        owned_by(stateful_set.owner_references(), &cluster),
        "StatefulSet owners: {:?}",
        stateful_set.owner_references()
    );
    let spec = stateful_set.spec.as_ref().expect("StatefulSet spec");
    assert_eq!(spec.replicas, Some(3));
    let claim_templates = spec.volume_claim_templates.as_deref().unwrap_or_default();
    assert_eq!(
        claim_templates.len(),
        1,
        "volumeClaimTemplates: {claim_templates:?}"
    );
    let claim_template = claim_templates[0].name_any();
    let hash_before = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
        .cloned()
        .expect("config-hash annotation on the pod template");
    let pdb = eventually("the PodDisruptionBudget", || async {
        pdbs.get_opt(CLUSTER)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not there".to_owned())
    })
    .await;
    assert!(
        owned_by(pdb.owner_references(), &cluster),
        "PodDisruptionBudget owners: {:?}",
        pdb.owner_references()
    );

    // The controller-manager's StatefulSet controller makes the pods and their claims (all Pending).
    let broker_pods = eventually("3 broker Pods from the StatefulSet controller", || async {
        let list = pods
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={CLUSTER}")))
            .await
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
        (names.len() == 3)
            .then_some(list.items)
            .ok_or(format!("pods: {names:?}"))
    })
    .await;
    for pod in &broker_pods {
        let owners = pod.owner_references();
        assert!(
            owners
                .iter()
                .any(|o| o.kind == "StatefulSet" && o.name == CLUSTER),
            "Pod {} owners: {owners:?}",
            pod.name_any()
        );
    }
    let claim_names: Vec<String> = (0..3)
        .map(|i| format!("{claim_template}-{CLUSTER}-{i}"))
        .collect();
    eventually("3 PVCs from the StatefulSet controller", || async {
        let list = pvcs
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
        claim_names
            .iter()
            .all(|c| names.contains(c))
            .then_some(())
            .ok_or(format!("want {claim_names:?}, have {names:?}"))
    })
    .await;

    let status = eventually("status.observedGeneration 1 and conditions", || async {
        let stored = clusters.get(CLUSTER).await.map_err(|e| e.to_string())?;
        let status = stored.status.clone().unwrap_or_default();
        (status.observed_generation == Some(1) && !status.conditions.is_empty())
            .then_some(status)
            .ok_or(format!("status: {:?}", stored.status))
    })
    .await;
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert!(
        types.contains(&"Ready"),
        "conditions: {:?}",
        status.conditions
    );
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    assert_eq!(
        ready.map(|c| c.status.as_str()),
        Some("False"),
        "no kubelet, so no broker can be Ready: {:?}",
        status.conditions
    );

    // The controller has reconciled several times by now (every owned object's change triggers one): server-side
    // apply of an unchanged spec must not bump the StatefulSet's generation (that would roll the brokers).
    let generation = stateful_sets
        .get(CLUSTER)
        .await
        .expect("get StatefulSet")
        .metadata
        .generation;
    assert_eq!(
        generation,
        Some(1),
        "re-applying the same spec changed the StatefulSet"
    );

    // 4. A spec edit that needs a restart reaches the StatefulSet's pod template (one the brokers take live, such as
    // log retention, would not: the scale test covers those).
    clusters
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "spec": { "brokerConfig": { "replica.lag.time.max.ms": "20000" } } }),
            ),
        )
        .await
        .expect("patch brokerConfig");
    eventually("the pod template's config hash to change", || async {
        let sts = stateful_sets
            .get(CLUSTER)
            .await
            .map_err(|e| e.to_string())?;
        let hash = sts
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|mut a| a.remove(CONFIG_HASH_ANNOTATION));
        (hash.as_ref() != Some(&hash_before))
            .then_some(())
            .ok_or(format!("config hash still {hash:?}"))
    })
    .await;
    eventually("the ConfigMap to carry the new property", || async {
        let cm = config_maps
            .get(&format!("{CLUSTER}-config"))
            .await
            .map_err(|e| e.to_string())?;
        let data = cm.data.unwrap_or_default();
        data.values()
            .any(|v| v.contains("replica.lag.time.max.ms=20000"))
            .then_some(())
            .ok_or(format!("data: {data:?}"))
    })
    .await;
    eventually("status.observedGeneration 2", || async {
        let stored = clusters.get(CLUSTER).await.map_err(|e| e.to_string())?;
        let observed = stored.status.as_ref().and_then(|s| s.observed_generation);
        (observed == Some(2))
            .then_some(())
            .ok_or(format!("observedGeneration {observed:?}"))
    })
    .await;

    let generation = stateful_sets
        .get(CLUSTER)
        .await
        .expect("get StatefulSet")
        .metadata
        .generation;
    assert_eq!(
        generation,
        Some(2),
        "one spec edit, one new StatefulSet generation"
    );

    // 5. Deleting the cluster: the garbage collector removes what it owned; the claims stay (Retain).
    clusters
        .delete(CLUSTER, &DeleteParams::default())
        .await
        .expect("delete KafkaCluster");
    eventually_within(
        "the garbage collector to remove the owned objects",
        GC_WAIT,
        || async {
            let mut left = Vec::new();
            if stateful_sets
                .get_opt(CLUSTER)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                left.push("StatefulSet".to_owned());
            }
            for name in [format!("{CLUSTER}-brokers"), format!("{CLUSTER}-bootstrap")] {
                if services
                    .get_opt(&name)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    left.push(format!("Service {name}"));
                }
            }
            if config_maps
                .get_opt(&format!("{CLUSTER}-config"))
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                left.push("ConfigMap".to_owned());
            }
            if pdbs
                .get_opt(CLUSTER)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                left.push("PodDisruptionBudget".to_owned());
            }
            left.is_empty()
                .then_some(())
                .ok_or(format!("still there: {left:?}"))
        },
    )
    .await;
    let remaining: Vec<String> = pvcs
        .list(&ListParams::default())
        .await
        .expect("list PVCs")
        .items
        .iter()
        .filter(|pvc| pvc.metadata.deletion_timestamp.is_none())
        .map(ResourceExt::name_any)
        .collect();
    for claim in &claim_names {
        assert!(
            remaining.contains(claim),
            "PVC {claim} must be retained after the cluster is deleted; PVCs: {remaining:?}"
        );
    }

    assert!(
        !operator.is_finished(),
        "the controller stopped early: {:?}",
        operator.await
    );
    operator.abort();
    // Best effort: a fresh namespace per run, so a leftover one does not break the next run.
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&namespace, &DeleteParams::default())
        .await;
}
