"""Our study files (studies/*.toml) and the README's example: each is a valid study, and each
committed results folder holds every run of its study (``rdip study`` resumes with nothing to run)."""

from pathlib import Path

import pytest
from conftest import DATA

from rdip.experiments.study import RUNS, Plan
from rdip.experiments.studyfile import read_study
from rdip.store import RunLog

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.toml"))
#: The studies whose results folder holds all their runs (the tile probe's holds a sample).
COMPLETE = {"ablation-symmetric", "ablation-unit", "quality", "saturation", "smooth", "stopping"}


def test_the_readme_example_is_a_valid_study(tmp_path):
    text = (ROOT / "README.md").read_text().split("## Run your own study")[1]
    example = text.split("```toml")[1].split("```")[0]
    path = tmp_path / "my-study.toml"
    path.write_text(example)
    study = read_study(path)
    assert list(study.variants) == ["default", "reflect", "nlmeans"] and study.output is None
    assert len(study.sets["cifar"].images) == 15  # the bundled images: no data needed


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_our_studies_are_valid_and_their_results_complete(path):
    if "data =" in path.read_text() and not DATA.is_dir():
        pytest.skip("needs ../shared/data")
    study = read_study(path)
    if path.stem in COMPLETE:
        plan, store = Plan(study), RunLog(study.output / RUNS)
        missing = [n for n, run in plan.runs.items() if not store.done(n, plan.key(run))]
        assert missing == [], f"{len(missing)} runs missing, e.g. {missing[:2]}"
