//! HTML pages: the login form and the error page. No external assets, inline CSS only,
//! and every reflected value is HTML-escaped.

use std::fmt::Write as _;

use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderName, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::login::LoginForm;

/// Escape text for HTML element content and double-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;background:#f4f5f7;color:#1d2330}\
main{max-width:26rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}\
h1{font-size:1.35rem;margin:0 0 .25rem}\
p{margin:.25rem 0 1rem;color:#4a5263}\
.badge{display:inline-block;font-size:.75rem;font-weight:600;letter-spacing:.04em;text-transform:uppercase;color:#8a4b00;background:#fff1db;border-radius:.25rem;padding:.1rem .4rem}\
label{display:block;font-weight:600;margin:1rem 0 .25rem}\
.hint{font-weight:400;color:#5d6576;font-size:.875rem}\
input,select{width:100%;padding:.55rem .7rem;font:inherit;border:1px solid #aab1bf;border-radius:.4rem}\
summary{margin-top:1rem;cursor:pointer;color:#4a5263}\
input:focus,button:focus{outline:3px solid #7aa7ff;outline-offset:1px}\
.actions{display:flex;gap:.75rem;margin-top:1.5rem}\
button{flex:1;padding:.6rem;font:inherit;font-weight:600;border-radius:.4rem;border:1px solid #2456c8;cursor:pointer}\
.primary{background:#2456c8;color:#fff}\
.secondary{background:#fff;color:#2456c8}\
.error{color:#a40e26;background:#fde8ec;padding:.5rem .75rem;border-radius:.4rem}\
dl{font-size:.875rem;color:#4a5263;margin:1rem 0 0}dt{font-weight:600}dd{margin:0 0 .5rem;word-break:break-all}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        title = escape(title),
    )
}

/// What the login page shows about the request.
pub(crate) struct LoginPage<'a> {
    /// Where the form posts (the authorization endpoint).
    pub action: &'a str,
    /// Pending request id.
    pub request_id: &'a str,
    /// Requesting client.
    pub client_id: &'a str,
    /// Where the user will be sent.
    pub redirect_uri: &'a str,
    /// Requested scopes.
    pub scope: &'a [String],
    /// An error to show above the form (after a rejected submission).
    pub error: Option<&'a str>,
    /// Values to pre-fill after a rejected submission.
    pub form: &'a LoginForm,
}

/// `<option>`s for a select whose value is `current`; the first option is the default.
fn options(current: &str, choices: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (value, label)) in choices.iter().enumerate() {
        let selected = current == *value || (i == 0 && current.is_empty());
        let _ = write!(
            out,
            "<option value=\"{}\"{}>{}</option>",
            escape(value),
            if selected { " selected" } else { "" },
            escape(label)
        );
    }
    out
}

/// The login form: any user name is accepted.
pub(crate) fn login(page: &LoginPage<'_>) -> String {
    let mut body = String::new();
    body.push_str("<span class=\"badge\">Development provider</span>");
    body.push_str("<h1>Sign in</h1>");
    let _ = write!(
        body,
        "<p><strong>{}</strong> wants you to sign in. Any user name works; no password is needed.</p>",
        escape(page.client_id)
    );
    if let Some(error) = page.error {
        let _ = write!(
            body,
            "<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>",
            escape(error)
        );
    }
    let described = if page.error.is_some() {
        " aria-describedby=\"form-error\" aria-invalid=\"true\""
    } else {
        ""
    };
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"request\" value=\"{request}\">\
<label for=\"username\">User name</label>\
<input id=\"username\" name=\"username\" autocomplete=\"username\" required maxlength=\"64\" autofocus value=\"{username}\"{described}>\
<label for=\"name\">Display name <span class=\"hint\">(optional)</span></label>\
<input id=\"name\" name=\"name\" autocomplete=\"name\" maxlength=\"128\" value=\"{name}\">\
<label for=\"email\">Email <span class=\"hint\">(optional; defaults to user name @example.com)</span></label>\
<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" maxlength=\"254\" value=\"{email}\">\
<details><summary>Identity claims (for testing)</summary>\
<label for=\"email_verified\">email_verified</label>\
<select id=\"email_verified\" name=\"email_verified\">{verified}</select>\
<label for=\"hd\">hd <span class=\"hint\">(Google hosted domain; optional)</span></label>\
<input id=\"hd\" name=\"hd\" maxlength=\"253\" value=\"{hd}\">\
<label for=\"tid\">tid <span class=\"hint\">(Entra tenant id; optional)</span></label>\
<input id=\"tid\" name=\"tid\" maxlength=\"64\" value=\"{tid}\">\
<label for=\"xms_edov\">xms_edov <span class=\"hint\">(Entra: email domain owner verified)</span></label>\
<select id=\"xms_edov\" name=\"xms_edov\">{edov}</select>\
<label for=\"groups\">groups <span class=\"hint\">(comma-separated; optional)</span></label>\
<input id=\"groups\" name=\"groups\" value=\"{groups}\">\
<label for=\"roles\">roles <span class=\"hint\">(comma-separated; also realm_access.roles)</span></label>\
<input id=\"roles\" name=\"roles\" value=\"{roles}\">\
<label for=\"groups_overage\">groups_overage <span class=\"hint\">(Entra: groups moved to _claim_names)</span></label>\
<select id=\"groups_overage\" name=\"groups_overage\">{overage}</select>\
</details>\
<div class=\"actions\">\
<button class=\"primary\" type=\"submit\" name=\"action\" value=\"allow\">Sign in</button>\
<button class=\"secondary\" type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny access</button>\
</div></form>",
        action = escape(page.action),
        request = escape(page.request_id),
        username = escape(&page.form.username),
        name = escape(&page.form.name),
        email = escape(&page.form.email),
        verified = options(
            &page.form.email_verified,
            &[("true", "true"), ("false", "false"), ("absent", "(absent)")]
        ),
        hd = escape(&page.form.hd),
        tid = escape(&page.form.tid),
        groups = escape(&page.form.groups),
        roles = escape(&page.form.roles),
        overage = options(&page.form.groups_overage, &[("", "(no)"), ("true", "true")]),
        edov = options(
            &page.form.xms_edov,
            &[("", "(absent)"), ("true", "true"), ("false", "false")]
        ),
    );
    let _ = write!(
        body,
        "<dl><dt>Scopes</dt><dd>{}</dd><dt>Returns to</dt><dd>{}</dd></dl>",
        escape(&page.scope.join(" ")),
        escape(page.redirect_uri)
    );
    document("Sign in — development provider", &body)
}

/// A plain error page (used when the request cannot be redirected back to the client).
pub(crate) fn error(title: &str, message: &str) -> String {
    let body = format!(
        "<span class=\"badge\">Development provider</span><h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
        escape(title),
        escape(message)
    );
    document(title, &body)
}

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (CACHE_CONTROL, "no-store"),
            (
                HeaderName::from_static("content-security-policy"),
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (HeaderName::from_static("x-frame-options"), "DENY"),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
            (HeaderName::from_static("referrer-policy"), "no-referrer"),
        ],
        Html(body),
    )
        .into_response()
}

pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html(status, error(title, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn login_page_escapes_reflected_values_and_labels_inputs() {
        let scope = vec!["openid".to_owned(), "<script>".to_owned()];
        let html = login(&LoginPage {
            action: "http://127.0.0.1:1/authorize",
            request_id: "r\"id",
            client_id: "<img src=x onerror=alert(1)>",
            redirect_uri: "http://127.0.0.1/cb?a=1&b=\"2\"",
            scope: &scope,
            error: Some("<b>bad</b>"),
            form: &LoginForm {
                username: "\"><script>".into(),
                hd: "<i>".into(),
                email_verified: "\"><b>".into(),
                ..LoginForm::default()
            },
        });
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>bad"));
        assert!(html.contains("value=\"r&quot;id\""));
        assert!(!html.contains("<i>") && !html.contains("<b>"));
        for id in [
            "username",
            "name",
            "email",
            "email_verified",
            "hd",
            "tid",
            "xms_edov",
            "groups",
            "roles",
            "groups_overage",
        ] {
            assert!(html.contains(&format!("<label for=\"{id}\"")));
            assert!(html.contains(&format!("id=\"{id}\"")));
        }
        assert!(!html.contains("<link") && !html.contains("<script"));
    }
}
