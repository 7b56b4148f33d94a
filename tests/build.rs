//! Marks PostgreSQL end-to-end tests as ignored (listed as skipped, with the reason)
//! unless ADP_TEST_DATABASE_URL is set when the tests are built.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(adp_postgres)");
    println!("cargo::rerun-if-env-changed=ADP_TEST_DATABASE_URL");
    if std::env::var_os("ADP_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=adp_postgres");
    }
}
