#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::catalog::CIRCLE_AUTH_LOGIN).await
}
