//! Policy documents in AWS IoT's JSON, parsed and checked.

use std::fmt;

use serde_json::Value as Json;

use super::pattern::Pattern;
use super::vars::{escape_literal, parse_var, Var};

/// The policy language version in which `${…}` variables are substituted.
pub const VERSION_WITH_VARIABLES: &str = "2012-10-17";

/// Every action name AWS IoT Core documents for device policies (the MQTT five are evaluated; the
/// others are accepted so that documents copied from AWS parse, and simply never match an MQTT
/// request).
pub(crate) const KNOWN_ACTIONS: [&str; 16] = [
    "iot:Connect",
    "iot:Publish",
    "iot:RetainPublish",
    "iot:Subscribe",
    "iot:Receive",
    "iot:GetRetainedMessage",
    "iot:ListRetainedMessages",
    "iot:DeleteThingShadow",
    "iot:GetThingShadow",
    "iot:ListNamedShadowsForThing",
    "iot:UpdateThingShadow",
    "iot:DescribeJobExecution",
    "iot:GetPendingJobExecutions",
    "iot:UpdateJobExecution",
    "iot:StartNextPendingJobExecution",
    "iot:AssumeRoleWithCertificate",
];

/// ARN resource types of AWS IoT Core data-plane policies.
const RESOURCE_TYPES: [&str; 5] = ["client", "topic", "topicfilter", "thing", "rolealias"];

/// A named policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Policy name (as attached to certificates).
    pub name: String,
    /// Where it was read from (file path or label), for messages.
    pub source: String,
    /// The parsed document.
    pub document: PolicyDocument,
    /// The JSON text it was parsed from.
    pub json: String,
}

/// `Version`, `Id`, `Statement`.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    pub version: Option<String>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Whether `${…}` is substituted (only with `Version` `2012-10-17`).
    pub fn substitutes_variables(&self) -> bool {
        self.version.as_deref() == Some(VERSION_WITH_VARIABLES)
    }
}

/// `Allow` or `Deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// `Action` or `NotAction` with its values as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionSpec {
    Action(Vec<String>),
    NotAction(Vec<String>),
}

/// `Resource` or `NotResource` with its values as written.
#[derive(Clone, Debug, PartialEq)]
pub enum ResourceSpec {
    Resource(Vec<Template>),
    NotResource(Vec<Template>),
}

impl ResourceSpec {
    pub fn templates(&self) -> &[Template] {
        match self {
            ResourceSpec::Resource(t) | ResourceSpec::NotResource(t) => t,
        }
    }
}

/// One statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// Position in the document, from 1.
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    pub action: ActionSpec,
    pub resource: ResourceSpec,
    pub conditions: Vec<Condition>,
}

impl Statement {
    /// `statement 2 (Sid "X")` — how messages name a statement.
    pub fn label(&self) -> String {
        statement_label(self.index, self.sid.as_deref())
    }

    /// Whether the statement's Action/NotAction covers this action name (e.g. `iot:Publish`).
    pub fn covers_action(&self, action: &str) -> bool {
        let m = |pats: &[String]| {
            pats.iter()
                .any(|p| Pattern::from_policy_text(p).matches(action, true))
        };
        match &self.action {
            ActionSpec::Action(p) => m(p),
            ActionSpec::NotAction(p) => !m(p),
        }
    }
}

pub(crate) fn statement_label(index: usize, sid: Option<&str>) -> String {
    match sid {
        Some(s) => format!("statement {index} (Sid {s:?})"),
        None => format!("statement {index}"),
    }
}

/// A string of a policy that may contain `${…}` variables.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// As written.
    pub raw: String,
    pub(crate) segs: Vec<Seg>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Seg {
    /// Policy text: `*` and `?` are wildcards where wildcards apply.
    Text(String),
    /// A variable, with its name as written.
    Var(Var, String),
    /// `${*}`, `${?}`, `${$}`.
    Lit(char),
}

