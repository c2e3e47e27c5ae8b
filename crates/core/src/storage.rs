//! Where bundles (and other large files) are kept: a small trait, so that an object store
//! can be added beside the local directory. What is stored is already sealed
//! (`sealing::SealingReader`): a store never sees plaintext. The calls block; run them on
//! a blocking thread.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Stores opaque objects by key. Keys are made by the service: `[a-z0-9/-]`, no `..`.
pub trait Storage: Send + Sync + 'static {
    /// Stores what `from` yields under `key`, whole or not at all; returns the bytes
    /// stored.
    fn put(&self, key: &str, from: &mut dyn Read) -> io::Result<u64>;
    /// Reads the object `key` (`NotFound` when there is none).
    fn get(&self, key: &str) -> io::Result<Box<dyn Read + Send>>;
    /// Deletes the object `key`; deleting one that is gone is not an error.
    fn delete(&self, key: &str) -> io::Result<()>;
}

/// Objects as files in a local directory (mode 0600 on Unix, in directories of mode 0700).
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let ok = !key.is_empty()
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/-_.".contains(&b));
        if !ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a storage key",
            ));
        }
        Ok(self.root.join(key))
    }
}

fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

impl Storage for LocalDir {
    fn put(&self, key: &str, from: &mut dyn Read) -> io::Result<u64> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root);
        private_dir(dir)?;
        // Written beside, synced, and renamed: the key never names half an object.
        let tmp = dir.join(format!(".{}.part", uuid::Uuid::new_v4()));
        let result = (|| {
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = io::BufWriter::with_capacity(256 * 1024, options.open(&tmp)?);
            let n = io::copy(from, &mut file)?;
            file.flush()?;
            file.get_ref().sync_all()?;
            fs::rename(&tmp, &path)?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn get(&self, key: &str) -> io::Result<Box<dyn Read + Send>> {
        let file = fs::File::open(self.path(key)?)?;
        Ok(Box::new(io::BufReader::with_capacity(256 * 1024, file)))
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_and_keys_stay_inside() {
        let dir = std::env::temp_dir().join(format!("rightsdesk-storage-{}", uuid::Uuid::now_v7()));
        let store = LocalDir::new(&dir);
        assert_eq!(store.put("bundles/a-1", &mut &b"hello"[..]).unwrap(), 5);
        let mut back = String::new();
        store
            .get("bundles/a-1")
            .unwrap()
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, "hello");
        store.delete("bundles/a-1").unwrap();
        store.delete("bundles/a-1").unwrap();
        assert_eq!(
            store.get("bundles/a-1").err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a//b", "A"] {
            assert!(store.put(bad, &mut &b""[..]).is_err(), "{bad}");
        }
        let _ = fs::remove_dir_all(dir);
    }
}
