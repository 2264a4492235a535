//! Notification channels and their deliveries as the API shows them (docs/api.md,
//! "Notification channels").

use crate::notify::ChannelFormat;
use crate::time::Timestamp;
use crate::words::words;
use serde::{Deserialize, Serialize};

/// `POST /api/v1/notification-channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub name: String,
    pub url: String,
    /// The HMAC key deliveries are signed with; optional for Slack, which does not check it.
    #[serde(default)]
    pub secret: Option<String>,
    pub format: ChannelFormat,
    /// Patterns such as `release`, `rollback`, `lane.*`; absent or empty: every event.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
}

/// A channel as the API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub format: ChannelFormat,
    pub events: Vec<String>,
    pub namespace: Option<String>,
    pub env: Option<String>,
    /// Whether deliveries are signed.
    pub signed: bool,
    pub created_by: String,
    pub created_at: Timestamp,
    /// Deliveries waiting to be sent or retried.
    pub pending: i64,
    /// The last delivery that ended, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Delivery>,
}

words! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        /// Not sent yet, or to be retried at `next_attempt_at`.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// No 2xx within 24 hours of its event: given up.
        Failed = "failed",
    }
}

/// One message to one channel, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub channel: i64,
    /// The audit action it tells of, or `test`.
    pub event: String,
    /// The audit entry it tells of (none for a test).
    pub audit_id: Option<i64>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Timestamp>,
    /// The HTTP status of the last attempt, when the receiver answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
}

/// A page of a channel's deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}
