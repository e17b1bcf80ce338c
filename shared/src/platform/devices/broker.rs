//! Embedded MQTT broker (stub).
#[derive(Clone)]
pub struct BrokerHandle;
