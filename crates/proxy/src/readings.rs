//! The lenient readings of a request path: every way a well-known server could read it.
//!
//! [`normalize`](crate::normalize) gives a path one spelling; servers still read that
//! spelling in their own ways, and a rule that guards `/admin/**` must guard every spelling
//! some server serves as `/admin/…`. [`RouteRules::judge`](crate::RouteRules::judge) judges
//! every reading listed here and combines the answers (the strictest wins); a path one of
//! whose readings is not a valid path is refused.
//!
//! Readings start from the path as written ([`NormalizedPath::written`]) and the normalised
//! path, and are closed under these steps, in any order and any number of times:
//!
//! | step | what a server does | who does it |
//! |---|---|---|
//! | [`ReadingStep::ResolvedDots`] | resolves `.`/`..` and collapses `//` (a reading *without* this step is judged too) | nearly all; Express and other routers do not |
//! | [`ReadingStep::PathParameters`] | drops `;…` from every segment (`/admin;x=1/` → `/admin/`, `/x/..;/admin` → `/x/../admin`) | Tomcat, Jetty, Spring |
//! | [`ReadingStep::DecodedDelimiters`] | decodes escaped sub-delimiters, `:` and `@` (`%3B` → `;`, then parameters drop) | Spring, servers that decode before routing |
//! | [`ReadingStep::DoubleDecoded`] | decodes `%25XX` once more (`%2561` → `a`) | servers behind a decoding proxy, IIS, Spring |
//! | [`ReadingStep::TrailingSpaces`] | drops trailing spaces of a segment (`..%20` → `..`) | Windows |
//! | [`ReadingStep::TrailingDotsAndSpaces`] | drops trailing dots and spaces of a segment (`admin.` → `admin`) | Windows, IIS |
//! | [`ReadingStep::FoldedCase`] | folds non-ASCII letter case (`ADM%C4%B1N` → `admin`, `%E2%84%AA` → `k`) | IIS, ASP.NET, Java `equalsIgnoreCase` |
//!
//! ASCII letter case is not a step: every reading is also matched case-insensitively by the
//! rules themselves, which costs no allocation.
//!
//! What is refused rather than judged (400), and why:
//!
//! | spelling | why |
//! |---|---|
//! | `%2F`, `%5C`, `\` (encoded or raw separators) | servers disagree on whether they split segments ([`PathError::EncodedSeparator`]) |
//! | `%00` and every control character | NUL truncates the path in C-based servers ([`PathError::EncodedControlCharacter`]) |
//! | overlong UTF-8 (`%C0%AE`) | decoded into `.` or `/` by old decoders ([`PathError::OverlongEncoding`]) |
//! | a reading that is one of the above (`%252F`, `%2500`, `%255C`) | [`AmbiguousPath::InvalidReading`] |
//! | more than [`MAX_READINGS`] readings, or readings of a path over [`MAX_LENIENT_PATH_LEN`] bytes | [`AmbiguousPath::TooManyReadings`], [`AmbiguousPath::TooLong`]: bounds the work per request; no legitimate path comes close |
//!
//! Not covered: Windows 8.3 short names (`ADMINI~1`), NTFS streams (`admin::$DATA`),
//! best-fit and compatibility mappings of full-width characters. Configure routes for such
//! upstreams with a fail-closed default (no public catch-all).
//!
//! A path without `;`, a segment ending in `.` or `%20`, an escaped `%`, delimiter or
//! non-ASCII byte, a dot segment or `//` — nearly every path — has only one reading, and is
//! judged without building any.

use crate::path::{NormalizedPath, PathError, canonical_path, hex_value, remove_dot_segments};

/// The most readings judged for one path; a path with more is refused.
pub const MAX_READINGS: usize = 32;

/// The longest path whose lenient readings are judged; a longer path that has any is
/// refused, which bounds the work one request can cause.
pub const MAX_LENIENT_PATH_LEN: usize = 4096;

/// One way a lenient server reads a path (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadingStep {
    /// `.`/`..` resolved and repeated slashes collapsed.
    ResolvedDots,
    /// `;` parameters dropped from every segment.
    PathParameters,
    /// Escaped sub-delimiters, `:` and `@` decoded.
    DecodedDelimiters,
    /// `%25XX` decoded once more.
    DoubleDecoded,
    /// Trailing spaces dropped from every segment.
    TrailingSpaces,
    /// Trailing dots and spaces dropped from every segment.
    TrailingDotsAndSpaces,
    /// Non-ASCII letter case folded.
    FoldedCase,
}

