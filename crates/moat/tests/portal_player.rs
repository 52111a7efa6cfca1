//! Playing a recording in the admin portal, in headless Chromium: a
//! recorded visit to a small real website (a page with its stylesheet and
//! image, a JSON API, a WebSocket conversation) plays back in recorded
//! order, an exchange opens whole, and the page view shows the recorded
//! page from the recording alone.

use std::time::Duration;

use moat_testkit::Moat;
use moat_testkit::browser::Browser;
use moat_testkit::browser::fantoccini::Locator;
use moat_testkit::client;
use moat_testkit::moat::TEST_SERVER;

const BIN: &str = env!("CARGO_BIN_EXE_moat");
const PASSWORD: &str = "correct horse battery staple";

/// Signs in to the portal in the browser through the login form.
async fn browser_sign_in(b: &Browser, moat: &Moat) {
    b.client
        .goto(&moat.https_url("/_moat/portal/"))
        .await
        .unwrap();
    b.wait_location("/_moat/login?next=/_moat/portal/").await;
    b.fill("user", "admin").await;
    b.fill("password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_location("/_moat/portal/").await;
}

/// A recorded visit to a web app (a page with its stylesheet and image, a
/// JSON API, a WebSocket conversation) plays back in the portal in
/// recorded order; an exchange opens with its heads and bodies (JSON
/// pretty-printed, redacted values marked); the page view shows the
/// recorded page from the recording alone, fetching nothing from the app.
#[tokio::test]
async fn a_recorded_visit_plays_back_in_order_and_its_page_is_shown_from_the_recording() {
    use futures_util::{SinkExt, StreamExt};
    use std::sync::atomic::Ordering;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let (site, hits) = moat_testkit::upstream::website().await;
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let moat = Moat::start(
        BIN,
        &format!(
            "{TEST_SERVER}[security]\nadmin_password_bcrypt = \"{hash}\"\n\
             [[apps]]\nname = \"site\"\npath = \"/site\"\nauth = \"system\"\nupstream = \"http://{site}\"\n\
             [apps.recording]\nenabled = true\n"
        ),
    )
    .await;

    // The visit: signed in, so signing out ends its recording.
    let http = client::http1(&moat.local_ca_root());
    let cookie = client::sign_in_admin(&moat, &http, PASSWORD, "/_moat/portal/").await;
    let get = |path: &'static str| {
        let req = http
            .get(moat.https_url(path))
            .header("cookie", &cookie)
            .send();
        async move {
            let resp = req.await.unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            resp.bytes().await.unwrap();
        }
    };
    get("/site/").await;
    get("/site/style.css").await;
    get("/site/logo.png").await;
    get("/site/api/data").await;
    // A pause the player's "skip idle gaps" may skip.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stream = client::raw_https(&moat).await;
    let mut handshake = format!("wss://localhost:{}/site/ws", moat.https.unwrap().port())
        .into_client_request()
        .unwrap();
    handshake
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let (mut socket, resp) = tokio_tungstenite::client_async(handshake, stream)
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for text in ["hello", r#"{"n":1}"#] {
        socket.send(Message::text(text)).await.unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }
    // The closing handshake finishes (both close frames recorded) before
    // the next request, so the recorded order is known.
    socket.close(None).await.unwrap();
    while let Some(Ok(_)) = socket.next().await {}
    drop(socket);
    get("/site/api/data?after=ws").await;
    let resp = http
        .post(moat.https_url("/_moat/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    // Signing out ends the session's recording (the idle timeout is an
    // hour away).
    let rec = moat
        .wait_until("the recording to close", Duration::from_secs(20), || {
            let out = moat_testkit::cli::against(BIN, &moat, &["recordings", "list", "--json"]);
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (list[0]["state"] == "complete").then(|| list[0].clone())
        })
        .await;
    assert_eq!(rec["closed_because"], "logout");
    let id = rec["id"].as_str().unwrap().to_owned();

    let b = Browser::start().await;
    browser_sign_in(&b, &moat).await;
    let c = &b.client;
    c.goto(&moat.https_url(&format!("/_moat/portal/recordings/{id}")))
        .await
        .unwrap();
    // The timeline is built from the stream: every exchange and message,
    // in recorded order.
    let status = c
        .wait()
        .for_element(Locator::Css("#play:not([disabled])"))
        .await
        .map(|_| ());
    status.unwrap();
    let entries = b
        .strings(
            "return [...document.querySelectorAll('#timeline li .what')].map(e => e.textContent)",
        )
        .await;
    let expected = [
        "GET /site/ → 200",
        "GET /site/style.css → 200",
        "GET /site/logo.png → 200",
        "GET /site/api/data → 200",
        "GET /site/ws → 101",
        "WebSocket → app text",
        "WebSocket ← browser text",
        "WebSocket → app text",
        "WebSocket ← browser text",
        "WebSocket → app close",
        "GET /site/api/data?after=ws → 200",
    ];
    let mut at = 0;
    for e in &entries {
        if at < expected.len() && e.starts_with(expected[at]) {
            at += 1;
        }
    }
    assert_eq!(at, expected.len(), "in recorded order: {entries:#?}");

    // Played at 1× with idle gaps kept, the entries turn played one after
    // another, in order, never all at once.
    let played = || async {
        b.strings("return [String(document.querySelectorAll('#timeline li.played').length)]")
            .await[0]
            .parse::<usize>()
            .unwrap()
    };
    b.click("#skip-idle").await;
    b.click("#play").await;
    let mut seen = vec![played().await];
    while seen.last() != Some(&entries.len()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = played().await;
        assert!(now >= *seen.last().unwrap(), "{seen:?} then {now}");
        seen.push(now);
        assert!(
            seen.len() < 600,
            "the playback did not reach the end: {seen:?}"
        );
    }
    assert!(
        seen.iter().any(|n| *n > 0 && *n < entries.len()),
        "played over time: {seen:?}"
    );
    assert_eq!(b.text_of("#player-status").await, "Played to the end.");
    // The played entries are the list's order: the first is the page.
    let first_played = b
        .strings("return [document.querySelector('#timeline li.played .what').textContent]")
        .await;
    assert!(
        first_played[0].starts_with("GET /site/ → 200"),
        "{first_played:?}"
    );

    // The JSON exchange: pretty-printed, its password marked redacted.
    let api = c
        .find_all(Locator::Css("#timeline li .entry"))
        .await
        .unwrap();
    api[3].click().await.unwrap();
    c.wait()
        .for_element(Locator::Css("#detail mark.redacted"))
        .await
        .unwrap();
    let detail = b.text_of("#detail").await;
    assert!(detail.contains("\"items\": [\n"), "{detail}");
    assert!(!detail.contains("hunter2"), "{detail}");
    // The WebSocket exchange lists its messages with their direction.
    api[4].click().await.unwrap();
    c.wait()
        .for_element(Locator::Css("#detail ol.ws-messages"))
        .await
        .unwrap();
    let messages = b.text_of("#detail ol.ws-messages").await;
    assert!(messages.contains("browser → app, text"), "{messages}");
    assert!(messages.contains("\"n\": 1"), "{messages}");

    // The page view of the HTML page fetches nothing from the app.
    api[0].click().await.unwrap();
    let before = hits.load(Ordering::SeqCst);
    b.click("#detail button.secondary").await;
    let frame = c
        .wait()
        .for_element(Locator::Css("iframe#page-view"))
        .await
        .unwrap();
    assert_eq!(frame.attr("sandbox").await.unwrap().as_deref(), Some(""));
    let portal = moat.https_url("/_moat/portal/");
    let mut view = Vec::new();
    for _ in 0..100 {
        view = b
            .strings("return performance.getEntriesByType('resource').map(e => e.name)")
            .await;
        if view.iter().any(|n| n.contains("/view/")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(view.iter().any(|n| n.contains("/view/1")), "{view:?}");
    // The portal page fetched only portal URLs (the frame's own fetches
    // are not in its entries: the app's request counter, which must not
    // move, and the policy and inlining checked below cover those).
    for name in &view {
        assert!(name.starts_with(&portal), "outside the portal: {name}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), before, "nothing from the app");
    // What the frame got: the page, its stylesheet and image inlined from
    // the recording, under a sandboxing policy of its own.
    let cookie = client::sign_in_admin(&moat, &http, PASSWORD, "/_moat/portal/").await;
    let resp = http
        .get(moat.https_url(&format!("/_moat/portal/recordings/{id}/view/1")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("sandbox; default-src 'none'; img-src data:"),
        "{csp}"
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("<h1>The recorded page</h1>"), "{html}");
    assert!(html.contains("src=\"data:image/png;base64,"), "{html}");
    assert!(html.contains("h1 { color: #0b5cad; }"), "{html}");
    assert!(!html.contains("example.com"), "{html}");
    assert_eq!(hits.load(Ordering::SeqCst), before, "nothing from the app");
    b.close().await;
}
