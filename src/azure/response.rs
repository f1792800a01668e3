//! Reading one HTTP answer from Graph or ARM: success body, Microsoft's error envelope
//! (`{"error":{"code","message",...}}`), `Retry-After`, and the verdict the pipeline acts on.

use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use serde_json::Value;
use time::OffsetDateTime;

use super::ApiError;

/// Graph error codes meaning "this delta link is no longer usable, start over": the basic
/// codes and the detailed `resync*` ones of the errors page. Compared ignoring case: the
/// documentation writes `syncStateNotFound`, real answers carry `SyncStateNotFound`
/// (microsoft-graph-docs issues #2350, #2877).
const RESYNC_CODES: [&str; 4] = [
    "syncStateNotFound",
    "resyncRequired",
    "resyncApplyDifferences",
    "resyncUploadDifferences",
];
/// Graph error codes meaning "throttled" whatever the status ("The app or user has been
/// throttled", "Too many requests": errors page).
const THROTTLE_CODES: [&str; 2] = ["activityLimitReached", "throttledRequest"];
/// Error codes meaning "the tenant lacks the licence for this API" (also compared ignoring case).
const LICENSE_CODES: [&str; 1] = ["AadPremiumLicenseRequired"];

/// What the pipeline should do with an answer.
#[derive(Debug)]
pub(crate) enum Verdict {
    Success(Value),
    /// 401: the token may have expired server-side; refresh once, then give up with this error.
    Unauthorized(ApiError),
    /// 429, 509, a throttling error code, or 503 with `Retry-After`: pause the whole API,
    /// then retry.
    Throttled {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// 5xx, or a 2xx whose body is not valid JSON (truncated): back off and retry.
    Transient {
        reason: String,
    },
    /// Final: the caller gets this error.
    Failed(ApiError),
}

pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Verdict::Success(Value::Null);
        }
        return match serde_json::from_slice(body) {
            Ok(value) => Verdict::Success(value),
            Err(e) => Verdict::Transient {
                reason: format!("status {status} with an unreadable JSON body ({e})"),
            },
        };
    }

    let error = ErrorBody::parse(body);
    let location = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let has_code = |codes: &[&str]| error.has_code(codes);

    if status == 410 || has_code(&RESYNC_CODES) {
        return Verdict::Failed(ApiError::DeltaTokenExpired { location });
    }
    if has_code(&LICENSE_CODES) {
        return Verdict::Failed(ApiError::LicenseRequired {
            message: error.message,
        });
    }
    let reason = format!("status {status} ({}): {}", error.code(), error.message);
    if status != 401 && has_code(&THROTTLE_CODES) {
        return Verdict::Throttled {
            retry_after: retry_after(headers),
            reason,
        };
    }
    match status {
        401 => Verdict::Unauthorized(ApiError::Authentication {
            message: format!("the API rejected the access token: {reason}"),
        }),
        // 509 Bandwidth Limit Exceeded: "throttled for exceeding the maximum bandwidth cap",
        // retry "after more time has elapsed" (Graph errors page).
        429 | 509 => Verdict::Throttled {
            retry_after: retry_after(headers),
            reason,
        },
        503 => match retry_after(headers) {
            Some(after) => Verdict::Throttled {
                retry_after: Some(after),
                reason,
            },
            None => Verdict::Transient { reason },
        },
        500 | 502 | 504 => Verdict::Transient { reason },
        404 => Verdict::Failed(ApiError::NotFound {
            code: error.code().to_owned(),
            message: error.message,
        }),
        403 => Verdict::Failed(ApiError::Forbidden {
            code: error.code().to_owned(),
            message: error.message,
        }),
        _ => Verdict::Failed(ApiError::Other {
            status: Some(status),
            code: error.code().to_owned(),
            message: error.message,
        }),
    }
}

/// The interesting parts of Microsoft's error envelope. Graph nests more specific codes in
/// `innerError`/`innererror`, so all of them are collected.
pub(crate) struct ErrorBody {
    codes: Vec<String>,
    message: String,
}

