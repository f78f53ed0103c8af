//! `ferry board`: every route over a fleet of journal histories (paused,
//! failed, rolled-back and finished runs, a guard with its time series),
//! escaping, the live stream, approving with the one-time token against
//! forged requests; the board over a lab run paused at its gate on every
//! backend (approved from the page, then resumed by the CLI); a taken
//! port; and a real browser (Chromium driven by Playwright) doing what a
//! team lead does.

use crate::common::history::History;
use crate::common::lab::LabFixture;
use crate::common::{Sandbox, await_condition};
use crate::team_state::Shared;
use ferry::board::{Board, routes};
use ferry::journal::{MemoryStore, RunStatus, Store};
use ferry::probes::stats::{Limits, Sample, Stats};
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP answer: status, headers (lowercase names) and body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A client that follows no redirects and keeps no cookies: each request
/// says exactly what it sends.
struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str) -> Client {
        ferry::tls::install_provider();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        Client {
            rt,
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.rt.block_on(async {
            let response = request.send().await.expect("the board answers");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.text().await.expect("a body");
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request)
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request)
    }

    /// Logs in with the one-time token; returns the `Cookie` header to send.
    fn login(&self, token: &str) -> String {
        let answer = self.get(&format!("/?token={token}"), &[]);
        assert_eq!(answer.status, 303, "{}", answer.body);
        let cookie = answer.header("set-cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        cookie.split(';').next().unwrap().to_owned()
    }

    fn origin(&self) -> String {
        self.base.clone()
    }
}

/// The CSRF token in a page's approve form.
fn csrf_in(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no approve form in {page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The board over `store` in this process, on a free loopback port.
struct InProcess {
    client: Client,
    _server: std::thread::JoinHandle<()>,
}

fn serve(store: Arc<dyn Store>, token: Option<&str>) -> InProcess {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let board = Arc::new(Board::new(store, token.map(str::to_owned)));
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, routes::router(board, address))
                .await
                .unwrap();
        });
    });
    InProcess {
        client: Client::new(&format!("http://{address}")),
        _server: server,
    }
}

/// Guard statistics as a guard journals them: 2 s at 100/s, failing
/// from 1.0 s to 1.2 s, the flip at 1.0 s.
fn guard_stats() -> serde_json::Value {
    let mut samples: Vec<Sample> = (0..200)
        .map(|i| {
            let ok = !(100..120).contains(&i);
            Sample {
                start: Duration::from_millis(i * 10),
                latency: Duration::from_millis(if ok { 3 + i % 5 } else { 0 }),
                ok,
                kind: None,
                error: (!ok).then(|| "refused".to_owned()),
                path: None,
            }
        })
        .collect();
    let mut stats = Stats::from_samples(
        "http://app1.app1-ns/".into(),
        100.0,
        Limits {
            max_failures: 50,
            max_gap_ms: None,
        },
        &mut samples,
        Duration::from_secs(2),
        0,
        false,
    );
    stats.flip_ms = Some(1000);
    stats.to_json()
}

const SCRIPT: &str = r#"
step("app1: EndpointSlice -> old ingress", || 1);
step("app1: prove new", || 1);
step("app2: expose in old", || 1);
step("app2: prove new", || 1);
step("app3: expose in old", || 1);
step("app4: expose in old", || 1);
step("<script>alert(1)</script>", || 1);
pause("app2-ready", "app2's team is ready?");
"#;

