"""``rdip study``: every (variant, image, σ, seed) of a study file as one run, resumably.

A run is named ``<variant>/<image>[-c<crop>]-s<σ>-r<seed>`` and saved, as it finishes, as one line
of ``OUT/runs.jsonl`` (:class:`rdip.store.RunLog`) with its image in ``OUT/images/`` where the
study keeps images. A saved run is reused when its key matches (:func:`rdip.store.same`): the
image (its name, crop and the SHA-1 of the clean pixels), σ, the seeds of the noise and of the
network, whether σ is given and the noise clipped, and the variant's configuration (the fields
that decide a result, :meth:`FitConfig.settings`) or its method and options (``device`` aside),
and its kept image, where there is one, is whole. So a rerun computes only what is missing (a
damaged line of runs.jsonl, or image, is missing), and a changed variant recomputes only its own
runs. :func:`check_output` refuses a folder that is not a study's (a study's holds rdip's lock
file, :data:`LOCK`), or where an output would replace a folder or write through a link, before
anything is run or written; the lock is taken before runs.jsonl is read, so runs that another
study process saved are in what is rewritten.

Noise: Gaussian, not clipped unless the variant says, seeded as the study's ``seeding`` says
(:data:`rdip.experiments.studyfile.SEEDINGS`; by default as ``rdip compare``), so every variant
denoises the same noisy images. The runs still to do are cut into batches before any is run: the
runs of one rdip variant on images of one shape, ``chunk`` images at a time (the configuration's,
or the engine's automatic one for its device), each batch one call of :func:`rdip.fit_many`
(which stacks them), and one run per batch for a baseline method. Each batch runs on one torch
thread, in this process or in one of ``workers`` processes; a batch's results do not depend on
where it ran, so ``workers`` changes the time, not the results.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..config import range_width
from ..images.files import atomic_write
from ..images.metrics import scores as image_scores
from ..images.noise import add_noise
from ..progress import progress_bar
from ..store import RunLog, folder_lock
from .studyfile import CENTRE, Study, Variant, digest, known_options, run_name

RUNS, IMAGES, LOCK, COPY = "runs.jsonl", "images", ".rdip-study.lock", "study.toml"
OUTPUTS = (RUNS, "summary.csv", "summary.md", "report.html", COPY)


@dataclass(frozen=True)
class Run:
    """One run of a study: a variant on one image (of set ``set``, the first that holds it) at
    one σ ([0, 1] units) and seed; ``noise`` and ``net`` seed the noise and the network."""

    variant: str
    set: str
    image: str
    crop: int | None
    sigma: float
    seed: int
    noise: int
    net: int

    @property
    def name(self) -> str:
        return run_name(self.variant, self.image, self.crop, self.sigma, self.seed)


def noise_seed(name: str, sigma: float, seed: int) -> int:
    """The seed of the noise added to image ``name`` at ``sigma`` as ``rdip compare`` seeds it:
    ``seed * 2**32 + crc32('<image>-s<sigma:g>')``, so an image's noise does not depend on which
    other images or σ are run."""
    return seed * 2**32 + zlib.crc32(f"{name}-s{sigma:g}".encode())


def seeds_for(seeding: str, image: str, index: int | None, sigma: float, seed: int) -> tuple[int, int]:
    """The seeds of the noise and of the network for ``image`` at ``sigma`` and ``seed``."""
    if seeding == "reproduce":  # rdip reproduce: both image + 10000 × seed
        return index + 10000 * seed, index + 10000 * seed
    if seeding == "denoise":  # rdip denoise --add-noise --seed: both the seed itself
        return seed, seed
    return noise_seed(image, sigma, seed), seed  # rdip compare


class Plan:
    """Every run of ``study`` in order (variants, then their sets, images, σ, seeds; a run that two
    sets share once), its key, and the clean and noisy images."""

    def __init__(self, study: Study):
        self.study = study
        self.clean = {(n, s.crop): x for s in study.sets.values() for n, x in s.images}
        self.runs: dict[str, Run] = {}
        for v in study.variants.values():
            for s in (study.sets[name] for name in v.sets):
                for n, _ in s.images:
                    for sigma in s.sigmas:
                        for seed in study.seeds:
                            noise, net = seeds_for(study.seeding, s.stems.get(n, n), s.indices.get(n), sigma, seed)
                            run = Run(v.name, s.name, n, s.crop, sigma, seed, noise, net)
                            self.runs.setdefault(run.name, run)
        self._digests: dict[tuple, str] = {}
        self._noisy: dict[tuple, np.ndarray] = {}

    def plain(self, set_name: str, image: str, sigma: float, seed: int) -> Run:
        """The run of no variant at ``image`` of set ``set_name``, ``sigma`` and ``seed``: its
        noisy image is every variant's (the noisy input of the summary and the report)."""
        s = self.study.sets[set_name]
        noise, net = seeds_for(self.study.seeding, s.stems.get(image, image), s.indices.get(image), sigma, seed)
        return Run("", set_name, image, s.crop, sigma, seed, noise, net)

    def clean_of(self, run: Run) -> np.ndarray:
        return self.clean[(run.image, run.crop)]

    def noisy(self, run: Run, clip: bool = False) -> np.ndarray:
        """The noisy image of ``run`` (clipped to [0, 1] for a variant that clips the noise)."""
        at = (run.image, run.crop, run.sigma, run.noise, clip)
        if at not in self._noisy:
            self._noisy[at] = add_noise(self.clean_of(run), run.sigma, seed=run.noise, clip=clip)
        return self._noisy[at]

    def key(self, run: Run) -> dict:
        """What a saved run must match to be reused (see the module)."""
        v = self.study.variants[run.variant]
        at = (run.image, run.crop)
        if at not in self._digests:
            self._digests[at] = digest(self.clean[at])
        key = {"variant": run.variant, "image": run.image, "crop": run.crop, "sigma": run.sigma,
               "seed": run.seed, "noise_seed": run.noise, "net_seed": run.net,
               "sigma_given": v.sigma_given, "clip_noise": v.clip_noise, "clean_sha1": self._digests[at]}
        if v.config is not None:
            key["config"] = v.config.replace(seed=run.net).settings()
        else:
            key.update(method=v.method, options=identity(v.options))
        return key


