"""Text encoder cost: float32 and int8 MiniLM (``TextEncoderConfig.quantize``), 1 or all threads.

    python bench/text_encoder.py [--sentences 60] [--no-write]

Each new sentence is encoded once by each of the four encoders (float32 / int8 x one thread /
the process's threads, ``TextEncoderConfig.num_threads``), alternating sentence by sentence in
one process (this machine's speed drifts), with the cache cleared so every call runs the model,
and with other torch work on all threads between calls (as in the node, whose other stages use
them), under the node's ``OMP_WAIT_POLICY=PASSIVE``. Also reports how close the int8 sentence
vectors are to float32 ones. Writes docs/BENCHMARKS.md#text-encoder.
"""
import argparse
import os
from pathlib import Path
import platform
import sys
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
DOC = ROOT / 'docs' / 'BENCHMARKS.md'
WORDS = ('red', 'little', 'blue', 'mug', 'bowl', 'left of', 'behind', 'the second', 'ball',
         'next to the', 'shelf', 'could you grab', 'kettle', 'closest to me', 'pink', 'box')


def _sentences(count: int):
    rng = np.random.default_rng(0)
    return [' '.join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(count)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sentences', type=int, default=60)
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args(argv)
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    import torch

    from refersplat_ros.core.text.encoder import TextEncoder, TextEncoderConfig
    from report import write_section
    threads = torch.get_num_threads()
    encoders = {f'{quantize}, {count or threads} thread{"s" if (count or threads) > 1 else ""}':
                TextEncoder(TextEncoderConfig(quantize=quantize, num_threads=count))
                for quantize in ('none', 'int8') for count in (0, 1)}
    other_work = torch.rand(200_000, 16)
    sentences = _sentences(args.sentences)
    for encoder in encoders.values():  # warm up
        encoder.encode('warm up the encoder')
    times = {name: [] for name in encoders}
    for sentence in sentences:
        for name, encoder in encoders.items():
            encoder.clear_cache()
            start = time.perf_counter()
            encoder.encode(sentence)
            times[name].append((time.perf_counter() - start) * 1e3)
            (other_work * 2.0).sum()  # the node's other stages, on all threads
    names = list(encoders)
    a = encoders[names[0]].sentence_embeddings(sentences)
    b = encoders[names[-1]].sentence_embeddings(sentences)
    cosine = (a * b).sum(dim=1).numpy()
    rows = [f'| {name} | {np.median(t):.2f} | {np.percentile(t, 90):.2f} |'
            for name, t in times.items()]
    ratio = np.median(times[names[0]]) / np.median(times[names[-1]])
    table = ('| encoder | ms p50 (new sentence) | ms p90 |\n|---|---|---|\n' + '\n'.join(rows))
    print(table)
    print(f'{names[-1]} x{ratio:.2f} the speed of {names[0]}; int8 vs float32 sentence-vector '
          f'cosine: min {cosine.min():.3f},'
          f' median {np.median(cosine):.3f}')
    if not args.no_write:
        text = (
            '## Text encoder\n\n'
            f"`bench/text_encoder.py` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
            f'{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} '
            f'threads, OMP_WAIT_POLICY={os.environ["OMP_WAIT_POLICY"]}): all-MiniLM-L6-v2 on '
            f'{len(sentences)} new sentences of 3-11 phrases, float32 ("none") and int8 '
            '(`TextEncoderConfig.quantize`, per-channel dynamic) with one thread or all '
            '(`num_threads`), alternating sentence by sentence, cache cleared before each call, '
            'other torch work on all threads between calls (as in the node).\n\n' + table +
            f'\n\n{names[-1]} is x{ratio:.2f} the speed of {names[0]}; int8 sentence vectors '
            f'are within cosine {cosine.min():.3f} (median {np.median(cosine):.3f}) of float32 '
            'ones. Whether int8 changes any answer: '
            'docs/BENCHMARKS.md#text-encoder-int8-on-the-language-benchmark.\n')
        write_section(text, DOC, 'Text encoder')
        print(f'written to {DOC.relative_to(ROOT)}#text-encoder')
    return 0


if __name__ == '__main__':
    sys.exit(main())
