use super::*;

fn pod(ordinal: i32, revision: &str) -> PodState {
    PodState {
        name: format!("demo-{ordinal}"),
        ordinal,
        revision: Some(revision.to_owned()),
        ready: true,
        terminating: false,
        config_hash: Some(if revision == "new" { "h2" } else { "h1" }.to_owned()),
        image: Some("tributary:1".to_owned()),
    }
}

fn desired() -> Desired {
    Desired {
        update_revision: "new".to_owned(),
        replicas: 3,
        config_hash: "h2".to_owned(),
        image: "tributary:1".to_owned(),
    }
}

fn healthy(controller: i32) -> RollView {
    RollView {
        under_replicated: 0,
        controller: Some(controller),
    }
}

#[test]
fn nothing_outdated_is_idle() {
    let pods = [pod(0, "new"), pod(1, "new"), pod(2, "new")];
    assert_eq!(step(&pods, &desired(), Err("not read")), RollStep::Idle);
    assert!(pending(&pods, &desired(), None).is_empty());
}

#[test]
fn brokers_restart_highest_first_and_the_active_controller_last() {
    let pods = [pod(0, "old"), pod(1, "old"), pod(2, "old")];
    let queue: Vec<String> = pending(&pods, &desired(), Some(2))
        .into_iter()
        .map(|p| p.pod)
        .collect();
    assert_eq!(queue, ["demo-1", "demo-0", "demo-2"]);
    assert_eq!(
        step(&pods, &desired(), Ok(&healthy(2))),
        RollStep::Restart("demo-1".to_owned())
    );
    let reasons = pending(&pods, &desired(), Some(2));
    assert_eq!(reasons[0].reason, "broker configuration changed");
}

#[test]
fn a_restart_waits_for_every_broker_ready_and_nothing_under_replicated() {
    let mut pods = vec![pod(0, "old"), pod(1, "new"), pod(2, "old")];
    pods[1].ready = false;
    assert!(matches!(
        step(&pods, &desired(), Ok(&healthy(0))),
        RollStep::Wait(why) if why.contains("broker 1 to be ready")
    ));
    pods[1].ready = true;
    pods[1].terminating = true;
    assert!(matches!(
        step(&pods, &desired(), Ok(&healthy(0))),
        RollStep::Wait(why) if why.contains("demo-1 to stop")
    ));
    pods[1].terminating = false;
    let lagging = RollView {
        under_replicated: 2,
        controller: Some(0),
    };
    assert!(matches!(
        step(&pods, &desired(), Ok(&lagging)),
        RollStep::Wait(why) if why.contains("2 under-replicated")
    ));
    assert!(matches!(
        step(&pods, &desired(), Err("refused")),
        RollStep::Wait(why) if why.contains("cannot read")
    ));
    assert!(matches!(
        step(&pods[..2], &desired(), Ok(&healthy(0))),
        RollStep::Wait(why) if why.contains("all 3 pods")
    ));
    assert_eq!(
        step(&pods, &desired(), Ok(&healthy(0))),
        RollStep::Restart("demo-2".to_owned())
    );
}

#[test]
fn an_image_change_is_named() {
    let mut pods = vec![pod(0, "old")];
    pods[0].config_hash = Some("h2".to_owned());
    pods[0].image = Some("tributary:0".to_owned());
    let reasons = pending(&pods, &desired(), None);
    assert_eq!(reasons[0].reason, "image changes to tributary:1");
}
