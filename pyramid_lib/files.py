"""Files written so that a crash mid-write never replaces a good file, and loaded without pickle."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from .errors import CheckpointError, ConfigError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open(path, "w") would give; mkstemp alone gives 0600


def temp_files(path) -> list[Path]:
    """Temporary files that a writer of `path` killed mid-write (SIGKILL, power cut) left behind."""
    path, prefix = Path(path), f".{Path(path).name}."
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp"))


def remove_temp_files(path) -> None:
    """Delete what `temp_files(path)` lists (the file `path` itself is never touched)."""
    for tmp in temp_files(path):
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.filename is None:  # a failed write() names no file: name it
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    try:  # make the rename itself durable (best effort: not every file system allows it)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_write_csv(path, frame) -> None:
    """A pandas DataFrame as CSV, atomically."""
    atomic_write_text(path, frame.to_csv(index=False))


def atomic_save_figure(path, fig, **kwargs) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path, obj) -> None:
    """torch.save into memory, then an atomic write: a kill mid-save leaves the old file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); delete it or restore it from a backup") from e


FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def os_error_message(e: OSError) -> str:
    """One line for a file-system fault: the file, what happened, what to do.  The CLI prints it for
    any OSError a command raises; writers never replace a good file with a partial one (above), so
    the advice can say that earlier files were kept."""
    where = f"{e.filename}: " if e.filename else ""
    what = e.strerror or str(e) or type(e).__name__
    if e.errno in FULL:
        todo = ("the disk is full or a file-size limit is set (ulimit -f): free space or lift the limit and run "
                "the command again; files written before were kept as they were")
    elif e.errno in READ_ONLY:
        todo = ("you cannot write there (read-only folder or file): choose a folder you can write, or copy the "
                "run folder to one (cp -r) and use the copy")
    else:
        todo = "check the path and the disk, then run the command again"
    return f"{where}{what}; {todo}"


def check_writable(folder, what: str) -> None:
    """Raise ConfigError, before any work starts, when files cannot be created in `folder` (the
    nearest existing folder above it when it does not exist yet).  `what` names it in the message,
    e.g. "--out results/x".  Tries to create a file, so read-only mounts, permission bits and ACLs
    are all caught the way the real writes would meet them."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".pyramid-ad-probe.", suffix=".tmp", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ConfigError(f"{what}: cannot write in {probe} ({e.strerror or e}); choose a folder you can write, or "
                          "copy the run folder to one (cp -r) and use the copy. Nothing was changed") from None


@contextlib.contextmanager
def replacing_folder(out):
    """Write a whole output folder or nothing: yields a new temporary folder beside `out`; when the
    block ends normally it takes `out`'s place (the earlier `out`, if any, is deleted), when it
    raises it is deleted and `out` is left as it was.  The caller decides, inside the block, whether
    the new content is good enough to replace the old (raise to keep the old)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    old = None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", suffix=".tmp", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        if old is not None and (old / out.name).exists() and not out.exists():
            os.replace(old / out.name, out)  # the swap failed half-way: put the earlier folder back
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def uninterrupted():
    """Hold off Ctrl-C (SIGINT) and SIGTERM while the block writes files that must agree with each
    other (scores.csv and metrics.csv): a signal that arrives meanwhile is delivered when the block
    ends, so an interruption leaves the earlier set or the new one, never a mixture.  Python runs
    signal handlers in the main thread whichever thread the system hands the signal to (torch's and
    other libraries' threads do not block it), so the block swaps the handlers rather than masking
    signals; a no-op outside the main thread, where handlers cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if caught:
            signal.raise_signal(caught[0])


@contextlib.contextmanager
def stops_cleanly():
    """Make SIGTERM stop the block as Ctrl-C does (KeyboardInterrupt), and never lose either.

    Python raises a signal's KeyboardInterrupt in whatever Python code runs when it is handled; when
    that is a weakref or garbage-collector callback, Python prints "Exception ignored" and the
    interrupt is lost (the command ran on and exited 0).  Inside the block such a swallowed
    interrupt is not printed but sent again a moment later, from a helper thread to the main thread
    (which it wakes from a wait), so it lands in the command's own code; one still on its way when the
    block ends is raised there.  Main thread only; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise KeyboardInterrupt

    def resend():
        if hasattr(signal, "pthread_kill"):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        else:  # Windows: no signal to one thread; the handler runs when the main thread next runs Python
            signal.raise_signal(signal.SIGINT)

    resends: list[threading.Timer] = []

    def unraisable(u):
        if u.exc_type is not None and issubclass(u.exc_type, KeyboardInterrupt):
            resends.append(threading.Timer(0.01, resend))
            resends[-1].start()
        else:
            previous_hook(u)

    previous_term, previous_hook = signal.signal(signal.SIGTERM, terminate), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous_term if previous_term is not None else signal.SIG_DFL)
        on_its_way = [t for t in resends if not t.finished.is_set()]
        for t in resends:
            t.cancel()
        if on_its_way:  # not after the command has returned, outside its handling
            raise KeyboardInterrupt


