//! The process state: configuration and the clients built from it, once.

use std::sync::Arc;

use anyhow::Context;

use crate::platform::clock::Clock;
use crate::platform::config::{Config, DevicesBackend, QueueBackend, StoreBackend};
#[cfg(feature = "local")]
use crate::platform::devices::broker;
use crate::platform::devices::{self, Devices};
use crate::platform::http::auth::TokenVerifier;
use crate::platform::queue::{self, Queue, QueueDef};
use crate::platform::store::{self, Store};

/// Everything a handler needs, built once per process and shared by reference.
pub struct App {
    pub config: Config,
    pub clock: Clock,
    pub store: Store,
    pub queue: Queue,
    pub devices: Devices,
    /// Checks bearer tokens for routes that require them (the identity module's JWT verifier).
    pub auth: Arc<dyn TokenVerifier>,
    /// The AWS SDK configuration the clients above were built from (when any are AWS), for
    /// modules that build their own clients once (notifications: SES, SNS).
    pub sdk: Option<aws_config::SdkConfig>,
}

/// Why an embedded backend cannot be chosen in this build.
#[cfg(not(feature = "local"))]
const NOT_LOCAL: &str = "PREMISES_STORE=embedded, PREMISES_QUEUE=embedded and PREMISES_DEVICES=local need the local \
     engines, which Lambda binaries leave out (feature `local` of crate `shared`); use dynamodb, sqs and aws";

/// How the local stack and tests build the state, where Lambda differs.
pub struct LocalParts {
    /// Start the embedded MQTT broker on `config.mqtt_addr` (local devices need it).
    pub start_broker: bool,
    /// Queues the embedded queue knows.
    pub queues: &'static [QueueDef],
    /// AWS SDK configuration to use instead of the environment's (tests point it at local engines).
    pub sdk: Option<aws_config::SdkConfig>,
}

impl Default for LocalParts {
    fn default() -> Self {
        LocalParts { start_broker: false, queues: crate::catalog::queues(), sdk: None }
    }
}

impl App {
    /// Builds the state from the environment, as a Lambda function does at cold start.
    pub async fn from_env() -> anyhow::Result<&'static App> {
        let config = Config::from_env()?;
        let app = App::build(config, Clock::System, LocalParts::default()).await?;
        Ok(Box::leak(Box::new(app)))
    }

    pub async fn build(config: Config, clock: Clock, local: LocalParts) -> anyhow::Result<App> {
        let needs_aws = config.store == StoreBackend::Dynamodb
            || config.queue == QueueBackend::Sqs
            || config.devices == DevicesBackend::Aws;
        let sdk = match local.sdk {
            Some(sdk) => Some(sdk),
            None if needs_aws => Some(aws_config::load_from_env().await),
            None => None,
        };
        let sdk_ref = || sdk.as_ref().context("AWS SDK configuration missing");

        let store = match config.store {
            #[cfg(feature = "local")]
            StoreBackend::Embedded => {
                std::fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("PREMISES_DATA_DIR: cannot create {}", config.data_dir.display()))?;
                Store::Embedded(store::embedded::EmbeddedStore::open(
                    &config.data_dir.join("store.sqlite"),
                    clock.clone(),
                )?)
            }
            #[cfg(not(feature = "local"))]
            StoreBackend::Embedded => anyhow::bail!(NOT_LOCAL),
            StoreBackend::Dynamodb => Store::Dynamo(store::dynamo::DynamoStore::new(
                aws_sdk_dynamodb::Client::new(sdk_ref()?),
                config.table_name.clone(),
                clock.clone(),
            )),
        };
        let queue = match config.queue {
            #[cfg(feature = "local")]
            QueueBackend::Embedded => {
                std::fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("PREMISES_DATA_DIR: cannot create {}", config.data_dir.display()))?;
                Queue::Embedded(queue::embedded::EmbeddedQueue::open(
                    &config.data_dir.join("queue.sqlite"),
                    clock.clone(),
                    local.queues,
                )?)
            }
            #[cfg(not(feature = "local"))]
            QueueBackend::Embedded => anyhow::bail!(NOT_LOCAL),
            QueueBackend::Sqs => {
                Queue::Sqs(queue::sqs::SqsQueue::new(aws_sdk_sqs::Client::new(sdk_ref()?), config.queue_urls.clone()))
            }
        };
        let devices = match config.devices {
            #[cfg(feature = "local")]
            DevicesBackend::Local => {
                anyhow::ensure!(
                    local.start_broker,
                    "PREMISES_DEVICES=local needs the embedded MQTT broker of the local stack; use PREMISES_DEVICES=aws here"
                );
                let auth = broker::BrokerAuth { store: store.clone(), allow_anonymous: config.mqtt_allow_anonymous };
                let broker = broker::start(config.mqtt_addr, auth).await.with_context(|| {
                    format!("PREMISES_MQTT_ADDR: cannot start the MQTT broker on {}", config.mqtt_addr)
                })?;
                Devices::Local(devices::local::LocalDevices::new(broker, store.clone()))
            }
            #[cfg(not(feature = "local"))]
            DevicesBackend::Local => anyhow::bail!(NOT_LOCAL),
            DevicesBackend::Aws => Devices::Aws(devices::aws::AwsDevices::new(
                sdk_ref()?,
                config.iot_endpoint.clone(),
                config.iot_policy.clone(),
            )),
        };

        let auth: Arc<dyn TokenVerifier> = Arc::new(crate::identity::tokens::JwtVerifier::new(&config, clock.clone()));
        Ok(App { config, clock, store, queue, devices, auth, sdk })
    }
}
