"""The study file (rdip.experiments.studyfile): what it accepts, and every refusal naming the
file, the line and the key."""

import os
import re
import textwrap
from importlib.util import find_spec

import numpy as np
import pytest
from conftest import write_png

from rdip.experiments.studyfile import Lines, StudyError, dotted, read_study

GOOD = """
title = "tiny"
reference = "a"

[sets.cifar]
images = "cifar:0-1"
sigma = [0.1]

[variants.a]
preset = "default"
iters = 2

[variants."b c"]
base = "a"
lr = 1e-4

[variants.tv]
method = "tv"
weight = 0.1
"""


def write(tmp_path, text: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_file(tmp_path):
    study = read_study(write(tmp_path, GOOD))
    assert study.title == "tiny" and study.seeds == (0,) and study.seeding == "compare"
    assert list(study.variants) == ["a", "b c", "tv"]
    a, b, tv = study.variants.values()
    assert a.config.iters == 2 and a.config.preset == "default" and a.reference is None
    assert b.config.iters == 2 and b.config.lr == 1e-4 and b.reference == "a"  # base, then its changes
    assert tv.method == "tv" and tv.options == {"weight": 0.1} and tv.config is None
    assert [n for n, _ in study.sets["cifar"].images] == ["cifar-0000", "cifar-0001"]
    assert study.sets["cifar"].indices == {"cifar-0000": 0, "cifar-0001": 1}


def test_sweeps_expand_into_one_variant_per_combination(tmp_path):
    study = read_study(write(tmp_path, GOOD + """
    [variants.grid]
    base = "a"
    sigma = "estimated"
    sweep = { ensemble = [1, 2], stop_ratio = [1.0, 1.3] }
    reference = "grid[ensemble=1, stop_ratio=1]"
    """))
    names = [n for n in study.variants if n.startswith("grid")]
    assert names == ["grid[ensemble=1, stop_ratio=1]", "grid[ensemble=1, stop_ratio=1.3]",
                     "grid[ensemble=2, stop_ratio=1]", "grid[ensemble=2, stop_ratio=1.3]"]
    last = study.variants[names[-1]]
    assert (last.config.ensemble, last.config.stop_ratio, last.sigma_given) == (2, 1.3, False)
    assert last.reference == names[0] and study.variants[names[0]].reference is None  # not itself


def test_file_sets_crops_units_and_paths_relative_to_the_data_folder(tmp_path, rng, monkeypatch):
    monkeypatch.delenv("RDIP_DATA", raising=False)
    (tmp_path / "pics").mkdir()
    for name in ("x", "y"):
        write_png(tmp_path / "pics" / f"{name}.png", rng.integers(0, 256, (40, 48)).astype(np.uint8))
    (tmp_path / "studies").mkdir()
    text = GOOD.replace('[sets.cifar]\nimages = "cifar:0-1"\nsigma = [0.1]', """data = ".."
output = "../out"
[sets.folder]
images = "pics"
crop = 32
sigma_255 = [15, 25]

[sets.files]
images = ["pics/y.png"]
sigma = 0.05""")
    study = read_study(write(tmp_path / "studies", text))
    folder, files = study.sets["folder"], study.sets["files"]
    assert [n for n, _ in folder.images] == ["x", "y"] and folder.images[0][1].shape == (32, 32)
    assert folder.sigmas == (15 / 255, 25 / 255) and folder.scale == 255
    assert files.images[0][1].shape == (40, 48) and files.sigmas == (0.05,)
    assert study.output == tmp_path / "out"
    monkeypatch.setenv("RDIP_DATA", str(tmp_path / "elsewhere"))  # replaces the file's data key
    with pytest.raises(StudyError, match=re.escape(str(tmp_path / "elsewhere" / "pics")) + ": no such"):
        read_study(tmp_path / "studies" / "s.toml")


BAD = [  # (what is changed in GOOD, the key named, words of the message)
    ('title = "tiny"', 'titel = "tiny"', 2, "titel", "unknown key"),
    ("iters = 2", "iterz = 2", 11, "variants.a.iterz", "not a FitConfig field"),
    ("iters = 2", "iters = 0", 11, "variants.a.iters", "iters must be between 1 and"),
    ("iters = 2", 'iters = "two"', 11, "variants.a.iters", "iters must be an integer"),
    ("lr = 1e-4", "lr = -1.0", 15, 'variants."b c".lr', "lr must be > 0"),
    ("lr = 1e-4", "seed = 3", 15, 'variants."b c".seed', "the seeds are the study's"),
    ('preset = "default"', 'preset = "fast"', 10, "variants.a.preset", "unknown preset 'fast'"),
    ('method = "tv"', 'method = "rdip-default"', 18, "variants.tv.method", 'use preset = "default"'),
    ("weight = 0.1", "wieght = 0.1", 19, "variants.tv.wieght", "tv has no option 'wieght'"),
    ("weight = 0.1", 'weight = "much"', 19, "variants.tv.weight", "tv.weight needs a float"),
    ('base = "a"', 'base = "z"', 14, 'variants."b c".base', "'z' is not a variant defined above"),
    ('reference = "a"', 'reference = "q"', 3, "reference", "'q' is not one of the variants"),
    ("sigma = [0.1]", "sigma = [25]", 7, "sets.cifar.sigma", "in (0, 1) ([0, 1] units)"),
    ("sigma = [0.1]", "sigma_255 = [300]", 7, "sets.cifar.sigma_255", "in (0, 255) (0-255 units)"),
    ('images = "cifar:0-1"', 'images = "cifar:0-x"', 6, "sets.cifar.images", "bad index spec"),
    ('images = "cifar:0-1"', 'images = "nowhere/01.png"', 6, "sets.cifar.images", "no such file or folder"),
    ("sigma = [0.1]", "sigma = [0.1]\ncrop = 64", 8, "sets.cifar.crop", "smaller than the crop"),
    ("iters = 2", "iters = 2\nsweep = { sets = [[\"cifar\"]] }", 12, "variants.a.sweep.sets", "cannot be swept"),
    ("iters = 2", 'iters = 2\npadding = "edge"\npad_width = 40', 13, "variants.a.pad_width", "exceeds its 32×32"),
    ("sigma = [0.1]", "sigma = [0.1]\ncrop = 8", 8, "sets.cifar.crop", "must be at least 16"),
    ("iters = 2", "iters = 2\nsweep = { seed = [1, 2] }", 12, "variants.a.seed", "the seeds are the study's"),
    ("iters = 2", "sweep = { iters = [2, -1] }", 11, "variants.a.iters", "iters must be between"),
    ('title = "tiny"', 'seeding = "reproduce"\nseeds = [0, 0]', 3, "seeds", "distinct integers"),
    ('title = "tiny"', 'seeds = [0, 4294967296]', 2, "seeds", "distinct integers from 0 to 4294967295 (2**32 - 1)"),
    ('title = "tiny"', 'scores = ["ssim"]', 2, "scores", "a list of scores from"),
    ('weight = 0.1', 'sets = ["photos"]', 19, "variants.tv.sets", "a list of the study's sets"),
    ('weight = 0.1', 'sigma = "known"', 19, "variants.tv.sigma", 'must be "given" or "estimated"'),
    # a value the method refuses: found here, not when the variant runs after the others
    ("weight = 0.1", "weight = 0", 19, "variants.tv.weight", "tv.weight must be > 0"),
    ("weight = 0.1", "weight = true", 19, "variants.tv.weight", "tv.weight needs a float"),
    ('method = "tv"\nweight = 0.1', 'method = "wavelet"\nwavelet = "nope"', 19, "variants.tv.wavelet",
     "'nope' is not a discrete wavelet"),
    ('method = "tv"\nweight = 0.1', 'method = "nlmeans"\npatch_distance = -2', 19,
     "variants.tv.patch_distance", "nlmeans.patch_distance must be between 1 and 100, got -2"),
    ('method = "tv"\nweight = 0.1', 'method = "nlmeans"\nsweep = { patch_size = [3, -1] }', 19,
     "variants.tv.patch_size", "nlmeans.patch_size must be between 1 and 100, got -1"),
    ('method = "tv"\nweight = 0.1', 'method = "dip"\niters = 0', 19, "variants.tv.iters",
     "dip.iters must be between 1 and"),
    ('method = "tv"\nweight = 0.1', 'method = "zsn2n"\nlr = -1e-3', 19, "variants.tv.lr", "zsn2n.lr must be > 0"),
    ('method = "tv"\nweight = 0.1', 'method = "dip"\ndevice = "tpu"', 19, "variants.tv.device",
     "dip.device must be auto, cpu, cuda or cuda:N"),
]


@pytest.mark.parametrize("old, new, line, key, words", BAD, ids=[b[3] + ":" + b[1] for b in BAD])
def test_bad_keys_and_values_are_refused_at_their_line(tmp_path, old, new, line, key, words):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(StudyError) as e:
        read_study(path)
    message = str(e.value)
    assert message.startswith(f"{path}, line {line}, {key}: "), message
    assert words in message and "\n" not in message


def test_whole_file_errors(tmp_path, rng):
    with pytest.raises(StudyError, match=r"line 2.*not a valid TOML"):
        read_study(write(tmp_path, '\ntitle = "x\n'))
    with pytest.raises(StudyError, match=r"s.toml, variants: give at least one \[variants.NAME\]"):
        read_study(write(tmp_path, GOOD.split("[variants.a]")[0]))
    with pytest.raises(FileNotFoundError, match="no such study file"):
        read_study(tmp_path / "absent.toml")
    write_png(tmp_path / "x.png", rng.integers(0, 256, (32, 32)).astype(np.uint8))
    with pytest.raises(StudyError, match=r'line 3, seeding: "reproduce" seeds by CIFAR-10 index'):
        read_study(write(tmp_path, GOOD.replace("reference", 'seeding = "reproduce"\nreference').replace(
            'images = "cifar:0-1"', 'images = ["x.png"]')))


def test_a_study_file_that_is_a_folder_binary_or_unreadable_is_refused(tmp_path):
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(StudyError, match="folder.toml: is a folder, not a study file"):
        read_study(tmp_path / "folder.toml")
    (tmp_path / "image.toml").write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    with pytest.raises(StudyError, match="image.toml: is not UTF-8 text, so not a study file"):
        read_study(tmp_path / "image.toml")
    locked = write(tmp_path, GOOD, "locked.toml")
    locked.chmod(0)
    if os.geteuid() != 0:  # root reads it all the same
        with pytest.raises(StudyError, match="locked.toml: cannot read the study file .*Permission denied"):
            read_study(locked)


def test_a_missing_image_names_the_path_and_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("RDIP_DATA", raising=False)
    path = write(tmp_path, GOOD.replace('title = "tiny"', 'data = "../../shared/data"').replace(
        'images = "cifar:0-1"', 'images = ["set12/01.png"]'))
    with pytest.raises(StudyError) as e:
        read_study(path)
    missing = tmp_path / "../../shared/data" / "set12/01.png"
    assert f"line 6, sets.cifar.images: {missing}: no such file or folder" in str(e.value)
    assert "given by the study file's data key; set RDIP_DATA" in str(e.value)


def test_a_missing_image_without_a_data_key_does_not_blame_rdip_data(tmp_path, monkeypatch):
    """RDIP_DATA is read only in place of a data key: without one, the paths start from the
    study file's folder, whatever the environment holds, and the message says so."""
    monkeypatch.setenv("RDIP_DATA", str(tmp_path / "elsewhere"))
    path = write(tmp_path, GOOD.replace('images = "cifar:0-1"', 'images = ["set12/01.png"]'))
    with pytest.raises(StudyError) as e:
        read_study(path)
    message = str(e.value)
    assert f"{tmp_path / 'set12/01.png'}: no such file or folder" in message
    assert f"(relative paths start from {tmp_path}, the study file's folder: it has no data key" in message
    assert "given by RDIP_DATA" not in message
    path = write(tmp_path, GOOD.replace('title = "tiny"', 'data = "data"').replace(
        'images = "cifar:0-1"', 'images = ["set12/01.png"]'))
    with pytest.raises(StudyError, match=r"elsewhere, given by RDIP_DATA \(in place of the study file's data key\)"):
        read_study(path)


def test_lines_finds_headers_dotted_and_quoted_keys(tmp_path):
    text = '[a]\nx = 1\n[a."b c"]\n"y.z" = 2\nw.v = { q = 1 }\n'
    lines = Lines(tmp_path / "f.toml", text)
    assert lines.where(("a", "x")).endswith("line 2, a.x")
    assert lines.where(("a", "b c", "y.z")).endswith('line 4, a."b c"."y.z"')
    assert lines.where(("a", "b c", "w", "v", "q")).endswith('line 5, a."b c".w.v.q')  # inside: its table's key
    assert lines.where(("a", "nope")).endswith("line 1, a.nope")
    assert dotted(("variants", "sym-o16")) == "variants.sym-o16"


@pytest.mark.parametrize("name", ['"a/b"', '"a:b"', '"x[1]"', '" padded"', '".."', '"."', '"a\\u0007b"'])
def test_variant_names_that_cannot_be_folder_names_are_refused(tmp_path, name):
    with pytest.raises(StudyError, match=r"line 17, variants.*a variant's name"):
        read_study(write(tmp_path, GOOD.replace("[variants.tv]", f"[variants.{name}]")))


def test_a_prefix_tells_apart_files_of_one_name_and_keeps_their_noise(tmp_path, rng, monkeypatch):
    """Two sets with a file ``a`` each: refused, unless one prefixes its names; its noise stays
    seeded by the file stem (as rdip compare seeds a folder of these files)."""
    from rdip.experiments.study import Plan, noise_seed

    monkeypatch.delenv("RDIP_DATA", raising=False)
    for folder in ("p", "q"):
        (tmp_path / folder).mkdir()
        write_png(tmp_path / folder / "a.png", rng.integers(0, 256, (30, 30)).astype(np.uint8))
    sets = '[sets.p]\nimages = "p"\nsigma = [0.1]\n\n[sets.q]\nimages = "q"\nsigma = [0.1]\n'
    text = GOOD.replace('[sets.cifar]\nimages = "cifar:0-1"\nsigma = [0.1]\n', sets)
    with pytest.raises(StudyError, match="'a' .* is another image than 'a' of set 'p'"):
        read_study(write(tmp_path, text))
    study = read_study(write(tmp_path, text.replace('images = "q"', 'images = "q"\nprefix = "q-"')))
    assert [n for n, _ in study.sets["q"].images] == ["q-a"]
    runs = [r for r in Plan(study).runs.values() if r.variant == "a"]
    assert {r.image for r in runs} == {"a", "q-a"}
    assert {r.noise for r in runs} == {noise_seed("a", 0.1, 0)}  # the same seed, other images


@pytest.mark.parametrize("old, new, key", [
    ('method = "tv"\nweight = 0.1', 'method = "dip"\ndevice = "cuda"', "variants.tv.device"),
    ("iters = 2", 'iters = 2\ndevice = "cuda"', "variants.a.device"),
])
def test_a_cuda_device_is_refused_at_its_line_on_a_machine_without_cuda(tmp_path, monkeypatch, old, new, key):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(StudyError, match=rf"line \d+, {re.escape(key)}: .*'cuda': CUDA is not available"):
        read_study(path)


@pytest.mark.skipif(find_spec("bm3d") is None, reason="bm3d (an optional extra) is not installed")
def test_an_unknown_bm3d_profile_is_refused_at_its_line(tmp_path):
    path = write(tmp_path, GOOD.replace('method = "tv"\nweight = 0.1', 'method = "bm3d"\nprofile = "fast"'))
    with pytest.raises(StudyError, match=r"line 19, variants.tv.profile: bm3d.profile must be one of np"):
        read_study(path)


def test_a_sweep_of_too_many_variants_is_refused_before_it_is_expanded(tmp_path):
    """10^6 combinations: refused at the sweep's line from the product of its sizes (expanding
    them would take minutes; the keys x1…x5 are not even tv options)."""
    ten = "[" + ", ".join(str(i) for i in range(1, 11)) + "]"
    sweep = "sweep = { weight = " + ten + "".join(f", x{k} = {ten}" for k in range(1, 6)) + " }"
    path = write(tmp_path, GOOD.replace("weight = 0.1", sweep))
    with pytest.raises(StudyError) as e:
        read_study(path)
    assert str(e.value) == (f"{path}, line 19, variants.tv.sweep: makes 1,000,000 variants (10 × 10 × 10 × "
                            "10 × 10 × 10, after 2 above), more than the 10,000 a study may hold; sweep "
                            "fewer values, or split the study")


def test_the_variants_and_runs_of_a_study_are_bounded(tmp_path, monkeypatch):
    from rdip.experiments import studyfile

    monkeypatch.setattr(studyfile, "MAX_VARIANTS", 3)
    path = write(tmp_path, GOOD + '\n[variants.more]\nmethod = "tv"\n')
    with pytest.raises(StudyError, match=r"line 21, variants.more: is variant 4, more than the 3 a study"):
        read_study(path)
    path = write(tmp_path, GOOD.replace("weight = 0.1", "sweep = { weight = [0.1, 0.2] }"))
    with pytest.raises(StudyError, match=r"line 19, variants.tv.sweep: makes 2 variants \(2, after 2 above\)"):
        read_study(path)
    monkeypatch.setattr(studyfile, "MAX_RUNS", 5)  # GOOD: 3 variants × 2 images × 1 σ × 1 seed
    with pytest.raises(StudyError, match=r"s.toml: makes 6 runs \(variants × images × σ × seeds\), more "
                                         r"than the 5 a study may hold"):
        read_study(write(tmp_path, GOOD))
    monkeypatch.setattr(studyfile, "MAX_RUNS", 6)
    assert len(read_study(write(tmp_path, GOOD)).variants) == 3


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_study_file_that_is_a_fifo_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "pipe.toml")  # reading it would wait forever for a writer
    with pytest.raises(StudyError, match=r"pipe.toml: is not a regular file \(a FIFO, socket or device\)"):
        read_study(tmp_path / "pipe.toml")


