//! AWS devices (stub).
use super::{Credentials, DevicesError, Shadow};

#[derive(Clone)]
pub struct AwsDevices;

fn todo_err() -> DevicesError {
    DevicesError::Backend(anyhow::anyhow!("not implemented yet"))
}

impl AwsDevices {
    pub fn new(_sdk: &aws_config::SdkConfig, _endpoint: Option<String>) -> Self {
        AwsDevices
    }
    pub async fn publish(&self, _topic: &str, _payload: &[u8]) -> Result<(), DevicesError> {
        Err(todo_err())
    }
    pub async fn update_desired(&self, _thing: &str, _desired: serde_json::Value) -> Result<(), DevicesError> {
        Err(todo_err())
    }
    pub async fn shadow(&self, _thing: &str) -> Result<Option<Shadow>, DevicesError> {
        Err(todo_err())
    }
    pub async fn provision(&self, _thing: &str) -> Result<Credentials, DevicesError> {
        Err(todo_err())
    }
    pub async fn deprovision(&self, _thing: &str) -> Result<(), DevicesError> {
        Err(todo_err())
    }
}
