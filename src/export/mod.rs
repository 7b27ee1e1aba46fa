//! Exports of one session for other tools and other people: the NSS key log ([`keylog`]), a
//! pcapng capture that Wireshark decrypts on its own ([`pcap`]), and a self-contained page in HTML
//! or Markdown ([`page`]). Each is written from the [`Trace`] alone, after the session: the bytes
//! are the trace's `records`, the secrets its `secret` events. docs/exports.md describes the
//! formats and how to open them.
//!
//! [`ExportArgs`] are the command-line flags shared by `tour`, `connect` and `serve`;
//! [`Exports`] is what they resolve to, checked before the session starts.

pub mod keylog;
pub mod page;
pub mod pcap;
pub mod reproduce;

use crate::trace::Trace;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The export flags of `tour`, `connect` and `serve`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ExportArgs {
    /// Write the session's TLS secrets in the NSS key log format (CLIENT_RANDOM lines, mode 0600);
    /// serve appends one line per session. SSLKEYLOGFILE in the environment is appended to as well.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,
    /// Write a pcapng capture of the session's TLS records (synthesised TCP/IP framing, the broker
    /// on port 8883) with the key log inside, so Wireshark decrypts it; serve writes FILE-N per session.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Write one page of the session: `--export html FILE` or `--export md FILE` (may be repeated);
    /// serve writes FILE-N per session.
    #[arg(long = "export", num_args = 2, value_names = ["FORMAT", "FILE"])]
    pub export: Vec<String>,
    /// Write every input of the session's calculations into DIR (handshake messages, certificates,
    /// signatures, key-log line, records) with DIR/reproduce.sh, which redoes each calculation
    /// with openssl and python3; serve writes DIR/session-N per session.
    #[arg(long, value_name = "DIR")]
    pub reproduce: Option<PathBuf>,
}

/// Which command is exporting: it decides whether the page shows the master secret (only the
/// tour, which teaches with it) and whether files are per session (`serve`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Tour,
    Connect,
    Serve,
}

/// The two page formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFormat {
    Html,
    Markdown,
}

/// An export that cannot be done: a usage error (exit code 2) or a file that cannot be written
/// (a set-up error, exit code 3). The message names the flag and the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    File(String),
}

/// What the export flags asked for, checked.
#[derive(Clone, Debug)]
pub struct Exports {
    command: Command,
    keylog: Option<PathBuf>,
    /// `SSLKEYLOGFILE`, when set and not the same file as `--keylog`.
    env_keylog: Option<PathBuf>,
    pcap: Option<PathBuf>,
    pages: Vec<(PageFormat, PathBuf)>,
    reproduce: Option<PathBuf>,
}