impl ReadingStep {
    /// Every step, in the order they are tried.
    pub const ALL: [ReadingStep; 7] = [
        ReadingStep::ResolvedDots,
        ReadingStep::PathParameters,
        ReadingStep::DecodedDelimiters,
        ReadingStep::DoubleDecoded,
        ReadingStep::TrailingSpaces,
        ReadingStep::TrailingDotsAndSpaces,
        ReadingStep::FoldedCase,
    ];

    /// A short name for logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadingStep::ResolvedDots => "resolved dot segments",
            ReadingStep::PathParameters => "path parameters dropped",
            ReadingStep::DecodedDelimiters => "delimiters decoded",
            ReadingStep::DoubleDecoded => "double-decoded",
            ReadingStep::TrailingSpaces => "trailing spaces dropped",
            ReadingStep::TrailingDotsAndSpaces => "trailing dots and spaces dropped",
            ReadingStep::FoldedCase => "case-folded",
        }
    }

    /// The reading of `path` (canonical characters) after this step, or `None` when the step
    /// changes nothing.
    fn apply(self, path: &str) -> Result<Option<String>, PathError> {
        let changed = match self {
            ReadingStep::ResolvedDots => Some(remove_dot_segments(path)),
            ReadingStep::PathParameters => {
                map_segments(path, |s| s.split_once(';').map_or(s, |(kept, _)| kept))
            }
            ReadingStep::DecodedDelimiters => decode_delimiters(path),
            ReadingStep::DoubleDecoded => decode_escaped_percent(path),
            ReadingStep::TrailingSpaces => map_segments(path, trim_trailing_spaces),
            ReadingStep::TrailingDotsAndSpaces => map_segments(path, |s| {
                if s == "." || s == ".." {
                    s
                } else {
                    trim_trailing_dots_and_spaces(s)
                }
            }),
            ReadingStep::FoldedCase => fold_non_ascii(path),
        };
        match changed {
            Some(reading) if reading != path => canonical_path(&reading).map(Some),
            _ => Ok(None),
        }
    }
}

/// Why a path is refused instead of judged. Every variant means "answer 400".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmbiguousPath {
    /// A lenient reading of the path is itself not a valid path (`%252F` reads as `%2F`).
    #[error("a lenient reading of the path ({}) is not a valid path: {source}", step.as_str())]
    InvalidReading {
        /// The step that produced the invalid reading.
        step: ReadingStep,
        /// What is wrong with that reading.
        source: PathError,
    },
    /// The path has more than [`MAX_READINGS`] readings.
    #[error("the path has more than {MAX_READINGS} lenient readings")]
    TooManyReadings,
    /// The path has lenient readings and is longer than [`MAX_LENIENT_PATH_LEN`] bytes.
    #[error("the path is longer than {MAX_LENIENT_PATH_LEN} bytes and has lenient readings")]
    TooLong,
}

/// The readings of a path to judge.
#[derive(Debug)]
pub(crate) enum Readings<'p> {
    /// The path has no lenient variant: only itself.
    Only(&'p str),
    /// Every reading, the normalised path first.
    Several(Vec<String>),
}

/// Lists the readings of `path` (see the [module documentation](self)).
pub(crate) fn readings(path: &NormalizedPath) -> Result<Readings<'_>, AmbiguousPath> {
    let normalised = path.path();
    if path.written().is_none() && !has_lenient_features(normalised) {
        return Ok(Readings::Only(normalised));
    }
    if path.written().unwrap_or(normalised).len() > MAX_LENIENT_PATH_LEN {
        return Err(AmbiguousPath::TooLong);
    }
    let mut all = vec![normalised.to_owned()];
    if let Some(written) = path.written() {
        all.push(written.to_owned());
    }
    let mut next = 0;
    while let Some(current) = all.get(next) {
        let mut found = Vec::new();
        for step in ReadingStep::ALL {
            match step.apply(current) {
                Ok(Some(reading)) => found.push(reading),
                Ok(None) => {}
                Err(source) => {
                    return Err(AmbiguousPath::InvalidReading { step, source });
                }
            }
        }
        for reading in found {
            if !all.contains(&reading) {
                if all.len() == MAX_READINGS {
                    return Err(AmbiguousPath::TooManyReadings);
                }
                all.push(reading);
            }
        }
        next += 1;
    }
    Ok(Readings::Several(all))
}

