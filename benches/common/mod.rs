//! Shared by the benchmarks: the agent run as a child process, its peak memory watched.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs the agent to completion, sampling its peak RSS (VmHWM) from /proc. getrusage's
/// ru_maxrss is no use here: it counts this process's pages, shared with the child between
/// fork and exec.
pub(crate) fn run_watching_rss(mut cmd: Command) -> (Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("linegate runs");
    let status_file = format!("/proc/{}/status", child.id());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(vm_hwm_kib(&status_file).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        let out = child.wait_with_output().expect("linegate finishes");
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, watcher.join().unwrap())
    })
}

/// A process's peak resident memory so far (VmHWM, KiB), from its /proc/<pid>/status.
pub(crate) fn vm_hwm_kib(status_file: &str) -> Option<u64> {
    let text = std::fs::read_to_string(status_file).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}
