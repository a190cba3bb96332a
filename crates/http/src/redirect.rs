//! Validation of `callbackUrl`: where to send a user after sign-in or
//! sign-out.
//!
//! Only two forms are accepted: a relative path (`/dashboard?tab=1`) or an
//! absolute URL on one of the [`RedirectOrigins`] — the gateway's own
//! origin, plus the exact hosts configured besides it
//! (`server.allowed_redirect_hosts`, the hosts of `[[upstreams]]`), each
//! with `public_url`'s scheme. Everything else — another origin, a
//! subdomain nobody listed, protocol-relative `//evil.example`,
//! `/\evil.example` (which browsers treat as `//`), `javascript:` and other
//! schemes, control characters, backslashes anywhere — falls back to `/`.
//!
//! The candidate is parsed with the `url` crate, which implements the WHATWG
//! URL standard browsers follow: hosts are lower-cased, percent-decoded and
//! IDNA-mapped, default ports dropped, so the comparison is the one a
//! browser's origin would give. The result is rebuilt from the parsed parts
//! (no userinfo): a path for the gateway's origin, `origin + path` for
//! another permitted origin — never the candidate's own text.

use url::{Origin, Url};

/// The longest `callbackUrl` kept.
const MAX_LEN: usize = 2048;

/// The origins a `callbackUrl` may name: the gateway's public origin and
/// the exact other hosts configured (same scheme as `public_url`).
#[derive(Debug, Clone)]
pub struct RedirectOrigins {
    base: Url,
    public: Origin,
    others: Vec<Origin>,
}

impl RedirectOrigins {
    /// `public_url`'s origin plus one per host in `hosts` (`host` or
    /// `host:port`, with `public_url`'s scheme). A host that does not parse
    /// is left out.
    pub fn new(public_url: &Url, hosts: &[String]) -> Self {
        let public = public_url.origin();
        let others = hosts
            .iter()
            .filter_map(|h| Url::parse(&format!("{}://{h}/", public_url.scheme())).ok())
            .filter(|u| u.username().is_empty() && u.password().is_none() && u.path() == "/")
            .map(|u| u.origin())
            .filter(|o| o.is_tuple() && *o != public)
            .collect();
        RedirectOrigins {
            base: public_url.clone(),
            public,
            others,
        }
    }

    /// The gateway's `public_url`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Whether `origin` is one of them.
    pub fn permits(&self, origin: &Origin) -> bool {
        *origin == self.public || self.others.contains(origin)
    }
}

/// A safe redirect target for `candidate` on one of `origins`, or `/`: a
/// path (the gateway's origin) or an absolute URL (another permitted one).
pub fn safe_callback(candidate: Option<&str>, origins: &RedirectOrigins) -> String {
    candidate
        .and_then(|c| permitted_target(c, origins))
        .unwrap_or_else(|| "/".to_owned())
}

