"""Domain-adaptive pretraining, measured: does continued masked-LM training on in-domain text
make a better classifier for the same finetuning budget?

:func:`domain_adaptation` trains the masked LM on the corpus once, then for each seed finetunes
two classifiers the same way (same head initialisation, same data order, same steps): one from
the original encoder, one whose encoder weights are the adapted ones. Their test accuracies,
per seed and as mean and spread, are a :class:`DomainAdaptation`.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit._errors import ConfigError, TrainingError

if TYPE_CHECKING:
    from labkit.data import TextData
    from labkit.lm.data import LMData
    from labkit.mlm.evaluate import MLMMetrics
    from labkit.model import Model

__all__ = ["DomainAdaptation", "adapt_encoder", "domain_adaptation"]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _spread(xs: Sequence[float]) -> float:
    """Sample standard deviation (0 for a single value)."""
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


@dataclass(frozen=True)
class DomainAdaptation:
    """Test accuracy of classifiers finetuned from the original encoder (``original``) and from
    the one adapted by continued masked-LM training (``adapted``), one value per seed of
    ``seeds`` (0..1). ``mlm_before`` / ``mlm_after`` are the masked LM's evaluation on the
    corpus's held-out texts before and after its continued training; ``pretrain_steps`` and
    ``finetune_steps`` the budgets (each classifier got the same ``finetune_steps``)."""

    seeds: tuple[int, ...]
    original: tuple[float, ...]
    adapted: tuple[float, ...]
    mlm_before: MLMMetrics
    mlm_after: MLMMetrics
    pretrain_steps: int
    finetune_steps: int

    @property
    def gain(self) -> float:
        """Mean test accuracy of the adapted classifiers minus the original ones'."""
        return _mean(self.adapted) - _mean(self.original)

    def table(self) -> list[dict[str, Any]]:
        """One row per starting point: ``encoder``, ``mean``, ``spread`` (sample standard
        deviation over seeds) and the accuracy per seed (``seed 0``, ...)."""
        rows = []
        for name, accs in (("original", self.original), ("adapted (continued MLM)", self.adapted)):
            row: dict[str, Any] = {"encoder": name, "mean": _mean(accs), "spread": _spread(accs)}
            row.update({f"seed {s}": a for s, a in zip(self.seeds, accs)})
            rows.append(row)
        return rows

    def __str__(self) -> str:
        lines = [
            f"masked-token accuracy {self.mlm_before.masked_accuracy:.3f} -> "
            f"{self.mlm_after.masked_accuracy:.3f} after {self.pretrain_steps} MLM steps",
        ]
        for row in self.table():
            lines.append(
                f"{row['encoder']:<24} test accuracy {row['mean']:.3f} ± {row['spread']:.3f} "
                f"({len(self.seeds)} seeds, {self.finetune_steps} steps each)"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        from labkit.render.summary import sig

        e = html.escape
        head = "".join(f"<th>seed {s}</th>" for s in self.seeds)
        body = []
        for row in self.table():
            cells = "".join(f"<td>{e(sig(row[f'seed {s}'], 3))}</td>" for s in self.seeds)
            body.append(
                f"<tr><th style='text-align:left'>{e(row['encoder'])}</th>"
                f"<td><b>{e(sig(row['mean'], 3))}</b> ± {e(sig(row['spread'], 2))}</td>{cells}</tr>"
            )
        note = (
            f"masked-token accuracy on held-out snippets {sig(self.mlm_before.masked_accuracy, 3)}"
            f" → {sig(self.mlm_after.masked_accuracy, 3)} after {self.pretrain_steps} MLM steps;"
            f" each classifier finetuned {self.finetune_steps} steps; gain "
            f"{self.gain:+.3f}"
        )
        return (
            "<div class='labkit-dapt'><table><tr><th>encoder</th><th>test accuracy "
            f"(mean ± spread)</th>{head}</tr>{''.join(body)}</table>"
            f"<div style='margin-top:4px'>{e(note)}</div></div>"
        )


def adapt_encoder(classifier: Model, masked_lm: Model) -> Model:
    """``classifier`` with its encoder weights replaced by ``masked_lm``'s (in place; returned).

    Only the shared encoder is copied (BERT: embeddings and layers); the classifier keeps its
    own head and pooler (a masked LM has no pooler), so a classifier from the adapted encoder
    and one from the original differ in the encoder alone. Raises ``ConfigError`` when the two
    encoders do not have the same weights' names and shapes.
    """
    source = masked_lm.base.base_model.state_dict()
    target = classifier.base.base_model
    shapes = {k: v.shape for k, v in target.state_dict().items()}
    odd = [k for k, v in source.items() if k not in shapes or shapes[k] != v.shape]
    if odd:
        raise ConfigError(
            f"the masked LM's encoder does not fit the classifier's: {len(odd)} weight(s) "
            f"differ, e.g. {odd[0]!r}. Build both from the same checkpoint."
        )
    target.load_state_dict(source, strict=False)
    return classifier


def domain_adaptation(
    *,
    masked_lm: Model | None = None,
    corpus: LMData | None = None,
    data: TextData | None = None,
    classifier: str | Callable[[int], Model] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    pretrain_steps: int = 100,
    finetune_steps: int = 40,
    train_size: int | None = None,
    eval_size: int | None = 256,
    test_size: int | None = None,
    batch_size: int = 32,
    max_length: int = 64,
    pretrain_lr: float = 1e-4,
    finetune_lr: float | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = False,
) -> DomainAdaptation:
    """Continued masked-LM training on ``corpus``, then classifiers from before and after it,
    finetuned on ``data`` with the same budget for each of ``seeds``; their test accuracies.

    Defaults are the offline ones: ``masked_lm`` :func:`labkit.demo.mlm`, ``corpus``
    :func:`labkit.demo.corpus` (which leaves out the classifier's validation and test texts),
    ``data`` :func:`labkit.demo.data`, ``classifier`` :func:`labkit.demo.model` (a callable
    ``seed -> Model``, or a name/folder loaded with ``labkit.load_model(name, labels=...,
    seed=seed)``; by default the masked LM's own checkpoint). The masked LM is trained in place
    for ``pretrain_steps`` (batches of ``batch_size`` texts cut to ``max_length`` tokens, lr
    ``pretrain_lr``); every classifier trains ``finetune_steps`` steps on the first
    ``train_size`` training texts (None: all), then is scored on ``data``'s test split. The
    runs' own evaluations (the panel's) use at most ``eval_size`` validation texts (None: all;
    the reported numbers come from the test splits: their first ``test_size`` texts, None:
    all). Runs
    write their records under ``output_dir`` (None: a temporary folder, removed at the end).
    Blocks until everything has trained: on two busy CPU cores an MLM step of 32 texts takes
    2-5 s and a classifier step 1-3 s (``benchmarks/bench_mlm.py``, the defaults: 847 s).
    """
    from labkit import demo
    from labkit.mlm.evaluate import evaluate_mlm
    from labkit.model import load_model
    from labkit.train.finetune import finetune

    for name, value in (("pretrain_steps", pretrain_steps), ("finetune_steps", finetune_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}.")
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of whole numbers, got {seeds!r}.")
    if masked_lm is None:
        masked_lm = demo.mlm()
        classifier = classifier if classifier is not None else (lambda s: demo.model(seed=s))
    masked_lm.require_task("masked-lm", "domain_adaptation")
    corpus = corpus if corpus is not None else demo.corpus()
    data = data if data is not None else demo.data()
    if data.test is None:
        raise ConfigError("data has no test split to score the classifiers on; give it one.")
    data = _trimmed(data, train_size, eval_size, test_size)
    corpus = _trimmed(corpus, None, eval_size, test_size)
    make = _classifier_maker(classifier, masked_lm, data.labels, load_model)
    with tempfile.TemporaryDirectory(prefix="labkit-dapt-") as tmp:
        out = os.fspath(output_dir) if output_dir is not None else tmp
        held = "test" if corpus.test is not None else "validation"
        common: dict[str, Any] = {
            "batch_size": batch_size,
            "max_length": max_length,
            "progress": progress,
        }
        before = evaluate_mlm(masked_lm, corpus, split=held, max_length=max_length)
        _finish(
            finetune(
                masked_lm,
                corpus,
                max_steps=pretrain_steps,
                lr=pretrain_lr,
                eval_every=pretrain_steps,
                output_dir=os.path.join(out, "mlm"),
                **common,
            )
        )
        after = evaluate_mlm(masked_lm, corpus, split=held, max_length=max_length)
        accs: dict[str, list[float]] = {"original": [], "adapted": []}
        for seed in seeds:
            for arm in accs:
                clf = make(seed)
                if arm == "adapted":
                    adapt_encoder(clf, masked_lm)
                _finish(
                    finetune(
                        clf,
                        data,
                        max_steps=finetune_steps,
                        lr=finetune_lr,
                        seed=seed,
                        eval_every=finetune_steps,
                        output_dir=os.path.join(out, f"{arm}-seed{seed}"),
                        **common,
                    )
                )
                accs[arm].append(float(clf.evaluate(data, split="test").accuracy))
                del clf
    return DomainAdaptation(
        seeds=seeds,
        original=tuple(accs["original"]),
        adapted=tuple(accs["adapted"]),
        mlm_before=before,
        mlm_after=after,
        pretrain_steps=pretrain_steps,
        finetune_steps=finetune_steps,
    )


def _finish(run: Any) -> None:
    run.wait()
    if run.status != "finished":
        raise TrainingError(f"{run.name!r} ended {run.status}: {run.error or 'no error given'}.")


def _trimmed(
    data: Any, train_size: int | None, eval_size: int | None, test_size: int | None
) -> Any:
    """``data`` (TextData or LMData) with at most ``train_size`` training, ``eval_size``
    validation and ``test_size`` test texts, the first ones (None: all)."""
    import dataclasses

    from datasets import DatasetDict

    splits = dict(data.splits)
    for name, split, n in (
        ("train_size", "train", train_size),
        ("eval_size", "validation", eval_size),
        ("test_size", "test", test_size),
    ):
        if n is None or split not in splits:
            continue
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{name} must be a whole number >= 1 or None, got {n!r}.")
        splits[split] = splits[split].select(range(min(n, len(splits[split]))))
    return dataclasses.replace(data, splits=DatasetDict(splits))


def _classifier_maker(
    classifier: str | Callable[[int], Model] | None,
    masked_lm: Model,
    labels: Sequence[str],
    load_model: Callable[..., Model],
) -> Callable[[int], Model]:
    if callable(classifier):
        return classifier
    source = classifier or getattr(masked_lm.base.config, "_name_or_path", "")
    if not source:
        raise ConfigError(
            "domain_adaptation needs the original encoder to build classifiers from: pass "
            "classifier='<hub name or folder>' or classifier=lambda seed: Model."
        )
    return lambda seed: load_model(source, labels=list(labels), seed=seed)
