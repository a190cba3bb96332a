//! The deployment files in `deploy/` checked against the gateway they deploy:
//! the Kubernetes manifests' `AUTHGATE_*` variables go through the real
//! configuration loader, their probes are asked of the real router on the
//! configured port, the grace period is compared with the binary's drain
//! deadline (`authgate::app::drain_timeout`), and the ingress snippets and
//! the systemd unit are held to what docs/deploy.md promises.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use authgate::app::{App, Migrations, drain_timeout};
use authgate_config::{Config, env_var_for, is_config_env_var};
use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use serde_json::Value;

/// `AUTHGATE_*` names that are not configuration keys but are read by the binary.
const PROCESS_VARIABLES: [&str; 2] = ["AUTHGATE_LOG", "AUTHGATE_CONFIG"];

/// The placeholder every committed secret value carries.
const PLACEHOLDER: &str = "REPLACE-ME";

/// The headers authgate answers forward-auth with (README, docs/forward-auth.md).
const IDENTITY_HEADERS: [&str; 5] = [
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Name",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-Groups",
];

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every YAML document of a file, as JSON values.
fn documents(relative: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"))
}

fn text<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {value}"))
}

fn number(value: &Value, pointer: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in {value}"))
}

/// The objects `kubectl apply -k deploy/kubernetes` creates, plus the Secret's example.
struct Manifests {
    objects: Vec<Value>,
    secret: Value,
}

impl Manifests {
    fn load() -> Manifests {
        let kustomization = documents("deploy/kubernetes/kustomization.yaml").remove(0);
        let resources = kustomization["resources"].as_array().unwrap();
        let mut objects = Vec::new();
        for resource in resources {
            let file = format!("deploy/kubernetes/{}", resource.as_str().unwrap());
            for object in documents(&file) {
                for field in ["/apiVersion", "/kind", "/metadata/name"] {
                    text(&object, field);
                }
                objects.push(object);
            }
        }
        let mut secrets = documents("deploy/kubernetes/secret.example.yaml");
        assert_eq!(secrets.len(), 1);
        Manifests {
            objects,
            secret: secrets.remove(0),
        }
    }

    fn get(&self, kind: &str) -> &Value {
        let found: Vec<&Value> = self
            .objects
            .iter()
            .filter(|o| text(o, "/kind") == kind)
            .collect();
        assert_eq!(found.len(), 1, "exactly one {kind} in deploy/kubernetes");
        found[0]
    }

    fn deployment(&self) -> &Value {
        self.get("Deployment")
    }

    fn pod(&self) -> &Value {
        &self.deployment()["spec"]["template"]["spec"]
    }

    fn gateway_container(&self) -> &Value {
        let containers = self.pod()["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "one container: the gateway");
        &containers[0]
    }

    fn config_map_env(&self) -> BTreeMap<String, String> {
        string_map(&self.get("ConfigMap")["data"])
    }

    fn secret_env(&self) -> BTreeMap<String, String> {
        assert_eq!(text(&self.secret, "/kind"), "Secret");
        assert!(
            self.secret.get("data").is_none(),
            "the example Secret uses stringData"
        );
        string_map(&self.secret["stringData"])
    }

    /// The Secret with each placeholder replaced by a value of the right shape
    /// (what an operator does when creating it).
    fn filled_secret_env(&self) -> BTreeMap<String, String> {
        self.secret_env()
            .into_iter()
            .map(|(name, value)| {
                let filled = value.replace(PLACEHOLDER, "k8s-test-filled-secret-value-0123456789");
                (name, filled)
            })
            .collect()
    }

    /// The configuration the pods load: the ConfigMap and the Secret, as `envFrom`.
    fn config(&self) -> Config {
        self.config_with(BTreeMap::new())
    }

    fn config_with(&self, overrides: BTreeMap<String, String>) -> Config {
        let mut env = self.config_map_env();
        env.extend(self.filled_secret_env());
        env.extend(overrides);
        Config::from_sources(None, env)
            .unwrap_or_else(|e| panic!("the manifests' configuration: {e}"))
    }
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("{k}: Kubernetes wants a string, got {v}"));
            (k.clone(), v.to_owned())
        })
        .collect()
}

/// A container port by number or by name.
fn resolve_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port.as_str().unwrap();
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| number(p, "/containerPort"))
        .unwrap_or_else(|| panic!("no container port named {name:?}"))
}

