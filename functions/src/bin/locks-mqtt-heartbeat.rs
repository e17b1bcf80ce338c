#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::catalog::LOCKS_MQTT_HEARTBEAT).await
}
