//! Walkthroughs as data: lessons in the TOML format `iotls-walkthrough/1`
//! (docs/walkthrough-format.md). A lesson says what each side presents, trusts and does, what the
//! run should come to (`[expect]`) and what to point out on the way (`[[emphasis]]`, `[[quiz]]`);
//! it never holds a result. [`load`] reads a built-in lesson or a file, follows `extends`, applies
//! `--set` overrides and `[vars]`, and checks every key, naming the file and line of a wrong one.
//! [`Lesson::scenario`] turns it into the engine's [`Scenario`](crate::engine::Scenario).

pub mod breakit;
mod build;
pub mod expect;
pub mod format;

pub use build::{registry_for, LessonPki};
pub use expect::{Mismatch, Selector};
pub use format::{Walkthrough, FORMAT};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A built-in lesson: its id and the text of `walkthroughs/<id>.toml`.
pub struct Builtin {
    pub id: &'static str,
    pub text: &'static str,
}

macro_rules! builtin {
    ($($id:literal),* $(,)?) => {
        &[$(Builtin { id: $id, text: include_str!(concat!("../../walkthroughs/", $id, ".toml")) }),*]
    };
}

/// The built-in lessons, in the order of docs/curriculum.md.
pub const BUILTIN: &[Builtin] = builtin!(
    "pizza-button",
    "chain-of-trust",
    "untrusted-device",
    "wrong-host",
    "expired-cert",
    "wrong-eku",
    "missing-intermediate",
    "inactive-cert",
    "no-policy-attached",
    "policy-variables",
    "neighbour",
    "hardcoded-serial",
    "mqtt5-vs-311",
    "public-key-basics",
    "csr-to-certificate",
    "identity-options",
    "files-on-the-device",
    "forward-secrecy",
    "tls13-contrast",
);

/// Files the built-in lessons name, embedded so that a lesson runs from any directory.
const EMBEDDED: &[(&str, &[u8])] = &[
    (
        "policies/pizza-button.json",
        include_bytes!("../../policies/pizza-button.json"),
    ),
    (
        "policies/pizza-button-hardcoded.json",
        include_bytes!("../../policies/pizza-button-hardcoded.json"),
    ),
    (
        "policies/pizza-shop.json",
        include_bytes!("../../policies/pizza-shop.json"),
    ),
    (
        "fixtures/rsa2048.key",
        include_bytes!("../../fixtures/rsa2048.key"),
    ),
];

/// Why a lesson could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkError {
    /// No built-in lesson of that name (and not a `.toml` path).
    Unknown { name: String, known: String },
    /// A lesson file that cannot be used: which file, which line and key, and what is wrong.
    Invalid {
        file: String,
        line: Option<usize>,
        key: Option<String>,
        message: String,
    },
    /// A `--set` that is not `KEY=VALUE`.
    Set(String),
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkError::Unknown { name, known } => write!(
                f,
                "unknown lesson {name:?}; the lessons are: {known} (iotls tour --list)"
            ),
            WalkError::Invalid {
                file,
                line,
                key,
                message,
            } => {
                f.write_str(file)?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                }
                if let Some(k) = key {
                    write!(f, ": `{k}`")?;
                }
                write!(f, ": {message}")
            }
            WalkError::Set(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for WalkError {}

/// Where a key of the merged lesson was set: its file (or `--set`), line, and how to resolve the
/// paths it names.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub file: String,
    pub line: Option<usize>,
    /// The lesson file's directory; `None` for a built-in lesson (embedded files) and `--set`.
    pub dir: Option<PathBuf>,
}

/// The longest `[words]` value: each is quoted inside one sentence of the narration.
pub const WORDS_MAX: usize = 40;

/// A lesson, loaded and checked, ready to run.
#[derive(Clone, Debug)]
pub struct Lesson {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub concepts: Vec<String>,
    /// What the lesson is: the merged walkthrough after `--set` and `[vars]`.
    pub spec: Walkthrough,
    /// The lesson's own file (or `walkthroughs/<id>.toml (built in)`).
    pub file: String,
    /// The MQTT version the lesson is about, when it pins one.
    pub mqtt: Option<crate::engine::mqtt_io::Version>,
    /// Whether `--set` changed it (a contradicted `[expect]` is then what the learner asked for).
    pub overridden: bool,
    /// A lesson made of operations rather than one mTLS session (`operations = "<id>"`).
    pub operations: Option<crate::engine::operations::Operations>,
    pub emphasis: Vec<(Selector, String)>,
    pub quiz: Vec<expect::QuizItem>,
    origins: BTreeMap<String, Origin>,
}

