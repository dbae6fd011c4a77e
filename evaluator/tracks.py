"""The three caffeine tracks, exactly as the benchmark builds them (docs/BENCHMARK.md).

Everything here must stay bit-for-bit faithful: the order in which modules are created and
generators are drawn from decides the numbers, so do not "tidy" it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

TrackName = Literal["random_teacher", "single_ar", "mqar"]
TRACK_NAMES: tuple[str, ...] = ("random_teacher", "single_ar", "mqar")


@dataclass(frozen=True)
class SeedSet:
    """The five seeds a track draws from; `benchmark` is the one the leaderboard uses."""

    name: str
    train: int = 271828
    eval: int = 161803
    batch: int = 141421
    student: int = 314159
    teacher: int = 1729
    permutation: int | None = None  # task-permutation check: token ids and labels (recall) or the teacher


BENCHMARK_SEEDS = SeedSet("benchmark")


def seed_set(name: str) -> SeedSet:
    """`benchmark`, `heldout-K` or `search-K` (K >= 1): every seed replaced by a hash of (name, role).

    These sets change all five seeds at once, so a candidate tuned to the benchmark's data,
    student init, batch order or teacher cannot carry that tuning over. `search-K` sets are what
    `--robust` searches on; `heldout-K` sets are only ever used to check finalists.

    `permuted-S` keeps the benchmark's seeds but relabels the task with a secret S: on the recall
    tracks every token id and every value label is permuted, on random_teacher the teacher is
    another one. Learning is unchanged; an answer written in from the public layout is not.
    """
    if name == "benchmark":
        return BENCHMARK_SEEDS
    prefix, _, k = name.partition("-")
    if prefix == "permuted" and k.isdigit():
        return SeedSet(name, permutation=int(k))
    if prefix not in ("heldout", "search") or not k.isdigit() or int(k) < 1:
        raise ValueError(f"unknown seed set {name!r}: use 'benchmark', 'heldout-K' or 'search-K' with K >= 1")

    def derive(role: str) -> int:
        return int.from_bytes(hashlib.sha256(f"{name}/{role}".encode()).digest()[:4], "little") % (2**31)

    return SeedSet(name, **{role: derive(role) for role in ("train", "eval", "batch", "student", "teacher")})


@dataclass(frozen=True)
class TrackSpec:
    name: str
    task: Literal["regression", "recall"]
    description: str
    train_samples: int
    eval_samples: int
    batch_size: int
    max_steps: int
    eval_every: int
    target_mse: float = float("nan")
    target_accuracy: float = float("nan")
    num_queries: int = 1

    @property
    def metric(self) -> str:
        return "eval_mse" if self.task == "regression" else "eval_accuracy"

    @property
    def lower_is_better(self) -> bool:
        return self.task == "regression"


TRACKS: dict[str, TrackSpec] = {
    "random_teacher": TrackSpec(
        name="random_teacher", task="regression",
        description="match a frozen random single-head attention teacher (dim 128, seq 64); score = final eval MSE",
        train_samples=8192, eval_samples=2048, batch_size=512, max_steps=400, eval_every=100,
        target_mse=4.0e-7,
    ),
    "single_ar": TrackSpec(
        name="single_ar", task="recall",
        description="8 key/value pair tokens then 1 query; predict the value; pass = eval accuracy >= 0.99",
        train_samples=65536, eval_samples=4096, batch_size=256, max_steps=400, eval_every=50,
        target_accuracy=0.99, num_queries=1,
    ),
    "mqar": TrackSpec(
        name="mqar", task="recall",
        description="8 key/value pair tokens then 8 queries; predict every value; pass = eval accuracy >= 0.99",
        train_samples=65536, eval_samples=4096, batch_size=256, max_steps=400, eval_every=50,
        target_accuracy=0.99, num_queries=8,
    ),
}


def get_track(name: str) -> TrackSpec:
    try:
        return TRACKS[name]
    except KeyError:
        raise ValueError(f"unknown track {name!r}: choose one of {', '.join(TRACK_NAMES)}") from None


def generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed)


# ---------------------------------------------------------------- random_teacher
EMBED_DIM_TEACHER = 128
SEQ_LEN_TEACHER = 64


class AttentionRegressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(embed_dim=EMBED_DIM_TEACHER, num_heads=1, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=False)[0]


def build_teacher(seeds: SeedSet) -> AttentionRegressor:
    teacher = AttentionRegressor()
    gen = generator(seeds.teacher)
    with torch.no_grad():
        for p in teacher.parameters():
            p.uniform_(-1, 1, generator=gen)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def teacher_data(teacher: nn.Module, samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn((samples, SEQ_LEN_TEACHER, EMBED_DIM_TEACHER), generator=generator(seed))
    with torch.no_grad():
        y = teacher(x)
    return x, y


# ---------------------------------------------------------------- associative recall
NUM_KEYS = 64
NUM_VALUES = 64
NUM_PAIRS = 8
EMBED_DIM_AR = 64
VOCAB = NUM_KEYS * NUM_VALUES + NUM_KEYS  # 4160


class AssociativeRecall(nn.Module):
    def __init__(self, num_queries: int) -> None:
        super().__init__()
        self.num_queries = num_queries
        self.q = nn.Embedding(VOCAB, EMBED_DIM_AR)
        self.k = nn.Embedding(VOCAB, EMBED_DIM_AR)
        self.v = nn.Embedding(VOCAB, EMBED_DIM_AR)
        self.readout = nn.Linear(EMBED_DIM_AR, NUM_VALUES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        context = tokens[:, :NUM_PAIRS]
        queries = tokens[:, NUM_PAIRS:NUM_PAIRS + self.num_queries]
        scores = self.q(queries) @ self.k(context).transpose(-2, -1) * EMBED_DIM_AR**-0.5
        attn = torch.softmax(scores, dim=-1)
        logits = self.readout(attn @ self.v(context))
        if self.num_queries == 1:
            return logits[:, 0, :]
        return logits


def recall_data(samples: int, seed: int, num_queries: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(seed)
    keys = torch.stack([torch.randperm(NUM_KEYS, generator=g)[:NUM_PAIRS] for _ in range(samples)])
    values = torch.randint(NUM_VALUES, (samples, NUM_PAIRS), generator=g)
    pair_tokens = keys * NUM_VALUES + values
    slots = torch.randint(NUM_PAIRS, (samples, num_queries), generator=g)
    rows = torch.arange(samples).unsqueeze(1)
    query_tokens = NUM_KEYS * NUM_VALUES + keys[rows, slots]
    targets = values[rows, slots]
    if num_queries == 1:
        targets = targets.squeeze(1)
    return torch.cat([pair_tokens, query_tokens], dim=1), targets


# ---------------------------------------------------------------- what a track gives the loop
@dataclass
class TrackData:
    """Everything the loop needs that does not depend on the candidate: built once per worker."""

    spec: TrackSpec
    seeds: SeedSet
    train_x: torch.Tensor
    train_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    batch_indices: torch.Tensor
    build_seconds: float = 0.0
    device: str = "cpu"

    def make_student(self) -> nn.Module:
        """Seeded and built on the CPU exactly as the benchmark does, then moved to the data's device."""
        torch.manual_seed(self.seeds.student)
        if self.spec.task == "regression":
            return AttentionRegressor().to(self.device)
        return AssociativeRecall(self.spec.num_queries).to(self.device)

    def to(self, device: str) -> "TrackData":
        if device == self.device:
            return self
        move = lambda t: t.to(device)  # noqa: E731
        return TrackData(self.spec, self.seeds, move(self.train_x), move(self.train_y), move(self.eval_x),
                         move(self.eval_y), move(self.batch_indices), self.build_seconds, device)

    @property
    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return F.mse_loss if self.spec.task == "regression" else recall_loss


