use super::*;

fn g(d: &str, s: &str) -> Grant {
    Grant::new(d, s).unwrap()
}

fn base() -> Policy {
    Policy::parse(
        "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self'",
    )
    .unwrap()
}

#[test]
fn parses_and_prints() {
    let p = base();
    assert_eq!(p.get("object-src").unwrap(), ["'none'"]);
    assert_eq!(
        p.to_string(),
        "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self'"
    );
    let p = Policy::parse("DEFAULT-SRC 'SELF' https://A.example:8443/x; upgrade-insecure-requests")
        .unwrap();
    assert_eq!(
        p.to_string(),
        "default-src 'self' https://a.example:8443/x; upgrade-insecure-requests"
    );
}

#[test]
fn bad_policies_name_every_problem() {
    let errors = Policy::parse(
        "default-src self; scrpit-src 'self'; img-src 'none' https://x; report-uri /r; img-src x",
    )
    .unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(
        text[0].contains("unknown source self") && text[0].contains("'self'"),
        "{text:?}"
    );
    assert!(
        text[1].contains("\"scrpit-src\" is not a CSP directive"),
        "{text:?}"
    );
    assert!(text[2].contains("'none' cannot stand beside"), "{text:?}");
    assert!(text[3].contains("report-uri is set by moat"), "{text:?}");
    assert!(text[4].contains("appears twice"), "{text:?}");
}

