//! What the process itself uses: resident memory and threads from `/proc/self`, and the
//! allocator's committed memory from mimalloc (`mi_process_info`). Read only when a monitoring
//! endpoint is scraped; `/proc` reads are answered by the kernel from memory, never the disk.

/// Memory and threads of the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Resident set size, bytes (`/proc/self/statm`).
    pub rss: u64,
    /// Memory mimalloc holds committed for the heap, bytes (what the allocator costs the
    /// machine; the live objects inside it are not counted separately without mimalloc's
    /// statistics build).
    pub heap_committed: u64,
    /// The most `heap_committed` has been, bytes.
    pub heap_peak: u64,
    /// Threads of the process (`/proc/self/stat`): shards, store, hash, reader, signal threads
    /// and the log writer.
    pub threads: u64,
}

/// Reads the process's usage now.
pub fn usage() -> Usage {
    let (heap_committed, heap_peak) = allocator();
    Usage {
        rss: rss().unwrap_or(0),
        heap_committed,
        heap_peak,
        threads: threads().unwrap_or(0),
    }
}

fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

fn threads() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 20 is num_threads; `rest` starts at field 3.
    rest.split_whitespace().nth(17)?.parse().ok()
}

fn allocator() -> (u64, u64) {
    let (mut commit, mut peak) = (0usize, 0usize);
    let null = std::ptr::null_mut();
    // SAFETY: every out-parameter is either null (not wanted) or a valid usize of ours.
    unsafe {
        libmimalloc_sys::mi_process_info(null, null, null, null, null, &mut commit, &mut peak, null)
    };
    (commit as u64, peak as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_reads_this_process() {
        let u = super::usage();
        assert!(u.rss > 1 << 20, "{u:?}");
        assert!(u.threads >= 1, "{u:?}");
        assert!(u.heap_peak >= u.heap_committed, "{u:?}");
    }
}
