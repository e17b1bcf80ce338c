//! Devices: MQTT publish, device shadows and thing provisioning.
//!
//! [`aws::AwsDevices`] talks to AWS IoT Core (`aws-sdk-iotdataplane` for
//! publish and shadows, `aws-sdk-iot` for things and certificates);
//! [`local::LocalDevices`] runs over the embedded MQTT broker ([`broker`]) of
//! the local stack, keeping shadows and credentials in the store.

pub mod aws;
pub mod broker;
pub mod local;
pub mod rules;

use serde::{Deserialize, Serialize};

/// What a device needs to connect, returned once at provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub thing_name: String,
    /// The MQTT client id the device must use.
    pub client_id: String,
    /// Where to connect (`host:port`, or the AWS IoT data endpoint).
    pub endpoint: String,
    /// X.509 certificate (AWS IoT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// Username/password (local broker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A thing's shadow document: what the device last reported and what the
/// service wants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    #[serde(default)]
    pub reported: serde_json::Value,
    #[serde(default)]
    pub desired: serde_json::Value,
    #[serde(default)]
    pub version: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("unknown thing {0:?}")]
    UnknownThing(String),
    #[error("invalid device request: {0}")]
    Invalid(String),
    #[error("devices backend failed")]
    Backend(#[source] anyhow::Error),
}

/// The device gateway used by the process, chosen by configuration.
#[derive(Clone)]
pub enum Devices {
    Local(local::LocalDevices),
    Aws(aws::AwsDevices),
}

macro_rules! dispatch {
    ($self:ident, $d:ident => $call:expr) => {
        match $self {
            Devices::Local($d) => $call,
            Devices::Aws($d) => $call,
        }
    };
}

impl Devices {
    /// Publishes `payload` on `topic` with QoS 1.
    pub async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), DevicesError> {
        dispatch!(self, d => d.publish(topic, payload).await)
    }

    /// Merges `desired` into the thing's shadow desired state.
    pub async fn update_desired(&self, thing: &str, desired: serde_json::Value) -> Result<(), DevicesError> {
        dispatch!(self, d => d.update_desired(thing, desired).await)
    }

    /// Reads the thing's shadow (`None` when it has none yet).
    pub async fn shadow(&self, thing: &str) -> Result<Option<Shadow>, DevicesError> {
        dispatch!(self, d => d.shadow(thing).await)
    }

    /// Creates the thing with fresh credentials (replacing any earlier ones).
    pub async fn provision(&self, thing: &str) -> Result<Credentials, DevicesError> {
        dispatch!(self, d => d.provision(thing).await)
    }

    /// Revokes the thing's credentials and removes it.
    pub async fn deprovision(&self, thing: &str) -> Result<(), DevicesError> {
        dispatch!(self, d => d.deprovision(thing).await)
    }
}
