"""Every ```python and ```sh block of the README, CONTRIBUTING.md, BENCHMARKS.md and
docs/ runs in a test, so that the docs stay true.

A block runs here unless the line just before it says otherwise:
  <!-- doc-test: run by tests/python/FILE.py::TEST -->  that test runs it (and checks its
      output); this one checks that the test exists and reads the page.
  <!-- doc-test: not run: REASON -->  it cannot run in a test (it installs packages,
      needs a Kubernetes cluster or Docker, or is the test command itself); REASON says
      which, and what checks it instead.
  <!-- doc-test: needs cuda -->  it runs where torch sees a GPU, and skips elsewhere.
  <!-- doc-test: needs native -->  it runs where the native module (normd._native) is
      built, as in the plain build, and skips elsewhere (the sanitizer builds).
A Python block runs as a script in a fresh directory, against a normd of its own that
serves the docs' addresses (127.0.0.1:50051 and unix:/run/normd/grpc.sock stand for
it), after the page's setups above it: the Python in each `<!-- doc-test setup ... -->`
comment before the block, which makes what a fragment leaves to the reader (a client,
some batches).
"""
import ast
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import NormdProcess, run_python_snippet

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "BENCHMARKS.md",
         *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```", re.S | re.M)
MARKER = re.compile(r"<!-- doc-test: (.*?) -->\s*$")
SETUP = re.compile(r"<!-- doc-test setup\n(.*?)-->", re.S)


def blocks():
    """(page, index on the page, language, code, marker or None, where the block starts)
    for every block."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for index, match in enumerate(BLOCK.finditer(text)):
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = MARKER.search(before)
            found.append((page, index, match.group(1), match.group(2),
                          marker.group(1) if marker else None, match.start()))
    return found


def block_id(block):
    page, index, language = block[:3]
    return f"{page.relative_to(REPO)}#{index}-{language}"


ALL = blocks()
NEEDS = ("needs cuda", "needs native")
RUN_HERE = [b for b in ALL if b[4] is None or b[4] in NEEDS]


def test_every_block_runs_here_or_names_what_runs_it():
    """A marker is one of the forms above; `run by` names a test that exists and reads
    the page; `not run` gives its reason; sh blocks all carry a marker (a shell block
    here would run against this machine, not a sandbox)."""
    for block in ALL:
        page, _, language, _, marker, _ = block
        if marker is None:
            assert language == "python", f"{block_id(block)}: a shell block needs a marker"
            continue
        if marker in NEEDS:
            continue
        by = re.fullmatch(r"run by (tests/python/\w+\.py)::(\w+)", marker)
        if by:
            source = (REPO / by.group(1)).read_text()
            names = {node.name for node in ast.walk(ast.parse(source))
                     if isinstance(node, ast.FunctionDef)}
            assert by.group(2) in names, f"{block_id(block)}: no test {marker}"
            assert page.name in source, f"{block_id(block)}: {by.group(1)} never reads {page.name}"
            continue
        reason = re.fullmatch(r"not run: (.{20,})", marker)
        assert reason, f"{block_id(block)}: unknown marker {marker!r}"


@pytest.mark.parametrize("block", RUN_HERE, ids=block_id)
def test_block_runs(block, tmp_path):
    page, _, _, code, marker, start = block
    if marker == "needs cuda":
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("needs a GPU that torch can see")
    if marker == "needs native":
        from normd import local
        if not local.available():
            pytest.skip("needs normd._native, which this build does not make")
    socket_dir = tempfile.mkdtemp(prefix="normd-doc-", dir="/tmp")
    unix = f"unix:{socket_dir}/grpc.sock"
    # Every Normalize folded into the live traffic (not 5% of them), so that a snippet
    # comparing traffic has some whatever the draw.
    server = NormdProcess(str(tmp_path / "data"),
                          flags=[f"--listen=127.0.0.1:0,{unix}",
                                 "--traffic_sample_rate=1"]).start()
    try:
        above = page.read_text()[:start]
        script = "\n".join(setup.group(1) for setup in SETUP.finditer(above)) + "\n" + code
        script = script.replace("unix:/run/normd/grpc.sock", unix)
        result = run_python_snippet(server.address, script, cwd=tmp_path)
        assert result.returncode == 0, f"{block_id(block)}:\n{script}\n{result.stderr}"
    finally:
        server.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
