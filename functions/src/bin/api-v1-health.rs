#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("api-v1-health").await
}
