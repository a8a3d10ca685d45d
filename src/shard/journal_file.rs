//! One journal segment file, as the shard's journal task writes it: through direct I/O into a
//! file written full of zeroes when it was created (the default, `store.journal_direct_io`),
//! or through the page cache where direct I/O is off or the filesystem refuses it.
//!
//! Why direct: a buffered round leaves dirty pages that its `fdatasync` must write back, and
//! io_uring runs that `fdatasync` on a worker thread that then does the write-back on the
//! shard's core. A direct write puts the round on the device at once from the shard's own ring;
//! the `fdatasync` behind it only flushes the device's cache. Since every block of the segment
//! was written (with zeroes) and synced when it was created, a round changes no metadata: no
//! block allocation, no size change, no filesystem journal commit in its sync.
//!
//! Direct I/O writes whole aligned blocks. A round that ends inside a block leaves that block's
//! written part in `tail`; the next round writes from the block's start, the tail in front of
//! its own bytes and zeroes behind them. The tail's bytes are rewritten unchanged, so a crash
//! during the rewrite leaves them as they were (a device writes a sector whole or not at all);
//! replay stops at the first zero header, which is where the last synced round ended.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, DmaFile};
use glommio::GlommioError;

use crate::store::StoreError;

/// Zeroes are written into a new direct segment in chunks of at most this many bytes.
const ZERO_CHUNK: usize = 1 << 20;

/// An open segment.
pub enum SegmentFile {
    /// Direct I/O into a zero-filled file.
    Direct {
        file: DmaFile,
        /// The written bytes of the last, partial block (empty when the last round ended on a
        /// block boundary).
        tail: Vec<u8>,
    },
    /// Through the page cache.
    Buffered(BufferedFile),
}

/// How a segment came to be opened.
pub struct Opened {
    pub file: SegmentFile,
    /// Direct I/O was asked for and refused by the filesystem: this is why (the caller stops
    /// asking).
    pub refused: Option<String>,
}

impl SegmentFile {
    /// Creates the segment at `path`, makes its content and its directory entry durable, and
    /// opens it for writing. With `direct`, the file is `size` bytes (rounded up to the block)
    /// of synced zeroes; when the filesystem refuses direct I/O, the segment is buffered and
    /// [`Opened::refused`] says why. A disk that is full or failing is an error either way.
    pub async fn create(path: PathBuf, size: u64, direct: bool) -> Result<Opened, StoreError> {
        let mut refused = None;
        if direct {
            match create_direct(&path, size).await {
                Ok(file) => {
                    sync_dir(&path).await?;
                    return Ok(Opened {
                        file: SegmentFile::Direct {
                            file,
                            tail: Vec::new(),
                        },
                        refused: None,
                    });
                }
                Err(e) if transient(&e) => return Err(io(&path, e)),
                Err(e) => refused = Some(e.to_string()),
            }
        }
        let file = BufferedFile::create(&path)
            .await
            .map_err(|e| io(&path, e))?;
        sync_dir(&path).await?;
        Ok(Opened {
            file: SegmentFile::Buffered(file),
            refused,
        })
    }

    /// Whether this segment is written with direct I/O.
    pub fn is_direct(&self) -> bool {
        matches!(self, SegmentFile::Direct { .. })
    }

    /// Writes `bytes` at byte `pos` of the segment's records; `pos` is where the previous
    /// round ended (0 for the first). Not durable until [`SegmentFile::sync`].
    pub async fn write(&mut self, bytes: Vec<u8>, pos: u64) -> Result<(), StoreError> {
        match self {
            SegmentFile::Buffered(f) => {
                let total = bytes.len();
                let done = f.write_at(bytes, pos).await.map_err(journal)?;
                short(done, total)
            }
            SegmentFile::Direct { file, tail } => {
                let start = pos - tail.len() as u64;
                debug_assert_eq!(file.align_down(start), start, "a tail starts its block");
                let used = tail.len() + bytes.len();
                let total = file.align_up(used as u64) as usize;
                let mut buf = file.alloc_dma_buffer(total);
                let b = buf.as_bytes_mut();
                b[..tail.len()].copy_from_slice(tail);
                b[tail.len()..used].copy_from_slice(&bytes);
                b[used..].fill(0);
                let end = start + used as u64;
                let keep = (end - file.align_down(end)) as usize;
                let new_tail = b[used - keep..used].to_vec();
                let done = file.write_at(buf, start).await.map_err(journal)?;
                short(done, total)?;
                *tail = new_tail;
                Ok(())
            }
        }
    }

    /// Makes every write so far durable.
    pub async fn sync(&self) -> Result<(), StoreError> {
        match self {
            SegmentFile::Buffered(f) => f.fdatasync().await.map_err(journal),
            SegmentFile::Direct { file, .. } => file.fdatasync().await.map_err(journal),
        }
    }

    /// Closes the file (its content is synced already, or is being abandoned).
    pub async fn close(self) -> Result<(), StoreError> {
        match self {
            SegmentFile::Buffered(f) => f.close().await.map_err(journal),
            SegmentFile::Direct { file, .. } => file.close().await.map_err(journal),
        }
    }
}