impl Lesson {
    pub(crate) fn origin(&self, path: &str) -> Origin {
        origin_of(&self.origins, path, &self.file)
    }

    fn invalid(&self, path: &str, message: impl Into<String>) -> WalkError {
        invalid_at(&self.origins, &self.file, path, message)
    }
}

fn origin_of(origins: &BTreeMap<String, Origin>, path: &str, file: &str) -> Origin {
    let mut p = path;
    loop {
        if let Some(o) = origins.get(p) {
            return o.clone();
        }
        match p.rfind('.') {
            Some(i) => p = &p[..i],
            None => {
                return Origin {
                    file: file.to_string(),
                    line: None,
                    dir: None,
                }
            }
        }
    }
}

fn invalid_at(
    origins: &BTreeMap<String, Origin>,
    file: &str,
    path: &str,
    message: impl Into<String>,
) -> WalkError {
    let o = origin_of(origins, path, file);
    WalkError::Invalid {
        file: o.file,
        line: o.line,
        key: Some(path.to_string()),
        message: message.into(),
    }
}

/// The built-in lessons' ids, in curriculum order.
pub fn ids() -> Vec<&'static str> {
    BUILTIN.iter().map(|b| b.id).collect()
}

fn unknown(name: &str) -> WalkError {
    WalkError::Unknown {
        name: name.to_string(),
        known: ids().join(", "),
    }
}

/// Whether a lesson argument names a file rather than a built-in lesson.
pub fn is_path(arg: &str) -> bool {
    arg.ends_with(".toml") || arg.contains('/') || arg.contains(std::path::MAIN_SEPARATOR)
}

/// One file of an `extends` chain.
struct Layer {
    table: toml::Table,
    origins: BTreeMap<String, Origin>,
    file: String,
    extends: Option<(String, Option<PathBuf>)>,
}

fn read_layer(arg: &str, base: Option<&Path>) -> Result<Layer, WalkError> {
    let (file, text, dir) = if is_path(arg) {
        let path = match base {
            Some(b) if Path::new(arg).is_relative() => b.join(arg),
            _ => PathBuf::from(arg),
        };
        let label = path.display().to_string();
        let text = crate::files::read_text(&path).map_err(|e| WalkError::Invalid {
            file: label.clone(),
            line: None,
            key: None,
            message: format!("{e}"),
        })?;
        let dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."));
        (label, text, Some(dir))
    } else {
        let b = BUILTIN
            .iter()
            .find(|b| b.id == arg)
            .ok_or_else(|| unknown(arg))?;
        (
            format!("walkthroughs/{}.toml (built in)", b.id),
            b.text.to_string(),
            None,
        )
    };
    parse_layer(&file, &text, dir)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parse one file: its keys' types (line numbers from toml), its tree, and the line of every key.
fn parse_layer(file: &str, text: &str, dir: Option<PathBuf>) -> Result<Layer, WalkError> {
    let toml_error = |e: toml::de::Error| {
        let line = e.span().map(|s| line_of(text, s.start));
        WalkError::Invalid {
            file: file.to_string(),
            line,
            key: None,
            message: e.message().trim().to_string(),
        }
    };
    let w: Walkthrough = toml::from_str(text).map_err(toml_error)?;
    let table: toml::Table = toml::from_str(text).map_err(toml_error)?;
    let mut origins = BTreeMap::new();
    let doc = toml::de::DeTable::parse(text).map_err(toml_error)?;
    let mut walk = Walker {
        text,
        file,
        dir: &dir,
        out: &mut origins,
    };
    walk.table("", doc.get_ref());
    match w.format.as_deref() {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(invalid_at(
                &origins,
                file,
                "format",
                format!("this iotls reads {FORMAT:?}, not {other:?}"),
            ))
        }
        None => {
            return Err(WalkError::Invalid {
                file: file.to_string(),
                line: Some(1),
                key: Some("format".into()),
                message: format!("missing; a walkthrough file starts with format = {FORMAT:?}"),
            })
        }
    }
    if w.id.is_none() {
        return Err(WalkError::Invalid {
            file: file.to_string(),
            line: None,
            key: Some("id".into()),
            message: "missing: every walkthrough file names its lesson (id = \"…\")".into(),
        });
    }
    Ok(Layer {
        table,
        origins,
        file: file.to_string(),
        extends: w.extends.map(|e| (e, dir.clone())),
    })
}

