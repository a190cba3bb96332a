//! Opening stores by URL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test bodies are plain async fns

mod common;

use authgate_store::{Backend, StoreError, connect};
use common::{keys, service_url, user};

#[tokio::test]
async fn sqlite_url_creates_the_file_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested-name.db");
    assert!(!path.exists());
    let store = connect(&format!("sqlite://{}", path.display()), keys())
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    user(&*store, "file@example.test").await;
    assert!(path.exists());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    pool.close().await;
}

/// The only test in this binary that changes the working directory; the
/// others use absolute paths.
#[tokio::test]
async fn relative_sqlite_path_is_relative_to_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let result = connect("sqlite://authgate-relative.db", keys()).await;
    std::env::set_current_dir(previous).unwrap();
    let store = result.unwrap();
    store.migrate().await.unwrap();
    assert!(dir.path().join("authgate-relative.db").exists());
}

#[tokio::test]
async fn in_memory_sqlite_works_for_demos() {
    let store = connect("sqlite::memory:", keys()).await.unwrap();
    store.migrate().await.unwrap();
    let u = user(&*store, "mem@example.test").await;
    assert_eq!(store.find_user(&u.id).await.unwrap(), Some(u));
}

#[tokio::test]
async fn postgres_url_selects_the_postgres_backend() {
    let Some(url) = service_url("AUTHGATE_TEST_POSTGRES_URL") else {
        return;
    };
    let store = connect(&url, keys()).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
}

#[tokio::test]
async fn unknown_schemes_are_refused_without_echoing_passwords() {
    let err = connect("mysql://user:hunter2@db/authgate", keys())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
