//! Local devices (stub).
use super::{Credentials, DevicesError, Shadow, broker::BrokerHandle};
use crate::platform::store::Store;

#[derive(Clone)]
pub struct LocalDevices;

fn todo_err() -> DevicesError {
    DevicesError::Backend(anyhow::anyhow!("not implemented yet"))
}

impl LocalDevices {
    pub fn new(_broker: BrokerHandle, _store: Store) -> Self {
        LocalDevices
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
