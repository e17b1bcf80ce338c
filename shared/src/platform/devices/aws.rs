//! AWS devices: AWS IoT Core.
//!
//! Messages and shadows go through the IoT data plane, which lives on the
//! account's own endpoint. In order of precedence that endpoint is
//! `PREMISES_IOT_ENDPOINT` (a host name or URL), an endpoint the SDK
//! configuration already names (`AWS_ENDPOINT_URL_IOT_DATA_PLANE`,
//! `AWS_ENDPOINT_URL`, an explicit `endpoint_url`, as tests pointing at moto
//! do), or the answer of `DescribeEndpoint` (`iot:Data-ATS`), asked once.
//!
//! Provisioning creates the thing (idempotent), a fresh active certificate
//! with its key, attaches the device policy (`PREMISES_IOT_POLICY`, default
//! `premises-device`; when the policy does not exist, a warning is logged and
//! the certificate stays without a policy, which AWS IoT then refuses to
//! connect: deploy the policy with the stack) and then revokes every other
//! certificate of the thing (deactivate, detach, delete), so provisioning
//! again rotates the keys. The deletion of a revoked certificate may fail
//! while AWS propagates the detachment; that is retried a few times, then
//! logged and left (the certificate is inactive already). Deprovisioning
//! revokes every certificate the same way, strictly, and deletes the thing.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_iot::error::ProvideErrorMetadata;
use aws_sdk_iot::types::CertificateStatus;
use aws_sdk_iotdataplane::primitives::Blob;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Credentials, DevicesError, Shadow, validate_publish, validate_thing_name};

/// Attempts of a deletion that AWS may refuse until a detachment propagates.
const DELETE_ATTEMPTS: u32 = 5;

#[derive(Clone)]
pub struct AwsDevices {
    inner: Arc<Inner>,
}

struct Inner {
    iot: aws_sdk_iot::Client,
    sdk: aws_config::SdkConfig,
    /// `PREMISES_IOT_ENDPOINT`, as given.
    configured_endpoint: Option<String>,
    /// The data endpoint's host name, for devices.
    device_endpoint: OnceCell<String>,
    data: OnceCell<aws_sdk_iotdataplane::Client>,
    policy_name: String,
}