fn permitted_target(candidate: &str, origins: &RedirectOrigins) -> Option<String> {
    if candidate.is_empty()
        || candidate.len() > MAX_LEN
        || candidate.chars().any(|c| c.is_control() || c == '\\')
    {
        return None;
    }
    let url = if candidate.starts_with('/') {
        if candidate.starts_with("//") {
            return None;
        }
        origins.base.join(candidate).ok()?
    } else {
        Url::parse(candidate).ok()?
    };
    let origin = url.origin();
    if !origins.permits(&origin) {
        return None;
    }
    let mut out = url.path().to_owned();
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = url.fragment() {
        out.push('#');
        out.push_str(f);
    }
    // Resolving dot segments can produce `//host` (`/.//evil.example`), which
    // a browser reads as another origin.
    if out.starts_with("//") || out.starts_with("/\\") {
        return None;
    }
    if origin == origins.public {
        Some(out)
    } else {
        Some(format!("{}{out}", origin.ascii_serialization()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> RedirectOrigins {
        RedirectOrigins::new(&Url::parse("http://127.0.0.1:4180").unwrap(), &[])
    }

    #[test]
    fn relative_paths_and_same_origin_urls_are_kept() {
        assert_eq!(
            safe_callback(Some("/dash?x=1#top"), &public()),
            "/dash?x=1#top"
        );
        assert_eq!(
            safe_callback(Some("http://127.0.0.1:4180/p/q"), &public()),
            "/p/q"
        );
    }

    #[test]
    fn anything_that_could_leave_the_origin_falls_back_to_root() {
        for hostile in [
            "https://evil.example/",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>",
            "http://127.0.0.1:4181/",
            "https://127.0.0.1:4180/",
            "/ok\r\nSet-Cookie: x=y",
            "",
            "relative-without-slash",
            "/.//evil.example/x",
            "/a/..//evil.example",
            "/%2e//evil.example",
            "http://127.0.0.1:4180//evil.example/",
        ] {
            assert_eq!(safe_callback(Some(hostile), &public()), "/", "{hostile:?}");
        }
        assert_eq!(safe_callback(None, &public()), "/");
        assert_eq!(
            safe_callback(Some(&format!("/{}", "a".repeat(3000))), &public()),
            "/"
        );
    }

    #[test]
    fn dot_segments_are_resolved_within_the_origin() {
        assert_eq!(safe_callback(Some("/a/../b"), &public()), "/b");
        assert_eq!(safe_callback(Some("/../../etc"), &public()), "/etc");
    }

    fn hosts() -> RedirectOrigins {
        RedirectOrigins::new(
            &Url::parse("https://auth.example.com").unwrap(),
            &["admin.example.com".to_owned(), "app.example.com".to_owned()],
        )
    }

    #[test]
    fn configured_hosts_are_permitted_as_absolute_urls_rebuilt_from_their_parts() {
        for (candidate, expected) in [
            (
                "https://admin.example.com/x?y=1#z",
                "https://admin.example.com/x?y=1#z",
            ),
            ("https://app.example.com", "https://app.example.com/"),
            (
                "HTTPS://ADMIN.EXAMPLE.COM/Path",
                "https://admin.example.com/Path",
            ),
            (
                "https://admin%2Eexample%2Ecom/p",
                "https://admin.example.com/p",
            ),
            (
                "https://admin.example.com:443/p",
                "https://admin.example.com/p",
            ),
            (
                "https://user:pw@admin.example.com/p",
                "https://admin.example.com/p",
            ),
            ("https:admin.example.com/p", "https://admin.example.com/p"),
            ("https://auth.example.com/own", "/own"),
            ("/relative", "/relative"),
        ] {
            assert_eq!(
                safe_callback(Some(candidate), &hosts()),
                expected,
                "{candidate:?}"
            );
        }
    }

    #[test]
    fn hosts_that_only_resemble_a_configured_one_fall_back_to_root() {
        for hostile in [
            "https://evil-example.com/",
            "https://example.com/",
            "https://example.com.evil.net/",
            "https://admin.example.com.evil.net/",
            "https://evil.admin.example.com/",
            "https://xadmin.example.com/",
            "https://example.com@evil.net/",
            "https://admin.example.com@evil.net/",
            "https://admin.example.com:pw@evil.net/",
            "https://evil.net\\@admin.example.com",
            "https://evil.net\\admin.example.com",
            "//evil.net",
            "//admin.example.com",
            "/\\evil.net",
            "https:evil.net",
            "https:/evil.net",
            "ht\ttps://evil.net",
            "https://evil\n.net",
            "java\nscript:alert(1)",
            "javascript:alert(1)",
            "javascript://admin.example.com/%0aalert(1)",
            "https://admin.example.com%2Eevil.net/",
            "https://evil%2Enet/",
            "https://admin.example.com./",
            "https://ADMIN.EXAMPLE.COM.:443/",
            "https://\u{430}dmin.example.com/",
            "https://xn--dmin-5cd.example.com/",
            "https://admin.example.com:8443/",
            "https://admin.example.com:0/",
            "http://admin.example.com/",
            "ws://admin.example.com/",
            "https://[::1]/",
            "https://127.0.0.1/",
            "data:text/html,x",
            " https://evil.net/",
            "https://admin.example.com//evil.net/",
        ] {
            assert_eq!(safe_callback(Some(hostile), &hosts()), "/", "{hostile:?}");
        }
    }

    #[test]
    fn without_configured_hosts_only_the_public_origin_is_permitted() {
        let only = RedirectOrigins::new(&Url::parse("https://auth.example.com").unwrap(), &[]);
        assert_eq!(
            safe_callback(Some("https://admin.example.com/"), &only),
            "/"
        );
        let odd = RedirectOrigins::new(
            &Url::parse("https://auth.example.com").unwrap(),
            &["evil.net/x".to_owned(), "u@evil.net".to_owned()],
        );
        assert_eq!(safe_callback(Some("https://evil.net/"), &odd), "/");
    }

    /// What a browser does with the target: a path stays on the gateway's
    /// origin; an absolute URL goes to its parsed origin.
    fn lands_on_permitted_origin(out: &str, origins: &RedirectOrigins) -> bool {
        if out.starts_with('/') {
            return !out.starts_with("//")
                && !out.contains('\\')
                && !out.chars().any(char::is_control)
                && origins
                    .base()
                    .join(out)
                    .is_ok_and(|u| u.origin() == origins.public);
        }
        Url::parse(out).is_ok_and(|u| origins.permits(&u.origin()) && u.origin() != origins.public)
            && !out.chars().any(|c| c.is_control() || c == '\\')
    }

    proptest::proptest! {
        #[test]
        fn every_target_lands_on_a_permitted_origin(
            candidate in proptest::string::string_regex(
                "(https?|HTTPS|javascript|ht\tp)?:?(//|/|\\\\|/\\\\)?((admin|app|auth|evil|x)[.-])?(example[.]com|evil[.]net|%2e|[.]|@|:443|:8443|\\\\|\\t|\\n|\u{430}){0,4}(/[a-z.%/]{0,6})?"
            ).unwrap()
        ) {
            let out = safe_callback(Some(&candidate), &hosts());
            proptest::prop_assert!(lands_on_permitted_origin(&out, &hosts()), "{candidate:?} -> {out:?}");
        }

        #[test]
        fn arbitrary_text_never_leaves_the_permitted_origins(candidate in ".{0,40}") {
            let out = safe_callback(Some(&candidate), &hosts());
            proptest::prop_assert!(lands_on_permitted_origin(&out, &hosts()), "{candidate:?} -> {out:?}");
        }
    }
}
