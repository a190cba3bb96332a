//! The HTML pages authgate serves itself: the sign-in page and error pages.
//!
//! Self-contained (inline CSS, no scripts, no external assets), accessible
//! (landmarks, labels, focus styles, sufficient contrast) and escaped: every
//! value that reaches HTML goes through [`escape`].

use std::fmt::Write as _;

/// A provider button on the sign-in page.
#[derive(Debug, Clone)]
pub struct ProviderButton {
    /// Provider id (used in the form action).
    pub id: String,
    /// Display name.
    pub name: String,
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1a1a1a;--bg:#f6f7f9;--card:#fff;--accent:#1d4ed8;--muted:#555}\
@media (prefers-color-scheme:dark){:root{--fg:#eee;--bg:#111418;--card:#1b1f24;--accent:#8ab4ff;--muted:#aaa}}\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
color:var(--fg);background:var(--bg);display:grid;place-items:center;min-height:100vh}\
main{background:var(--card);padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002;width:min(24rem,92vw)}\
h1{font-size:1.35rem;margin:0 0 1rem}p{color:var(--muted)}\
button{width:100%;padding:.7rem 1rem;margin:.35rem 0;font:inherit;border:1px solid var(--accent);\
border-radius:8px;background:transparent;color:var(--accent);cursor:pointer}\
button:hover{background:var(--accent);color:var(--card)}\
button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
a{color:var(--accent)}code{font-size:.9em}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title)
    )
}

/// The sign-in page: one POST form per provider, each carrying the CSRF
/// token and the callback URL.
pub fn signin_page(
    base_path: &str,
    providers: &[ProviderButton],
    csrf_token: &str,
    callback_url: &str,
    error: Option<&str>,
) -> String {
    let mut body = String::from("<h1>Sign in</h1>");
    if let Some(e) = error {
        let _ = write!(body, "<p role=\"alert\">{}</p>", escape(e));
    }
    if providers.is_empty() {
        body.push_str("<p>No identity provider is configured.</p>");
    }
    for p in providers {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{base}/signin/{id}\">\
<input type=\"hidden\" name=\"csrfToken\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"callbackUrl\" value=\"{cb}\">\
<button type=\"submit\">Sign in with {name}</button></form>",
            base = escape(base_path),
            id = escape(&p.id),
            csrf = escape(csrf_token),
            cb = escape(callback_url),
            name = escape(&p.name),
        );
    }
    page("Sign in", &body)
}

/// An error page with a title, an explanation and a link back.
pub fn error_page(title: &str, message: &str, back_href: &str, back_label: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"{}\">{}</a></p>",
        escape(title),
        escape(message),
        escape(back_href),
        escape(back_label)
    );
    page(title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflected_values_are_escaped() {
        let html = signin_page(
            "/auth",
            &[ProviderButton {
                id: "op".into(),
                name: "<script>x</script>".into(),
            }],
            "tok\"en",
            "/\"><script>",
            Some("<b>bad</b>"),
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("tok&quot;en"));
        assert!(html.contains("role=\"alert\""));
    }
}