/// Whether some step could change `path` (a normalised path: no dot segments, no `//`):
/// a `;`, a segment ending in `.` or `%20`, or an escape of `%`, of a delimiter or of a
/// non-ASCII byte.
fn has_lenient_features(path: &str) -> bool {
    let bytes = path.as_bytes();
    let ends_segment = |at: usize| bytes.get(at).is_none_or(|b| *b == b'/');
    bytes.iter().enumerate().any(|(i, b)| match b {
        b';' => true,
        b'.' => ends_segment(i + 1),
        b'%' => match escaped(bytes, i) {
            Some(b' ') => ends_segment(i + 3),
            Some(decoded) => {
                decoded == b'%' || decoded >= 0x80 || decoded_delimiter(decoded).is_some()
            }
            None => false,
        },
        _ => false,
    })
}

/// Rebuilds `path` with every segment passed through `f`; `None` when nothing changed.
fn map_segments<'a>(path: &'a str, f: impl Fn(&'a str) -> &'a str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    let mut changed = false;
    for segment in path.split('/').skip(1) {
        let mapped = f(segment);
        changed |= mapped.len() != segment.len();
        out.push('/');
        out.push_str(mapped);
    }
    changed.then_some(out)
}

fn trim_trailing_spaces(mut segment: &str) -> &str {
    while let Some(rest) = segment.strip_suffix("%20") {
        segment = rest;
    }
    segment
}

fn trim_trailing_dots_and_spaces(mut segment: &str) -> &str {
    loop {
        if let Some(rest) = segment.strip_suffix('.') {
            segment = rest;
        } else if let Some(rest) = segment.strip_suffix("%20") {
            segment = rest;
        } else {
            return segment;
        }
    }
}

/// The characters a `pchar` may hold raw that canonical paths keep escaped when the client
/// escaped them: sub-delimiters, `:` and `@`.
fn decoded_delimiter(byte: u8) -> Option<char> {
    matches!(
        byte,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@'
    )
    .then_some(char::from(byte))
}

/// Decodes the escapes of delimiters (`%3B` → `;`).
fn decode_delimiters(path: &str) -> Option<String> {
    decode_escapes(path, |bytes, at| {
        let byte = escaped(bytes, at)?;
        decoded_delimiter(byte).map(|c| (c.to_string(), 3))
    })
}

/// Decodes `%25XX` into `%XX` (the second decoding of a double-encoded escape).
fn decode_escaped_percent(path: &str) -> Option<String> {
    decode_escapes(path, |bytes, at| {
        (escaped(bytes, at)? == b'%'
            && bytes.get(at + 3).copied().and_then(hex_value).is_some()
            && bytes.get(at + 4).copied().and_then(hex_value).is_some())
        .then(|| ("%".to_owned(), 3))
    })
}

/// Folds the letter case of the non-ASCII characters a path spells in UTF-8 escapes, so a
/// server that compares paths case-insensitively by Unicode rules reads the same path;
/// invalid UTF-8 is left alone. ASCII is left alone too (rules match it case-insensitively).
pub(crate) fn fold_non_ascii(path: &str) -> Option<String> {
    decode_escapes(path, |bytes, at| {
        let lead = escaped(bytes, at)?;
        let len = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return None,
        };
        let mut utf8 = [0u8; 4];
        for (i, slot) in utf8.iter_mut().enumerate().take(len) {
            *slot = escaped(bytes, at + 3 * i)?;
        }
        let c = std::str::from_utf8(&utf8[..len]).ok()?.chars().next()?;
        let folded = fold_char(c);
        (folded != c).then(|| (escape_char(folded), 3 * len))
    })
}