def identity(options: dict) -> dict:
    """A method's options without ``device``: where a run was made is recorded with it
    (``device``) but does not decide whether it may be reused (GPU and CPU runs of one method
    differ by rounding only)."""
    return {k: v for k, v in options.items() if k != "device"}


def method_device(method: str, options: dict) -> str:
    """Where ``method`` runs with ``options``: its ``device`` option or default, resolved
    (``cpu``, ``cuda``); the classical methods (no ``device`` option) run on the CPU."""
    from ..method.devices import resolve_device

    return resolve_device(options.get("device", known_options(method).get("device", "cpu"))).type


@dataclass
class Batch:
    """Runs done in one call: one variant, images of one shape; what a worker gets."""

    variant: Variant
    names: list[str]
    noisy: list[np.ndarray]
    clean: list[np.ndarray]
    sigmas: list[float]
    given: list[float | None]
    nets: list[int]
    history: bool = False


def batches(plan: Plan, todo: list[str]) -> list[Batch]:
    """The runs ``todo`` cut into :class:`Batch` es (see the module), in the order of ``todo``."""
    from ..method.devices import auto_chunk, resolve_device

    groups: dict[tuple, list[Run]] = {}
    for name in todo:
        run = plan.runs[name]
        stacks = plan.study.variants[run.variant].config is not None  # methods: one run a call
        groups.setdefault((run.variant, plan.clean_of(run).shape if stacks else None), []).append(run)
    out = []
    for (variant, _), runs in groups.items():
        v = plan.study.variants[variant]
        size = 1 if v.config is None else v.config.chunk or auto_chunk(resolve_device(v.config.device))
        for start in range(0, len(runs), size):
            part = runs[start:start + size]
            out.append(Batch(v, [r.name for r in part], [plan.noisy(r, v.clip_noise) for r in part],
                             [plan.clean_of(r) for r in part], [r.sigma for r in part],
                             [r.sigma if v.sigma_given else None for r in part], [r.net for r in part],
                             plan.study.keep_history))
    return out


