"""CNI config parsing: plugins, portmap with portMappings, broken files, binaries, host root."""
import json
import os

from k8snetdoctor.probes import cni

FLANNEL = {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [
    {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
    {"type": "portmap", "capabilities": {"portMappings": True}}]}
NO_PORTMAP = {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [{"type": "flannel", "delegate": {}}]}
PORTMAP_WITHOUT_CAPABILITY = {"name": "x", "plugins": [{"type": "bridge"}, {"type": "portmap"}]}
SINGLE_CONF = {"cniVersion": "0.4.0", "name": "mynet", "type": "bridge", "bridge": "cni0"}


def test_conflist_with_portmap():
    assert cni.parse_conf(json.dumps(FLANNEL), "10-flannel.conflist") == {
        "format": "conflist", "network": "cbr0", "plugins": ["flannel", "portmap"], "portMappings": True}


def test_conflist_without_portmap_or_without_the_capability():
    assert cni.parse_conf(json.dumps(NO_PORTMAP), "10-flannel.conflist")["portMappings"] is False
    got = cni.parse_conf(json.dumps(PORTMAP_WITHOUT_CAPABILITY), "x.conflist")
    assert got["plugins"] == ["bridge", "portmap"] and got["portMappings"] is False


def test_single_plugin_conf():
    assert cni.parse_conf(json.dumps(SINGLE_CONF), "10-bridge.conf") == {
        "format": "conf", "network": "mynet", "plugins": ["bridge"], "portMappings": False}


def test_json_extension_with_plugins_is_a_conflist():
    assert cni.parse_conf(json.dumps(FLANNEL), "87-podman.json")["format"] == "conflist"


def _host(tmp_path, files: dict[str, str], bins=("bridge", "flannel", "host-local", "loopback", "portmap")):
    d = tmp_path / "etc/cni/net.d"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    if bins is not None:
        b = tmp_path / "opt/cni/bin"
        b.mkdir(parents=True)
        for name in bins:
            (b / name).write_text("")
    return str(tmp_path)


def test_collect_lists_files_in_runtime_order_with_a_broken_one_recorded(tmp_path):
    root = _host(tmp_path, {
        "10-flannel.conflist": json.dumps(FLANNEL),
        "05-broken.conflist": '{"name": "oops", "plugins": [',
        "99-loopback.conf": json.dumps({"cniVersion": "0.3.1", "name": "lo", "type": "loopback"}),
        "README": "not a config",
        "10-flannel.conflist.bak": json.dumps(NO_PORTMAP),
    })
    [e] = cni.collect_cni("n1", host_root=root)
    assert e.ok
    assert e.data["confDir"] == "/etc/cni/net.d" and e.data["binDir"] == "/opt/cni/bin"
    assert e.data["binaries"] == ["bridge", "flannel", "host-local", "loopback", "portmap"]
    files = e.data["files"]
    assert [f["name"] for f in files] == ["05-broken.conflist", "10-flannel.conflist", "99-loopback.conf"]
    broken, flannel, lo = files
    assert broken["error"].startswith("JSONDecodeError") and broken["plugins"] == [] and broken["path"] == "/etc/cni/net.d/05-broken.conflist"
    assert flannel == {"path": "/etc/cni/net.d/10-flannel.conflist", "name": "10-flannel.conflist",
                       "format": "conflist", "network": "cbr0", "plugins": ["flannel", "portmap"],
                       "portMappings": True, "error": None}
    assert lo["format"] == "conf" and lo["plugins"] == ["loopback"]
    assert "05-broken.conflist: ERROR" in e.excerpt and "[portMappings]" in e.excerpt
    assert e.source == f"{tmp_path}/etc/cni/net.d, {tmp_path}/opt/cni/bin"


def test_conflist_without_plugins_list_is_an_error_entry(tmp_path):
    root = _host(tmp_path, {"10-x.conflist": json.dumps({"name": "x"}), "20-y.conflist": "[1, 2]"})
    [e] = cni.collect_cni("n1", host_root=root)
    x, y = e.data["files"]
    assert "plugins" in x["error"] and "not a JSON object" in y["error"]


def test_absent_dirs(tmp_path):
    [e] = cni.collect_cni("n1", host_root=str(tmp_path))
    assert e.ok and e.data["files"] == [] and e.data["binaries"] is None
    assert "directory absent" in e.excerpt
    [e] = cni.collect_cni("n1", host_root=str(tmp_path / "nope"))
    assert not e.ok and "does not exist" in e.error


def test_symlinked_conflist_resolves_under_the_host_root(tmp_path):
    root = _host(tmp_path, {}, bins=None)
    real = tmp_path / "var/lib/cni"
    real.mkdir(parents=True)
    (real / "flannel.conflist").write_text(json.dumps(FLANNEL))
    os.symlink("/var/lib/cni/flannel.conflist", tmp_path / "etc/cni/net.d/10-flannel.conflist")
    [e] = cni.collect_cni("n1", host_root=root)
    assert e.data["files"][0]["portMappings"] is True and e.data["binaries"] is None
