//! OData query handling shared by every Graph handler: the system query options (`$select`,
//! `$filter`, `$top`, `$count`, `$expand`, `$skiptoken`), the small `$filter` grammar Graph's
//! directory objects accept, opaque paging tokens, and the Graph error shape.
//!
//! Filters are evaluated against the rendered JSON of an object, so every handler filters the
//! same way. Operators beyond `eq` (`ne`, `not`, `endsWith`) are "advanced queries": as Graph
//! documents, they need `$count=true` and the `ConsistencyLevel: eventual` header.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// A Graph error, rendered as `{"error":{"code","message","innerError":{...}}}`.
#[derive(Debug)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn unsupported_query(message: impl Into<String>) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", message)
    }

    pub fn not_found(id: &str) -> GraphError {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    pub fn no_route(path: &str) -> GraphError {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{path}'."),
        )
    }

    pub fn license_required() -> GraphError {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "AadPremiumLicenseRequired",
            "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.",
        )
    }

    /// The 403 Graph answers a write the app holds no permission for. The shape and the
    /// `innerError` (`request-id`, `date`) are microsoftgraph/microsoft-graph-docs-contrib
    /// concepts/errors.md ("403 Forbidden: Access is denied to the requested resource. The user
    /// might not have enough permission"); the code and message are the ones Microsoft's
    /// troubleshooting article quotes (MicrosoftDocs/SupportArticles-docs,
    /// support/entra/entra-id/app-integration/troubleshoot-authorization-requestdenied-graph-api.md:
    /// "`Authorization_RequestDenied`. Insufficient privileges to complete the operation.").
    pub fn insufficient_privileges() -> GraphError {
        GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> GraphError {
        self.headers.push((name, value));
        self
    }

    /// The body Graph sends: request ids and the date in `innerError`.
    pub fn body(&self, client_request_id: &str) -> Value {
        let request_id = uuid::Uuid::new_v4().to_string();
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .unwrap_or_default();
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": date,
                    "request-id": request_id,
                    "client-request-id": if client_request_id.is_empty() { request_id.as_str() } else { client_request_id },
                }
            }
        })
    }

    /// The answer, its `request-id` header the one in the body's `innerError`, as Graph sends.
    pub fn into_response_for(self, client_request_id: &str) -> Response {
        let body = self.body(client_request_id);
        let request_id = body["error"]["innerError"]["request-id"]
            .as_str()
            .map(str::to_owned);
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(v) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            response.headers_mut().insert("request-id", v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
        response
    }
}

/// The parsed query string of one Graph request.
#[derive(Debug, Clone, Default)]
pub struct ODataQuery {
    pub raw: HashMap<String, String>,
    pub select: Option<Vec<String>>,
    pub filter: Option<Filter>,
    pub top: Option<usize>,
    pub count: bool,
    pub expand: Option<Expand>,
    pub skiptoken: Option<String>,
    /// `ConsistencyLevel: eventual` was sent.
    pub eventual: bool,
}

/// One `$expand` target and its nested `$select`.
#[derive(Debug, Clone)]
pub struct Expand {
    pub property: String,
    pub select: Option<Vec<String>>,
}

