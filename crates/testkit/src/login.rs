//! Signing in at `oidc-provider` through its development interactions, with a plain HTTP client.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;
use url::Url;

/// A random URL-safe token of `bytes` random bytes (base64url, no padding).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A PKCE pair (RFC 7636, S256 — the only method `oidc-provider` accepts).
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The secret `code_verifier` sent to the token endpoint.
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`, sent as `code_challenge` with `code_challenge_method=S256`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random verifier and its S256 challenge.
    pub fn new() -> Self {
        let verifier = random_token(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// A minimal cookie jar: name → value, sent to every path of the provider's origin (enough for
/// `oidc-provider`'s `_interaction`, `_interaction_resume` and `_session` cookies).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn absorb(&mut self, response: &Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            let expired = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || value.is_empty() {
                self.0.remove(&name);
            } else {
                self.0.insert(name, value);
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `action` URL and the hidden `prompt` value of the first form in a dev-interactions page.
fn parse_form(html: &str, base: &Url) -> Option<(Url, String)> {
    let form = &html[html.find("<form")?..];
    let action = form.split("action=\"").nth(1)?.split('"').next()?;
    let prompt = form
        .split("name=\"prompt\" value=\"")
        .nth(1)?
        .split('"')
        .next()?;
    Some((base.join(&html_unescape(action)).ok()?, prompt.to_owned()))
}

/// Drives `oidc-provider`'s development interactions (login form, then consent form) starting at
/// `authorize_url` (the provider's authorization endpoint with the client's query, e.g. from the
/// gateway's redirect), signing in as `login` (it becomes `sub`; any password is accepted).
///
/// Returns the final redirect `Location` — the client's `redirect_uri` with `code` and `state`
/// (or `error`) — WITHOUT following it. Panics with the page's content on anything unexpected.
pub async fn login_with_dev_interactions(authorize_url: &Url, login: &str) -> Url {
    let mut jar = Jar::default();
    drive_dev_interactions(&mut jar, authorize_url, login)
        .await
        .callback
}

/// What [`login_with_dev_interactions_in`] went through.
#[derive(Debug, Clone)]
pub struct DevLogin {
    /// The redirect back to the client (`redirect_uri` with `code` and `state`), not followed.
    pub callback: Url,
    /// The interaction prompts answered, in order (`"login"`, `"consent"`): no `"login"` means
    /// the provider still had a session for this browser.
    pub prompts: Vec<String>,
}

/// Like [`login_with_dev_interactions`], but with the caller's cookie jar (name → value, sent
/// to the provider and updated from its answers), so the provider's session cookie outlives the
/// sign-in: a later sign-in, or the provider's `/session/end`, sees the same browser.
pub async fn login_with_dev_interactions_in(
    cookies: &mut BTreeMap<String, String>,
    authorize_url: &Url,
    login: &str,
) -> DevLogin {
    let mut jar = Jar(std::mem::take(cookies));
    let done = drive_dev_interactions(&mut jar, authorize_url, login).await;
    *cookies = jar.0;
    done
}

async fn drive_dev_interactions(jar: &mut Jar, authorize_url: &Url, login: &str) -> DevLogin {
    let mut prompts = Vec::new();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the login HTTP client");
    let provider_origin = authorize_url.origin();
    let mut next: (Url, Option<Vec<(&str, String)>>) = (authorize_url.clone(), None);

    for _ in 0..20 {
        let (url, form) = next;
        let mut request = match &form {
            None => client.get(url.clone()),
            Some(fields) => client.post(url.clone()).form(fields),
        };
        if let Some(cookies) = jar.header() {
            request = request.header(COOKIE, cookies);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("dev interactions: request to {url} failed: {e}"));
        jar.absorb(&response);
        let status = response.status();

        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| {
                    panic!("dev interactions: {status} from {url} without Location")
                });
            let location = url
                .join(location)
                .unwrap_or_else(|e| panic!("dev interactions: bad Location {location:?}: {e}"));
            if location.origin() != provider_origin {
                return DevLogin {
                    callback: location,
                    prompts,
                };
            }
            next = (location, None);
            continue;
        }

        let body = response.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            panic!("dev interactions: {status} from {url}: {body}");
        }
        let (action, prompt) = parse_form(&body, &url)
            .unwrap_or_else(|| panic!("dev interactions: no login/consent form at {url}: {body}"));
        let fields = match prompt.as_str() {
            "login" => vec![
                ("prompt", "login".to_owned()),
                ("login", login.to_owned()),
                ("password", "any-password".to_owned()),
            ],
            "consent" => vec![("prompt", "consent".to_owned())],
            other => panic!("dev interactions: unexpected prompt {other:?} at {url}"),
        };
        prompts.push(prompt.clone());
        next = (action, Some(fields));
    }
    panic!("dev interactions: more than 20 steps from {authorize_url} without reaching the client");
}

/// Signs in at authgate's built-in development provider: loads its login form
/// at `authorize_url`, submits `username` (and an optional display `name`)
/// and returns the redirect back to the client (its callback URL with `code`
/// and `state`) without following it.
pub async fn login_with_dev_provider(
    authorize_url: &str,
    username: &str,
    name: Option<&str>,
) -> String {
    let mut fields = vec![("username", username)];
    if let Some(name) = name {
        fields.push(("name", name));
    }
    login_with_dev_provider_fields(authorize_url, &fields).await
}

/// Like [`login_with_dev_provider`], with any login form fields: `username`,
/// `name`, `email`, and the identity claims the provider should state —
/// `email_verified` (`true`, `false`, `absent`), `hd`, `tid`, `xms_edov`
/// (`true`, `false`).
pub async fn login_with_dev_provider_fields(
    authorize_url: &str,
    fields: &[(&str, &str)],
) -> String {
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("http client");
    let page = client
        .get(authorize_url)
        .send()
        .await
        .expect("the login form loads")
        .text()
        .await
        .expect("the login form is text");
    let request_id = page
        .split("name=\"request\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no request id in the login form:\n{page}"))
        .to_owned();
    let action = authorize_url.split('?').next().unwrap_or(authorize_url);
    let mut form = vec![("request", request_id.as_str()), ("action", "allow")];
    form.extend_from_slice(fields);
    let response = client
        .post(action)
        .form(&form)
        .send()
        .await
        .expect("the login form posts");
    assert_eq!(
        response.status(),
        302,
        "login: {}",
        response.text().await.unwrap_or_default()
    );
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("the provider redirects back")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_is_s256_of_the_verifier() {
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.len(), 43);
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(pkce.verifier.as_bytes()));
        assert_eq!(pkce.challenge, expected);
    }

    #[test]
    fn parses_absolute_form_action() {
        let base = Url::parse("http://127.0.0.1:1/interaction/abc").unwrap();
        let html = r#"<div><form autocomplete="off" action="http://127.0.0.1:1/interaction/abc/login?a=1&amp;b=2" method="post">
  <input type="hidden" name="prompt" value="login"/></form>"#;
        let (action, prompt) = parse_form(html, &base).unwrap();
        assert_eq!(
            action.as_str(),
            "http://127.0.0.1:1/interaction/abc/login?a=1&b=2"
        );
        assert_eq!(prompt, "login");
    }
}
