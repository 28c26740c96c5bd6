"""What comes after training: make a model smaller or faster, measure what it costs, export it.

Each capability is a module of its own, and each returns an ordinary :class:`labkit.Model`
(``Model.backend`` says what runs it) that ``predict``, ``evaluate`` and the App accept:

- :mod:`labkit.compress.heads` — where each family keeps its attention heads (the layout the
  structural cut and its reload share);
- :mod:`labkit.compress.prune` — ``prune_heads`` (by measured importance, or the heads named)
  and ``pruning_curve`` (importance against random, with an optional recovery finetune);
- :mod:`labkit.compress.quantize` — ``quantize``: a CPU int8 copy;
- :mod:`labkit.compress.distill` — ``distill`` (a ``Run`` like ``finetune``'s) and ``shrink``
  (a student from the teacher's own layers);
- :mod:`labkit.compress.onnx` — ``export_onnx`` (with its parity check) and the onnxruntime
  backend ``load_model`` uses for such a folder;
- :mod:`labkit.compress.measure` — size on disk and latency, one definition for every table;
- :mod:`labkit.compress.compare` — ``compare_models``: the trade-off table and plot.
"""
