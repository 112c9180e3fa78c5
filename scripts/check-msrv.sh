#!/usr/bin/env bash
# Checks that the workspace's `rust-version` (its minimum supported Rust)
# is true of the lock file: no package a workspace member builds with (its
# dependencies, build-dependencies and own dev-dependencies, and all of
# theirs but dev-dependencies) may declare a newer `rust-version` than the
# member itself. Cargo only enforces a dependency's `rust-version` against
# the compiler in use, so without this check a dependency bump can
# silently raise the real minimum while the manifest still claims the old
# one.
#
#   scripts/check-msrv.sh        # exit 0, or 1 naming each offending package
#
# Reads `cargo metadata --locked` (the resolve of Cargo.lock as it is; it
# fails if the lock file is out of date) and needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."

metadata=$(mktemp)
trap 'rm -f "$metadata"' EXIT
cargo metadata --format-version 1 --locked >"$metadata"

python3 - "$metadata" <<'EOF'
import json
import re
import sys

with open(sys.argv[1]) as f:
    meta = json.load(f)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {node["id"]: node["deps"] for node in meta["resolve"]["nodes"]}


def version(text):
    """A rust-version such as "1.85" or "1.85.0" as a comparable tuple."""
    parts = [int(re.match(r"\d*", p).group() or 0) for p in text.split(".")]
    return tuple((parts + [0, 0, 0])[:3])


def deps_of(pkg_id, is_root):
    """What building pkg_id pulls in: its dev-dependencies only when it is
    the member being checked, as cargo builds no one else's."""
    for dep in nodes.get(pkg_id, []):
        kinds = {k["kind"] for k in dep["dep_kinds"]}
        if is_root or kinds - {"dev"}:
            yield dep["pkg"]


problems = []
offenders = {}
for member_id in meta["workspace_members"]:
    member = packages[member_id]
    claimed = member["rust_version"]
    if claimed is None:
        problems.append(f"{member['name']} declares no rust-version")
        continue
    # Breadth first, so the chain printed for an offender is a shortest one.
    parent = {member_id: None}
    queue = [member_id]
    for pkg_id in queue:
        for dep_id in deps_of(pkg_id, pkg_id == member_id):
            if dep_id not in parent:
                parent[dep_id] = pkg_id
                queue.append(dep_id)
    for pkg_id in queue[1:]:
        needs = packages[pkg_id]["rust_version"]
        if needs is None or version(needs) <= version(claimed):
            continue
        key = (pkg_id, claimed)
        if key not in offenders:
            chain = []
            at = pkg_id
            while at is not None:
                chain.append(packages[at]["name"])
                at = parent[at]
            offenders[key] = (" -> ".join(reversed(chain)), [])
        offenders[key][1].append(member["name"])

for (pkg_id, claimed), (chain, members) in sorted(
    offenders.items(), key=lambda o: (packages[o[0][0]]["name"], packages[o[0][0]]["version"])
):
    pkg = packages[pkg_id]
    problems.append(
        f"{pkg['name']} {pkg['version']} needs Rust {pkg['rust_version']}, "
        f'but rust-version = "{claimed}" ({", ".join(members)}; via {chain})'
    )

if problems:
    print("check-msrv: the workspace rust-version is not true of Cargo.lock:", file=sys.stderr)
    for line in problems:
        print(f"  {line}", file=sys.stderr)
    print(
        "check-msrv: raise rust-version in the root Cargo.toml, or lock an older "
        "version of the package (cargo update -p NAME --precise VERSION)",
        file=sys.stderr,
    )
    sys.exit(1)

claims = sorted({packages[m]["rust_version"] for m in meta["workspace_members"]})
print(f"check-msrv: every locked dependency builds with Rust {', '.join(claims)}")
EOF
