//! Request-path normalisation.
//!
//! Route rules are matched against a *canonical* form of the request path, and the upstream
//! receives exactly that canonical form. Matching one spelling while forwarding another is the
//! classic way to bypass a path-based access rule (`/public/../admin`, `/%61dmin`,
//! `//admin`), so [`normalize`] produces a single spelling for every equivalent path:
//!
//! 1. The request target is split at the first `?`; the query is kept byte-for-byte and is
//!    never inspected.
//! 2. Percent-escapes of *unreserved* characters (`ALPHA / DIGIT / "-" / "." / "_" / "~"`,
//!    RFC 3986 §2.3) are decoded: `%70rotected` becomes `protected`, `%2e` becomes `.`.
//! 3. Every other escape is kept encoded and written in upper case (`%2f` becomes `%2F`), so an
//!    encoded slash never turns into a segment separator.
//! 4. Escapes of control characters (`%00`–`%1F`, `%7F`) and malformed escapes (`%`, `%4`,
//!    `%zz`) are rejected with a typed [`PathError`]; callers answer 400.
//! 5. Raw characters that are not allowed in a path segment (RFC 3986 `pchar`) are
//!    percent-encoded (upper case), including every byte of non-ASCII UTF-8; raw control
//!    characters and spaces are rejected.
//! 6. Dot segments are resolved after decoding (so `%2e%2e` counts as `..`), never climbing
//!    above the root: `/..` is `/`.
//! 7. Repeated slashes are collapsed. A single trailing slash is kept (`/a/` and `/a` are
//!    different resources for many applications).
//!
//! The result always starts with `/`, never contains `//`, never contains a `.` or `..`
//! segment, and `normalize` is idempotent on its own output.
//!
//! Encoded separators (`%2F`, `%5C`, and a raw `\`) are refused: upstreams disagree on
//! whether they split segments, so the route judged might not be the route served. So are
//! overlong UTF-8 encodings (`%C0%AF`, `%E0%80%AF`, …), which old decoders turned into `/`
//! or `.`.
//!
//! Normalisation gives one spelling; it does not make the path mean one thing to every
//! server. Route rules are therefore judged on every *lenient reading* of the path (letter
//! case, `;` parameters, double decoding, trailing dots and spaces — see
//! [`readings`](crate::readings)), starting from both the normalised path and the path as
//! written ([`NormalizedPath::written`]), which a server that does not resolve dot segments
//! routes as is.

use std::fmt;

/// Why a request path could not be normalised. Every variant means "answer 400".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (not an origin-form request target).
    #[error("the request path must start with '/'")]
    NotOriginForm,
    /// A `%` is not followed by two hexadecimal digits.
    #[error("invalid percent-encoding at byte {0}")]
    InvalidPercentEncoding(usize),
    /// A percent-escape decodes to a control character (`%00`–`%1F`, `%7F`).
    #[error("percent-encoded control character at byte {0}")]
    EncodedControlCharacter(usize),
    /// The path contains a raw control character, space or `#`.
    #[error("invalid character at byte {0}")]
    InvalidCharacter(usize),
    /// The path contains an encoded or raw separator (`%2F`, `%5C`, `\`):
    /// upstreams disagree on whether it splits segments, so the route that
    /// was judged might not be the one served.
    #[error("encoded path separator")]
    EncodedSeparator,
    /// An overlong UTF-8 encoding (`%C0`, `%C1`, `%E0` + `%80`–`%9F`, `%F0` + `%80`–`%8F`):
    /// never valid UTF-8, and decoded by lenient servers into `/`, `.` or `\`.
    #[error("overlong UTF-8 encoding at byte {0}")]
    OverlongEncoding(usize),
}

/// A request target after [`normalize`]: the canonical path plus the untouched query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalizedPath {
    path: String,
    query: Option<String>,
    written: Option<String>,
}

impl NormalizedPath {
    /// The canonical path; always starts with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path as written, in canonical characters but with its dot segments and repeated
    /// slashes kept — `Some` only when that differs from [`path`](Self::path)
    /// (`/public/../admin` is written `/public/../admin` and normalised to `/admin`). A server
    /// that does not resolve dot segments routes this spelling, so it is judged too.
    pub fn written(&self) -> Option<&str> {
        self.written.as_deref()
    }

