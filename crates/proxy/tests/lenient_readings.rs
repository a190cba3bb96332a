//! The route judgement is never more permissive than the decision for any way a lenient
//! server could read the path.
//!
//! The oracle here is independent of the crate's own reading code: it models a server as a
//! short pipeline of operations on the raw bytes (percent-decode, drop `;` parameters, trim
//! trailing dots and spaces, resolve dot segments) followed by a case-sensitive or
//! case-insensitive match, enumerates every pipeline of up to four operations, and applies
//! each to the path as the client wrote it (what an upstream behind forward-auth receives)
//! and to the normalised path (what the reverse proxy forwards).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use authgate_proxy::{Access, AllowList, Permits, RouteRule, RouteRules, Subject, normalize};
use axum::http::Method;
use proptest::prelude::*;

const ANN: &str = "ann@example.com";
const BOB: &str = "bob@example.com";

fn rules(catch_all: bool) -> RouteRules {
    let mut list = vec![
        RouteRule::new("/admin/**", Access::Protected).with_allow(AllowList {
            emails: vec![ANN.into()],
            ..AllowList::default()
        }),
        RouteRule::new("/api/**", Access::Api),
    ];
    if catch_all {
        list.push(RouteRule::new("/**", Access::Public));
    }
    RouteRules::new(list).unwrap()
}

/// Who passes: anonymous, Ann (on the admin list), Bob (signed in, on no list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Passes {
    anonymous: bool,
    ann: bool,
    bob: bool,
}

/// One operation of a modelled server.
#[derive(Debug, Clone, Copy)]
enum Op {
    Decode,
    StripParameters,
    TrimSpaces,
    TrimDotsAndSpaces,
    ResolveDots,
}

const OPS: [Op; 5] = [
    Op::Decode,
    Op::StripParameters,
    Op::TrimSpaces,
    Op::TrimDotsAndSpaces,
    Op::ResolveDots,
];

/// A reading that some server would split differently or truncate (a separator or a control
/// character appeared by decoding).
struct Dangerous;

fn percent_decode(segment: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < segment.len() {
        if segment[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                segment.get(i + 1).copied().and_then(hex),
                segment.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(segment[i]);
            i += 1;
        }
    }
    out
}

fn apply(op: Op, segments: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, Dangerous> {
    Ok(match op {
        Op::Decode => {
            let decoded: Vec<Vec<u8>> = segments.iter().map(|s| percent_decode(s)).collect();
            if decoded
                .iter()
                .flatten()
                .any(|b| *b == b'/' || *b == b'\\' || *b < 0x20 || *b == 0x7f)
            {
                return Err(Dangerous);
            }
            decoded
        }
        Op::StripParameters => segments
            .into_iter()
            .map(|s| s.split(|b| *b == b';').next().unwrap_or(&[]).to_vec())
            .collect(),
        Op::TrimSpaces | Op::TrimDotsAndSpaces => segments
            .into_iter()
            .map(|mut s| {
                if s == b"." || s == b".." {
                    return s;
                }
                loop {
                    if s.ends_with(b" ") {
                        s.pop();
                    } else if s.ends_with(b"%20") {
                        s.truncate(s.len() - 3);
                    } else if matches!(op, Op::TrimDotsAndSpaces) && s.ends_with(b".") {
                        s.pop();
                    } else {
                        return s;
                    }
                }
            })
            .collect(),
        Op::ResolveDots => {
            let mut out: Vec<Vec<u8>> = Vec::new();
            for s in segments {
                match s.as_slice() {
                    b"" | b"." => {}
                    b".." => {
                        out.pop();
                    }
                    _ => out.push(s),
                }
            }
            out
        }
    })
}

/// Java's `equalsIgnoreCase` on characters: equal, or equal upper case, or equal lower case
/// of the upper case (simple, one-character mappings: `İ` lowers to `i`).
fn same_ignoring_case(a: &str, b: &str) -> bool {
    let upper = |c: char| c.to_uppercase().next().unwrap_or(c);
    let lower = |c: char| c.to_lowercase().next().unwrap_or(c);
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x == y || upper(x) == upper(y) || lower(upper(x)) == lower(upper(y)))
}

/// What the test's rules say for one reading (its segments after a server's pipeline).
fn oracle(segments: &[Vec<u8>], ignore_case: bool, catch_all: bool) -> Passes {
    let first = segments
        .first()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    let is = |name: &str| {
        if ignore_case {
            same_ignoring_case(&first, name)
        } else {
            first == name
        }
    };
    if is("admin") {
        Passes {
            anonymous: false,
            ann: true,
            bob: false,
        }
    } else if is("api") || !catch_all {
        Passes {
            anonymous: false,
            ann: true,
            bob: true,
        }
    } else {
        Passes {
            anonymous: true,
            ann: true,
            bob: true,
        }
    }
}

