#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::catalog::AUTH_VERIFY_OTP).await
}