    /// The query string without its leading `?`, exactly as the client sent it
    /// (`Some("")` for a bare trailing `?`).
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The path followed by `?query` when there is one, ready for a request URI.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for NormalizedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// Normalises a request target (`path` or `path?query`) as described in the
/// [module documentation](self).
///
/// An empty input is treated as `/`.
///
/// ```
/// use authgate_proxy::path::normalize;
/// let p = normalize("/public/../%70rotected//x?a=%2e").unwrap();
/// assert_eq!(p.path(), "/protected/x");
/// assert_eq!(p.query(), Some("a=%2e"));
/// ```
pub fn normalize(raw: &str) -> Result<NormalizedPath, PathError> {
    let (raw_path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (raw, None),
    };
    let canonical = canonical_path(raw_path)?;
    let path = remove_dot_segments(&canonical);
    let written = (!canonical.is_empty() && canonical != path).then_some(canonical);
    Ok(NormalizedPath {
        path,
        query,
        written,
    })
}

/// A path in canonical characters (see [`canonical_segment_chars`]) with its dot segments
/// and repeated slashes kept; encoded separators are refused.
pub(crate) fn canonical_path(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if !bytes.is_empty() && bytes[0] != b'/' {
        return Err(PathError::NotOriginForm);
    }
    let canonical = canonical_segment_chars(raw)?;
    if canonical.contains("%2F") || canonical.contains("%5C") {
        return Err(PathError::EncodedSeparator);
    }
    Ok(canonical)
}

/// Canonicalises one path segment (or a pattern literal): decodes unreserved escapes,
/// upper-cases the others and encodes characters that are not `pchar`. `/` is not expected
/// here but would be kept as is.
pub(crate) fn canonical_segment_chars(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| hex_value(*c));
            let lo = bytes.get(i + 2).and_then(|c| hex_value(*c));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::InvalidPercentEncoding(i));
            };
            let decoded = (hi << 4) | lo;
            if decoded < 0x20 || decoded == 0x7f {
                return Err(PathError::EncodedControlCharacter(i));
            }
            if is_overlong(decoded, escaped_byte(bytes, i + 3)) {
                return Err(PathError::OverlongEncoding(i));
            }
            if is_unreserved(decoded) {
                out.push(char::from(decoded));
            } else {
                push_escape(&mut out, decoded);
            }
            i += 3;
            continue;
        }
        if b <= 0x20 || b == 0x7f || b == b'#' {
            return Err(PathError::InvalidCharacter(i));
        }
        if b == b'/' || is_pchar(b) {
            out.push(char::from(b));
        } else {
            push_escape(&mut out, b);
        }
        i += 1;
    }
    Ok(out)
}

/// The byte a `%XX` escape at `at` encodes, if there is one.
fn escaped_byte(bytes: &[u8], at: usize) -> Option<u8> {
    if bytes.get(at) != Some(&b'%') {
        return None;
    }
    let hi = bytes.get(at + 1).and_then(|c| hex_value(*c))?;
    let lo = bytes.get(at + 2).and_then(|c| hex_value(*c))?;
    Some((hi << 4) | lo)
}

/// Whether a UTF-8 lead byte (followed by the escaped byte `next`) starts an overlong encoding.
fn is_overlong(lead: u8, next: Option<u8>) -> bool {
    match lead {
        0xC0 | 0xC1 => true,
        0xE0 => next.is_some_and(|n| (0x80..=0x9F).contains(&n)),
        0xF0 => next.is_some_and(|n| (0x80..=0x8F).contains(&n)),
        _ => false,
    }
}

