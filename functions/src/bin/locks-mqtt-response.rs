#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::locks::mqtt::LOCKS_MQTT_RESPONSE).await
}
