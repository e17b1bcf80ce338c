#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("auth-verify-otp").await
}
