"""The lab's state file: what `up` created, written as it goes, so `down` removes exactly that.

Every namespace is recorded before it is created and every process right after it starts
(with its start time, so a recycled PID is never killed). The file is replaced atomically,
so a crash at any point leaves a readable record for `down`.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from k8snetdoctor.lab.names import Names

VERSION = 1


@dataclass
class ProcRecord:
    """One process the lab started; pid 0 means "about to start" (see procs.start)."""

    pid: int
    start_time: int | None
    ns: str
    role: str
    name: str
    argv: list[str]
    ports: list[str] = field(default_factory=list)    # "tcp:8080", "udp:53": what "ready" means
    log: str = ""


@dataclass
class LabState:
    name: str
    nodes: int
    status: str = "creating"                 # creating | up | failed | deleting
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcRecord] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)   # files/dirs outside the state dir (/etc/netns/*)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    # Active faults (lab/faults.py records): what each changed, so any process can clear it.
    faults: list[dict[str, Any]] = field(default_factory=list)
    version: int = VERSION

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._path = Names(self.name).state_file

    # -- recording (thread safe, each call persists) -----------------------------------------
    def add_namespaces(self, names: list[str]) -> None:
        with self._lock:
            self.namespaces += [n for n in names if n not in self.namespaces]
            self._save()

    def add_process(self, rec: ProcRecord) -> None:
        with self._lock:
            self.processes.append(rec)
            self._save()

    def drop_process(self, pid: int) -> None:
        with self._lock:
            self.processes = [p for p in self.processes if p.pid != pid]
            self._save()

    def add_path(self, path: str | Path) -> None:
        with self._lock:
            if str(path) not in self.paths:
                self.paths.append(str(path))
                self._save()

    def add_warning(self, text: str) -> None:
        with self._lock:
            self.warnings.append(text)
            self._save()

    def add_fault(self, record: dict[str, Any]) -> None:
        """Record an active fault; the list is re-read first so another process's faults survive."""
        with self._lock:
            self.faults = [f for f in self._disk_faults() if f.get("name") != record.get("name")] + [record]
            self._save()

    def drop_fault(self, name: str) -> None:
        with self._lock:
            self.faults = [f for f in self._disk_faults() if f.get("name") != name]
            self._save()

    def reload_faults(self) -> list[dict[str, Any]]:
        """The active faults as the state file has them now (another process may have changed them)."""
        with self._lock:
            self.faults = self._disk_faults()
            return list(self.faults)

    def _disk_faults(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads(self._path.read_text()).get("faults") or [])
        except (OSError, ValueError):
            return list(self.faults)

    def set_status(self, status: str, error: str | None = None) -> None:
        with self._lock:
            self.status, self.error = status, error
            self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, self._path)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "name": self.name, "nodes": self.nodes, "status": self.status,
                "error": self.error, "warnings": list(self.warnings), "namespaces": list(self.namespaces),
                "processes": [asdict(p) for p in self.processes], "paths": list(self.paths),
                "faults": list(self.faults)}

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, name: str) -> "LabState":
        path = Names(name).state_file
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no lab named {name!r} (no state file {path})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"lab state file {path} is not JSON: {exc}") from None
        st = cls(name=d["name"], nodes=int(d["nodes"]), status=d.get("status", "unknown"),
                 namespaces=list(d.get("namespaces") or []), paths=list(d.get("paths") or []),
                 error=d.get("error"), warnings=list(d.get("warnings") or []), version=int(d.get("version", VERSION)),
                 faults=list(d.get("faults") or []))
        st.processes = [ProcRecord(**p) for p in d.get("processes") or []]
        return st

    @staticmethod
    def exists(name: str) -> bool:
        return Names(name).state_file.exists()

    def remove_file(self) -> None:
        try:
            self._path.unlink()
        except FileNotFoundError:
            pass


def list_labs() -> list[str]:
    from k8snetdoctor.lab.names import STATE_ROOT

    if not STATE_ROOT.is_dir():
        return []
    return sorted(p.stem for p in STATE_ROOT.glob("*.json"))
