"""Experiments: the paper's Table II and Fig. 3 (:mod:`.reproduce`), the comparison with other
denoisers (:mod:`.compare`, :mod:`.baselines`), the demo, the throughput benchmark, the saved runs
and their tables, figures and reports; runs are saved and resumed with :mod:`rdip.store`."""
