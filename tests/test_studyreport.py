"""The study's statistics (rdip.experiments.studyreport) against hand computations."""

import math

import pytest

from rdip.experiments.studyreport import _cell, ci95, paired, per_image

T_975_2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom


def test_ci95_of_one_two_three():
    # mean 2, standard deviation 1, n 3: t · 1 / √3
    assert ci95([1.0, 2.0, 3.0]) == pytest.approx(T_975_2 / math.sqrt(3))
    assert math.isnan(ci95([0.5]))


def test_paired_differences_by_hand():
    mine = {"a": 0.5, "b": 0.7, "c": 0.6}
    theirs = {"a": 0.4, "b": 0.75, "c": 0.5, "d": 0.9}  # d: not in mine, not paired
    p = paired(mine, theirs)
    # differences 0.1, -0.05, 0.1: mean 0.05; deviations 0.05, -0.1, 0.05: variance 0.015 / 2,
    # standard error sqrt(0.0075 / 3) = 0.05
    assert p["diff"] == pytest.approx(0.05)
    assert p["ci95"] == pytest.approx(T_975_2 * 0.05)
    assert (p["wins"], p["losses"], p["pairs"]) == (2, 1, 3)


def test_an_image_is_its_mean_over_the_seeds_and_missing_scores_are_left_out():
    records = [{"image": "a", "scores": {"ssim_full": 0.5}}, {"image": "a", "scores": {"ssim_full": 0.7}},
               {"image": "b", "scores": {"ssim_full": None}}, {"image": "c", "scores": {}}]
    assert per_image(records, "ssim_full") == {"a": pytest.approx(0.6)}


def test_cells_show_a_confidence_interval_for_quality_scores_only():
    assert _cell((0.81449, 0.0213, 15), "ssim_full") == "0.814 ± 0.021"
    assert _cell((22.931, 0.5, 15), "psnr") == "22.93 ± 0.50"
    assert _cell((93.4, 12.0, 15), "iters") == "93"
    assert _cell((5.784, 1.0, 15), "seconds") == "5.78"
    assert _cell((1543.7, 1.0, 3), "seconds") == "1544" and _cell((0.00464, 0.1, 3), "seconds") == "0.00464"
    assert _cell(None, "psnr") == ""


def test_the_study_modules_import_downwards_only():
    """study (the runner) uses studyreport and studyfile; neither of them imports study, not even
    inside a function (they imported each other: run_name lives in studyfile now)."""
    import ast
    from pathlib import Path

    import rdip.experiments as package
    from rdip.experiments import study, studyfile

    for name in ("studyreport", "studyfile"):
        tree = ast.parse((Path(package.__file__).parent / f"{name}.py").read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}
        assert "study" not in imported, name
    assert study.run_name is studyfile.run_name  # still importable from the runner
    assert studyfile.run_name("v", "img", 32, 0.1, 2) == "v/img-c32-s0.1-r2"