#[test]
fn directives_without_sources_are_checked_too() {
    assert!(
        Policy::parse(
            "upgrade-insecure-requests; sandbox allow-scripts allow-forms; webrtc 'block'"
        )
        .is_ok()
    );
    for bad in [
        "upgrade-insecure-requests x",
        "sandbox allow-everything",
        "webrtc 'none' x",
        "require-trusted-types-for 'style'",
        "trusted-types 'none' a",
    ] {
        assert!(Policy::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn sources() {
    for ok in [
        "'self'",
        "https:",
        "data:",
        "*",
        "https://api.example.com/v1/",
        "api.example.com",
        "*.example.com",
        "https://x.example:*",
        "wss://live.example:8443",
        "'sha256-abc+/=='",
        "'nonce-AbC123'",
    ] {
        assert!(check_source(ok).is_ok(), "{ok}");
    }
    for bad in [
        "'selfish'",
        "https://exa mple.com",
        "http://",
        "https://x:port",
        "'nonce-'",
        "a;b",
        "ht^tp://x",
    ] {
        assert!(check_source(bad).is_err(), "{bad}");
    }
    assert!(Grant::new("img-src", "'none'").is_err());
}

#[test]
fn dangerous_sources() {
    for (d, s) in [
        ("script-src", "'unsafe-inline'"),
        ("style-src", "'unsafe-inline'"),
        ("script-src", "'unsafe-eval'"),
        ("img-src", "*"),
        ("script-src", "https:"),
        ("default-src", "data:"),
        ("connect-src", "https://*.example.com"),
        ("script-src", "https://raw.githubusercontent.com"),
        ("script-src", "https://raw.githubusercontent.com/"),
        ("frame-src", "https://someone.github.io"),
    ] {
        assert!(danger(d, s).is_some(), "{d} {s}");
    }
    for (d, s) in [
        ("img-src", "data:"),
        ("connect-src", "https://api.example.com"),
        (
            "script-src",
            "https://raw.githubusercontent.com/owner/project/v1/",
        ),
        ("script-src", "'self'"),
        ("script-src", "'nonce-abc'"),
    ] {
        assert!(danger(d, s).is_none(), "{d} {s}");
    }
}

#[test]
fn fallback_chains() {
    assert_eq!(fallback_chain("connect-src"), ["default-src"]);
    assert_eq!(
        fallback_chain("script-src-elem"),
        ["script-src", "default-src"]
    );
    assert_eq!(fallback_chain("frame-src"), ["child-src", "default-src"]);
    assert_eq!(
        fallback_chain("worker-src"),
        ["child-src", "script-src", "default-src"]
    );
    assert!(fallback_chain("form-action").is_empty());
}

#[test]
fn an_absent_fetch_directive_first_copies_default_src() {
    let base = base();
    let req = [g("connect-src", "https://api.example.com/v1/")];
    let c = compose(&Layers {
        base: &base,
        requested: &req,
        admin_approve: &req,
        ..Default::default()
    });
    assert_eq!(
        c.sources("connect-src").unwrap(),
        ["'self'", "https://api.example.com/v1/"]
    );
    let copied = &c
        .directives
        .iter()
        .find(|(d, _)| d == "connect-src")
        .unwrap()
        .1[0];
    assert_eq!(copied.inherited_from.as_deref(), Some("default-src"));
    assert_eq!(copied.layer, Layer::Base);
    // default-src itself is untouched: nothing else was widened.
    assert_eq!(c.sources("default-src").unwrap(), ["'self'"]);
}

#[test]
fn none_is_replaced_and_duplicates_merge() {
    let base = base();
    let req = [
        g("object-src", "https://plugins.example"),
        g("default-src", "'self'"),
    ];
    let c = compose(&Layers {
        base: &base,
        requested: &req,
        admin_approve_all: true,
        ..Default::default()
    });
    assert_eq!(
        c.sources("object-src").unwrap(),
        ["https://plugins.example"]
    );
    assert_eq!(c.sources("default-src").unwrap(), ["'self'"]);
}

#[test]
fn requests_wait_for_approval() {
    let base = base();
    let req = [
        g("connect-src", "https://api.example.com"),
        g("frame-src", "https://maps.example.com"),
        g("img-src", "https://img.example.com"),
        g("font-src", "https://fonts.example.com"),
    ];
    let rules = [AllowRule {
        directive: Some("frame-src".into()),
        pattern: SourcePattern::parse("regex:https://[a-z]+\\.example\\.com").unwrap(),
    }];
    let admin = [g("img-src", "https://img.example.com")];
    let granted = [g("font-src", "https://fonts.example.com")];
    let c = compose(&Layers {
        base: &base,
        requested: &req,
        admin_approve: &admin,
        rules: &rules,
        granted: &granted,
        ..Default::default()
    });
    assert_eq!(c.pending, [g("connect-src", "https://api.example.com")]);
    assert!(c.sources("connect-src").is_none());
    let approval = |d: &str| {
        c.directives
            .iter()
            .find(|(x, _)| x == d)
            .unwrap()
            .1
            .last()
            .unwrap()
            .approval
            .clone()
    };
    assert_eq!(
        approval("frame-src"),
        Approval::Rule("frame-src regex:https://[a-z]+\\.example\\.com".into())
    );
    assert_eq!(approval("img-src"), Approval::AdminLayer);
    assert_eq!(approval("font-src"), Approval::Granted);
}

#[test]
fn removals_win_and_leave_none() {
    let base = base();
    let req = [g("connect-src", "https://api.example.com")];
    let remove = [
        g("connect-src", "https://api.example.com"),
        g("img-src", "'self'"),
    ];
    let c = compose(&Layers {
        base: &base,
        requested: &req,
        admin_approve_all: true,
        admin_remove: &remove,
        ..Default::default()
    });
    assert_eq!(c.sources("connect-src").unwrap(), ["'self'"]);
    // img-src fell back to default-src 'self'; removing 'self' from it
    // must make img-src and empty it, not leave the fallback in force.
    assert_eq!(c.sources("img-src").unwrap(), ["'none'"]);
    assert_eq!(c.sources("default-src").unwrap(), ["'self'"]);
}

#[test]
fn dangerous_requests_need_the_admins_allow_unsafe() {
    let base = base();
    let req = [
        g("script-src", "'unsafe-inline'"),
        g("script-src", "https:"),
    ];
    let c = compose(&Layers {
        base: &base,
        requested: &req,
        admin_approve_all: true,
        ..Default::default()
    });
    assert_eq!(c.refused.len(), 2);
    assert!(c.sources("script-src").is_none());
    let allowed = [g("script-src", "'unsafe-inline'")];
    let c = compose(&Layers {
        base: &base,
        requested: &req,
        admin_approve_all: true,
        allow_unsafe: &allowed,
        ..Default::default()
    });
    assert_eq!(
        c.sources("script-src").unwrap(),
        ["'self'", "'unsafe-inline'"]
    );
    assert_eq!(c.refused.len(), 1);
}

#[test]
fn unrestricted_directives_are_not_narrowed_by_a_request() {
    let base = Policy::parse("object-src 'none'").unwrap();
    let req = [g("connect-src", "https://api.example.com")];
    let c = compose(&Layers {
        base: &base,
        requested: &req,
        admin_approve_all: true,
        ..Default::default()
    });
    assert!(c.sources("connect-src").is_none());
    assert_eq!(c.unrestricted, req);
    // The admin layer may restrict on purpose.
    let c = compose(&Layers {
        base: &base,
        admin_add: &req,
        ..Default::default()
    });
    assert_eq!(
        c.sources("connect-src").unwrap(),
        ["https://api.example.com"]
    );
}

#[test]
fn nonces_join_scripts_and_styles() {
    let c = compose(&Layers {
        base: &base(),
        ..Default::default()
    });
    let n = c.with_nonce("abc123");
    assert_eq!(
        n.sources("script-src").unwrap(),
        ["'self'", "'nonce-abc123'", "'strict-dynamic'"]
    );
    assert_eq!(
        n.sources("style-src").unwrap(),
        ["'self'", "'nonce-abc123'"]
    );
    assert!(
        c.sources("script-src").is_none(),
        "the cached policy is unchanged"
    );
}

mod property {
    use super::*;
    use proptest::prelude::*;

    const DIRECTIVES: &[&str] = &[
        "default-src",
        "script-src",
        "script-src-elem",
        "style-src",
        "img-src",
        "connect-src",
        "frame-src",
        "child-src",
        "worker-src",
        "object-src",
        "form-action",
    ];
    const SOURCES: &[&str] = &[
        "'self'",
        "'none'",
        "https://a.example",
        "https://b.example/x/",
        "data:",
        "https:",
        "'unsafe-inline'",
        "*.c.example",
        "https://raw.githubusercontent.com",
    ];

    fn grant() -> impl Strategy<Value = (usize, usize)> {
        (0..DIRECTIVES.len(), 0..SOURCES.len())
    }

    fn grants(v: Vec<(usize, usize)>) -> Vec<Grant> {
        v.into_iter()
            .filter(|(_, s)| SOURCES[*s] != "'none'")
            .map(|(d, s)| g(DIRECTIVES[d], SOURCES[s]))
            .collect()
    }

    proptest! {
        /// Every source in the composed policy was granted by some layer or
        /// covered by an approval; removals always win; 'none' stands alone.
        #[test]
        fn never_allows_what_nobody_granted(
            base_pairs in proptest::collection::vec(grant(), 0..8),
            requested in proptest::collection::vec(grant(), 0..8),
            approve in proptest::collection::vec(grant(), 0..4),
            granted in proptest::collection::vec(grant(), 0..4),
            add in proptest::collection::vec(grant(), 0..4),
            remove in proptest::collection::vec(grant(), 0..4),
            unsafe_ok in proptest::collection::vec(grant(), 0..4),
        ) {
            let mut base = Policy::default();
            for (d, s) in base_pairs {
                let (d, s) = (DIRECTIVES[d].to_owned(), SOURCES[s].to_owned());
                match base.directives.iter_mut().find(|(x, _)| *x == d) {
                    Some((_, list)) if s != "'none'" && !list.contains(&s) => {
                        list.retain(|x| x != "'none'");
                        list.push(s);
                    }
                    Some(_) => {}
                    None => base.directives.push((d, vec![s])),
                }
            }
            let (requested, approve, granted, add, remove, unsafe_ok) =
                (grants(requested), grants(approve), grants(granted), grants(add), grants(remove), grants(unsafe_ok));
            let c = compose(&Layers {
                base: &base,
                requested: &requested,
                admin_add: &add,
                admin_remove: &remove,
                admin_approve: &approve,
                allow_unsafe: &unsafe_ok,
                granted: &granted,
                ..Default::default()
            });
            let in_chain = |d: &str, s: &str, set: &[Grant]| {
                std::iter::once(d).chain(fallback_chain(d)).any(|x| set.iter().any(|gr| gr.directive == x && gr.source == s))
            };
            let base_grants: Vec<Grant> = base.directives.iter()
                .flat_map(|(d, ss)| ss.iter().map(move |s| Grant { directive: d.clone(), source: s.clone() }))
                .collect();
            let safe = |gr: &Grant| danger(&gr.directive, &gr.source).is_none() || unsafe_ok.contains(gr);
            let approved: Vec<Grant> = requested.iter()
                .filter(|r| approve.contains(r) || granted.contains(r))
                .filter(|r| safe(r))
                .cloned().collect();
            let added: Vec<Grant> = add.iter().filter(|a| safe(a)).cloned().collect();
            for (d, entries) in &c.directives {
                let sources: Vec<&str> = entries.iter().map(|e| e.source.as_str()).collect();
                if sources.contains(&"'none'") {
                    prop_assert_eq!(sources.len(), 1, "'none' beside others in {}", d);
                    continue;
                }
                for s in sources {
                    // A source may also come from an ancestor's grant, copied
                    // down when the directive was created.
                    let ok = in_chain(d, s, &base_grants) || in_chain(d, s, &added) || in_chain(d, s, &approved);
                    prop_assert!(ok, "{} {} granted by nobody\n{}", d, s, c.header_value());
                    prop_assert!(!remove.contains(&Grant { directive: d.clone(), source: s.to_owned() }), "removed {} {} is back", d, s);
                }
            }
            // A pending or refused request is never what put a source there.
            for p in c.pending.iter().chain(c.refused.iter().map(|(g, _)| g)) {
                if let Some(entries) = c.directives.iter().find(|(d, _)| *d == p.directive).map(|(_, e)| e) {
                    prop_assert!(entries.iter().all(|e| e.source != p.source || e.layer != Layer::Manifest));
                }
            }
        }
    }
}