def test_the_largest_seed_is_2_to_the_32_minus_1_as_on_the_command_line(tmp_path):
    assert read_study(write(tmp_path, 'seeds = [0, 4294967295]' + GOOD)).seeds == (0, 2**32 - 1)


@pytest.mark.parametrize("prefix, words", [("../", "holds a path separator"), ("../../x-", "holds a path separator"),
                                           ("a\\nb-", "holds a control character")])
def test_a_prefix_must_keep_image_names_plain_file_names(tmp_path, prefix, words):
    """An image's name is a file name under OUT/images/VARIANT: a prefix that would make it a path
    (out of the output folder) is refused, naming the file, the line and the key."""
    text = GOOD.replace('sigma = [0.1]\n', f'sigma = [0.1]\nprefix = "{prefix}"\n', 1)
    with pytest.raises(StudyError, match=rf"s.toml, line 8, sets.cifar.prefix: image name .* {words}"):
        read_study(write(tmp_path, text))


def test_a_swept_value_must_keep_the_variant_name_a_folder_name(tmp_path):
    text = GOOD + '\n[variants.w]\nmethod = "wavelet"\nsweep = { wavelet = ["../../x"] }\n'
    with pytest.raises(StudyError, match=r"line \d+, variants.w.sweep: the variant name .* holds a path separator"):
        read_study(write(tmp_path, text))


@pytest.mark.parametrize("fields, line, key", [
    ("tile = 32\ntile_overlap = 40", 13, "tile_overlap"),  # its message names the tile too
    ("tile_overlap = 40\ntile = 32", 12, "tile_overlap"),
    ('padding = "edge"\ntile = 8', 13, "tile"),  # its message names the padding too
])
def test_a_bad_tiling_field_is_blamed_on_its_own_line_not_another_it_names(tmp_path, fields, line, key):
    path = write(tmp_path, GOOD.replace("iters = 2", "iters = 2\n" + fields, 1))
    with pytest.raises(StudyError) as e:
        read_study(path)
    assert str(e.value).startswith(f"{path}, line {line}, variants.a.{key}: {key} must be"), str(e.value)
