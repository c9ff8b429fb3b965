//! InitProducerId (key 22).

use kafka_protocol::{
    messages::{InitProducerIdRequest, ProducerId, TransactionalId},
    ResponseError,
};
use tributary_broker::testing::TestBroker;

use crate::{code, s};

fn request() -> InitProducerIdRequest {
    // The codec's default transactional id is "", not null; an idempotent producer sends null.
    InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
}

#[tokio::test]
async fn every_version_hands_out_a_new_id_with_epoch_zero() {
    let broker = TestBroker::start().await;
    let mut ids = Vec::new();
    for version in 0..=5 {
        let response = broker.call(request(), version).await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(response.producer_epoch, 0, "v{version}");
        assert!(
            response.producer_id.0 >= 0,
            "v{version}: id {}",
            response.producer_id.0
        );
        ids.push(response.producer_id.0);
    }
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique, ids, "ids are never handed out twice: {ids:?}");
}

#[tokio::test]
async fn ids_are_not_reused_after_a_restart() {
    let mut broker = TestBroker::start().await;
    let before = broker.call(request(), 4).await.producer_id.0;
    broker.restart().await;
    let after = broker.call(request(), 4).await.producer_id.0;
    assert!(
        after > before,
        "id {after} after the restart, {before} before"
    );
}

#[tokio::test]
async fn an_existing_idempotent_producer_gets_a_fresh_id() {
    let broker = TestBroker::start().await;
    let first = broker.call(request(), 4).await;
    let again = broker
        .call(
            request()
                .with_producer_id(first.producer_id)
                .with_producer_epoch(first.producer_epoch),
            4,
        )
        .await;
    assert_eq!(again.error_code, 0);
    assert_ne!(
        again.producer_id, first.producer_id,
        "without a transactional id Kafka hands out a new id"
    );
}

#[tokio::test]
async fn transactional_ids_are_refused() {
    let broker = TestBroker::start().await;
    let response = broker
        .call(
            request().with_transactional_id(Some(TransactionalId(s("tx")))),
            4,
        )
        .await;
    assert_eq!(
        response.error_code,
        code(ResponseError::TransactionalIdAuthorizationFailed)
    );
    assert_eq!(
        (response.producer_id, response.producer_epoch),
        (ProducerId(-1), -1)
    );
}
