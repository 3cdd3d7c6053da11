"""Every notebook runs top to bottom on the venv's kernel, and is committed without outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

pytestmark = pytest.mark.integration

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def _kernel_name() -> str:
    """The python3 kernel when it runs this interpreter (``python -m ipykernel install --sys-prefix``)."""
    spec = KernelSpecManager().get_kernel_spec("python3")
    if (
        spec.argv[0] not in ("python", sys.executable)
        and Path(spec.argv[0]).resolve() != Path(sys.executable).resolve()
    ):
        pytest.fail(
            f"kernel 'python3' runs {spec.argv[0]}, not {sys.executable}; "
            f"run: {sys.executable} -m ipykernel install --sys-prefix",
            pytrace=False,
        )
    return "python3"


def test_notebooks_exist() -> None:
    assert {"01_quickstart.ipynb", "03_debugging.ipynb"} <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: strip outputs"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_without_errors(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # the kernel inherits the environment: stay offline
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book,
        kernel_name=_kernel_name(),
        timeout=120,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError with the cell and traceback on the first error
    errors = [
        o
        for c in book.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    assert any(c.outputs for c in book.cells if c.cell_type == "code")