def recall_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, NUM_VALUES), targets.reshape(-1))


def build_track_data(spec: TrackSpec, seeds: SeedSet = BENCHMARK_SEEDS, max_steps: int | None = None) -> TrackData:
    """Builds data in the benchmark's order: train, eval, batch indices (the student comes later)."""
    import time

    started = time.perf_counter()
    steps = max(spec.max_steps, max_steps or 0)
    if spec.task == "regression":
        teacher_seeds = seeds if seeds.permutation is None else replace(seeds, teacher=seeds.permutation)
        teacher = build_teacher(teacher_seeds)
        train_x, train_y = teacher_data(teacher, spec.train_samples, seeds.train)
        eval_x, eval_y = teacher_data(teacher, spec.eval_samples, seeds.eval)
    else:
        train_x, train_y = recall_data(spec.train_samples, seeds.train, spec.num_queries)
        eval_x, eval_y = recall_data(spec.eval_samples, seeds.eval, spec.num_queries)
        if seeds.permutation is not None:
            gen = generator(seeds.permutation)
            tokens, labels = torch.randperm(VOCAB, generator=gen), torch.randperm(NUM_VALUES, generator=gen)
            train_x, eval_x, train_y, eval_y = tokens[train_x], tokens[eval_x], labels[train_y], labels[eval_y]
    batch_indices = torch.randint(0, spec.train_samples, (steps, spec.batch_size), generator=generator(seeds.batch))
    return TrackData(spec, seeds, train_x, train_y, eval_x, eval_y, batch_indices,
                     build_seconds=time.perf_counter() - started)
