"""Tiny transformers built from configs, saved as real model folders (safetensors + tokenizer).

Fast and offline: a BERT-family model uses the WordPiece vocabulary of the packaged MiniLM; the
others share a small byte-level BPE trained here on a few sentences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

ARCHES = ("bert", "distilbert", "roberta", "gpt2", "llama")

CORPUS = [
    "a gorgeous, witty, seductive movie",
    "the movie was not good",
    "dull and lifeless",
    "an excellent and moving film",
    "terrible acting and a boring plot",
    "I loved every minute",
    "the worst film of the year",
    "a delightful surprise",
    "painfully slow and predictable",
    "brilliant performances all around",
    "<img src=x onerror=alert(1)> and </script>",
    "emoji 😀 and 中文 and עברית text",
    "great fun",
    "awful mess",
]


def _bpe_tokenizer_file(folder: Path) -> str:
    """A byte-level BPE (vocab 400) trained on CORPUS, saved as tokenizer.json."""
    from tokenizers import ByteLevelBPETokenizer

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    if not path.exists():
        tok = ByteLevelBPETokenizer()
        tok.train_from_iterator(
            CORPUS * 4,
            vocab_size=400,
            min_frequency=1,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        )
        tok.save(str(path))
    return str(path)


def _bpe(folder: Path, *, roberta: bool, max_positions: int):
    import transformers as tf
    from tokenizers import Tokenizer, processors

    raw = Tokenizer.from_file(_bpe_tokenizer_file(folder))
    if roberta:  # <s> text </s>, as RoBERTa's own tokenizer does
        raw.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tf.PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=max_positions,
    )


def build(
    arch: str,
    folder: Path,
    *,
    num_labels: int = 2,
    layers: int = 2,
    heads: int = 4,
    hidden: int = 32,
    max_positions: int = 128,
    seed: int = 0,
) -> Path:
    """Write a tiny ``arch`` sequence classifier into ``folder`` and return the folder."""
    import transformers as tf

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    labels = {
        "id2label": {i: f"L{i}" for i in range(num_labels)},
        "label2id": {f"L{i}": i for i in range(num_labels)},
    }
    if arch in ("bert", "distilbert"):
        from labkit.demo import model_path

        tok = tf.AutoTokenizer.from_pretrained(str(model_path()), model_max_length=max_positions)
        vocab = len(tok)
        if arch == "bert":
            cfg = tf.BertConfig(
                vocab_size=vocab,
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=hidden * 2,
                max_position_embeddings=max_positions,
                **labels,
            )
            model = tf.BertForSequenceClassification(cfg)
        else:
            cfg = tf.DistilBertConfig(
                vocab_size=vocab,
                dim=hidden,
                n_layers=layers,
                n_heads=heads,
                hidden_dim=hidden * 2,
                max_position_embeddings=max_positions,
                **labels,
            )
            model = tf.DistilBertForSequenceClassification(cfg)
    else:
        tok = _bpe(folder.parent / "_bpe", roberta=arch == "roberta", max_positions=max_positions)
        if arch == "roberta":
            cfg = tf.RobertaConfig(
                vocab_size=len(tok),
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=hidden * 2,
                pad_token_id=tok.pad_token_id,
                max_position_embeddings=max_positions + 2,
                **labels,
            )
            model = tf.RobertaForSequenceClassification(cfg)
        else:
            if arch == "gpt2":
                cfg = tf.GPT2Config(
                    vocab_size=len(tok),
                    n_embd=hidden,
                    n_layer=layers,
                    n_head=heads,
                    n_positions=max_positions,
                    pad_token_id=tok.pad_token_id,
                    bos_token_id=tok.bos_token_id,
                    eos_token_id=tok.eos_token_id,
                    **labels,
                )
                model = tf.GPT2ForSequenceClassification(cfg)
            elif arch == "llama":
                cfg = tf.LlamaConfig(
                    vocab_size=len(tok),
                    hidden_size=hidden,
                    intermediate_size=hidden * 2,
                    num_hidden_layers=layers,
                    num_attention_heads=heads,
                    num_key_value_heads=heads // 2,
                    max_position_embeddings=max_positions,
                    pad_token_id=tok.pad_token_id,
                    bos_token_id=tok.bos_token_id,
                    eos_token_id=tok.eos_token_id,
                    **labels,
                )
                model = tf.LlamaForSequenceClassification(cfg)
            else:
                raise ValueError(f"unknown tiny arch {arch!r}; choose from {ARCHES}")
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


LM_ARCHES = ("gpt2", "llama")
# a Llama-style chat template (ChatML, as SmolLM2's), for tests of chat="auto"
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def build_lm(
    arch: str,
    folder: Path,
    *,
    layers: int = 2,
    heads: int = 4,
    hidden: int = 32,
    max_positions: int = 128,
    chat: bool = False,
    seed: int = 0,
) -> Path:
    """Write a tiny ``arch`` causal LM (GPT2LMHeadModel / LlamaForCausalLM) into ``folder``.

    ``chat=True`` gives its tokenizer a ChatML-like chat template (an instruct model).
    """
    import transformers as tf

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _bpe(folder.parent / "_bpe", roberta=False, max_positions=max_positions)
    special = {
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
    }
    if arch == "gpt2":
        cfg = tf.GPT2Config(
            vocab_size=len(tok),
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_positions=max_positions,
            **special,
        )
        model: Any = tf.GPT2LMHeadModel(cfg)
    elif arch == "llama":
        cfg = tf.LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads // 2,
            max_position_embeddings=max_positions,
            tie_word_embeddings=True,
            **special,
        )
        model = tf.LlamaForCausalLM(cfg)
    else:
        raise ValueError(f"unknown tiny causal LM {arch!r}; choose from {LM_ARCHES}")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def toy_rows(n_per_class: int = 32) -> list[dict[str, str]]:
    """Short labelled sentences a tiny model can learn (sentiment words decide the label)."""
    good = ["great", "wonderful", "excellent", "brilliant", "delightful", "moving", "superb", "fun"]
    bad = ["awful", "terrible", "boring", "dull", "painful", "lifeless", "weak", "bad"]
    frames = [
        "a {} movie",
        "the film was {}",
        "{} acting throughout",
        "simply {}",
        "an {} story",
        "what a {} experience",
        "{} and memorable",
        "truly {}",
    ]
    rows = []
    for i in range(n_per_class):
        frame = frames[i % len(frames)]
        rows.append(
            {"text": frame.format(good[(i // len(frames)) % len(good)]), "label": "positive"}
        )
        rows.append({"text": frame.format(bad[(i // len(frames)) % len(bad)]), "label": "negative"})
    return rows
