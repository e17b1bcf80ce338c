#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("locks-command-timeouts").await
}
