//! Queues: producers send messages; consumers receive them as SQS events.
//!
//! [`sqs::SqsQueue`] sends to Amazon SQS; [`embedded::EmbeddedQueue`] is a
//! durable SQLite-backed queue for the local stack with SQS's delivery
//! semantics (at-least-once, visibility timeout, redrive to a dead-letter
//! queue after `max_receive_count` receives). [`batch`] turns an SQS event
//! into per-message handling with partial batch failures.

pub mod batch;
#[cfg(feature = "local")]
pub mod embedded;
pub mod sqs;

/// A queue as its module declares it; the generated template declares the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDef {
    /// Logical name (`bank-transactions`); also the SQS queue name's suffix.
    pub name: &'static str,
    /// Seconds a received message stays invisible to other consumers.
    pub visibility_timeout_secs: u32,
    /// Receives after which a message moves to the dead-letter queue `<name>-dlq`.
    pub max_receive_count: u32,
    /// FIFO queue (ordering per group id, deduplication).
    pub fifo: bool,
    /// Seconds an unreceived message is kept (SQS: 60 to 1,209,600; the dead-letter queue
    /// always keeps 14 days).
    pub retention_secs: u32,
}

impl QueueDef {
    /// SQS's default retention, 4 days.
    pub const DEFAULT_RETENTION_SECS: u32 = 4 * 24 * 3600;
    /// SQS's longest retention, 14 days.
    pub const MAX_RETENTION_SECS: u32 = 14 * 24 * 3600;

    pub fn dlq_name(&self) -> String {
        format!("{}-dlq", self.name)
    }
}

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutMessage {
    pub body: String,
    /// Messages with the same id sent within 5 minutes are delivered once.
    pub dedup_id: Option<String>,
    /// FIFO ordering group.
    pub group_id: Option<String>,
}

impl OutMessage {
    pub fn new(body: impl Into<String>) -> Self {
        OutMessage { body: body.into(), ..Default::default() }
    }

    /// A JSON body.
    pub fn json<T: serde::Serialize>(value: &T) -> Result<Self, QueueError> {
        serde_json::to_string(value)
            .map(Self::new)
            .map_err(|e| QueueError::Invalid(format!("message does not serialize: {e}")))
    }

    pub fn dedup_id(mut self, id: impl Into<String>) -> Self {
        self.dedup_id = Some(id.into());
        self
    }

    pub fn group_id(mut self, id: impl Into<String>) -> Self {
        self.group_id = Some(id.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("invalid message: {0}")]
    Invalid(String),
    #[error("queue backend failed")]
    Backend(#[source] anyhow::Error),
}

/// The queue producer used by the process, chosen by configuration.
#[derive(Clone)]
pub enum Queue {
    #[cfg(feature = "local")]
    Embedded(embedded::EmbeddedQueue),
    Sqs(sqs::SqsQueue),
}

impl Queue {
    /// Sends one message; returns its message id.
    pub async fn send(&self, queue: &str, message: OutMessage) -> Result<String, QueueError> {
        match self {
            #[cfg(feature = "local")]
            Queue::Embedded(q) => q.send(queue, message).await,
            Queue::Sqs(q) => q.send(queue, message).await,
        }
    }

    /// Messages in the queue, visible and in flight (SQS: its approximate counts).
    pub async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        match self {
            #[cfg(feature = "local")]
            Queue::Embedded(q) => q.depth(queue).await,
            Queue::Sqs(q) => q.depth(queue).await,
        }
    }

    /// Moves every message of `def`'s dead-letter queue back to `def`'s queue, to be delivered
    /// afresh; returns how many moved.
    pub async fn redrive(&self, def: &QueueDef) -> Result<u64, QueueError> {
        match self {
            #[cfg(feature = "local")]
            Queue::Embedded(q) => q.redrive(def).await,
            Queue::Sqs(q) => q.redrive(def).await,
        }
    }

    /// Sends many messages (SQS batches of 10 under the hood); all or an error.
    pub async fn send_batch(&self, queue: &str, messages: Vec<OutMessage>) -> Result<Vec<String>, QueueError> {
        match self {
            #[cfg(feature = "local")]
            Queue::Embedded(q) => q.send_batch(queue, messages).await,
            Queue::Sqs(q) => q.send_batch(queue, messages).await,
        }
    }
}
