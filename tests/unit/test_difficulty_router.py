"""The learned difficulty router: selection by cross-validation, threshold, JSON round trip."""

from __future__ import annotations

import random

import pytest

from tierflow._difficulty_fit import Candidate, cross_validated
from tierflow.difficulty import (
    STRUCTURE_FEATURES,
    DifficultyRouter,
    choose_threshold,
    fit_router,
    load_router,
    routed_outcome,
    structure_features,
)
from tierflow.errors import InputError, SpecError

FAST = (Candidate("knn", 15), Candidate("logistic", 0.1), Candidate("hgb", 0.1))


def _synthetic(n: int = 240, seed: int = 1) -> tuple[list[list[float]], list[bool], list[bool]]:
    """The weak model is right when the first feature is high; the second is noise."""
    rng = random.Random(seed)
    rows, weak, strong = [], [], []
    for _ in range(n):
        hard = rng.random()
        rows.append([1 - hard + rng.gauss(0, 0.1), rng.gauss(0, 1)])
        weak.append(rng.random() > hard)
        strong.append(rng.random() < 0.9)
    return rows, weak, strong


def test_threshold_meets_its_target_on_the_calibration_rows():
    rows, weak, strong = _synthetic()
    router = fit_router(rows, weak, strong, ("signal", "noise"), target=0.95, candidates=FAST)
    chosen = next(c for c in FAST if c.label == router.evidence["chosen"])
    oof = cross_validated(rows, weak, chosen)  # what the threshold was chosen on
    sent = [p >= router.threshold for p in oof]
    quality, share = routed_outcome(sent, weak, strong)
    strong_q = sum(strong) / len(strong)
    assert quality >= 0.95 * strong_q - 1e-12
    assert router.evidence["calibration_quality_vs_strong"] >= 0.95 - 1e-4
    assert 0 < share < 1  # it does route, and it does not send everything strong


def test_selection_prefers_a_model_that_reads_the_signal():
    rows, weak, strong = _synthetic()
    router = fit_router(rows, weak, strong, ("signal", "noise"), candidates=FAST)
    cv = {c["candidate"]: c["auc"] for c in router.evidence["cv"]}
    assert set(cv) == {c.label for c in FAST}
    assert router.kind in ("knn", "logistic")  # hgb is scored but never the router
    assert cv[router.evidence["chosen"]] == max(v for k, v in cv.items() if not k.startswith("hgb"))
    easy, hard = router.p_weak([[1.0, 0.0], [0.0, 0.0]])
    assert easy > hard


def test_choose_threshold_is_the_cheapest_that_meets_the_target():
    p = [0.9, 0.8, 0.6, 0.3, 0.1]
    weak = [1, 1, 0, 1, 0]
    strong = [1, 1, 1, 1, 1]
    theta = choose_threshold(p, weak, strong, target=0.8)
    assert theta == 0.3  # the four likeliest go weak: 4 of 5 right, one strong call
    quality, share = routed_outcome([x >= theta for x in p], weak, strong)
    assert quality >= 0.8 and share == 0.2
    for lower in (0.1, 0.0):  # every cheaper threshold misses the target
        q, _ = routed_outcome([x >= lower for x in p], weak, strong)
        assert q < 0.8


def test_choose_threshold_with_costs_and_a_bad_target():
    # With costs, dollars decide between thresholds that both meet the target.
    theta = choose_threshold([0.9, 0.5], [1, 1], [1, 1], 1.0, [1.0, 1.0], [10.0, 10.0])
    assert theta == 0.5
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        choose_threshold([0.5], [1], [1], target=1.5)


def test_routed_outcome_counts_cost_both_ways():
    weak = [True, False, True]
    assert routed_outcome(weak, [1, 1, 0], [1, 0, 1]) == (
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
    )
    assert routed_outcome(weak, [1, 1, 0], [1, 0, 1], [0.5, 0.5, 0.5], [4.0, 4.0, 4.0]) == (
        pytest.approx(1 / 3),
        5.0,
    )


