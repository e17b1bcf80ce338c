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
    /// Local broker: accept clients without credentials, with access to every
    /// topic (`PREMISES_MQTT_ALLOW_ANONYMOUS`, default false; a dev switch, refused in prod).
    pub mqtt_allow_anonymous: bool,
    /// AWS IoT data endpoint (`PREMISES_IOT_ENDPOINT`); looked up with DescribeEndpoint when unset.
    pub iot_endpoint: Option<String>,
    /// IoT policy attached to provisioned device certificates (`PREMISES_IOT_POLICY`, default `premises-device`).
    pub iot_policy: String,
    /// Scheduled jobs run in the local stack (`PREMISES_SCHEDULES`, default true).
    pub run_schedules: bool,
    /// JWT signing keys from `PREMISES_JWT_KEYS` (`kid:secret,…`): the first
    /// signs, all verify. Required in prod; dev and test fall back to a fixed dev key.
    pub jwt_keys: Vec<JwtKey>,
    /// Access-token lifetime (`PREMISES_JWT_ACCESS_TTL_SECS`, default 900).
    pub jwt_access_ttl_secs: i64,
    /// Refresh-token lifetime (`PREMISES_JWT_REFRESH_TTL_SECS`, default 604800).
    pub jwt_refresh_ttl_secs: i64,
    /// The admin the local stack creates at start if absent
    /// (`PREMISES_ADMIN_EMAIL` and `PREMISES_ADMIN_PASSWORD`, both or neither).
    pub admin: Option<AdminAccount>,
    /// Digits of a phone OTP (`PREMISES_OTP_LENGTH`, 4 to 10, default 6).
    pub otp_length: u32,
    /// Seconds an OTP stays valid (`PREMISES_OTP_TTL_SECS`, default 300).
    pub otp_ttl_secs: i64,
    /// Minutes after which a running appliance run counts as stuck and is aborted (`PREMISES_MAX_RUN_MINUTES`, 240).
    pub max_run_minutes: i64,
    /// A lock command without a device response this long is failed with reason `timeout`
    /// (`PREMISES_COMMAND_TIMEOUT_SECONDS`, default 30).
    pub command_timeout_secs: i64,
    /// How notifications leave: email, SMS and Telegram providers.
    pub notify: NotifyConfig,
    /// The bank statement import (Fio banka API).
    pub bank: BankConfig,
}

/// The bank import: `PREMISES_BANK_BASE_URL` (default `https://fioapi.fio.cz`),
/// `PREMISES_BANK_TOKEN` (unset: the scheduled import does nothing),
/// `PREMISES_BANK_CURRENCY` (default `CZK`), `PREMISES_BANK_TIMEOUT_SECS` (default 30).
#[derive(Clone, Debug)]
pub struct BankConfig {
    pub base_url: String,
    pub token: Secret,
    /// Payments in another currency are recorded invalid (`wrong_currency`).
    pub currency: String,
    pub timeout_secs: u64,
}

/// A credential: shown as `<redacted>` in logs and `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailProvider {
    /// The dev outbox (`GET /api/dev/outbox/`).
    Log,
    Ses,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsProvider {
    Log,
    Sns,
    Twilio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TelegramProvider {
    Log,
    Bot,
    /// Telegram messages are not sent (recorded as failed: not configured).
    Off,
}

/// Notification providers (`PREMISES_EMAIL_PROVIDER`, `PREMISES_SMS_PROVIDER`,
/// `PREMISES_TELEGRAM_PROVIDER`): `log` by default in dev and test; `ses`,
/// `sns` and (without a bot token) `off` in prod.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    pub email: EmailProvider,
    /// Sender address (`PREMISES_EMAIL_FROM`).
    pub email_from: String,
    pub sms: SmsProvider,
    /// `PREMISES_TWILIO_BASE_URL` (default `https://api.twilio.com`).
    pub twilio_base_url: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: Secret,
    pub twilio_from: String,
    pub telegram: TelegramProvider,
    /// `PREMISES_TELEGRAM_BASE_URL` (default `https://api.telegram.org`).
    pub telegram_base_url: String,
    pub telegram_bot_token: Secret,
    /// Seconds a provider call may take before it counts as a transient failure (`PREMISES_NOTIFY_TIMEOUT_SECS`, 10).
    pub timeout_secs: u64,
}

/// The bootstrap admin's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for AdminAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminAccount({}, <redacted>)", self.email)
    }
}

