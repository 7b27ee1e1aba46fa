//! Reading the files people hand to iotls (certificates, keys, policies, registries, traces) with
//! a size limit: a wrong path such as `/dev/zero` or a multi-gigabyte log gives one clear error
//! instead of reading without end.

use std::io::Read;
use std::path::Path;

/// The largest input file iotls reads: far above any certificate chain, key, policy or registry,
/// and above a long session's trace.
pub const MAX_INPUT: u64 = 64 * 1024 * 1024;

/// The file's bytes, at most `max`; a larger (or endless) file is an error saying so.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than {max} bytes: is this the right file?"
        )));
    }
    Ok(bytes)
}

/// [`read_bounded`] with [`MAX_INPUT`], as UTF-8 text.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, MAX_INPUT)?)
        .map_err(|_| std::io::Error::other("not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_after_the_limit() {
        let e = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(e.to_string().contains("larger than 1024 bytes"), "{e}");
    }

    #[test]
    fn a_file_within_the_limit_is_read_whole() {
        let p = std::env::temp_dir().join(format!("iotls-files-{}", std::process::id()));
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"hello");
        assert!(read_bounded(&p, 4).is_err());
        let _ = std::fs::remove_file(&p);
    }
}
