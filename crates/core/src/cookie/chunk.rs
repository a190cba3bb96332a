//! Splitting a session token over several cookies, as Auth.js does.
//!
//! Browsers cap a cookie at about 4 KiB, so Auth.js splits a longer value
//! into `name.0`, `name.1`, … and writes the bare `name` otherwise. On every
//! write it expires the request's old chunks that the new value does not
//! overwrite. The writer here does exactly that; the reader is stricter than
//! Auth.js's: it accepts the bare name alone or a gap-free `.0..n` series,
//! and rejects duplicates, mixtures, odd indices and oversized series.

use super::error::CookieError;
use super::jwe::MAX_TOKEN_LEN;

/// `@auth/core`'s chunk size: 4096 minus its 160-byte estimate of the attributes.
pub const AUTHJS_CHUNK_SIZE: usize = 4096 - 160;
/// next-auth v4's chunk size: 4096 minus 163.
pub const NEXT_AUTH_V4_CHUNK_SIZE: usize = 4096 - 163;
/// The most chunks a session cookie may have.
pub const MAX_CHUNKS: usize = 10;

/// One `Set-Cookie` to send: a value to store, or a name to expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieWrite {
    /// Cookie name (`name` or `name.N`).
    pub name: String,
    /// Value; empty when expiring.
    pub value: String,
    /// `true`: expire this cookie (Max-Age=0) instead of storing `value`.
    pub expire: bool,
}

/// The writes that replace a session cookie with `value`.
///
/// `present` are the names of the request's cookies; those that belong to
/// this session cookie (`name` or `name.<digits>`) and are not overwritten get
/// an expiring write. An empty `value` deletes the session cookie.
pub fn write_chunks<'a>(
    name: &str,
    value: &str,
    present: impl IntoIterator<Item = &'a str>,
    chunk_size: usize,
) -> Vec<CookieWrite> {
    let mut writes = Vec::new();
    if !value.is_empty() && value.len() <= chunk_size {
        writes.push(CookieWrite {
            name: name.to_owned(),
            value: value.to_owned(),
            expire: false,
        });
    } else if !value.is_empty() {
        for (i, part) in split_at_char_boundaries(value, chunk_size.max(4)).enumerate() {
            writes.push(CookieWrite {
                name: format!("{name}.{i}"),
                value: part.to_owned(),
                expire: false,
            });
        }
    }
    let mut stale: Vec<String> = present
        .into_iter()
        .filter(|n| is_chunk_of(name, n) && !writes.iter().any(|w| w.name == *n))
        .map(str::to_owned)
        .collect();
    stale.sort();
    stale.dedup();
    writes.extend(stale.into_iter().map(|name| CookieWrite {
        name,
        value: String::new(),
        expire: true,
    }));
    writes
}

/// Reassembles a session cookie from the request's cookies.
///
/// `Ok(None)` when the request carries none of it.
pub fn read_chunks<'a>(
    name: &str,
    cookies: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Option<String>, CookieError> {
    let mut bare: Option<&str> = None;
    let mut chunks: Vec<Option<&str>> = Vec::new();
    let mut total = 0usize;
    for (cookie_name, value) in cookies {
        if cookie_name == name {
            if bare.replace(value).is_some() {
                return Err(CookieError::DuplicateCookie(cookie_name.to_owned()));
            }
        } else if let Some(suffix) = cookie_name
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            let index = chunk_index(suffix)
                .ok_or_else(|| CookieError::BadChunkName(cookie_name.chars().take(64).collect()))?;
            if index >= MAX_CHUNKS {
                return Err(CookieError::TooManyChunks { max: MAX_CHUNKS });
            }
            if chunks.len() <= index {
                chunks.resize(index + 1, None);
            }
            if chunks[index].replace(value).is_some() {
                return Err(CookieError::DuplicateCookie(cookie_name.to_owned()));
            }
        } else {
            continue;
        }
        total = total.saturating_add(value.len());
        if total > MAX_TOKEN_LEN {
            return Err(CookieError::Oversized {
                len: total,
                max: MAX_TOKEN_LEN,
            });
        }
    }
    match (bare, chunks.is_empty()) {
        (None, true) => Ok(None),
        (Some(value), true) => Ok(Some(value.to_owned())),
        (Some(_), false) => Err(CookieError::MixedChunks),
        (None, false) => {
            let mut joined = String::with_capacity(total);
            for (i, chunk) in chunks.iter().enumerate() {
                joined.push_str(chunk.ok_or(CookieError::MissingChunk(i))?);
            }
            Ok(Some(joined))
        }
    }
}

/// Whether `candidate` is `name` itself or one of its `name.<digits>` chunks:
/// the one matcher for "is this cookie a piece of that session cookie".
pub fn is_chunk_of(name: &str, candidate: &str) -> bool {
    candidate == name
        || candidate
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|suffix| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}

/// A canonical decimal chunk index: digits only, no leading zero, at most 3 digits.
fn chunk_index(suffix: &str) -> Option<usize> {
    let canonical = !suffix.is_empty()
        && suffix.len() <= 3
        && suffix.bytes().all(|b| b.is_ascii_digit())
        && (suffix == "0" || !suffix.starts_with('0'));
    canonical.then(|| suffix.parse().ok()).flatten()
}

