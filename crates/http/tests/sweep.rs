//! The expired-session sweep that `Gateway::builder` starts for database
//! sessions: expired rows go, live ones stay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use authgate_core::secret::Secret;
use authgate_core::time::{Clock as _, SystemClock, UnixTime};
use authgate_http::{Gateway, GatewaySettings, SessionStrategy};
use authgate_store::{KeyRing, NewUser, Store};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "sweep-tests-secret-at-least-32-chars!!";

async fn exists(store: &dyn Store, token: &Secret, issued: UnixTime) -> bool {
    // Read "as of" the session's creation, so expiry does not hide the row.
    store.find_session(token, issued).await.unwrap().is_some()
}

#[tokio::test]
async fn a_database_gateway_removes_expired_sessions_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyRing::from_secrets(&[SECRET]).unwrap();
    let url = format!("sqlite://{}", dir.path().join("sweep.db").display());
    let store = authgate_store::connect(&url, keys).await.unwrap();
    store.migrate().await.unwrap();
    let user = store
        .create_user(NewUser {
            name: Some("Ann".to_owned()),
            email: None,
            email_verified: None,
            image: None,
        })
        .await
        .unwrap();
    let now = SystemClock.now();
    let issued = now.saturating_sub(Duration::from_secs(7200));
    let expired = store
        .create_session(
            &user.id,
            None,
            issued,
            now.saturating_sub(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let live = store
        .create_session(
            &user.id,
            None,
            issued,
            now.saturating_add(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert!(exists(&*store, &expired.token, issued).await);

    let mut settings = GatewaySettings::new("http://127.0.0.1:1/".parse().unwrap());
    settings.strategy = SessionStrategy::Database;
    let _gateway = Gateway::builder(settings)
        .secrets([Secret::new(SECRET)])
        .uncached_store(Arc::clone(&store))
        .build()
        .unwrap();

    // The first sweep runs as the gateway starts; wait for it (bounded).
    let mut swept = false;
    for _ in 0..200 {
        if !exists(&*store, &expired.token, issued).await {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(swept, "the expired session was not removed");
    assert!(exists(&*store, &live.token, issued).await);
}

#[test]
fn building_outside_a_runtime_is_a_build_error() {
    let keys = KeyRing::from_secrets(&[SECRET]).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store: Arc<dyn Store> = runtime
        .block_on(authgate_store::connect("sqlite::memory:", keys))
        .unwrap();
    let settings = GatewaySettings::new("http://127.0.0.1:1/".parse().unwrap());
    let built = Gateway::builder(settings)
        .secrets([Secret::new(SECRET)])
        .uncached_store(store)
        .build();
    assert!(matches!(built, Err(authgate_http::BuildError::NoRuntime)));
}
