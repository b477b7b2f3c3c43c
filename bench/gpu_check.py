"""GPU check: the CUDA path run once on a lent GPU, with the same machine's CPU beside it for the ratio.

Model weights do not travel to a lent GPU machine (its transfer holds 64 MiB), so the check builds
real architectures with random weights there: SmolLM2-135M-Instruct from the converted model's own
`config.json`, over the real SmolLM2 tokenizer, and for GRPO Qwen2.5-0.5B's published shape (24
layers, hidden 896, 14 heads, 2 KV heads, 151,936 vocabulary rows) over the same tokenizer. Random
weights rank at chance, so the check measures speed, memory and that every path runs, never quality.

On each device (`cuda` in bf16, then the CPU in what `r1ranker evaluate` picks there):

1. evaluation throughput of the IRanker in score mode and in letter fast mode on the first test
   samples of Passage-5 and Rec-Movie: samples/s, prompt tokens computed per second;
2. expected-reward training in score mode (keep-target, LoRA r16 on the top 10 layers, the pointer
   head, batches of 8 over passage-5, rec-movie and router-performance): s/step, prompt tokens/s,
   and that LoRA and the head moved;
3. TRL GRPO in reasoning mode (IRanker, batch 8, group 4, 128 completion tokens), Qwen2.5-0.5B shape,
   where TRL imports;

each with the peak GPU memory (torch.cuda.max_memory_allocated). Writes one JSON report.

    python bench/gpu_check.py --prepare-arch .gpu_arch          # here: config + tokenizer, ~4 MB
    python bench/gpu_check.py --arch .gpu_arch --samples artifacts/bench/samples --out gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from components.io import write_json

ARCH_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6,
                  rms_norm_eps=1e-6, tie_word_embeddings=True)


def prepare_arch(folder: Path) -> None:
    """The converted SmolLM2's config and tokenizer files, without its weights."""
    from components.models import DEFAULT_MODEL, ensure_model_folder

    source = ensure_model_folder(DEFAULT_MODEL)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ARCH_FILES:
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    print(f"wrote {folder} ({sum(f.stat().st_size for f in folder.iterdir()) / 1e6:.1f} MB)")


