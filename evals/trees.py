"""Pinned third-party source trees that questions are asked about, installed on first use.

``requests_root()`` is the sdist of requests 2.32.3, ``click_root()`` that of click 8.1.8,
``httpx_root()`` that of httpx 0.28.1, ``attrs_root()`` that of attrs 25.4.0 (its ``attr``
package, where the implementation lives), ``rich_root()`` that of rich 14.3.4 (its ``rich``
package), ``marshmallow_root()`` that of marshmallow 3.26.1 (its ``src/marshmallow``
package), ``jinja2_root()`` that of jinja2 3.1.4 (its ``src/jinja2`` package),
``werkzeug_root()`` that of werkzeug 3.1.3 (its ``src/werkzeug`` package),
``flask_root()`` that of flask 3.1.0 (its ``src/flask`` package) and ``structlog_root()`` that of
structlog 25.5.0 (its ``src/structlog`` package): each downloaded from the
package index with pip, checked against its sha256 and unpacked once under the model cache
(``$TIERFLOW_MODEL_CACHE`` or ``~/.cache/tierflow``). The main-job bench and the
answer-checker measurements ask about them: trees the eval suites (which use the installed
langgraph) and tierflow's own source do not touch. ``TREES`` maps the bench's set names to them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ATTRS",
    "CLICK",
    "FLASK",
    "HTTPX",
    "JINJA2",
    "MARSHMALLOW",
    "PinnedTree",
    "REQUESTS",
    "RICH",
    "STRUCTLOG",
    "TREES",
    "WERKZEUG",
    "attrs_root",
    "click_root",
    "flask_root",
    "httpx_root",
    "install",
    "jinja2_root",
    "marshmallow_root",
    "requests_root",
    "rich_root",
    "structlog_root",
    "werkzeug_root",
]


@dataclass(frozen=True)
class PinnedTree:
    """An sdist on the package index and the directory inside it that questions are about."""

    package: str
    version: str
    sha256: str
    root: str  # inside the unpacked sdist

    @property
    def name(self) -> str:
        """``package-version``."""
        return f"{self.package}-{self.version}"


REQUESTS = PinnedTree(
    "requests",
    "2.32.3",
    "55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760",
    "requests-2.32.3/src/requests",
)

CLICK = PinnedTree(
    "click",
    "8.1.8",
    "ed53c9d8990d83c2a27deae68e4ee337473f6330c040a31d4225c9574d16096a",
    "click-8.1.8/src/click",
)

HTTPX = PinnedTree(
    "httpx",
    "0.28.1",
    "75e98c5f16b0f35b567856f597f06ff2270a374470a5c2392242528e3e3e42fc",
    "httpx-0.28.1/httpx",
)

ATTRS = PinnedTree(
    "attrs",
    "25.4.0",
    "16d5969b87f0859ef33a48b35d55ac1be6e42ae49d5e853b597db70c35c57e11",
    "attrs-25.4.0/src/attr",
)

RICH = PinnedTree(
    "rich",
    "14.3.4",
    "817e02727f2b25b40ef56f5aa2217f400c8489f79ca8f46ea2b70dd5e14558a9",
    "rich-14.3.4/rich",
)

MARSHMALLOW = PinnedTree(
    "marshmallow",
    "3.26.1",
    "e6d8affb6cb61d39d26402096dc0aee12d5a26d490a121f118d2e81dc0719dc6",
    "marshmallow-3.26.1/src/marshmallow",
)

JINJA2 = PinnedTree(
    "jinja2",
    "3.1.4",
    "4a3aee7acbbe7303aede8e9648d13b8bf88a429282aa6122a993f0ac800cb369",
    "jinja2-3.1.4/src/jinja2",
)

WERKZEUG = PinnedTree(
    "werkzeug",
    "3.1.3",
    "60723ce945c19328679790e3282cc758aa4a6040e4bb330f53d30fa546d44746",
    "werkzeug-3.1.3/src/werkzeug",
)

FLASK = PinnedTree(
    "flask",
    "3.1.0",
    "5f873c5184c897c8d9d1b05df1e3d01b14910ce69607a117bd3277098a5836ac",
    "flask-3.1.0/src/flask",
)

STRUCTLOG = PinnedTree(
    "structlog",
    "25.5.0",
    "098522a3bebed9153d4570c6d0288abf80a031dfdb2048d59a49e9dc2190fc98",
    "structlog-25.5.0/src/structlog",
)

TREES: dict[str, PinnedTree] = {
    "requests": REQUESTS,
    "click": CLICK,
    "httpx": HTTPX,
    "attrs": ATTRS,
    "rich": RICH,
    "marshmallow": MARSHMALLOW,
    "jinja2": JINJA2,
    "werkzeug": WERKZEUG,
    "flask": FLASK,
    "structlog": STRUCTLOG,
}
"""The pinned trees by the name the main-job bench's ``--set`` uses."""


