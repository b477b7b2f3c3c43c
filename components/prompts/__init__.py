"""DRanker and IRanker prompts, built with the tokenizer's chat template.

Design choices:

- Candidates are shown as `[A] text`; the answer is labels, never copied
  titles. A candidate keeps its label for the whole sample (stable across
  IRanker eliminations), so traces read naturally: "eliminated F, then B".
- Letters go in listing order by default. With `stable_labels`, a routing
  sample letters its LLMs in the order of their texts instead, so every LLM
  keeps one letter in every sample (the listing order stays as shuffled). The
  fast-mode action is a letter token, and a 135M model readily learns a bias
  on output tokens but not to copy a letter from the line it judged: with
  stable letters "never eliminate mistral-7b" becomes such a bias. Rec and
  passage candidate sets differ per sample, so their letters stay in listing
  order either way.
- With `label_position: after` a line reads `text [A]` instead. A causal LM's
  hidden state at a token sees only what came before it, so the letter of
  `[A] text` carries nothing of its text: to name the worst line the model
  must first find it and then look back for its letter. After the text, the
  letter's own position can hold a summary of the line, so one attention
  step from the answer can pick the letter by content.
- One builder serves training, evaluation and serving, so the prompt a model is
  trained with is the prompt it is evaluated with; `template_hash` identifies
  the wording, the chat template, the ranker, the reasoning switch and the
  budget, and travels with the model.
- Prompts are cut to a token budget: rec histories lose their oldest items
  first, then every long text (candidates, and the query outside rec) is capped
  to the same largest token count that fits ("water filling"); a routed query
  keeps its tail, where the actual question is. Every cut is marked in the
  text and counted in `Prompt.cuts`. Cuts are decided on the full candidate
  set, so an IRanker subset shows exactly the texts the full prompt showed.
- User text cannot forge prompt structure (`plain_text`): a special-token
  string of the chat template (`<|im_end|>`) or an answer tag (`<answer>`) in a
  query or candidate has its first character replaced by `‹`, so it is plain
  text to the tokenizer and to the answer parser, and a candidate's line breaks
  become spaces, so no candidate can start a line `[B] ...` of its own.
- The task and the answer format come before the candidate list, and the list
  ends the prompt: consecutive IRanker prompts then differ only from the
  eliminated candidate on, and nothing after the list has to be recomputed when
  fast mode reuses the KV cache of the previous prompt.

The package: `config` (PromptConfig, version, roles), `text` (wording, labels,
cutting, plain user text), `listwise` (the DRanker/IRanker prompt and the
template hash), `scoring` (score mode's likelihood-scorer inputs), `steps`
(IRanker elimination pools and reward columns).
"""

from components.prompts.config import (
    FORMER_NAMES,
    LABEL_POSITIONS,
    PROMPT_VERSION,
    ROLES,
    PromptConfig,
    PromptTooLong,
    prompt_config,
    ranker_name,
    role_of,
)
from components.prompts.listwise import (
    Prompt,
    build_prompt,
    chat_head,
    mode_template_hash,
    template_hash,
)
from components.prompts.scoring import (
    SCORE_VERSION,
    SCORER_TEXT,
    ScorerText,
    ScoreInputs,
    build_score_inputs,
    user_ids,
)
from components.prompts.steps import (
    EliminationStep,
    expand_elimination_steps,
    REWARD_COLUMNS,
    RewardColumns,
    reward_columns,
)
from components.prompts.text import (
    CUT_MARK,
    DEFANG,
    FORMAT_TEXT,
    SCENARIO_TEXT,
    TAGS,
    ScenarioText,
    candidate_labels,
    make_labels,
    plain_text,
    router_objective,
    shown_labels,
)

__all__ = [
    "CUT_MARK", "DEFANG", "FORMER_NAMES", "FORMAT_TEXT", "LABEL_POSITIONS", "PROMPT_VERSION", "ROLES", "SCENARIO_TEXT",
    "SCORER_TEXT", "SCORE_VERSION", "TAGS", "EliminationStep", "Prompt", "PromptConfig", "PromptTooLong",
    "ScenarioText", "ScoreInputs", "ScorerText", "build_prompt", "build_score_inputs", "candidate_labels", "chat_head",
    "expand_elimination_steps", "make_labels", "mode_template_hash", "plain_text", "prompt_config", "reward_columns", "REWARD_COLUMNS", "RewardColumns",
    "ranker_name", "role_of", "router_objective", "shown_labels", "template_hash", "user_ids",
]