/// Splits `s` into pieces of at most `max` bytes without cutting a character.
fn split_at_char_boundaries(s: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "authjs.session-token";

    fn live(writes: &[CookieWrite]) -> Vec<(&str, &str)> {
        writes
            .iter()
            .filter(|w| !w.expire)
            .map(|w| (w.name.as_str(), w.value.as_str()))
            .collect()
    }

    #[test]
    fn a_short_value_is_written_under_the_bare_name() {
        let writes = write_chunks(NAME, "abc", [], AUTHJS_CHUNK_SIZE);
        assert_eq!(live(&writes), vec![(NAME, "abc")]);
    }

    #[test]
    fn a_value_of_exactly_one_chunk_is_not_split() {
        let v = "x".repeat(AUTHJS_CHUNK_SIZE);
        let writes = write_chunks(NAME, &v, [], AUTHJS_CHUNK_SIZE);
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].name, NAME);
    }

    #[test]
    fn a_long_value_is_split_into_numbered_chunks_of_the_authjs_size() {
        let v = "x".repeat(AUTHJS_CHUNK_SIZE * 2 + 1);
        let writes = write_chunks(NAME, &v, [], AUTHJS_CHUNK_SIZE);
        let names: Vec<_> = writes.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "authjs.session-token.0",
                "authjs.session-token.1",
                "authjs.session-token.2"
            ]
        );
        assert_eq!(writes[0].value.len(), 3936);
        assert_eq!(writes[2].value.len(), 1);
    }

    #[test]
    fn rewriting_expires_stale_chunks_and_the_bare_cookie() {
        let present = [
            "authjs.session-token.0",
            "authjs.session-token.1",
            "authjs.session-token.2",
            "other",
            "authjs.session-token-x",
        ];
        let writes = write_chunks(NAME, "short", present, AUTHJS_CHUNK_SIZE);
        let expired: Vec<_> = writes
            .iter()
            .filter(|w| w.expire)
            .map(|w| w.name.as_str())
            .collect();
        assert_eq!(
            expired,
            [
                "authjs.session-token.0",
                "authjs.session-token.1",
                "authjs.session-token.2"
            ]
        );
        let v = "y".repeat(AUTHJS_CHUNK_SIZE + 10);
        let writes = write_chunks(
            NAME,
            &v,
            [NAME, "authjs.session-token.0"],
            AUTHJS_CHUNK_SIZE,
        );
        let expired: Vec<_> = writes
            .iter()
            .filter(|w| w.expire)
            .map(|w| w.name.as_str())
            .collect();
        assert_eq!(expired, [NAME]);
    }

    #[test]
    fn an_empty_value_deletes_every_piece() {
        let writes = write_chunks(
            NAME,
            "",
            [NAME, "authjs.session-token.0"],
            AUTHJS_CHUNK_SIZE,
        );
        assert!(writes.iter().all(|w| w.expire));
        assert_eq!(writes.len(), 2);
    }

    #[test]
    fn reading_reassembles_chunks_in_index_order() {
        let cookies = [
            ("authjs.session-token.1", "b"),
            ("unrelated", "z"),
            ("authjs.session-token.0", "a"),
        ];
        assert_eq!(read_chunks(NAME, cookies), Ok(Some("ab".into())));
        assert_eq!(read_chunks(NAME, [("x", "y")]), Ok(None));
    }

    #[test]
    fn reading_rejects_malformed_series() {
        let cases: Vec<(Vec<(&str, &str)>, CookieError)> = vec![
            (
                vec![
                    ("authjs.session-token.0", "a"),
                    ("authjs.session-token.2", "c"),
                ],
                CookieError::MissingChunk(1),
            ),
            (
                vec![("authjs.session-token.1", "b")],
                CookieError::MissingChunk(0),
            ),
            (
                vec![(NAME, "a"), ("authjs.session-token.0", "b")],
                CookieError::MixedChunks,
            ),
            (
                vec![(NAME, "a"), (NAME, "b")],
                CookieError::DuplicateCookie(NAME.into()),
            ),
            (
                vec![("authjs.session-token.01", "a")],
                CookieError::BadChunkName("authjs.session-token.01".into()),
            ),
            (
                vec![("authjs.session-token.-1", "a")],
                CookieError::BadChunkName("authjs.session-token.-1".into()),
            ),
            (
                vec![("authjs.session-token.10", "a")],
                CookieError::TooManyChunks { max: MAX_CHUNKS },
            ),
        ];
        for (cookies, expected) in cases {
            assert_eq!(
                read_chunks(NAME, cookies.clone()),
                Err(expected),
                "{cookies:?}"
            );
        }
    }

    #[test]
    fn splitting_never_cuts_a_multibyte_character() {
        let v = "é".repeat(10);
        let parts: Vec<_> = split_at_char_boundaries(&v, 5).collect();
        assert!(parts.iter().all(|p| p.len() <= 5));
        assert_eq!(parts.concat(), v);
    }
}
