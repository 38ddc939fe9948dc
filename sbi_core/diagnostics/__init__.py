"""Checks of posterior quality, one concept per module.

- :mod:`.c2st`: classifier two-sample test against a reference sample.
- :mod:`.batched`: test datasets, invalid rows dropped and counted, and one shared pass of posterior draws.
- :mod:`.sbc`: simulation-based calibration: ranks of the truth among posterior draws, and their uniformity.
- :mod:`.tarp`: TARP coverage curve with random reference points, and its area to the diagonal.
- :mod:`.coverage`: expected coverage of HPD regions and central intervals, with binomial errors.
- :mod:`.zscore`: posterior z-scores, contraction, and recovery of the true parameters.
- :mod:`.predictive`: posterior predictive check of one observation.
- :mod:`.reference`: C2ST of each round's posterior against the exact one (built-ins that have it).
- :mod:`.ood`: whether an observation lies outside what the network was trained on (k-NN conformal test).
- :mod:`.conformal`: the robust z-scoring, k-NN distances and conformal p-values that :mod:`.ood` and
  :mod:`.misspecification` share.
- :mod:`.misspecification`: whether the model can produce data like the observation (k-NN or MMD, conformal).
- :mod:`.lc2st`: whether the posterior is right at one observation (L-C2ST and L-C2ST-NF), with the batched
  classifiers of :mod:`.ensemble`.
- :mod:`.disagreement`: where estimators trained with different seeds disagree at one observation (a deep
  ensemble as a second opinion; between- against within-member spread, as Gelman-Rubin's R-hat).
"""

from sbi_core.diagnostics.batched import DatasetDraws, draw_for_datasets, drop_invalid, sample_for_datasets
from sbi_core.diagnostics.c2st import c2st
from sbi_core.diagnostics.coverage import Coverage, expected_coverage, outside_central_interval
from sbi_core.diagnostics.disagreement import ensemble_disagreement
from sbi_core.diagnostics.lc2st import LC2ST, run_lc2st
from sbi_core.diagnostics.misspecification import check_misspecification
from sbi_core.diagnostics.ood import OODCheck, TrainingSupport, ood_check
from sbi_core.diagnostics.predictive import PredictiveCheck, posterior_predictive_check
from sbi_core.diagnostics.reference import ReferenceC2ST, ReferenceScore, reference_unavailable
from sbi_core.diagnostics.sbc import check_sbc, run_sbc, sbc_ranks
from sbi_core.diagnostics.tarp import check_tarp, run_tarp
from sbi_core.diagnostics.zscore import Recovery, ZScores, recovery, zscore_contraction

__all__ = [
    "c2st",
    "DatasetDraws",
    "draw_for_datasets",
    "drop_invalid",
    "sample_for_datasets",
    "Coverage",
    "expected_coverage",
    "outside_central_interval",
    "PredictiveCheck",
    "posterior_predictive_check",
    "check_sbc",
    "run_sbc",
    "sbc_ranks",
    "check_tarp",
    "run_tarp",
    "Recovery",
    "ZScores",
    "recovery",
    "zscore_contraction",
    "OODCheck",
    "TrainingSupport",
    "ood_check",
    "ReferenceC2ST",
    "ReferenceScore",
    "reference_unavailable",
    "check_misspecification",
    "LC2ST",
    "run_lc2st",
    "ensemble_disagreement",
]
