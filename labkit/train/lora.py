"""LoRA defaults per architecture, and attaching an adapter to a classifier or a causal LM.

``lora=True`` picks the attention projections LoRA is usually applied to for the model's family
(BERT, MiniLM, DistilBERT, RoBERTa, GPT-2, Llama and look-alikes). A classifier's new
classification head stays fully trainable; a causal LM gets a ``CAUSAL_LM`` adapter on its
query and value projections (the LoRA paper's choice) and nothing else trains. A
``peft.LoraConfig`` or ``peft.AdaLoraConfig`` passes through as it is.
"""

from __future__ import annotations

from typing import Any

from labkit._errors import ConfigError

__all__ = ["attach_lora", "head_modules", "lora_config", "target_modules"]

# model_type -> the Linear modules LoRA adapts (attention projections).
_TARGETS: dict[str, tuple[str, ...]] = {
    "bert": ("query", "key", "value"),
    "roberta": ("query", "key", "value"),
    "xlm-roberta": ("query", "key", "value"),
    "camembert": ("query", "key", "value"),
    "electra": ("query", "key", "value"),
    "deberta-v2": ("query_proj", "key_proj", "value_proj"),
    "distilbert": ("q_lin", "k_lin", "v_lin"),
    "gpt2": ("c_attn",),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "gemma": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "phi3": ("qkv_proj", "o_proj"),
}
# model_type -> what a causal LM's adapter targets where it differs from the above.
_CAUSAL_TARGETS: dict[str, tuple[str, ...]] = {
    name: ("q_proj", "v_proj") for name in ("llama", "mistral", "qwen2", "gemma")
}
# Heads a sequence classifier puts on top; they are new (random), so they train fully.
_HEADS = ("classifier", "pre_classifier", "score", "pooler")
# A masked LM's head transform (BERT's cls.predictions.transform, RoBERTa's lm_head dense and
# LayerNorm): often fresh (a sentence encoder's checkpoint has none), so it trains fully; the
# decoder stays tied to the word embeddings.
_MLM_HEADS = ("transform", "dense", "layer_norm")


def target_modules(hf: Any) -> list[str]:
    """Names of the modules ``lora=True`` adapts in ``hf`` (a transformers model)."""
    from labkit.model import task_of_module

    model_type = getattr(hf.config, "model_type", "")
    causal = task_of_module(hf) == "causal-lm"
    names = (_CAUSAL_TARGETS if causal else {}).get(model_type) or _TARGETS.get(model_type)
    present = {name.rsplit(".", 1)[-1] for name, _ in hf.named_modules()}
    if names is None:  # an unknown family: fall back on the usual projection names
        for guess in _TARGETS.values():
            if all(n in present for n in guess):
                names = guess
                break
    if names is None or not all(n in present for n in names):
        raise ConfigError(
            f"lora=True does not know which modules to adapt in a {model_type or type(hf).__name__} "
            f"model. Pass lora=peft.LoraConfig(task_type='{'CAUSAL_LM' if causal else 'SEQ_CLS'}', "
            "target_modules=[...]) naming its attention projections."
        )
    return list(names)


def head_modules(hf: Any) -> list[str]:
    """The classification head (and pooler) modules present in ``hf``; trained fully. None for
    a causal LM: its output layer is pretrained (and often tied to the input embeddings)."""
    from labkit.model import task_of_module

    task = task_of_module(hf)
    if task == "causal-lm":
        return []
    if task == "masked-lm":
        heads = [
            name
            for name, _ in hf.named_modules()
            if (
                name.startswith(("cls.predictions.", "lm_head.", "predictions."))
                and name.rsplit(".", 1)[-1] in _MLM_HEADS
            )
            or name in ("vocab_transform", "vocab_layer_norm")  # DistilBERT's, at the top
        ]
        # the outermost only: a module inside one already kept trains with it
        return [h for h in sorted(set(heads)) if not any(h.startswith(o + ".") for o in heads)]
    present = {name for name, _ in hf.named_children()}
    # the pooler sits inside the encoder wrapper (bert.pooler), so look one level down too
    for _, child in hf.named_children():
        present |= {name for name, _ in child.named_children()}
    return [h for h in _HEADS if h in present]


def lora_config(
    hf: Any,
    *,
    r: int = 8,
    alpha: int | None = None,
    dropout: float = 0.1,
    modules_to_save: list[str] | None = None,
) -> Any:
    """A ``peft.LoraConfig`` with this model's default targets: for sequence classification, or
    for a causal LM (``hf`` a ``...ForCausalLM``) language modelling."""
    from peft import LoraConfig, TaskType

    from labkit.model import task_of_module

    if r < 1:
        raise ConfigError(f"LoRA rank r must be >= 1, got {r}.")
    task = task_of_module(hf)
    # a masked LM has no peft task type of its own: the plain wrapper (None) keeps its forward
    kinds = {"causal-lm": TaskType.CAUSAL_LM, "masked-lm": None}
    return LoraConfig(
        task_type=kinds.get(task, TaskType.SEQ_CLS),
        r=r,
        lora_alpha=alpha or 2 * r,
        lora_dropout=dropout,
        target_modules=target_modules(hf),
        modules_to_save=modules_to_save if modules_to_save is not None else head_modules(hf),
        fan_in_fan_out=getattr(hf.config, "model_type", "") == "gpt2",
    )


def attach_lora(hf: Any, lora: Any) -> Any:
    """``hf`` wrapped as a ``peft.PeftModel`` (``lora`` is True or a peft config)."""
    from peft import PeftConfig, get_peft_model

    if hasattr(hf, "peft_config"):
        raise ConfigError(
            "this model already has a LoRA adapter; pass lora=False to keep "
            "training it, or load the base model again for a new adapter."
        )
    if lora is True:
        config = lora_config(hf)
    elif isinstance(lora, PeftConfig):
        config = lora
    else:
        raise ConfigError(
            f"lora must be True, False or a peft.LoraConfig/AdaLoraConfig; got "
            f"{type(lora).__name__}."
        )
    import warnings

    with warnings.catch_warnings():  # peft reads a transformers attribute deprecated in v5
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
        )
        return get_peft_model(hf, config)