def fit_batch(batch: Batch, callback=None) -> list[tuple[str, dict, np.ndarray]]:
    """Run ``batch``; ``(name, record fields, image)`` per run: its scores (:data:`SCORES`), its
    full configuration or method and options, and where it ran."""
    import torch

    from .. import __version__

    v, versions = batch.variant, {"rdip": __version__, "torch": torch.__version__}
    if v.config is None:
        return [_method_run(batch, i, versions) for i in range(len(batch.names))]
    from ..method.engine import fit_many

    configs = [v.config.replace(seed=s) for s in batch.nets]
    results = fit_many(batch.noisy, configs, clean=batch.clean, sigma=batch.given, callback=callback)
    out = []
    for name, r, clean, sigma in zip(batch.names, results, batch.clean, batch.sigmas):
        found = image_scores(r.image, clean, CENTRE)
        best = max(r.history, key=lambda h: h["ssim_full"], default=None)
        found.update(seconds=r.seconds, iters=r.iters_run,
                     ssim_best=best and best["ssim_full"], best_iter=best and best["iter"],
                     loss_ratio=float(r.loss[-1]) / (sigma * range_width(r.config.range)) ** 2)
        record = {"scores": found, "config": r.config.to_dict(), "stopped_at": r.stopped_at,
                  "loss_first": float(r.loss[0]), "loss_last": float(r.loss[-1]), "device": r.device,
                  **versions}
        if batch.history:
            record["history"] = r.history
        out.append((name, record, r.image))
    return out


def _method_run(batch: Batch, i: int, versions: dict) -> tuple[str, dict, np.ndarray]:
    from .baselines import run_method

    v, run = batch.variant, batch.names[i].split("/", 1)[1]
    started = time.perf_counter()
    try:
        image = run_method(v.method, batch.noisy[i], sigma=batch.given[i], seed=batch.nets[i], **v.options)
    except (ValueError, TypeError) as e:  # e.g. an option value the method refuses
        raise ValueError(f"{v.name} on {run}: {e}") from e
    if not np.isfinite(image).all():  # never saved, never scored as NaN
        raise FloatingPointError(f"{v.name} on {run} gave NaN or infinite values; check its options "
                                 f"({v.options or 'the defaults'})")
    found = image_scores(image, batch.clean[i], CENTRE)
    iters = v.options.get("iters", known_options(v.method).get("iters"))
    found.update(seconds=time.perf_counter() - started, iters=iters)
    return batch.names[i], {"scores": found, "method": v.method, "options": v.options,
                            "device": method_device(v.method, v.options), **versions}, image


def _one_thread(parent: int) -> None:
    """A worker's set-up: one torch thread (see :func:`run_batches`), and a watch that ends the
    worker when its parent ``parent`` is gone (killed, it cannot shut the pool down: its workers
    would compute on for nothing)."""
    import torch

    torch.set_num_threads(1)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()


