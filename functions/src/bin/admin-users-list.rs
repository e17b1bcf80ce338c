#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::identity::admin::ADMIN_USERS_LIST).await
}
