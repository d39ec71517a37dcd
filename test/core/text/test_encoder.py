"""Tests of the frozen text encoder (docs/METHOD.md#text-encoder, #defect-h)."""
import pytest
import torch

from refersplat_ros.core.errors import TextEncoderError
from refersplat_ros.core.text.encoder import bundled_model_path, TextEncoder, TextEncoderConfig


@pytest.fixture(scope='module')
def tiny_encoder():
    from transformers import AutoTokenizer, BertConfig, BertModel
    tok = AutoTokenizer.from_pretrained(str(bundled_model_path()), local_files_only=True)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64))
    return TextEncoder.from_components(tok, model, name='tiny-bert')


def test_word_features_drop_cls_sep(tiny_encoder):
    sentence = 'the red mug next to the kettle'
    words = tiny_encoder.encode(sentence)
    pieces = tiny_encoder.tokenizer.tokenize(sentence)
    assert words.shape == (len(pieces), 32)
    # Same as slicing [CLS] ... [SEP] off a direct forward of the model.
    ids = tiny_encoder.tokenizer(sentence, return_tensors='pt')
    with torch.no_grad():
        hidden = tiny_encoder.model(**ids).last_hidden_state[0]
    torch.testing.assert_close(words, hidden[1:-1])
    assert not words.requires_grad


def test_padding_masked_in_batch(tiny_encoder):
    tiny_encoder.clear_cache()
    short = 'a mug'
    long = 'the small white ceramic bowl placed behind the green glass bottle on the left'
    alone = tiny_encoder.encode(short).clone()
    tiny_encoder.clear_cache()
    batch = tiny_encoder.encode_batch([long, short])
    assert batch[1].shape == alone.shape == (2, 32)
    torch.testing.assert_close(batch[1], alone, atol=1e-5, rtol=1e-5)
    assert batch[0].shape[0] == len(tiny_encoder.tokenizer.tokenize(long))


def test_cache_is_bounded_and_reused(tiny_encoder):
    encoder = TextEncoder.from_components(
        tiny_encoder.tokenizer, tiny_encoder.model, name='tiny-bert',
        config=TextEncoderConfig(cache_size=2))
    first = encoder.encode('one cup')
    assert encoder.encode('one cup') is first
    encoder.encode_batch(['two cups', 'three cups'])
    assert encoder.cache_len == 2
    assert encoder.encode('one cup') is not first  # evicted, recomputed
    torch.testing.assert_close(encoder.encode('one cup'), first)


def test_truncation_and_empty_sentence(tiny_encoder):
    encoder = TextEncoder.from_components(
        tiny_encoder.tokenizer, tiny_encoder.model, config=TextEncoderConfig(max_tokens=6))
    assert encoder.encode('one two three four five six seven eight').shape == (4, 32)
    with pytest.raises(ValueError, match='no word piece'):
        encoder.encode('')


def test_identity(tiny_encoder):
    assert tiny_encoder.hidden_size == 32
    assert tiny_encoder.encoder_id == 'tiny-bert/h32'
    assert all(not p.requires_grad for p in tiny_encoder.model.parameters())
    assert not tiny_encoder.model.training


def test_missing_model_raises(tmp_path):
    with pytest.raises(TextEncoderError, match='not available offline'):
        TextEncoder(TextEncoderConfig(model='no-such-org/no-such-model-refersplat'))
    with pytest.raises(TextEncoderError, match='does not exist'):
        TextEncoder(TextEncoderConfig(model=str(tmp_path / 'missing')))


def test_bundled_minilm_loads_offline():
    encoder = TextEncoder()
    assert encoder.hidden_size == 384
    assert encoder.encoder_id == 'all-MiniLM-L6-v2/h384'
    words = encoder.encode('the red mug on the table')
    assert words.shape == (6, 384)
    assert torch.isfinite(words).all()


