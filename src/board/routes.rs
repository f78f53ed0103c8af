//! The board's routes (axum):
//!
//! * `GET /` the fleet (filters in the query); `/?token=T` spends the
//!   one-time approval token for a session cookie;
//! * `GET /runs/{id}` a run;
//! * `GET /live/` and `GET /live/runs/{id}` the same `<main>` fragments as a
//!   stream of server-sent events, sent again whenever they change (the
//!   journal is read every [`LIVE_EVERY`]);
//! * `POST /runs/{id}/gates/{gate}/approve` approve (with `--allow-approve`);
//! * `GET /board.css`, `GET /board.js`.
//!
//! Every answer forbids framing and caching and allows scripts only from the
//! board itself. On loopback the `Host` must name loopback, so a web page
//! rebinding its own name to 127.0.0.1 cannot read the board.

use super::{Board, approve, views};
use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How often the live stream reads the journal.
pub const LIVE_EVERY: Duration = Duration::from_millis(500);

#[derive(Clone)]
struct App {
    board: Arc<Board>,
    address: SocketAddr,
}

/// The board's router, answering as the server at `address`.
pub fn router(board: Arc<Board>, address: SocketAddr) -> Router {
    let app = App { board, address };
    Router::new()
        .route("/", get(fleet))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/gates/{gate}/approve", post(approve_gate))
        .route("/live/", get(live_fleet))
        .route("/live/runs/{id}", get(live_run))
        .route(
            "/board.css",
            get(|| async { asset("text/css", views::CSS) }),
        )
        .route(
            "/board.js",
            get(|| async { asset("text/javascript", views::JS) }),
        )
        .fallback(|| async {
            page(
                StatusCode::NOT_FOUND,
                "Not found",
                "",
                views::message("Not found", "The board has no such page."),
            )
        })
        .layer(middleware::from_fn_with_state(app.clone(), guard_host))
        .with_state(app)
}

fn asset(kind: &'static str, text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

/// Refuses a `Host` that is not loopback when the board listens on
/// loopback, and adds the headers every answer carries.
async fn guard_host(State(app): State<App>, request: Request, next: Next) -> Response {
    if app.address.ip().is_loopback() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        if !matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "this board answers to loopback names only",
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn page(status: StatusCode, title: &str, live: &str, main: Markup) -> Response {
    (status, Html(views::page(title, live, main).into_string())).into_response()
}

fn failed(error: impl std::fmt::Display) -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Error",
        "",
        views::message("The journal could not be read", &error.to_string()),
    )
}

/// Runs a blocking journal read off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the journal read stopped: {e}")),
    }
}

#[derive(serde::Deserialize)]
struct FleetQuery {
    #[serde(default)]
    token: Option<String>,
    #[serde(flatten)]
    filter: views::FleetFilter,
}

