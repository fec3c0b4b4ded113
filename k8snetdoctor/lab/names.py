"""Names the lab gives to things on the host.

Every network namespace, file and directory a lab creates is derived here from the lab's
name, so that two labs never collide and `down` can tell its own objects from anyone
else's. Interface names need no prefix: every interface lives inside a lab namespace.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

NS_PREFIX = "ndlab-"
# Root of all lab state; overridable so tests of pure code never need /run.
STATE_ROOT = Path(os.environ.get("NETDOCTOR_LAB_STATE", "/run/netdoctor-lab"))
# `ip netns exec <ns>` bind-mounts /etc/netns/<ns>/* over /etc, which gives pods their resolv.conf.
ETC_NETNS = Path("/etc/netns")

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$")


def validate(name: str) -> str:
    """Lab names are short so namespace names stay readable in `ip netns list`."""
    if not _NAME_RE.match(name or ""):
        raise ValueError(f"lab name {name!r}: use 1-12 characters a-z, 0-9 and '-', "
                         "starting and ending with a letter or digit")
    return name


@dataclass(frozen=True)
class Names:
    lab: str

    def __post_init__(self) -> None:
        validate(self.lab)

    @property
    def prefix(self) -> str:
        """Every namespace of this lab starts with this; nothing of another lab does."""
        return f"{NS_PREFIX}{self.lab}-"

    def ns(self, suffix: str) -> str:
        return self.prefix + suffix

    @property
    def lan(self) -> str:
        return self.ns("lan")

    @property
    def router(self) -> str:
        return self.ns("router")

    @property
    def external(self) -> str:
        return self.ns("external")

    def node(self, node_name: str) -> str:
        return self.ns(node_name)

    def pod(self, pod_name: str) -> str:
        return self.ns(pod_name)

    def owns(self, ns_name: str) -> bool:
        return ns_name.startswith(self.prefix)

    # -- files ------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return STATE_ROOT / f"{self.lab}.json"

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.lab

    def host_root(self, node_name: str) -> Path:
        return self.state_dir / node_name

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def etc_netns(self, ns_name: str) -> Path:
        return ETC_NETNS / ns_name