impl Exports {
    /// Check the flags (and `SSLKEYLOGFILE`) before the session runs: the formats are known and
    /// every file's directory exists. For `serve`, the `--keylog` file is created empty now, so
    /// each session can be appended to it.
    pub fn new(args: &ExportArgs, command: Command) -> Result<Exports, ExportError> {
        let env = std::env::var_os("SSLKEYLOGFILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self::with_env_keylog(args, command, env)
    }

    /// [`Exports::new`] with the value of `SSLKEYLOGFILE` given.
    fn with_env_keylog(
        args: &ExportArgs,
        command: Command,
        env_keylog: Option<PathBuf>,
    ) -> Result<Exports, ExportError> {
        let mut pages = Vec::new();
        for pair in args.export.chunks(2) {
            let [format, file] = pair else {
                return Err(ExportError::Usage(
                    "--export needs a format and a file, e.g. --export html session.html".into(),
                ));
            };
            let format = match format.to_ascii_lowercase().as_str() {
                "html" => PageFormat::Html,
                "md" | "markdown" => PageFormat::Markdown,
                other => {
                    return Err(ExportError::Usage(format!(
                        "--export {other:?}: unknown format; use html or md (e.g. --export md session.md)"
                    )))
                }
            };
            pages.push((format, PathBuf::from(file)));
        }
        let env_keylog =
            env_keylog.filter(|e| args.keylog.as_ref().is_none_or(|k| !same_file(k, e)));
        let x = Exports {
            command,
            keylog: args.keylog.clone(),
            env_keylog,
            pcap: args.pcap.clone(),
            pages,
            reproduce: args.reproduce.clone(),
        };
        if let Some(k) = &x.keylog {
            check_dir("--keylog", k)?;
        }
        if let Some(k) = &x.env_keylog {
            check_dir("SSLKEYLOGFILE", k)?;
        }
        if let Some(p) = &x.pcap {
            check_dir("--pcap", p)?;
        }
        for (f, p) in &x.pages {
            check_dir(&format!("--export {}", f.name()), p)?;
        }
        if let Some(d) = &x.reproduce {
            check_reproduce_dir(d)?;
            if command == Command::Serve && !d.is_dir() {
                // Each session gets DIR/session-N.
                std::fs::create_dir(d).map_err(|e| {
                    ExportError::File(format!(
                        "--reproduce {}: cannot create the directory: {e}",
                        d.display()
                    ))
                })?;
            }
        }
        if command == Command::Serve {
            if let Some(k) = &x.keylog {
                private_file(k, false).map_err(|e| cannot("--keylog", k, &e))?;
            }
        }
        Ok(x)
    }

    /// Write every export of one session: `SSLKEYLOGFILE` and the files of the flags. `session`
    /// is the session's number for `serve` (from 1, in the order sessions end). Returns the files
    /// written by the flags, for a status line.
    pub fn write(&self, trace: &Trace, session: Option<u32>) -> Result<Vec<PathBuf>, ExportError> {
        self.append_env_keylog(trace)?;
        self.write_files(trace, session)
    }

    /// Append the session's key log lines to `SSLKEYLOGFILE`, as browsers and curl do.
    pub fn append_env_keylog(&self, trace: &Trace) -> Result<(), ExportError> {
        if let Some(p) = &self.env_keylog {
            write_private(p, keylog::lines(trace).as_bytes(), true)
                .map_err(|e| cannot("SSLKEYLOGFILE", p, &e))?;
        }
        Ok(())
    }

    /// Write the files of `--keylog`, `--pcap` and `--export` for one session.
    pub fn write_files(
        &self,
        trace: &Trace,
        session: Option<u32>,
    ) -> Result<Vec<PathBuf>, ExportError> {
        let mut written = Vec::new();
        let per_session = |p: &Path| match session {
            Some(n) => numbered(p, n),
            None => p.to_path_buf(),
        };
        if let Some(k) = &self.keylog {
            // serve appends each session to the file it created at start; the others write it whole.
            let append = self.command == Command::Serve;
            write_private(k, keylog::lines(trace).as_bytes(), append)
                .map_err(|e| cannot("--keylog", k, &e))?;
            written.push(k.clone());
        }
        if let Some(p) = &self.pcap {
            let path = per_session(p);
            let bytes = pcap::pcapng(trace).map_err(|e| cannot("--pcap", &path, &e))?;
            // The capture carries the key log in its Decryption Secrets Block: as private as it.
            write_private(&path, &bytes, false).map_err(|e| cannot("--pcap", &path, &e))?;
            written.push(path);
        }
        for (format, p) in &self.pages {
            let path = per_session(p);
            let flag = format!("--export {}", format.name());
            let secrets = self.secrets_note(session);
            let text = page::render(trace, *format, &secrets);
            let result = if secrets == page::Secrets::Shown {
                write_private(&path, text.as_bytes(), false)
            } else {
                std::fs::write(&path, text.as_bytes())
            };
            result.map_err(|e| cannot(&flag, &path, &e))?;
            written.push(path);
        }
        if let Some(d) = &self.reproduce {
            let dir = match session {
                Some(n) => d.join(format!("session-{n}")),
                None => d.clone(),
            };
            let script = reproduce::write(trace, &dir).map_err(|e| {
                ExportError::File(format!(
                    "--reproduce {}: cannot write it: {e}",
                    dir.display()
                ))
            })?;
            written.push(script);
        }
        Ok(written)
    }

    /// What a page says about the master secret: the tour shows it; connect and serve say where
    /// the key log is.
    fn secrets_note(&self, session: Option<u32>) -> page::Secrets {
        if self.command == Command::Tour {
            return page::Secrets::Shown;
        }
        let mut places = Vec::new();
        if let Some(k) = &self.keylog {
            places.push(format!("the key log {}", k.display()));
        }
        if let Some(k) = &self.env_keylog {
            places.push(format!("the key log {} (SSLKEYLOGFILE)", k.display()));
        }
        if let Some(p) = &self.pcap {
            let p = match session {
                Some(n) => numbered(p, n),
                None => p.clone(),
            };
            places.push(format!(
                "the Decryption Secrets Block of the capture {}",
                p.display()
            ));
        }
        page::Secrets::KeptIn(places)
    }
}

impl PageFormat {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PageFormat::Html => "html",
            PageFormat::Markdown => "md",
        }
    }
}

/// `capture.pcapng` → `capture-3.pcapng`: the session number before the extension.
pub fn numbered(path: &Path, n: u32) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

/// The file's directory must exist, and the path must not be a directory.
fn check_dir(flag: &str, path: &Path) -> Result<(), ExportError> {
    if path.is_dir() {
        return Err(ExportError::File(format!(
            "{flag} {}: is a directory; give a file name",
            path.display()
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(ExportError::File(format!(
            "{flag} {}: the directory {} does not exist; create it or choose another path",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

fn cannot(flag: &str, path: &Path, e: &std::io::Error) -> ExportError {
    ExportError::File(format!("{flag} {}: cannot write it: {e}", path.display()))
}

/// `--reproduce DIR`: DIR is a directory or does not exist yet, and its parent exists.
fn check_reproduce_dir(dir: &Path) -> Result<(), ExportError> {
    if dir.exists() && !dir.is_dir() {
        return Err(ExportError::File(format!(
            "--reproduce {}: is a file, not a directory; give a directory (it is created if missing)",
            dir.display()
        )));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(ExportError::File(format!(
            "--reproduce {}: the directory {} does not exist; create it or choose another path",
            dir.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// Whether two paths name the same file (the same text, or the same existing file).
fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Open a file that holds secrets: created with mode 0600, and set to 0600 if it existed.
fn private_file(path: &Path, append: bool) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(0o600);
        let f = o.open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    o.open(path)
}

fn write_private(path: &Path, bytes: &[u8], append: bool) -> std::io::Result<()> {
    let mut f = private_file(path, append)?;
    f.write_all(bytes)?;
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::numbered;
    use std::path::Path;

    #[test]
    fn the_session_number_goes_before_the_extension() {
        assert_eq!(
            numbered(Path::new("d/room.pcapng"), 3),
            Path::new("d/room-3.pcapng")
        );
        assert_eq!(numbered(Path::new("room"), 1), Path::new("room-1"));
        assert_eq!(numbered(Path::new("a.b.md"), 2), Path::new("a.b-2.md"));
    }
}
