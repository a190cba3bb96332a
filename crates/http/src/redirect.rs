//! Validation of `callbackUrl`: where to send a user after sign-in or
//! sign-out.
//!
//! Only two forms are accepted: a relative path (`/dashboard?tab=1`) or an
//! absolute URL on the gateway's own origin. Everything else — another
//! origin, protocol-relative `//evil.example`, `/\evil.example` (which
//! browsers treat as `//`), `javascript:` and other schemes, control
//! characters — falls back to `/`. The result is always a path relative to
//! the gateway's origin, so it can never leave it.

use url::Url;

/// The longest `callbackUrl` kept.
const MAX_LEN: usize = 2048;

/// A safe same-origin redirect target for `candidate`, or `/`.
pub fn safe_callback(candidate: Option<&str>, public_url: &Url) -> String {
    candidate
        .and_then(|c| same_origin_path(c, public_url))
        .unwrap_or_else(|| "/".to_owned())
}

fn same_origin_path(candidate: &str, public_url: &Url) -> Option<String> {
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
        public_url.join(candidate).ok()?
    } else {
        Url::parse(candidate).ok()?
    };
    if url.origin() != public_url.origin() {
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
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> Url {
        Url::parse("http://127.0.0.1:4180").unwrap()
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
}
