//! Injectable transport and service faults for Graph and ARM requests: a share of 5xx answers,
//! slow answers, dropped connections and truncated bodies. Draws come from a seeded generator so
//! a failing test can be replayed. (A tenant without the P2 licence is tenant state, not a random
//! fault: the handlers of P2 endpoints answer `AadPremiumLicenseRequired` for it.)

use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Shares (0.0 to 1.0) of requests that meet each fault. All zero by default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Answered 500, 502, 503 or 504 in the API's error shape.
    pub server_error_rate: f64,
    /// Answered only after `slow_delay`.
    pub slow_rate: f64,
    pub slow_delay: Duration,
    /// The connection is cut before any of the body is sent.
    pub drop_connection_rate: f64,
    /// The body stops half way, shorter than its announced `Content-Length`.
    pub truncate_body_rate: f64,
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> FaultConfig {
        FaultConfig {
            server_error_rate: 0.0,
            slow_rate: 0.0,
            slow_delay: Duration::from_secs(2),
            drop_connection_rate: 0.0,
            truncate_body_rate: 0.0,
            seed: 0,
        }
    }
}

impl FaultConfig {
    /// Checks that every rate is a share between 0 and 1.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, rate) in [
            ("server_error_rate", self.server_error_rate),
            ("slow_rate", self.slow_rate),
            ("drop_connection_rate", self.drop_connection_rate),
            ("truncate_body_rate", self.truncate_body_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                anyhow::bail!("fault {name} must be between 0.0 and 1.0, got {rate}");
            }
        }
        Ok(())
    }
}

/// What happens to one request. A slow answer may also be faulty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPlan {
    pub delay: Option<Duration>,
    pub outcome: FaultOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    Normal,
    ServerError(u16),
    DropConnection,
    TruncateBody,
}

/// Draws faults for requests.
pub struct FaultInjector {
    state: Mutex<(FaultConfig, StdRng)>,
}

impl FaultInjector {
    pub fn new(config: FaultConfig) -> FaultInjector {
        let rng = StdRng::seed_from_u64(config.seed);
        FaultInjector {
            state: Mutex::new((config, rng)),
        }
    }

    /// Replaces the configuration and restarts the draws from its seed.
    pub fn set(&self, config: FaultConfig) {
        let rng = StdRng::seed_from_u64(config.seed);
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (config, rng);
    }

    pub fn config(&self) -> FaultConfig {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    pub fn plan(&self) -> FaultPlan {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (config, rng) = &mut *guard;
        let delay = (config.slow_rate > 0.0 && rng.random_bool(config.slow_rate))
            .then_some(config.slow_delay);
        let outcome = if config.server_error_rate > 0.0 && rng.random_bool(config.server_error_rate)
        {
            const STATUSES: [u16; 4] = [500, 502, 503, 504];
            FaultOutcome::ServerError(STATUSES[rng.random_range(0..STATUSES.len())])
        } else if config.drop_connection_rate > 0.0 && rng.random_bool(config.drop_connection_rate)
        {
            FaultOutcome::DropConnection
        } else if config.truncate_body_rate > 0.0 && rng.random_bool(config.truncate_body_rate) {
            FaultOutcome::TruncateBody
        } else {
            FaultOutcome::Normal
        };
        FaultPlan { delay, outcome }
    }
}

/// A response whose connection is cut: the head is sent, then the body fails, so the client
/// sees the connection end before a complete message.
pub fn dropped_connection() -> Response {
    let body = Body::from_stream(futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulator fault: connection dropped",
        ))
    }));
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("1024"));
    response
}

/// Rewrites a complete response so that only the first half of its body arrives, although the
/// head announces the full length.
pub async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return dropped_connection(),
    };
    let full_len = bytes.len();
    let half = bytes.slice(..full_len / 2);
    let stream = futures::stream::iter(vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulator fault: body truncated",
        )),
    ]);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(full_len.max(1)));
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_respected_roughly_and_replayable() {
        let config = FaultConfig {
            server_error_rate: 0.2,
            seed: 7,
            ..FaultConfig::default()
        };
        let injector = FaultInjector::new(config.clone());
        let first: Vec<FaultPlan> = (0..1_000).map(|_| injector.plan()).collect();
        let errors = first
            .iter()
            .filter(|p| matches!(p.outcome, FaultOutcome::ServerError(_)))
            .count();
        assert!((150..=250).contains(&errors), "{errors} errors in 1000");
        injector.set(config);
        let again: Vec<FaultPlan> = (0..1_000).map(|_| injector.plan()).collect();
        assert_eq!(first, again);
    }

    #[test]
    fn no_faults_by_default() {
        let injector = FaultInjector::new(FaultConfig::default());
        assert!((0..100).all(|_| injector.plan()
            == FaultPlan {
                delay: None,
                outcome: FaultOutcome::Normal
            }));
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        let config = FaultConfig {
            slow_rate: 1.5,
            ..FaultConfig::default()
        };
        let err = config
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("slow_rate"), "{err}");
    }
}
