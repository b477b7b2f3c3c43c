"""The listwise DRanker/IRanker prompt (`build_prompt`), via the tokenizer's chat template, and its template hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from components.prompts.config import (
    PROMPT_VERSION,
    ROLES,
    PromptConfig,
    PromptTooLong,
)
from components.prompts.scoring import SCORE_VERSION, SCORER_TEXT, ScorerText
from components.prompts.text import (
    FORMAT_TEXT,
    SCENARIO_TEXT,
    token_count,
    cut_to_tokens,
    candidate_labels,
    plain_text,
    router_objective,
    shown_labels,
)
from components.schema import RankingSample


@dataclass(frozen=True)
class Prompt:
    text: str  # the chat-templated prompt, ready for generation
    labels: dict[str, str]  # label -> candidate id, for the candidates shown
    template_hash: str
    n_tokens: int
    cuts: int  # history items dropped + texts cut to fit the budget
    ranker: str
    reasoning: bool
    # label -> character offset in `text` just past its candidate line (the score mode's pointer reads there)
    line_ends: dict[str, int] = field(default_factory=dict)

    @property
    def prompt_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


# Settings added after PROMPT_VERSION 3 shipped: left out of the hash while they hold their
# defaults, so a model registered before a setting existed keeps its hash and still serves.
_LATER_FIELDS = ("stable_labels", "label_position", "score_history_items", "score_candidate_tokens")


def _hashed_fields(cfg: PromptConfig) -> dict:
    fields = PromptConfig.__dataclass_fields__
    return {k: v for k, v in cfg.__dict__.items() if k not in _LATER_FIELDS or v != fields[k].default}


def template_hash(tokenizer, ranker: str, cfg: PromptConfig, score: dict | None = None,
                  texts: dict[str, ScorerText] | None = None) -> str:
    """Identifies everything that shapes a prompt except the sample itself.

    `score` (score mode only): the scorer per scenario or task and whether a trained head is used; the built-in
    scorers' wording (`SCORER_TEXT`) is hashed with it, and `texts`, the wording of any other text scorer in use
    (so adding a scorer changes no existing model's hash).
    """
    fields = {
        "version": PROMPT_VERSION,
        "scenarios": {k: v.__dict__ for k, v in SCENARIO_TEXT.items()},
        "format": FORMAT_TEXT[(ranker, cfg.reasoning)],
        "labels": "letters",
        "chat_template": getattr(tokenizer, "chat_template", None) or "",
        "ranker": ranker,
        "cfg": _hashed_fields(cfg),
    }
    if score is not None:
        wording = {name: dataclasses.asdict(text) for name, text in {**SCORER_TEXT, **(texts or {})}.items()}
        fields["score"] = {**score, "text": wording, "version": SCORE_VERSION}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def mode_template_hash(tokenizer, ranker: str, cfg: PromptConfig, mode: str, scorers: dict | None = None,
                       head: bool = False, texts: dict[str, ScorerText] | None = None) -> str:
    """The template hash of a ranker in `mode` (score mode: over its resolved scorers and head too).

    `head`: whether any of those scorers carries a trained head; `texts`: the wording of the text scorers in use.
    The scorers declare both (`has_head`, `text`) and sit a floor above prompts, so `scorers.template_hash` is
    the one caller that knows them.
    """
    effective = cfg.for_mode(mode)
    if mode != "score":
        return template_hash(tokenizer, ranker, effective)
    return template_hash(tokenizer, ranker, effective, {"scorers": dict(sorted((scorers or {}).items())), "head": head},
                         texts)


def chat_head(tokenizer, cfg: PromptConfig = PromptConfig()) -> str:
    """The text every prompt starts with: the chat template up to the user message's content.

    Fast mode computes its KV cache once and starts every sample from it.
    """
    sentinel = "\x00user-content\x00"
    messages = [{"role": "system", "content": cfg.system}, {"role": "user", "content": sentinel}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text[: text.index(sentinel)]


def build_prompt(
    sample: RankingSample,
    ranker: str,
    tokenizer,
    cfg: PromptConfig = PromptConfig(),
    remaining: Sequence[str] | None = None,
) -> Prompt:
    """The prompt for `sample`; IRanker shows only `remaining` candidate ids (all by default)."""
    if ranker not in ROLES:
        raise ValueError(f"unknown ranker {ranker!r}; valid: {list(ROLES)}")
    labels = shown_labels(sample, remaining, cfg.stable_labels)
    all_labels = candidate_labels(sample, cfg.stable_labels)
    scen = SCENARIO_TEXT[sample.scenario]
    fmt = FORMAT_TEXT[(ranker, cfg.reasoning)].format(n=len(labels))
    task_line = getattr(scen, ranker)
    objective = router_objective(sample.meta.get("weights")) if sample.scenario == "router" else ""

    def render(query: str, texts: list[str], only: dict[str, str] | None = None, ends: dict | None = None) -> str:
        """The prompt with every candidate (texts aligned with them), or `only` the labels given.

        `ends`, when given, receives each shown label's line end as a character offset in the prompt.
        """
        line = "[{lab}] {text}" if cfg.label_position == "before" else "{text} [{lab}]"
        lines = [(lab, line.format(lab=lab, text=text)) for lab, text in zip(all_labels, texts) if only is None or lab in only]
        listing = "\n".join(text for _, text in lines)
        user = (
            scen.context.format(query=query, objective=objective)
            + f"\n\n{task_line}\n{fmt}\n\n{scen.items}:\n{listing}"
        )
        messages = [{"role": "system", "content": cfg.system}, {"role": "user", "content": user}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if ends is not None:  # the template inserts the user content verbatim, and the listing ends it
            pos = text.index(user) + len(user) - len(listing)
            for lab, rendered in lines:
                pos += len(rendered)
                ends[lab] = pos
                pos += 1  # the newline
        return text

    # Cuts are decided on the prompt with ALL candidates and then kept for every subset: the
    # prompts of one sample's eliminations then differ only where a candidate was removed, so
    # they share a prefix (KV reuse in fast mode), and a subset never shows more than the full
    # prompt did. Removing candidates only shortens a prompt, so every subset fits too.
    query = plain_text(tokenizer, sample.query)
    texts = [plain_text(tokenizer, c.text, one_line=True) for c in sample.candidates]
    full = render(query, texts)
    n_tokens, cuts = token_count(tokenizer, full), 0

    if n_tokens > cfg.max_prompt_tokens and sample.scenario == "rec":
        lines = query.splitlines()
        while n_tokens > cfg.max_prompt_tokens and len(lines) > 1:
            lines, cuts = lines[1:], cuts + 1
            query = f"[{cuts} older items cut]\n" + "\n".join(lines)
            n_tokens = token_count(tokenizer, render(query, texts))

    if n_tokens > cfg.max_prompt_tokens:
        # water filling: the largest per-text cap c that fits, by binary search
        cap_query = sample.scenario != "rec"
        pieces = texts + ([query] if cap_query else [])
        ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in pieces]
        # a routed query ends with the actual question (few-shot examples come first): keep its tail
        tails = [False] * len(texts) + ([sample.scenario == "router"] if cap_query else [])

        def capped(c: int) -> tuple[str, list[str], int]:
            cut_pieces = [cut_to_tokens(tokenizer, p, i, c, t) for p, i, t in zip(pieces, ids, tails)]
            q = cut_pieces.pop() if cap_query else query
            return q, cut_pieces, token_count(tokenizer, render(q, cut_pieces))

        lo, hi = cfg.min_text_tokens, max(len(i) for i in ids)
        q_lo, texts_lo, n_lo = capped(lo)
        if n_lo > cfg.max_prompt_tokens:
            raise PromptTooLong(
                f"sample {sample.sample_id!r}: {n_lo} prompt tokens even with every text cut to "
                f"{lo} tokens; raise max_prompt_tokens (now {cfg.max_prompt_tokens}) or shorten the texts"
            )
        best = (lo, q_lo, texts_lo)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            q, t, n = capped(mid)
            if n <= cfg.max_prompt_tokens:
                lo, best = mid, (mid, q, t)
            else:
                hi = mid - 1
        c, query, texts = best
        cuts += sum(len(i) > c for i in ids)

    ends: dict[str, int] = {}
    text = render(query, texts, only=labels, ends=ends)
    n_tokens = token_count(tokenizer, text)
    return Prompt(
        text=text,
        labels=labels,
        template_hash=template_hash(tokenizer, ranker, cfg),
        n_tokens=n_tokens,
        cuts=cuts,
        ranker=ranker,
        reasoning=cfg.reasoning,
        line_ends=ends,
    )