def test_router_round_trips_through_json(tmp_path):
    rows, weak, strong = _synthetic(120)
    for candidates in ((Candidate("knn", 15),), (Candidate("logistic", 1.0),)):
        router = fit_router(rows, weak, strong, ("signal", "noise"), candidates=candidates)
        back = load_router(router.save(tmp_path / f"{router.kind}.json"))
        assert back == router
        assert back.p_weak(rows[:7]) == pytest.approx(router.p_weak(rows[:7]))
        assert back.send_weak(rows[:7]) == router.send_weak(rows[:7])


def test_knn_router_is_the_smoothed_share_of_right_neighbours():
    router = DifficultyRouter(kind="knn", feature_names=("x",), mean=(0.0,), scale=(1.0,),
                              points=((0.0,), (0.1,), (5.0,)), labels=(1, 1, 0), k=2)  # fmt: skip
    near, far = router.p_weak([[0.05], [4.0]])
    assert near == pytest.approx(2.5 / 3) and far == pytest.approx(1.5 / 3)


def test_bad_declarations_and_inputs_are_refused_with_the_fix():
    with pytest.raises(SpecError, match="one per feature name"):
        DifficultyRouter(kind="logistic", feature_names=("a", "b"), mean=(0.0,), scale=(1.0,))
    router = DifficultyRouter(kind="logistic", feature_names=("a",), mean=(0.0,), scale=(1.0,),
                              weights=(1.0,))  # fmt: skip
    with pytest.raises(InputError, match="1 columns"):
        router.p_weak([[1.0, 2.0]])
    with pytest.raises(InputError, match="refit"):
        DifficultyRouter.from_dict({"format": 99})
    rows, weak, strong = _synthetic(30)
    with pytest.raises(InputError, match="one of each"):
        fit_router(rows, weak[:-1], strong, ("signal", "noise"))


def test_structure_features_read_length_numbers_and_form():
    plain = dict(zip(STRUCTURE_FEATURES, structure_features("Name a colour."), strict=True))
    maths = dict(
        zip(
            STRUCTURE_FEATURES,
            structure_features("How many is 3 + 4 out of $1,200?\nA. 7\nB. 8"),
            strict=True,
        )
    )
    assert plain["numbers"] == 0 and plain["question_mark"] == 0
    assert maths["numbers"] == 5 and maths["choices"] == 2 and maths["money"] == 1
    assert maths["wh_word"] == 1 and maths["log_chars"] > plain["log_chars"]


def test_a_confidence_keeps_a_margin_over_the_target_and_costs_more_for_it():
    # 200 items, strong always right; the weak model is right on the 150 likeliest only
    n = 200
    p = [1 - i / n for i in range(n)]
    weak, strong = [1 if i < 150 else 0 for i in range(n)], [1] * n
    plain = choose_threshold(p, weak, strong, target=0.95)
    sure = choose_threshold(p, weak, strong, target=0.95, confidence=0.9)
    q_plain, share_plain = routed_outcome([x >= plain for x in p], weak, strong)
    q_sure, share_sure = routed_outcome([x >= sure for x in p], weak, strong)
    # without a confidence the target is met on these rows exactly, as cheaply as it can be
    assert q_plain == 0.95
    # with one, the chosen routing keeps a margin over the target and costs more for it
    assert 0.95 < q_sure < 1 and share_sure > share_plain
    with pytest.raises(InputError, match="confidence"):
        choose_threshold(p, weak, strong, confidence=1.5)


def test_with_a_confidence_the_first_failing_threshold_ends_the_sequence():
    # the weak model is wrong on a block in the middle, and right at the bottom where the
    # strong one is wrong: sending everything weak meets the target on average, but only by
    # luck past a threshold that failed; the fixed sequence never reaches it
    n = 200
    p = [1 - i / n for i in range(n)]
    weak = [0 if 150 <= i < 170 else 1 for i in range(n)]
    strong = [0 if i >= 170 else 1 for i in range(n)]
    assert choose_threshold(p, weak, strong, target=0.95) == min(p)  # all weak
    sure = choose_threshold(p, weak, strong, target=0.95, confidence=0.9)
    assert sure > p[170]
