#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::catalog::APPLIANCE_MQTT_STATUS).await
}