impl ErrorBody {
    pub(crate) fn parse(body: &[u8]) -> Self {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(300).collect();
            return ErrorBody {
                codes: Vec::new(),
                message: if text.is_empty() {
                    "(empty body)".into()
                } else {
                    text
                },
            };
        };
        Self::from_value(&value)
    }

    pub(crate) fn from_value(value: &Value) -> Self {
        let mut codes = Vec::new();
        let mut message = String::new();
        let mut node = value.get("error");
        while let Some(error) = node {
            if let Some(code) = error.get("code").and_then(Value::as_str) {
                codes.push(code.to_owned());
            }
            if message.is_empty()
                && let Some(m) = error.get("message").and_then(Value::as_str)
            {
                message = m.to_owned();
            }
            node = error.get("innerError").or_else(|| error.get("innererror"));
        }
        ErrorBody { codes, message }
    }

    /// Whether any of the collected codes is one of `codes`, ignoring case.
    pub(crate) fn has_code(&self, codes: &[&str]) -> bool {
        self.codes
            .iter()
            .any(|c| codes.iter().any(|known| c.eq_ignore_ascii_case(known)))
    }

    pub(crate) fn code(&self) -> &str {
        self.codes.first().map_or("", String::as_str)
    }
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, OffsetDateTime::now_utc())
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format)
        .ok()?
        .assume_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn verdict(status: u16, headers: &[(&str, &str)], body: &str) -> Verdict {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        classify(status, &map, body.as_bytes())
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = time::macros::datetime!(2026-11-26 04:00:00 UTC);
        assert_eq!(parse_retry_after("10", now), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 04:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 03:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn delta_expiry_is_recognised_by_code_and_by_410() {
        let body = r#"{"error":{"code":"syncStateNotFound","message":"gone"}}"#;
        assert!(matches!(
            verdict(400, &[], body),
            Verdict::Failed(ApiError::DeltaTokenExpired { location: None })
        ));
        for code in [
            "SyncStateNotFound",
            "RESYNCREQUIRED",
            "resyncApplyDifferences",
        ] {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            assert!(
                matches!(
                    verdict(400, &[], &body),
                    Verdict::Failed(ApiError::DeltaTokenExpired { location: None })
                ),
                "{code}"
            );
        }
        let nested = r#"{"error":{"code":"badRequest","message":"m","innerError":{"code":"resyncRequired"}}}"#;
        assert!(matches!(
            verdict(400, &[], nested),
            Verdict::Failed(ApiError::DeltaTokenExpired { .. })
        ));
        match verdict(
            410,
            &[("location", "https://g/v1.0/users/delta?$deltatoken=")],
            "",
        ) {
            Verdict::Failed(ApiError::DeltaTokenExpired { location }) => {
                assert_eq!(
                    location.as_deref(),
                    Some("https://g/v1.0/users/delta?$deltatoken=")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn licence_forbidden_not_found_and_other_are_final() {
        let licence = r#"{"error":{"code":"AadPremiumLicenseRequired","message":"needs P2"}}"#;
        for status in [400, 403] {
            assert!(matches!(
                verdict(status, &[], licence),
                Verdict::Failed(ApiError::LicenseRequired { ref message }) if message == "needs P2"
            ));
        }
        let denied = r#"{"error":{"code":"Authorization_RequestDenied","message":"no"}}"#;
        assert!(matches!(
            verdict(403, &[], denied),
            Verdict::Failed(ApiError::Forbidden { ref code, .. }) if code == "Authorization_RequestDenied"
        ));
        assert!(matches!(
            verdict(404, &[], "not json"),
            Verdict::Failed(ApiError::NotFound { ref message, .. }) if message == "not json"
        ));
        assert!(matches!(
            verdict(400, &[], r#"{"error":{"code":"BadRequest","message":"x"}}"#),
            Verdict::Failed(ApiError::Other {
                status: Some(400),
                ..
            })
        ));
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        assert!(matches!(
            verdict(429, &[("retry-after", "7")], ""),
            Verdict::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            verdict(503, &[("retry-after", "1")], ""),
            Verdict::Throttled { .. }
        ));
        assert!(matches!(verdict(503, &[], ""), Verdict::Transient { .. }));
        assert!(matches!(
            verdict(509, &[("retry-after", "2")], ""),
            Verdict::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        let throttled_code = r#"{"error":{"code":"generalException","message":"m","innererror":{"code":"throttledRequest"}}}"#;
        assert!(matches!(
            verdict(400, &[], throttled_code),
            Verdict::Throttled { .. }
        ));
        assert!(matches!(
            verdict(
                403,
                &[],
                r#"{"error":{"code":"activityLimitReached","message":"m"}}"#
            ),
            Verdict::Throttled { .. }
        ));
        assert!(matches!(verdict(502, &[], ""), Verdict::Transient { .. }));
        assert!(matches!(
            verdict(200, &[], "{\"value\":["),
            Verdict::Transient { .. }
        ));
        assert!(matches!(
            verdict(204, &[], ""),
            Verdict::Success(Value::Null)
        ));
    }
}
