//! The scenarios: what each worker sends and which answers count as successes.

use super::*;

/// `GET /healthz`: the cheapest route, through the same middleware as every other.
pub(crate) struct Healthz;

impl Load for Healthz {
    fn next(&self, _worker: usize) -> Option<Call> {
        Some(Call::get("/healthz", None))
    }

    fn finish(&self, _worker: usize, status: Option<StatusCode>, _body: &[u8]) -> bool {
        status == Some(StatusCode::OK)
    }
}

/// `GET /v1/auth/2fa/status`, each request with the next of many users' access tokens.
pub(crate) struct Status {
    pub(crate) tokens: Vec<String>,
    pub(crate) cursor: Cell<usize>,
}

impl Load for Status {
    fn next(&self, _worker: usize) -> Option<Call> {
        let i = self.cursor.get();
        self.cursor.set(i + 1);
        Some(Call::get(
            "/v1/auth/2fa/status",
            Some(self.tokens[i % self.tokens.len()].clone()),
        ))
    }

    fn finish(&self, _worker: usize, status: Option<StatusCode>, _body: &[u8]) -> bool {
        status == Some(StatusCode::OK)
    }
}

/// `POST /v1/auth/refresh`. Each worker follows one session's rotation: every answer's new
/// refresh token is the next request's, so each token is used exactly once. A broken chain
/// starts again from a spare session.
pub(crate) struct Refresh {
    pub(crate) chains: RefCell<Vec<Option<String>>>,
    pub(crate) spares: RefCell<Vec<String>>,
}

impl Load for Refresh {
    fn next(&self, worker: usize) -> Option<Call> {
        let token = self.chains.borrow_mut()[worker]
            .take()
            .or_else(|| self.spares.borrow_mut().pop())?;
        Some(Call::post(
            "/v1/auth/refresh",
            None,
            serde_json::json!({ "refreshToken": token }),
        ))
    }

    fn finish(&self, worker: usize, status: Option<StatusCode>, body: &[u8]) -> bool {
        if status != Some(StatusCode::OK) {
            return false;
        }
        let next = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("refreshToken")?.as_str().map(str::to_owned));
        let ok = next.is_some();
        self.chains.borrow_mut()[worker] = next;
        ok
    }
}

/// One pending second factor: the `twoFactorToken` of a password step already taken, and
/// whose authenticator answers it.
pub(crate) struct Pending {
    pub(crate) secret: [u8; 20],
    pub(crate) token: String,
    /// Which step's code to send, relative to the current one (-1, 0 or +1: all inside the
    /// window the server accepts).
    pub(crate) step_offset: i64,
}

/// `POST /v1/auth/2fa/verify` with a valid code, once per pending token. The warm-up may
/// spend a tenth of them; the measurement gets the rest.
pub(crate) struct Verify {
    pub(crate) pending: Vec<Pending>,
    pub(crate) cursor: Cell<usize>,
    pub(crate) limit: Cell<usize>,
}

impl Verify {
    pub(crate) fn new(pending: Vec<Pending>) -> Self {
        let limit = pending.len();
        Self {
            pending,
            cursor: Cell::new(0),
            limit: Cell::new(limit),
        }
    }
}

impl Load for Verify {
    fn measuring(&self, measuring: bool) {
        self.limit.set(if measuring {
            self.pending.len()
        } else {
            self.pending.len() / 10
        });
    }

    fn next(&self, _worker: usize) -> Option<Call> {
        let i = self.cursor.get();
        if i >= self.limit.get() {
            return None;
        }
        let pending = self.pending.get(i)?;
        self.cursor.set(i + 1);
        let totp = Totp::standard(&pending.secret);
        let code = totp.code_for_step(totp.step_at(unix_now()) + pending.step_offset);
        Some(Call::post(
            "/v1/auth/2fa/verify",
            Some(pending.token.clone()),
            serde_json::json!({ "code": code }),
        ))
    }

    fn finish(&self, _worker: usize, status: Option<StatusCode>, _body: &[u8]) -> bool {
        status == Some(StatusCode::OK)
    }
}

/// `POST /v1/auth/login` with the right password of accounts without 2FA.
pub(crate) struct Login {
    pub(crate) accounts: Vec<(String, String)>,
    pub(crate) cursor: Cell<usize>,
}

impl Load for Login {
    fn next(&self, _worker: usize) -> Option<Call> {
        let i = self.cursor.get();
        self.cursor.set(i + 1);
        let (email, password) = &self.accounts[i % self.accounts.len()];
        Some(Call::post(
            "/v1/auth/login",
            None,
            serde_json::json!({ "email": email, "password": password }),
        ))
    }

    fn finish(&self, _worker: usize, status: Option<StatusCode>, _body: &[u8]) -> bool {
        status == Some(StatusCode::OK)
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
