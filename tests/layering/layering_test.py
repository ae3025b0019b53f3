#!/usr/bin/env python3
"""Every #include of the project's own headers points down the house, never up.

Each folder may include its own headers and those of the folders listed for it
below, which mirror the DEPS of its CMake target (ARCHITECTURE.md draws the same
picture). A new arrow is a deliberate change to this table, CMake and the map. Every
folder that holds C++ or CUDA sources must have a row: product code, bench/ and tests/
alike. A test folder tests/X may include what X may, X itself, tests/support, and what
its row adds (a test of the client starts a real server).

Then, so that the check itself cannot rot, each folder gets one include it must refuse
(a floor above it, or a test's header in product code), and the check must say so.

    python3 tests/layering/layering_test.py   # exit 0: clean; 1: lists each upward include
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# folder -> folders it may include from (besides itself). "proto" stands for the
# generated normd/..., grpc/... and etcd/... headers.
ALLOWED = {
    "common": set(),
    "core/kernels": {"core/dtype"},
    "core/kernels/cuda": {"core/kernels", "core/dtype"},
    "core": {"core/kernels", "core/dtype", "common"},
    "core/cuda": {"core", "core/kernels", "core/kernels/cuda", "core/dtype", "common"},
    "wire": {"core", "core/dtype", "common", "proto"},
    "server/observability": {"core", "core/dtype", "common"},
    "server/store": {"wire", "core", "core/dtype", "common", "proto"},
    "server/store/rocksdb": {"server/store", "server/observability", "core", "core/dtype",
                             "common"},
    "server/store/etcd": {"server/store", "server/observability", "core", "core/dtype",
                          "common", "proto"},
    "server/engine": {"server/store", "core", "core/dtype", "common"},
    "server/auth": {"common"},
    "server/regions": {"core", "core/dtype", "common"},
    "server/service": {"server/engine", "server/auth", "server/observability", "server/regions",
                       "wire", "server/store", "core", "core/dtype", "common", "proto"},
    "server/dashboard": {"server/service", "server/engine", "server/auth", "server/observability",
                         "wire", "server/store", "core", "core/dtype", "common", "proto"},
    "server": {"server/dashboard", "server/service", "server/store", "server/store/rocksdb",
               "server/store/etcd", "core/cuda", "server/engine", "server/auth",
               "server/observability", "server/regions", "wire", "core", "core/dtype",
               "common", "proto"},
    "client/cpp": {"wire", "core", "core/dtype", "common", "proto"},
    "client/python/native": {"core/cuda", "core", "core/dtype", "common"},
    "client/cpp/normctl": {"client/cpp", "wire", "common", "proto"},
}
PRODUCT = set(ALLOWED) | {"core/dtype"}

# What every test folder's row adds to the rule in the docstring.
TESTS = {
    "tests/support": PRODUCT | {"proto"},  # fixtures: real servers, oracles, inputs
    "tests/common": set(),
    "tests/core": set(),
    # The CUDA kernels' host emulation, with the core's CPU path as its oracle.
    "tests/core/kernels": {"core/kernels/cuda", "core"},
    "tests/core/cuda": set(),
    "tests/wire": {"proto"},
    # A server driven by the C++ client; float16 values made by the kernels' conversion.
    "tests/server": {"client/cpp", "core/kernels", "tests/server"},
    "tests/server/auth": set(),
    "tests/server/engine": {"server/store/rocksdb"},  # the engine over a real store
    "tests/server/observability": set(),
    "tests/server/service": {"proto"},
    "tests/server/store": {"server/store/rocksdb"},
    "tests/server/store/etcd": set(),
    "tests/client/cpp": {"server", "tests/server"},  # the client against a real server
    "tests/fuzz": PRODUCT | {"proto"},
    "tests/sanitizers": set(),
}
# The folder each test folder tests (its rules apply to the test too).
TESTED = {folder: folder[len("tests/"):] for folder in TESTS}
BENCH = {"bench": PRODUCT | {"proto", "tests/support"}}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE_SUFFIXES = (".h", ".cc", ".cu")
SKIPPED = re.compile(r"^(build[^/]*|\.git|\.[^/]*)(/|$)")
TOP_FOLDERS = {"common", "core", "wire", "server", "client", "bench", "tests"}
PROTO_ROOTS = ("normd/", "grpc/", "etcd/")


def rules():
    """folder -> every folder it may include from, itself included."""
    table = {folder: set(allowed) | {folder} for folder, allowed in ALLOWED.items()}
    for folder, extra in TESTS.items():
        tested = TESTED[folder]
        table[folder] = ({folder, "tests/support", tested} | ALLOWED.get(tested, set())
                         | set(extra))
    for folder, allowed in BENCH.items():
        table[folder] = set(allowed) | {folder}
    return table


def target_folder(header):
    """The folder an include names, "proto" for generated headers, or None for a header
    from outside the project."""
    if header.startswith(PROTO_ROOTS):
        return "proto"
    if header == "core/dtype.h":
        return "core/dtype"  # its own target (normd_dtype), below the kernels
    if header.split("/", 1)[0] not in TOP_FOLDERS:
        return None
    return str(pathlib.PurePosixPath(header).parent)


def violations(sources, table):
    """Each include out of place in `sources` ({path relative to the root: text})."""
    found = []
    for path, text in sorted(sources.items()):
        folder = str(pathlib.PurePosixPath(path).parent)
        if folder not in table:
            found.append(f"{path}: its folder {folder} has no row in the table")
            continue
        for header in INCLUDE.findall(text):
            target = target_folder(header)
            if target is not None and target not in table[folder]:
                found.append(f"{path} includes {header}")
    return found


def project_sources():
    sources = {}
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT).as_posix()
        if path.suffix in SOURCE_SUFFIXES and path.is_file() and not SKIPPED.match(relative):
            sources[relative] = path.read_text()
    return sources


def refused_include(folder, table):
    """An include `folder` must refuse: a product floor it may not use, else a test's
    header, else a bench's."""
    for candidate in [*sorted(PRODUCT), "tests/support", "tests/server", "bench"]:
        if candidate not in table[folder]:
            name = "dtype" if candidate == "core/dtype" else "anything"
            return f"{'core' if candidate == 'core/dtype' else candidate}/{name}.h"
    return None


def mutation_failures(sources, table):
    """For each folder with sources, one out-of-place include added to one of its files:
    the check must report it. Returns what it missed."""
    missed = []
    by_folder = {}
    for path in sorted(sources):
        by_folder.setdefault(str(pathlib.PurePosixPath(path).parent), path)
    for folder, path in sorted(by_folder.items()):
        header = refused_include(folder, table)
        if header is None:
            missed.append(f"{folder}: every folder may be included there; nothing to refuse")
            continue
        mutated = {path: sources[path] + f'\n#include "{header}"\n'}
        if not any(header in line for line in violations(mutated, table)):
            missed.append(f"{path} + #include \"{header}\" passed the check")
    return missed


def main():
    table = rules()
    sources = project_sources()
    found = violations(sources, table)
    for line in found:
        print(f"out of place: {line}")
    missed = mutation_failures(sources, table)
    for line in missed:
        print(f"the check missed a planted include: {line}")
    folders = {str(pathlib.PurePosixPath(path).parent) for path in sources}
    print(f"{len(sources)} files in {len(folders)} folders checked, {len(found)} includes out "
          f"of place; {len(folders) - len(missed)} of {len(folders)} planted includes caught")
    return 1 if found or missed or not sources else 0


if __name__ == "__main__":
    sys.exit(main())