impl Template {
    /// Splits `raw` into text and variables. Without substitution the whole string is text.
    fn parse(raw: &str, substitute: bool) -> Result<Template, String> {
        if !substitute {
            return Ok(Template {
                raw: raw.to_string(),
                segs: vec![Seg::Text(raw.to_string())],
            });
        }
        let mut segs = Vec::new();
        let mut rest = raw;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segs.push(Seg::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!("`{raw}`: `${{` without a closing `}}`"));
            };
            let name = &after[..end];
            if let Some(c) = escape_literal(name) {
                segs.push(Seg::Lit(c));
            } else {
                segs.push(Seg::Var(parse_var(name)?, name.to_string()));
            }
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            segs.push(Seg::Text(rest.to_string()));
        }
        Ok(Template {
            raw: raw.to_string(),
            segs,
        })
    }

    /// The variables it uses.
    pub(crate) fn vars(&self) -> impl Iterator<Item = (&Var, &str)> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Var(v, n) => Some((v, n.as_str())),
            _ => None,
        })
    }
}

/// One condition: operator, key, values (`"StringEquals": {"key": ["v1", "v2"]}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The operator as written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub operator: String,
    /// `ForAllValues` / `ForAnyValue`.
    pub qualifier: Option<Qualifier>,
    /// Base operator, without qualifier or `IfExists`.
    pub op: Op,
    pub if_exists: bool,
    /// The key as written.
    pub key: String,
    pub(crate) key_var: Var,
    /// Values as written (booleans and numbers as their JSON text).
    pub values: Vec<Template>,
}

/// Set qualifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qualifier {
    ForAllValues,
    ForAnyValue,
}

/// Base condition operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    Bool,
    Null,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
}

impl Op {
    const ALL: [(Op, &'static str); 14] = [
        (Op::StringEquals, "StringEquals"),
        (Op::StringNotEquals, "StringNotEquals"),
        (Op::StringEqualsIgnoreCase, "StringEqualsIgnoreCase"),
        (Op::StringNotEqualsIgnoreCase, "StringNotEqualsIgnoreCase"),
        (Op::StringLike, "StringLike"),
        (Op::StringNotLike, "StringNotLike"),
        (Op::Bool, "Bool"),
        (Op::Null, "Null"),
        (Op::IpAddress, "IpAddress"),
        (Op::NotIpAddress, "NotIpAddress"),
        (Op::ArnEquals, "ArnEquals"),
        (Op::ArnLike, "ArnLike"),
        (Op::ArnNotEquals, "ArnNotEquals"),
        (Op::ArnNotLike, "ArnNotLike"),
    ];

    /// Negated operators hold when no policy value matches.
    pub fn negated(self) -> bool {
        matches!(
            self,
            Op::StringNotEquals
                | Op::StringNotEqualsIgnoreCase
                | Op::StringNotLike
                | Op::NotIpAddress
                | Op::ArnNotEquals
                | Op::ArnNotLike
        )
    }
}

/// Why a policy was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// Not valid JSON.
    Json {
        source: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid JSON, not a valid policy; `statement` is `document` for top-level problems.
    Invalid {
        source: String,
        statement: String,
        message: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Json {
                source,
                line,
                column,
                message,
            } => {
                write!(f, "{source}:{line}:{column}: invalid JSON: {message}")
            }
            PolicyError::Invalid {
                source,
                statement,
                message,
            } => write!(f, "{source}: {statement}: {message}"),
        }
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// Parses and checks a policy document. `source_label` (usually the file path) is used in
    /// error messages.
    pub fn parse(name: &str, source_label: &str, json: &str) -> Result<Policy, PolicyError> {
        let value: Json = crate::json::from_str_strict(json).map_err(|e| {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; keep only the reason.
            let message = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            PolicyError::Json {
                source: source_label.to_string(),
                line: e.line(),
                column: e.column(),
                message,
            }
        })?;
        let document =
            parse_document(&value).map_err(|(statement, message)| PolicyError::Invalid {
                source: source_label.to_string(),
                statement,
                message,
            })?;
        Ok(Policy {
            name: name.to_string(),
            source: source_label.to_string(),
            document,
            json: json.to_string(),
        })
    }
}

type Fail = (String, String);

fn doc_fail(msg: impl Into<String>) -> Fail {
    ("document".to_string(), msg.into())
}

fn parse_document(v: &Json) -> Result<PolicyDocument, Fail> {
    let obj = v
        .as_object()
        .ok_or_else(|| doc_fail("a policy document is a JSON object"))?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            return Err(doc_fail(format!(
                "unknown element `{k}` (expected Version, Id, Statement)"
            )));
        }
    }
    let version = match obj.get("Version") {
        None => None,
        Some(Json::String(s)) if s == "2012-10-17" || s == "2008-10-17" => Some(s.clone()),
        Some(other) => {
            return Err(doc_fail(format!(
                "Version must be \"2012-10-17\" or \"2008-10-17\", not {other}"
            )));
        }
    };
    let id = match obj.get("Id") {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err(doc_fail("Id must be a string")),
    };
    let substitute = version.as_deref() == Some(VERSION_WITH_VARIABLES);
    let stmts: Vec<&Json> = match obj.get("Statement") {
        None => return Err(doc_fail("missing Statement")),
        Some(Json::Array(a)) => a.iter().collect(),
        Some(o @ Json::Object(_)) => vec![o],
        Some(_) => {
            return Err(doc_fail(
                "Statement must be an object or an array of objects",
            ))
        }
    };
    if stmts.is_empty() {
        return Err(doc_fail("Statement is empty"));
    }
    let mut statements = Vec::new();
    for (i, s) in stmts.into_iter().enumerate() {
        statements.push(parse_statement(i + 1, s, substitute)?);
    }
    Ok(PolicyDocument {
        version,
        id,
        statements,
    })
}