fn live_url(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

async fn fleet(
    State(app): State<App>,
    Query(query): Query<FleetQuery>,
    uri: axum::http::Uri,
) -> Response {
    if let Some(token) = query.token {
        return login(&app, &token);
    }
    let board = app.board.clone();
    let filter = query.filter;
    match blocking(move || board.render_fleet(&filter)).await {
        Ok(html) => page(
            StatusCode::OK,
            "Fleet",
            &live_url("/live/", uri.query()),
            maud::PreEscaped(html),
        ),
        Err(e) => failed(e),
    }
}

/// Spends the token for a session cookie, then shows the fleet.
fn login(app: &App, token: &str) -> Response {
    let Some(approvals) = &app.board.approvals else {
        return page(
            StatusCode::FORBIDDEN,
            "Read-only",
            "",
            views::message(
                "Read-only",
                "This board was started without --allow-approve: nobody approves from it.",
            ),
        );
    };
    match approvals.login(token) {
        Some(session) => {
            let cookie = format!(
                "{}={session}; HttpOnly; SameSite=Strict; Path=/",
                approve::COOKIE
            );
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        None => page(
            StatusCode::FORBIDDEN,
            "Token refused",
            "",
            views::message(
                "Token refused",
                "This token is wrong or was used already (it works once); restart the board for a new one.",
            ),
        ),
    }
}

fn csrf(app: &App, headers: &HeaderMap) -> Option<String> {
    let cookie = headers.get(header::COOKIE).and_then(|c| c.to_str().ok());
    app.board.approvals.as_ref()?.csrf_of(cookie)
}

async fn run(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let csrf = csrf(&app, &headers);
    run_page(&app, id, csrf, None, StatusCode::OK).await
}

async fn run_page(
    app: &App,
    id: String,
    csrf: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let board = app.board.clone();
    let live = format!("/live/runs/{}", views::segment(&id));
    let title = format!("Run {id}");
    match blocking(move || board.render_run(&id, csrf.as_deref(), notice.as_deref())).await {
        Ok(Some(html)) => page(status, &title, &live, maud::PreEscaped(html)),
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "No such run",
            "",
            views::message("No such run", &format!("The journal has no run `{title}`.")),
        ),
        Err(e) => failed(e),
    }
}

#[derive(serde::Deserialize)]
struct ApproveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn approve_gate(
    State(app): State<App>,
    Path((id, gate)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ApproveForm>,
) -> Response {
    let refuse = |why: &str| {
        page(
            StatusCode::FORBIDDEN,
            "Approval refused",
            "",
            views::message("Approval refused", why),
        )
    };
    let Some(approvals) = &app.board.approvals else {
        return refuse(
            "This board was started without --allow-approve: approve with `ferry approve`.",
        );
    };
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if !approve::same_origin(
        text(header::HOST),
        text(header::ORIGIN),
        text(header::REFERER),
    ) {
        return refuse("The request did not come from the board's own page.");
    }
    if !approvals.check(text(header::COOKIE), &form.csrf) {
        return refuse(
            "This browser has no approval session: open the token URL the board printed first.",
        );
    }
    let name = match approve::valid_name(&form.name) {
        Ok(name) => name.to_owned(),
        Err(why) => {
            let csrf = csrf(&app, &headers);
            return run_page(
                &app,
                id,
                csrf,
                Some(why.to_owned()),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let board = app.board.clone();
    let (run_id, gate_name) = (id.clone(), gate.clone());
    let result = blocking(move || {
        crate::runner::approve(
            board.store(),
            &run_id,
            &gate_name,
            crate::runner::Approver::Named(&name),
        )
    })
    .await;
    let csrf = csrf(&app, &headers);
    match result {
        Ok(_) => Redirect::to(&format!("/runs/{}", views::segment(&id))).into_response(),
        Err(e) => run_page(&app, id, csrf, Some(e), StatusCode::FORBIDDEN).await,
    }
}

async fn live_fleet(
    State(app): State<App>,
    Query(filter): Query<views::FleetFilter>,
) -> impl IntoResponse {
    let board = app.board.clone();
    live(app.board, move || board.render_fleet(&filter).map(Some))
}

async fn live_run(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let csrf = csrf(&app, &headers);
    let board = app.board.clone();
    live(app.board, move || {
        board.render_run(&id, csrf.as_deref(), None)
    })
}

/// A stream of `main` events: the fragment `render` makes, each time it
/// differs from the last one sent (JSON-encoded: one line, whatever the
/// fragment holds). Ends when the page no longer exists or the board closes.
fn live(
    board: Arc<Board>,
    render: impl Fn() -> crate::error::Result<Option<String>> + Send + Sync + 'static,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let render = Arc::new(render);
    let stream = futures::stream::unfold(
        (render, None::<String>, true),
        move |(render, last, first)| {
            let board = board.clone();
            async move {
                if !first {
                    tokio::time::sleep(LIVE_EVERY).await;
                }
                let mut last = last;
                loop {
                    if board.closing() {
                        return None;
                    }
                    let r = render.clone();
                    let html = match tokio::task::spawn_blocking(move || r()).await {
                        Ok(Ok(Some(html))) => html,
                        Ok(Ok(None)) => return None,
                        // A journal that cannot be read now may be read later.
                        Ok(Err(_)) | Err(_) => {
                            tokio::time::sleep(LIVE_EVERY).await;
                            continue;
                        }
                    };
                    if last.as_deref() != Some(html.as_str()) {
                        let data = serde_json::to_string(&html).unwrap_or_default();
                        let version = views::version(&html);
                        last = Some(html);
                        return Some((
                            Ok(Event::default().event("main").id(version).data(data)),
                            (render, last, false),
                        ));
                    }
                    tokio::time::sleep(LIVE_EVERY).await;
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
