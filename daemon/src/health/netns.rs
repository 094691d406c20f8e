//! Probes from inside another network namespace: the calling thread (a
//! check's own) joins it with setns(2), so every socket it opens after
//! is in that namespace. Needs CAP_SYS_ADMIN (and, for `/proc/PID/ns/net`
//! of another user's process, CAP_SYS_PTRACE).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

use crate::config::ProbeNamespace;

/// Where container runtimes pin pod sandboxes' namespaces (containerd's
/// `cni-*`, CRI-O's by id; `/var/run` is a link to `/run`), and where a
/// Talos extension service sees them with the host's `/run` mounted at
/// `/host/run` (`deploy/talos/README.md`).
const PINNED: [&str; 2] = ["/run/netns", "/host/run/netns"];

/// Moves the calling thread into the namespace at `path`.
pub fn enter(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| {
        let hint = if e == nix::errno::Errno::EPERM {
            " (joining a namespace needs CAP_SYS_ADMIN)"
        } else {
            ""
        };
        format!("cannot enter {}: {e}{hint}", path.display())
    })
}

/// Whether an interface of the thread's current namespace has `ip`.
fn holds(ip: IpAddr) -> bool {
    nix::ifaddrs::getifaddrs().is_ok_and(|mut list| {
        list.any(|i| {
            i.address.is_some_and(|a| {
                a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())) == Some(ip)
                    || a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())) == Some(ip)
            })
        })
    })
}

/// Keeps the calling thread in the namespace a check names, and says
/// which one that is. A pod's namespace is looked for again when the one
/// found last no longer holds its address (the pod was replaced).
#[derive(Default)]
pub struct Placement {
    found: Option<PathBuf>,
}

impl Placement {
    pub fn enter(&mut self, ns: &ProbeNamespace) -> Result<PathBuf, String> {
        match ns {
            ProbeNamespace::Path(p) => enter(p).map(|_| p.clone()),
            ProbeNamespace::PodIp(ip) => {
                if let Some(p) = self.found.clone()
                    && enter(&p).is_ok()
                    && holds(*ip)
                {
                    return Ok(p);
                }
                self.found = None;
                let mut entries: Vec<PathBuf> = PINNED
                    .iter()
                    .filter_map(|d| std::fs::read_dir(d).ok())
                    .flatten()
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .collect();
                entries.sort();
                let mut last_error = None;
                for p in entries {
                    match enter(&p) {
                        Ok(()) if holds(*ip) => {
                            self.found = Some(p.clone());
                            return Ok(p);
                        }
                        Ok(()) => {}
                        Err(e) => last_error = Some(e),
                    }
                }
                let searched = PINNED.join(" or ");
                Err(match last_error {
                    Some(e) => format!("no namespace under {searched} holds {ip} ({e})"),
                    None => format!("no namespace under {searched} holds {ip}"),
                })
            }
        }
    }
}
