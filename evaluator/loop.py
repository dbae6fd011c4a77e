"""The benchmark's training loop, one screen long, faithful to docs/BENCHMARK.md.

`train` runs in whatever process calls it; isolation is the sandbox's job (evaluator/sandbox.py).
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from evaluator.record import EvalPoint, EvalResult
from evaluator.tracks import NUM_VALUES, TrackData


class NonFiniteError(RuntimeError):
    """The loss or a parameter became NaN/inf: the run cannot recover, so stop early."""


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TrackData) -> tuple[float, float]:
    """(metric, loss) on the whole eval set: MSE twice for regression, (accuracy, cross-entropy) for recall."""
    model.eval()
    out = model(data.eval_x)
    if data.spec.task == "regression":
        mse = F.mse_loss(out, data.eval_y).item()
        return mse, mse
    accuracy = (out.argmax(dim=-1) == data.eval_y).float().mean().item()
    loss = F.cross_entropy(out.reshape(-1, NUM_VALUES), data.eval_y.reshape(-1)).item()
    return accuracy, loss


def noisy_gradients(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Replaces every gradient by Gaussian noise of the same norm and the same zeros: a compliance
    probe, never used to score.

    An optimizer that still drives the eval metric down without real gradients is not learning
    from the data it was given (the seed-1729 teacher reconstruction is the textbook case). The
    noise keeps each gradient's sparsity (embedding rows no batch touched stay zero), so an
    optimizer cannot tell the probe from a real run by how dense its gradients are.
    """
    for p in model.parameters():
        if p.grad is not None:
            # drawn on the CPU (the generator's device), then moved: the same noise on every device
            noise = torch.randn(p.grad.shape, generator=gen, dtype=p.grad.dtype).to(p.grad.device)
            noise = noise * (p.grad != 0)
            p.grad = noise * (p.grad.norm() / noise.norm().clamp_min(1e-12))


@dataclass(frozen=True)
class Gate:
    """The fidelity cascade inside one run: at `step`, a run whose eval metric falls short of
    `threshold` stops there (None: record the metric, never stop).

    A run that stops is exactly the `step`-step run (same record, bit for bit); one that goes on is
    exactly the ungated run, so a promoted child pays for its proxy steps once, not twice.
    """

    step: int
    threshold: float | None = None

    def admits(self, metric: float, regression: bool) -> bool:
        if self.threshold is None:
            return True
        return metric <= self.threshold if regression else metric >= self.threshold  # NaN never passes


def train(optimizer_cls: type, data: TrackData, steps: int | None = None, submission: str = "",
          gradient_noise_seed: int | None = None, gate: Gate | None = None,
          before_evaluate: Callable[[], None] | None = None) -> EvalResult:
    """Trains the track's student with `optimizer_cls(model.parameters())` for `steps` steps.

    `before_evaluate()` runs before every evaluation (the gate's and the final one included): the
    sandbox's takes the parameters private there, out of the candidate's reach (evaluator/remote.py).
    """
    spec = data.spec
    max_steps = steps or spec.max_steps
    if max_steps > data.batch_indices.shape[0]:
        raise ValueError(f"track data holds {data.batch_indices.shape[0]} batches, {max_steps} asked for")
    if gate is not None and not 0 < gate.step < max_steps:
        gate = None  # a gate at or past the end gates nothing
    gate_metric = None
    regression = spec.task == "regression"
    loss_fn = data.loss_fn

    model = data.make_student()
    optimizer = optimizer_cls(model.parameters())
    noise = torch.Generator().manual_seed(gradient_noise_seed) if gradient_noise_seed is not None else None

    def evaluate_now() -> tuple[float, float]:
        if before_evaluate is not None:
            before_evaluate()
        return evaluate(model, data)

    initial_metric, initial_loss = evaluate_now()
    curve = [EvalPoint(step=0, metric=initial_metric, loss=initial_loss)]
    best = initial_metric
    pass_step = None
    last_loss = math.nan

    started = time.perf_counter()
    for step in range(1, max_steps + 1):
        model.train()
        indices = data.batch_indices[step - 1]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(data.train_x[indices]), data.train_y[indices])
        loss.backward()
        if noise is not None:
            noisy_gradients(model, noise)
        optimizer.step()
        last_loss = loss.item()
        if not math.isfinite(last_loss):
            raise NonFiniteError(f"training loss became {last_loss} at step {step}")
        at_eval = step % spec.eval_every == 0 or step == max_steps
        at_gate = gate is not None and step == gate.step
        if at_eval or at_gate:  # evaluating touches no RNG and no training state: the run is unchanged
            metric, eval_loss = evaluate_now()
        if at_gate:
            gate_metric = metric
            if not gate.admits(metric, regression):
                max_steps, at_eval = step, True  # ends here, recorded as the run of `step` steps would be
        if at_eval:
            curve.append(EvalPoint(step=step, metric=metric, loss=eval_loss))
            best = min(best, metric) if regression else max(best, metric)
            meets = metric <= spec.target_mse if regression else metric >= spec.target_accuracy
            if pass_step is None and meets:
                pass_step = step
        if step == max_steps:
            break
    wall = time.perf_counter() - started

    final_metric, _ = evaluate_now()  # the finite-check below reads the same parameters
    if not all(torch.isfinite(p).all() for p in model.parameters()) or not math.isfinite(final_metric):
        raise NonFiniteError("parameters are not finite after training")

    metrics = dict(
        initial_eval_mse=initial_metric, final_eval_mse=final_metric, best_eval_mse=best,
    ) if regression else dict(
        initial_eval_accuracy=initial_metric, final_eval_accuracy=final_metric, best_eval_accuracy=best,
    )
    return EvalResult(
        submission=submission, track=spec.name, seed_set=data.seeds.name,
        status="pass" if pass_step is not None else "fail",
        steps=pass_step if pass_step is not None else max_steps,
        max_steps=max_steps, eval_every=spec.eval_every, train_samples=spec.train_samples,
        eval_samples=spec.eval_samples, batch_size=spec.batch_size,
        target_mse=spec.target_mse, target_accuracy=spec.target_accuracy,
        last_train_loss=last_loss, training_wall_time_s=wall, curve=curve,
        gate_step=gate.step if gate else None, gate_metric=gate_metric,
        gated_out=gate is not None and max_steps == gate.step,
        torch=torch.__version__, device=data.device, platform=platform.platform(),
        date_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **metrics,
    )
