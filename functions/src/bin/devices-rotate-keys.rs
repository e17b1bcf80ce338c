#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::locks::handlers::DEVICES_ROTATE_KEYS).await
}
