//! Opening a pseudo-terminal and starting a program in it. The only module (with its `posix`
//! submodule) with `unsafe`.
//!
//! The child leads a new session whose controlling terminal is the PTY slave, with the inherited
//! signal dispositions that a terminal's programs expect reset to default and an empty signal
//! mask. On Linux with glibc it is started with `posix_spawn` (`POSIX_SPAWN_SETSID`, then the
//! slave opened by path, which makes it the controlling terminal of the new session): glibc
//! starts the child with `CLONE_VM | CLONE_VFORK`, so the cost does not grow with the manager's
//! memory, where a `fork` copies the page tables of every session's screen (0.9 ms with no
//! sessions, 2.9 ms with 175). Elsewhere it is `std::process::Command` with a `pre_exec` that
//! calls `setsid` and `TIOCSCTTY` (after `fork` only async-signal-safe calls are allowed).
//! The master is non-blocking and close-on-exec from the moment it is opened, so no other child
//! spawned concurrently inherits it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::{Error, Result};

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod posix;

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

/// A started program, reaped by us (`waitpid`) however it was started.
#[derive(Debug)]
pub(crate) struct Child {
    pid: u32,
}

impl Child {
    /// The program's pid (also its process group and session id).
    pub(crate) fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for the program to exit and reaps it. Call once.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: `status` is a valid out-pointer for the duration of the call; `pid` is our
            // own unreaped child.
            let rc = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, 0) };
            if rc != -1 {
                return Ok(ExitStatus::from_raw(status));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// A started program and the master side of its terminal.
pub(crate) struct Spawned {
    pub child: Child,
    pub master: File,
    /// A pidfd for the child (Linux ≥ 5.3); `None` means exit is found by a `try_wait` tick.
    pub pidfd: Option<OwnedFd>,
}

/// A PTY pair: the master (non-blocking) and the slave with its path, both close-on-exec.
pub(crate) struct Pair {
    pub master: File,
    pub slave: OwnedFd,
    pub slave_path: String,
}

/// Opens a PTY pair of `cols` × `rows`.
pub(crate) fn open(cols: u16, rows: u16) -> io::Result<Pair> {
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
    Ok(Pair {
        master,
        slave,
        slave_path,
    })
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

/// How the child is started (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// `posix_spawn` with `POSIX_SPAWN_SETSID` (Linux with glibc).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    Spawn,
    /// `fork` and `exec` through `std::process::Command` with a `pre_exec`.
    // Only the default elsewhere; the tests run both ways everywhere.
    #[cfg_attr(all(target_os = "linux", target_env = "gnu"), allow(dead_code))]
    Fork,
}

impl Start {
    /// The way used on this platform.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pub(crate) const DEFAULT: Start = Start::Spawn;
    /// The way used on this platform.
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub(crate) const DEFAULT: Start = Start::Fork;
}

/// Starts `program` on a new PTY. A missing program or directory is a typed error, and nothing is
/// left behind (the PTY is closed on every error path by drop).
pub(crate) fn spawn(program: &Program<'_>) -> Result<Spawned> {
    spawn_with(program, Start::DEFAULT)
}

/// [`spawn`], started the given way.
pub(crate) fn spawn_with(program: &Program<'_>, start: Start) -> Result<Spawned> {
    if !program.cwd.is_dir() {
        return Err(Error::WorkdirNotFound(program.cwd.to_path_buf()));
    }
    let pair = open(program.cols, program.rows).map_err(|e| Error::Io {
        context: format!("opening a pty for {}", program.command),
        source: e,
    })?;
    let started = match start {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        Start::Spawn => posix::start(program, &pair.slave_path),
        Start::Fork => start_forked(program, &pair.slave),
    };
    let pid = started.map_err(|source| {
        // A directory removed since the check fails the spawn with ENOENT too.
        if !program.cwd.is_dir() {
            return Error::WorkdirNotFound(program.cwd.to_path_buf());
        }
        match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => Error::ProgramNotFound {
                program: program.command.to_owned(),
                source,
            },
            _ => Error::Spawn {
                program: program.command.to_owned(),
                source,
            },
        }
    })?;
    // The parent's slave is closed here, so the master sees end-of-file (EIO) once the program's
    // side is closed.
    drop(pair.slave);
    Ok(Spawned {
        child: Child { pid },
        master: pair.master,
        pidfd: pidfd_open(pid),
    })
}

