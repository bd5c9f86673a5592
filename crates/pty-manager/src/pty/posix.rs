//! Starting the program with `posix_spawn` (Linux with glibc; see the parent module).
//!
//! glibc runs the child on the caller's memory (`CLONE_VM | CLONE_VFORK`) until it has exec'd,
//! in this order: signal dispositions, `setsid`, the file actions, the signal mask, `exec`. So
//! the child is a new session's leader when it opens the slave, which makes the slave its
//! controlling terminal.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Program, RESET_SIGNALS};

/// The file to `exec` for `command`, looked up like `execvp` does but in the program's own
/// `PATH` (the parent's `PATH` may differ); `None` when nothing executable is found. A command
/// with a `/` is used as it is. A relative result is relative to the program's working directory
/// (the child changes into it before `exec`).
fn resolve(program: &Program<'_>) -> Option<PathBuf> {
    let command = program.command;
    if command.is_empty() {
        return None;
    }
    if command.contains('/') {
        return Some(PathBuf::from(command));
    }
    let search = program
        .env
        .get(std::ffi::OsStr::new("PATH"))
        .map(|p| p.as_bytes())
        .unwrap_or(b"/bin:/usr/bin");
    search.split(|b| *b == b':').find_map(|dir| {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let file = Path::new(std::ffi::OsStr::from_bytes(dir)).join(command);
        // Checked from here: the working directory as the parent sees it.
        let here = program.cwd.join(&file);
        let c = CString::new(here.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        let executable = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
        (executable && here.is_file()).then_some(file)
    })
}

/// A C string of `bytes`, or an `InvalidInput` error naming `what` when it holds a NUL.
fn c_string(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// `posix_spawn` (see the module docs); returns once the program is running (`exec` succeeded).
pub(super) fn start(program: &Program<'_>, slave_path: &str) -> io::Result<u32> {
    use std::ptr;
    let Some(path) = resolve(program) else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no executable file of that name in the program's PATH",
        ));
    };
    let path = c_string(path.as_os_str().as_bytes(), "the program path")?;
    let slave_path = c_string(slave_path.as_bytes(), "the pty path")?;
    let cwd = c_string(program.cwd.as_os_str().as_bytes(), "the working directory")?;
    let argv = std::iter::once(program.command)
        .chain(program.args.iter().map(String::as_str))
        .map(|a| c_string(a.as_bytes(), "an argument"))
        .collect::<io::Result<Vec<_>>>()?;
    let envp = program
        .env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            c_string(&kv, "an environment variable")
        })
        .collect::<io::Result<Vec<_>>>()?;
    let pointers = |strings: &[CString]| -> Vec<*mut libc::c_char> {
        strings
            .iter()
            .map(|s| s.as_ptr().cast_mut())
            .chain(std::iter::once(ptr::null_mut()))
            .collect()
    };
    let (argv_p, envp_p) = (pointers(&argv), pointers(&envp));
    let check = |rc: libc::c_int| match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    };
    let mut actions = Owned::new(
        libc::posix_spawn_file_actions_init,
        libc::posix_spawn_file_actions_destroy,
    )?;
    let mut attr = Owned::new(libc::posix_spawnattr_init, libc::posix_spawnattr_destroy)?;
    let a = &mut actions.value;
    // SAFETY: `actions`, `attr` and the signal sets are initialised above or here and live until
    // the end of the function; every pointer passed is a NUL-terminated C string (or a
    // NULL-terminated array of them) that outlives the `posix_spawn` call, which copies nothing
    // it needs after returning (glibc's child has exec'd or failed by then: CLONE_VFORK).
    unsafe {
        // The new session's leader opening a terminal without O_NOCTTY makes it the session's
        // controlling terminal; glibc runs SETSID before the file actions.
        check(libc::posix_spawn_file_actions_addopen(
            a,
            0,
            slave_path.as_ptr(),
            libc::O_RDWR,
            0,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(a, 0, 1))?;
        check(libc::posix_spawn_file_actions_adddup2(a, 0, 2))?;
        check(libc::posix_spawn_file_actions_addchdir_np(a, cwd.as_ptr()))?;
        let mut defaults: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut defaults);
        for sig in RESET_SIGNALS {
            libc::sigaddset(&mut defaults, sig);
        }
        // glibc's child sets its internal signals (32 up to SIGRTMIN) to SIG_IGN unless they are
        // in this set, and an ignored signal survives `exec`; a terminal's programs start with
        // none ignored. `sigaddset` refuses those signals, so their bits are set directly.
        for sig in 32..libc::SIGRTMIN() {
            add_signal_bit(&mut defaults, sig);
        }
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        check(libc::posix_spawnattr_setsigdefault(
            &mut attr.value,
            &defaults,
        ))?;
        check(libc::posix_spawnattr_setsigmask(&mut attr.value, &mask))?;
        let flags = libc::POSIX_SPAWN_SETSID as libc::c_int
            | libc::POSIX_SPAWN_SETSIGDEF
            | libc::POSIX_SPAWN_SETSIGMASK;
        check(libc::posix_spawnattr_setflags(
            &mut attr.value,
            flags as libc::c_short,
        ))?;
        let spawn = |file: &CStr, argv: &[*mut libc::c_char]| {
            let mut pid: libc::pid_t = 0;
            let rc = libc::posix_spawn(
                &mut pid,
                file.as_ptr(),
                &actions.value,
                &attr.value,
                argv.as_ptr(),
                envp_p.as_ptr(),
            );
            check(rc).map(|()| pid as u32)
        };
        match spawn(&path, &argv_p) {
            // A file without a `#!` line: `execvp` runs it with `/bin/sh`, and so do we.
            Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {
                let sh = c"/bin/sh";
                let sh_argv: Vec<*mut libc::c_char> =
                    [sh.as_ptr().cast_mut(), path.as_ptr().cast_mut()]
                        .into_iter()
                        .chain(argv_p[1..].iter().copied())
                        .collect();
                spawn(sh, &sh_argv)
            }
            started => started,
        }
    }
}