struct Walker<'a> {
    text: &'a str,
    file: &'a str,
    dir: &'a Option<PathBuf>,
    out: &'a mut BTreeMap<String, Origin>,
}

impl Walker<'_> {
    fn put(&mut self, path: String, offset: usize) {
        self.out.insert(
            path,
            Origin {
                file: self.file.to_string(),
                line: Some(line_of(self.text, offset)),
                dir: self.dir.clone(),
            },
        );
    }

    fn table(&mut self, prefix: &str, t: &toml::de::DeTable<'_>) {
        for (k, v) in t.iter() {
            let path = join(prefix, k.get_ref());
            self.put(path.clone(), k.span().start);
            self.value(&path, v.get_ref());
        }
    }

    fn value(&mut self, path: &str, v: &toml::de::DeValue<'_>) {
        match v {
            toml::de::DeValue::Table(t) => self.table(path, t),
            toml::de::DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    let p = format!("{path}.{i}");
                    self.put(p.clone(), item.span().start);
                    self.value(&p, item.get_ref());
                }
            }
            _ => {}
        }
    }
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}.{k}")
    }
}

/// Lay `over` onto `base`: tables merge key by key, everything else (arrays included) replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Drop the origins under `path` (an array the upper file replaced).
fn forget_under(origins: &mut BTreeMap<String, Origin>, path: &str) {
    let prefix = format!("{path}.");
    origins.retain(|k, _| !k.starts_with(&prefix));
}

/// Load a lesson: a built-in id or a `.toml` path, with `--set KEY=VALUE` overrides.
pub fn load(arg: &str, sets: &[String]) -> Result<Lesson, WalkError> {
    finish(read_layer(arg, None)?, sets)
}

/// Load a lesson from its text (`label` names it in errors), as if it were a file with no
/// directory: the files it names and the lessons it extends are the built-in ones.
pub fn load_str(label: &str, text: &str, sets: &[String]) -> Result<Lesson, WalkError> {
    finish(parse_layer(label, text, None)?, sets)
}