/// One HMAC key of `PREMISES_JWT_KEYS`.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtKey {
    pub kid: String,
    pub secret: String,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtKey({}, <redacted>)", self.kid)
    }
}

/// The key dev and test use when `PREMISES_JWT_KEYS` is unset; published
/// (it is in the source), so never accepted in prod, not even when set explicitly.
const DEV_JWT_KEYS: &str = "dev:premises-development-key-not-for-production-use";

/// The secret of [`DEV_JWT_KEYS`].
fn dev_jwt_secret() -> &'static str {
    DEV_JWT_KEYS.split_once(':').map_or(DEV_JWT_KEYS, |(_, secret)| secret)
}

/// Shortest secret `PREMISES_JWT_KEYS` accepts (HS256 wants at least 256 bits).
const MIN_JWT_SECRET_LEN: usize = 32;

fn parse_jwt_keys(value: &str) -> Result<Vec<JwtKey>, ConfigError> {
    const VAR: &str = "PREMISES_JWT_KEYS";
    let mut keys: Vec<JwtKey> = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((kid, secret)) = pair.split_once(':') else {
            return Err(invalid(VAR, "<redacted>", "must be comma-separated kid:secret pairs"));
        };
        let (kid, secret) = (kid.trim(), secret.trim());
        if kid.is_empty() || secret.len() < MIN_JWT_SECRET_LEN {
            return Err(invalid(
                VAR,
                "<redacted>",
                &format!("each key needs a non-empty kid and a secret of at least {MIN_JWT_SECRET_LEN} characters"),
            ));
        }
        if keys.iter().any(|k| k.kid == kid) {
            return Err(invalid(VAR, "<redacted>", &format!("kid {kid:?} appears twice")));
        }
        keys.push(JwtKey { kid: kid.to_string(), secret: secret.to_string() });
    }
    if keys.is_empty() {
        return Err(invalid(VAR, "", "must hold at least one kid:secret pair"));
    }
    Ok(keys)
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

        let jwt_keys = match get("PREMISES_JWT_KEYS") {
            Some(v) => parse_jwt_keys(v)?,
            None if env == Env::Prod => {
                return Err(invalid("PREMISES_JWT_KEYS", "", "is required in prod (comma-separated kid:secret pairs)"));
            }
            None => parse_jwt_keys(DEV_JWT_KEYS)?,
        };
        let ttl = |var: &str, default: &str| -> Result<i64, ConfigError> {
            let value = get(var).unwrap_or(default);
            match value.parse::<i64>() {
                Ok(secs) if secs > 0 => Ok(secs),
                _ => Err(invalid(var, value, "must be a positive integer")),
            }
        };
        let jwt_access_ttl_secs = ttl("PREMISES_JWT_ACCESS_TTL_SECS", "900")?;
        let jwt_refresh_ttl_secs = ttl("PREMISES_JWT_REFRESH_TTL_SECS", "604800")?;

        let admin = match (get("PREMISES_ADMIN_EMAIL"), get("PREMISES_ADMIN_PASSWORD")) {
            (Some(email), Some(password)) => {
                Some(AdminAccount { email: email.to_string(), password: password.to_string() })
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid("PREMISES_ADMIN_PASSWORD", "", "is required when PREMISES_ADMIN_EMAIL is set"));
            }
            (None, Some(_)) => {
                return Err(invalid("PREMISES_ADMIN_EMAIL", "", "is required when PREMISES_ADMIN_PASSWORD is set"));
            }
        };

        let otp_length = get("PREMISES_OTP_LENGTH").unwrap_or("6");
        let otp_length = match otp_length.parse::<u32>() {
            Ok(n) if (4..=10).contains(&n) => n,
            _ => return Err(invalid("PREMISES_OTP_LENGTH", otp_length, "must be a number of digits from 4 to 10")),
        };
        let otp_ttl_secs = ttl("PREMISES_OTP_TTL_SECS", "300")?;
        let max_run_minutes = ttl("PREMISES_MAX_RUN_MINUTES", "240")?;
        let command_timeout_secs = ttl("PREMISES_COMMAND_TIMEOUT_SECONDS", "30")?;
        let notify = notify_config(&get, env)?;
        let bank = bank_config(&get)?;

        let config = Config {
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
                get("PREMISES_MQTT_ALLOW_ANONYMOUS").unwrap_or("false"),
            )?,
            iot_endpoint: get("PREMISES_IOT_ENDPOINT").map(str::to_string),
            iot_policy: get("PREMISES_IOT_POLICY").unwrap_or("premises-device").to_string(),
            run_schedules: parse_bool("PREMISES_SCHEDULES", get("PREMISES_SCHEDULES").unwrap_or("true"))?,
            jwt_keys,
            jwt_access_ttl_secs,
            jwt_refresh_ttl_secs,
            admin,
            otp_length,
            otp_ttl_secs,
            max_run_minutes,
            command_timeout_secs,
            notify,
            bank,
        };
        config.refuse_unsafe_in_prod()?;
        Ok(config)
    }

    /// Prod refuses what publishes secrets or lets anyone in: the dev JWT key,
    /// the `log` notification providers (they log OTP codes), anonymous MQTT.
    fn refuse_unsafe_in_prod(&self) -> Result<(), ConfigError> {
        if self.env != Env::Prod {
            return Ok(());
        }
        if self.uses_dev_jwt_key() {
            return Err(invalid(
                "PREMISES_JWT_KEYS",
                "<redacted>",
                "holds the published dev key, with which anyone can sign tokens; refused in prod",
            ));
        }
        let logs_codes = "writes messages, login codes included, to the log and the dev outbox; refused in prod";
        if self.notify.email == EmailProvider::Log {
            return Err(invalid("PREMISES_EMAIL_PROVIDER", "log", &format!("`log` {logs_codes} (use ses)")));
        }
        if self.notify.sms == SmsProvider::Log {
            return Err(invalid("PREMISES_SMS_PROVIDER", "log", &format!("`log` {logs_codes} (use sns or twilio)")));
        }
        if self.notify.telegram == TelegramProvider::Log {
            return Err(invalid("PREMISES_TELEGRAM_PROVIDER", "log", &format!("`log` {logs_codes} (use bot or off)")));
        }
        if self.mqtt_allow_anonymous {
            return Err(invalid(
                "PREMISES_MQTT_ALLOW_ANONYMOUS",
                "true",
                "lets any client read and publish every device topic; refused in prod",
            ));
        }
        Ok(())
    }

    /// Whether the published dev key is among the JWT keys.
    pub fn uses_dev_jwt_key(&self) -> bool {
        self.jwt_keys.iter().any(|k| k.secret == dev_jwt_secret())
    }

    /// What this dev or test configuration gives away to anyone who can reach a
    /// listener bound beyond loopback (HTTP, or the local MQTT broker): one
    /// message each, for the local stack to log loudly at start. Empty in prod
    /// and when every listener is on loopback.
    pub fn dev_exposure_warnings(&self) -> Vec<String> {
        if self.env == Env::Prod {
            return Vec::new();
        }
        let http_exposed = !self.http_addr.ip().is_loopback();
        let mqtt_exposed = self.devices == DevicesBackend::Local && !self.mqtt_addr.ip().is_loopback();
        if !http_exposed && !mqtt_exposed {
            return Vec::new();
        }
        let mut warnings = Vec::new();
        if http_exposed {
            let env = if self.env == Env::Dev { "dev" } else { "test" };
            warnings.push(format!(
                "PREMISES_HTTP_ADDR={} is reachable beyond this machine while PREMISES_ENV={env}",
                self.http_addr
            ));
            if self.env == Env::Dev {
                warnings.push(
                    "PREMISES_ENV=dev: phone login codes are returned in the API response (dev_otp) and every \
                     message sent is served at GET /api/dev/outbox/"
                        .to_string(),
                );
            }
            let logged: Vec<&str> = [
                ("PREMISES_EMAIL_PROVIDER=log", self.notify.email == EmailProvider::Log),
                ("PREMISES_SMS_PROVIDER=log", self.notify.sms == SmsProvider::Log),
                ("PREMISES_TELEGRAM_PROVIDER=log", self.notify.telegram == TelegramProvider::Log),
            ]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
            if !logged.is_empty() {
                warnings.push(format!(
                    "{}: messages, login codes included, are written to the log instead of being sent",
                    logged.join(", ")
                ));
            }
            if self.uses_dev_jwt_key() {
                warnings.push(
                    "PREMISES_JWT_KEYS: the published dev key signs and verifies tokens, so anyone can forge \
                     an admin's token"
                        .to_string(),
                );
            }
        }
        if mqtt_exposed && self.mqtt_allow_anonymous {
            warnings.push(format!(
                "PREMISES_MQTT_ALLOW_ANONYMOUS=true: any client reaching {} may read and publish every device \
                 topic (lock PINs, appliance tokens)",
                self.mqtt_addr
            ));
        }
        warnings
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

fn bank_config<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<BankConfig, ConfigError> {
    let base_url = get("PREMISES_BANK_BASE_URL").unwrap_or("https://fioapi.fio.cz").trim_end_matches('/').to_string();
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        return Err(invalid("PREMISES_BANK_BASE_URL", &base_url, "must be an http(s) URL"));
    }
    let token = get("PREMISES_BANK_TOKEN").unwrap_or("").to_string();
    if token.contains(['/', '?', '#', ' ']) {
        // The token is a path segment of every request; never echo it back.
        return Err(invalid("PREMISES_BANK_TOKEN", "<redacted>", "must not contain '/', '?', '#' or spaces"));
    }
    let currency = get("PREMISES_BANK_CURRENCY").unwrap_or("CZK").to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(invalid("PREMISES_BANK_CURRENCY", &currency, "must be a three-letter ISO 4217 code such as CZK"));
    }
    let timeout_secs =
        parse("PREMISES_BANK_TIMEOUT_SECS", get("PREMISES_BANK_TIMEOUT_SECS").unwrap_or("30"), "a number of seconds")?;
    if timeout_secs == 0 {
        return Err(invalid("PREMISES_BANK_TIMEOUT_SECS", "0", "must be positive"));
    }
    Ok(BankConfig { base_url, token: Secret(token), currency, timeout_secs })
}