/// Adds `sig` to `set` by its bit (glibc's `sigset_t` is a bit mask with signal `n` at bit `n - 1`).
fn add_signal_bit(set: &mut libc::sigset_t, sig: libc::c_int) {
    const WORD: usize = std::mem::size_of::<libc::c_ulong>();
    const _: () = assert!(std::mem::size_of::<libc::sigset_t>().is_multiple_of(WORD));
    let bit = (sig - 1) as usize;
    if bit >= std::mem::size_of::<libc::sigset_t>() * 8 {
        return;
    }
    let words = (set as *mut libc::sigset_t).cast::<libc::c_ulong>();
    // SAFETY: `sigset_t` is plain data made of whole `c_ulong` words (checked above) and the word
    // index is within it.
    unsafe { *words.add(bit / (WORD * 8)) |= 1 << (bit % (WORD * 8)) };
}

/// A glibc spawn object (`posix_spawn_file_actions_t`, `posix_spawnattr_t`), initialised by its
/// `init` function and destroyed by its `destroy` function on drop.
struct Owned<T> {
    value: T,
    destroy: unsafe extern "C" fn(*mut T) -> libc::c_int,
}

impl<T> Owned<T> {
    fn new(
        init: unsafe extern "C" fn(*mut T) -> libc::c_int,
        destroy: unsafe extern "C" fn(*mut T) -> libc::c_int,
    ) -> io::Result<Self> {
        // SAFETY: both types are plain C structs; zeroed storage is what `init` expects to
        // initialise, and an initialised one holds no pointer into itself, so it may move.
        let mut value = unsafe { std::mem::zeroed() };
        // SAFETY: `value` is valid writable storage of the type `init` takes.
        match unsafe { init(&mut value) } {
            0 => Ok(Owned { value, destroy }),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here.
        unsafe { (self.destroy)(&mut self.value) };
    }
}