/// Follow `first`'s `extends` chain, merge it, apply `sets` and `[vars]`, and check the result.
fn finish(first: Layer, sets: &[String]) -> Result<Lesson, WalkError> {
    // The chain, from the lesson down to the first file without `extends`.
    let mut chain: Vec<Layer> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut next_layer = Some(first);
    while let Some(layer) = next_layer.take() {
        let key = layer.file.clone();
        if seen.contains(&key) {
            let child = chain.last().expect("a child");
            return Err(invalid_at(
                &child.origins,
                &child.file,
                "extends",
                format!(
                    "`extends` goes round in a circle: {} → {}",
                    seen.join(" → "),
                    key
                ),
            ));
        }
        seen.push(key);
        let next = layer.extends.clone();
        chain.push(layer);
        if let Some((name, base)) = next {
            next_layer = Some(match read_layer(&name, base.as_deref()) {
                Ok(l) => l,
                Err(WalkError::Unknown { name: n, known }) => {
                    let child = chain.last().expect("a child");
                    return Err(invalid_at(
                        &child.origins,
                        &child.file,
                        "extends",
                        format!("no lesson {n:?} to extend; the built-in lessons are: {known}"),
                    ));
                }
                // A file that cannot be read: say which lesson named it, and where.
                Err(e @ WalkError::Invalid { line: None, .. }) => {
                    let child = chain.last().expect("a child");
                    return Err(invalid_at(
                        &child.origins,
                        &child.file,
                        "extends",
                        format!("cannot extend {name:?}: {e}"),
                    ));
                }
                Err(e) => return Err(e),
            });
        }
    }
    let file = chain[0].file.clone();
    let mut table = toml::Table::new();
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
    for layer in chain.into_iter().rev() {
        for (path, _) in layer.origins.iter() {
            if is_array_path(&layer.table, path) {
                forget_under(&mut origins, path);
            }
        }
        let mut upper = layer.table;
        // `[expect]` is a lesson's own claim: one that sets it replaces the inherited one whole.
        if let Some(e) = upper.remove("expect") {
            forget_under(&mut origins, "expect");
            table.insert("expect".into(), e);
        }
        origins.extend(layer.origins);
        merge(&mut table, upper);
    }
    // A lesson's own keys: `extends` is followed, never inherited as such.
    table.remove("extends");

    let overridden = !sets.is_empty();
    for s in sets {
        apply_set(&mut table, &mut origins, s)?;
    }
    let vars = match table.get("vars") {
        None => BTreeMap::new(),
        Some(toml::Value::Table(t)) => t
            .iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(invalid_at(
                    &origins,
                    &file,
                    &format!("vars.{k}"),
                    "a variable is a string (write it in quotes)",
                )),
            })
            .collect::<Result<BTreeMap<_, _>, WalkError>>()?,
        Some(_) => return Err(invalid_at(&origins, &file, "vars", "must be a table")),
    };
    for (k, v) in table.iter_mut() {
        if k != "vars" {
            substitute(v, k, &vars, &origins, &file)?;
        }
    }
    let spec: Walkthrough = toml::Value::Table(table).try_into().map_err(|e| {
        let e: toml::de::Error = e;
        WalkError::Invalid {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("after --set: {}", e.message().trim()),
        }
    })?;
    check(spec, file, origins, overridden)
}