impl AwsDevices {
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: Option<String>, policy_name: String) -> Self {
        let configured_endpoint = endpoint.map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
        // Built now when the endpoint is known; otherwise on first use, after DescribeEndpoint.
        let data = match (&configured_endpoint, sdk_names_data_endpoint(sdk)) {
            (Some(endpoint), _) => OnceCell::new_with(Some(data_client(sdk, Some(endpoint_url(endpoint))))),
            (None, true) => OnceCell::new_with(Some(data_client(sdk, None))),
            (None, false) => OnceCell::new(),
        };
        let device_endpoint = match &configured_endpoint {
            Some(endpoint) => OnceCell::new_with(Some(endpoint_host(endpoint))),
            None => OnceCell::new(),
        };
        AwsDevices {
            inner: Arc::new(Inner {
                iot: aws_sdk_iot::Client::new(sdk),
                sdk: sdk.clone(),
                configured_endpoint,
                device_endpoint,
                data,
                policy_name,
            }),
        }
    }

    pub async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), DevicesError> {
        validate_publish(topic, payload)?;
        self.data()
            .await?
            .publish()
            .topic(topic)
            .qos(1)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| backend("iot-data Publish", e))?;
        Ok(())
    }

    pub async fn update_desired(&self, thing: &str, desired: Value) -> Result<(), DevicesError> {
        validate_thing_name(thing)?;
        if !(desired.is_object() || desired.is_null()) {
            return Err(DevicesError::Invalid("the desired state must be a JSON object or null".to_string()));
        }
        let document = json!({"state": {"desired": desired}});
        let result = self
            .data()
            .await?
            .update_thing_shadow()
            .thing_name(thing)
            .payload(Blob::new(document.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Not in the API model, but what moto answers for a thing that does not exist.
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                Err(DevicesError::UnknownThing(thing.to_string()))
            }
            Err(e) => Err(backend("iot-data UpdateThingShadow", e)),
        }
    }

    pub async fn shadow(&self, thing: &str) -> Result<Option<Shadow>, DevicesError> {
        validate_thing_name(thing)?;
        let result = self.data().await?.get_thing_shadow().thing_name(thing).send().await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(backend("iot-data GetThingShadow", e)),
        };
        let Some(payload) = output.payload() else { return Ok(None) };
        let document: Value = serde_json::from_slice(payload.as_ref()).map_err(|e| {
            DevicesError::Backend(anyhow::Error::new(e).context("GetThingShadow returned invalid JSON"))
        })?;
        let section = |name: &str| document.pointer(&format!("/state/{name}")).cloned().unwrap_or(Value::Null);
        Ok(Some(Shadow {
            reported: section("reported"),
            desired: section("desired"),
            version: document.get("version").and_then(Value::as_u64).unwrap_or(0),
        }))
    }

    pub async fn provision(&self, thing: &str) -> Result<Credentials, DevicesError> {
        validate_thing_name(thing)?;
        let iot = &self.inner.iot;
        match iot.create_thing().thing_name(thing).send().await {
            Ok(_) => {}
            // Only raised when the thing exists with other attributes: it exists, which is what we need.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_already_exists_exception()) => {}
            Err(e) => return Err(backend("iot CreateThing", e)),
        }
        let endpoint = self.device_endpoint().await?;
        let keys = iot
            .create_keys_and_certificate()
            .set_as_active(true)
            .send()
            .await
            .map_err(|e| backend("iot CreateKeysAndCertificate", e))?;
        let missing =
            |what: &str| DevicesError::Backend(anyhow::anyhow!("CreateKeysAndCertificate returned no {what}"));
        let certificate_arn = keys.certificate_arn().ok_or_else(|| missing("certificate ARN"))?.to_string();
        let certificate_id = keys.certificate_id().ok_or_else(|| missing("certificate id"))?.to_string();
        let certificate_pem = keys.certificate_pem().ok_or_else(|| missing("certificate"))?.to_string();
        let private_key =
            keys.key_pair().and_then(|k| k.private_key()).ok_or_else(|| missing("private key"))?.to_string();

        let policy = &self.inner.policy_name;
        match iot.attach_policy().policy_name(policy).target(&certificate_arn).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                tracing::warn!(
                    policy = %policy,
                    thing,
                    "the IoT policy does not exist: the new certificate has no policy and cannot connect until it is attached"
                );
            }
            Err(e) => return Err(backend("iot AttachPolicy", e)),
        }
        iot.attach_thing_principal()
            .thing_name(thing)
            .principal(&certificate_arn)
            .send()
            .await
            .map_err(|e| backend("iot AttachThingPrincipal", e))?;

        // Rotation: the earlier certificates of the thing stop working now.
        for principal in self.principals(thing).await?.unwrap_or_default() {
            if principal != certificate_arn {
                self.revoke(thing, &principal, false).await?;
            }
        }

        Ok(Credentials {
            thing_name: thing.to_string(),
            client_id: thing.to_string(),
            endpoint,
            certificate_pem: Some(certificate_pem),
            private_key: Some(private_key),
            certificate_id: Some(certificate_id),
            username: None,
            password: None,
        })
    }

    /// Deactivates, detaches and deletes every certificate of the thing, then
    /// the thing; an unknown thing is already gone.
    pub async fn deprovision(&self, thing: &str) -> Result<(), DevicesError> {
        validate_thing_name(thing)?;
        let Some(principals) = self.principals(thing).await? else { return Ok(()) };
        for principal in &principals {
            self.revoke(thing, principal, true).await?;
        }
        let iot = &self.inner.iot;
        retry_deletion("iot DeleteThing", || async {
            match iot.delete_thing().thing_name(thing).send().await {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
                Err(e) => {
                    // "still attached" while a detachment propagates.
                    let retry = e.as_service_error().is_some_and(|e| e.is_invalid_request_exception())
                        || e.code() == Some("ThingStillAttached");
                    Err((retry, backend("iot DeleteThing", e)))
                }
            }
        })
        .await
    }

    /// Takes a principal away from the thing: a certificate is deactivated
    /// (from then on it cannot connect), detached and deleted. When deleting
    /// is not `strict`, a failed deletion is only logged.
    async fn revoke(&self, thing: &str, principal: &str, strict: bool) -> Result<(), DevicesError> {
        let certificate_id = certificate_id_of(principal);
        if let Some(id) = certificate_id {
            self.deactivate(id).await?;
        }
        self.detach(thing, principal).await?;
        let Some(id) = certificate_id else { return Ok(()) };
        // `forceDelete` would detach the policies too; detaching them first
        // also keeps moto consistent (it leaves force-deleted certificates in
        // its policy attachments, which then fail every later deletion).
        self.detach_policies(principal).await?;
        let iot = &self.inner.iot;
        let deleted = retry_deletion("iot DeleteCertificate", || async {
            match iot.delete_certificate().certificate_id(id).force_delete(true).send().await {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
                Err(e) => {
                    let retry = e.as_service_error().is_some_and(|e| e.is_delete_conflict_exception());
                    Err((retry, backend("iot DeleteCertificate", e)))
                }
            }
        })
        .await;
        match deleted {
            Err(e) if !strict => {
                tracing::warn!(thing, certificate_id = id, error = %format!("{e:#}"), "a revoked (inactive) certificate could not be deleted");
                Ok(())
            }
            other => other,
        }
    }

    /// The thing's principals (certificate ARNs); `None` when the thing does not exist.
    async fn principals(&self, thing: &str) -> Result<Option<Vec<String>>, DevicesError> {
        let mut principals = Vec::new();
        let mut next_token = None;
        loop {
            let result =
                self.inner.iot.list_thing_principals().thing_name(thing).set_next_token(next_token).send().await;
            let page = match result {
                Ok(page) => page,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                    return Ok(None);
                }
                Err(e) => return Err(backend("iot ListThingPrincipals", e)),
            };
            principals.extend(page.principals().iter().cloned());
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(Some(principals)),
            }
        }
    }

    async fn deactivate(&self, certificate_id: &str) -> Result<(), DevicesError> {
        let result = self
            .inner
            .iot
            .update_certificate()
            .certificate_id(certificate_id)
            .new_status(CertificateStatus::Inactive)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(backend("iot UpdateCertificate", e)),
        }
    }

    async fn detach_policies(&self, certificate_arn: &str) -> Result<(), DevicesError> {
        let iot = &self.inner.iot;
        let mut marker = None;
        loop {
            let result = iot.list_attached_policies().target(certificate_arn).set_marker(marker).send().await;
            let page = match result {
                Ok(page) => page,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => return Ok(()),
                Err(e) => return Err(backend("iot ListAttachedPolicies", e)),
            };
            for name in page.policies().iter().filter_map(|p| p.policy_name()) {
                match iot.detach_policy().policy_name(name).target(certificate_arn).send().await {
                    Ok(_) => {}
                    Err(e) if e.code() == Some("ResourceNotFoundException") => {}
                    Err(e) => return Err(backend("iot DetachPolicy", e)),
                }
            }
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => return Ok(()),
            }
        }
    }

    async fn detach(&self, thing: &str, principal: &str) -> Result<(), DevicesError> {
        let result = self.inner.iot.detach_thing_principal().thing_name(thing).principal(principal).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(backend("iot DetachThingPrincipal", e)),
        }
    }

    /// The IoT data-plane client, built on first use when the endpoint must be looked up.
    async fn data(&self) -> Result<&aws_sdk_iotdataplane::Client, DevicesError> {
        self.inner
            .data
            .get_or_try_init(|| async {
                let host = self.device_endpoint().await?;
                Ok(data_client(&self.inner.sdk, Some(endpoint_url(&host))))
            })
            .await
    }

    /// The data endpoint's host name: `PREMISES_IOT_ENDPOINT`, else DescribeEndpoint (once).
    async fn device_endpoint(&self) -> Result<String, DevicesError> {
        let inner = &self.inner;
        let host = inner
            .device_endpoint
            .get_or_try_init(|| async {
                if let Some(endpoint) = &inner.configured_endpoint {
                    return Ok(endpoint_host(endpoint));
                }
                let output = inner
                    .iot
                    .describe_endpoint()
                    .endpoint_type("iot:Data-ATS")
                    .send()
                    .await
                    .map_err(|e| backend("iot DescribeEndpoint", e))?;
                output.endpoint_address().map(str::to_string).ok_or_else(|| {
                    DevicesError::Backend(anyhow::anyhow!("DescribeEndpoint returned no endpoint address"))
                })
            })
            .await?;
        Ok(host.clone())
    }
}