/// The letter-case fold that makes equal every pair of characters some server compares as
/// equal ignoring case: lower case of the upper case (Java's `equalsIgnoreCase`, .NET's
/// `OrdinalIgnoreCase`), with `İ` folded to `i`.
fn fold_char(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

/// `c` as it appears in a canonical path: ASCII as is, anything else as `%XX` escapes.
fn escape_char(c: char) -> String {
    if c.is_ascii() {
        return c.to_string();
    }
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect()
}

/// The byte escaped as `%XX` at `at`, if any.
fn escaped(bytes: &[u8], at: usize) -> Option<u8> {
    if bytes.get(at) != Some(&b'%') {
        return None;
    }
    let hi = bytes.get(at + 1).copied().and_then(hex_value)?;
    let lo = bytes.get(at + 2).copied().and_then(hex_value)?;
    Some((hi << 4) | lo)
}

/// Rewrites `path`, replacing the escapes `decode` recognises (it returns the replacement and
/// how many bytes it consumes); `None` when nothing was replaced.
fn decode_escapes(
    path: &str,
    decode: impl Fn(&[u8], usize) -> Option<(String, usize)>,
) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some((replacement, consumed)) = decode(bytes, i)
        {
            let buf = out.get_or_insert_with(|| String::with_capacity(path.len()));
            buf.push_str(&path[copied..i]);
            buf.push_str(&replacement);
            i += consumed;
            copied = i;
            continue;
        }
        i += 1;
    }
    out.map(|mut buf| {
        buf.push_str(&path[copied..]);
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::normalize;

    fn all(raw: &str) -> Result<Vec<String>, AmbiguousPath> {
        let path = normalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        Ok(match readings(&path)? {
            Readings::Only(p) => vec![p.to_owned()],
            Readings::Several(v) => v,
        })
    }

    fn has(raw: &str, reading: &str) -> bool {
        all(raw).is_ok_and(|v| v.iter().any(|r| r == reading))
    }

    #[test]
    fn a_plain_path_has_one_reading_and_builds_none() {
        let path = normalize("/Admin/Users/index.html").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            readings(&path),
            Ok(Readings::Only("/Admin/Users/index.html"))
        ));
    }

    #[test]
    fn each_step_gives_the_reading_its_servers_take() {
        assert!(has("/admin;x=1/users", "/admin/users"));
        assert!(has("/admin%3Bx/users", "/admin;x/users"));
        assert!(has("/admin%3Bx/users", "/admin/users"));
        assert!(has("/x/..;/admin/users", "/x/../admin/users"));
        assert!(has("/x/..;/admin/users", "/admin/users"));
        assert!(has("/%2561dmin/users", "/admin/users"));
        assert!(has("/%252561dmin", "/admin"));
        assert!(has("/admin./users", "/admin/users"));
        assert!(has("/admin.%20./users", "/admin/users"));
        assert!(has("/x/..%20/admin", "/admin"));
        assert!(has("/adm%C4%B1n", "/admin"));
        assert!(has("/ADM%C4%B0N", "/ADMiN"));
        assert!(has("/%E2%84%AAey", "/key"));
        assert!(has("/CAF%C3%89", "/CAF%C3%A9"));
        assert!(has("/public/../admin", "/public/../admin"));
        assert!(has("/public/../admin", "/admin"));
        assert!(has("//admin", "//admin"));
    }

    #[test]
    fn readings_that_are_not_paths_are_refused() {
        for raw in ["/admin%252fusers", "/a%2500", "/a%255cb", "/%25C0%25AE"] {
            assert!(
                matches!(
                    all(raw),
                    Err(AmbiguousPath::InvalidReading {
                        step: ReadingStep::DoubleDecoded,
                        ..
                    })
                ),
                "{raw}: {:?}",
                all(raw)
            );
        }
        let error = all("/admin%252fusers").err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "a lenient reading of the path (double-decoded) is not a valid path: encoded path separator"
            )
        );
    }

    #[test]
    fn a_percent_sign_that_is_not_an_escape_stays() {
        assert_eq!(all("/50%25"), Ok(vec!["/50%25".to_owned()]));
        assert_eq!(all("/50%25off"), Ok(vec!["/50%25off".to_owned()]));
    }

    #[test]
    fn dot_segments_stay_dot_segments() {
        assert!(has("/a/../b.", "/a/../b"));
        assert!(has("/a/../b.", "/b"));
        assert!(!has("/a/../b", "/a/./b"));
    }

    #[test]
    fn too_many_readings_or_too_long_a_path_are_refused() {
        let nested = format!("/%{}61dmin", "25".repeat(40));
        assert_eq!(all(&nested), Err(AmbiguousPath::TooManyReadings));
        let long = format!("/{};x", "a".repeat(MAX_LENIENT_PATH_LEN));
        assert_eq!(all(&long), Err(AmbiguousPath::TooLong));
        let long_plain = format!("/{}", "a".repeat(MAX_LENIENT_PATH_LEN));
        assert!(all(&long_plain).is_ok());
    }

    #[test]
    fn case_folding_matches_what_servers_equate() {
        assert_eq!(fold_char('A'), 'a');
        assert_eq!(fold_char('\u{17F}'), 's');
        assert_eq!(fold_char('\u{131}'), 'i');
        assert_eq!(fold_char('\u{130}'), 'i');
        assert_eq!(fold_char('\u{212A}'), 'k');
        assert_eq!(fold_char('É'), 'é');
        assert_eq!(fold_char('ß'), 'ß');
    }
}