fn is_array_path(t: &toml::Table, path: &str) -> bool {
    let mut v: Option<&toml::Value> = None;
    for (i, part) in path.split('.').enumerate() {
        v = if i == 0 {
            t.get(part)
        } else {
            match v {
                Some(toml::Value::Table(t)) => t.get(part),
                Some(toml::Value::Array(a)) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
        };
    }
    matches!(v, Some(toml::Value::Array(_)))
}

/// `KEY=VALUE`: the value as a TOML value (`[]`, `true`, `3`, `"x"`), otherwise as a string.
fn apply_set(
    table: &mut toml::Table,
    origins: &mut BTreeMap<String, Origin>,
    set: &str,
) -> Result<(), WalkError> {
    let Some((key, raw)) = set.split_once('=') else {
        return Err(WalkError::Set(format!(
            "--set {set:?}: expected KEY=VALUE, e.g. --set device.server_name=evil.example"
        )));
    };
    let key = key.trim();
    if key == "extends" {
        return Err(WalkError::Set(
            "--set extends: a lesson's parent is part of the file; run the other lesson instead"
                .into(),
        ));
    }
    if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
        return Err(WalkError::Set(format!(
            "--set {set:?}: the key is a dotted path such as device.server_name"
        )));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    set_path(table, &parts, value).map_err(|at| {
        WalkError::Set(format!(
            "--set {key}: `{at}` is not a table (a list takes an index from 0)"
        ))
    })?;
    origins.retain(|k, _| k != key && !k.starts_with(&format!("{key}.")));
    origins.insert(
        key.to_string(),
        Origin {
            file: format!("--set {key}"),
            line: None,
            dir: std::env::current_dir().ok(),
        },
    );
    Ok(())
}

/// Set `parts` in `table`, creating tables on the way; `Err` names the part that is not a table.
fn set_path(table: &mut toml::Table, parts: &[&str], value: toml::Value) -> Result<(), String> {
    let (first, rest) = parts.split_first().expect("a key has a part");
    if rest.is_empty() {
        table.insert(first.to_string(), value);
        return Ok(());
    }
    let entry = table
        .entry(first.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    set_in(entry, rest, value).map_err(|at| {
        if at.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{at}")
        }
    })
}

fn set_in(v: &mut toml::Value, parts: &[&str], value: toml::Value) -> Result<(), String> {
    match v {
        toml::Value::Table(t) => set_path(t, parts, value),
        toml::Value::Array(a) => {
            let (first, rest) = parts.split_first().expect("a key has a part");
            let n = first
                .parse::<usize>()
                .ok()
                .filter(|n| *n < a.len())
                .ok_or_else(String::new)?;
            if rest.is_empty() {
                a[n] = value;
                Ok(())
            } else {
                set_in(&mut a[n], rest, value).map_err(|at| {
                    if at.is_empty() {
                        first.to_string()
                    } else {
                        format!("{first}.{at}")
                    }
                })
            }
        }
        _ => Err(String::new()),
    }
}

/// Replace `{name}` by the lesson variable `name` in every string under `v`. Names with a dot are
/// run-time placeholders (`{cert.device.serial_number}`) and stay; other braces (JSON) stay too.
fn substitute(
    v: &mut toml::Value,
    path: &str,
    vars: &BTreeMap<String, String>,
    origins: &BTreeMap<String, Origin>,
    file: &str,
) -> Result<(), WalkError> {
    match v {
        toml::Value::String(s) => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(i) = rest.find('{') {
                out.push_str(&rest[..i]);
                let after = &rest[i + 1..];
                let name_len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(after.len());
                let name = &after[..name_len];
                let closes = after[name_len..].starts_with('}');
                let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
                if closes && first_ok {
                    match vars.get(name) {
                        Some(val) => out.push_str(val),
                        None => {
                            return Err(invalid_at(
                                origins,
                                file,
                                path,
                                format!(
                                    "{{{name}}} is not a variable of this lesson (define it in \
                                     [vars], or write a run-time placeholder such as \
                                     {{cert.device.serial_number}})"
                                ),
                            ))
                        }
                    }
                    rest = &after[name_len + 1..];
                } else {
                    out.push('{');
                    rest = after;
                }
            }
            out.push_str(rest);
            *s = out;
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                substitute(v, &join(path, k), vars, origins, file)?;
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                substitute(v, &format!("{path}.{i}"), vars, origins, file)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A `mqtt` key's version: `"3.1.1"` or `"5"`.
pub(crate) fn mqtt_version(v: &toml::Value) -> Result<crate::engine::mqtt_io::Version, String> {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        _ => "(not a version)".to_string(),
    };
    match text.as_str() {
        "3.1.1" => Ok(crate::engine::mqtt_io::Version::V4),
        "5" => Ok(crate::engine::mqtt_io::Version::V5),
        other => Err(format!("{other:?}: the MQTT version is \"3.1.1\" or \"5\"")),
    }
}

/// `[[devices]]`: each witness has an identity, a unique name, a valid version, at least one
/// subscription, and no action but `subscribe` and one `listen_ms`. `Err`: the key and why.
fn check_witnesses(spec: &Walkthrough) -> Result<(), (String, String)> {
    let mut names = Vec::new();
    for (i, w) in spec.devices.iter().flatten().enumerate() {
        let at = format!("devices.{i}");
        if w.identity.is_none() {
            return Err((
                format!("{at}.identity"),
                "missing: the [pki] certificate this device presents".into(),
            ));
        }
        if let Some(v) = &w.mqtt {
            mqtt_version(v).map_err(|m| (format!("{at}.mqtt"), m))?;
        }
        let name = witness_name(w);
        if name.is_empty() || names.contains(&name) {
            return Err((
                format!("{at}.name"),
                format!("{name:?}: each of [[devices]] needs a name of its own (or client id)"),
            ));
        }
        names.push(name);
        let mut subscribes = 0;
        let mut listens = 0;
        for (j, a) in w.actions.iter().flatten().enumerate() {
            let path = format!("{at}.actions.{j}");
            let only_subscribe = a.publish.is_none()
                && a.payload.is_none()
                && a.qos.is_none()
                && a.retain.is_none()
                && a.ping.is_none();
            match (&a.subscribe, a.listen_ms) {
                (Some(_), None) if only_subscribe => subscribes += 1,
                (None, Some(ms)) if only_subscribe => {
                    listens += 1;
                    if ms > crate::engine::witness::MAX_GRACE_MS || listens > 1 {
                        return Err((
                            format!("{path}.listen_ms"),
                            format!(
                                "one listen_ms of at most {}: how long it keeps listening \
                                 once the device is done",
                                crate::engine::witness::MAX_GRACE_MS
                            ),
                        ));
                    }
                }
                _ => {
                    return Err((
                        path,
                        "a device of [[devices]] is a witness: its actions are \
                         subscribe = \"filter\" and at most one listen_ms = N (it publishes \
                         nothing, so that the device's trace stays the device's)"
                            .into(),
                    ))
                }
            }
        }
        if subscribes == 0 {
            return Err((
                format!("{at}.actions"),
                "a witness subscribes to at least one filter ({ subscribe = \"…\" })".into(),
            ));
        }
    }
    for (i, w) in spec
        .expect
        .iter()
        .flat_map(|e| e.witness.iter().flatten())
        .enumerate()
    {
        if !names.contains(&w.device) {
            return Err((
                format!("expect.witness.{i}.device"),
                format!(
                    "{:?} is not a device of [[devices]] (they are: {})",
                    w.device,
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// A witness's name: `name`, else its client id, else its identity's name.
pub(crate) fn witness_name(w: &format::WitnessSpec) -> String {
    w.name
        .clone()
        .or_else(|| w.client_id.clone())
        .or_else(|| w.identity.clone())
        .unwrap_or_default()
}

/// What a whole lesson needs, checked once `extends`, `--set` and `[vars]` are applied.
fn check(
    spec: Walkthrough,
    file: String,
    origins: BTreeMap<String, Origin>,
    overridden: bool,
) -> Result<Lesson, WalkError> {
    let bad = |path: &str, m: String| invalid_at(&origins, &file, path, m);
    let id = spec.id.clone().unwrap_or_default();
    let Some(title) = spec.title.clone() else {
        return Err(bad("title", "missing: a lesson has a title".into()));
    };
    let operations = match &spec.operations {
        None => None,
        Some(op) => Some(
            crate::engine::operations::Operations::from_id(op).ok_or_else(|| {
                let ids: Vec<&str> = crate::engine::operations::Operations::ALL
                    .iter()
                    .map(|o| o.id())
                    .collect();
                bad(
                    "operations",
                    format!(
                        "{op:?} is not a lesson of operations; they are: {}",
                        ids.join(", ")
                    ),
                )
            })?,
        ),
    };
    let mqtt = match spec.device.as_ref().and_then(|d| d.mqtt.as_ref()) {
        None => None,
        Some(v) => Some(mqtt_version(v).map_err(|m| bad("device.mqtt", m))?),
    };
    check_witnesses(&spec).map_err(|(k, m)| bad(&k, m))?;
    if let Some(e) = &spec.expect {
        expect::validate(e).map_err(|(k, m)| bad(&k, m))?;
    }
    if let Some(w) = &spec.words {
        for (key, text) in [("publish", &w.publish), ("payload", &w.payload)] {
            let Some(text) = text else { continue };
            if text.trim().is_empty() || text.contains('\n') || text.chars().count() > WORDS_MAX {
                return Err(bad(
                    &format!("words.{key}"),
                    format!("{text:?}: a few words on one line, at most {WORDS_MAX} characters"),
                ));
            }
        }
    }
    let check_say = |path: &str, text: &str| -> Result<(), WalkError> {
        for p in expect::placeholders(text) {
            if !expect::PLACEHOLDERS.contains(&p) {
                return Err(bad(
                    path,
                    format!(
                        "{{{p}}} is not a placeholder; the placeholders: {}",
                        expect::PLACEHOLDERS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    };
    let mut emphasis = Vec::new();
    for (i, e) in spec.emphasis.iter().flatten().enumerate() {
        let s = Selector::parse(&e.at).map_err(|m| bad(&format!("emphasis.{i}.at"), m))?;
        check_say(&format!("emphasis.{i}.say"), &e.say)?;
        emphasis.push((s, e.say.clone()));
    }
    let mut quiz = Vec::new();
    for (i, q) in spec.quiz.iter().flatten().enumerate() {
        let after = Selector::parse(&q.after).map_err(|m| bad(&format!("quiz.{i}.after"), m))?;
        if q.choices.len() < 2 || q.choices.len() > 9 {
            return Err(bad(
                &format!("quiz.{i}.choices"),
                "a quiz has 2 to 9 choices (digit keys answer)".into(),
            ));
        }
        if q.answer == 0 || q.answer > q.choices.len() {
            return Err(bad(
                &format!("quiz.{i}.answer"),
                format!(
                    "answer = {}: the number of the right choice, 1 to {}",
                    q.answer,
                    q.choices.len()
                ),
            ));
        }
        check_say(
            &format!("quiz.{i}.explain"),
            q.explain.as_deref().unwrap_or(""),
        )?;
        quiz.push(expect::QuizItem {
            after,
            question: q.question.clone(),
            choices: q.choices.clone(),
            answer: q.answer,
            explain: q.explain.clone(),
        });
    }
    let lesson = Lesson {
        id,
        title,
        summary: spec.summary.clone().unwrap_or_default(),
        concepts: spec.concepts.clone().unwrap_or_default(),
        file,
        mqtt,
        overridden,
        operations,
        emphasis,
        quiz,
        origins,
        spec,
    };
    Ok(lesson)
}

impl Lesson {
    /// The emphasis texts of a run, each at the event index its selector names, filled from the
    /// run (a selector the run never reached is left out).
    pub fn emphasis_for(&self, trace: &crate::trace::Trace) -> Vec<(usize, String)> {
        self.emphasis
            .iter()
            .filter_map(|(s, say)| s.resolve(trace).map(|i| (i, expect::fill(say, trace))))
            .collect()
    }

    /// The quiz questions a run reached, each at the event index of the step it is asked before.
    pub fn quiz_for(&self, trace: &crate::trace::Trace) -> Vec<(usize, &expect::QuizItem)> {
        self.quiz
            .iter()
            .filter_map(|q| q.after.resolve(trace).map(|i| (i, q)))
            .collect()
    }

    /// Check `[expect]` against a run under `version`.
    pub fn check_expect(
        &self,
        trace: &crate::trace::Trace,
        version: crate::engine::mqtt_io::Version,
    ) -> Vec<Mismatch> {
        match &self.spec.expect {
            Some(e) => expect::check(e, trace, version),
            None => Vec::new(),
        }
    }

    /// Run the lesson for real: its operations, or its session under `version` (when it pins
    /// none).
    pub fn run(
        &self,
        version: Option<crate::engine::mqtt_io::Version>,
    ) -> Result<crate::trace::Trace, crate::engine::EngineError> {
        match self.operations {
            Some(op) => crate::engine::operations::run(op),
            None => crate::engine::run(&self.scenario(version)?),
        }
    }

    /// The MQTT versions the lesson runs under: the one it pins, or both (a lesson of operations
    /// speaks no MQTT: one run).
    pub fn versions(&self) -> Vec<crate::engine::mqtt_io::Version> {
        use crate::engine::mqtt_io::Version;
        if self.operations.is_some() {
            return vec![Version::V4];
        }
        match self.mqtt {
            Some(v) => vec![v],
            None => vec![Version::V4, Version::V5],
        }
    }
}

/// Read a file a lesson names: relative to the lesson file that set the key, or, for a built-in
/// lesson, from the files embedded in iotls.
pub(crate) fn read_named(origin: &Origin, name: &str) -> Result<Vec<u8>, String> {
    let embedded = EMBEDDED.iter().find(|(n, _)| *n == name);
    match &origin.dir {
        // A lesson file beside the repository's walkthroughs/ names the same files as the built-in
        // copy: what is not beside the file comes from iotls itself.
        Some(dir) if embedded.is_some() && !dir.join(name).exists() => {
            Ok(embedded.expect("checked").1.to_vec())
        }
        Some(dir) => {
            let path = if Path::new(name).is_absolute() {
                PathBuf::from(name)
            } else {
                dir.join(name)
            };
            crate::files::read_bounded(&path, crate::files::MAX_INPUT)
                .map_err(|e| format!("{}: {e}", path.display()))
        }
        None => EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.to_vec())
            .ok_or_else(|| {
                let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
                format!(
                    "{name}: not one of the files built into iotls ({})",
                    names.join(", ")
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn tables_merge_key_by_key_and_arrays_replace() {
        let mut base =
            table("[device]\nserver_name = \"a\"\nclient_id = \"c\"\ntrust = [\"x\", \"y\"]\n");
        merge(
            &mut base,
            table("[device]\nserver_name = \"b\"\ntrust = [\"z\"]\n"),
        );
        let d = base["device"].as_table().unwrap();
        assert_eq!(d["server_name"].as_str(), Some("b"));
        assert_eq!(d["client_id"].as_str(), Some("c"), "inherited");
        assert_eq!(
            d["trust"].as_array().unwrap().len(),
            1,
            "replaced, not appended"
        );
    }

    #[test]
    fn set_values_are_toml_when_they_parse_and_strings_otherwise() {
        let mut t = table("[device]\ntrust = [\"root\"]\n[[device.actions]]\npublish = \"a\"\n");
        let mut o = BTreeMap::new();
        apply_set(&mut t, &mut o, "device.trust=[]").unwrap();
        apply_set(&mut t, &mut o, "device.server_name=evil.example").unwrap();
        apply_set(&mut t, &mut o, "device.persistent=true").unwrap();
        apply_set(&mut t, &mut o, "device.actions.0.publish=x/y").unwrap();
        let d = t["device"].as_table().unwrap();
        assert_eq!(d["trust"].as_array().unwrap().len(), 0);
        assert_eq!(d["server_name"].as_str(), Some("evil.example"));
        assert_eq!(d["persistent"].as_bool(), Some(true));
        assert_eq!(
            d["actions"].as_array().unwrap()[0]["publish"].as_str(),
            Some("x/y")
        );
        assert_eq!(o["device.trust"].file, "--set device.trust");
        let e = apply_set(&mut t, &mut o, "device.actions.3.publish=x").unwrap_err();
        assert!(e.to_string().contains("device.actions"), "{e}");
        assert!(apply_set(&mut t, &mut o, "no-equals-sign").is_err());
        assert!(apply_set(&mut t, &mut o, "extends=wrong-host").is_err());
    }

    #[test]
    fn vars_fill_simple_names_and_leave_json_and_placeholders() {
        let vars = BTreeMap::from([("serial".to_string(), "S1".to_string())]);
        let mut v =
            toml::Value::String("{\"serialNumber\":\"{serial}\"} {cert.device.cn} {serial}".into());
        substitute(&mut v, "x", &vars, &BTreeMap::new(), "f").unwrap();
        assert_eq!(
            v.as_str(),
            Some("{\"serialNumber\":\"S1\"} {cert.device.cn} S1")
        );
        let mut v = toml::Value::String("{nope}".into());
        let e = substitute(&mut v, "x", &vars, &BTreeMap::new(), "f").unwrap_err();
        assert!(e.to_string().contains("{nope} is not a variable"), "{e}");
    }

    #[test]
    fn offsets_are_relative_to_now() {
        use time::Duration;
        assert_eq!(build::offset("-1d"), Some(Duration::days(-1)));
        assert_eq!(build::offset("365d"), Some(Duration::days(365)));
        assert_eq!(build::offset("12h"), Some(Duration::hours(12)));
        assert_eq!(build::offset("0"), Some(Duration::ZERO));
        assert_eq!(build::offset("tomorrow"), None);
        assert_eq!(build::offset("5y"), None);
    }

    #[test]
    fn an_inherited_expect_is_replaced_whole_by_the_lessons_own() {
        // wrong-host sets only ok and failure; pizza-button's policy and packet claims are gone.
        let l = load("wrong-host", &[]).unwrap();
        let e = l.spec.expect.unwrap();
        assert_eq!(e.ok, Some(false));
        assert!(e.policy.is_none() && e.mqtt311.is_none());
        // policy-variables has no [device]: the pizza button's is inherited.
        let l = load("policy-variables", &[]).unwrap();
        assert_eq!(
            l.spec.device.unwrap().client_id.as_deref(),
            Some("pizza-button-1")
        );
    }
}