def install(tree: PinnedTree, cache_dir: Path | None = None) -> Path:
    """The tree's directory, downloading and verifying the sdist the first time.

    Raises:
        RuntimeError: pip could not download it, or its sha256 is not the pinned one.
    """
    from tierflow.local.weights import default_cache_dir

    base = (cache_dir or default_cache_dir()) / "trees" / tree.name
    root = base / tree.root
    if root.is_dir():
        return root
    base.mkdir(parents=True, exist_ok=True)
    sdist = base / f"{tree.name}.tar.gz"
    if not sdist.exists():
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
               ":all:", f"{tree.package}=={tree.version}", "-d", str(base)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not sdist.exists():
            raise RuntimeError(
                f"could not download {tree.package}=={tree.version} from the package index: "
                f"{done.stderr.strip()[-300:]}"
            )
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != tree.sha256:
        sdist.unlink()
        raise RuntimeError(f"{sdist.name}: sha256 {digest} is not the pinned {tree.sha256}")
    with tarfile.open(sdist) as tar:
        tar.extractall(base, filter="data")
    return root


def requests_root(cache_dir: Path | None = None) -> Path:
    """The pinned requests 2.32.3 source (``requests/``), installed on first use."""
    return install(REQUESTS, cache_dir)


def click_root(cache_dir: Path | None = None) -> Path:
    """The pinned click 8.1.8 source (``click/``), installed on first use."""
    return install(CLICK, cache_dir)


def httpx_root(cache_dir: Path | None = None) -> Path:
    """The pinned httpx 0.28.1 source (``httpx/``), installed on first use."""
    return install(HTTPX, cache_dir)


def attrs_root(cache_dir: Path | None = None) -> Path:
    """The pinned attrs 25.4.0 source (``attr/``, the implementation), installed on first use."""
    return install(ATTRS, cache_dir)


def rich_root(cache_dir: Path | None = None) -> Path:
    """The pinned rich 14.3.4 source (``rich/``), installed on first use."""
    return install(RICH, cache_dir)


def marshmallow_root(cache_dir: Path | None = None) -> Path:
    """The pinned marshmallow 3.26.1 source (``marshmallow/``), installed on first use."""
    return install(MARSHMALLOW, cache_dir)


def jinja2_root(cache_dir: Path | None = None) -> Path:
    """The pinned jinja2 3.1.4 source (``jinja2/``), installed on first use."""
    return install(JINJA2, cache_dir)


def werkzeug_root(cache_dir: Path | None = None) -> Path:
    """The pinned werkzeug 3.1.3 source (``werkzeug/``), installed on first use."""
    return install(WERKZEUG, cache_dir)


def flask_root(cache_dir: Path | None = None) -> Path:
    """The pinned flask 3.1.0 source (``flask/``), installed on first use."""
    return install(FLASK, cache_dir)


def structlog_root(cache_dir: Path | None = None) -> Path:
    """The pinned structlog 25.5.0 source (``structlog/``), installed on first use."""
    return install(STRUCTLOG, cache_dir)