/// Every pipeline of up to `depth` operations.
fn pipelines(depth: usize) -> Vec<Vec<Op>> {
    let mut all = vec![Vec::new()];
    let mut frontier = vec![Vec::new()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for p in &frontier {
            for op in OPS {
                let mut longer: Vec<Op> = p.clone();
                longer.push(op);
                next.push(longer);
            }
        }
        all.extend(next.iter().cloned());
        frontier = next;
    }
    all
}

/// The decisions of every modelled server for `path`, or `Err` when one of them finds a
/// dangerous reading.
fn server_decisions(
    path: &str,
    catch_all: bool,
    pipelines: &[Vec<Op>],
) -> Result<Vec<Passes>, Dangerous> {
    if path.contains('\\') {
        return Err(Dangerous);
    }
    let start: Vec<Vec<u8>> = path
        .split('/')
        .skip(1)
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let mut out = Vec::new();
    for pipeline in pipelines {
        let mut segments = start.clone();
        for op in pipeline {
            segments = apply(*op, segments)?;
        }
        for ignore_case in [false, true] {
            out.push(oracle(&segments, ignore_case, catch_all));
        }
    }
    Ok(out)
}

fn gateway(rules: &RouteRules, raw: &str) -> Option<(Passes, String)> {
    let path = normalize(raw).ok()?;
    let j = rules.judge(&Method::GET, &path).ok()?;
    let signed_in = |email| !j.requires_session() || j.permits(&Subject::with_email(Some(email)));
    Some((
        Passes {
            anonymous: !j.requires_session(),
            ann: signed_in(ANN),
            bob: signed_in(BOB),
        },
        path.path().to_owned(),
    ))
}

fn no_more_permissive(gateway: Passes, server: Passes) -> bool {
    (!gateway.anonymous || server.anonymous)
        && (!gateway.ann || server.ann)
        && (!gateway.bob || server.bob)
}

fn ingredient() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/",
        "/",
        "/",
        "//",
        "/..",
        "/.",
        "\\",
        "%5c",
        "%5C",
        "%252f",
        "%00",
        "%2500",
        "admin",
        "admin",
        "ADMIN",
        "aDmIn",
        "api",
        "x",
        "%2561dmin",
        "%2541PI",
        "%61",
        ";x=1",
        ";",
        "%3B",
        "%3bx",
        ".",
        "%2e",
        "%20",
        "%2520",
        "adm%C4%B1n",
        "..;",
    ])
}

fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(ingredient(), 0..9).prop_map(|parts| format!("/{}", parts.concat()))
}

fn check(raw: &str, catch_all: bool, pipelines: &[Vec<Op>]) -> Result<(), TestCaseError> {
    let r = rules(catch_all);
    let Some((decided, forwarded)) = gateway(&r, raw) else {
        return Ok(()); // refused with 400: nothing is stricter
    };
    for (spelling, what) in [(raw, "as written"), (forwarded.as_str(), "as forwarded")] {
        match server_decisions(spelling, catch_all, pipelines) {
            Err(Dangerous) => prop_assert!(
                false,
                "{raw} ({what}: {spelling}) has a dangerous reading but was judged {decided:?}"
            ),
            Ok(servers) => {
                for server in servers {
                    prop_assert!(
                        no_more_permissive(decided, server),
                        "{raw} ({what}: {spelling}): gateway {decided:?}, some server {server:?}"
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_judgement_is_never_more_permissive_than_any_reading(raw in raw_path()) {
        let pipelines = pipelines(4);
        check(&raw, true, &pipelines)?;
        check(&raw, false, &pipelines)?;
    }
}

#[test]
fn known_bypasses_are_closed() {
    let pipelines = pipelines(4);
    for raw in [
        "/ADMIN/users",
        "/admin;x=1/users",
        "/admin%3Bx/users",
        "/%2561dmin/users",
        "/admin./users",
        "/admin%20/users",
        "/x/..;/admin/users",
        "/admin/../x",
        "/adm%C4%B1n/users",
    ] {
        for catch_all in [true, false] {
            check(raw, catch_all, &pipelines).unwrap();
            let (passes, _) = gateway(&rules(catch_all), raw).expect("judged, not refused");
            assert!(passes.ann && !passes.bob && !passes.anonymous, "{raw}");
        }
    }
    for raw in [
        "/admin%252fusers",
        "/admin%2500/users",
        "/admin%5cusers",
        "/admin\\users",
    ] {
        assert!(gateway(&rules(true), raw).is_none(), "{raw} is refused");
    }
}