/// The image's user (`nonroot` in deploy/image/etc/passwd) as uid, gid.
fn image_user() -> (u64, u64) {
    let passwd = read("deploy/image/etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("nonroot:"))
        .expect("a nonroot user");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

#[test]
fn every_authgate_variable_is_a_configuration_key_or_a_process_setting() {
    let manifests = Manifests::load();
    let mut names: Vec<String> = manifests.config_map_env().into_keys().collect();
    names.extend(manifests.secret_env().into_keys());
    for name in &names {
        assert!(
            name.starts_with("AUTHGATE_"),
            "{name}: not an authgate variable"
        );
        assert!(
            is_config_env_var(name) || PROCESS_VARIABLES.contains(&name.as_str()),
            "{name} is neither a configuration key nor read by the binary"
        );
    }
    // The loader refuses unknown keys, naming the variable: every name is a key.
    let config = manifests.config();
    let env = manifests.config_map_env();
    assert_eq!(
        config.server.listen.to_string(),
        env["AUTHGATE_SERVER__LISTEN"]
    );
    assert_eq!(
        config.server.public_url.as_str().trim_end_matches('/'),
        env["AUTHGATE_SERVER__PUBLIC_URL"]
    );
    assert!(config.store.url.as_str().starts_with("postgres://"));
    assert!(config.cache.url.as_str().starts_with("redis://"));
    assert_eq!(config.providers.len(), 1);
    assert!(config.session.secure_cookies, "an https public_url");
}

#[test]
fn secrets_live_in_the_secret_and_the_committed_example_holds_none() {
    let manifests = Manifests::load();
    let config_map = manifests.config_map_env();
    let secret = manifests.secret_env();
    let config = manifests.config();

    let mut secret_keys = vec![
        "session.secret".to_owned(),
        "store.encryption_keys".to_owned(),
    ];
    secret_keys
        .extend((0..config.providers.len()).map(|i| format!("providers[{i}].client_secret")));
    // Service URLs that carry a password are secrets too (`Display` redacts it).
    for (key, url) in [
        ("store.url", &config.store.url),
        ("cache.url", &config.cache.url),
    ] {
        if url.to_string() != url.as_str() {
            secret_keys.push(key.to_owned());
        }
    }
    assert!(secret_keys.contains(&"store.url".to_owned()));
    for key in &secret_keys {
        let var = env_var_for(key);
        assert!(
            secret.contains_key(&var),
            "{key} ({var}) belongs in the Secret"
        );
        assert!(
            !config_map.contains_key(&var),
            "{key} ({var}) must not be in the ConfigMap"
        );
    }
    for name in config_map.keys() {
        assert!(
            !secret.contains_key(name),
            "{name} is in both: the Secret would silently win"
        );
    }
    for (name, value) in &secret {
        assert!(
            value.contains(PLACEHOLDER),
            "{name}: the committed example must hold a placeholder, not a value"
        );
    }
    // Applied verbatim, the example is refused at start: no gateway runs with a
    // published secret.
    let mut verbatim = config_map.clone();
    verbatim.extend(secret.clone());
    let refusal = Config::from_sources(None, verbatim)
        .unwrap_err()
        .to_string();
    assert!(refusal.contains("session.secret"), "{refusal}");
    assert!(
        !refusal.contains(PLACEHOLDER),
        "a refusal never echoes a secret: {refusal}"
    );

    // The example is not among the resources `kubectl apply -k` creates.
    assert!(
        manifests
            .objects
            .iter()
            .all(|o| text(o, "/kind") != "Secret"),
        "the Secret is created from real values, not applied from the repository"
    );
}

#[test]
fn the_deployment_runs_three_non_root_replicas_with_the_configuration() {
    let manifests = Manifests::load();
    let deployment = manifests.deployment();
    assert_eq!(number(deployment, "/spec/replicas"), 3);
    let labels = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(
        &deployment["spec"]["template"]["metadata"]["labels"],
        labels
    );

    let pod = manifests.pod();
    let (uid, gid) = image_user();
    assert_ne!(uid, 0);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(number(pod, "/securityContext/runAsUser"), uid);
    assert_eq!(number(pod, "/securityContext/runAsGroup"), gid);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(
        pod["enableServiceLinks"], false,
        "Service-link variables would add AUTHGATE_* names beside the configuration's"
    );
    // The image itself runs as that user (deploy/image/build).
    let build = read("deploy/image/build");
    assert!(
        build.contains(&format!("--user {uid}:{gid}")),
        "deploy/image/build sets the image's user to {uid}:{gid}"
    );

    let config_map = text(manifests.get("ConfigMap"), "/metadata/name");
    let secret = text(&manifests.secret, "/metadata/name");
    let gateway = manifests.gateway_container();
    let init = pod["initContainers"].as_array().unwrap();
    assert_eq!(init.len(), 1);
    let migrate = &init[0];
    assert_eq!(migrate["args"], serde_json::json!(["migrate"]));
    assert_eq!(gateway["args"][0], "serve");
    assert_eq!(
        migrate["image"], gateway["image"],
        "migrations of the same release"
    );
    for container in [gateway, migrate] {
        let sources = &container["envFrom"];
        assert_eq!(text(sources, "/0/configMapRef/name"), config_map);
        assert_eq!(
            text(sources, "/1/secretRef/name"),
            secret,
            "the Secret comes last: nothing in the ConfigMap can shadow it"
        );
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert!(
            container.get("env").is_none(),
            "configuration only from the ConfigMap and the Secret"
        );
    }
    // The image tag agrees with the kustomization.
    let kustomization = documents("deploy/kubernetes/kustomization.yaml").remove(0);
    let image = text(gateway, "/image");
    let (name, tag) = image.rsplit_once(':').unwrap();
    assert_eq!(text(&kustomization, "/images/0/name"), name);
    assert_eq!(text(&kustomization, "/images/0/newTag"), tag);
    assert_eq!(tag, env!("CARGO_PKG_VERSION"), "the image of this release");
}

#[test]
fn the_grace_period_outlasts_the_drain() {
    let manifests = Manifests::load();
    let config = manifests.config();
    let pod = manifests.pod();
    let grace = Duration::from_secs(number(pod, "/terminationGracePeriodSeconds"));
    let pre_stop = manifests.gateway_container()["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .map_or(Duration::ZERO, Duration::from_secs);
    let drain = drain_timeout(&config);
    assert!(
        grace >= pre_stop + drain,
        "terminationGracePeriodSeconds {grace:?} < preStop {pre_stop:?} + drain {drain:?}"
    );
    // docs/deploy.md's reverse-proxy variant (an upstream, its timeout lowered
    // to 30 s) fits the same grace period.
    let proxied = manifests.config_with(BTreeMap::from([
        (
            "AUTHGATE_SERVER__UPSTREAM".to_owned(),
            "http://app.app.svc.cluster.local:8080".to_owned(),
        ),
        (
            "AUTHGATE_SERVER__UPSTREAM_TIMEOUT".to_owned(),
            "30s".to_owned(),
        ),
    ]));
    let drain = drain_timeout(&proxied);
    assert!(
        grace >= pre_stop + drain,
        "reverse proxy: {grace:?} < {pre_stop:?} + {drain:?}"
    );
    assert!(read("docs/deploy.md").contains("AUTHGATE_SERVER__UPSTREAM_TIMEOUT: \"30s\""));
}

#[test]
fn the_disruption_budget_autoscaler_and_service_select_the_deployment() {
    let manifests = Manifests::load();
    let deployment = manifests.deployment();
    let name = text(deployment, "/metadata/name");
    let labels = &deployment["spec"]["selector"]["matchLabels"];
    let replicas = number(deployment, "/spec/replicas");

    let pdb = manifests.get("PodDisruptionBudget");
    assert_eq!(text(pdb, "/apiVersion"), "policy/v1");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    let remaining = match (
        pdb["spec"].get("maxUnavailable"),
        pdb["spec"].get("minAvailable"),
    ) {
        (Some(max), None) => replicas - max.as_u64().unwrap(),
        (None, Some(min)) => min.as_u64().unwrap(),
        other => panic!("one of maxUnavailable / minAvailable: {other:?}"),
    };
    assert!(
        remaining >= 2 && remaining < replicas,
        "a drain keeps two pods and can proceed"
    );

    let hpa = manifests.get("HorizontalPodAutoscaler");
    assert_eq!(text(hpa, "/apiVersion"), "autoscaling/v2");
    assert_eq!(text(hpa, "/spec/scaleTargetRef/apiVersion"), "apps/v1");
    assert_eq!(text(hpa, "/spec/scaleTargetRef/kind"), "Deployment");
    assert_eq!(text(hpa, "/spec/scaleTargetRef/name"), name);
    assert_eq!(number(hpa, "/spec/minReplicas"), replicas);
    assert!(number(hpa, "/spec/maxReplicas") > replicas);
    // Utilization targets need requests.
    assert_eq!(text(hpa, "/spec/metrics/0/resource/name"), "cpu");
    text(manifests.gateway_container(), "/resources/requests/cpu");

    let service = manifests.get("Service");
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(
        text(service, "/spec/type"),
        "ClusterIP",
        "reached through the ingress only"
    );
}

/// The gateway as the manifests configure it, on loopback: the provider is
/// replaced by the development one, PostgreSQL and Redis by SQLite and the
/// in-process cache (the probes' routes do not depend on them).
struct Gateway {
    url: String,
    _idp: DevIdp,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn gateway(manifests: &Manifests) -> (Gateway, Config) {
    let config = manifests.config();
    let provider = &config.providers[0];
    let idp = DevIdp::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DevIdpConfig::default().with_client(DevClient::new(
            provider.client_id.clone(),
            provider.client_secret.expose(),
        )),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = BTreeMap::from([
        (
            "AUTHGATE_PROVIDERS__0__ISSUER".to_owned(),
            idp.issuer_str().to_owned(),
        ),
        (
            "AUTHGATE_STORE__URL".to_owned(),
            format!("sqlite://{}", dir.path().join("authgate.db").display()),
        ),
        ("AUTHGATE_CACHE__URL".to_owned(), "memory://".to_owned()),
    ]);
    let local_config = manifests.config_with(local);
    let app = App::build(&local_config, Migrations::Apply).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let gateway = Gateway {
        url,
        _idp: idp,
        _dir: dir,
        stop: Some(stop),
    };
    (gateway, config)
}

#[tokio::test]
async fn probes_ask_the_routers_health_routes_on_the_listen_port() {
    let manifests = Manifests::load();
    let (gateway, config) = gateway(&manifests).await;
    let container = manifests.gateway_container();
    let listen_port = u64::from(config.server.listen.port());
    let client = reqwest::Client::new();

    let expected = [
        ("livenessProbe", "/healthz", "ok"),
        ("readinessProbe", "/readyz", "ready"),
        ("startupProbe", "/healthz", "ok"),
    ];
    for (probe, path, body) in expected {
        let get = &container[probe]["httpGet"];
        assert_eq!(text(get, "/path"), path, "{probe}");
        assert_eq!(
            resolve_port(container, &get["port"]),
            listen_port,
            "{probe}: the listen port"
        );
        let response = client
            .get(format!("{}{path}", gateway.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{probe}: GET {path}");
        assert!(
            response.text().await.unwrap().starts_with(body),
            "{probe}: GET {path}"
        );
    }
    // A path the router does not serve is not 200: the check above means something.
    let missing = client
        .get(format!("{}/nothing-here", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The Service reaches that port, and so do the scrape annotations.
    let service = manifests.get("Service");
    let target = &service["spec"]["ports"][0]["targetPort"];
    assert_eq!(resolve_port(container, target), listen_port);
    let annotations = &manifests.deployment()["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        text(annotations, "/prometheus.io~1port"),
        listen_port.to_string()
    );
    let metrics = text(annotations, "/prometheus.io~1path");
    let scraped = client
        .get(format!("{}{metrics}", gateway.url))
        .send()
        .await
        .unwrap();
    assert_ne!(scraped.status(), 404, "GET {metrics}");
}

/// `http://<service>.<namespace>.svc.cluster.local:<port><base_path>/verify`.
fn cluster_verify_url(manifests: &Manifests, config: &Config) -> String {
    let kustomization = documents("deploy/kubernetes/kustomization.yaml").remove(0);
    let namespace = text(&kustomization, "/namespace");
    let service = manifests.get("Service");
    format!(
        "http://{}.{namespace}.svc.cluster.local:{}{}/verify",
        text(service, "/metadata/name"),
        number(service, "/spec/ports/0/port"),
        config.server.base_path
    )
}

/// The browser-facing endpoints an ingress may route to authgate, and one
/// request that reaches each (path, method).
fn public_endpoints(base: &str) -> Vec<(String, reqwest::Method)> {
    use reqwest::Method;
    vec![
        (format!("{base}/signin"), Method::GET),
        (format!("{base}/callback/sso"), Method::GET),
        (format!("{base}/session"), Method::GET),
        (format!("{base}/csrf"), Method::GET),
        (format!("{base}/providers"), Method::GET),
        (format!("{base}/refresh"), Method::POST),
        (format!("{base}/signout"), Method::POST),
    ]
}

/// Whether an ingress path (Prefix or Exact) would route `request`.
fn routes(path: &str, exact: bool, request: &str) -> bool {
    if exact {
        return request == path;
    }
    let prefix = path.trim_end_matches('/');
    request == prefix || request.starts_with(&format!("{prefix}/"))
}

#[tokio::test]
async fn ingress_nginx_asks_verify_inside_the_cluster_and_never_routes_it_publicly() {
    let manifests = Manifests::load();
    let (gateway, config) = gateway(&manifests).await;
    let docs = documents("deploy/kubernetes/ingress/ingress-nginx.yaml");
    assert_eq!(docs.len(), 2);
    let public = config.server.public_url.as_str().trim_end_matches('/');
    let host = config.server.public_url.host_str().unwrap();
    let base = &config.server.base_path;

    let app = &docs[0];
    let annotation = |name: &str| {
        text(
            &app["metadata"]["annotations"],
            &format!("/nginx.ingress.kubernetes.io~1{name}"),
        )
        .to_owned()
    };
    assert_eq!(
        annotation("auth-url"),
        cluster_verify_url(&manifests, &config)
    );
    // X-Original-URI is sent only when auth-method is set; authgate judges it.
    assert_eq!(annotation("auth-method"), "GET");
    assert_eq!(annotation("auth-signin"), format!("{public}{base}/signin"));
    assert_eq!(annotation("auth-signin-redirect-param"), "callbackUrl");
    let headers: Vec<String> = annotation("auth-response-headers")
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(headers, IDENTITY_HEADERS);
    assert_eq!(text(app, "/spec/rules/0/host"), host);

    let authgate = &docs[1];
    let kustomization = documents("deploy/kubernetes/kustomization.yaml").remove(0);
    assert_eq!(
        text(authgate, "/metadata/namespace"),
        text(&kustomization, "/namespace")
    );
    assert_eq!(text(authgate, "/spec/rules/0/host"), host);
    let paths = authgate["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap();
    let routed: Vec<(String, bool)> = paths
        .iter()
        .map(|p| {
            assert_eq!(
                text(p, "/backend/service/name"),
                text(manifests.get("Service"), "/metadata/name")
            );
            (text(p, "/path").to_owned(), text(p, "/pathType") == "Exact")
        })
        .collect();
    let is_routed = |request: &str| {
        routed
            .iter()
            .any(|(path, exact)| routes(path, *exact, request))
    };
    assert!(
        !is_routed(&format!("{base}/verify")),
        "/auth/verify stays cluster-internal"
    );
    assert!(!is_routed("/metrics") && !is_routed("/readyz"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (endpoint, method) in public_endpoints(base) {
        assert!(is_routed(&endpoint), "{endpoint} reaches authgate");
        let answer = client
            .request(method.clone(), format!("{}{endpoint}", gateway.url))
            .send()
            .await
            .unwrap();
        assert_ne!(
            answer.status(),
            404,
            "{method} {endpoint} is a gateway route"
        );
    }
    // Every routed path serves one of those endpoints.
    for (path, exact) in &routed {
        assert!(
            public_endpoints(base)
                .iter()
                .any(|(endpoint, _)| routes(path, *exact, endpoint)),
            "{path}: an ingress path that serves no endpoint"
        );
    }
}

/// The path literals of a Traefik rule: `Path(`…`)` and `PathPrefix(`…`)`.
fn traefik_paths(rule: &str) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    for (matcher, exact) in [("PathPrefix(`", false), ("Path(`", true)] {
        let mut rest = rule;
        while let Some(at) = rest.find(matcher) {
            let after = &rest[at + matcher.len()..];
            let end = after.find('`').unwrap();
            found.push((after[..end].to_owned(), exact));
            rest = &after[end..];
        }
    }
    found
}

#[tokio::test]
async fn traefik_forward_auth_asks_verify_inside_the_cluster_and_never_routes_it_publicly() {
    let manifests = Manifests::load();
    let (gateway, config) = gateway(&manifests).await;
    let docs = documents("deploy/kubernetes/ingress/traefik.yaml");
    let base = &config.server.base_path;
    let host = config.server.public_url.host_str().unwrap();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| text(d, "/kind") == kind && text(d, "/metadata/name") == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
    };

    let middleware = &find("Middleware", "authgate")["spec"]["forwardAuth"];
    assert_eq!(
        text(middleware, "/address"),
        cluster_verify_url(&manifests, &config)
    );
    assert_eq!(middleware["trustForwardHeader"], false);
    assert_eq!(
        middleware["authResponseHeaders"],
        serde_json::json!(IDENTITY_HEADERS)
    );
    let sent: Vec<&str> = middleware["authRequestHeaders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(sent.contains(&"Cookie"));
    assert!(
        !sent
            .iter()
            .any(|h| h.eq_ignore_ascii_case("X-Original-URI")),
        "a client's X-Original-URI never reaches authgate"
    );
    assert_eq!(
        middleware["addAuthCookiesToResponse"],
        serde_json::json!([config.session_cookie_name()])
    );

    let app = &find("IngressRoute", "app")["spec"]["routes"][0];
    assert_eq!(text(app, "/middlewares/0/name"), "authgate");
    assert_eq!(
        text(&find("Middleware", "authgate")["metadata"], "/namespace"),
        text(&find("IngressRoute", "app")["metadata"], "/namespace"),
        "the middleware is referenced within its namespace"
    );
    assert!(text(app, "/match").contains(&format!("Host(`{host}`)")));

    let authgate = &find("IngressRoute", "authgate")["spec"]["routes"][0];
    let rule = text(authgate, "/match");
    assert!(rule.contains(&format!("Host(`{host}`)")));
    assert_eq!(
        text(authgate, "/services/0/name"),
        text(manifests.get("Service"), "/metadata/name")
    );
    assert_eq!(
        number(authgate, "/services/0/port"),
        number(manifests.get("Service"), "/spec/ports/0/port")
    );
    let routed = traefik_paths(rule);
    assert_eq!(routed.len(), public_endpoints(base).len(), "{rule}");
    let is_routed = |request: &str| {
        routed
            .iter()
            .any(|(path, exact)| routes(path, *exact, request))
    };
    assert!(
        !is_routed(&format!("{base}/verify")),
        "/auth/verify stays cluster-internal"
    );
    assert!(!is_routed("/metrics"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (endpoint, method) in public_endpoints(base) {
        assert!(is_routed(&endpoint), "{endpoint} reaches authgate: {rule}");
        let answer = client
            .request(method.clone(), format!("{}{endpoint}", gateway.url))
            .send()
            .await
            .unwrap();
        assert_ne!(
            answer.status(),
            404,
            "{method} {endpoint} is a gateway route"
        );
    }
}

/// `Key=value` lines of a systemd unit (every value of a repeated key).
fn unit_settings(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap();
        settings
            .entry(key.to_owned())
            .or_default()
            .push(value.to_owned());
    }
    settings
}

#[test]
fn the_systemd_unit_is_hardened_and_waits_for_the_drain() {
    let unit = unit_settings(&read("deploy/systemd/authgate.service"));
    let one = |key: &str| -> &str {
        let values = unit.get(key).unwrap_or_else(|| panic!("{key}= is missing"));
        assert_eq!(values.len(), 1, "{key}= once");
        &values[0]
    };
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("StateDirectory", "authgate"),
        ("WorkingDirectory", "/var/lib/authgate"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictNamespaces", "yes"),
        ("SystemCallArchitectures", "native"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(one(key), value, "{key}=");
    }
    assert_eq!(unit["SystemCallFilter"][0], "@system-service");
    assert!(
        one("EnvironmentFile").starts_with('/'),
        "secrets from a file, not the unit"
    );
    assert!(one("ExecStart").contains(" serve "));

    // The stop timeout covers the drain with the canonical configuration.
    let example = read("examples/authgate.toml");
    let config = Config::from_sources(
        Some(("examples/authgate.toml", &example)),
        std::iter::empty(),
    )
    .unwrap();
    let stop = authgate_config::parse_duration(one("TimeoutStopSec")).unwrap();
    let drain = drain_timeout(&config);
    assert!(
        stop > drain,
        "TimeoutStopSec {stop:?} must exceed the drain {drain:?}"
    );

    // The environment file's example holds placeholders only, and only configuration keys.
    for line in read("deploy/systemd/authgate.env.example").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap();
        assert!(is_config_env_var(name), "{name}");
        assert!(
            value.contains(PLACEHOLDER),
            "{name}: a placeholder, not a value"
        );
    }
}
