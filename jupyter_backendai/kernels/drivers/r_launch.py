# SPDX-License-Identifier: LGPL-3.0-or-later
"""Starts R for the R driver and stays its parent to count interrupts.

R ignores SIGINT while system()/system2() wait for a command (as system(3) does), so an
interrupt that kills the command would not stop the cell. This process shares R's process
group, gets the same SIGINT, and writes a byte to a pipe that R reads (BACKENDAI_R_INTERRUPT_FD)
when such a call returns. Usage: r_launch.py R-ARGV...
"""

import os
import signal
import sys


def main() -> None:
    r, w = os.pipe()
    os.set_blocking(w, False)
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.environ["BACKENDAI_R_INTERRUPT_FD"] = str(r)
        os.set_inheritable(r, True)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(sys.argv[1], sys.argv[1:])
    os.close(r)
    # Only R holds the wrapper's channel: when R dies the wrapper sees the pipes close.
    for name in ("BACKENDAI_DRIVER_CMD_FD", "BACKENDAI_DRIVER_EVENT_FD"):
        try:
            os.close(int(os.environ[name]))
        except (KeyError, ValueError, OSError):
            pass
    os.closerange(3, w)  # nothing else of ours leaks into the wait

    def on_sigint(_sig: int, _frame: object) -> None:
        try:
            os.write(w, b"!")
        except OSError:
            pass  # the pipe is full: R has plenty to read already

    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            sys.exit(1)
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
