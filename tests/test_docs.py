"""The documentation: every Python sample in ``docs/`` runs, and the site builds in strict mode
(when MkDocs is installed: the ``docs`` extra; CI installs it).

A page's samples run in order in one namespace, as guest 5 of a fresh in-process daemon (the
plugin's ``xs.use_default(5)``): ``xsactor.read("data/x")`` is ``/local/domain/5/data/x``. A page
whose samples define ``test_*`` functions runs as a pytest module (pytester). A sample that is
only a snippet include (``--8<-- "examples/..."``) names a file the suite tests itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xsactor.testing.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$')


def samples(page: Path) -> list[str]:
    return FENCE.findall(page.read_text())


PAGES = [page for page in sorted(DOCS.glob("*.md")) if samples(page)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_samples_run(page: Path, xs: Sandbox, pytester: pytest.Pytester) -> None:
    code = [block for block in samples(page) if not SNIPPET.match(block.strip())]
    for block in samples(page):
        included = SNIPPET.match(block.strip())
        if included:
            path = ROOT / included.group(1)
            assert path.is_file(), f"{page.name} includes a missing {path}"
            tested = path.name.startswith("test_") or any(
                re.search(rf"^(from|import) {path.stem}\b", test.read_text(), re.M)
                for test in path.parent.glob("test_*.py"))
            assert tested, f"{path} is included by {page.name} but not tested"
    source = "\n".join(code)
    if not source:
        return
    if re.search(r"^def test_", source, re.M):
        pytester.makepyfile(**{f"test_{page.stem}": source})
        result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
        assert result.ret == 0, result.stdout.str()
        assert result.parseoutcomes().get("passed", 0) >= 1
        return
    xs.use_default(5)
    exec(compile(source, str(page), "exec"), {"__name__": f"docs.{page.stem}"})


@pytest.mark.skipif(shutil.which("mkdocs") is None and not (Path(sys.executable).parent
                                                           / "mkdocs").exists(),
                    reason="mkdocs not installed (pip install -e '.[docs]')")
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run([str(mkdocs) if mkdocs.exists() else "mkdocs", "build", "--strict",
                             "-q", "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "index.html").is_file()
