//! A client for CFSSL-compatible CA servers (ours and `cfssl serve`).

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pki::config::AuthKey;
use serde_json::Value;

/// What can go wrong talking to a remote CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not usable.
    #[error("invalid remote URL {0:?}: {1}")]
    BadUrl(String, String),
    /// Connecting or transferring failed.
    #[error("cannot reach the CA at {0}: {1}")]
    Transport(String, String),
    /// The CA answered with an error envelope.
    #[error("the CA refused the request (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// First error message of the envelope.
        message: String,
    },
    /// The answer is not what the API promises.
    #[error("unexpected answer from the CA: {0}")]
    Protocol(String),
}

/// A remote CA at a base URL such as `http://127.0.0.1:8888`.
#[derive(Debug, Clone)]
pub struct RemoteCa {
    base: String,
}

impl RemoteCa {
    /// Accepts `http://host:port` (a missing scheme means http, as CFSSL).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let base = pki::config::remote_url(url);
        if base.starts_with("https://") {
            return Err(ClientError::BadUrl(
                base,
                "https remotes are not supported yet; use http on a trusted network".into(),
            ));
        }
        base.parse::<hyper::Uri>()
            .map_err(|e| ClientError::BadUrl(base.clone(), e.to_string()))?;
        Ok(RemoteCa { base })
    }

    async fn post(&self, endpoint: &str, body: Vec<u8>) -> Result<Value, ClientError> {
        self.post_to(&format!("/api/v1/cfssl/{endpoint}"), body)
            .await
    }

    /// Portcullis' own custody endpoints (`/api/v1/portcullis/unseal`,
    /// `seal`): the request is HMAC-signed with the CA's admin key, like
    /// CFSSL's authsign, and carries the action and a timestamp.
    pub async fn custody_call(
        &self,
        action: &str,
        mut request: Value,
        admin: &AuthKey,
    ) -> Result<Value, ClientError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        request["action"] = action.into();
        request["timestamp"] = ts.into();
        let req_bytes = zeroize::Zeroizing::new(
            serde_json::to_vec(&request).map_err(|e| ClientError::Protocol(e.to_string()))?,
        );
        let body = zeroize::Zeroizing::new(
            serde_json::json!({
                "token": b64.encode(admin.token(&req_bytes)),
                "request": b64.encode(&*req_bytes),
            })
            .to_string(),
        );
        self.post_to(
            &format!("/api/v1/portcullis/{action}"),
            body.as_bytes().to_vec(),
        )
        .await
    }

    async fn post_to(&self, path: &str, body: Vec<u8>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = hyper::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::BadUrl(url.clone(), e.to_string()))?;
        let resp = client
            .request(req)
            .await
            .map_err(|e| ClientError::Transport(self.base.clone(), e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(self.base.clone(), e.to_string()))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            ClientError::Protocol(format!("HTTP {status} with a body that is not JSON"))
        })?;
        if v.get("success").and_then(Value::as_bool) != Some(true) {
            let message = v
                .pointer("/errors/0/message")
                .and_then(Value::as_str)
                .unwrap_or("no error message")
                .to_string();
            return Err(ClientError::Refused { status, message });
        }
        v.get("result")
            .cloned()
            .ok_or_else(|| ClientError::Protocol("no result".into()))
    }

    /// Sends a sign request (CFSSL JSON). With a key, uses `authsign`.
    pub async fn sign(
        &self,
        request: &Value,
        auth: Option<&AuthKey>,
    ) -> Result<String, ClientError> {
        let req_bytes =
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let result = match auth {
            Some(k) => {
                let b64 = base64::engine::general_purpose::STANDARD;
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let body = serde_json::json!({
                    "token": b64.encode(k.token(&req_bytes)),
                    "request": b64.encode(&req_bytes),
                    "timestamp": ts,
                });
                self.post("authsign", body.to_string().into_bytes()).await?
            }
            None => self.post("sign", req_bytes).await?,
        };
        result
            .get("certificate")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol("no certificate in the result".into()))
    }

    /// Any endpoint with a JSON body; returns the `result`.
    pub async fn call(&self, endpoint: &str, body: &Value) -> Result<Value, ClientError> {
        self.post(endpoint, body.to_string().into_bytes()).await
    }

    /// `info`: the CA certificate (PEM) for a profile.
    pub async fn info(&self, profile: &str) -> Result<String, ClientError> {
        let body = serde_json::json!({ "label": "", "profile": profile });
        let r = self.post("info", body.to_string().into_bytes()).await?;
        r.get("certificate")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol("no certificate in the result".into()))
    }
}
