"""Every notebook runs headless (nbclient) against a small simulated dataset, and is kept stripped.

The kernel finds the data through ``NAVILINK_DATA_DIR`` (inherited from this process).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests import report_frames as rf

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_the_five_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_explore.ipynb", "02_efficiency.ipynb",
                                           "03_cycles_and_draws.ipynb", "04_why.ipynb",
                                           "05_whatif.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs"
    first = nb.cells[0].source
    assert "NAVILINK_DATA_DIR" in first and "expects" in first  # says what data it needs
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code").lower()
    # the notebooks use the package's views and charts; they never define analytics SQL themselves
    assert "create view" not in code and "with " not in code and "navilink_etl.report" in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_against_simulated_data(
    path: Path, sim_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("NAVILINK_DATA_DIR", str(sim_data_dir))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, f"{path.name}: expected its charts to be displayed"
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert str(sim_data_dir) in text  # the kernel really read the simulated folder


@pytest.fixture(scope="module")
def sim_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rf.simulated(tmp_path_factory.mktemp("sim"))