/// Five runs: paused at a gate only alice may approve (app1 cut over,
/// with a guard), failed (app2 bridged), rolled back (app3), finished
/// (app4 finalized), one whose step name and value are markup, and one
/// recorded running whose driver is gone (app6).
fn fleet() -> Arc<dyn Store> {
    let store = MemoryStore::new();
    History::new(SCRIPT)
        .id("paused-run")
        .started_by("alice@laptop")
        .status(RunStatus::Paused)
        .completed("app1: EndpointSlice -> old ingress", serde_json::json!(1))
        .with_undo()
        .guard(guard_stats())
        .phase("app1", "bridged", "ns1")
        .phase("app1", "prepared", "ns1")
        .phase("app1", "cut over", "ns1")
        .gate("app2-ready", false)
        .approvers(&["alice"])
        .write_to(&store);
    History::new(SCRIPT)
        .id("failed-run")
        .started_by("bob@desk")
        .completed("app2: expose in old", serde_json::json!("app2-internal"))
        .with_undo()
        .phase("app2", "bridged", "ns2")
        .failed(
            "app2: prove new",
            "new.zone did not answer: connection refused",
        )
        .write_to(&store);
    History::new(SCRIPT)
        .id("rolled-back-run")
        .status(RunStatus::RolledBack)
        .completed("app3: expose in old", serde_json::json!(1))
        .with_undo()
        .undone()
        .phase("app3", "bridged", "ns3")
        .write_to(&store);
    History::new(SCRIPT)
        .id("done-run")
        .status(RunStatus::Succeeded)
        .completed("app4: expose in old", serde_json::json!(1))
        .with_undo()
        .phase("app4", "bridged", "ns4")
        .phase("app4", "prepared", "ns4")
        .phase("app4", "cut over", "ns4")
        .phase("app4", "finalized", "ns4")
        .write_to(&store);
    History::new(SCRIPT)
        .id("markup-run")
        .status(RunStatus::Succeeded)
        .completed(
            "<script>alert(1)</script>",
            serde_json::json!("<script>alert(2)</script>"),
        )
        .phase("<b>app5</b>", "bridged", "ns5")
        .write_to(&store);
    History::new(SCRIPT)
        .id("dead-run")
        .status(RunStatus::Running)
        .phase("app6", "bridged", "ns6")
        .write_to(&store);
    Arc::new(store)
}

