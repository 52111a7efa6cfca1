use super::*;

fn err(text: &str) -> ConfigError {
    load_str(text, Some(Path::new("moat.toml"))).expect_err("config should be refused")
}

#[test]
fn default_file_equals_empty_file() {
    let from_default = load_str(DEFAULT_CONFIG, None).expect("default config is valid");
    let from_empty = default_config();
    assert_eq!(format!("{from_default:?}"), format!("{from_empty:?}"));
}

/// Every key of the file format appears in the default file, so
/// `moat config default` documents everything.
#[test]
fn default_file_documents_every_key() {
    let mut raw = raw::RawConfig::default();
    raw.apps.push(raw::RawApp {
        upstream: Some(String::new()),
        static_dir: Some(String::new()),
        host: Some(String::new()),
        path: Some(String::new()),
        max_body_size: Some(raw::Human::Int(0)),
        auth: Some(String::new().into()),
        ..Default::default()
    });
    raw.tls.certificates.push(raw::RawCertificate::default());
    raw.rate_limit.zones.push(raw::RawZone::default());
    raw.apps[0].cors = Some(raw::RawCors {
        max_age: Some(raw::Human::Int(0)),
        ..Default::default()
    });
    raw.apps[0].recording.bucket = Some(String::new());
    raw.apps[0].recording.policy = raw::RawRetentionOverride {
        retain_for_days: Some(0),
        delete_after_days: Some(0),
    };
    raw.recording.policy = Some(raw::RawRetention {
        retain_for_days: 0,
        retain_for_days_overridable: true,
        delete_after_days: 0,
        delete_after_days_overridable: true,
    });
    raw.apps[0].rate_limit.push(raw::RawAppLimit {
        zone: String::new(),
        path: Some(String::new()),
    });
    raw.csp.allow.push(raw::RawAllowRule {
        source: String::new(),
        directive: Some(String::new()),
    });
    raw.apps[0].headers = raw::RawAppHeaders {
        frame_options: Some(String::new()),
        ..Default::default()
    };
    raw.apps[0].allowed_users.push(String::new());
    raw.apps[0].allowed_groups.push(String::new());
    raw.apps[0].allowed_domains.push(String::new());
    raw.auth.oidc.push(raw::RawOidc {
        scopes: Some(vec![]),
        groups_claim: Some(String::new()),
        user_claim: Some(String::new()),
        allowed_users: vec![String::new()],
        allowed_groups: vec![String::new()],
        allowed_domains: vec![String::new()],
        ..Default::default()
    });
    raw.apps[0].client_certs = Some(raw::RawClientCerts {
        ca: String::new(),
        mode: Some(String::new()),
        crl: Some(String::new()),
    });
    raw.tls.acme.push(raw::RawAcme {
        directory: Some(String::new()),
        email: Some(String::new()),
        challenge: Some(String::new()),
        eab_kid: Some(String::new()),
        eab_hmac_key: Some(String::new()),
        directory_ca: Some(String::new()),
        ..Default::default()
    });
    raw.data_dir = Some(String::new());
    let value = toml::Value::try_from(&raw).unwrap();
    fn walk(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    out.push(k.clone());
                    walk(&format!("{prefix}{k}."), v, out);
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|v| walk(prefix, v, out)),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    walk("", &value, &mut keys);
    for key in keys {
        let documented = DEFAULT_CONFIG.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ', '[']);
            l.starts_with(&format!("{key} ="))
                || l.starts_with(&format!("{key}]"))
                || l.starts_with(&format!("apps.{key}]"))
                || l.contains(&format!(".{key}]"))
        });
        assert!(documented, "key {key} is not in default.toml");
    }
}

#[test]
fn defaults_are_secure() {
    let c = default_config();
    assert!(c.tls.enabled && c.tls.redirect_http && c.tls.hsts.enabled);
    assert_eq!(c.tls.min_version, TlsVersion::V1_2);
    assert_eq!(c.server.https.unwrap().to_string(), "127.0.0.1:8443");
    assert_eq!(c.server.http.unwrap().to_string(), "127.0.0.1:8080");
    assert!(c.security.trusted_proxies.is_empty());
    assert!(c.apps.is_empty());
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = err("[server]\nhttps = \"127.0.0.1:1\"\nmax_conections = 5\n");
    let s = e.to_string();
    assert!(
        s.starts_with("moat.toml:3: server.max_conections: unknown field"),
        "{s}"
    );
    assert!(s.contains("fix:"), "{s}");
}