fn strings(v: &Json, what: &str) -> Result<Vec<String>, String> {
    let one = |x: &Json| match x {
        Json::String(s) => Ok(s.clone()),
        _ => Err(format!("{what} values must be strings, not {x}")),
    };
    match v {
        Json::Array(a) if a.is_empty() => Err(format!("{what} is an empty list")),
        Json::Array(a) => a.iter().map(one).collect(),
        x => Ok(vec![one(x)?]),
    }
}

fn parse_statement(index: usize, v: &Json, substitute: bool) -> Result<Statement, Fail> {
    let sid_hint = v.get("Sid").and_then(|s| s.as_str());
    let label = statement_label(index, sid_hint);
    let fail = |m: String| (label.clone(), m);
    let obj = v
        .as_object()
        .ok_or_else(|| fail("a statement is a JSON object".into()))?;
    for k in obj.keys() {
        match k.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition" => {}
            "Principal" | "NotPrincipal" => {
                return Err(fail(format!(
                    "`{k}` is not used in AWS IoT policies: the principal is the certificate the policy is attached to"
                )))
            }
            _ => {
                return Err(fail(format!(
                    "unknown element `{k}` (expected Sid, Effect, Action/NotAction, Resource/NotResource, Condition)"
                )))
            }
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err(fail("Sid must be a string".into())),
    };
    let effect = match obj.get("Effect") {
        Some(Json::String(s)) if s == "Allow" => Effect::Allow,
        Some(Json::String(s)) if s == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(fail(format!(
                "Effect must be \"Allow\" or \"Deny\", not {other}"
            )))
        }
        None => return Err(fail("missing Effect".into())),
    };
    let action = match (obj.get("Action"), obj.get("NotAction")) {
        (Some(a), None) => ActionSpec::Action(strings(a, "Action").map_err(fail)?),
        (None, Some(a)) => ActionSpec::NotAction(strings(a, "NotAction").map_err(fail)?),
        (Some(_), Some(_)) => return Err(fail("has both Action and NotAction".into())),
        (None, None) => return Err(fail("missing Action (or NotAction)".into())),
    };
    match &action {
        ActionSpec::Action(a) | ActionSpec::NotAction(a) => {
            for name in a {
                check_action(name).map_err(fail)?;
            }
        }
    }
    let templates = |v: &Json, what: &str| -> Result<Vec<Template>, String> {
        let mut out = Vec::new();
        for s in strings(v, what)? {
            check_resource(&s)?;
            out.push(Template::parse(&s, substitute)?);
        }
        Ok(out)
    };
    let resource = match (obj.get("Resource"), obj.get("NotResource")) {
        (Some(r), None) => ResourceSpec::Resource(templates(r, "Resource").map_err(fail)?),
        (None, Some(r)) => ResourceSpec::NotResource(templates(r, "NotResource").map_err(fail)?),
        (Some(_), Some(_)) => return Err(fail("has both Resource and NotResource".into())),
        (None, None) => return Err(fail("missing Resource (or NotResource)".into())),
    };
    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(c) => parse_conditions(c, substitute).map_err(fail)?,
    };
    Ok(Statement {
        index,
        sid,
        effect,
        action,
        resource,
        conditions,
    })
}

