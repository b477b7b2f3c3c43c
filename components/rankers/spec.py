"""`RankerSpec`: how a trained model ranks, one frozen record.

Training writes it once beside the weights (`ranker_config.json`); evaluate, register, serving and `rank` each
read it once (`RankerSpec.load`), reconcile the flags they were given against it (`reconcile`: a flag that
contradicts the trained model is an error naming the saved value), and take ranker, mode, scorers and prompt
from it. `identity` is what an evaluation records and registration checks. The file is read as untrusted input:
a value of the wrong type is a `DataError` naming the file and key, before any model loads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.io import DataError, load_json, write_text
from components.models import RANKER_CONFIG, ModelSource
from components.prompts import FORMER_NAMES, PromptConfig, prompt_config, ranker_name, role_of
from components.rankers.base import LLM_RANKERS, MODES
from components.scorers import resolve_scorers, template_hash


class SavedConfigMismatch(ValueError):
    """A flag contradicts what a trained model records about how it ranks."""


@dataclass(frozen=True)
class RankerSpec:
    """How a model ranks: ranker (iranker or dranker), mode, scorers (score mode), prompt, template hash, head."""

    ranker: str
    mode: str
    prompt: PromptConfig | None = None  # None: not recorded, the caller's prompt settings apply
    template_hash: str | None = None
    scorers: dict[str, str] | None = None  # score mode: resolved, every scenario named
    score_tau: float | None = None
    head: bool = False  # a trained pointer head (score_head.safetensors) travels with the weights
    extra: dict[str, Any] = field(default_factory=dict)  # algo, base_model, run_id, steps: recorded, not used to rank

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranker", ranker_name(self.ranker))  # a file written before the rename
        if self.ranker not in LLM_RANKERS:
            raise ValueError(f"ranker must be one of {list(LLM_RANKERS)} (formerly {list(FORMER_NAMES)}), "
                             f"got {self.ranker!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.mode == "score":
            object.__setattr__(self, "scorers", resolve_scorers(self.scorers))
        elif self.scorers is not None:
            object.__setattr__(self, "scorers", None)  # only score mode has scorers

    @property
    def run_id(self) -> str | None:
        """The training run that wrote this spec (provenance: `check_trained` matches it with run.json)."""
        value = self.extra.get("run_id")
        return value if isinstance(value, str) else None

    # ------------------------------------------------------------ the file

    def to_dict(self) -> dict[str, Any]:
        """The `ranker_config.json` mapping (keys as training has always written them)."""
        out = {"ranker": self.ranker, "mode": self.mode, "template_hash": self.template_hash,
               "prompt": dataclasses.asdict(self.prompt) if self.prompt is not None else None, **self.extra}
        if self.mode == "score":
            out.update(scorers=self.scorers, score_tau=self.score_tau, head=self.head)
        return out

    def save(self, folder: Path) -> Path:
        path = Path(folder) / RANKER_CONFIG
        write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_dict(cls, raw: Any, where: str = RANKER_CONFIG) -> RankerSpec:
        """A spec from a mapping read off disk; a missing or mistyped key is a DataError naming `where` and the key."""
        if not isinstance(raw, Mapping):
            raise DataError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        problems = []
        for key, kind in (("ranker", str), ("mode", str)):
            if not isinstance(raw.get(key), kind):
                problems.append(f"{key}: expected a string, got {raw.get(key)!r:.60}")
        for key, kind in (("template_hash", str), ("scorers", dict), ("prompt", dict)):
            if raw.get(key) is not None and not isinstance(raw[key], kind):
                problems.append(f"{key}: expected {kind.__name__} or null, got {type(raw[key]).__name__}")
        if problems:
            raise DataError(f"{where}: " + "; ".join(problems))
        known = {"ranker", "mode", "template_hash", "prompt", "scorers", "score_tau", "head"}
        try:
            return cls(ranker=raw["ranker"], mode=raw["mode"], template_hash=raw.get("template_hash"),
                       prompt=prompt_config(raw["prompt"]) if raw.get("prompt") is not None else None,
                       scorers=raw.get("scorers"), score_tau=raw.get("score_tau"), head=bool(raw.get("head")),
                       extra={k: v for k, v in raw.items() if k not in known})
        except (TypeError, ValueError) as err:
            raise DataError(f"{where}: {err}") from err

    @classmethod
    def load(cls, spec: str | Path) -> RankerSpec | None:
        """The spec a trained model folder carries; None for a model that records none (a base model, a hub id)."""
        if ModelSource.parse(str(spec)).kind != "local" or not (Path(spec) / RANKER_CONFIG).exists():
            return None
        path = Path(spec) / RANKER_CONFIG
        return cls.from_dict(load_json(path), str(path))

    # ------------------------------------------------------------ flags and identity

    def reconcile(self, where: str, mode: str | None = None, scorers: Mapping[str, str] | None = None,
                  ranker: str | None = None) -> RankerSpec:
        """This spec, after checking the flags a command was given: one that contradicts it raises
        SavedConfigMismatch naming the saved value. Scorers are compared key by key (those asked for)."""
        if mode is not None and mode != self.mode:
            raise SavedConfigMismatch(f"{where} was trained to rank in mode {self.mode!r}, not {mode!r}; "
                                      f"drop --mode or pass --mode {self.mode}")
        if ranker is not None and role_of(ranker) != role_of(self.ranker):
            raise SavedConfigMismatch(f"{where} was trained as ranker {self.ranker!r}, not {ranker!r}; "
                                      f"drop --ranker or pass --ranker {self.ranker}")
        if scorers and self.mode == "score":
            diff = {k: v for k, v in scorers.items() if self.scorers.get(k) != v}
            if diff:
                raise SavedConfigMismatch(f"{where} was trained with scorers {self.scorers}; {diff} contradicts them")
        return self

    def hash_with(self, tokenizer) -> str:
        """The template hash this spec's prompt has with `tokenizer` (serving compares it with `template_hash`)."""
        return template_hash(tokenizer, self.ranker, self.prompt or PromptConfig(), self.mode, self.scorers)

    def identity(self, weights: str, tokenizer) -> dict[str, Any]:
        """What an evaluation of this ranker is an evaluation of: weights, prompt template, ranker, mode, scorers."""
        return {"weights": weights, "template_hash": self.hash_with(tokenizer), "ranker": self.ranker,
                "mode": self.mode, "scorers": self.scorers}


def identity(weights: str, ranker: str, mode: str, prompt: PromptConfig, scorers: Mapping[str, str] | None,
             tokenizer) -> dict[str, Any]:
    """The identity of an LLM ranker (trained or not): `weights` is the model's fingerprint."""
    return RankerSpec(ranker=ranker, mode=mode, prompt=prompt, scorers=scorers).identity(weights, tokenizer)
