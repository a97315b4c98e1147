//! What a process has written to storage, as the kernel counts it (`/proc/<pid>/io`): on a
//! Pi's SD card, wear is a health figure, shown beside the others.

/// Bytes this process caused to be written to storage since it started.
pub(crate) fn written_bytes() -> Option<u64> {
    read("/proc/self/io")
}

/// The same for another process (the running agent, seen from `linegate status`): readable
/// by its own user and root (and the wear benchmark).
pub fn written_bytes_of(pid: u32) -> Option<u64> {
    read(&format!("/proc/{pid}/io"))
}

fn read(path: &str) -> Option<u64> {
    parse(&std::fs::read_to_string(path).ok()?)
}

/// `write_bytes` less `cancelled_write_bytes` (pages dirtied, then truncated before they
/// reached the card).
fn parse(io: &str) -> Option<u64> {
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok())
    };
    Some(field("write_bytes")?.saturating_sub(field("cancelled_write_bytes").unwrap_or(0)))
}

/// `812 B`, `40.2 KiB`, `3.1 MiB`, `1.4 GiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_io_is_read_as_the_kernel_writes_it() {
        let io = "rchar: 323934931\nwchar: 323929600\nsyscr: 632687\nsyscw: 632675\n\
                  read_bytes: 0\nwrite_bytes: 323932160\ncancelled_write_bytes: 4096\n";
        assert_eq!(parse(io), Some(323_928_064));
        assert_eq!(parse("rchar: 1\n"), None);
        assert!(written_bytes().is_some(), "this process's own counters");
        assert_eq!(human(812), "812 B");
        assert_eq!(human(41_165), "40.2 KiB");
        assert_eq!(human(3_250_586), "3.1 MiB");
        assert_eq!(human(u64::MAX), "16777216.0 TiB");
    }
}