def random_model(arch: Path, out: Path, qwen: bool = False) -> str:
    """A local model folder: `arch`'s tokenizer, and random (seeded) weights of SmolLM2's or Qwen2.5-0.5B's shape."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(arch)
    if qwen:
        config = Qwen2Config(**QWEN25_05B, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
    else:
        config = AutoConfig.from_pretrained(arch)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    for name in ARCH_FILES[1:]:
        if (arch / name).exists():
            shutil.copy(arch / name, out / name)
    return str(out)


def gpu_peak(device: str, reset: bool = False) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    if reset:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 1024**3


def eval_throughput(spec: str, device: str, samples_dir: Path, limits: dict[str, int]) -> dict:
    """IRanker in score and letter fast mode on the first test samples of each task."""
    from components.evaluation import load_eval_samples
    from components.models import load_model
    from components.rankers import LLMRankerConfig
    from components.rankers.backend import TransformersBackend
    from components.rankers.iterative import IterativeRanker
    from components.scorers import ScoreHead

    model, tok = load_model(spec, device=device, dtype="auto")
    backend = TransformersBackend(model, tok)
    backend.score_head = ScoreHead(model.config.hidden_size, device=model.device)  # untrained: only the pointer reads it
    out = {"dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}
    for task, n in limits.items():
        samples = load_eval_samples(samples_dir, [task], "test", n)[task]
        IterativeRanker(backend, LLMRankerConfig(mode="score", batch_size=16)).rank(samples[:2])  # warm-up
        for mode in ("score", "fast"):
            gpu_peak(device, reset=True)
            started = time.perf_counter()
            rankings = IterativeRanker(backend, LLMRankerConfig(mode=mode, batch_size=16)).rank(samples)
            seconds = time.perf_counter() - started
            computed = sum(st.tokens_in - st.tokens_cached for r in rankings for st in r.steps)
            assert all(sorted(r.order) == sorted(s.candidate_ids) for r, s in zip(rankings, samples))
            out[f"{task}/{mode}"] = {"samples": len(samples), "seconds": seconds,
                                     "samples_per_second": len(samples) / seconds,
                                     "prompt_tokens_per_sample": computed / len(samples),
                                     "prompt_tokens_per_second": computed / seconds,
                                     "peak_gpu_gb": gpu_peak(device)}
    del model, backend
    return out


def train_steps(spec: str, device: str, samples_dir: Path, out: Path, steps: int, algo: str,
                completion_tokens: int = 128) -> dict:
    """`steps` optimizer steps of the expected-reward trainer (score mode) or TRL GRPO (reasoning mode)."""
    import torch
    from safetensors.torch import load_file

    from components.io import read_jsonl
    from components.prompts import PromptConfig
    from components.training import LoraSettings, MonitorSettings, TrainConfig, train

    common = dict(model=spec, samples=str(samples_dir), output_dir=str(out), max_steps=steps, batch_size=8,
                  save_steps=1000, device=device, max_train_samples=64, monitor=MonitorSettings(stop_early=False),
                  lora=LoraSettings(enabled=True, r=16, alpha=32, top_layers=10))
    if algo == "grpo":
        cfg = TrainConfig(**common, algo="grpo", ranker="iranker", tasks=("passage-5",), num_generations=4,
                          max_completion_length=completion_tokens, prompt=PromptConfig(max_prompt_tokens=1024, reasoning=True))
    else:
        cfg = TrainConfig(**common, mode="score", objective="keep-target", target_tau=0.1, max_pool_size=5,
                          max_pool_for={"rec": 20}, tasks=("passage-5", "rec-movie", "router-performance"),
                          prompt=PromptConfig(max_prompt_tokens=512))
    gpu_peak(device, reset=True)
    started = time.perf_counter()
    summary = train(cfg)
    seconds = time.perf_counter() - started
    logged = read_jsonl(out / "health.jsonl")  # both trainers write it
    health = logged[1:] or logged  # the first step pays for warm-up
    mean = lambda key: (sum(h[key] for h in health if key in h) / max(1, sum(key in h for h in health))) or None
    final, init = Path(summary["final"]), load_file(str(Path(spec) / "model.safetensors"))
    trained = load_file(str(final / "model.safetensors"))  # LoRA merged in
    moved = {"model": any(not torch.equal(init[k].to(trained[k].dtype), trained[k]) for k in init.keys() & trained.keys())}
    if (final / "score_head.safetensors").exists():  # the pointer head starts at zero
        moved["score_head"] = any(bool(t.any()) for t in load_file(str(final / "score_head.safetensors")).values())
    return {"steps": summary["steps"], "seconds": seconds,
            "seconds_per_step": mean("seconds_per_step") or seconds / max(1, summary["steps"]),
            "tokens_per_second": mean("tokens_per_second"), "peak_gpu_gb": gpu_peak(device), "moved": moved}


def run_part(report: dict, key: str, fn, *args) -> None:
    """One part of the check; a failure is recorded with its traceback and the rest still runs."""
    started = time.perf_counter()
    try:
        report[key] = fn(*args)
    except Exception as err:  # the report must say what broke on CUDA, not stop at the first break
        report[key] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}
    print(f"[{time.perf_counter() - started:6.1f} s] {key}: {json.dumps(report[key])[:600]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prepare-arch", type=Path, help="write SmolLM2's config and tokenizer (no weights) here and stop")
    ap.add_argument("--arch", type=Path, default=Path(".gpu_arch"), help="a --prepare-arch folder")
    ap.add_argument("--samples", type=Path, default=Path("artifacts/bench/samples"), help="prepared samples")
    ap.add_argument("--devices", default="cuda,cpu", help="devices in order; the CPU gives the ratio")
    ap.add_argument("--eval-limit", default="passage-5=64,rec-movie=32", help="TASK=N test samples ranked per device")
    ap.add_argument("--steps", default="cuda=5,cpu=3", help="optimizer steps per device (DEVICE=N)")
    ap.add_argument("--grpo-devices", default="cuda", help="devices that run GRPO (generation on a CPU takes minutes a step)")
    ap.add_argument("--completion-tokens", type=int, default=128, help="GRPO: generated tokens per completion")
    ap.add_argument("--skip", default="", help="parts to skip: eval, score-train, grpo (comma-separated)")
    ap.add_argument("--out", type=Path, default=Path("artifacts/bench/gpu_check.json"))
    args = ap.parse_args()
    if args.prepare_arch:
        return prepare_arch(args.prepare_arch)

    import torch

    limits = {t: int(n) for t, n in (item.split("=") for item in args.eval_limit.split(","))}
    steps = {d: int(n) for d, n in (item.split("=") for item in args.steps.split(","))}
    skip = set(filter(None, args.skip.split(",")))
    report: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "cpu_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        smollm2 = random_model(args.arch, tmp / "smollm2-random")
        qwen = None
        for device in args.devices.split(","):
            if "eval" not in skip:
                run_part(report, f"{device}/eval", eval_throughput, smollm2, device, args.samples, limits)
            if "score-train" not in skip:
                run_part(report, f"{device}/train-score", train_steps, smollm2, device, args.samples,
                         tmp / f"train-{device}", steps.get(device, 3), "expected-reward")
            if "grpo" not in skip and device in args.grpo_devices.split(","):
                qwen = qwen or random_model(args.arch, tmp / "qwen25-05b-random", qwen=True)
                run_part(report, f"{device}/train-grpo", train_steps, qwen, device, args.samples,
                         tmp / f"grpo-{device}", steps.get(device, 3), "grpo", args.completion_tokens)
    write_json(args.out, report)  # temp file, then rename (parent folders made)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
