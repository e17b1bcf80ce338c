//! Configuration from the environment, validated once at start.
//!
//! Every variable is read here; a bad value fails start-up with a message that
//! names the variable. Under Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) the
//! backends default to the AWS services; elsewhere to the embedded engines.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {problem} (got {value:?})")]
    Invalid { var: String, value: String, problem: String },
}

/// Where the code runs; `dev` enables developer conveniences such as outboxes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    Dev,
    Test,
    Prod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    Embedded,
    Dynamodb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueBackend {
    Embedded,
    Sqs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicesBackend {
    Local,
    Aws,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub env: Env,
    /// True when running inside the Lambda execution environment.
    pub in_lambda: bool,
    pub store: StoreBackend,
    pub queue: QueueBackend,
    pub devices: DevicesBackend,
    /// The single DynamoDB table (`PREMISES_TABLE`, default `premises`).
    pub table_name: String,
    /// Embedded engines persist here (`PREMISES_DATA_DIR`, default `.data`).
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub mqtt_addr: SocketAddr,
    /// Requests with a larger body get 413 (`PREMISES_MAX_BODY_BYTES`, default 1 MiB).
    pub max_body_bytes: usize,
    /// `Access-Control-Allow-Origin` (`PREMISES_CORS_ORIGIN`, default `*`).
    pub cors_origin: String,
    /// SQS queue URLs by logical queue name, from `PREMISES_QUEUE_URL_<NAME>`
    /// (name upper-cased, `-` as `_`).
    pub queue_urls: HashMap<String, String>,
    /// Local broker: accept clients without credentials (`PREMISES_MQTT_ALLOW_ANONYMOUS`, default true).
    pub mqtt_allow_anonymous: bool,
    /// AWS IoT data endpoint (`PREMISES_IOT_ENDPOINT`); looked up with DescribeEndpoint when unset.
    pub iot_endpoint: Option<String>,
    /// IoT policy attached to provisioned device certificates (`PREMISES_IOT_POLICY`, default `premises-device`).
    pub iot_policy: String,
    /// Scheduled jobs run in the local stack (`PREMISES_SCHEDULES`, default true).
    pub run_schedules: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Builds the configuration from explicit variables (tests use this).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let in_lambda = get("AWS_LAMBDA_FUNCTION_NAME").is_some();

        let env = match get("PREMISES_ENV") {
            None if in_lambda => Env::Prod,
            None => Env::Dev,
            Some(v) => choose("PREMISES_ENV", v, &[("dev", Env::Dev), ("test", Env::Test), ("prod", Env::Prod)])?,
        };
        let store = match get("PREMISES_STORE") {
            None if in_lambda => StoreBackend::Dynamodb,
            None => StoreBackend::Embedded,
            Some(v) => choose(
                "PREMISES_STORE",
                v,
                &[("embedded", StoreBackend::Embedded), ("dynamodb", StoreBackend::Dynamodb)],
            )?,
        };
        let queue = match get("PREMISES_QUEUE") {
            None if in_lambda => QueueBackend::Sqs,
            None => QueueBackend::Embedded,
            Some(v) => {
                choose("PREMISES_QUEUE", v, &[("embedded", QueueBackend::Embedded), ("sqs", QueueBackend::Sqs)])?
            }
        };
        let devices = match get("PREMISES_DEVICES") {
            None if in_lambda => DevicesBackend::Aws,
            None => DevicesBackend::Local,
            Some(v) => {
                choose("PREMISES_DEVICES", v, &[("local", DevicesBackend::Local), ("aws", DevicesBackend::Aws)])?
            }
        };

        let queue_urls = vars
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("PREMISES_QUEUE_URL_")?;
                Some((name.to_ascii_lowercase().replace('_', "-"), v.trim().to_string()))
            })
            .collect();

        Ok(Config {
            env,
            in_lambda,
            store,
            queue,
            devices,
            table_name: get("PREMISES_TABLE").unwrap_or("premises").to_string(),
            data_dir: PathBuf::from(get("PREMISES_DATA_DIR").unwrap_or(".data")),
            http_addr: parse(
                "PREMISES_HTTP_ADDR",
                get("PREMISES_HTTP_ADDR").unwrap_or("127.0.0.1:3000"),
                "a socket address such as 127.0.0.1:3000",
            )?,
            mqtt_addr: parse(
                "PREMISES_MQTT_ADDR",
                get("PREMISES_MQTT_ADDR").unwrap_or("127.0.0.1:1883"),
                "a socket address such as 127.0.0.1:1883",
            )?,
            max_body_bytes: parse(
                "PREMISES_MAX_BODY_BYTES",
                get("PREMISES_MAX_BODY_BYTES").unwrap_or("1048576"),
                "a number of bytes",
            )?,
            cors_origin: get("PREMISES_CORS_ORIGIN").unwrap_or("*").to_string(),
            queue_urls,
            mqtt_allow_anonymous: parse_bool(
                "PREMISES_MQTT_ALLOW_ANONYMOUS",
                get("PREMISES_MQTT_ALLOW_ANONYMOUS").unwrap_or("true"),
            )?,
            iot_endpoint: get("PREMISES_IOT_ENDPOINT").map(str::to_string),
            iot_policy: get("PREMISES_IOT_POLICY").unwrap_or("premises-device").to_string(),
            run_schedules: parse_bool("PREMISES_SCHEDULES", get("PREMISES_SCHEDULES").unwrap_or("true"))?,
        })
    }

    /// A configuration for tests: embedded engines under `data_dir`, ephemeral ports.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut c = Self::from_vars([("PREMISES_ENV".to_string(), "test".to_string())])
            .unwrap_or_else(|e| unreachable!("test defaults are valid: {e}"));
        c.data_dir = data_dir;
        c.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        c.mqtt_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        c
    }
}

