//! `iotls policy test` and `iotls policy lint`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::{evaluate, lint, resource_arn, Action, CertVars, Policy, RequestContext, ThingContext};

/// `iotls policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate one request offline, like AWS IoT's TestAuthorization.
    Test(Box<TestArgs>),
    /// Run the Device Defender audit checks on one policy document.
    Lint {
        /// The policy document (JSON).
        file: PathBuf,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `iotls policy test`
#[derive(Debug, Args)]
pub struct TestArgs {
    /// A policy document attached to the certificate (repeat for several; evaluated together).
    #[arg(long = "policy", required = true, value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// The device certificate (PEM); every certificate variable comes from it.
    #[arg(long, value_name = "CERT.pem")]
    pub cert: PathBuf,
    /// MQTT client id of the connection.
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// The thing named by the client id; the certificate is attached to it unless --not-attached.
    #[arg(long, value_name = "N")]
    pub thing_name: Option<String>,
    /// The certificate is not attached to --thing-name.
    #[arg(long, requires = "thing_name")]
    pub not_attached: bool,
    /// Thing type of --thing-name.
    #[arg(long, value_name = "T", requires = "thing_name")]
    pub thing_type: Option<String>,
    /// Thing attribute K=V of --thing-name (repeatable).
    #[arg(long = "thing-attr", value_name = "K=V", requires = "thing_name")]
    pub thing_attrs: Vec<String>,
    /// Peer address (aws:SourceIp).
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<String>,
    /// iot:ConnectAttributes of the CONNECT: PersistentConnect and/or LastWill (repeatable).
    #[arg(long = "connect-attr", value_name = "PersistentConnect|LastWill")]
    pub connect_attrs: Vec<String>,
    /// Topic of the CONNECT's will message (iot:LastWillTopic).
    #[arg(long, value_name = "TOPIC")]
    pub last_will_topic: Option<String>,
    /// iot:Connect, iot:Publish, iot:RetainPublish, iot:Subscribe or iot:Receive.
    #[arg(long)]
    pub action: String,
    /// Bare client id / topic / topic filter, or a full ARN.
    #[arg(long, value_name = "VALUE")]
    pub resource: String,
    /// Region of the ARN built from a bare --resource.
    #[arg(long, default_value = super::DEFAULT_REGION)]
    pub region: String,
    /// Account of the ARN built from a bare --resource.
    #[arg(long, default_value = super::DEFAULT_ACCOUNT)]
    pub account: String,
    /// Print a JSON object (its `decision` is ALLOWED, EXPLICIT_DENY or IMPLICIT_DENY).
    #[arg(long)]
    pub json: bool,
}

/// What a command printed and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command, printing its output; returns the exit code (0 evaluated / clean, 1 lint
/// findings, 2 bad input).
pub fn run(cmd: PolicyCommand) -> i32 {
    let out = execute(cmd);
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    out.code
}

/// Runs a command and returns what it would print.
pub fn execute(cmd: PolicyCommand) -> Output {
    let r = match cmd {
        PolicyCommand::Test(a) => test(&a),
        PolicyCommand::Lint { file, json } => lint_file(&file, json),
    };
    match r {
        Ok(o) => o,
        Err(msg) => Output {
            code: 2,
            stdout: String::new(),
            stderr: format!("error: {msg}\n"),
        },
    }
}

fn read_policy(path: &Path) -> Result<Policy, String> {
    let text = crate::files::read_text(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "policy".into());
    Policy::parse(&name, &path.display().to_string(), &text).map_err(|e| e.to_string())
}

fn test(a: &TestArgs) -> Result<Output, String> {
    let policies = a
        .policies
        .iter()
        .map(|p| read_policy(p))
        .collect::<Result<Vec<_>, _>>()?;
    let pem = crate::files::read_bounded(&a.cert, crate::files::MAX_INPUT)
        .map_err(|e| format!("{}: {e}", a.cert.display()))?;
    let (cert, _der) =
        CertVars::from_pem(&pem).map_err(|e| format!("{}: {e}", a.cert.display()))?;
    let action = Action::parse(&a.action).ok_or_else(|| {
        format!(
            "unknown action `{}` (expected iot:Connect, iot:Publish, iot:RetainPublish, iot:Subscribe or iot:Receive)",
            a.action
        )
    })?;
    let source_ip = match &a.source_ip {
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map_err(|_| format!("--source-ip `{s}` is not an IP address"))?,
        ),
        None => None,
    };
    let mut attributes = BTreeMap::new();
    for kv in &a.thing_attrs {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--thing-attr `{kv}` is not K=V"))?;
        attributes.insert(k.to_string(), v.to_string());
    }
    for c in &a.connect_attrs {
        if c != "PersistentConnect" && c != "LastWill" {
            return Err(format!(
                "--connect-attr `{c}`: expected PersistentConnect or LastWill"
            ));
        }
    }
    if a.resource.starts_with("arn:") {
        let parts: Vec<&str> = a.resource.splitn(6, ':').collect();
        let ty = parts.get(5).and_then(|r| r.split_once('/')).map(|(t, _)| t);
        if parts.len() < 6 || ty != Some(action.resource_type()) {
            return Err(format!(
                "--resource `{}` is not an ARN of the form arn:aws:iot:<region>:<account>:{}/<name> (what {} is checked on)",
                a.resource,
                action.resource_type(),
                action
            ));
        }
    }
    let mut ctx = RequestContext::new(&a.client_id);
    ctx.region = a.region.clone();
    ctx.account = a.account.clone();
    ctx.cert = Some(cert);
    ctx.source_ip = source_ip;
    ctx.connect_attrs = a.connect_attrs.clone();
    ctx.last_will_topic = a.last_will_topic.clone();
    ctx.thing = a.thing_name.as_ref().map(|n| ThingContext {
        name: n.clone(),
        type_name: a.thing_type.clone(),
        attributes,
        is_attached: !a.not_attached,
    });
    let arn = resource_arn(&a.region, &a.account, action, &a.resource);
    let d = evaluate(&policies, action, &arn, &ctx);
    let stdout = if a.json {
        let mut v = d.detail();
        v["client_id"] = json!(a.client_id);
        format!(
            "{}\n",
            serde_json::to_string_pretty(&v).expect("JSON serializes")
        )
    } else {
        d.lines().join("\n") + "\n"
    };
    Ok(Output {
        code: 0,
        stdout,
        stderr: String::new(),
    })
}

fn lint_file(file: &Path, as_json: bool) -> Result<Output, String> {
    let p = read_policy(file)?;
    let findings = lint(&p);
    let stdout = if as_json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({ "policy": p.source, "findings": findings }))
                .expect("JSON")
        )
    } else if findings.is_empty() {
        format!("{}: no findings\n", p.source)
    } else {
        let mut s = String::new();
        for f in &findings {
            s.push_str(&format!(
                "{}: {}: {} / {} ({})\n  {}\n  fix: {}\n",
                p.source, f.statement, f.check, f.reason, f.severity, f.message, f.fix
            ));
        }
        s
    };
    Ok(Output {
        code: if findings.is_empty() { 0 } else { 1 },
        stdout,
        stderr: String::new(),
    })
}