/// The fleet row of `app` (its `<tr>` up to the next one).
fn row<'a>(page: &'a str, app: &str) -> &'a str {
    let start = page
        .find(&format!("data-app=\"{app}\""))
        .unwrap_or_else(|| panic!("no row for {app}"));
    let rest = &page[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// Which phase columns of a row are ticked, and by which run.
fn ticked(row: &str) -> Vec<(String, String)> {
    row.split("data-phase=\"")
        .skip(1)
        .map(|cell| &cell[..cell.find("</td>").unwrap_or(cell.len())])
        .filter(|cell| cell.contains("href=\"/runs/"))
        .map(|cell| {
            let phase = cell[..cell.find('"').unwrap()].to_owned();
            let run = cell.split("href=\"/runs/").nth(1).unwrap();
            (phase, run[..run.find('"').unwrap()].to_owned())
        })
        .collect()
}

#[test]
fn the_fleet_shows_each_apps_phases_across_runs_and_filters_them() {
    let board = serve(fleet(), None);
    let page = board.client.get("/", &[]);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    let body = &page.body;
    let by = |run: &str, phases: &[&str]| -> Vec<(String, String)> {
        phases
            .iter()
            .map(|p| ((*p).to_owned(), run.to_owned()))
            .collect()
    };
    assert_eq!(
        ticked(row(body, "app1")),
        by("paused-run", &["bridged", "prepared", "cut over"])
    );
    assert_eq!(ticked(row(body, "app2")), by("failed-run", &["bridged"]));
    assert_eq!(ticked(row(body, "app3")), [], "rolled back: no phase");
    assert!(row(body, "app3").contains("rolled-back"));
    assert_eq!(
        ticked(row(body, "app4")),
        by(
            "done-run",
            &["bridged", "prepared", "cut over", "finalized"]
        )
    );
    assert!(row(body, "app1").contains("alice@laptop"), "who started it");
    assert!(row(body, "app6").contains("running (driver died)"));
    assert!(!row(body, "app1").contains("driver died"));
    // The gate waits for alice, and the fleet says so.
    let waiting = &body[body.find("id=\"waiting\"").expect("waiting list")..];
    assert!(waiting.contains("paused-run") && waiting.contains("for alice"));
    // Grouped by namespace by default.
    assert!(body.contains("ns4 (1)"), "{body}");

    let only = |query: &str| -> Vec<String> {
        let page = board.client.get(query, &[]).body;
        page.split("data-app=\"")
            .skip(1)
            .map(|r| r[..r.find('"').unwrap()].to_owned())
            .collect()
    };
    assert_eq!(only("/?status=failed"), ["app2"]);
    assert_eq!(only("/?namespace=ns4"), ["app4"]);
    assert_eq!(only("/?phase=cut+over"), ["app1"]);
    assert_eq!(only("/?q=APP3"), ["app3"]);
    assert_eq!(only("/?cluster=old").len(), 6);
    let grouped = board.client.get("/?group=status", &[]).body;
    assert!(grouped.contains("paused (1)") && grouped.contains("succeeded (2)"));
}

#[test]
fn markup_from_scripts_renders_as_text() {
    let board = serve(fleet(), None);
    for path in ["/", "/runs/markup-run"] {
        let page = board.client.get(path, &[]).body;
        assert!(
            !page.contains("<script>alert") && !page.contains("<b>app5"),
            "{path} carries markup from the journal: {page}"
        );
    }
    let run = board.client.get("/runs/markup-run", &[]).body;
    assert!(
        run.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the step name"
    );
    assert!(
        run.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "the value"
    );
    let fleet = board.client.get("/", &[]).body;
    assert!(fleet.contains("&lt;b&gt;app5&lt;/b&gt;"), "the app name");
    // And the browser would not run an injected script anyway.
    let csp = board.client.get("/", &[]);
    assert!(
        csp.header("content-security-policy")
            .contains("default-src 'self'")
    );
    assert_eq!(csp.header("x-frame-options"), "DENY");
}

#[test]
fn the_run_view_shows_timeline_failures_gates_guard_chart_and_source() {
    let board = serve(fleet(), None);
    let paused = board.client.get("/runs/paused-run", &[]);
    assert_eq!(paused.status, 200);
    let body = &paused.body;
    // The guard as a chart drawn by plotters, with its flip marked.
    let guard = &body[body.find("class=\"guard\"").expect("a guard section")..];
    assert!(guard.contains("<svg"), "an inline SVG chart");
    assert!(guard.contains("flip"), "the flip is in the legend");
    assert!(guard.contains("200 requests"), "{guard}");
    assert!(body.contains("data-gate=\"app2-ready\" class=\"waiting\""));
    assert!(body.contains("alice"), "the gate's approvers");
    assert!(
        body.contains("ferry approve paused-run app2-ready"),
        "a read-only board says how to approve"
    );
    assert!(
        !body.contains("<form class=\"approve\""),
        "no approve form without --allow-approve"
    );
    assert!(body.contains("Script as recorded") && body.contains("pause(&quot;app2-ready&quot;"));

    let failed = board.client.get("/runs/failed-run", &[]).body;
    assert!(failed.contains("new.zone did not answer: connection refused"));
    assert!(
        failed.contains("at script.rhai:5:1"),
        "the failing step's position"
    );
    assert!(failed.contains("data-step=\"app2: prove new\""));
    let rolled = board.client.get("/runs/rolled-back-run", &[]).body;
    assert!(rolled.contains("undone"), "{rolled}");

    assert_eq!(board.client.get("/runs/no-such-run", &[]).status, 404);
    assert_eq!(board.client.get("/elsewhere", &[]).status, 404);
    let css = board.client.get("/board.css", &[]);
    assert!(css.status == 200 && css.header("content-type") == "text/css");
    let js = board.client.get("/board.js", &[]);
    assert!(js.status == 200 && js.body.contains("EventSource"));
    // A page rebinding its own name to loopback cannot read the board.
    assert_eq!(
        board.client.get("/", &[("host", "evil.example")]).status,
        421
    );
}

#[test]
fn approving_needs_the_one_time_token_a_session_and_the_boards_origin() {
    let store = fleet();
    let board = serve(store.clone(), Some("t0ken"));
    let client = &board.client;
    let origin = client.origin();
    let path = "/runs/paused-run/gates/app2-ready/approve";
    let gate = || store.gates("paused-run").unwrap()[0].clone();

    // Without a session: no form, and a POST is refused.
    let page = client.get("/runs/paused-run", &[]).body;
    assert!(page.contains("open the token URL"), "{page}");
    let no_session = client.post(
        path,
        &[("origin", &origin)],
        &[("csrf", "x"), ("name", "alice")],
    );
    assert_eq!(no_session.status, 403);
    assert!(no_session.body.contains("no approval session"));
    assert_eq!(client.get("/?token=wrong", &[]).status, 403);

    let cookie = client.login("t0ken");
    assert_eq!(
        client.get("/?token=t0ken", &[]).status,
        403,
        "the token works once"
    );
    let page = client.get("/runs/paused-run", &[("cookie", &cookie)]).body;
    let csrf = csrf_in(&page);

    let with = |headers: &[(&str, &str)], csrf: &str, name: &str| {
        client.post(path, headers, &[("csrf", csrf), ("name", name)])
    };
    let forged = with(
        &[("cookie", &cookie), ("origin", "http://evil.example")],
        &csrf,
        "alice",
    );
    assert_eq!(forged.status, 403, "another site's form");
    assert!(forged.body.contains("did not come from the board"));
    assert_eq!(
        with(&[("cookie", &cookie)], &csrf, "alice").status,
        403,
        "no Origin nor Referer"
    );
    assert_eq!(
        with(
            &[("cookie", &cookie), ("origin", &origin)],
            "guessed",
            "alice"
        )
        .status,
        403,
        "a wrong CSRF token"
    );
    let nobody = with(&[("cookie", &cookie), ("origin", &origin)], &csrf, "  ");
    assert_eq!(nobody.status, 400);
    assert!(nobody.body.contains("give your name"));
    // The gate names its approvers, as for `ferry approve`.
    let bob = with(&[("cookie", &cookie), ("origin", &origin)], &csrf, "bob");
    assert_eq!(bob.status, 403);
    assert!(bob.body.contains("alice"), "{}", bob.body);
    assert!(gate().approved_at.is_none());

    let alice = with(&[("cookie", &cookie), ("origin", &origin)], &csrf, "alice");
    assert_eq!(alice.status, 303, "{}", alice.body);
    assert_eq!(alice.header("location"), "/runs/paused-run");
    let approved = gate();
    assert!(approved.approved_at.is_some());
    let by = approved.approved_by.unwrap();
    assert!(by.starts_with("alice (on the board of "), "{by}");
    let page = client.get("/runs/paused-run", &[("cookie", &cookie)]).body;
    assert!(page.contains("data-gate=\"app2-ready\" class=\"approved\""));
    assert!(page.contains("approved by alice (on the board of"));
    // The run itself is not touched: resuming stays the CLI's job.
    assert_eq!(
        store.run("paused-run").unwrap().unwrap().status,
        RunStatus::Paused
    );

    // A board without --allow-approve refuses whatever is sent.
    let read_only = serve(fleet(), None);
    let refused = read_only.client.post(
        path,
        &[("origin", &read_only.client.origin())],
        &[("csrf", &csrf), ("name", "alice")],
    );
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("without --allow-approve"));
}