impl ODataQuery {
    pub fn parse(query: &str, headers: &HeaderMap) -> Result<ODataQuery, GraphError> {
        let raw: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let eventual = headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
        let select = raw.get("$select").map(|s| split_list(s));
        let top = match raw.get("$top") {
            None => None,
            Some(t) => match t.parse::<usize>() {
                Ok(n) if (1..=999).contains(&n) => Some(n),
                _ => {
                    return Err(GraphError::bad_request(format!(
                        "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                    )));
                }
            },
        };
        let count = match raw.get("$count").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(GraphError::bad_request(format!(
                    "Invalid value '{other}' for $count; expected true or false."
                )));
            }
        };
        let filter = raw.get("$filter").map(|f| Filter::parse(f)).transpose()?;
        if let Some(filter) = &filter
            && filter.advanced
            && !(eventual && count)
        {
            return Err(GraphError::unsupported_query(
                "Unsupported or invalid query filter clause specified: this operator needs an advanced query ($count=true and the ConsistencyLevel: eventual header).",
            ));
        }
        let expand = raw.get("$expand").map(|e| parse_expand(e)).transpose()?;
        Ok(ODataQuery {
            select,
            filter,
            top,
            count,
            expand,
            skiptoken: raw.get("$skiptoken").cloned(),
            eventual,
            raw,
        })
    }

    /// Keeps only the selected properties (plus `id` and OData annotations), or the default set.
    pub fn project(&self, object: Map<String, Value>, defaults: &[&str]) -> Value {
        project(object, self.select.as_deref(), defaults)
    }

    pub fn selects(&self, property: &str) -> bool {
        self.select
            .as_ref()
            .is_some_and(|s| s.iter().any(|p| p.eq_ignore_ascii_case(property)))
    }
}

pub fn project(object: Map<String, Value>, select: Option<&[String]>, defaults: &[&str]) -> Value {
    let keep = |key: &str| {
        key == "id"
            || key.starts_with("@odata.")
            || match select {
                Some(list) => list.iter().any(|p| p.eq_ignore_ascii_case(key)),
                None => defaults.contains(&key),
            }
    };
    Value::Object(object.into_iter().filter(|(k, _)| keep(k)).collect())
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `manager($select=id,mail)` or `appRoleAssignedTo`.
fn parse_expand(text: &str) -> Result<Expand, GraphError> {
    let text = text.trim();
    if text.contains(',') && !text.contains('(') {
        return Err(GraphError::bad_request(
            "Only one navigation property can be expanded in a single request.",
        ));
    }
    match text.split_once('(') {
        None => Ok(Expand {
            property: text.to_string(),
            select: None,
        }),
        Some((property, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(|| {
                GraphError::bad_request(format!("Invalid $expand clause '{text}'."))
            })?;
            let select = inner
                .strip_prefix("$select=")
                .map(split_list)
                .ok_or_else(|| {
                    GraphError::bad_request(format!(
                        "Only $select is supported inside $expand, got '{inner}'."
                    ))
                })?;
            Ok(Expand {
                property: property.trim().to_string(),
                select: Some(select),
            })
        }
    }
}

/// A parsed `$filter` expression.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
    /// Uses an operator Graph serves only as an advanced query.
    pub advanced: bool,
}

#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        property: String,
        equal: bool,
        value: Value,
    },
    StartsWith {
        property: String,
        prefix: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Comma,
    Word(String),
    Str(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, GraphError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            ',' => {
                chars.next();
                tokens.push(Token::Comma);
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(GraphError::bad_request(format!(
                                "Invalid filter clause: unterminated string in '{text}'."
                            )));
                        }
                        // OData escapes a quote by doubling it.
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            s.push('\'');
                        }
                        Some('\'') => break,
                        Some(ch) => s.push(ch),
                    }
                }
                tokens.push(Token::Str(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || "(),'".contains(ch) {
                        break;
                    }
                    w.push(ch);
                    chars.next();
                }
                tokens.push(Token::Word(w));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    advanced: bool,
    text: String,
}

impl Parser {
    fn error(&self) -> GraphError {
        GraphError::bad_request(format!("Invalid filter clause: '{}'.", self.text))
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, GraphError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, GraphError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, GraphError> {
        if self.peek_word("not") {
            self.at += 1;
            self.advanced = true;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(self.error()),
                }
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("startswith") => {
                let (Some(Token::Open), Some(Token::Word(property)), Some(Token::Comma)) =
                    (self.next(), self.next(), self.next())
                else {
                    return Err(self.error());
                };
                let (Some(Token::Str(prefix)), Some(Token::Close)) = (self.next(), self.next())
                else {
                    return Err(self.error());
                };
                Ok(Expr::StartsWith { property, prefix })
            }
            Some(Token::Word(property)) => {
                let op = match self.next() {
                    Some(Token::Word(op)) => op.to_ascii_lowercase(),
                    _ => return Err(self.error()),
                };
                let equal = match op.as_str() {
                    "eq" => true,
                    "ne" => {
                        self.advanced = true;
                        false
                    }
                    other => {
                        return Err(GraphError::unsupported_query(format!(
                            "Unsupported filter operator '{other}' in '{}'.",
                            self.text
                        )));
                    }
                };
                let value = match self.next() {
                    Some(Token::Str(s)) => Value::String(s),
                    Some(Token::Word(w)) if w == "true" => Value::Bool(true),
                    Some(Token::Word(w)) if w == "false" => Value::Bool(false),
                    Some(Token::Word(w)) if w == "null" => Value::Null,
                    Some(Token::Word(w)) => match w.parse::<i64>() {
                        Ok(n) => Value::from(n),
                        // An unquoted GUID is accepted for id comparisons.
                        Err(_) if uuid::Uuid::parse_str(&w).is_ok() => Value::String(w),
                        Err(_) => return Err(self.error()),
                    },
                    _ => return Err(self.error()),
                };
                Ok(Expr::Compare {
                    property,
                    equal,
                    value,
                })
            }
            _ => Err(self.error()),
        }
    }
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, GraphError> {
        let mut parser = Parser {
            tokens: tokenize(text)?,
            at: 0,
            advanced: false,
            text: text.to_string(),
        };
        let expr = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(parser.error());
        }
        Ok(Filter {
            expr,
            advanced: parser.advanced,
        })
    }

    /// Whether an object (its full JSON) matches. String comparison ignores case, as in Graph.
    pub fn matches(&self, object: &Map<String, Value>) -> bool {
        eval(&self.expr, object)
    }

    /// The values an `id eq '...' or id eq '...'` filter names, if it is exactly that form.
    pub fn id_list(&self) -> Option<Vec<String>> {
        fn collect(expr: &Expr, out: &mut Vec<String>) -> bool {
            match expr {
                Expr::Or(a, b) => collect(a, out) && collect(b, out),
                Expr::Compare {
                    property,
                    equal: true,
                    value: Value::String(v),
                } if property == "id" => {
                    out.push(v.to_ascii_lowercase());
                    true
                }
                _ => false,
            }
        }
        let mut out = Vec::new();
        collect(&self.expr, &mut out).then_some(out)
    }

    /// The value of a top-level `property eq 'x'` clause (possibly inside `and`s).
    pub fn equality(&self, property: &str) -> Option<String> {
        fn find(expr: &Expr, property: &str) -> Option<String> {
            match expr {
                Expr::And(a, b) => find(a, property).or_else(|| find(b, property)),
                Expr::Compare {
                    property: p,
                    equal: true,
                    value: Value::String(v),
                } if p.eq_ignore_ascii_case(property) => Some(v.clone()),
                _ => None,
            }
        }
        find(&self.expr, property)
    }
}