fn invalid(var: &str, value: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid { var: var.to_string(), value: value.to_string(), problem: problem.to_string() }
}

fn choose<T: Copy>(var: &str, value: &str, options: &[(&str, T)]) -> Result<T, ConfigError> {
    options.iter().find(|(name, _)| name.eq_ignore_ascii_case(value)).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        invalid(var, value, &format!("must be one of {}", names.join(", ")))
    })
}

fn parse<T: FromStr>(var: &str, value: &str, expected: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| invalid(var, value, &format!("must be {expected}")))
}

fn parse_bool(var: &str, value: &str) -> Result<bool, ConfigError> {
    choose(var, value, &[("true", true), ("1", true), ("yes", true), ("false", false), ("0", false), ("no", false)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn local_defaults_are_embedded() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.store, StoreBackend::Embedded);
        assert_eq!(c.env, Env::Dev);
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.mqtt_addr.to_string(), "127.0.0.1:1883");
    }

    #[test]
    fn lambda_defaults_are_aws() {
        let c = Config::from_vars(vars(&[("AWS_LAMBDA_FUNCTION_NAME", "health")])).unwrap();
        assert_eq!(
            (c.store, c.queue, c.devices, c.env),
            (StoreBackend::Dynamodb, QueueBackend::Sqs, DevicesBackend::Aws, Env::Prod)
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = Config::from_vars(vars(&[("PREMISES_STORE", "postgres")])).unwrap_err().to_string();
        assert!(err.starts_with("PREMISES_STORE:"), "{err}");
        assert!(err.contains("embedded, dynamodb"), "{err}");
        let err = Config::from_vars(vars(&[("PREMISES_HTTP_ADDR", "localhost")])).unwrap_err().to_string();
        assert!(err.starts_with("PREMISES_HTTP_ADDR:"), "{err}");
    }

    #[test]
    fn queue_urls_come_from_prefixed_variables() {
        let c = Config::from_vars(vars(&[("PREMISES_QUEUE_URL_BANK_TRANSACTIONS", "http://q/1")])).unwrap();
        assert_eq!(c.queue_urls.get("bank-transactions").map(String::as_str), Some("http://q/1"));
    }
}
