//! The journal's format and its replay: the records a shard appends to its own log so that a
//! `{pub}` can be acknowledged once that log is synced, before the store thread applies it.
//!
//! A journal is a directory of segment files, `<shard>-<segment>.log`, each a sequence of
//! records `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`; a payload is one
//! [`WriteBatch`] made only of the ops that cannot fail on a precondition once their topic's
//! home shard has decided them ([`journaled`]: message appends and marker raises). Writing and
//! syncing the files is the shard's business (`shard::journal`, through io_uring); this module
//! only encodes, decodes and, at start-up, replays whatever a crash left behind into the store
//! before any shard runs. Replay is idempotent: an append whose seq is already stored is the
//! same message (its topic's home shard assigned the seq once) and is skipped, and markers
//! only ever rise. A torn or corrupt record ends its segment (a crash mid-write): the records
//! before it are replayed, the rest of that file is not, which loses nothing acknowledged,
//! because a record is acknowledged only after it and everything before it was synced.

use std::path::{Path, PathBuf};

use super::{MessageRecord, Store, StoreError, WriteBatch, WriteOp};
use crate::ids::{UnixMillis, UserId};

const TAG_APPEND: u8 = 1;
const TAG_MARKERS: u8 = 2;
/// The journal's directory inside `store.data_dir`.
pub const DIR: &str = "journal";
/// Header bytes before each payload.
pub const HEADER: usize = 8;

/// Whether `batch` may go through the journal (and be acknowledged before the store thread
/// applies it): it can only fail on a broken store, never on a precondition the caller would
/// have to report.
pub fn journaled(batch: &WriteBatch) -> bool {
    !batch.is_empty()
        && batch
            .iter()
            .all(|op| matches!(op, WriteOp::AppendMessage(_) | WriteOp::Markers { .. }))
}

/// The file of `segment` of `shard`'s journal in `dir`.
pub fn segment_path(dir: &Path, shard: u16, segment: u64) -> PathBuf {
    dir.join(format!("{shard:05}-{segment:012}.log"))
}

/// Appends one record holding `batch` to `out`. The batch must be [`journaled`]; other ops
/// are skipped (debug builds assert).
pub fn encode(out: &mut Vec<u8>, batch: &WriteBatch) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    for op in batch {
        match op {
            WriteOp::AppendMessage(m) => {
                out.push(TAG_APPEND);
                put_str(out, &m.topic);
                put_u64(out, m.seq);
                put_u64(out, m.ts.0);
                put_u64(out, m.from.0);
                match &m.head {
                    Some(h) => {
                        out.push(1);
                        put_str(out, h);
                    }
                    None => out.push(0),
                }
                put_str(out, &m.content);
                out.push(m.deleted as u8);
            }
            WriteOp::Markers {
                topic,
                user,
                read,
                recv,
            } => {
                out.push(TAG_MARKERS);
                put_str(out, topic);
                put_u64(out, user.0);
                put_u64(out, *read);
                put_u64(out, *recv);
            }
            other => debug_assert!(false, "not a journaled op: {other:?}"),
        }
    }
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// The records of one segment, in order, and where (and why) decoding stopped early, if it
/// did: a torn tail after a crash, or corruption.
pub fn decode(bytes: &[u8]) -> (Vec<WriteBatch>, Option<(usize, &'static str)>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes.len() - at < HEADER {
            return (out, Some((at, "torn record header")));
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        if len == 0 && crc == 0 {
            // Zeroes past the last record (preallocated or never written): the end.
            return (out, None);
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            return (out, Some((at, "torn record")));
        };
        if crc32fast::hash(payload) != crc {
            return (out, Some((at, "checksum mismatch")));
        }
        match decode_payload(payload) {
            Some(batch) => out.push(batch),
            None => return (out, Some((at, "undecodable record"))),
        }
        at += HEADER + len;
    }
    (out, None)
}