fn eval(expr: &Expr, object: &Map<String, Value>) -> bool {
    match expr {
        Expr::And(a, b) => eval(a, object) && eval(b, object),
        Expr::Or(a, b) => eval(a, object) || eval(b, object),
        Expr::Not(a) => !eval(a, object),
        Expr::Compare {
            property,
            equal,
            value,
        } => {
            let actual = lookup(object, property);
            let same = match (actual, value) {
                (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
                // A missing property compares like null.
                (None, Value::Null) => true,
                (Some(a), b) => a == b,
                (None, _) => false,
            };
            same == *equal
        }
        Expr::StartsWith { property, prefix } => match lookup(object, property) {
            Some(Value::String(s)) => s.to_lowercase().starts_with(&prefix.to_lowercase()),
            _ => false,
        },
    }
}

fn lookup<'a>(object: &'a Map<String, Value>, property: &str) -> Option<&'a Value> {
    let mut current = object;
    let mut parts = property.split('/').peekable();
    while let Some(part) = parts.next() {
        let (_, value) = current.iter().find(|(k, _)| k.eq_ignore_ascii_case(part))?;
        if parts.peek().is_none() {
            return Some(value);
        }
        current = value.as_object()?;
    }
    None
}

/// Encodes paging state into an opaque URL-safe token.
pub fn encode_token<T: Serialize>(state: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(state).unwrap_or_default())
}

/// Decodes a token made by `encode_token`; a foreign or damaged token is a client error.
pub fn decode_token<T: DeserializeOwned>(token: &str) -> Result<T, GraphError> {
    URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            GraphError::bad_request("The $skiptoken or $deltatoken is not valid for this request.")
        })
}

/// Builds `base + path ? query` keeping every original parameter except `$skiptoken`, then the
/// new `$skiptoken`: Graph's nextLinks replay the original query, with `$` and `,` left as is.
pub fn next_link(base: &str, path: &str, raw: &HashMap<String, String>, token: &str) -> String {
    let mut pairs: Vec<(&String, &String)> = raw
        .iter()
        .filter(|(k, _)| k.as_str() != "$skiptoken")
        .collect();
    pairs.sort();
    let mut query: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect();
    query.push(format!("$skiptoken={}", encode_component(token)));
    format!("{base}{path}?{}", query.join("&"))
}

/// Percent-encodes a query component, leaving the characters OData links show unencoded.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b','
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b':'
            | b'@'
            | b'/' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn filters_match_like_graph() {
        let sp =
            obj(json!({"id": "A", "servicePrincipalType": "Application", "accountEnabled": true}));
        let f = Filter::parse("servicePrincipalType eq 'application' and accountEnabled eq true")
            .map_err(|e| e.message);
        assert!(f.as_ref().is_ok_and(|f| f.matches(&sp) && !f.advanced));
        let f = Filter::parse("onPremisesSyncEnabled ne true").map_err(|e| e.message);
        assert!(f.as_ref().is_ok_and(|f| f.advanced && f.matches(&sp)));
        let f = Filter::parse("id eq 'a' or id eq 'b'").map_err(|e| e.message);
        assert_eq!(
            f.ok().and_then(|f| f.id_list()),
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn bad_filters_are_refused_with_the_clause() {
        let err = Filter::parse("displayName gt 'x'").err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("gt")));
        let err = Filter::parse("id eq 'open").err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("unterminated")));
    }

    #[test]
    fn advanced_filters_need_count_and_eventual() {
        let headers = HeaderMap::new();
        let refused = ODataQuery::parse("$filter=onPremisesSyncEnabled%20ne%20true", &headers);
        assert!(refused.is_err());
        let mut headers = HeaderMap::new();
        headers.insert("ConsistencyLevel", HeaderValue::from_static("eventual"));
        let accepted = ODataQuery::parse(
            "$filter=onPremisesSyncEnabled%20ne%20true&$count=true",
            &headers,
        );
        assert!(accepted.is_ok());
    }

    #[test]
    fn top_is_bounded() {
        let headers = HeaderMap::new();
        assert!(ODataQuery::parse("$top=1000", &headers).is_err());
        assert!(ODataQuery::parse("$top=0", &headers).is_err());
        assert_eq!(
            ODataQuery::parse("$top=999", &headers)
                .ok()
                .and_then(|q| q.top),
            Some(999)
        );
    }
}