def _end_with(parent: int, every: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


@contextmanager
def _threads(count: int | None):
    """``count`` torch threads in this process for the block (None: as many as it has)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_batches(todo: list[Batch], save, workers: int = 1, bar=None, *, threads: int | None = 1) -> None:
    """Run every batch: here (``workers`` 1) on ``threads`` torch threads (None: as many as this
    process has; rdip compare), or in ``workers`` processes of one torch thread each;
    ``save(name, fields, image)`` each run as its batch ends (in this process)."""
    def done(results) -> None:
        for result in results:
            save(*result)
        if bar is not None:
            bar.update(len(results))

    if workers <= 1 or len(todo) <= 1:
        with _threads(threads):
            for batch in todo:
                if bar is not None:
                    bar.set_postfix_str(batch.variant.name, refresh=False)
                done(fit_batch(batch, callback=lambda p: bar.update(0) if bar is not None else None))
        return
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn"),
                             initializer=_one_thread, initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(fit_batch, b) for b in todo}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def check_output(out: Path, study_file: Path | None = None) -> None:
    """``out`` may be a new folder, an empty one (but for the study file itself) or a study's:
    one holding :data:`LOCK`, which rdip study makes before it writes anything else there (a
    ``runs.jsonl`` without it is not rdip's, and is never rewritten). Each output must be a file,
    the images a folder, none a symbolic link, nor anything under the images."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder; choose another -o")
    if not out.is_dir():
        return
    for name in (*OUTPUTS, IMAGES):  # (the lock: folder_lock)
        path = out / name
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link; nothing was written (remove it)")
        if path.exists() and path.is_dir() != (name == IMAGES):
            raise ValueError(f"{path}: is {'not ' if name == IMAGES else ''}a folder; nothing was "
                             "written (move it away, or choose another -o)")
    if (out / IMAGES).is_dir():  # (rglob does not descend into a linked folder; it names it)
        if link := next((p for p in (out / IMAGES).rglob("*") if p.is_symlink()), None):
            raise ValueError(f"{link} is a symbolic link; rdip study writes no image through one, "
                             "nothing was written (remove it)")
    if os.path.lexists(out / RUNS):
        if (out / LOCK).is_symlink() or not (out / LOCK).is_file():
            raise FileExistsError(f"{out}: holds a {RUNS} that rdip study did not write (no {LOCK} "
                                  "beside it), so it is not a study's folder; choose a new or empty folder")
        return
    mine = [LOCK] + ([COPY] if study_file is not None and _same_file(out / COPY, study_file) else [])
    if [p for p in out.iterdir() if p.name not in mine]:
        raise FileExistsError(f"{out}: holds files but no {RUNS}, so it is not a study's folder; "
                              "choose a new or empty folder")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def run_study(study: Study, out: Path, *, workers: int = 1, progress: bool = True, log=print,
              check_only: bool = False) -> list[dict]:
    """Run (or resume) ``study`` into ``out`` and write :data:`OUTPUTS`; return the summary rows.

    Everything is checked before anything is written. ``check_only``: say what would run and
    write nothing.
    """
    from .studyreport import write_outputs

    out = Path(out)
    check_output(out, study.path)
    plan = Plan(study)
    if check_only:  # read only: nothing is rewritten, so no lock is needed
        _todo(study, plan, out, workers, log)
        return []
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out / LOCK, f"{out} is in use by another rdip study"):
        check_output(out, study.path)  # again, under the lock: then read what will be rewritten
        store, todo, work = _todo(study, plan, out, workers, log)

        def save(name: str, fields: dict, image: np.ndarray) -> None:
            store.save(name, {**plan.key(plan.runs[name]), **fields}, image)

        try:
            with progress_bar(len(todo), "study", enabled=progress, unit="run") as bar:
                run_batches(work, save, workers, bar)
        finally:
            store.rewrite(plan.runs)  # one line per run, in the study's order
        rows = write_outputs(study, plan, store, out)
        atomic_write(out / COPY, lambda tmp: shutil.copyfile(study.path, tmp))
    log(f"wrote {', '.join(str(out / n) for n in OUTPUTS)}")
    return rows


def _todo(study: Study, plan: Plan, out: Path, workers: int, log) -> tuple[RunLog, list[str], list[Batch]]:
    """The saved runs of ``out`` (read now), the runs still to do and their batches; ``log`` says
    how many."""
    store = RunLog(out / RUNS, out / IMAGES if study.keep_images else None)
    todo = [name for name, run in plan.runs.items() if not store.done(name, plan.key(run))]
    work = batches(plan, todo)
    log(f"rdip study: {_count(len(plan.runs), 'run')} ({_count(len(study.variants), 'variant')}, "
        f"{_count(len(study.sets), 'image set')}); {len(plan.runs) - len(todo)} already done in {out}/, "
        f"{len(todo)} to run ({_count(len(work), 'batch')}, {_count(workers, 'worker')})")
    return store, todo, work


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 'es' if what.endswith('ch') else 's'}"
