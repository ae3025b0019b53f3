#!/usr/bin/env python3
"""Every #include of the project's own headers points down the house, never up.

Each folder may include its own headers and those of the folders listed for it
below, which mirror the DEPS of its CMake target (ARCHITECTURE.md draws the same
picture). A new arrow is a deliberate change to this table, CMake and the map.

    python3 tests/layering/layering_test.py   # exit 0: clean; 1: lists each upward include
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# folder -> folders it may include from (besides itself). "proto" stands for the
# generated normd/... and grpc/... headers.
ALLOWED = {
    "common": set(),
    "core/kernels": {"core/dtype"},
    "core/kernels/cuda": {"core/kernels", "core/dtype"},
    "core": {"core/kernels", "common"},
    "core/cuda": {"core", "core/kernels", "core/kernels/cuda", "common"},
    "wire": {"core", "common", "proto"},
    "server/observability": {"core", "common"},
    "server/store": {"wire", "core", "common", "proto"},
    "server/store/rocksdb": {"server/store", "server/observability", "core", "common"},
    "server/store/etcd": {"server/store", "server/observability", "core", "common", "proto"},
    "server/engine": {"server/store", "core", "common"},
    "server/auth": {"common"},
    "server/regions": {"core", "common"},
    "server/service": {"server/engine", "server/auth", "server/observability", "server/regions",
                       "wire", "server/store", "core", "common", "proto"},
    "server/dashboard": {"server/service", "server/engine", "server/auth", "server/observability",
                         "wire", "server/store", "core", "common", "proto"},
    "server": {"server/dashboard", "server/service", "server/store", "server/store/rocksdb", "server/store/etcd", "core/cuda",
               "server/engine", "server/auth", "server/observability", "server/regions", "core",
               "common", "proto"},
    "client/cpp": {"wire", "core", "common", "proto"},
    "client/python/native": {"core/cuda", "core", "common"},
    "client/cpp/normctl": {"client/cpp", "common", "proto"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    return str(pathlib.PurePosixPath(path).parent)


def target_folder(header):
    if header.startswith(("normd/", "grpc/", "etcd/")):
        return "proto"
    if header == "core/dtype.h":
        return "core/dtype"
    return folder_of(header)


def allowed(source_folder, header):
    target = target_folder(header)
    if target == source_folder:
        return True
    rules = ALLOWED[source_folder]
    if target == "core/dtype":
        return source_folder in ("core",) or "core" in rules or "core/dtype" in rules
    return target in rules


def main():
    violations = []
    checked = 0
    for folder in ALLOWED:
        for path in sorted((ROOT / folder).glob("*")):
            if path.suffix not in (".h", ".cc", ".cu") or not path.is_file():
                continue
            checked += 1
            for header in INCLUDE.findall(path.read_text()):
                if not header.startswith(("common/", "core/", "server/", "client/", "normd/",
                                          "grpc/", "etcd/", "tests/")):
                    continue  # a library's header
                if header.startswith("tests/") or not allowed(folder, header):
                    violations.append(f"{path.relative_to(ROOT)} includes {header}")
    for line in violations:
        print(f"upward or sideways include: {line}")
    print(f"{checked} files checked, {len(violations)} includes out of place")
    return 1 if violations or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
