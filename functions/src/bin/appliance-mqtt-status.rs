#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::appliances::mqtt::APPLIANCE_MQTT_STATUS).await
}