fn notify_config<'a>(get: &impl Fn(&str) -> Option<&'a str>, env: Env) -> Result<NotifyConfig, ConfigError> {
    let prod = env == Env::Prod;
    let email = match get("PREMISES_EMAIL_PROVIDER") {
        None => {
            if prod {
                EmailProvider::Ses
            } else {
                EmailProvider::Log
            }
        }
        Some(v) => choose("PREMISES_EMAIL_PROVIDER", v, &[("log", EmailProvider::Log), ("ses", EmailProvider::Ses)])?,
    };
    let sms = match get("PREMISES_SMS_PROVIDER") {
        None => {
            if prod {
                SmsProvider::Sns
            } else {
                SmsProvider::Log
            }
        }
        Some(v) => choose(
            "PREMISES_SMS_PROVIDER",
            v,
            &[("log", SmsProvider::Log), ("sns", SmsProvider::Sns), ("twilio", SmsProvider::Twilio)],
        )?,
    };
    let telegram_bot_token = get("PREMISES_TELEGRAM_BOT_TOKEN").unwrap_or("").to_string();
    let telegram = match get("PREMISES_TELEGRAM_PROVIDER") {
        None if !telegram_bot_token.is_empty() => TelegramProvider::Bot,
        None => {
            if prod {
                TelegramProvider::Off
            } else {
                TelegramProvider::Log
            }
        }
        Some(v) => choose(
            "PREMISES_TELEGRAM_PROVIDER",
            v,
            &[("log", TelegramProvider::Log), ("bot", TelegramProvider::Bot), ("off", TelegramProvider::Off)],
        )?,
    };
    if telegram == TelegramProvider::Bot && telegram_bot_token.is_empty() {
        return Err(invalid("PREMISES_TELEGRAM_BOT_TOKEN", "", "is required when PREMISES_TELEGRAM_PROVIDER=bot"));
    }
    let required = |var: &str| -> Result<String, ConfigError> {
        match get(var) {
            Some(v) => Ok(v.to_string()),
            None if sms == SmsProvider::Twilio => {
                Err(invalid(var, "", "is required when PREMISES_SMS_PROVIDER=twilio"))
            }
            None => Ok(String::new()),
        }
    };
    Ok(NotifyConfig {
        email,
        email_from: get("PREMISES_EMAIL_FROM").unwrap_or("no-reply@premises.local").to_string(),
        sms,
        twilio_base_url: get("PREMISES_TWILIO_BASE_URL")
            .unwrap_or("https://api.twilio.com")
            .trim_end_matches('/')
            .to_string(),
        twilio_account_sid: required("PREMISES_TWILIO_ACCOUNT_SID")?,
        twilio_auth_token: Secret(required("PREMISES_TWILIO_AUTH_TOKEN")?),
        twilio_from: required("PREMISES_TWILIO_FROM_NUMBER")?,
        telegram,
        telegram_base_url: get("PREMISES_TELEGRAM_BASE_URL")
            .unwrap_or("https://api.telegram.org")
            .trim_end_matches('/')
            .to_string(),
        telegram_bot_token: Secret(telegram_bot_token),
        timeout_secs: parse(
            "PREMISES_NOTIFY_TIMEOUT_SECS",
            get("PREMISES_NOTIFY_TIMEOUT_SECS").unwrap_or("10"),
            "a number of seconds",
        )?,
    })
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
        let key = "k1:0123456789abcdef0123456789abcdef";
        let c = Config::from_vars(vars(&[("AWS_LAMBDA_FUNCTION_NAME", "health"), ("PREMISES_JWT_KEYS", key)])).unwrap();
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
    fn prod_without_jwt_keys_fails_naming_the_variable() {
        let err = Config::from_vars(vars(&[("PREMISES_ENV", "prod")])).unwrap_err().to_string();
        assert!(err.starts_with("PREMISES_JWT_KEYS:"), "{err}");
    }

    #[test]
    fn jwt_keys_are_parsed_in_order_and_secrets_stay_out_of_errors() {
        let c = Config::from_vars(vars(&[(
            "PREMISES_JWT_KEYS",
            "new:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb, old:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )]))
        .unwrap();
        let kids: Vec<&str> = c.jwt_keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["new", "old"]);
        let err = Config::from_vars(vars(&[("PREMISES_JWT_KEYS", "k:short")])).unwrap_err().to_string();
        assert!(err.starts_with("PREMISES_JWT_KEYS:") && !err.contains("short"), "{err}");
    }

    #[test]
    fn dev_falls_back_to_the_dev_jwt_key() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.jwt_keys.len(), 1);
        assert_eq!(c.jwt_access_ttl_secs, 900);
        assert_eq!(c.jwt_refresh_ttl_secs, 604800);
    }

    #[test]
    fn an_admin_email_without_a_password_names_the_missing_variable() {
        let err = Config::from_vars(vars(&[("PREMISES_ADMIN_EMAIL", "a@example.com")])).unwrap_err().to_string();
        assert!(err.starts_with("PREMISES_ADMIN_PASSWORD:"), "{err}");
    }

    const PROD_KEY: &str = "k1:0123456789abcdef0123456789abcdef";

    fn prod(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut pairs = vec![("PREMISES_ENV", "prod"), ("PREMISES_JWT_KEYS", PROD_KEY)];
        pairs.extend_from_slice(extra);
        Config::from_vars(vars(&pairs))
    }

    #[test]
    fn prod_with_its_defaults_starts() {
        let c = prod(&[]).unwrap();
        assert_eq!(
            (c.notify.email, c.notify.sms, c.notify.telegram),
            (EmailProvider::Ses, SmsProvider::Sns, TelegramProvider::Off)
        );
        assert!(!c.mqtt_allow_anonymous && !c.uses_dev_jwt_key());
    }

    #[test]
    fn prod_refuses_the_published_dev_jwt_key_even_when_set_explicitly() {
        for keys in [
            DEV_JWT_KEYS,
            "other:premises-development-key-not-for-production-use",
            &format!("{PROD_KEY},{DEV_JWT_KEYS}"),
        ] {
            let err = prod(&[("PREMISES_JWT_KEYS", keys)]).unwrap_err().to_string();
            assert!(err.starts_with("PREMISES_JWT_KEYS:") && err.contains("dev key"), "{err}");
            assert!(!err.contains("premises-development-key"), "the secret stays out of the message: {err}");
        }
        // Dev and test still accept it.
        let c = Config::from_vars(vars(&[("PREMISES_JWT_KEYS", DEV_JWT_KEYS)])).unwrap();
        assert!(c.uses_dev_jwt_key());
    }

    #[test]
    fn prod_refuses_the_log_providers_that_log_login_codes() {
        for var in ["PREMISES_EMAIL_PROVIDER", "PREMISES_SMS_PROVIDER", "PREMISES_TELEGRAM_PROVIDER"] {
            let err = prod(&[(var, "log")]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{var}:")) && err.contains("login codes"), "{err}");
        }
    }

    #[test]
    fn prod_refuses_anonymous_mqtt() {
        let err = prod(&[("PREMISES_MQTT_ALLOW_ANONYMOUS", "true")]).unwrap_err().to_string();
        assert!(err.starts_with("PREMISES_MQTT_ALLOW_ANONYMOUS:"), "{err}");
        assert!(!prod(&[("PREMISES_MQTT_ALLOW_ANONYMOUS", "false")]).unwrap().mqtt_allow_anonymous);
    }

    #[test]
    fn anonymous_mqtt_is_off_unless_switched_on() {
        assert!(!Config::from_vars(vars(&[])).unwrap().mqtt_allow_anonymous);
        assert!(!Config::for_tests(PathBuf::from("x")).mqtt_allow_anonymous);
        assert!(Config::from_vars(vars(&[("PREMISES_MQTT_ALLOW_ANONYMOUS", "true")])).unwrap().mqtt_allow_anonymous);
    }

    #[test]
    fn dev_on_loopback_has_nothing_to_warn_about() {
        let c = Config::from_vars(vars(&[("PREMISES_MQTT_ALLOW_ANONYMOUS", "true")])).unwrap();
        assert_eq!(c.dev_exposure_warnings(), Vec::<String>::new());
    }

    #[test]
    fn dev_on_a_public_address_warns_of_codes_the_dev_key_and_anonymous_mqtt() {
        let c = Config::from_vars(vars(&[
            ("PREMISES_HTTP_ADDR", "0.0.0.0:3000"),
            ("PREMISES_MQTT_ADDR", "0.0.0.0:1883"),
            ("PREMISES_MQTT_ALLOW_ANONYMOUS", "true"),
        ]))
        .unwrap();
        let warnings = c.dev_exposure_warnings().join("\n");
        for expected in [
            "PREMISES_HTTP_ADDR=0.0.0.0:3000",
            "dev_otp",
            "/api/dev/outbox/",
            "PREMISES_EMAIL_PROVIDER=log, PREMISES_SMS_PROVIDER=log, PREMISES_TELEGRAM_PROVIDER=log",
            "PREMISES_JWT_KEYS",
            "PREMISES_MQTT_ALLOW_ANONYMOUS=true",
        ] {
            assert!(warnings.contains(expected), "{expected:?} missing from:\n{warnings}");
        }
        assert!(!warnings.contains("premises-development-key"), "{warnings}");
    }

    #[test]
    fn only_what_is_exposed_is_warned_about() {
        // The broker alone beyond loopback: anonymous MQTT, not the HTTP conveniences.
        let c = Config::from_vars(vars(&[
            ("PREMISES_MQTT_ADDR", "0.0.0.0:1883"),
            ("PREMISES_MQTT_ALLOW_ANONYMOUS", "true"),
        ]))
        .unwrap();
        let warnings = c.dev_exposure_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("PREMISES_MQTT_ALLOW_ANONYMOUS=true"), "{warnings:?}");
        // HTTP beyond loopback with real keys and providers: only the address and dev mode itself.
        let c = Config::from_vars(vars(&[
            ("PREMISES_HTTP_ADDR", "192.0.2.1:3000"),
            ("PREMISES_JWT_KEYS", PROD_KEY),
            ("PREMISES_EMAIL_PROVIDER", "ses"),
            ("PREMISES_SMS_PROVIDER", "sns"),
            ("PREMISES_TELEGRAM_PROVIDER", "off"),
        ]))
        .unwrap();
        let warnings = c.dev_exposure_warnings().join("\n");
        assert!(
            warnings.contains("dev_otp") && !warnings.contains("PREMISES_JWT_KEYS") && !warnings.contains("=log"),
            "{warnings}"
        );
        assert!(!warnings.contains("PREMISES_MQTT_ALLOW_ANONYMOUS"), "{warnings}");
        // Prod never warns: it refuses instead.
        let c = prod(&[("PREMISES_HTTP_ADDR", "0.0.0.0:3000")]).unwrap();
        assert!(c.dev_exposure_warnings().is_empty());
    }

    #[test]
    fn queue_urls_come_from_prefixed_variables() {
        let c = Config::from_vars(vars(&[("PREMISES_QUEUE_URL_BANK_TRANSACTIONS", "http://q/1")])).unwrap();
        assert_eq!(c.queue_urls.get("bank-transactions").map(String::as_str), Some("http://q/1"));
    }
}
