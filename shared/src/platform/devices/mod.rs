//! Devices: MQTT publish, device shadows and thing provisioning.
//!
//! [`aws::AwsDevices`] talks to AWS IoT Core (`aws-sdk-iotdataplane` for
//! publish and shadows, `aws-sdk-iot` for things and certificates);
//! [`local::LocalDevices`] runs over the embedded MQTT broker ([`broker`]) of
//! the local stack, keeping shadows and credentials in the store.

pub mod aws;
#[cfg(feature = "local")]
pub mod broker;
#[cfg(feature = "local")]
pub mod local;
pub mod policy;
pub mod rules;

use serde::{Deserialize, Serialize};

use rules::is_valid_topic;

/// What a device needs to connect, returned once at provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[cfg(feature = "local")]
    Local(local::LocalDevices),
    Aws(aws::AwsDevices),
}

macro_rules! dispatch {
    ($self:ident, $d:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "local")]
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

/// AWS IoT's limit on a message payload.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// AWS IoT's limit on a topic name.
pub const MAX_TOPIC_BYTES: usize = 256;

/// Thing names as AWS IoT allows them: 1-128 of `[a-zA-Z0-9:_-]`. This also
/// keeps them valid as MQTT client ids and topic levels.
pub(crate) fn validate_thing_name(thing: &str) -> Result<(), DevicesError> {
    let valid = (1..=128).contains(&thing.len())
        && thing.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(DevicesError::Invalid(format!("{thing:?} is not a valid thing name (1-128 of a-z, A-Z, 0-9, :, _, -)")))
    }
}

/// The limits AWS IoT puts on a publish, checked by both gateways.
pub(crate) fn validate_publish(topic: &str, payload: &[u8]) -> Result<(), DevicesError> {
    if !is_valid_topic(topic) || topic.len() > MAX_TOPIC_BYTES {
        return Err(DevicesError::Invalid(format!(
            "{topic:?} is not a topic to publish to (non-empty, no wildcards, at most {MAX_TOPIC_BYTES} bytes)"
        )));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DevicesError::Invalid(format!(
            "a payload of {} bytes exceeds the {MAX_PAYLOAD_BYTES} bytes AWS IoT accepts",
            payload.len()
        )));
    }
    Ok(())
}
