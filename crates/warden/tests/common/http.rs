//! The HTTP API as the API tests call it: a bearer-token request and its reply (status,
//! headers, text, and the body as JSON — `null` when it is not JSON), plus API tokens
//! made with the CLI.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Home;

/// How long one request may take.
const WAIT: Duration = Duration::from_secs(20);

/// An API token with `scopes` (comma-separated), made by `warden token create`.
pub fn token(home: &Home, name: &str, scopes: &str) -> String {
    home.json(&["token", "create", "--name", name, "--scope", scopes])["token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// One reply of the API.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON; `null` when it is not JSON.
    pub body: Value,
}

impl Reply {
    /// The error code of an error reply (`""` otherwise).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The error message of an error reply (`""` otherwise).
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// Requires an error reply with `status` and `code`; `what` says what was asked.
    pub fn refused(&self, status: StatusCode, code: &str, what: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "{what}: {}",
            self.text
        );
    }
}

/// The API at `base` (`http://127.0.0.1:PORT`).
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            base: base.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// `method path` with `token` as the bearer and `body` as JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .timeout(WAIT);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("HTTP request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, token, None).await
    }
}
