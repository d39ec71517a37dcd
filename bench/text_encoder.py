"""Text encoder cost: float32 MiniLM against the int8 one (``TextEncoderConfig.quantize``).

    python bench/text_encoder.py [--sentences 60] [--no-write]

Each new sentence is encoded once by each encoder, alternating sentence by sentence in one
process (this machine's speed drifts), with the cache cleared so every call runs the model. Also
reports how close the int8 sentence vectors are to float32 ones. Writes
docs/BENCHMARKS.md#text-encoder.
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
    encoders = {'float32': TextEncoder(), 'int8': TextEncoder(TextEncoderConfig(quantize='int8'))}
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
    a = encoders['float32'].sentence_embeddings(sentences)
    b = encoders['int8'].sentence_embeddings(sentences)
    cosine = (a * b).sum(dim=1).numpy()
    rows = [f'| {name} | {np.median(t):.2f} | {np.percentile(t, 90):.2f} |'
            for name, t in times.items()]
    ratio = np.median(times['float32']) / np.median(times['int8'])
    table = ('| encoder | ms p50 (new sentence) | ms p90 |\n|---|---|---|\n' + '\n'.join(rows))
    print(table)
    print(f'speed-up x{ratio:.2f}; int8 vs float32 sentence-vector cosine: min {cosine.min():.3f},'
          f' median {np.median(cosine):.3f}')
    if not args.no_write:
        text = (
            '## Text encoder\n\n'
            f"`bench/text_encoder.py` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
            f'{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} '
            f'threads): all-MiniLM-L6-v2 on {len(sentences)} new sentences of 3-11 phrases, '
            'float32 and int8 (`TextEncoderConfig.quantize`, per-channel dynamic) alternating '
            'sentence by sentence, cache cleared before each call.\n\n' + table +
            f'\n\nint8 is x{ratio:.2f} the speed of float32; its sentence vectors are within '
            f'cosine {cosine.min():.3f} (median {np.median(cosine):.3f}) of float32 ones. The '
            'node keeps float32 (the default) until the language benchmark has been run with '
            'int8 and gives the same selections.\n')
        write_section(text, DOC, 'Text encoder')
        print(f'written to {DOC.relative_to(ROOT)}#text-encoder')
    return 0


if __name__ == '__main__':
    sys.exit(main())
