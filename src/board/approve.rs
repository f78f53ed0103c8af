//! Who may approve gates from the page. Off unless `--allow-approve`; then
//! the board prints a URL with a one-time token (as Jupyter does): opening
//! it trades the token for a session cookie (HttpOnly, SameSite=Strict) and
//! the token is spent, so a URL left in a history or a log opens nothing.
//! Each session carries its own CSRF token, put in every approve form; an
//! approval needs the cookie, the matching form token, and an `Origin` (or
//! `Referer`) of the board itself, so no other site can submit it for a
//! logged-in browser. The approval itself goes through
//! [`crate::runner::approve`], as `ferry approve` does.

use std::collections::HashMap;
use std::sync::Mutex;

/// The session cookie's name.
pub const COOKIE: &str = "ferry_board";

/// Random hex of `bytes` bytes, from the operating system.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares secrets in time independent of where they first differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The approval state of a board: the unspent login token and the sessions.
pub struct Approvals {
    token: Mutex<Option<String>>,
    /// Session id -> its CSRF token.
    sessions: Mutex<HashMap<String, String>>,
}

impl Approvals {
    /// With `token`: approving is allowed for whoever opens the token URL first.
    pub fn new(token: Option<String>) -> Approvals {
        Approvals {
            token: Mutex::new(token),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Spends the login token: a new session id, or `None` when the token
    /// is wrong or spent already.
    pub fn login(&self, token: &str) -> Option<String> {
        let mut unspent = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if !unspent.as_deref().is_some_and(|t| same(t, token)) {
            return None;
        }
        let session = random_hex(32).ok()?;
        let csrf = random_hex(32).ok()?;
        *unspent = None;
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.clone(), csrf);
        Some(session)
    }

    /// The CSRF token of the session in `cookie_header`, if it is one of ours.
    pub fn csrf_of(&self, cookie_header: Option<&str>) -> Option<String> {
        let session = session_cookie(cookie_header?)?;
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .iter()
            .find(|(id, _)| same(id, session))
            .map(|(_, csrf)| csrf.clone())
    }

    /// Whether the form's token is the session's.
    pub fn check(&self, cookie_header: Option<&str>, form_token: &str) -> bool {
        self.csrf_of(cookie_header)
            .is_some_and(|csrf| same(&csrf, form_token))
    }
}

/// The value of our cookie in a `Cookie:` header.
fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Whether a request that changes something comes from the board's own
/// page: its `Origin` (or, without one, its `Referer`) names the host the
/// request was sent to. A request with neither is refused.
pub fn same_origin(host: Option<&str>, origin: Option<&str>, referer: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    let ours = format!("http://{host}");
    match (origin, referer) {
        (Some(origin), _) => origin == ours,
        (None, Some(referer)) => referer == ours || referer.starts_with(&format!("{ours}/")),
        (None, None) => false,
    }
}

/// A name given with an approval: one line of printable text, up to 100
/// characters.
pub fn valid_name(name: &str) -> Result<&str, &'static str> {
    let name = name.trim();
    if name.is_empty() {
        return Err("give your name: it is recorded as who approved");
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("a name is one line of at most 100 characters");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_spent_by_the_first_login_and_sessions_have_their_own_csrf() {
        let approvals = Approvals::new(Some("abc".into()));
        assert!(approvals.login("abd").is_none());
        let session = approvals.login("abc").expect("first login");
        assert!(approvals.login("abc").is_none(), "spent");
        let cookie = format!("other=1; {COOKIE}={session}");
        let csrf = approvals.csrf_of(Some(&cookie)).expect("session");
        assert!(approvals.check(Some(&cookie), &csrf));
        assert!(!approvals.check(Some(&cookie), "forged"));
        assert!(!approvals.check(Some(&format!("{COOKIE}=guess")), &csrf));
        assert!(!approvals.check(None, &csrf));
    }

    #[test]
    fn only_the_boards_own_origin_may_post() {
        let host = Some("127.0.0.1:8765");
        assert!(same_origin(host, Some("http://127.0.0.1:8765"), None));
        assert!(!same_origin(host, Some("http://evil.example"), None));
        assert!(same_origin(
            host,
            None,
            Some("http://127.0.0.1:8765/runs/a")
        ));
        assert!(!same_origin(host, None, Some("http://127.0.0.1:87650/")));
        assert!(!same_origin(host, None, None));
        assert!(valid_name(" alice ").is_ok_and(|n| n == "alice"));
        assert!(valid_name("a\nb").is_err() && valid_name("").is_err());
    }
}
