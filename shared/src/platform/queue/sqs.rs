//! SQS queue (stub, replaced by the real implementation).
use std::collections::HashMap;

use super::{OutMessage, QueueError};

#[derive(Clone)]
pub struct SqsQueue;

impl SqsQueue {
    pub fn new(_client: aws_sdk_sqs::Client, _urls: HashMap<String, String>) -> Self {
        SqsQueue
    }
    pub async fn send(&self, _queue: &str, _message: OutMessage) -> Result<String, QueueError> {
        Err(QueueError::Backend(anyhow::anyhow!("not implemented yet")))
    }
    pub async fn send_batch(&self, _queue: &str, _messages: Vec<OutMessage>) -> Result<Vec<String>, QueueError> {
        Err(QueueError::Backend(anyhow::anyhow!("not implemented yet")))
    }
}
