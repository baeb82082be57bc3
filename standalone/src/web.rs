//! The web client, embedded in the binary so a fresh machine needs nothing
//! but this executable (no CDN: the Socket.IO client is served from here).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse + Clone {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `/`, `/app.js`, `/style.css`, `/sw.js`, `/vendor/socket.io.min.js`.
pub fn router() -> Router {
    let html = asset(
        "text/html; charset=utf-8",
        include_bytes!("../web/index.html"),
    );
    let js = asset(
        "text/javascript; charset=utf-8",
        include_bytes!("../web/app.js"),
    );
    let css = asset(
        "text/css; charset=utf-8",
        include_bytes!("../web/style.css"),
    );
    // The push service worker: served from the root so its scope is the
    // whole app (`Service-Worker-Allowed` says so explicitly).
    let sw = (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                "/",
            ),
        ],
        include_bytes!("../web/sw.js").as_slice(),
    );
    let sio = asset(
        "text/javascript; charset=utf-8",
        include_bytes!("../web/vendor/socket.io.min.js"),
    );
    Router::new()
        .route("/", get(move || std::future::ready(html.clone())))
        .route("/app.js", get(move || std::future::ready(js.clone())))
        .route("/style.css", get(move || std::future::ready(css.clone())))
        .route("/sw.js", get(move || std::future::ready(sw.clone())))
        .route(
            "/vendor/socket.io.min.js",
            get(move || std::future::ready(sio.clone())),
        )
}
