"""The paper-figures notebook runs end to end at its small size; its cells assert the paper's facts."""

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_paper_figures_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("EPMSWEEP_NOTEBOOK_SIZE", "small")
    monkeypatch.setenv("EPMSWEEP_EXAMPLES", str(EXAMPLES))
    monkeypatch.setenv("EPMSWEEP_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(EXAMPLES / "paper_figures.ipynb", as_version=4)
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # flow curve, distributions, Fig. 2, Fig. 3
    text = "".join(o.get("text", "") for o in outputs)
    assert "Sigma_Y =" in text and "stuck at 0.65" in text
    assert sorted(p.name for p in tmp_path.glob("*.nc")) == [
        "paper_fig1_small.nc", "paper_fig2_small.nc", "paper_fig3_small.nc"
    ]
    assert os.environ["EPMSWEEP_NOTEBOOK_SIZE"] == "small"