fn check_action(name: &str) -> Result<(), String> {
    if name == "*" {
        return Ok(());
    }
    let pat = Pattern::from_policy_text(name);
    if KNOWN_ACTIONS.iter().any(|a| pat.matches(a, true))
        && name.to_ascii_lowercase().starts_with("iot:")
    {
        return Ok(());
    }
    Err(format!(
        "unknown action `{name}`: AWS IoT policy actions are iot:Connect, iot:Publish, iot:RetainPublish, iot:Subscribe, \
         iot:Receive (and the shadow, job and retained-message actions), iot:* or *"
    ))
}

/// Checks the shape of a resource ARN: `arn:<partition>:iot:<region>:<account>:<type>/<name>`.
fn check_resource(s: &str) -> Result<(), String> {
    if s == "*" {
        return Ok(());
    }
    let bad = |why: &str| {
        Err(format!(
            "malformed resource ARN `{s}`: {why} (expected arn:aws:iot:<region>:<account>:<client|topic|topicfilter|thing>/<name>, or *)"
        ))
    };
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts[0] != "arn" {
        return bad("it does not start with `arn:`");
    }
    if parts.len() < 6 {
        return bad("it has fewer than six `:`-separated parts");
    }
    let wild = |p: &str| p.contains('*') || p.contains('?');
    if !(matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov") || wild(parts[1])) {
        return bad("unknown partition");
    }
    if !(parts[2] == "iot" || wild(parts[2])) {
        return bad("the service is not `iot`");
    }
    let res = parts[5];
    let ty = res.split('/').next().unwrap_or("");
    if !(wild(ty) || RESOURCE_TYPES.contains(&ty) && res.contains('/')) {
        return bad(
            "the resource must be <type>/<name> with type client, topic, topicfilter or thing",
        );
    }
    Ok(())
}

