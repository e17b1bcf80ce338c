#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("devices-create").await
}