def test_cache_is_bounded_in_bytes(tiny_encoder):
    # 32 floats per word piece: 'one cup' is 2 pieces = 256 bytes.
    encoder = TextEncoder.from_components(
        tiny_encoder.tokenizer, tiny_encoder.model, name='tiny-bert',
        config=TextEncoderConfig(cache_size=1000, cache_bytes=600))
    encoder.encode('one cup')
    encoder.encode('two cups')  # 'two', 'cups' (or 'cup', '##s'): up to 384 bytes
    encoder.encode('three cups')
    assert encoder.cache_nbytes <= 600 and encoder.cache_len < 3
    long = ' '.join(['mug'] * 40)  # 40 pieces = 5120 bytes: larger than the whole cache
    encoder.encode(long)
    assert encoder.cache_nbytes <= 600 and long not in encoder._cache
    encoder.clear_cache()
    assert encoder.cache_nbytes == 0 and encoder.cache_len == 0


@pytest.mark.parametrize('text', ['\u200b', '\ufeff\u200b', '\u00ad', '\u0301\u0308', '\u202e',
                                  '\ufffd'])
def test_text_without_word_pieces_is_a_query_error(tiny_encoder, text):
    from refersplat_ros.core.errors import QueryError
    with pytest.raises(QueryError, match='no word piece the text encoder can use'):
        tiny_encoder.encode(text)


def test_int8_encoder_agrees_with_float32():
    """Dynamic int8 MiniLM: the same nearest names and near-equal sentence vectors."""
    import torch
    queries = ['hand me the little sphere', 'the crimson tin next to the basin',
               'grab the coffee cup', 'the thing on the plank', 'a vessel for flowers',
               'the pylon on the left', 'the red kettle', 'pass me the book please',
               'that carton behind the jug', 'the soda on the far right']
    names = ['ball', 'can', 'bowl', 'mug', 'shelf', 'vase', 'cone', 'kettle', 'book', 'box',
             'bottle', 'plate']
    full = TextEncoder()
    small = TextEncoder(TextEncoderConfig(quantize='int8'))
    assert small.encoder_id == full.encoder_id
    a, b = full.sentence_embeddings(queries), small.sentence_embeddings(queries)
    cosine = (a * b).sum(dim=1)
    assert cosine.min() >= 0.95 and cosine.mean() >= 0.97, cosine
    # what the grounding asks of the encoder for a word outside its lexicon: the closest name
    words = ['sphere', 'tin', 'basin', 'pylon', 'carton', 'jug', 'soda', 'plank', 'teacup',
             'canister', 'platter', 'flask', 'novel', 'urn']
    na, nb = full.sentence_embeddings(names), small.sentence_embeddings(names)
    wa, wb = full.sentence_embeddings(words), small.sentence_embeddings(words)
    assert torch.equal((wa @ na.T).argmax(dim=1), (wb @ nb.T).argmax(dim=1))
    with pytest.raises(TextEncoderError, match='quantize must be one of'):
        TextEncoder(TextEncoderConfig(quantize='int4'))


def test_one_thread_per_query_and_the_setting_restored(tiny_encoder, monkeypatch):
    seen = []
    real = torch.nn.Module.__call__

    def spy(module, *args, **kwargs):
        if module is tiny_encoder.model:
            seen.append(torch.get_num_threads())
        return real(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, '__call__', spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = TextEncoder.from_components(tiny_encoder.tokenizer, tiny_encoder.model,
                                          config=TextEncoderConfig(num_threads=1))
        every = TextEncoder.from_components(tiny_encoder.tokenizer, tiny_encoder.model,
                                            config=TextEncoderConfig(num_threads=0))
        a = one.encode('the cup left of the bowl')
        assert torch.get_num_threads() == 2                 # restored after the query
        b = every.encode('the cup left of the bowl')
        one.encode_batch(['a cup', 'a bowl'])               # batches keep the process setting
        assert seen == [1, 2, 2]
        torch.testing.assert_close(a, b)
    finally:
        torch.set_num_threads(before)
    with pytest.raises(TextEncoderError, match='num_threads'):
        TextEncoder.from_components(tiny_encoder.tokenizer, tiny_encoder.model,
                                    config=TextEncoderConfig(num_threads=-1))