#[test]
fn wrong_type() {
    let s = err("[tls]\nenabled = \"yes\"\n").to_string();
    assert!(
        s.starts_with("moat.toml:2: tls.enabled: invalid type"),
        "{s}"
    );
}

#[test]
fn syntax_error_has_line() {
    let s = err("[server]\nhttps = \n").to_string();
    assert!(s.starts_with("moat.toml:2"), "{s}");
}

#[test]
fn all_bad_values_reported_at_once() {
    let e = err(r#"
[server]
max_header_size = "16XB"
header_read_timeout = "ten seconds"

[tls]
min_version = "1.1"
cipher_suites = ["TLS_RSA_WITH_RC4_128_SHA"]

[security]
trusted_proxies = ["10.0.0.0/8", "not-an-ip"]

[[apps]]
name = "a"
path = "/a"
upstream = "ftp://x"

[[apps]]
name = "b b"
upstream = "http://127.0.0.1:1"
"#);
    let s = e.to_string();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 8, "{s}");
    assert!(
        lines[0].starts_with("moat.toml:3: server.max_header_size: unknown size unit"),
        "{s}"
    );
    assert!(
        lines[1].starts_with("moat.toml:4: server.header_read_timeout:"),
        "{s}"
    );
    assert!(
        lines[2].starts_with("moat.toml:7: tls.min_version: \"1.1\" is not supported"),
        "{s}"
    );
    assert!(
        lines[3].starts_with("moat.toml:8: tls.cipher_suites[0]: unknown or unsupported"),
        "{s}"
    );
    assert!(
        lines[4].starts_with("moat.toml:11: security.trusted_proxies[1]: \"not-an-ip\""),
        "{s}"
    );
    assert!(
        lines[5].starts_with("moat.toml:16: apps[0].upstream:"),
        "{s}"
    );
    assert!(
        lines[6].starts_with("moat.toml:18: apps[1].path: the app has neither path nor host"),
        "{s}"
    );
    assert!(lines[7].starts_with("moat.toml:19: apps[1].name:"), "{s}");
    assert!(lines.iter().all(|l| l.contains("(fix: ")), "{s}");
}

