//! Opening a pseudo-terminal and starting a program in it. The only module with `unsafe`.
//!
//! The child leads a new session whose controlling terminal is the PTY slave (`setsid` +
//! `TIOCSCTTY` in `pre_exec`, after resetting inherited signal dispositions to default; after
//! `fork` only async-signal-safe calls are allowed). The master is non-blocking and close-on-exec from the moment it is opened, so no
//! other child spawned concurrently inherits it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::{Error, Result};

/// Signals whose disposition the child gets back to default before `exec` (see `spawn`).
const RESET_SIGNALS: [libc::c_int; 9] = [
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGTERM,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGCHLD,
    libc::SIGPIPE,
];

/// A started program and the master side of its terminal.
pub(crate) struct Spawned {
    pub child: Child,
    pub master: File,
    /// A pidfd for the child (Linux ≥ 5.3); `None` means exit is found by a `try_wait` tick.
    pub pidfd: Option<OwnedFd>,
}

/// Opens a PTY pair of `cols` × `rows`: `(master, slave)`, both close-on-exec, master non-blocking.
pub(crate) fn open(cols: u16, rows: u16) -> io::Result<(File, OwnedFd)> {
    let master = nix::pty::posix_openpt(
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
    )?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let slave_path = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        Path::new(&slave_path),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `into_raw_fd` hands over sole ownership of a valid, open descriptor.
    let master = unsafe { File::from_raw_fd(master.into_raw_fd()) };
    set_size(master.as_raw_fd(), cols, rows)?;
    Ok((master, slave))
}

/// Sets the terminal size seen by the program (`TIOCSWINSZ`; the kernel sends it `SIGWINCH`).
pub(crate) fn set_size(master: RawFd, cols: u16, rows: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `master` is an open descriptor owned by the caller; `ws` outlives the call and has
    // the layout TIOCSWINSZ reads.
    let rc = unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws as *const libc::winsize) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What to start: resolved by the manager from a `SpawnConfig`.
pub(crate) struct Program<'a> {
    pub command: &'a str,
    pub args: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<OsString, OsString>,
    pub cols: u16,
    pub rows: u16,
}

/// Starts `program` on a new PTY. A missing program or directory is a typed error, and nothing is
/// left behind (the PTY is closed on every error path by drop).
pub(crate) fn spawn(program: &Program<'_>) -> Result<Spawned> {
    if !program.cwd.is_dir() {
        return Err(Error::WorkdirNotFound(program.cwd.to_path_buf()));
    }
    let io_err = |context: &str, source: io::Error| Error::Io {
        context: format!("{context} for {}", program.command),
        source,
    };
    let (master, slave) =
        open(program.cols, program.rows).map_err(|e| io_err("opening a pty", e))?;
    let stdin = slave
        .try_clone()
        .map_err(|e| io_err("duplicating the pty slave", e))?;
    let stdout = slave
        .try_clone()
        .map_err(|e| io_err("duplicating the pty slave", e))?;
    let mut cmd = Command::new(program.command);
    cmd.args(program.args)
        .current_dir(program.cwd)
        .env_clear()
        .envs(program.env)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(slave));
    // SAFETY: the closure only makes async-signal-safe system calls (signal, setsid, ioctl) and
    // allocates nothing, as required between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Ignored signals survive `exec`. A manager started from a script's background job or
            // under `nohup` ignores SIGINT/SIGQUIT/SIGHUP, and without this reset its agents would
            // too: Ctrl-C typed into a session would never interrupt anything. Terminals give
            // their programs default dispositions; so do we.
            for sig in RESET_SIGNALS {
                libc::signal(sig, libc::SIG_DFL);
            }
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            // fd 0 is the slave (std dup2'd it before running this closure).
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => Error::ProgramNotFound {
            program: program.command.to_owned(),
            source,
        },
        _ => Error::Spawn {
            program: program.command.to_owned(),
            source,
        },
    })?;
    // `cmd` (and with it the parent's copies of the slave) is dropped here, so the master sees
    // end-of-file (EIO) once the program's side is closed.
    drop(cmd);
    let pidfd = pidfd_open(child.id());
    Ok(Spawned {
        child,
        master,
        pidfd,
    })
}

