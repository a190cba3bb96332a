//! `route_judge`: the path normaliser and the route judgement.

use authgate_proxy::{
    Access, AllowList, Judgement, NormalizedPath, RouteRule, RouteRules, normalize,
};
use axum::http::Method;
use std::sync::OnceLock;

/// The methods the first byte picks from.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get", "PATCH",
];

/// Rules like a real configuration's: allow-lists, a method filter, `*` and
/// `**`, percent-escapes and non-ASCII in patterns; `[0]` ends with a public
/// catch-all, `[1]` falls back to the default (`protected`).
fn rules() -> &'static [RouteRules; 2] {
    static RULES: OnceLock<[RouteRules; 2]> = OnceLock::new();
    RULES.get_or_init(|| {
        let admins = AllowList {
            emails: vec!["ann@example.com".into()],
            ..AllowList::default()
        };
        let staff = AllowList {
            domains: vec!["example.com".into()],
            ..AllowList::default()
        };
        let list = |catch_all: bool| {
            let mut rules = vec![
                RouteRule::new("/admin/**", Access::Protected).with_allow(admins.clone()),
                RouteRule::new("/hooks/**", Access::Public).with_methods([Method::POST]),
                RouteRule::new("/public/**", Access::Public),
                RouteRule::new("/static/*/app.js", Access::Public),
                RouteRule::new("/api/**", Access::Api),
                RouteRule::new("/reports/*", Access::Protected).with_allow(staff.clone()),
                RouteRule::new("/%C3%A9t%C3%A9/**", Access::Protected),
                RouteRule::new("/healthz", Access::Public),
            ];
            if catch_all {
                rules.push(RouteRule::new("/**", Access::Public));
            }
            match RouteRules::new(rules) {
                Ok(rules) => rules,
                Err(e) => panic!("the fuzzing rules are refused: {e}"),
            }
        };
        [list(true), list(false)]
    })
}

/// `route_judge`: the first byte picks the method and the rule set, the rest
/// is a request target (`path?query`).
///
/// Properties: nothing panics; a normalised path starts with `/`, has no
/// `//`, `.` or `..` segment, keeps the query byte for byte, and normalises
/// to itself (idempotence, as `path.rs` documents); judging the request is
/// never more lenient than judging its normalised path alone (the readings
/// of the written form are added, none taken away); `HEAD` is judged like
/// `GET` (no rule here filters on `HEAD` alone); a trailing slash never makes
/// a path more lenient.
pub fn route_judge(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(method) = Method::from_bytes(METHODS[usize::from(selector) % METHODS.len()].as_bytes())
    else {
        panic!("a listed method is refused");
    };
    let rules = &rules()[usize::from(selector / 8) % 2];
    let Ok(path) = normalize(raw) else {
        return;
    };
    check_normal_form(raw, &path);

    let Ok(judgement) = rules.judge(&method, &path) else {
        return;
    };
    let Ok(alone) = normalize(path.path()) else {
        panic!("a normalised path does not normalise: {raw:?}");
    };
    match rules.judge(&method, &alone) {
        Ok(j) => assert_not_laxer(&judgement, &j, raw),
        Err(e) => panic!("{raw:?} is judged but its normalised path is refused: {e}"),
    }
    if method == Method::GET || method == Method::HEAD {
        let other = if method == Method::GET {
            Method::HEAD
        } else {
            Method::GET
        };
        match rules.judge(&other, &path) {
            Ok(j) => assert_eq!(j, judgement, "GET and HEAD differ for {raw:?}"),
            Err(e) => panic!("{raw:?} judged for {method} but not {other}: {e}"),
        }
    }
    if !path.path().ends_with('/') && path.written().is_none() {
        let slashed = format!("{}/", path.path());
        if let Ok(slashed) = normalize(&slashed)
            && let Ok(j) = rules.judge(&method, &slashed)
        {
            assert_not_laxer(&j, &judgement, raw);
        }
    }
}

/// The documented form of a normalised path.
fn check_normal_form(raw: &str, path: &NormalizedPath) {
    let p = path.path();
    assert!(p.starts_with('/'), "{raw:?} -> {p:?}");
    assert!(!p.contains("//"), "{raw:?} -> {p:?}");
    assert!(
        p.split('/').all(|s| s != "." && s != ".."),
        "{raw:?} -> {p:?}"
    );
    assert_eq!(path.query(), raw.split_once('?').map(|(_, q)| q), "{raw:?}");
    if let Some(written) = path.written() {
        assert_ne!(written, p, "{raw:?}");
    }
    match normalize(p) {
        Ok(again) => {
            assert_eq!(again.path(), p, "normalize is not idempotent on {raw:?}");
            assert_eq!(again.written(), None, "{raw:?} -> {p:?}");
        }
        Err(e) => panic!("{raw:?} -> {p:?}, which does not normalise: {e}"),
    }
    match normalize(&path.path_and_query()) {
        Ok(again) => assert_eq!((again.path(), again.query()), (p, path.query()), "{raw:?}"),
        Err(e) => panic!(
            "{raw:?} -> {:?}, which does not normalise: {e}",
            path.path_and_query()
        ),
    }
}

/// `strict` requires a session whenever `lax` does, with all of its allow-lists.
fn assert_not_laxer(strict: &Judgement<'_>, lax: &Judgement<'_>, raw: &str) {
    if lax.requires_session() {
        assert!(
            strict.requires_session(),
            "{raw:?}: {strict:?} is laxer than {lax:?}"
        );
        for list in lax.allow_lists() {
            assert!(
                strict.allow_lists().any(|l| l == list),
                "{raw:?}: {strict:?} drops an allow-list of {lax:?}"
            );
        }
    }
}