/// Creates the file, writes `size` bytes of zeroes into it with direct I/O and syncs them. A
/// half-made file is removed.
async fn create_direct(path: &Path, size: u64) -> Result<DmaFile, std::io::Error> {
    // Opened for reading too: glommio's first probe of a device fails on a write-only file.
    let file = glommio::io::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(path)
        .await
        .map_err(os)?;
    let res = async {
        let total = file.align_up(size.max(1));
        let mut at = 0u64;
        while at < total {
            let n = (total - at).min(ZERO_CHUNK as u64) as usize;
            let mut buf = file.alloc_dma_buffer(n);
            buf.as_bytes_mut().fill(0);
            let done = file.write_at(buf, at).await.map_err(os)?;
            if done < n {
                return Err(std::io::Error::new(
                    ErrorKind::StorageFull,
                    format!("short write of zeroes ({done} of {n} bytes)"),
                ));
            }
            at += n as u64;
        }
        file.fdatasync().await.map_err(os)
    }
    .await;
    match res {
        Ok(()) => Ok(file),
        Err(e) => {
            let _ = file.close().await;
            let _ = std::fs::remove_file(path);
            Err(e)
        }
    }
}

/// Whether a failure to create a direct segment is the disk's (full, failing), not the
/// filesystem refusing direct I/O: the caller retries later rather than fall back.
fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EIO)
    ) || e.kind() == ErrorKind::StorageFull
}

/// Makes the directory entry of the new file at `path` durable, off the executor.
async fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
    glommio::executor()
        .spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
        .await
        .map_err(|e| StoreError::Backend(format!("journal directory sync: {e}")))
}

/// A short write on a regular file means the device is full (or failing): an error, since the
/// buffer is gone with the kernel's answer.
fn short(done: usize, total: usize) -> Result<(), StoreError> {
    if done < total {
        return Err(StoreError::Backend(format!(
            "journal: short write ({done} of {total} bytes): device full?"
        )));
    }
    Ok(())
}

/// glommio's error as the OS error it carries, so that its errno can be told apart.
fn os(e: GlommioError<()>) -> std::io::Error {
    match e {
        GlommioError::IoError(e) => e,
        GlommioError::EnhancedIoError { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("journal {}: {e}", path.display()))
}

fn journal(e: GlommioError<()>) -> StoreError {
    StoreError::Backend(format!("journal: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::{decode, encode};
    use crate::store::{MessageRecord, WriteOp};

    fn batch(seq: u64, len: usize) -> Vec<WriteOp> {
        vec![WriteOp::AppendMessage(MessageRecord {
            topic: "grpT".into(),
            seq,
            ts: crate::ids::UnixMillis(seq),
            from: crate::ids::UserId(3),
            head: None,
            content: "x".repeat(len),
            deleted: false,
        })]
    }

    const SIZE: u64 = 128 << 10;

    /// Rounds of many sizes (inside one block, across blocks, ending on a boundary) written the
    /// way the journal task writes them into a segment in `dir`, then read back as replay reads
    /// them. Returns why direct I/O was refused, if it was.
    fn rounds_read_back(dir: &Path, direct: bool) -> Option<String> {
        let path = dir.join("00000-000000000000.log");
        let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
        let (sent, was_direct, end, refused) = ex.run({
            let path = path.clone();
            async move {
                let opened = SegmentFile::create(path, SIZE, direct).await.unwrap();
                let refused = opened.refused;
                let mut f = opened.file;
                let was_direct = f.is_direct();
                let mut sent = Vec::new();
                let mut pos = 0u64;
                let mut seq = 0u64;
                for len in [1usize, 30, 4000, 7, 4096, 9000, 0, 200, 4063] {
                    let mut round = Vec::new();
                    for _ in 0..3 {
                        seq += 1;
                        let b = batch(seq, len);
                        encode(&mut round, &b);
                        sent.push(b);
                    }
                    let n = round.len() as u64;
                    f.write(round, pos).await.unwrap();
                    f.sync().await.unwrap();
                    pos += n;
                }
                f.close().await.unwrap();
                (sent, was_direct, pos, refused)
            }
        });
        let bytes = std::fs::read(&path).unwrap();
        if was_direct {
            assert_eq!(
                bytes.len() as u64,
                SIZE,
                "the segment was zero-filled to its size"
            );
        } else {
            assert_eq!(
                bytes.len() as u64,
                end,
                "buffered: the records and nothing else"
            );
        }
        let (back, stop) = decode(&bytes);
        assert_eq!(stop, None);
        assert_eq!(back, sent);
        assert_eq!(was_direct, direct && refused.is_none(), "{refused:?}");
        refused
    }

    #[test]
    fn direct_rounds_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        if let Some(why) = rounds_read_back(dir.path(), true) {
            eprintln!("this filesystem refuses direct I/O ({why}): the rounds went buffered");
        }
    }

    #[test]
    fn buffered_rounds_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(rounds_read_back(dir.path(), false), None);
    }

    /// A ramfs, unmounted when dropped.
    struct Ramfs(std::path::PathBuf);

    impl Drop for Ramfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }

    #[test]
    fn a_filesystem_that_refuses_direct_io_gets_a_buffered_segment() {
        // ramfs refuses `O_DIRECT` (EINVAL); mounting one needs root.
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "ramfs", "ramfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("cannot mount a ramfs (not root?): the fallback is not tested here");
            return;
        }
        let _ramfs = Ramfs(dir.path().to_owned());
        let why = rounds_read_back(dir.path(), true).expect("ramfs refuses direct I/O");
        assert!(!why.is_empty());
        // One file: the buffered segment, under the segment's name.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn the_disk_being_full_is_not_a_refusal_of_direct_io() {
        assert!(transient(&std::io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(transient(&std::io::Error::from_raw_os_error(libc::EIO)));
        assert!(!transient(&std::io::Error::from_raw_os_error(libc::EINVAL)));
        assert!(!transient(&std::io::Error::from_raw_os_error(
            libc::EOPNOTSUPP
        )));
    }
}
