"""The node's CNI configuration (what the container runtime will run) and installed plugin binaries.

hostPort only works when the active conflist chains the `portmap` plugin with
`capabilities.portMappings`; a conflist naming a plugin whose binary is missing from
/opt/cni/bin fails every pod sandbox; a broken JSON file is skipped by the runtime, which
then picks the next file or none. The runtime uses the lexically first valid file, so files
are listed in that order, each with its own parse error.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from k8snetdoctor.model import Evidence

from ._common import CollectError, evidence, host_path

KIND = "cni"
CONF_DIR = "/etc/cni/net.d"
BIN_DIR = "/opt/cni/bin"
EXTENSIONS = (".conflist", ".conf", ".json")  # what libcni's ConfFiles accepts


def parse_conf(text: str, filename: str) -> dict:
    """A conf or conflist's network name, plugin types and whether portmap serves hostPorts."""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("top level is not a JSON object")
    if "plugins" in doc or filename.endswith(".conflist"):
        fmt = "conflist"
        plugins = doc.get("plugins")
        if not isinstance(plugins, list):
            raise ValueError("conflist has no \"plugins\" list")
    else:
        fmt = "conf"
        plugins = [doc]
    plugins = [p for p in plugins if isinstance(p, dict)]
    port_mappings = any(p.get("type") == "portmap"
                        and bool((p.get("capabilities") or {}).get("portMappings")) for p in plugins)
    return {"format": fmt, "network": doc.get("name"), "plugins": [p.get("type") for p in plugins],
            "portMappings": port_mappings}


def read_conf_dir(host_root: str, conf_dir: str = CONF_DIR) -> tuple[list[dict], str]:
    """(files, excerpt). Each file is parsed on its own; one broken file does not hide the others."""
    real_dir = host_path(host_root, conf_dir)
    try:
        names = sorted(n for n in os.listdir(real_dir) if n.endswith(EXTENSIONS))
    except FileNotFoundError:
        return [], f"{conf_dir}: directory absent (no CNI configured: kubelet reports NetworkPluginNotReady)"
    except PermissionError as exc:
        raise CollectError(f"{real_dir}: permission denied") from exc
    files, lines = [], []
    for name in names:
        path = f"{conf_dir.rstrip('/')}/{name}"
        entry = {"path": path, "name": name, "format": "conflist" if name.endswith(".conflist") else "conf",
                 "network": None, "plugins": [], "portMappings": False, "error": None}
        try:
            text = host_path(host_root, path).read_text(encoding="utf-8", errors="replace")
            entry.update(parse_conf(text, name))
            lines.append(f"{path}: network {entry['network']!r} ({entry['format']}) plugins "
                         f"{', '.join(str(p) for p in entry['plugins'])}"
                         + (" [portMappings]" if entry["portMappings"] else ""))
        except (OSError, ValueError, CollectError) as exc:  # JSONDecodeError is a ValueError
            entry["error"] = f"{type(exc).__name__}: {exc}"
            lines.append(f"{path}: ERROR {entry['error']}")
        files.append(entry)
    if not names:
        lines.append(f"{conf_dir}: no .conflist/.conf/.json file")
    return files, "\n".join(lines)


def list_bin_dir(host_root: str, bin_dir: str = BIN_DIR) -> list[str] | None:
    """Plugin binaries present, None when the directory cannot be read (absent or forbidden)."""
    try:
        real = host_path(host_root, bin_dir)
        return sorted(n for n in os.listdir(real) if not n.startswith("."))
    except (OSError, CollectError):
        return None


def collect_cni(node: str | None, host_root: str = "/", conf_dir: str = CONF_DIR,
                bin_dir: str = BIN_DIR) -> list[Evidence]:
    root = host_root.rstrip("/")
    source = f"{root}{conf_dir}, {root}{bin_dir}"
    if not Path(host_root).is_dir():
        return [evidence(KIND, node, source, error=f"host root {host_root} does not exist")]
    try:
        files, excerpt = read_conf_dir(host_root, conf_dir)
    except CollectError as exc:
        return [evidence(KIND, node, source, error=str(exc))]
    binaries = list_bin_dir(host_root, bin_dir)
    excerpt += "\n" + (f"{bin_dir}: {' '.join(binaries)}" if binaries is not None
                       else f"{bin_dir}: unreadable or absent")
    data = {"confDir": conf_dir, "files": files, "binDir": bin_dir, "binaries": binaries}
    return [evidence(KIND, node, source, data=data, excerpt=excerpt)]
