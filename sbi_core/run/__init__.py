"""One run: the RunSpec and its link, RunSpec and prior files, run ids, the round loop,
checkpoints, cost estimates and comparisons of runs.

Layer: above simulators, tables, diagnostics and plots (see docs/architecture.md).
``from sbi_core.run.spec import RunSpec`` loads no torch.
"""
