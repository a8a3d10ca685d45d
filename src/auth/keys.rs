//! The persistent token key: `<data_dir>/token.key`, created once with 32 random bytes so that
//! tokens survive restarts without any configuration.
//!
//! It never silently replaces an existing key (that would log every user out): a damaged file is
//! an error for the operator to resolve. Key rotation and configured keys are the caller's business.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::TryRngCore;

use super::token::MIN_KEY_LEN;

/// File name of the token key inside the data directory.
pub const TOKEN_KEY_FILE: &str = "token.key";

/// Largest key file accepted; anything bigger is not a key.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Reads `data_dir/token.key` (all of its bytes, at least 32), or creates it with 32 bytes from
/// the operating system's random source, mode 0600, fsynced (file and directory).
///
/// The directory is created if missing. A key file shorter than 32 bytes (or absurdly long) is
/// an `InvalidData` error naming the file; it is never regenerated behind the operator's back.
pub fn load_or_create_token_key(data_dir: &Path) -> io::Result<Vec<u8>> {
    let path = data_dir.join(TOKEN_KEY_FILE);
    match read_key(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    fs::create_dir_all(data_dir)?;

    let mut key = vec![0u8; MIN_KEY_LEN];
    OsRng
        .try_fill_bytes(&mut key)
        .map_err(|e| io::Error::other(format!("cannot get random bytes for the token key: {e}")))?;

    // Write to a temporary file and rename it into place, so a crash never leaves a short key.
    let tmp = data_dir.join(format!("{TOKEN_KEY_FILE}.tmp"));
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        // The mode above only applies to a new file; force it in case a stale tmp file existed.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(&key)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    sync_dir(data_dir)?;
    log::info!("created new token key {}", path.display());
    Ok(key)
}

/// The key a server on a shared PostgreSQL database offers when the database holds none yet:
/// the data directory's existing `token.key` (so that tokens issued before the server moved
/// to PostgreSQL stay valid), else 32 fresh random bytes. Creates no file.
pub fn token_key_candidate(data_dir: &Path) -> io::Result<Vec<u8>> {
    match read_key(&data_dir.join(TOKEN_KEY_FILE)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut key = vec![0u8; MIN_KEY_LEN];
            OsRng.try_fill_bytes(&mut key).map_err(|e| {
                io::Error::other(format!("cannot get random bytes for the token key: {e}"))
            })?;
            Ok(key)
        }
        other => other,
    }
}

fn read_key(path: &Path) -> io::Result<Vec<u8>> {
    let f = fs::File::open(path)?;
    let mut key = Vec::with_capacity(MIN_KEY_LEN);
    f.take(MAX_KEY_FILE_LEN + 1).read_to_end(&mut key)?;
    if key.len() < MIN_KEY_LEN || key.len() as u64 > MAX_KEY_FILE_LEN {
        let size = if key.len() as u64 > MAX_KEY_FILE_LEN {
            format!("larger than {MAX_KEY_FILE_LEN} bytes")
        } else {
            format!("{} bytes", key.len())
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "token key file {} is {size}; expected {MIN_KEY_LEN}..={MAX_KEY_FILE_LEN} raw bytes. \
                 Restore it from a backup, or delete it to generate a new key (this invalidates every issued token)",
                path.display(),
            ),
        ));
    }
    warn_if_readable_by_others(path);
    Ok(key)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "token key {} is accessible by group/others (mode {:o}); chmod 600 recommended",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// The full path of the key file for `data_dir` (for messages and tooling).
pub fn token_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_KEY_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_or_create_token_key(dir.path()).unwrap();
        assert_eq!(k1.len(), 32);
        assert_ne!(k1, vec![0u8; 32]);
        let k2 = load_or_create_token_key(dir.path()).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(fs::read(token_key_path(dir.path())).unwrap(), k1);
        assert!(!dir.path().join("token.key.tmp").exists());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_or_create_token_key(dir.path()).unwrap();
        let mode = fs::metadata(token_key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn creates_missing_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let k = load_or_create_token_key(&nested).unwrap();
        assert_eq!(fs::read(nested.join("token.key")).unwrap(), k);
    }

    #[test]
    fn longer_keys_are_used_whole() {
        let dir = tempfile::tempdir().unwrap();
        let key: Vec<u8> = (0..64u8).collect();
        fs::write(token_key_path(dir.path()), &key).unwrap();
        assert_eq!(load_or_create_token_key(dir.path()).unwrap(), key);
    }

    #[test]
    fn short_key_is_an_error_not_a_regeneration() {
        let dir = tempfile::tempdir().unwrap();
        let path = token_key_path(dir.path());
        for len in [0usize, 1, 31] {
            fs::write(&path, vec![1u8; len]).unwrap();
            let err = load_or_create_token_key(dir.path()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let msg = err.to_string();
            assert!(
                msg.contains("token.key") && msg.contains(&format!("{len} bytes")),
                "{msg}"
            );
            assert_eq!(
                fs::read(&path).unwrap(),
                vec![1u8; len],
                "file was modified"
            );
        }
    }

    #[test]
    fn huge_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(token_key_path(dir.path()), vec![1u8; 10_000]).unwrap();
        let err = load_or_create_token_key(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
