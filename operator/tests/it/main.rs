//! The operator against a real kube-apiserver + kube-controller-manager, and Topics against a real broker
//! process. Needs `KUBECONFIG` pointing at a running control plane (and, for Topics, a built broker binary and
//! the Python client venv); `hack/test.sh` provides all of it and runs
//! `cargo test -p tributary-operator --test it -- --ignored --test-threads=1`. The tests run one at a time because
//! each starts a whole operator that watches every namespace.

mod apiserver;
mod cluster;
mod pod_runner;
mod quorum;
mod scale;
mod support;
mod topic;
