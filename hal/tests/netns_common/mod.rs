//! Network namespaces for tests: `ip` calls and a guard that deletes the namespaces it created. Shared by hal's
//! UDP namespace test and the `meshnode run` namespace test (which includes this file by path).
//!
//! Invariant: every namespace a [`Namespaces`] created is deleted when it drops, passed or failed (its veth ends
//! go with it); creation refuses politely (an `Err` to report as a skip) where it cannot work.
#![allow(dead_code)]

use std::process::Command;

/// Runs `ip ARGS`, failing with its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Network namespaces created for one test, deleted when dropped.
pub struct Namespaces(pub Vec<String>);

impl Namespaces {
    /// Creates `names`; `Err` (with the reason) when this machine cannot (not root, no `ip netns`).
    pub fn create(names: &[String]) -> Result<Namespaces, String> {
        let is_root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
        });
        if !is_root {
            return Err("needs root".into());
        }
        let mut made = Namespaces(Vec::new());
        for ns in names {
            ip(&["netns", "add", ns])?;
            made.0.push(ns.clone());
        }
        Ok(made)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