#[test]
fn cipher_names_and_versions() {
    let c = load_str("[tls]\ncipher_suites = [\"TLS_AES_128_GCM_SHA256\", \"ecdhe-rsa-aes128-gcm-sha256\"]\nkx_groups = [\"P-256\"]\n", None).unwrap();
    assert_eq!(
        c.tls.cipher_suites,
        [
            "TLS13_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        ]
    );
    assert_eq!(c.tls.kx_groups, ["secp256r1"]);
    let s = err("[tls]\nmin_version = \"1.3\"\ncipher_suites = [\"TLS13_AES_128_GCM_SHA256\", \"ECDHE-RSA-AES128-GCM-SHA256\"]\n").to_string();
    assert!(
        s.contains("is a TLS 1.2 suite but tls.min_version is \"1.3\""),
        "{s}"
    );
    let s = err("[tls]\ncipher_suites = [\"ECDHE-RSA-AES128-GCM-SHA256\"]\n").to_string();
    assert!(s.contains("lists no TLS 1.3 suite"), "{s}");
    let s = err("[tls]\nkx_groups = [\"ffdhe2048\"]\n").to_string();
    assert!(
        s.contains("tls.kx_groups[0]: unknown key-exchange group"),
        "{s}"
    );
}

#[test]
fn apps_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bundle")).unwrap();
    std::fs::write(
        dir.path().join("bundle/manifest.json"),
        r#"{"name": "Notes", "spa": true, "icons": []}"#,
    )
    .unwrap();
    let file = dir.path().join("moat.toml");
    std::fs::write(
        &file,
        r#"
[[apps]]
name = "notes"
path = "/notes/"
static = "bundle"

[[apps]]
name = "api"
host = "API.example.com"
upstream = "http://127.0.0.1:9000/base/"
strip_path = true
max_body_size = "1MiB"
timeouts = { connect = "2s", response_header = "1m", idle = "90s" }
"#,
    )
    .unwrap();
    let c = load_file(&file).unwrap();
    assert_eq!(c.apps[0].path, "/notes");
    match &c.apps[0].source {
        AppSource::Static(b) => {
            assert_eq!(b.dir, dir.path().join("bundle"));
            assert!(b.manifest.spa);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.apps[1].host.as_deref(), Some("api.example.com"));
    assert_eq!(c.apps[1].path, "/");
    match &c.apps[1].source {
        AppSource::Upstream(u) => {
            assert_eq!(u.origin.to_string(), "http://127.0.0.1:9000/");
            assert_eq!(u.base_path, "/base");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.apps[1].max_body_size, 1 << 20);
    assert_eq!(c.apps[1].timeouts.response_header.as_secs(), 60);
}

#[test]
fn static_without_manifest_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moat.toml");
    std::fs::write(&file, "[[apps]]\nname = \"x\"\npath = \"/x\"\nstatic = \".\"\n\n[[apps]]\nname = \"x\"\npath = \"/x\"\nupstream = \"http://h:1\"\n").unwrap();
    let s = load_file(&file).unwrap_err().to_string();
    assert!(s.contains("apps[0].static: cannot read"), "{s}");
    assert!(s.contains("manifest.json"), "{s}");
    let s = err("[[apps]]\nname = \"x\"\npath = \"/x\"\nupstream = \"http://h:1\"\n[[apps]]\nname = \"x\"\npath = \"/x\"\nupstream = \"http://h:1\"\n").to_string();
    assert!(
        s.contains("apps[1].name: app name \"x\" is used twice"),
        "{s}"
    );
    assert!(
        s.contains("apps[1].path: another app is already mounted"),
        "{s}"
    );
}

#[test]
fn missing_file() {
    let e = load_file(Path::new("/nonexistent/moat.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/moat.toml: cannot read the file"),
        "{e}"
    );
}

#[test]
fn hsts_values() {
    let c = load_str(
        "[tls.hsts]\nmax_age = \"365d\"\ninclude_subdomains = true\npreload = true\n",
        None,
    )
    .unwrap();
    assert_eq!(
        c.tls.hsts.header_value().unwrap(),
        "max-age=31536000; includeSubDomains; preload"
    );
    let s = err("[tls.hsts]\npreload = true\n").to_string();
    assert!(s.contains("tls.hsts.preload"), "{s}");
}

#[test]
fn admin_password_hash_is_checked() {
    let good = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
    let c = load_str(
        &format!("[security]\nadmin_password_bcrypt = \"{good}\"\n"),
        None,
    )
    .unwrap();
    assert_eq!(c.security.admin_password_bcrypt.as_deref(), Some(good));
    assert_eq!(default_config().security.admin_password_bcrypt, None);
    let s = err("[security]\nadmin_password_bcrypt = \"hunter2\"\n").to_string();
    assert!(
        s.starts_with("moat.toml:2: security.admin_password_bcrypt: is not a bcrypt hash"),
        "{s}"
    );
    assert!(s.contains("moat password"), "{s}");
}

#[test]
fn app_auth_defaults_to_system_and_is_checked() {
    let c = load_str(
        "[[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\n\n[[apps]]\nname = \"b\"\npath = \"/b\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"none\"\n",
        None,
    )
    .unwrap();
    assert_eq!(c.apps[0].auth, AppAuth::system());
    assert_eq!(c.apps[1].auth, AppAuth::None);
    assert_eq!(c.apps[0].origin, AppOrigin::ConfigFile);
    assert!(c.auth.system_account);

    let err = load_str(
        "[auth]\nidle_timeout = \"2d\"\n[[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"oidc\"\nidentity_jwt = true\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("apps[0].auth: \"oidc\" is not an authentication mode"),
        "{err}"
    );
    assert!(err.contains("auth.idle_timeout"), "{err}");
    let err = load_str(
        "[[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"none\"\nidentity_jwt = true\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("apps[0].identity_jwt"), "{err}");
}

#[test]
fn api_apps_are_validated_by_field_name_and_yield_to_the_config_file() {
    let raw: raw::RawApp = serde_json::from_value(serde_json::json!({
        "name": "x", "path": "/x", "static": "relative/dir"
    }))
    .unwrap();
    let problems = validate::validate_api_app(&raw).unwrap_err();
    assert!(problems.iter().any(|p| p.key == "static"), "{problems:?}");

    let config = load_str(
        "[[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\n",
        None,
    )
    .unwrap();
    let api = |name: &str, path: &str| {
        let raw: raw::RawApp = serde_json::from_value(serde_json::json!({
            "name": name, "path": path, "upstream": "http://127.0.0.1:2"
        }))
        .unwrap();
        validate::validate_api_app(&raw).unwrap()
    };
    let same_name = api("a", "/other");
    let same_mount = api("b", "/a");
    let fine = api("c", "/c");
    assert!(
        config
            .conflict(&same_name, None)
            .unwrap()
            .contains("config file")
    );
    assert!(
        config
            .conflict(&same_mount, None)
            .unwrap()
            .contains("mounted on /a")
    );
    assert_eq!(config.conflict(&same_name, Some("a")), None);
    let (merged, shadowed) = config.with_api_apps([same_name, same_mount, fine]);
    let names: Vec<_> = merged
        .apps
        .iter()
        .map(|a| (a.name.as_str(), a.origin))
        .collect();
    assert_eq!(names, [("a", AppOrigin::ConfigFile), ("c", AppOrigin::Api)]);
    assert_eq!(shadowed.len(), 2);
}

#[test]
fn header_settings_are_checked_and_default_to_secure_values() {
    let c = default_config();
    assert_eq!(c.headers.frame_options.as_deref(), Some("SAMEORIGIN"));
    assert_eq!(c.headers.content_type_options.as_deref(), Some("nosniff"));
    assert_eq!(c.headers.cross_origin_embedder_policy, None);
    assert_eq!(c.csp.base.to_string(), raw::DEFAULT_CSP);
    let s = err(
        "[headers]\nframe_options = \"ALLOWALL\"\nreferrer_policy = \"no-referrer, bogus\"\nhide_upstream = [\"bad header\"]\n[csp]\npolicy = \"default-src 'self'; script-src 'unsafe-inline'\"\n[[csp.allow]]\nsource = \"regex:(\"\n",
    )
    .to_string();
    assert!(
        s.contains("moat.toml:2: headers.frame_options: \"ALLOWALL\""),
        "{s}"
    );
    assert!(s.contains("use one of DENY, SAMEORIGIN, or \"off\""), "{s}");
    assert!(s.contains("headers.referrer_policy"), "{s}");
    assert!(s.contains("headers.hide_upstream[0]"), "{s}");
    assert!(
        s.contains("csp.policy: script-src 'unsafe-inline' is dangerous"),
        "{s}"
    );
    assert!(
        s.contains("csp.allow[0].source: not a valid regular expression"),
        "{s}"
    );
    let c = load_str(
        "[headers]\nframe_options = \"deny\"\nreferrer_policy = \"NO-REFERRER, strict-origin\"\npermissions_policy = \"off\"\n[csp]\npolicy = \"default-src 'self' 'unsafe-inline'\"\nallow_unsafe = [\"default-src 'unsafe-inline'\"]\n",
        None,
    )
    .unwrap();
    assert_eq!(c.headers.frame_options.as_deref(), Some("DENY"));
    assert_eq!(
        c.headers.referrer_policy.as_deref(),
        Some("no-referrer, strict-origin")
    );
    assert_eq!(c.headers.permissions_policy, None);
}

#[test]
fn guards_are_checked_with_clear_messages() {
    let s = err(
        "[rate_limit]\nexempt = [\"nope\"]\n[[rate_limit.zones]]\nname = \"a\"\nrate = \"5r/h\"\n[[rate_limit.zones]]\nname = \"b\"\nkey = \"cookie\"\nrate = \"1r/s\"\n\
         [[apps]]\nname = \"x\"\npath = \"/x\"\nupstream = \"http://127.0.0.1:1\"\n[apps.cors]\nallow_origin = [\"*\", \"https://*.com\"]\nallow_credentials = true\n[[apps.rate_limit]]\nzone = \"missing\"\n",
    )
    .to_string();
    for needle in [
        "rate_limit.exempt[0]",
        "rate_limit.zones[0].rate: \"5r/h\": the unit is r/s or r/m",
        "rate_limit.zones[1].key: \"cookie\" is not a zone key",
        "apps[0].cors.allow_origin[0]: \"*\" cannot be combined with allow_credentials",
        "apps[0].cors.allow_origin[1]",
        "apps[0].rate_limit[0].zone: no rate-limit zone is named \"missing\"",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in:\n{s}");
    }
    let c = load_str(
        "[[rate_limit.zones]]\nname = \"logins\"\nkey = \"header:X-Api-Key\"\nrate = \"10r/m\"\nburst = 5\n[[apps]]\nname = \"x\"\npath = \"/x\"\nupstream = \"http://127.0.0.1:1\"\n[apps.security]\ncsrf_bypass = [\"/hooks/*\"]\n[[apps.rate_limit]]\nzone = \"logins\"\npath = \"/login\"\n",
        None,
    )
    .unwrap();
    assert_eq!(c.rate_limit.zones[0].zone.burst, 5);
    assert!(c.apps[0].csrf.enabled);
    assert!(c.apps[0].csrf.bypass[0].matches("/hooks/github"));
    assert!(
        c.apps[0].rate_limits[0]
            .path
            .as_ref()
            .unwrap()
            .matches("/login")
    );
    assert_eq!(c.rate_limit.max_connections_per_client, 256);
}

#[test]
fn storage_policies_follow_the_rules() {
    let s = err("[recording.policy]\nretain_for_days = -1\ndelete_after_days = 30\n").to_string();
    assert!(
        s.contains("recording.policy: retain_for_days = -1 keeps recordings forever"),
        "{s}"
    );
    let s = err(
        "[recording.policy]\nretain_for_days = 30\nretain_for_days_overridable = false\ndelete_after_days = 365\n\
         [[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\n[apps.recording]\nenabled = true\n[apps.recording.policy]\nretain_for_days = 7\n",
    )
    .to_string();
    assert!(
        s.contains("apps[0].recording.policy: retain_for_days is set globally and not overridable"),
        "{s}"
    );
    let c = load_str(
        "[recording.policy]\nretain_for_days = 30\ndelete_after_days = 365\n[[apps]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\n[apps.recording]\nenabled = true\n[apps.recording.policy]\ndelete_after_days = 90\n",
        None,
    )
    .unwrap();
    let r = c
        .retention_for(c.apps[0].recording.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!((r.retain_for_days, r.delete_after_days), (30, 90));
}

#[test]
fn acme_needs_tls_and_http01_needs_the_http_listener() {
    let e = err(
        "[tls]\nenabled = false\n[server]\nhttp = \"127.0.0.1:8080\"\n[[tls.acme]]\ndomains = [\"a.example.com\"]\n",
    );
    assert!(
        e.problems
            .iter()
            .any(|p| p.key == "tls.enabled" && p.message.contains("ACME")),
        "{e}"
    );
    let e = err("[tls]\nredirect_http = false\n[[tls.acme]]\ndomains = [\"a.example.com\"]\n");
    assert!(
        e.problems
            .iter()
            .any(|p| p.key == "tls.acme" && p.message.contains("http-01")),
        "{e}"
    );
    // tls-alpn-01 needs only the HTTPS listener.
    load_str(
        "[tls]\nredirect_http = false\n[[tls.acme]]\ndomains = [\"a.example.com\"]\nchallenge = \"tls-alpn-01\"\n",
        None,
    )
    .unwrap();
    let e =
        err("[tls]\nredirect_http = false\n[tls.on_demand]\nask = \"http://127.0.0.1:9/ask\"\n");
    assert!(
        e.problems
            .iter()
            .any(|p| p.key == "tls.acme" && p.message.contains("http-01")),
        "on-demand orders with the defaults' http-01: {e}"
    );
    let e = err("[tls.on_demand]\nask = \"https://ask.example\"\n");
    assert!(
        e.problems.iter().any(|p| p.key == "tls.on_demand.ask"),
        "{e}"
    );
}
