//! [`ReplicatedCluster`]: brokers that replicate over real TCP on 127.0.0.1, without a metadata quorum.
//! Each broker keeps its own single-node metadata store; the fixture drives every store with the same
//! sequence of metadata changes, as a replicated metadata log would (register every broker with its real
//! endpoint, create topics with one topic id and one placement, change partitions). Leaders' ISR proposals
//! go through [`FanOutProposer`], which lets the leader's controller validate and commit the change and then
//! applies the same change on every other broker.
//!
//! Clients talk to a broker in-process (request frames through the handler entry point); brokers talk to
//! each other over their listeners. Unlike the rest of `testing`, this fixture reaches broker internals
//! directly: it stands in for the metadata quorum, which is internal by nature.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bytes::BytesMut;
use kafka_protocol::protocol::Request;
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use uuid::Uuid;

use super::{chain, decode_response, request_frame, TestError};
use crate::{
    broker::{local_registration, Broker},
    cluster::{
        image::{NodeId, PartitionChange, PartitionRegistration, TopicMetadata},
        store::MetadataChange,
    },
    config::BrokerConfig,
    group::offsets::BoxFuture,
    handlers::handle_frame,
    replication::isr::{AlterPartitionError, AlterPartitionRequest, IsrProposer},
};

/// One broker of a [`ReplicatedCluster`].
#[derive(Debug)]
pub struct ReplicatedBroker {
    pub broker: Arc<Broker>,
    _dir: TempDir,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Stops this broker's replication (fetchers and ISR checks) alone, to make it lag.
    replication: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

/// Applies every metadata change on every broker, in the same order.
#[derive(Debug, Clone)]
pub struct FanOut {
    brokers: Arc<std::sync::RwLock<Vec<Arc<Broker>>>>,
}

impl FanOut {
    fn brokers(&self) -> Vec<Arc<Broker>> {
        self.brokers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Submits `change` on every broker; panics (failing the test) if one refuses it.
    pub fn submit(&self, change: &MetadataChange) {
        for broker in self.brokers() {
            if let Err(e) = broker.publisher.submit(change.clone()) {
                panic!(
                    "broker {} refused {change:?}: {}",
                    broker.config.node_id,
                    chain(&e)
                );
            }
        }
    }
}

/// Leaders' ISR proposals, committed by the leader's controller and fanned out to the others.
#[derive(Debug)]
pub struct FanOutProposer {
    fan_out: FanOut,
}

impl IsrProposer for FanOutProposer {
    fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> BoxFuture<'_, Result<PartitionRegistration, AlterPartitionError>> {
        Box::pin(async move {
            let brokers = self.fan_out.brokers();
            let Some(leader) = brokers
                .iter()
                .find(|b| b.config.node_id == request.leader_id)
            else {
                return Err(AlterPartitionError::IneligibleReplica(request.leader_id));
            };
            let (topic, partition, isr) = (
                request.topic.clone(),
                request.partition,
                request.new_isr.clone(),
            );
            let registration = leader.controller.alter_partition(request).await?;
            let change = MetadataChange::ChangePartition {
                topic,
                partition,
                change: PartitionChange {
                    isr: Some(isr),
                    ..PartitionChange::default()
                },
            };
            for other in brokers.iter().filter(|b| !Arc::ptr_eq(b, leader)) {
                other
                    .publisher
                    .submit(change.clone())
                    .map_err(|e| AlterPartitionError::Store(crate::error_chain(&e)))?;
            }
            Ok(registration)
        })
    }
}

/// N brokers (ids 1..=N) replicating over TCP, metadata fanned out by the fixture.
#[derive(Debug)]
pub struct ReplicatedCluster {
    brokers: BTreeMap<NodeId, ReplicatedBroker>,
    fan_out: FanOut,
}

impl ReplicatedCluster {
    /// Starts `size` brokers with the same Kafka `properties`, registers each on every broker.
    pub async fn start(size: i32, properties: &[(&str, &str)]) -> Self {
        let fan_out = FanOut {
            brokers: Arc::default(),
        };
        let mut brokers = BTreeMap::new();
        for id in 1..=size {
            let dir = tempfile::Builder::new()
                .prefix("tributary-replicated-")
                .tempdir()
                .unwrap_or_else(|e| panic!("temp dir: {e}"));
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("binding a listener: {e}"));
            let port = listener
                .local_addr()
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("listener address: {e}"));
            let mut config = BrokerConfig::dev_defaults();
            let mut props: BTreeMap<String, String> = properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            props.insert("node.id".into(), id.to_string());
            props.insert("log.dirs".into(), dir.path().to_string_lossy().into_owned());
            props.insert("listeners".into(), format!("PLAINTEXT://127.0.0.1:{port}"));
            props.insert(
                "advertised.listeners".into(),
                format!("PLAINTEXT://127.0.0.1:{port}"),
            );
            config
                .apply_properties(&props)
                .unwrap_or_else(|e| panic!("broker {id} config: {}", chain(&e)));
            let broker = Broker::open(config)
                .unwrap_or_else(|e| panic!("opening broker {id}: {}", chain(&e)));
            let (shutdown, stop) = watch::channel(false);
            let tasks = vec![
                tokio::spawn(crate::server::serve(
                    listener,
                    Arc::clone(&broker),
                    stop.clone(),
                )),
                tokio::spawn(Arc::clone(&broker.logs).run(stop.clone())),
            ];
            brokers.insert(
                id,
                ReplicatedBroker {
                    broker,
                    _dir: dir,
                    shutdown,
                    tasks,
                    replication: None,
                },
            );
        }
        *fan_out
            .brokers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            brokers.values().map(|b| Arc::clone(&b.broker)).collect();
        let mut cluster = Self { brokers, fan_out };
        let registrations: Vec<_> = cluster
            .brokers
            .values()
            .map(|b| local_registration(&b.broker.config))
            .collect();
        for registration in registrations {
            cluster
                .fan_out
                .submit(&MetadataChange::RegisterBroker(registration));
        }
        for id in 1..=size {
            let proposer = Arc::new(FanOutProposer {
                fan_out: cluster.fan_out.clone(),
            });
            cluster.broker(id).replicas.set_isr_proposer(proposer);
            cluster.resume_replication(id);
        }
        cluster
    }

    pub fn broker(&self, id: NodeId) -> &Arc<Broker> {
        &self
            .brokers
            .get(&id)
            .unwrap_or_else(|| panic!("no broker {id}"))
            .broker
    }

    pub fn fan_out(&self) -> &FanOut {
        &self.fan_out
    }

    /// Creates `name` with one partition per replica list, the first replica leading, on every broker.
    pub fn create_topic(&self, name: &str, placement: &[Vec<NodeId>], configs: &[(&str, &str)]) {
        let topic = TopicMetadata {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            partitions: placement
                .iter()
                .cloned()
                .map(PartitionRegistration::new)
                .collect(),
            replication_factor: i16::try_from(placement.first().map_or(1, Vec::len))
                .unwrap_or(i16::MAX),
            configs: configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        self.fan_out.submit(&MetadataChange::CreateTopic(topic));
    }

    /// Stops broker `id`'s fetchers (it falls behind, as a paused process would).
    pub async fn pause_replication(&mut self, id: NodeId) {
        let Some(broker) = self.brokers.get_mut(&id) else {
            panic!("no broker {id}");
        };
        if let Some((stop, task)) = broker.replication.take() {
            let _ = stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Starts broker `id`'s fetchers and ISR checks again.
    pub fn resume_replication(&mut self, id: NodeId) {
        let Some(broker) = self.brokers.get_mut(&id) else {
            panic!("no broker {id}");
        };
        if broker.replication.is_some() {
            return;
        }
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(Arc::clone(&broker.broker.replicas).run(stopped));
        broker.replication = Some((stop, task));
    }

    /// Sends `request` to broker `id` in-process and decodes the answer.
    pub async fn call<R: Request>(&self, id: NodeId, request: R, version: i16) -> R::Response {
        match self.try_call(id, request, version).await {
            Ok(response) => response,
            Err(e) => panic!("request to broker {id}: {}", chain(&e)),
        }
    }

    pub async fn try_call<R: Request>(
        &self,
        id: NodeId,
        request: R,
        version: i16,
    ) -> Result<R::Response, TestError> {
        let correlation_id = 7;
        let frame = request_frame(&request, version, correlation_id)?;
        let broker = self.broker(id);
        let answered = async {
            let pending = handle_frame(broker, BytesMut::from(&frame[..]))
                .await
                .map_err(|e| TestError::Closed(chain(&e)))?;
            pending
                .resolve()
                .await
                .map_err(|e| TestError::Closed(chain(&e)))?
                .ok_or(TestError::NoResponse)?
                .to_vec()
                .map_err(|e| TestError::Closed(chain(&e)))
        };
        let timeout = Duration::from_secs(30);
        let bytes = tokio::time::timeout(timeout, answered)
            .await
            .map_err(|_| TestError::Timeout(timeout))??;
        decode_response::<R>(
            bytes::Bytes::from(bytes).split_off(4),
            version,
            correlation_id,
        )
    }
}

impl Drop for ReplicatedCluster {
    fn drop(&mut self) {
        for broker in self.brokers.values_mut() {
            let _ = broker.shutdown.send(true);
            if let Some((stop, task)) = broker.replication.take() {
                let _ = stop.send(true);
                task.abort();
            }
            for task in broker.tasks.drain(..) {
                task.abort();
            }
        }
    }
}
