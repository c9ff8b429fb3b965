//! Lease leader election against a real kube-apiserver: one holder at a time, also when candidates race; release
//! hands over at once; a dead holder's Lease is taken over only after it expired; a holder whose Lease is taken
//! learns it. Needs `KUBECONFIG` pointing at a running control plane (`hack/test.sh` starts one and runs this with
//! `cargo test -p tributary-operator --test leader_election -- --ignored`).

use std::time::Duration;

use k8s_openapi::api::{coordination::v1::Lease, core::v1::Namespace};
use kube::{
    api::{DeleteParams, Patch, PatchParams, PostParams},
    Api, Client,
};
use serde_json::json;
use tokio::time::Instant;
use tributary_operator::leader::{LeaderElector, Lost, Timing};

const NAMESPACE: &str = "leader-election-it";

fn timing() -> Timing {
    Timing {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
    }
}

async fn setup(lease: &str) -> Client {
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG must point at a running control plane");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).expect("Namespace");
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("create namespace {NAMESPACE}: {error}"),
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    match leases.delete(lease, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => panic!("delete Lease {lease}: {error}"),
    }
    client
}

fn candidate(client: &Client, lease: &str, identity: &str) -> LeaderElector {
    LeaderElector::new(client.clone(), NAMESPACE, lease, identity, timing())
}

async fn holder(client: &Client, lease: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    leases
        .get(lease)
        .await
        .expect("get Lease")
        .spec
        .and_then(|spec| spec.holder_identity)
}

#[tokio::test]
#[ignore = "needs a kube-apiserver (hack/test.sh)"]
async fn one_holder_and_release_hands_over_at_once() {
    let lease = "handover";
    let client = setup(lease).await;
    let mut a = candidate(&client, lease, "a");
    let mut b = candidate(&client, lease, "b");

    assert!(
        a.try_acquire_or_renew().await.expect("a acquires"),
        "a should get the free Lease"
    );
    assert!(
        !b.try_acquire_or_renew().await.expect("b tries"),
        "b got the Lease a holds"
    );
    assert!(
        a.try_acquire_or_renew().await.expect("a renews"),
        "a could not renew its own Lease"
    );
    assert_eq!(holder(&client, lease).await.as_deref(), Some("a"));

    a.release().await.expect("a releases");
    assert_eq!(holder(&client, lease).await, None, "release left a holder");
    let started = Instant::now();
    assert!(
        b.try_acquire_or_renew().await.expect("b acquires"),
        "b did not get the released Lease"
    );
    assert!(
        started.elapsed() < timing().lease_duration,
        "b waited for expiry after a release"
    );
    // A release by a non-holder is a no-op.
    a.release().await.expect("a releases again");
    assert_eq!(holder(&client, lease).await.as_deref(), Some("b"));
}

#[tokio::test]
#[ignore = "needs a kube-apiserver (hack/test.sh)"]
async fn racing_candidates_never_both_win() {
    let lease = "race";
    let client = setup(lease).await;
    for round in 0..5 {
        let mut candidates: Vec<_> = (0..4)
            .map(|i| candidate(&client, lease, &format!("r{round}-c{i}")))
            .collect();
        let results =
            futures_util::future::join_all(candidates.iter_mut().map(|c| c.try_acquire_or_renew()))
                .await;
        let winners: Vec<_> = results
            .into_iter()
            .zip(candidates.iter())
            .filter_map(|(result, c)| result.expect("attempt").then(|| c.identity().to_owned()))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(
            holder(&client, lease).await.as_ref(),
            winners.first(),
            "round {round}"
        );
        for c in &mut candidates {
            c.release().await.expect("release");
        }
    }
}

#[tokio::test]
#[ignore = "needs a kube-apiserver (hack/test.sh)"]
async fn a_dead_holder_is_replaced_only_after_its_lease_expired() {
    let lease = "expiry";
    let client = setup(lease).await;
    let mut dead = candidate(&client, lease, "dead");
    assert!(dead.try_acquire_or_renew().await.expect("acquire"));
    // `dead` stops renewing without releasing, as a killed process would.
    let mut next = candidate(&client, lease, "next");
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(15), next.acquire())
        .await
        .expect("next did not take over the expired Lease within 15 s");
    let waited = started.elapsed();
    assert!(
        waited >= timing().lease_duration,
        "next took the Lease after {waited:?}, before it expired ({:?})",
        timing().lease_duration
    );
    assert_eq!(holder(&client, lease).await.as_deref(), Some("next"));
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let transitions = leases
        .get(lease)
        .await
        .expect("get")
        .spec
        .and_then(|s| s.lease_transitions);
    assert_eq!(transitions, Some(1), "a takeover counts one transition");
}

#[tokio::test]
#[ignore = "needs a kube-apiserver (hack/test.sh)"]
async fn a_holder_learns_that_its_lease_was_taken() {
    let lease = "taken";
    let client = setup(lease).await;
    let mut a = candidate(&client, lease, "a");
    assert!(a.try_acquire_or_renew().await.expect("acquire"));
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    // Someone else (an administrator, or a candidate that judged the Lease expired) writes another holder.
    leases
        .patch(
            lease,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 60}}),
            ),
        )
        .await
        .expect("patch Lease");
    let lost = tokio::time::timeout(Duration::from_secs(10), a.hold())
        .await
        .expect("the holder kept acting for 10 s after its Lease was taken");
    assert!(
        matches!(&lost, Lost::TakenBy { holder } if holder == "intruder"),
        "unexpected outcome: {lost:?}"
    );
    // Stepping down must not clear the new holder's Lease.
    a.release().await.expect("release");
    assert_eq!(holder(&client, lease).await.as_deref(), Some("intruder"));
}
