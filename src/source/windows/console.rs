//! Ctrl-C, Ctrl-Break and console close on Windows, through
//! `SetConsoleCtrlHandler`.
//!
//! Not the C runtime's `signal()`: signal-hook reads the previous handler
//! with `signal(sig, SIG_GET)`, and Wine 8's C runtime stores that value as
//! the handler, so the next Ctrl-C jumps to address 2. The console handler
//! runs on a thread of its own, so it may block: for a console close,
//! Windows ends the process when the handler returns, so it waits (at most
//! [`CLOSE_GRACE`]) until the run has written its `stop` line.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use windows_sys::Win32::Foundation::BOOL;
use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
    SetConsoleCtrlHandler,
};

/// Windows gives a close handler 5 s before it ends the process anyway.
pub const CLOSE_GRACE: Duration = Duration::from_millis(4500);

struct State {
    stop: Arc<AtomicBool>,
    finished: Mutex<bool>,
    cv: Condvar,
}

static STATE: OnceLock<State> = OnceLock::new();

/// What the handler does for one control event.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Ask the run to stop; the process goes on to write its `stop` line.
    Stop,
    /// A second Ctrl-C while stopping: end at once, in case a flush hangs.
    Exit,
    /// Ask the run to stop and hold the process until it has.
    StopAndWait,
    /// Not ours: let the next handler (the default: exit) have it.
    Pass,
}

fn action(ctrl: u32, already_stopping: bool) -> Action {
    match ctrl {
        CTRL_C_EVENT | CTRL_BREAK_EVENT if already_stopping => Action::Exit,
        CTRL_C_EVENT | CTRL_BREAK_EVENT => Action::Stop,
        CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => Action::StopAndWait,
        _ => Action::Pass,
    }
}

unsafe extern "system" fn handler(ctrl: u32) -> BOOL {
    let Some(s) = STATE.get() else {
        return 0;
    };
    match action(ctrl, s.stop.load(Ordering::SeqCst)) {
        Action::Stop => {
            s.stop.store(true, Ordering::SeqCst);
            1
        }
        // 130, as a shell reports a second SIGINT on Linux.
        Action::Exit => std::process::exit(130),
        Action::StopAndWait => {
            s.stop.store(true, Ordering::SeqCst);
            let done = s.finished.lock().unwrap_or_else(|e| e.into_inner());
            let _ =
                s.cv.wait_timeout_while(done, CLOSE_GRACE, |finished| !*finished);
            1
        }
        Action::Pass => 0,
    }
}

/// Sets `stop` on Ctrl-C, Ctrl-Break, console close, logoff or shutdown.
/// Installed once per process; later calls keep the first flag.
pub fn install(stop: Arc<AtomicBool>) -> io::Result<()> {
    if STATE
        .set(State {
            stop,
            finished: Mutex::new(false),
            cv: Condvar::new(),
        })
        .is_err()
    {
        return Ok(());
    }
    // SAFETY: `handler` is a valid PHANDLER_ROUTINE for the process's life.
    if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The run has written its `stop` line: a waiting close handler may let
/// Windows end the process.
pub fn finished() {
    if let Some(s) = STATE.get() {
        *s.finished.lock().unwrap_or_else(|e| e.into_inner()) = true;
        s.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions() {
        assert_eq!(action(CTRL_C_EVENT, false), Action::Stop);
        assert_eq!(action(CTRL_BREAK_EVENT, false), Action::Stop);
        assert_eq!(action(CTRL_C_EVENT, true), Action::Exit);
        assert_eq!(action(CTRL_BREAK_EVENT, true), Action::Exit);
        for ctrl in [CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT] {
            assert_eq!(action(ctrl, false), Action::StopAndWait);
            assert_eq!(action(ctrl, true), Action::StopAndWait);
        }
        assert_eq!(action(99, false), Action::Pass);
    }
}
