//! The maintenance pre-flight: would every LUN keep a usable path on every node if these
//! target ports, nodes or adapters went down? Evaluated on the cached status (its nodes'
//! current path detail and liveness) by `mpcluster_core::preflight::evaluate`; nothing is
//! changed, so a `Sys.Audit` token may ask.
//!
//! The body is read field by field ([`request_from`]), so a form hears about every bad
//! component at once, each under its own field: `down.<i>.target`, `down.<i>.node`,
//! `down.<i>.adapter`, `down.<i>` (a combination that means nothing), `down`, `min-paths`.

use axum::Json;
use axum::extract::State;
use mpcluster_core::NodeName;
use mpcluster_core::config::{ConfigError, ConfigErrors};
use mpcluster_core::preflight::{Down, MAX_DOWN, PreflightReport, PreflightRequest, evaluate};
use serde_json::{Map, Value};

use super::Data;
use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::extract::ApiJson;
use crate::routes::status::view;

/// Evaluate a maintenance pre-flight: for each LUN and node, whether a usable path would
/// remain with the given target ports (portal, WWPN, NQN), nodes or node adapters down.
/// `verdict` is `safe`, `unsafe` (some LUN would lose its last usable path on some node) or
/// `unknown` (a node that carries LUNs has no current path detail).
#[utoipa::path(post, path = "/api2/json/cluster/multipath/preflight", tag = "cluster", operation_id = "preflight",
    request_body = PreflightRequest,
    responses(
        (status = 200, description = "The verdict, the LUNs that would lose their last usable path or drop below `min-paths`, and what could not be checked", body = Data<PreflightReport>),
        (status = 400, description = "A component is not a target, a node or a node's adapter; `errors` names each bad field (`down.<i>.node`, `down.<i>`, `min-paths`, ...)", body = ErrorBody),
    ))]
pub async fn preflight(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<Data<PreflightReport>>, ApiError> {
    let request = request_from(&body)?;
    request
        .check()
        .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.to_string()))?;
    let v = view(&state)?;
    if let Some(e) = &v.store_error {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            format!("cluster store unavailable: {e}"),
        ));
    }
    Ok(super::data(evaluate(&v.assembly, &request)))
}

const COMPONENT: &str = r#"{"target": ...}, {"node": ...} or {"node": ..., "adapter": ...}"#;

/// Read a [`PreflightRequest`] from a body, with every bad field at once.
fn request_from(body: &Map<String, Value>) -> Result<PreflightRequest, ApiError> {
    let mut errors = Vec::new();
    let mut err = |field: String, message: String| errors.push(ConfigError::new(field, message));
    for key in body.keys() {
        if key != "down" && key != "min-paths" {
            err(
                key.clone(),
                "unknown field: a pre-flight takes `down` and `min-paths`".to_owned(),
            );
        }
    }
    let min_paths = match body.get("min-paths") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            match n.and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Some(n),
                None => {
                    err(
                        "min-paths".to_owned(),
                        "must be a whole number of paths (0 or more)".to_owned(),
                    );
                    None
                }
            }
        }
    };
    let mut down = Vec::new();
    match body.get("down") {
        None | Some(Value::Null) => err(
            "down".to_owned(),
            "required: the components to take down".to_owned(),
        ),
        Some(Value::Array(items)) => {
            if items.len() > MAX_DOWN {
                err(
                    "down".to_owned(),
                    format!("at most {MAX_DOWN} components can be taken down at once"),
                );
            }
            for (i, item) in items.iter().enumerate() {
                if let Some(d) = component(i, item, &mut err) {
                    down.push(d);
                }
            }
        }
        Some(_) => err(
            "down".to_owned(),
            format!("must be a list of components: {COMPONENT}"),
        ),
    }
    if errors.is_empty() {
        Ok(PreflightRequest { down, min_paths })
    } else {
        Err(ConfigErrors(errors).into())
    }
}

/// Component `i` of `down`, or `None` with its errors reported.
fn component(i: usize, item: &Value, err: &mut impl FnMut(String, String)) -> Option<Down> {
    let at = |f: &str| format!("down.{i}.{f}");
    let Value::Object(obj) = item else {
        err(
            format!("down.{i}"),
            format!("must be an object: {COMPONENT}"),
        );
        return None;
    };
    let mut ok = true;
    for key in obj.keys() {
        if !["target", "node", "adapter"].contains(&key.as_str()) {
            err(
                at(key),
                "unknown field: a component has `target`, `node` and `adapter`".to_owned(),
            );
            ok = false;
        }
    }
    let mut text = |f: &str| match obj.get(f) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::String(_)) => {
            err(at(f), "must not be empty".to_owned());
            ok = false;
            None
        }
        Some(_) => {
            err(at(f), "must be a string".to_owned());
            ok = false;
            None
        }
    };
    let target = text("target");
    let adapter = text("adapter");
    let node_text = text("node");
    let node = match node_text.map(NodeName::new) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => {
            err(at("node"), e.to_string());
            return None;
        }
    };
    if !ok {
        return None;
    }
    match (&target, &node, &adapter) {
        (Some(_), None, None) | (None, Some(_), _) => Some(Down {
            target,
            node,
            adapter,
        }),
        (Some(_), _, _) => {
            err(
                format!("down.{i}"),
                "give a target, or a node (optionally with an adapter), not both".to_owned(),
            );
            None
        }
        (None, None, Some(_)) => {
            err(
                at("node"),
                "required with `adapter`: the node whose adapter goes down".to_owned(),
            );
            None
        }
        (None, None, None) => {
            err(format!("down.{i}"), format!("empty: give {COMPONENT}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn errors(body: Value) -> Vec<(String, String)> {
        let Value::Object(body) = body else {
            panic!("not an object")
        };
        match request_from(&body) {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => {
                assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
                e.errors.into_iter().collect()
            }
        }
    }

    #[test]
    fn reads_good_requests() {
        let Value::Object(body) = json!({"down": [{"target": " 10.0.0.1:3260 "},
            {"node": "n1", "adapter": "host3"}, {"node": "n2"}], "min-paths": "3"})
        else {
            unreachable!()
        };
        let r = request_from(&body).unwrap();
        assert_eq!(r.min_paths, Some(3));
        let shown: Vec<String> = r.down.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["target=10.0.0.1:3260", "node=n1,adapter=host3", "node=n2"]
        );
    }

    #[test]
    fn names_every_bad_field() {
        let got = errors(json!({
            "down": [
                {"target": "10.0.0.1"},
                {"node": "bad name"},
                {"target": "x", "node": "n1"},
                {"adapter": "host3"},
                {},
                {"target": ""},
                "node=n1",
                {"portal": "x"},
            ],
            "min-paths": -1,
            "bogus": 1,
        }));
        let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "bogus",
                "down.1.node",
                "down.2",
                "down.3.node",
                "down.4",
                "down.5.target",
                "down.6",
                "down.7.portal",
                "min-paths",
            ]
        );
        assert!(got[1].1.contains("invalid node name"), "{got:?}");
        assert_eq!(errors(json!({}))[0].0, "down");
        assert_eq!(errors(json!({"down": {"target": "x"}}))[0].0, "down");
    }
}
