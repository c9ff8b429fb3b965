//! The metadata publisher: applies a change through the store, works out the delta between the old and the
//! new image, hands it to every subscriber (the replica manager opens, leads or deletes local partitions),
//! and only then publishes the new image to readers.
//!
//! Readers (handlers, one image per request) therefore never see a topic whose local partitions are not
//! open yet. Changes are applied and published one at a time, in order. Single-node mode runs exactly this
//! path; a cluster runs it when the metadata log commits a record. Must never decide what a change is: that
//! is the controller's.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{
    image::{MetadataDelta, MetadataImage},
    store::{MetadataChange, MetadataError, MetadataStore},
};

/// A subscriber's failure to apply a delta. The image is published anyway (the metadata did change); the
/// submitter learns that this broker could not follow it.
#[derive(Debug, thiserror::Error)]
#[error("{subscriber} could not apply the metadata change")]
pub struct ApplyError {
    pub subscriber: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Follows the metadata: gets every delta, in order, before readers see the image it leads to.
pub trait MetadataSubscriber: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// Applies `delta`, which took the metadata to `image`. Called with changes serialized.
    fn apply(
        &self,
        delta: &MetadataDelta,
        image: &Arc<MetadataImage>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("metadata store refused the change")]
    Store(#[from] MetadataError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Changes of a cluster go through the metadata log, not to a publisher.
    #[error(
        "this broker follows the cluster's metadata log; changes go through the active controller"
    )]
    Following,
}

#[derive(Debug)]
pub struct MetadataPublisher {
    /// The single-node store changes are submitted to; `None` in a cluster, where images arrive from the
    /// metadata log ([`MetadataPublisher::publish_committed`]).
    store: Option<Arc<dyn MetadataStore>>,
    subscribers: Vec<Arc<dyn MetadataSubscriber>>,
    published: watch::Sender<Arc<MetadataImage>>,
    /// Held from a change's apply to its publication, so deltas reach subscribers in commit order.
    in_order: Mutex<()>,
}

impl MetadataPublisher {
    /// Nothing is published until [`MetadataPublisher::start`].
    pub fn new(
        store: Arc<dyn MetadataStore>,
        subscribers: Vec<Arc<dyn MetadataSubscriber>>,
    ) -> Self {
        Self {
            store: Some(store),
            subscribers,
            published: watch::Sender::new(Arc::new(MetadataImage::default())),
            in_order: Mutex::new(()),
        }
    }

    /// A publisher that follows a replicated metadata log: nothing is submitted to it; every committed
    /// image is handed to it in log order.
    pub fn following(subscribers: Vec<Arc<dyn MetadataSubscriber>>) -> Self {
        Self {
            store: None,
            subscribers,
            published: watch::Sender::new(Arc::new(MetadataImage::default())),
            in_order: Mutex::new(()),
        }
    }

    /// Publishes the store's current image as one delta from nothing: on start every subscriber catches up
    /// with all of the metadata. A following publisher has nothing to start from.
    pub fn start(&self) -> Result<Arc<MetadataImage>, ApplyError> {
        let _in_order = self.lock();
        let Some(store) = &self.store else {
            return Ok(self.image());
        };
        let image = store.image();
        let delta = MetadataDelta::between(&self.published.borrow(), &image);
        self.publish(&delta, image)
    }

    /// Publishes an image the metadata log committed (including one restored from a snapshot). A
    /// subscriber's failure is logged and the image published anyway: the log has moved on regardless.
    pub fn publish_committed(&self, image: Arc<MetadataImage>) {
        let _in_order = self.lock();
        let delta = MetadataDelta::between(&self.published.borrow(), &image);
        let _ = self.publish(&delta, image);
    }

    /// The image readers see: the last one every subscriber has applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.published.borrow())
    }

    /// Wakes on every published image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.published.subscribe()
    }

    /// Applies `change` and publishes the image it leads to. Returns once every subscriber applied it.
    pub fn submit(&self, change: MetadataChange) -> Result<Arc<MetadataImage>, PublishError> {
        let _in_order = self.lock();
        let Some(store) = &self.store else {
            return Err(PublishError::Following);
        };
        let before = self.image();
        let image = store.apply(change)?;
        let delta = MetadataDelta::between(&before, &image);
        Ok(self.publish(&delta, image)?)
    }

    fn publish(
        &self,
        delta: &MetadataDelta,
        image: Arc<MetadataImage>,
    ) -> Result<Arc<MetadataImage>, ApplyError> {
        let mut first_error = None;
        for subscriber in &self.subscribers {
            if let Err(source) = subscriber.apply(delta, &image) {
                tracing::error!(subscriber = subscriber.name(), error = %crate::error_chain(source.as_ref()), "applying metadata failed");
                first_error.get_or_insert(ApplyError {
                    subscriber: subscriber.name(),
                    source,
                });
            }
        }
        self.published.send_replace(Arc::clone(&image));
        match first_error {
            Some(error) => Err(error),
            None => Ok(image),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.in_order
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
