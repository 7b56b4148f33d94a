//! Fresh PostgreSQL databases for tests, on the server named by ADP_TEST_DATABASE_URL.

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = std::env::var("ADP_TEST_DATABASE_URL").expect("ADP_TEST_DATABASE_URL");
    let name = format!("adp_e2e_{}", uuid::Uuid::new_v4().simple());
    let status = tokio::process::Command::new("psql")
        .arg(&admin_url)
        .arg("-qc")
        .arg(format!("CREATE DATABASE {name}"))
        .status()
        .await
        .expect("psql runs");
    assert!(status.success(), "CREATE DATABASE failed");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database path");
    format!("{base}/{name}")
}
