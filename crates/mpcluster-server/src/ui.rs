//! The web UI: static assets embedded in the binary, served at `/` and `/ui/<file>`.
//!
//! The UI is plain ES modules and CSS under `crates/mpcluster-server/assets/` (no build step),
//! included with `include_bytes!`. It talks to the API with the token the user pasted on its
//! login screen; the assets themselves need no authentication.
//!
//! Every response carries a strict Content-Security-Policy (scripts and styles only from this
//! origin, no inline scripts or handlers, no frames), `nosniff`, and `Cache-Control: no-cache`
//! with a strong `ETag`: browsers revalidate on every load (a cheap `304`), so an upgraded binary
//! never serves stale scripts.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the UI.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("util.js", JS),
    asset!("login.js", JS),
    asset!("health.js", JS),
    asset!("hints.js", JS),
    asset!("events.js", JS),
    asset!("timeline.js", JS),
    asset!("preflight.js", JS),
    asset!("config.js", JS),
    asset!("form.js", JS),
    asset!("storage.js", JS),
    asset!("notify.js", JS),
    asset!("nodes.js", JS),
];

/// The Content-Security-Policy of every UI response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
                       frame-ancestors 'none'";

/// FNV-1a, 64 bit: a content fingerprint for the `ETag` (not a security measure).
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

fn respond(asset: &Asset, req: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}-{:x}\"", fnv1a(asset.body), asset.body.len());
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    let matches = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (headers, asset.body).into_response()
}

async fn index(req: HeaderMap) -> Response {
    match find("index.html") {
        Some(a) => respond(a, &req),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn file(Path(name): Path<String>, req: HeaderMap) -> Response {
    match find(&name).filter(|a| a.name != "index.html") {
        Some(a) => respond(a, &req),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such UI file\n",
        )
            .into_response(),
    }
}

/// The UI routes: `/` (the page) and `/ui/<file>` (scripts, styles, icon). Stateless and
/// unauthenticated: merge it into the API router outside any authentication layer.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/ui/{name}", get(file))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, inm: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(t) = inm {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn text(a: &Asset) -> &'static str {
        std::str::from_utf8(a.body).unwrap()
    }

    #[tokio::test]
    async fn serves_every_asset_with_its_type_and_cache_headers() {
        for a in ASSETS {
            let path = if a.name == "index.html" {
                "/".to_owned()
            } else {
                format!("/ui/{}", a.name)
            };
            let r = get(&path, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let h = r.headers().clone();
            assert_eq!(h[header::CONTENT_TYPE], a.content_type, "{path}");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let etag = h[header::ETAG].to_str().unwrap().to_owned();
            let body = r.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], a.body);
            let r = get(&path, Some(&etag)).await;
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{path}");
            assert!(r.headers().get(header::CONTENT_TYPE).is_none());
        }
        assert_eq!(
            get("/ui/nope.js", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/ui/index.html", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(get("/ui/../Cargo.toml", None).await.status(), 404);
    }

    /// Peer data (WWIDs, aliases, node names, error messages) must never be parsed as HTML:
    /// the scripts build the DOM with `textContent` and attributes only, and nothing needs
    /// inline scripts, handlers or `eval` (so the CSP can forbid them).
    #[test]
    fn scripts_never_parse_html_or_eval() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let t = text(a);
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setAttribute('on",
                "setAttribute(\"on",
                "createContextualFragment",
                "DOMParser",
            ] {
                assert!(!t.contains(bad), "{} uses {bad}", a.name);
            }
        }
        let html = text(find("index.html").unwrap()).to_ascii_lowercase();
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains(" style="), "no inline style");
        for attr in [" onclick", " onload", " oninput", " onsubmit", " onchange"] {
            assert!(!html.contains(attr), "inline handler {attr}");
        }
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    /// Every module a script imports is embedded.
    #[test]
    fn imports_resolve() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for part in text(a).split("from './").skip(1) {
                let name = &part[..part.find('\'').unwrap()];
                assert!(find(name).is_some(), "{} imports missing {name}", a.name);
            }
        }
        let html = text(find("index.html").unwrap());
        for part in html.split("\"/ui/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(find(name).is_some(), "index.html references missing {name}");
        }
    }
}
