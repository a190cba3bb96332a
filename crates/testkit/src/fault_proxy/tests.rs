use super::*;

/// A tiny upstream that answers every request with a JSON document naming its own origin.
async fn upstream() -> (Url, JoinHandle<()>) {
    let (url, task, _) = counting_upstream().await;
    (url, task)
}

/// [`upstream`], also counting the requests it answered.
async fn counting_upstream() -> (Url, JoinHandle<()>, Arc<AtomicU64>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let url = Url::parse(&origin).unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let origin = origin.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(req) = read_request(&mut stream, &mut buf).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = format!(
                        r#"{{"issuer":"{origin}","token_endpoint":"{origin}/token","path":"{}","body":"{}"}}"#,
                        req.target,
                        String::from_utf8_lossy(&req.body)
                    );
                    if !write_response(&mut stream, &Response::json(200, &body), false).await {
                        return;
                    }
                }
            });
        }
    });
    (url, task, served)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test]
async fn passes_through_scripts_faults_and_counts() {
    let (up, _task) = upstream().await;
    let proxy = FaultProxy::start(up).await;
    let http = client();
    let token = proxy.token_endpoint();

    let r = http.post(token.clone()).body("a=1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/token");
    assert_eq!(v["body"], "a=1");

    proxy.fail_next(2, Fault::Status(503));
    for _ in 0..2 {
        let r = http.post(token.clone()).send().await.unwrap();
        assert_eq!(r.status(), 503);
    }
    assert_eq!(http.post(token.clone()).send().await.unwrap().status(), 200);

    proxy.set(Fault::TooManyRequests {
        retry_after_secs: 7,
    });
    let r = http.post(token.clone()).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");

    proxy.set(Fault::GitHubBadRefreshToken);
    let r = http.post(token.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("bad_refresh_token"));

    proxy.set(Fault::Reset);
    assert!(http.post(token.clone()).send().await.is_err());
    proxy.set(Fault::Hang);
    let e = http.post(token.clone()).send().await.unwrap_err();
    assert!(e.is_timeout(), "{e}");

    // Other paths always pass through.
    let other = proxy.url().join("/jwks").unwrap();
    assert_eq!(http.get(other).send().await.unwrap().status(), 200);

    let stats = proxy.stats();
    assert_eq!(stats.requests, 9);
    assert_eq!(stats.token_requests, 8);
    assert_eq!(stats.token_forwarded, 2);
    assert_eq!(stats.token_faulted, 6);
}

#[tokio::test]
async fn a_delayed_answer_reaches_the_upstream_first() {
    let (up, _task, served) = counting_upstream().await;
    let proxy = FaultProxy::start(up).await;
    proxy.fail_next(1, Fault::DelayAnswer(Duration::from_millis(300)));
    let http = client();
    let request = tokio::spawn(http.post(proxy.token_endpoint()).send());
    for _ in 0..100 {
        if served.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(served.load(Ordering::SeqCst), 1, "processed upstream");
    assert!(!request.is_finished(), "while the answer is held back");
    assert_eq!(request.await.unwrap().unwrap().status(), 200);
    assert_eq!(proxy.stats().token_forwarded, 1);
}

#[tokio::test]
async fn discovery_documents_point_at_the_proxy() {
    let (up, _task) = upstream().await;
    let proxy = FaultProxy::start(up).await;
    let doc: serde_json::Value = client()
        .get(
            proxy
                .url()
                .join("/.well-known/openid-configuration")
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let own = proxy.url().as_str().trim_end_matches('/').to_owned();
    assert_eq!(doc["issuer"], own.as_str());
    assert_eq!(doc["token_endpoint"], proxy.token_endpoint().as_str());
}