fn decode_payload(mut p: &[u8]) -> Option<WriteBatch> {
    let mut batch = Vec::new();
    while let Some((&tag, rest)) = p.split_first() {
        p = rest;
        match tag {
            TAG_APPEND => {
                let topic = get_str(&mut p)?;
                let seq = get_u64(&mut p)?;
                let ts = UnixMillis(get_u64(&mut p)?);
                let from = UserId(get_u64(&mut p)?);
                let head = match get_u8(&mut p)? {
                    0 => None,
                    1 => Some(get_str(&mut p)?),
                    _ => return None,
                };
                let content = get_str(&mut p)?;
                let deleted = get_u8(&mut p)? != 0;
                batch.push(WriteOp::AppendMessage(MessageRecord {
                    topic,
                    seq,
                    ts,
                    from,
                    head,
                    content,
                    deleted,
                }));
            }
            TAG_MARKERS => {
                let topic = get_str(&mut p)?;
                let user = UserId(get_u64(&mut p)?);
                let read = get_u64(&mut p)?;
                let recv = get_u64(&mut p)?;
                batch.push(WriteOp::Markers {
                    topic,
                    user,
                    read,
                    recv,
                });
            }
            _ => return None,
        }
    }
    Some(batch)
}

/// What a replay did, for the start-up log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Segment files read (and removed).
    pub files: usize,
    /// Records found.
    pub records: usize,
    /// Ops written to the store.
    pub applied: usize,
    /// Appends already in the store (applied before the crash).
    pub present: usize,
    /// Segments whose tail was torn or corrupt: (file, byte offset, why).
    pub torn: Vec<(PathBuf, usize, &'static str)>,
}

/// Ops applied per store transaction during a replay.
const REPLAY_CHUNK: usize = 4096;

/// Replays every segment in `dir` into `store` (oldest first per shard), makes it durable, and
/// removes the files. A missing directory is an empty journal. Fails without removing
/// anything when the store refuses a write for another reason than an already stored append.
pub fn replay(dir: &Path, store: &dyn Store) -> Result<Replayed, StoreError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replayed::default()),
        Err(e) => return Err(io_err(dir, e)),
    };
    // `<shard>-<segment>` with fixed widths: the name order is the write order per shard.
    files.sort();
    let mut rep = Replayed::default();
    let mut ops: Vec<WriteBatch> = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
        let (records, stop) = decode(&bytes);
        if let Some((at, why)) = stop {
            rep.torn.push((path.clone(), at, why));
        }
        rep.files += 1;
        rep.records += records.len();
        // One op per batch, so that an append already stored does not hold back its markers.
        for op in records.into_iter().flatten() {
            ops.push(vec![op]);
            if ops.len() >= REPLAY_CHUNK {
                apply_chunk(store, &mut ops, &mut rep)?;
            }
        }
    }
    apply_chunk(store, &mut ops, &mut rep)?;
    // The chunks were applied by `apply`, which is durable for a durable store; an empty
    // durable commit also covers a store that made them volatile.
    store.sync()?;
    for path in &files {
        std::fs::remove_file(path).map_err(|e| io_err(path, e))?;
    }
    Ok(rep)
}

/// Removes every segment in `dir` (after a clean shutdown: the store holds all of it).
pub fn clear(dir: &Path) -> Result<(), StoreError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for p in rd.filter_map(|e| e.ok().map(|e| e.path())) {
        if p.extension().is_some_and(|x| x == "log") {
            std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
        }
    }
    Ok(())
}

fn apply_chunk(
    store: &dyn Store,
    ops: &mut Vec<WriteBatch>,
    rep: &mut Replayed,
) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    for (batch, res) in ops.iter().zip(store.apply(ops)) {
        match res {
            Ok(()) => rep.applied += 1,
            Err(StoreError::Conflict(_))
                if matches!(batch.first(), Some(WriteOp::AppendMessage(_))) =>
            {
                rep.present += 1
            }
            Err(e) => return Err(e),
        }
    }
    ops.clear();
    Ok(())
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("journal {}: {e}", path.display()))
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn get_u8(p: &mut &[u8]) -> Option<u8> {
    let (&b, rest) = p.split_first()?;
    *p = rest;
    Some(b)
}

fn get_u64(p: &mut &[u8]) -> Option<u64> {
    let (b, rest) = p.split_at_checked(8)?;
    *p = rest;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

fn get_str(p: &mut &[u8]) -> Option<String> {
    let (len, rest) = p.split_at_checked(4)?;
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    let (s, rest) = rest.split_at_checked(len)?;
    *p = rest;
    String::from_utf8(s.to_vec()).ok()
}

#[cfg(test)]
mod tests;
