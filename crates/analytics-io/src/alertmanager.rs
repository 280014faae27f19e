//! Alerts out: Alertmanager's v2 API (`POST /api/v2/alerts`).
//!
//! A firing alert is posted again on every poll while it lasts (Alertmanager resolves an alert
//! that is not re-sent within its `resolve_timeout`); a resolved one is posted once with its
//! end time. A failed post is retried on the next poll, never lost silently: the caller counts
//! the errors.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::IoError;

/// One alert, as Alertmanager's v2 API takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Identifying labels (`alertname` among them).
    pub labels: BTreeMap<String, String>,
    /// Text for people (`summary`, `description`).
    pub annotations: BTreeMap<String, String>,
    /// When it began.
    pub starts_at: DateTime<Utc>,
    /// When it ended (resolved alerts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// A link back to what raised it.
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

/// An Alertmanager to post alerts to.
#[derive(Debug, Clone)]
pub struct AlertmanagerClient {
    url: String,
    client: reqwest::Client,
}

impl AlertmanagerClient {
    /// A client for the Alertmanager at `url` (plain HTTP).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, IoError> {
        if !url.starts_with("http://") {
            return Err(IoError::Config(format!("Alertmanager URL {url:?} must start with http://")));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| IoError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { url: url.trim_end_matches('/').to_owned(), client })
    }

    fn remote(&self, message: String) -> IoError {
        IoError::Remote { source_name: format!("alertmanager {}", self.url), message }
    }

    /// Posts `alerts` (nothing is sent for none).
    pub async fn post(&self, alerts: &[Alert]) -> Result<(), IoError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(alerts).map_err(|e| self.remote(format!("alerts do not encode: {e}")))?;
        let resp = self
            .client
            .post(format!("{}/api/v2/alerts", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.remote(format!("request failed: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(self.remote(format!("HTTP {status}: {}", &text[..text.len().min(300)])));
        }
        Ok(())
    }
}