def safe_torch_load(path) -> dict:
    """Load a checkpoint with `weights_only=True`: tensors, numbers, strings, lists and dicts only.

    A file carrying any other pickled object (a crafted payload) is refused before anything in
    it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there; train first or check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for payloads, RuntimeError/EOFError/KeyError for damage
        msg = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
        if "Weights only load failed" in msg or "weights_only" in msg or "Unsupported" in msg:
            found = re.search(r"GLOBAL ([\w.]+)", msg)
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(f"{path}: refused to load, unsafe: it holds a pickled object that is not plain "
                                  f"data{what}; nothing in it was run. pyramid-ad checkpoints hold only tensors, "
                                  "numbers and strings: this file is not one or was tampered with. Use only "
                                  "checkpoints written by pyramid-ad from a source you trust.") from e
        first = (msg.strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: refused to load, damaged or not a checkpoint ({type(e).__name__}: {first}); "
                              "delete it to retrain, or restore it from a backup") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a pyramid-ad checkpoint (a {type(obj).__name__}, expected a dict)")
    return obj


def holder_file(lock_path) -> Path:
    """Where the holder of the lock `lock_path` records itself: `<lock>.holder.json`."""
    return Path(str(lock_path) + ".holder.json")


def record_holder(lock_path, label: str = "") -> None:
    """Record this process as the holder of `lock_path` (pid, host, user, `label`, command line,
    since when), for `describe_holder`; call it once the lock is held.  A record that cannot be
    written (a full disk) is skipped: it only informs, and the write that matters fails next."""
    try:
        atomic_write_json(holder_file(lock_path), {
            "pid": os.getpid(), "host": socket.gethostname(), "user": _user(), "label": label,
            "command": " ".join(sys.argv)[:300], "since": datetime.now().astimezone().isoformat(timespec="seconds")})
    except OSError:
        pass


def lock_holder(lock_path) -> dict | None:
    """Who holds the lock `lock_path` (`announced_lock`'s record beside it: pid, host, user,
    label, command, since), or None when no holder has said."""
    try:
        rec = json.loads(holder_file(lock_path).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def describe_holder(rec: dict | None) -> str:
    """One phrase naming a lock's holder from `lock_holder`'s record, for a waiting message."""
    if not rec:
        return "a process that has not said who it is"
    who = f"{rec.get('label') or rec.get('command') or 'a process'} (pid {rec.get('pid')} on {rec.get('host')}"
    return who + (f", user {rec['user']}" if rec.get("user") else "") + f", since {rec.get('since')})"


def _user() -> str | None:
    try:
        import getpass
        return getpass.getuser()
    except Exception:  # no user name to be had (a container without one): the pid and host still say who
        return None


@contextlib.contextmanager
def announced_lock(lock_path, what: str, label: str = "", say=None, every: float = 30.0):
    """Hold the file lock `lock_path` (filelock) for `what`, saying whom we wait for.

    The holder records itself beside the lock (`<lock>.holder.json`: pid, host, user, `label`,
    command line, since when), removed on release.  A caller that finds the lock held says once,
    then every `every` seconds while it waits, `what` it waits for and who holds it, instead of
    waiting silently (`say`: a function of one line, default the log).  Waits without limit (a
    notebook's runs take turns)."""
    say = say or logging.getLogger(__name__).warning
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        t0 = time.monotonic()
        while True:
            say(f"waiting for {what}: the lock {lock_path} is held by {describe_holder(lock_holder(lock_path))}; "
                f"waited {time.monotonic() - t0:.0f} s so far")
            try:
                lock.acquire(timeout=every)
                break
            except Timeout:
                continue
    try:
        record_holder(lock_path, label)
        yield
    finally:
        holder_file(lock_path).unlink(missing_ok=True)
        lock.release()