fn parse_conditions(c: &Json, substitute: bool) -> Result<Vec<Condition>, String> {
    let obj = c
        .as_object()
        .ok_or("Condition must be an object of operators")?;
    let mut out = Vec::new();
    for (operator, block) in obj {
        let (qualifier, rest) = if let Some(r) = operator.strip_prefix("ForAllValues:") {
            (Some(Qualifier::ForAllValues), r)
        } else if let Some(r) = operator.strip_prefix("ForAnyValue:") {
            (Some(Qualifier::ForAnyValue), r)
        } else {
            (None, operator.as_str())
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        let Some((op, _)) = Op::ALL.iter().find(|(_, n)| *n == base) else {
            return Err(format!(
                "unknown condition operator `{operator}` (supported: {}; with ForAllValues:/ForAnyValue: and …IfExists)",
                Op::ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
            ));
        };
        if *op == Op::Null && (if_exists || qualifier.is_some()) {
            return Err(format!(
                "`{operator}`: Null takes neither IfExists nor a set qualifier"
            ));
        }
        let block = block
            .as_object()
            .ok_or_else(|| format!("`{operator}` must map condition keys to values"))?;
        if block.is_empty() {
            return Err(format!("`{operator}` has no condition key"));
        }
        for (key, vals) in block {
            let key_var = parse_var(key).map_err(|e| format!("condition `{operator}`: {e}"))?;
            let raw: Vec<String> = match vals {
                Json::Array(a) => a.iter().map(json_scalar).collect::<Result<_, _>>(),
                x => json_scalar(x).map(|s| vec![s]),
            }
            .map_err(|e| format!("condition `{operator}` key `{key}`: {e}"))?;
            if matches!(op, Op::Bool | Op::Null) {
                if let Some(bad) = raw
                    .iter()
                    .find(|v| !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false"))
                {
                    return Err(format!(
                        "condition `{operator}` key `{key}`: {bad:?} is not true or false"
                    ));
                }
            }
            if matches!(op, Op::IpAddress | Op::NotIpAddress) {
                for v in &raw {
                    parse_cidr(v)
                        .map_err(|e| format!("condition `{operator}` key `{key}`: {e}"))?;
                }
            }
            let values = raw
                .iter()
                .map(|v| Template::parse(v, substitute))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("condition `{operator}` key `{key}`: {e}"))?;
            out.push(Condition {
                operator: operator.clone(),
                qualifier,
                op: *op,
                if_exists,
                key: key.clone(),
                key_var,
                values,
            });
        }
    }
    Ok(out)
}

fn json_scalar(v: &Json) -> Result<String, String> {
    match v {
        Json::String(s) => Ok(s.clone()),
        Json::Bool(b) => Ok(b.to_string()),
        Json::Number(n) => Ok(n.to_string()),
        other => Err(format!("condition values are strings, not {other}")),
    }
}

/// `203.0.113.0/24`, `2001:db8::/32` or a single address.
pub(crate) fn parse_cidr(s: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: std::net::IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{s:?}: bad prefix length"))?,
        None => max,
    };
    Ok((ip, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_file_line_and_column() {
        let e = Policy::parse(
            "p",
            "p.json",
            "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [ }\n",
        )
        .unwrap_err();
        match &e {
            PolicyError::Json { line, column, .. } => assert_eq!((*line, *column), (3, 18)),
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string().starts_with("p.json:3:18: invalid JSON"),
            "{e}"
        );
    }

    #[test]
    fn statement_as_object_and_strings_as_scalars() {
        let p = Policy::parse(
            "p",
            "p.json",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}}"#,
        )
        .unwrap();
        assert_eq!(p.document.statements.len(), 1);
    }

    #[test]
    fn bad_input_is_named_with_its_statement() {
        let cases = [
            (
                r#"{"Sid":"S","Effect":"Allow","Action":"iot:Publsh","Resource":"*"}"#,
                "unknown action `iot:Publsh`",
            ),
            (
                r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:topic/x"}"#,
                "malformed resource ARN",
            ),
            (
                r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:1:topic/${iot:Bogus}"}"#,
                "unknown variable `iot:Bogus`",
            ),
            (
                r#"{"Effect":"Allow","Action":"iot:Publish","Resources":"*"}"#,
                "unknown element `Resources`",
            ),
            (
                r#"{"Effect":"allow","Action":"iot:Publish","Resource":"*"}"#,
                "Effect must be",
            ),
        ];
        for (stmt, want) in cases {
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}},{stmt}]}}"#
            );
            let e = Policy::parse("p", "f.json", &doc).unwrap_err().to_string();
            assert!(e.contains("statement 2") && e.contains(want), "{e}");
            assert!(e.starts_with("f.json: "), "{e}");
        }
    }

    #[test]
    fn variables_are_text_without_version_2012() {
        let p = Policy::parse(
            "p",
            "p",
            r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:1:topic/${iot:Nonsense}"}}"#,
        )
        .unwrap();
        assert!(matches!(
            &p.document.statements[0].resource.templates()[0].segs[..],
            [Seg::Text(_)]
        ));
    }
}
