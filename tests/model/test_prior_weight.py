"""The prior's weight follows the evidence: a project whose reviews disagree with the prior takes
over after a few dozen reviews; one whose reviews agree keeps the prior's full weight."""

from __future__ import annotations

import numpy as np

from openautoglm.model.scores.evaluation import Outcome, ece
from openautoglm.model.scores.fitting import PRIOR_TASKS, fit_outcomes, scored
from openautoglm.model.scores.prior_weight import fit_adaptive


def _tasks(rng, count: int, missed_share: float) -> list[Outcome]:
    """Two regions a task, each right with probability its score; an object missed in `missed_share`."""
    tasks = []
    for _ in range(count):
        scores = rng.uniform(0.3, 1.0, 2)
        tasks.append(Outcome(scores, rng.random(2) < scores, [], int(rng.random() < missed_share)))
    return tasks


def test_reviews_that_disagree_with_the_prior_take_over_and_agreeing_ones_keep_it() -> None:
    rng = np.random.default_rng(5)
    fitted_on = _tasks(rng, 3000, 0.1)
    prior = fit_outcomes(fitted_on, fitted_on, "p@1", 0.25)  # a domain where 1 task in 10 misses an object
    same, shifted = _tasks(rng, 64, 0.1), _tasks(rng, 64, 0.8)  # a new domain: 8 in 10
    agreeing = fit_adaptive(same, same, "p@1", 0.25, prior=prior)
    disagreeing = fit_adaptive(shifted, shifted, "p@1", 0.25, prior=prior)
    assert agreeing.provenance["prior_tasks"][1] >= PRIOR_TASKS
    assert disagreeing.provenance["prior_tasks"][1] < PRIOR_TASKS
    assert set(disagreeing.provenance["prior_weight_losses"]) == {"regions", "tasks"}
    held_out = _tasks(rng, 3000, 0.8)
    fixed = fit_outcomes(shifted, shifted, "p@1", 0.25, prior=prior)

    def task_ece(calibration) -> float:
        values = scored(held_out, calibration)
        return ece(values["task_p"], values["task_ok"])

    assert task_ece(disagreeing) < task_ece(fixed) - 0.05


def test_few_reviews_or_no_prior_fit_as_before() -> None:
    rng = np.random.default_rng(6)
    few, many = _tasks(rng, 5, 0.5), _tasks(rng, 40, 0.5)
    prior = fit_outcomes(many, many, "p@1", 0.25)
    assert fit_adaptive(few, few, "p@1", 0.25, prior=prior) == fit_outcomes(few, few, "p@1", 0.25, prior=prior)
    assert fit_adaptive(many, many, "p@1", 0.25) == fit_outcomes(many, many, "p@1", 0.25)


def test_reviews_taken_lowest_score_first_leave_the_prior_its_weight() -> None:
    """Cross-validated on the low-scored tasks alone, a right prior looks wrong; the reviews are not
    a fair sample of the project's tasks, so the prior keeps its weight there."""
    from openautoglm.model.scores.scoring import ImageEvidence

    rng = np.random.default_rng(7)
    fitted_on = _tasks(rng, 3000, 0.3)
    prior = fit_outcomes(fitted_on, fitted_on, "p@1", 0.25)
    project = _tasks(rng, 400, 0.3)
    shown = [prior.task_probability(prior.region_probability(o.scores), []) for o in project]
    order = np.argsort(shown)
    lowest, rest = [project[i] for i in order[:48]], [project[i] for i in order[48:]]
    waiting = [ImageEvidence.of_scores(o.scores.tolist()) for o in rest]
    calibration = fit_adaptive(lowest, lowest, "p@1", 0.25, prior=prior, unreviewed=waiting)
    assert calibration.provenance["reviews_not_a_fair_sample"] is True
    assert calibration.provenance["prior_tasks"] == PRIOR_TASKS
    shuffled = [project[i] for i in rng.permutation(len(project))]
    fair = fit_adaptive(shuffled[:48], shuffled[:48], "p@1", 0.25, prior=prior,
                        unreviewed=[ImageEvidence.of_scores(o.scores.tolist()) for o in shuffled[48:]])
    assert "reviews_not_a_fair_sample" not in fair.provenance and "prior_weight_losses" in fair.provenance
