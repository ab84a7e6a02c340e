"""Let the same `snakemake` command run again after a killed run, keeping Snakemake's run lock.

Snakemake locks a working directory by writing `.snakemake/locks/*.lock` (lists of files, no
owner) and deletes them when it exits. A run killed with SIGKILL (an OOM kill, a node failure,
`kill -9` of the process group) leaves them behind, and every later run then stops with
"Directory cannot be locked ... It can be removed with the --unlock argument", since Snakemake
cannot tell a dead run's locks from a live one's.

:func:`recover_stale_locks` (called by the Snakefile while it is read, before Snakemake checks
its locks) tells them apart. Every main Snakemake process in the directory holds a shared
``flock`` on `.snakemake/igae_runs.lock` for its whole life; the kernel drops it when the
process dies, however it dies. A process that can take that lock *exclusively* therefore knows
that no other Snakemake process on this machine is using the directory, and that the locks left
there are stale: it removes them (saying so on stderr) and goes on as a normal run. While
another run is alive the exclusive lock is refused, nothing is removed, and Snakemake reports
the lock conflict exactly as before.

On a shared file system ``flock`` may not reach other machines (NFS does, Lustre only with
`-o flock`), so each process also leaves a `.snakemake/igae_runs/<pid>@<host>` record while it
runs: if one names another host, nothing is removed (that run may be alive) and the message
says which record to delete once it is known to be over; Snakemake's own `--unlock` advice
follows. Records of this host are stale whenever the exclusive lock is granted and go with the
locks. Nor is anything removed while Snakemake's incomplete-job markers name cluster jobs
(`external_jobid`), which may outlive the killed run. Jobs that Snakemake itself starts
(cluster or subprocess jobs, run with `--nolock`) do not take part; a job process left running
after only the Snakemake process was killed is caught by the trainer's own lock on its work
folder (`igae.train.checkpoint.work_folder_lock`), so the rerun's job stops with a clear error
instead of training beside it.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

_HELD: list[int] = []  # the lock file descriptors: kept open for the life of the process


def _note(message: str) -> None:
    print(f"[igae workflow] {message}", file=sys.stderr, flush=True)


def recover_stale_locks(state_dir: str | Path = ".snakemake") -> list[Path]:
    """Remove Snakemake locks left by dead runs; return the lock files removed.

    Call once per main Snakemake process, before Snakemake checks its locks (that is, while
    the Snakefile is read), with the working directory's `.snakemake` folder.
    """
    state = Path(state_dir)
    records = state / "igae_runs"
    host = socket.gethostname()
    try:
        records.mkdir(parents=True, exist_ok=True)
        fd = os.open(state / "igae_runs.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        _note(f"cannot open the run lock in {state} ({exc}); stale Snakemake locks are not recovered")
        return []
    removed: list[Path] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # another Snakemake run in this directory is alive: its locks are live
    except OSError as exc:  # a file system without flock: keep Snakemake's own behaviour
        os.close(fd)
        _note(f"no flock on {state} ({exc}); stale Snakemake locks are not recovered")
        return []
    else:
        removed = _remove_if_stale(state, records, host)
    fcntl.flock(fd, fcntl.LOCK_SH)  # held until this process ends (blocks only while another clears)
    _HELD.append(fd)
    mine = records / f"{os.getpid()}@{host}"
    try:
        mine.touch()
        atexit.register(mine.unlink, missing_ok=True)
    except OSError as exc:
        _note(f"cannot write {mine} ({exc})")
    return removed


def _remove_if_stale(state: Path, records: Path, host: str) -> list[Path]:
    """With the exclusive lock held: no Snakemake process on this host uses ``state``."""
    listed = sorted(records.iterdir())
    elsewhere = [r for r in listed if r.name.partition("@")[2] != host]
    locks = sorted((state / "locks").glob("*.lock"))
    if not locks:
        return []
    if elsewhere:
        _note("Snakemake locks here may belong to a run on another machine ("
              + ", ".join(r.name for r in elsewhere) + "); not removing them. Once that run is over, "
              f"delete {', '.join(str(r) for r in elsewhere)} and run `snakemake --unlock`.")
        return []
    cluster_jobs = _submitted_jobs(state)
    if cluster_jobs:
        _note(f"the killed run had submitted cluster jobs ({', '.join(cluster_jobs[:5])}) that may still be running; "
              "not removing its locks. Once they are over (squeue / scancel), run `snakemake --unlock`.")
        return []
    removed = []
    try:
        for record in listed:  # this host's dead runs (a record made since belongs to a live run)
            record.unlink(missing_ok=True)
        for lock in locks:
            lock.unlink(missing_ok=True)
            removed.append(lock)
    except OSError as exc:
        _note(f"cannot remove a stale lock ({exc})")
    if removed:
        _note(f"removed {len(removed)} stale Snakemake lock file(s) left by a run that was killed "
              f"(no other Snakemake process is using this directory): {', '.join(p.name for p in removed)}")
    return removed


def _submitted_jobs(state: Path) -> list[str]:
    """External (cluster) job ids of jobs Snakemake marked as started and not finished.

    Snakemake's file persistence writes ``.snakemake/incomplete/<key>`` as JSON
    ``{"external_jobid": ...}`` when it submits a job, and deletes it when the job ends.
    """
    ids: set[str] = set()
    for marker in (state / "incomplete").rglob("*"):
        try:
            record = json.loads(marker.read_text()) if marker.is_file() else {}
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("external_jobid"):
            ids.add(str(record["external_jobid"]))
    return sorted(ids)