/// Whether the SDK configuration already points the data plane somewhere
/// (then `DescribeEndpoint`, whose answer would be AWS's host, must not override it).
fn sdk_names_data_endpoint(sdk: &aws_config::SdkConfig) -> bool {
    let env_names = ["AWS_ENDPOINT_URL_IOT_DATA_PLANE", "AWS_ENDPOINT_URL"];
    sdk.endpoint_url().is_some() || env_names.iter().any(|v| std::env::var(v).is_ok_and(|v| !v.trim().is_empty()))
}

fn data_client(sdk: &aws_config::SdkConfig, endpoint_url: Option<String>) -> aws_sdk_iotdataplane::Client {
    let mut config = aws_sdk_iotdataplane::config::Builder::from(sdk);
    if let Some(url) = endpoint_url {
        config = config.endpoint_url(url);
    }
    aws_sdk_iotdataplane::Client::from_conf(config.build())
}

/// `https://<host>` for a bare host name; URLs stay as given.
fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") { endpoint.to_string() } else { format!("https://{endpoint}") }
}

/// The host name of an endpoint given as a host or a URL.
fn endpoint_host(endpoint: &str) -> String {
    let without_scheme = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    let authority = without_scheme.split('/').next().unwrap_or(without_scheme);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.is_empty() => host.to_string(),
        _ => authority.to_string(),
    }
}

