"""One number per evaluation, higher is better, that orders candidates the way the benchmark does.

- random_teacher: the benchmark ranks by final eval MSE, so fitness = -log10(final MSE)
  (58.3 -> -1.77, 0.198 -> 0.70); the log keeps selection pressure alive across decades.
- single_ar / mqar: pass beats fail; among passes fewer steps wins; among fails higher final
  accuracy wins (the benchmark's own order). Both then break ties with the area under the eval
  accuracy curve, so two candidates that pass at the same eval point, or fail at the same
  accuracy, still differ. Among passes at the same eval point, the accuracy one eval point before the
  pass decides first (how close the run already was), the area under the curve after that:
      pass: 1 + (max_steps - steps) / max_steps + 0.01 * before + 0.0001 * auc     in [1, 2)
      fail: 0.99 * final_accuracy + 0.01 * auc                                      in [0, 1)
  (0.0101 stays below the gap between eval points, eval_every / max_steps = 0.125.)
"""

from __future__ import annotations

import math

from evaluator.record import EvalResult


def accuracy_auc(result: EvalResult) -> float:
    """Mean eval accuracy over the eval points after step 0: high early and staying high scores well."""
    points = [p.metric for p in result.curve if p.step > 0]
    return sum(points) / len(points) if points else 0.0


def fitness(result: EvalResult) -> float | None:
    if result.outcome != "ok":
        return None
    if not math.isnan(result.final_eval_mse):
        return -math.log10(max(result.final_eval_mse, 1e-30))
    auc = accuracy_auc(result)
    if result.status == "pass":
        earlier = [p.metric for p in result.curve if 0 < p.step < result.pass_step]
        before = earlier[-1] if earlier else 0.0
        return 1.0 + (result.max_steps - result.pass_step) / result.max_steps + 0.01 * before + 0.0001 * auc
    return 0.99 * result.final_eval_accuracy + 0.01 * auc


def describe(result: EvalResult) -> str:
    """The benchmark's own verdict in a few words: `pass @ 150`, `fail 0.918`, `MSE 58.3`."""
    if result.outcome != "ok":
        return result.outcome
    if not math.isnan(result.final_eval_mse):
        return f"MSE {result.final_eval_mse:.4g}"
    if result.status == "pass":
        return f"pass @ {result.pass_step}"
    return f"fail {result.final_eval_accuracy:.4f}"


def target_fitness(track: str) -> float:
    """The fitness at the track's target: a recall pass scores at least 1, an MSE at the target -log10(target)."""
    from evaluator.tracks import get_track

    spec = get_track(track)
    return -math.log10(spec.target_mse) if spec.task == "regression" else 1.0


# The benchmark's AdamW(lr=1e-2, betas=(0.9, 0.99)) on each track (TRACKS.md, "Reference figures"): it fails
# every track, so it marks "a standard optimizer, untuned" on the same scale everywhere.
ADAMW_REFERENCE = {"single_ar": 0.619384765625, "mqar": 0.91802978515625, "random_teacher": 58.3001708984375}


def reference_fitness(track: str) -> float:
    """The benchmark AdamW's fitness on `track` (its accuracy stands for a fail's fitness, 0.99 acc + 0.01 auc)."""
    from evaluator.tracks import get_track

    ref = ADAMW_REFERENCE[track]
    return -math.log10(ref) if get_track(track).task == "regression" else ref


def normalised(track: str, fit: float) -> float:
    """A track's fitness on a scale shared by every track: 0 = the benchmark's AdamW, 1 = the track's target
    (a recall pass; MSE 4e-7). Beyond the target the fitness goes on as it is (a recall pass at step S of
    MAX: 1 + (MAX - S) / MAX), so an earlier pass counts the same on both recall tracks."""
    ref, target = reference_fitness(track), target_fitness(track)
    return 1.0 + (fit - target) if fit >= target else (fit - ref) / (target - ref)


TIE_BREAK = 1e-3  # the worst track's score is compared on this grid; the mean orders candidates within a step


def combined(fits: dict[str, float]) -> float:
    """A multi-track run's fitness: the worst track's normalised score first, then the mean of all of them.

    Lexicographic in one number, so selection, the window's SQL order and the tuner need no change: the
    worst score, floored to the TIE_BREAK grid, plus the mean squashed into less than one grid step."""
    scores = [normalised(track, fit) for track, fit in sorted(fits.items())]
    worst = math.floor(min(scores) / TIE_BREAK) * TIE_BREAK
    mean = sum(scores) / len(scores)
    return worst + 0.99 * TIE_BREAK * (0.5 + math.atan(mean) / math.pi)


def formula(task: str) -> str:
    """The fitness above in one line, for the LLM prompts (a model should know what it is maximising)."""
    if task == "regression":
        return "-log10(final eval MSE): each tenfold drop of the final MSE adds 1."
    return ("pass (target accuracy reached at eval step S of MAX): 1 + (MAX - S) / MAX + 0.01 * auc, in [1, 2); "
            "fail: 0.99 * final eval accuracy + 0.01 * auc, in [0, 1); auc = mean eval accuracy over the eval "
            "points. Any pass beats every fail; an earlier pass beats a later one.")
