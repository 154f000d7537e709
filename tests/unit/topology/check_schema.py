#!/usr/bin/python3
"""Checks topology files against configs/schema/topology.schema.json with an
independent validator (Debian's python3-jsonschema).

  check_schema.py SOURCE_DIR

Every configs/*.json, configs/overlay/*.json, configs/overlay-evpn/*.json,
configs/overlay-userspace/*.json and
tests/unit/topology/data/good_*.json must be valid;
every tests/unit/topology/data/bad_*.json must be rejected. (broken_*.json are
not JSON at all and are left to the C++ tests.)

Exit codes: 0 pass, 1 fail, 77 skipped (no jsonschema module; under CI=true
that is a failure instead).
"""

import glob
import json
import os
import sys

SKIP = 77

# Where the schema must find a problem in each known-bad file: the JSON
# pointer of the offending value (the C++ tests check the same files).
EXPECTED_BAD = {
    "bad_fdb_limit_kernel.json": "/networks/0/fdb",
    "bad_ifname_long.json": "/networks/0/ports/0/name",
    "bad_kernel_bridge_ports.json": "/networks/0/ports",
    "bad_mac_multicast.json": "/networks/0/fdb/static/0/mac",
    "bad_mac_zero.json": "/networks/0/fdb/static/0/mac",
    "bad_mirror_kernel.json": "/networks/0",
    "bad_mirror_vlan.json": "/networks/0/mirror/0/select_vlan",
    "bad_overlay_evpn_flood.json": "/networks/0/overlay",
    "bad_overlay_mtu.json": "/networks/0/overlay/mtu",
    "bad_overlay_userspace.json": "/networks/0/overlay/control",
    "bad_overlay_vni.json": "/networks/0/overlay/vni",
    "bad_many.json": "/networks/0",
    "bad_port_vlan_without_filtering.json": "/networks/0/ports/0",
    "bad_stp_priority.json": "/networks/0/stp/priority",
    "bad_stp_rstp_kernel.json": "/networks/0/stp/mode",
    "bad_stp_edge_kernel.json": "/networks/0/ports/0",
    "bad_stp_timer_range.json": "/networks/0/stp/hello_time",
    "bad_unknown_key.json": "/networks/0",
    "bad_veth_no_peer.json": "/networks/0/ports/0",
    "bad_vhost_user_client_permissions.json": "/networks/0/ports/0",
    "bad_vhost_user_kernel.json": "/networks/0/ports/0",
    "bad_vhost_user_no_socket.json": "/networks/0/ports/0",
    "bad_vlan_id.json": "/networks/0/ports/0/vlan/pvid",
    "bad_vlan_range.json": "/networks/0/ports/0/vlan/allowed",
    "bad_vm_kernel_and_disk.json": "/vms/0",
    "bad_wrong_type.json": "/networks/0/stp/enabled",
}

# Single values checked against one definition of the schema.
VALUES = [
    ("interfaceName", "vfb-lab", True),
    ("interfaceName", "123456789012345", True),
    ("interfaceName", "1234567890123456", False),
    ("interfaceName", "a b", False),
    ("interfaceName", "x/y", False),
    ("interfaceName", "eth0:1", False),
    ("interfaceName", "tap%d", False),
    ("interfaceName", ".", False),
    ("interfaceName", "..", False),
    ("interfaceName", "...", True),
    ("interfaceName", "", False),
    ("unicastMac", "52:54:00:AB:cd:01", True),
    ("unicastMac", "33:33:00:00:00:01", False),
    ("unicastMac", "ff:ff:ff:ff:ff:ff", False),
    ("unicastMac", "00:00:00:00:00:00", False),
    ("unicastMac", "00:00:00:00:00:01", True),
    ("unicastMac", "52:54:00:00:00", False),
    ("vlanList", "10,20-30", True),
    ("vlanList", " 1 , 4094 - 4094 ", True),
    ("vlanList", "4095", False),
    ("vlanList", "0", False),
    ("vlanList", "010", False),
    ("vlanList", "1,,2", False),
    ("vlanList", "", False),
    ("vlanList", "a", False),
    ("objectName", "lab", True),
    ("objectName", "-lab", False),
    ("ipAddress", "192.0.2.1", True),
    ("ipAddress", "2001:db8::1", True),
    ("ipAddress", "192.0.2.1/24", False),
    ("ipAddress", "host.example", False),
]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    source = sys.argv[1]
    try:
        import jsonschema  # noqa: PLC0415 (optional dependency, checked here)
    except ImportError as error:
        reason = f"{sys.executable} has no jsonschema module ({error}); apt-get install python3-jsonschema"
        if os.environ.get("CI") == "true":
            print(f"FAIL: {reason}", file=sys.stderr)
            return 1
        print(f"SKIP: {reason}")
        return SKIP

    with open(os.path.join(source, "configs/schema/topology.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    print(f"schema: {validator_class.__name__}")

    data = os.path.join(source, "tests/unit/topology/data")
    good = sorted(glob.glob(os.path.join(source, "configs/*.json")))
    good += sorted(glob.glob(os.path.join(source, "configs/overlay/*.json")))
    good += sorted(glob.glob(os.path.join(source, "configs/overlay-evpn/*.json")))
    good += sorted(glob.glob(os.path.join(source, "configs/overlay-userspace/*.json")))
    good += sorted(glob.glob(os.path.join(data, "good_*.json")))
    bad = sorted(glob.glob(os.path.join(data, "bad_*.json")))
    failures = 0
    if len(good) < 3 or len(bad) < 5:
        print(f"FAIL: too few files found under {source} ({len(good)} good, {len(bad)} bad)")
        failures += 1

    def load(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    for path in good:
        errors = sorted(validator.iter_errors(load(path)), key=lambda e: list(e.absolute_path))
        if errors:
            failures += 1
            for error in errors:
                pointer = "/" + "/".join(str(p) for p in error.absolute_path)
                print(f"FAIL: {path}: {pointer}: {error.message}")
        else:
            print(f"ok (valid): {path}")
    def pointer_of(error):
        return "/" + "/".join(str(p) for p in error.absolute_path)

    for path in bad:
        errors = list(validator.iter_errors(load(path)))
        expected = EXPECTED_BAD.get(os.path.basename(path))
        if expected is None:
            failures += 1
            print(f"FAIL: {path} has no entry in EXPECTED_BAD")
        elif not errors:
            failures += 1
            print(f"FAIL: the schema accepts {path}, which must be rejected")
        elif expected not in [pointer_of(e) for e in errors]:
            failures += 1
            found = ", ".join(sorted({pointer_of(e) for e in errors}))
            print(f"FAIL: {path}: expected a problem at {expected}, found at {found}")
        else:
            first = jsonschema.exceptions.best_match(errors)
            print(f"ok (rejected): {path}: {pointer_of(first)}: {first.message[:100]}")

    for definition, value, valid in VALUES:
        sub = validator_class({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})
        if sub.is_valid(value) != valid:
            failures += 1
            print(f"FAIL: {definition} {value!r} should be {'valid' if valid else 'invalid'}")
    print(f"{len(good)} valid, {len(bad)} rejected, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
