//! Embedded queue (stub, replaced by the real implementation).
use std::path::Path;

use super::{OutMessage, QueueDef, QueueError};
use crate::platform::clock::Clock;

#[derive(Clone)]
pub struct EmbeddedQueue;

impl EmbeddedQueue {
    pub fn open(_path: &Path, _clock: Clock, _defs: &[QueueDef]) -> anyhow::Result<Self> {
        Ok(EmbeddedQueue)
    }
    pub async fn send(&self, _queue: &str, _message: OutMessage) -> Result<String, QueueError> {
        Err(QueueError::Backend(anyhow::anyhow!("not implemented yet")))
    }
    pub async fn send_batch(&self, _queue: &str, _messages: Vec<OutMessage>) -> Result<Vec<String>, QueueError> {
        Err(QueueError::Backend(anyhow::anyhow!("not implemented yet")))
    }
}