/// Reads server-sent events from `path` until one `main` event satisfies
/// `wanted`; returns its fragment.
fn await_event(client: &Client, path: &str, cookie: &str, wanted: impl Fn(&str) -> bool) -> String {
    client.rt.block_on(async {
        let mut response = client
            .http
            .get(format!("{}{path}", client.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut buffer = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: "))
                    && event.contains("event: main")
                {
                    let html: String = serde_json::from_str(data).expect("a JSON string");
                    if wanted(&html) {
                        return html;
                    }
                }
            }
            let chunk = tokio::time::timeout_at(deadline, response.chunk())
                .await
                .expect("the wanted event in time")
                .unwrap()
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
}

#[test]
fn the_live_stream_sends_the_page_again_when_the_journal_changes() {
    let store = fleet();
    let board = serve(store.clone(), None);
    let first = await_event(&board.client, "/live/runs/paused-run", "", |_| true);
    assert!(first.contains("class=\"waiting\""));
    // Someone approves with the CLI's code path: the open page follows.
    let approving = store.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        ferry::runner::approve(
            &*approving,
            "paused-run",
            "app2-ready",
            ferry::runner::Approver::Named("alice"),
        )
        .unwrap();
    });
    let started = std::time::Instant::now();
    let next = await_event(&board.client, "/live/runs/paused-run", "", |html| {
        html.contains("class=\"approved\"")
    });
    assert!(next.contains("approved by alice"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let fleet = await_event(&board.client, "/live/?status=paused", "", |_| true);
    assert!(fleet.contains("data-app=\"app1\"") && !fleet.contains("data-app=\"app2\""));
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let sb = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    sb.ferry(["board", "--listen", &address])
        .code(2)
        .stderr_has(&format!(
            "cannot serve the board on {address}: the port is taken"
        ))
        .run();
}

/// `ferry board` as a process: its base URL and, with `--allow-approve`,
/// the token it printed.
struct Served {
    child: std::process::Child,
    base: String,
    token: Option<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_board(sb: &Sandbox, shared: &Shared, allow_approve: bool) -> Served {
    let mut cmd = sb.command();
    cmd.args(["board", "--listen", "127.0.0.1:0"])
        .env("FERRY_STATE", &shared.state)
        .envs(shared.env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if allow_approve {
        cmd.arg("--allow-approve");
    }
    let mut child = cmd.spawn().expect("spawn ferry board");
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut base = None;
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find("http://") {
            base = Some(line[at..].trim_end_matches('/').to_owned());
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let token = allow_approve.then(|| {
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let at = line.find("?token=").expect("a token URL") + "?token=".len();
        line[at..].split_whitespace().next().unwrap().to_owned()
    });
    Served {
        child,
        base: base.expect("the board says where it listens"),
        token,
    }
}

const TWO_APPS: &str = include_str!("../../scripts/two-apps.rhai");

fn env<'a>(
    shared: &Shared,
    mut inv: crate::common::Invocation<'a>,
) -> crate::common::Invocation<'a> {
    inv = inv.env("FERRY_STATE", &shared.state);
    for (k, v) in &shared.env {
        inv = inv.env(k, v);
    }
    inv
}

/// Runs two-apps.rhai on the lab as run `moving`, to its gate `app2-ready`.
fn run_to_the_gate(sb: &Sandbox, lab: &LabFixture, shared: &Shared) {
    let script = sb.write("two-apps.rhai", TWO_APPS);
    env(
        shared,
        sb.ferry([
            "run",
            &script.display().to_string(),
            "--id",
            "moving",
            "--lab-dir",
            &lab.dir_arg(),
        ]),
    )
    .code(3)
    .run();
}

/// A lab run of two-apps.rhai paused at its gate, seen on the board,
/// approved from it, then resumed by the CLI to the end.
fn board_over_a_paused_lab_run(choose: impl FnOnce(&LabFixture) -> Shared) {
    let lab_home = Sandbox::new();
    let lab = LabFixture::serve(&lab_home.file("lab"));
    let shared = choose(&lab);
    let sb = Sandbox::new();
    run_to_the_gate(&sb, &lab, &shared);
    let served = spawn_board(&sb, &shared, true);
    let client = Client::new(&served.base);
    let fleet = client.get("/", &[]).body;
    assert_eq!(
        ticked(row(&fleet, "app1")),
        ["bridged", "prepared", "cut over"]
            .map(|p| (p.to_owned(), "moving".to_owned()))
            .to_vec()
    );
    let run = client.get("/runs/moving", &[]).body;
    assert_eq!(
        run.matches("<svg").count(),
        2,
        "a chart per guarded flip of app1"
    );
    let cookie = client.login(served.token.as_deref().unwrap());
    let page = client.get("/runs/moving", &[("cookie", &cookie)]).body;
    let approved = client.post(
        "/runs/moving/gates/app2-ready/approve",
        &[("cookie", &cookie), ("origin", &client.origin())],
        &[("csrf", &csrf_in(&page)), ("name", "carol")],
    );
    assert_eq!(approved.status, 303, "{}", approved.body);
    let status = env(&shared, sb.ferry(["status", "moving", "-o", "json"])).run();
    assert!(
        status.stdout.contains("carol (on the board of"),
        "{}",
        status.stdout
    );
    env(&shared, sb.ferry(["resume", "moving"])).run();
    await_condition("the board shows app2 finalized", || {
        let fleet = client.get("/", &[]).body;
        fleet.contains("data-app=\"app2\"") && ticked(row(&fleet, "app2")).len() == 4
    });
}

#[test]
fn board_over_a_paused_lab_run_through_sqlite() {
    let shared = tempfile::tempdir().unwrap();
    board_over_a_paused_lab_run(|_| {
        Shared::state(&format!("sqlite:{}", shared.path().join("state").display()))
    });
}

#[test]
fn board_over_a_paused_lab_run_through_postgres() {
    let pg = crate::common::postgres::PgServer::start();
    let url = pg.database("board");
    board_over_a_paused_lab_run(|_| Shared::state(&url));
}

#[test]
fn board_over_a_paused_lab_run_through_kubernetes() {
    board_over_a_paused_lab_run(crate::team_state::in_the_lab);
}

/// Chromium, driven by playwright-core (tests/browser/board.mjs), over a
/// lab run paused at its gate: the fleet's app matrix, the run's guard
/// charts, approving with the token, the open page following live, and a
/// second approve without the token refused. Screenshots go to the target
/// directory (`tmp/board-screenshots`).
#[test]
fn a_real_browser_sees_the_fleet_and_approves_the_gate_with_the_token() {
    let driver = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        driver.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in tests/browser (.ci/run does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: apt-get install chromium (.ci/run does)"
    );
    let lab_home = Sandbox::new();
    let lab = LabFixture::serve(&lab_home.file("lab"));
    let sb = Sandbox::new();
    let shared = Shared::state(&format!("sqlite:{}", sb.file("state").display()));
    run_to_the_gate(&sb, &lab, &shared);
    let served = spawn_board(&sb, &shared, true);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("board-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let out = std::process::Command::new("node")
        .arg(driver.join("board.mjs"))
        .current_dir(&driver)
        .env("BOARD_URL", &served.base)
        .env("TOKEN", served.token.as_deref().unwrap())
        .env("RUN", "moving")
        .env("GATE", "app2-ready")
        .env("APP", "app1")
        .env("SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    for shot in ["fleet.png", "run.png"] {
        let png = std::fs::read(shots.join(shot)).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{shot} is a PNG");
    }
    // The page's approval is the journal's: the CLI sees it.
    let status = env(&shared, sb.ferry(["status", "moving", "-o", "json"])).run();
    assert!(
        status.stdout.contains("dana (on the board of"),
        "{}",
        status.stdout
    );
}

/// `phase(app, name)` is journaled once as a `phase` record, replayed on
/// resume (not written again), and misuse is an error at its position.
#[test]
fn phase_records_are_journaled_once_and_replayed() {
    let sb = Sandbox::new();
    let script = sb.write(
        "phases.rhai",
        r#"step("copy", || 1);
phase("app1", "bridged", #{ namespace: "ns1", cluster: "old" });
pause("go", "on?");
phase("app1", "cut over");
"#,
    );
    let script = script.display().to_string();
    sb.ferry(["run", &script, "--id", "p"]).code(3).run();
    let phases = |sb: &Sandbox| -> Vec<serde_json::Value> {
        sb.steps("p")
            .into_iter()
            .filter(|s| s["kind"] == "phase")
            .collect()
    };
    let first = phases(&sb);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["name"], "app1: bridged");
    assert_eq!(first[0]["status"], "completed");
    assert_eq!(first[0]["data"]["namespace"], "ns1");
    assert_eq!(first[0]["data"]["cluster"], "old");
    sb.ferry(["approve", "p", "go"]).run();
    sb.ferry(["resume", "p"]).run();
    let after = phases(&sb);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        after[0]["ended_at"], first[0]["ended_at"],
        "replayed, not rewritten"
    );
    assert_eq!(after[1]["name"], "app1: cut over");
    assert!(after[1]["data"]["namespace"].is_null());

    let twice = sb.write(
        "twice.rhai",
        "phase(\"a\", \"bridged\");\nphase(\"a\", \"bridged\");\n",
    );
    sb.ferry(["run", &twice.display().to_string()])
        .code(2)
        .stderr_has("duplicate phase name `a: bridged`")
        .stderr_has("twice.rhai:2:1")
        .run();
    let bad = sb.write("bad.rhai", "phase(\"a\", \"bridged\", #{ zone: 1 });\n");
    sb.ferry(["run", &bad.display().to_string()])
        .code(2)
        .stderr_has("zone")
        .stderr_has("bad.rhai:1:1")
        .run();
}

/// Ctrl-C stops the board even while a page holds its live stream open.
#[test]
fn ctrl_c_stops_the_board_with_a_live_page_open() {
    let sb = Sandbox::new();
    let shared = Shared::state(&format!("sqlite:{}", sb.file("state").display()));
    let mut served = spawn_board(&sb, &shared, false);
    let client = Client::new(&served.base);
    let fleet = await_event(&client, "/live/", "", |_| true);
    assert!(fleet.contains("No app has reached a phase yet"), "{fleet}");
    // A stream stays open in the background while the board is asked to stop.
    let base = served.base.clone();
    let (open, opened) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let client = Client::new(&base);
        client.rt.block_on(async {
            let mut response = client
                .http
                .get(format!("{base}/live/"))
                .send()
                .await
                .expect("the live stream opens");
            open.send(()).unwrap();
            // Read until the board ends the stream (or drops the connection).
            while let Ok(Some(_)) = response.chunk().await {}
        });
    });
    opened
        .recv_timeout(Duration::from_secs(10))
        .expect("the stream opened");
    let pid = served.child.id() as i32;
    // SAFETY: signalling a child this test spawned and still owns.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the board did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    holder.join().unwrap();
}
