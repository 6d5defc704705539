"""The golden set (issue 16): float64 runs of every registered algorithm, with a compressor and a
random-link model where the method takes them, the option branches a refactor touches (momentum,
weight decay, schedules, variants, masks, copy starts, bit conventions), and the default job.

``python tests/golden/record.py`` writes ``<case>.csv`` (every metrics column but wall time) and
``<case>.safetensors`` (the final state); ``tests/test_golden.py`` reruns each case and compares
bit for bit. Re-record only in a commit that means to change numbers, and say so in it."""

BASE = ["graph.n=6", "problem.dim=6", "problem.samples=10", "problem.batch_size=4", "run.dtype=float64",
        "run.iterations=40", "run.eval_every=10", "run.seed=3"]
LINKS = ["graph.links=bernoulli", "graph.link_p=0.6"]
ONE_EDGE = ["graph=complete", "graph.links=one_edge"]
HEAVY = ["algo.momentum=0.5"]
DECAY = ["algo.weight_decay=0.01"]

CASES = {
    "default": [],                                                      # the README's first command
    "dsgd": BASE + ["algo=dsgd", "compressor=qsgd", "compressor.bits=4", "algo.schedule=inverse", "algo.a1=5"] + LINKS,
    "dsgd_gd": BASE + ["algo=dsgd_gd", "compressor=topk", "compressor.ratio=0.5"] + LINKS,
    "dsgd_gd_perf": ["graph.n=6", "problem=gaussian_mean", "run.dtype=float64", "run.iterations=40",
                     "run.eval_every=10", "run.seed=3", "algo=dsgd_gd", "compressor=qsgd8"] + LINKS,
    "docom": BASE + ["algo=docom", "compressor=topk", "compressor.ratio=0.3"] + HEAVY,
    "docom_pytorch": BASE + ["algo=docom", "algo.variant=pytorch", "compressor=qsgd", "compressor.bits=4",
                             "algo.copy_init=x0", "algo.b0=8"],
    "choco": BASE + ["algo=choco", "compressor=qsgd8", "algo.copy_init=x0"] + LINKS + HEAVY,
    "choco_pytorch": BASE + ["algo=choco", "algo.variant=pytorch", "compressor=sign"] + HEAVY,
    "beer": BASE + ["algo=beer", "compressor=randk", "compressor.ratio=0.5", "algo.b0=8"] + HEAVY,
    "beer_pytorch": BASE + ["algo=beer", "algo.variant=pytorch", "compressor=topk", "compressor.ratio=0.5"],
    "diging": BASE + ["algo=diging"] + LINKS,
    "gnsd": BASE + ["algo=gnsd"] + ONE_EDGE,
    "gt_hsgd": BASE + ["algo=gt_hsgd", "algo.b0=8"] + LINKS,
    "swarm_sgd": BASE + ["algo=swarm_sgd", "algo.local_steps=2", "compressor=qsgd", "compressor.bits=4"] + ONE_EDGE,
    "ticopd": BASE + ["algo=ticopd", "compressor=topk", "compressor.ratio=0.3", "algo.beta=0.9",
                      "algo.dual_on=x", "run.paper_metrics=true"] + HEAVY + DECAY,
    "ticopd_inverse": BASE + ["algo=ticopd", "compressor=noisy", "algo.schedule=inverse", "algo.a1=10",
                              "algo.copy_init=x0"],
    "ticopd_robust": BASE + ["algo=ticopd_robust", "compressor=randk", "compressor.ratio=0.5",
                             "algo.penalty_lr=scheduled", "algo.schedule=inverse", "algo.a1=10"] + LINKS + HEAVY + DECAY,
    "fspda": BASE + ["algo=fspda", "algo.mask_ratio=0.5", "run.bits_convention=paper"] + ONE_EDGE,
    "fspda_unshared": BASE + ["algo=fspda", "algo.mask_ratio=0.5", "algo.shared_mask=false", "algo.k_rule=code",
                              "algo.dual_update=official", "algo.eta_follows_lr=true", "algo.schedule=inverse",
                              "algo.a1=10", "algo.beta=0.9"] + LINKS + HEAVY + DECAY,
    "fspda_async": BASE + ["algo=fspda", "algo.async_cbar=[2.0]", "run.bits_convention=edge"] + LINKS,
    "fspda_storm": BASE + ["algo=fspda_storm", "algo.mask_ratio=0.5", "algo.shared_mask=false"] + LINKS + DECAY,
    "cpsgd": BASE + ["algo=cpsgd", "compressor=qsgd", "compressor.bits=4", "algo.omega=0.5",
                     "algo.alpha=0.5"] + HEAVY + DECAY,
}
TIMING = ("wall_time",)        # the one column a rerun may change