/// A pidfd for `pid` (readable once the process exits), or `None` where unsupported.
#[cfg(target_os = "linux")]
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is
    // passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it. pidfds are
    // created close-on-exec.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(not(target_os = "linux"))]
fn pidfd_open(_pid: u32) -> Option<OwnedFd> {
    None
}

/// Sends `signal` to the process group `pgid`.
///
/// Only call while the group leader (whose pid is `pgid`) is not yet reaped: an unreaped leader
/// keeps the pid reserved, so the signal cannot reach a recycled pid.
pub(crate) fn kill_group(pgid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// Sends `signal` to every process whose session id is `sid` (jobs that left the group but stayed
/// in the session). Same precondition as [`kill_group`]: the session leader is unreaped.
#[cfg(target_os = "linux")]
pub(crate) fn kill_session(sid: u32, signal: libc::c_int) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    let sid = nix::unistd::Pid::from_raw(sid as libc::pid_t);
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // getsid(2) is one system call; reading `/proc/<pid>/stat` instead made the kernel
        // format every field of every process on the machine for each stopped session.
        if nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(pid))) == Ok(sid) {
            // SAFETY: kill(2) on a pid read from /proc; no memory is passed.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn kill_session(_sid: u32, _signal: libc::c_int) {}

/// Whether `pid` (our unreaped child) has exited, without reaping it (`waitid` with `WNOWAIT`).
/// Used where no pidfd is available.
pub(crate) fn has_exited(pid: u32) -> bool {
    // SAFETY: `info` is zeroed plain data that waitid fills; `pid` is our own child.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        rc == 0 && info.si_pid() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A background job of a shell with job control has its own process group: signalling the
    /// group misses it, signalling the session does not.
    #[test]
    #[cfg(target_os = "linux")]
    fn kill_session_reaches_a_job_outside_the_group() {
        use std::io::Read;
        use std::time::{Duration, Instant};
        let env: BTreeMap<OsString, OsString> = [("PATH".into(), "/usr/bin:/bin".into())].into();
        let args = [
            "-c".to_owned(),
            "set -m; sleep 1000 & echo job=$!; wait".to_owned(),
        ];
        let mut spawned = spawn(&Program {
            command: "/bin/bash",
            args: &args,
            cwd: Path::new("/"),
            env: &env,
            cols: 80,
            rows: 24,
        })
        .unwrap();
        let leader = spawned.child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut out, mut buf) = (String::new(), [0u8; 256]);
        let job: u32 = loop {
            if let Some(pid) = out
                .split("job=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .filter(|_| out.ends_with('\n'))
                .and_then(|p| p.parse().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "no job pid in {out:?}");
            match spawned.master.read(&mut buf) {
                Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let job_pid = nix::unistd::Pid::from_raw(job as libc::pid_t);
        let group = nix::unistd::getpgid(Some(job_pid)).unwrap();
        assert_ne!(group.as_raw() as u32, leader, "the job has its own group");
        assert_eq!(
            nix::unistd::getsid(Some(job_pid)).unwrap().as_raw() as u32,
            leader
        );
        kill_session(leader, libc::SIGKILL);
        let gone = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true)
        };
        let kill_by = Instant::now() + Duration::from_secs(10);
        while !gone(job) && Instant::now() < kill_by {
            std::thread::sleep(Duration::from_millis(10));
        }
        let survived = !gone(job);
        if survived {
            // SAFETY: kill(2) on the job's pid; no memory is passed.
            unsafe { libc::kill(job as libc::pid_t, libc::SIGKILL) };
        }
        kill_group(leader, libc::SIGKILL);
        let _ = spawned.child.wait();
        assert!(!survived, "the job survived kill_session");
    }

    #[test]
    fn open_gives_sized_nonblocking_master() {
        let (master, _slave) = open(90, 33).unwrap();
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: valid fd and a properly laid out winsize for TIOCGWINSZ to fill.
        let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!(rc, 0);
        assert_eq!((ws.ws_col, ws.ws_row), (90, 33));
        let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert!(OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK));
    }
}