/// Resolves `.`/`..`, collapses empty segments and keeps a single trailing slash.
pub(crate) fn remove_dot_segments(canonical: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    // The input starts with '/' (or is empty), so the first split item is always empty.
    let segments: Vec<&str> = canonical.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (idx, segment) in segments.iter().enumerate() {
        let is_last = idx == last;
        match *segment {
            "" | "." => trailing_slash = is_last,
            ".." => {
                stack.pop();
                trailing_slash = is_last;
            }
            other => {
                stack.push(other);
                trailing_slash = false;
            }
        }
    }
    if stack.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(canonical.len());
    for segment in &stack {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash {
        out.push('/');
    }
    out
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3 unreserved characters.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` minus pct-encoded: unreserved / sub-delims / ":" / "@".
fn is_pchar(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(raw: &str) -> String {
        match normalize(raw) {
            Ok(n) => n.path_and_query(),
            Err(e) => format!("ERR {e:?}"),
        }
    }

    #[test]
    fn examples_from_the_design() {
        assert_eq!(p("/public/../protected/x"), "/protected/x");
        assert_eq!(p("//protected//x"), "/protected/x");
        assert_eq!(p("/.."), "/");
        assert_eq!(p("/%70rotected/x"), "/protected/x");
    }

    #[test]
    fn dot_segments() {
        assert_eq!(p("/a/./b"), "/a/b");
        assert_eq!(p("/a/b/.."), "/a/");
        assert_eq!(p("/a/b/."), "/a/b/");
        assert_eq!(p("/a/%2e%2E/b"), "/b");
        assert_eq!(p("/a/.%2e/b"), "/b");
        assert_eq!(p("/../../x"), "/x");
        assert_eq!(p("/a/..b/c."), "/a/..b/c.");
        assert_eq!(p("/."), "/");
        assert_eq!(p(""), "/");
        assert_eq!(p("/"), "/");
    }

    #[test]
    fn slashes_and_trailing_slash() {
        assert_eq!(p("/a/"), "/a/");
        assert_eq!(p("/a//"), "/a/");
        assert_eq!(p("///"), "/");
        assert_eq!(p("/a///b"), "/a/b");
    }

    #[test]
    fn escapes() {
        assert_eq!(normalize("/a%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalize("/a%5Cb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalize("/a\\b"), Err(PathError::EncodedSeparator));
        assert_eq!(p("/%7e%41%5a%30%2D%5F"), "/~AZ0-_");
        assert_eq!(p("/%c3%a9"), "/%C3%A9");
        assert_eq!(p("/é"), "/%C3%A9");
        assert_eq!(p("/a{b}"), "/a%7Bb%7D");
        assert_eq!(p("/a:b@c!$&'()*+,;="), "/a:b@c!$&'()*+,;=");
        assert_eq!(p("/%25"), "/%25");
    }

    #[test]
    fn rejections() {
        assert_eq!(
            normalize("/a%00"),
            Err(PathError::EncodedControlCharacter(2))
        );
        assert_eq!(
            normalize("/a%0a"),
            Err(PathError::EncodedControlCharacter(2))
        );
        assert_eq!(
            normalize("/%7F"),
            Err(PathError::EncodedControlCharacter(1))
        );
        assert_eq!(normalize("/%"), Err(PathError::InvalidPercentEncoding(1)));
        assert_eq!(normalize("/%4"), Err(PathError::InvalidPercentEncoding(1)));
        assert_eq!(normalize("/%zz"), Err(PathError::InvalidPercentEncoding(1)));
        assert_eq!(normalize("/a b"), Err(PathError::InvalidCharacter(2)));
        assert_eq!(normalize("/a\tb"), Err(PathError::InvalidCharacter(2)));
        assert_eq!(normalize("/a#b"), Err(PathError::InvalidCharacter(2)));
        assert_eq!(normalize("/%C0%AF"), Err(PathError::OverlongEncoding(1)));
        assert_eq!(normalize("/a%c1%9c"), Err(PathError::OverlongEncoding(2)));
        assert_eq!(normalize("/%E0%80%AF"), Err(PathError::OverlongEncoding(1)));
        assert_eq!(
            normalize("/%f0%80%80%af"),
            Err(PathError::OverlongEncoding(1))
        );
        assert_eq!(p("/%E0%A4%85"), "/%E0%A4%85");
        assert_eq!(p("/%F0%9F%98%80"), "/%F0%9F%98%80");
        assert_eq!(normalize("a/b"), Err(PathError::NotOriginForm));
        assert_eq!(normalize("*"), Err(PathError::NotOriginForm));
    }

    #[test]
    fn the_written_form_is_kept_only_when_it_differs() {
        let written = |raw: &str| normalize(raw).map(|n| n.written().map(str::to_owned));
        assert_eq!(written("/admin/x"), Ok(None));
        assert_eq!(written("/a/"), Ok(None));
        assert_eq!(written(""), Ok(None));
        assert_eq!(
            written("/public/../%61dmin"),
            Ok(Some("/public/../admin".into()))
        );
        assert_eq!(written("//admin"), Ok(Some("//admin".into())));
        assert_eq!(written("/a/%2e/b?x"), Ok(Some("/a/./b".into())));
    }

    #[test]
    fn query_is_untouched() {
        let n = normalize("/a/../b?x=%2e%2e/../&y=%zz").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.path(), "/b");
        assert_eq!(n.query(), Some("x=%2e%2e/../&y=%zz"));
        assert_eq!(n.to_string(), "/b?x=%2e%2e/../&y=%zz");
        assert_eq!(normalize("/?").map(|n| n.path_and_query()), Ok("/?".into()));
        assert_eq!(normalize("/a").map(|n| n.query().is_none()), Ok(true));
    }

    fn path_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just("//".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%2e".to_owned()),
            Just("%2E%2e".to_owned()),
            Just("%2f".to_owned()),
            Just("%41".to_owned()),
            Just("%7e".to_owned()),
            Just("%c3%a9".to_owned()),
            Just("é".to_owned()),
            Just("{".to_owned()),
            "[a-z]{1,4}",
            "[%./a-zA-Z0-9_~:@!-]{1,6}",
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| format!("/{}", v.concat()))
    }

    proptest! {
        #[test]
        fn normalisation_properties(raw in path_strategy()) {
            if let Ok(n) = normalize(&raw) {
                let path = n.path();
                prop_assert!(path.starts_with('/'));
                prop_assert!(!path.contains("//"), "{path}");
                for segment in path.split('/') {
                    prop_assert!(segment != "." && segment != "..", "{path}");
                }
                let again = normalize(path);
                prop_assert_eq!(again.as_ref().map(|a| a.path()), Ok(path));
            }
        }

        #[test]
        fn arbitrary_input_never_panics(raw in "/?\\PC{0,40}") {
            if let Ok(n) = normalize(&raw) {
                prop_assert!(n.path().starts_with('/'));
                prop_assert!(!n.path().contains("//"));
                let again = normalize(n.path());
                prop_assert_eq!(again.as_ref().map(|a| a.path()), Ok(n.path()));
            }
        }
    }
}