/// `arn:aws:iot:<region>:<account>:cert/<id>` → `<id>`.
fn certificate_id_of(principal: &str) -> Option<&str> {
    principal.split_once(":cert/").map(|(_, id)| id).filter(|id| !id.is_empty())
}

/// Retries a deletion AWS refuses until an earlier detachment has propagated
/// (the error says whether a retry may help).
async fn retry_deletion<F, Fut>(what: &str, mut attempt: F) -> Result<(), DevicesError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), (bool, DevicesError)>>,
{
    for n in 1..=DELETE_ATTEMPTS {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err((true, e)) if n < DELETE_ATTEMPTS => {
                tracing::debug!(operation = what, attempt = n, error = %format!("{e:#}"), "retrying a deletion");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(n))).await;
            }
            Err((_, e)) => return Err(e),
        }
    }
    Err(DevicesError::Backend(anyhow::anyhow!("giving up on {what} after {DELETE_ATTEMPTS} attempts")))
}

fn backend<E>(operation: &'static str, error: E) -> DevicesError
where
    E: std::error::Error + Send + Sync + 'static,
{
    DevicesError::Backend(anyhow::Error::new(error).context(operation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_read_as_hosts_or_urls() {
        assert_eq!(endpoint_url("abc-ats.iot.us-east-1.amazonaws.com"), "https://abc-ats.iot.us-east-1.amazonaws.com");
        assert_eq!(endpoint_url("http://127.0.0.1:5002"), "http://127.0.0.1:5002");
        assert_eq!(endpoint_host("abc-ats.iot.us-east-1.amazonaws.com"), "abc-ats.iot.us-east-1.amazonaws.com");
        assert_eq!(
            endpoint_host("https://abc-ats.iot.eu-west-1.amazonaws.com:443/"),
            "abc-ats.iot.eu-west-1.amazonaws.com"
        );
        assert_eq!(endpoint_host("http://127.0.0.1:5002"), "127.0.0.1");
    }

    #[test]
    fn certificate_ids_come_from_certificate_arns_only() {
        assert_eq!(certificate_id_of("arn:aws:iot:us-east-1:123456789012:cert/abc123"), Some("abc123"));
        assert_eq!(certificate_id_of("us-east-1:identity-pool-id"), None);
    }
}