/// `fork` + `exec` through `Command`; returns once the program is running (`exec` succeeded).
fn start_forked(program: &Program<'_>, slave: &OwnedFd) -> io::Result<u32> {
    let stdin = slave.try_clone()?;
    let stdout = slave.try_clone()?;
    let stderr = slave.try_clone()?;
    let mut cmd = Command::new(program.command);
    cmd.args(program.args)
        .current_dir(program.cwd)
        .env_clear()
        .envs(program.env)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
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
    // We reap the child ourselves (`Child::wait`); std's handle only owns the pid.
    Ok(cmd.spawn()?.id())
}

/// Descriptors the process's descriptor table is grown to hold up front (or the soft
/// `RLIMIT_NOFILE`, if lower); see [`reserve_fd_table`].
const FD_TABLE_RESERVE: u64 = 1024;

/// Grows this process's descriptor table to [`FD_TABLE_RESERVE`] slots now, so spawns do not.
///
/// Each session holds about two descriptors (its master and its pidfd). When the kernel grows
/// the table of a process with several threads (at 64, 128, 256, 512 open descriptors), it waits
/// for an RCU grace period, and the spawn that opened the next descriptor stalled for 7-15 ms at
/// the 125th session (the sessions benchmark). Growing it once, when the manager starts, moves
/// that wait here. The table never shrinks, and 1024 slots take about 8 kB.
pub(crate) fn reserve_fd_table() {
    let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    else {
        return;
    };
    let slots = soft.min(FD_TABLE_RESERVE);
    if slots <= 64 {
        return;
    }
    let Ok(probe) = std::fs::File::open("/dev/null") else {
        return;
    };
    // SAFETY: F_DUPFD_CLOEXEC duplicates an open descriptor we own onto the lowest free slot at
    // or above the given one; the duplicate is closed right away and nothing else sees it.
    unsafe {
        let high = libc::fcntl(
            probe.as_raw_fd(),
            libc::F_DUPFD_CLOEXEC,
            (slots - 1) as libc::c_int,
        );
        if high >= 0 {
            libc::close(high);
        }
    }
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
        // Reaped (no entry left) or a zombie.
        let gone = |pid: u32| stat(pid).is_none_or(|f| f[0] == "Z");
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

    /// Every way of starting the platform has, the default first.
    fn starts() -> Vec<Start> {
        let mut all = vec![Start::DEFAULT];
        if Start::DEFAULT != Start::Fork {
            all.push(Start::Fork);
        }
        all
    }

    /// Fields of `/proc/<pid>/stat` after the command name (the first is the state); `None`
    /// once there is no such process.
    fn stat(pid: u32) -> Option<Vec<String>> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = s.rsplit(')').next()?;
        Some(rest.split_whitespace().map(str::to_owned).collect())
    }

    /// The value of a `/proc/<pid>/status` line (`SigIgn:`, `FDSize:`, ...); `pid` may be `self`.
    fn status_field(pid: &str, key: &str) -> String {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = s.lines().find_map(|l| l.strip_prefix(key)).unwrap();
        line.trim().to_owned()
    }

    /// A signal mask line of `/proc/<pid>/status` (`SigIgn:`, `SigBlk:`).
    fn status_mask(pid: u32, key: &str) -> u64 {
        u64::from_str_radix(&status_field(&pid.to_string(), key), 16).unwrap()
    }

    /// `/proc/<pid>/cmdline`, once it is set: the spawn returns when `exec` has replaced the
    /// memory, which can be before the new program's arguments are in place.
    fn cmdline(pid: u32) -> Vec<u8> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
            if !argv.is_empty() || std::time::Instant::now() > deadline {
                return argv;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn finish(mut spawned: Spawned) -> ExitStatus {
        kill_group(spawned.child.id(), libc::SIGKILL);
        spawned.child.wait().unwrap()
    }

    /// Both ways give the same child: leader of a new session and of its group, the PTY as its
    /// controlling terminal with it in the foreground, no signal ignored or blocked (the test
    /// harness ignores SIGPIPE), the working directory and the argv as given.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_child_leads_a_session_on_its_terminal() {
        let env: BTreeMap<OsString, OsString> = [("PATH".into(), "/usr/bin:/bin".into())].into();
        let dir = std::env::temp_dir();
        let args = ["30".to_owned()];
        for start in starts() {
            let program = Program {
                command: "sleep",
                args: &args,
                cwd: &dir,
                env: &env,
                cols: 80,
                rows: 24,
            };
            let spawned = spawn_with(&program, start).unwrap();
            let pid = spawned.child.id();
            let f = stat(pid).unwrap();
            assert_eq!(f[2], pid.to_string(), "{start:?}: process group");
            assert_eq!(f[3], pid.to_string(), "{start:?}: session");
            assert_ne!(f[4], "0", "{start:?}: no controlling terminal");
            assert_eq!(f[5], pid.to_string(), "{start:?}: foreground group");
            // The standard signals are never ignored. glibc's internal ones (32, 33) may come
            // ignored from the manager's own parent (e.g. a `posix_spawn` by cargo), and only
            // `posix_spawn` can reset them.
            let ignored = status_mask(pid, "SigIgn:");
            assert_eq!(ignored & 0x7fff_ffff, 0, "{start:?}: ignored signals");
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            if start == Start::Spawn {
                assert_eq!(ignored, 0, "{start:?}: ignored signals");
            }
            assert_eq!(status_mask(pid, "SigBlk:"), 0, "{start:?}: blocked signals");
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
            assert_eq!(cwd, dir.canonicalize().unwrap(), "{start:?}: cwd");
            let argv = cmdline(pid);
            assert_eq!(argv, b"sleep\x0030\x00", "{start:?}: argv");
            let env_seen = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
            assert_eq!(
                env_seen, b"PATH=/usr/bin:/bin\x00",
                "{start:?}: environment"
            );
            assert_eq!(finish(spawned).signal(), Some(libc::SIGKILL));
        }
    }

    /// A bare name is looked up in the program's own PATH (not the manager's), in order, skipping
    /// files that are not executable, relative entries from the working directory; a name with a
    /// slash is taken relative to the working directory; a file without `#!` runs with /bin/sh;
    /// a miss is `ProgramNotFound`.
    #[test]
    #[cfg(target_os = "linux")]
    fn programs_are_found_in_the_programs_path() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("pty-path-{}", std::process::id()));
        let (first, second) = (root.join("first"), root.join("second"));
        for d in [&first, &second] {
            std::fs::create_dir_all(d).unwrap();
        }
        let script = |path: &Path, mode: u32| {
            // A builtin that waits (nothing else is on this PATH), and the script's own command
            // line stays to be read below.
            std::fs::write(path, "#!/bin/sh\nread line\nexit 3\n").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        script(&first.join("tool"), 0o644); // not executable: skipped
        script(&second.join("tool"), 0o755);
        script(&root.join("local"), 0o755);
        // No `#!` line: run with /bin/sh, as execvp does.
        std::fs::write(root.join("plain"), "read line\nexit 3\n").unwrap();
        std::fs::set_permissions(root.join("plain"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        // A relative entry is relative to the program's working directory.
        let path = format!("{}:second", first.display());
        let env: BTreeMap<OsString, OsString> = [("PATH".into(), path.into())].into();
        for start in starts() {
            let program = |command| Program {
                command,
                args: &[],
                cwd: &root,
                env: &env,
                cols: 80,
                rows: 24,
            };
            for (command, expect) in [
                ("tool", second.join("tool")),
                ("./local", root.join("local")),
                ("./plain", root.join("plain")),
            ] {
                let spawned = spawn_with(&program(command), start).unwrap();
                let argv = cmdline(spawned.child.id());
                let script_arg = argv.split(|b| *b == 0).nth(1).unwrap().to_vec();
                let script_arg = std::path::PathBuf::from(String::from_utf8(script_arg).unwrap());
                // The kernel runs the script as `/bin/sh <path>`.
                assert_eq!(
                    root.join(&script_arg).canonicalize().unwrap(),
                    expect.canonicalize().unwrap(),
                    "{start:?}: {command}"
                );
                finish(spawned);
            }
            // `sleep` is on the manager's PATH but not on the program's.
            for command in ["sleep", "missing-tool", "./missing"] {
                match spawn_with(&program(command), start) {
                    Err(Error::ProgramNotFound { program, .. }) => assert_eq!(program, command),
                    other => panic!("{start:?}: {command}: {:?}", other.err()),
                }
            }
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// The table holds the reserved slots afterwards (`FDSize` in `/proc/self/status`).
    #[test]
    #[cfg(target_os = "linux")]
    fn the_descriptor_table_is_grown_up_front() {
        reserve_fd_table();
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let size: u64 = status_field("self", "FDSize:").parse().unwrap();
        assert!(size >= soft.min(FD_TABLE_RESERVE), "FDSize {size}");
    }

    #[test]
    fn open_gives_sized_nonblocking_master() {
        let master = open(90, 33).unwrap().master;
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
