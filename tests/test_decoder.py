"""The Qwen3 decoder: RoPE, prefill logits vs the reference, KV cache batching and rollback, loop guard."""
import pytest
import torch

from asrstream.decoder.config import TextConfig
from asrstream.decoder.generate import DecodingOptions, Row, greedy, loop_length, step
from asrstream.decoder.model import rope_table
from asrstream.encoder.features import LogMel

from .reference import reference_and_ours, speechlike, windowed_reference

VARIANTS = {
    "gqa2-untied": {"num_key_value_heads": 2},
    "gqa4-tied": {"num_key_value_heads": 1, "tie_word_embeddings": True},
    "mha-untied": {"num_key_value_heads": 4},
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request, tmp_path_factory):
    return reference_and_ours(tmp_path_factory.mktemp("dec"), text=VARIANTS[request.param], seed=1)


def _prompt(n_audio: int) -> list[int]:
    return [11, 12, 13, 6] + [5] * n_audio + [14, 15, 16, 17]


def _ours_logits(net, ids, audio):
    with torch.no_grad():
        x = net.embed(ids, audio)
        return net.logits(net.forward_rows([x], [net.new_cache(len(ids))])[0])


def test_interleaved_mrope_reduces_to_plain_rope():
    """With identical temporal/height/width positions the reference's interleaved MRoPE is 1-D RoPE."""
    from qwen_asr.core.transformers_backend.configuration_qwen3_asr import Qwen3ASRTextConfig
    from qwen_asr.core.transformers_backend.modeling_qwen3_asr import Qwen3ASRThinkerTextRotaryEmbedding

    hf = Qwen3ASRTextConfig(hidden_size=2048, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                            rope_theta=1e6, rope_scaling={"rope_type": "default", "mrope_section": [24, 20, 20],
                                                          "interleaved": True})
    rot = Qwen3ASRThinkerTextRotaryEmbedding(hf)
    pos = torch.arange(3000)[None].expand(3, 1, -1)
    cos, sin = rot(torch.zeros(1, dtype=torch.float32), pos)
    ours = TextConfig(hidden_size=2048, num_hidden_layers=1, num_attention_heads=16, num_key_value_heads=8,
                      intermediate_size=8, vocab_size=8, head_dim=128, rope_theta=1e6)
    c, s = rope_table(ours, 3000, "cpu")
    assert (cos[0] - c).abs().max() < 1e-5 and (sin[0] - s).abs().max() < 1e-5
    # and with differing positions the sections really do differ (the test could fail)
    cos2, _ = rot(torch.zeros(1), torch.stack([pos[0], pos[1] * 2, pos[2] * 3]))
    assert (cos2[0] - c).abs().max() > 1e-2


@pytest.mark.parametrize("seconds", [1.0, 17.3])
def test_prefill_logits_match_reference(pair, seconds):
    ref, net = pair
    mel = LogMel()(speechlike(seconds, seed=7))
    with torch.no_grad():
        audio = net.thinker.audio_tower([mel])[0]
    ids = _prompt(audio.shape[0])
    with windowed_reference(), torch.no_grad():
        t = torch.tensor([ids])
        expected = ref.thinker(input_ids=t, input_features=mel[None], attention_mask=torch.ones_like(t),
                               feature_attention_mask=torch.ones(1, mel.shape[1], dtype=torch.long)).logits[0]
    assert (_ours_logits(net, ids, audio) - expected).abs().max().item() <= 1e-4


def test_tied_checkpoint_shares_embedding_and_head(tmp_path):
    _, net = reference_and_ours(tmp_path, text=VARIANTS["gqa4-tied"])
    assert net.thinker.lm_head.weight is net.thinker.model.embed_tokens.weight


def _run_steps(net, rows, steps):
    """Prefill each row then feed `steps` fixed tokens; logits per row per step."""
    caches = [net.new_cache(r.shape[0] + len(steps)) for r in rows]
    h = net.forward_rows(rows, caches)
    out = [[net.logits(h[b][-1])] for b in range(len(rows))]
    for tok in steps:
        x = net.thinker.model.embed_tokens(torch.tensor([tok]))
        h = net.forward_rows([x] * len(rows), caches)
        for b in range(len(rows)):
            out[b].append(net.logits(h[b][0]))
    return out


def test_batched_rows_of_different_lengths_equal_each_row_alone(pair):
    _, net = pair
    g = torch.Generator().manual_seed(0)
    rows = [torch.randn(n, 64, generator=g) for n in (7, 30, 18)]
    with torch.no_grad():
        batched = _run_steps(net, rows, [3, 9, 27])
        for b, r in enumerate(rows):
            alone = _run_steps(net, [r], [3, 9, 27])[0]
            for x, y in zip(batched[b], alone):
                assert torch.allclose(x, y, atol=1e-5)


def test_whole_rows_attend_together_padded_as_each_row_alone(pair):
    """Training's whole rows (no cache) run attention in one padded call: outputs and gradients equal each
    row run alone, for rows of one token up to many."""
    from asrstream.training.objective import Whole

    _, net = pair
    g = torch.Generator().manual_seed(1)
    rows = [torch.randn(n, 64, generator=g, requires_grad=True) for n in (7, 1, 30, 18)]
    together = net.forward_rows(rows, [Whole() for _ in rows])
    sum(h.square().sum() for h in together).backward()
    grads = [r.grad.clone() for r in rows]
    for r, h, grad in zip(rows, together, grads):
        r.grad = None
        alone = net.forward_rows([r], [Whole()])[0]
        alone.square().sum().backward()
        assert torch.allclose(h, alone, atol=1e-5) and torch.allclose(grad, r.grad, atol=1e-4)


def test_incremental_decoding_equals_full_prefill(pair):
    _, net = pair
    ids = [20, 21, 22, 23, 24, 25, 26, 27]
    with torch.no_grad():
        emb = net.thinker.model.embed_tokens(torch.tensor(ids))
        full = net.logits(net.forward_rows([emb], [net.new_cache(8)])[0])
        steps = _run_steps(net, [emb[:4]], ids[4:])[0]
    for i, lg in enumerate(steps):
        assert torch.allclose(lg, full[3 + i], atol=1e-5)


def test_rollback_by_truncation_then_refeed_gives_same_logits(pair):
    _, net = pair
    with torch.no_grad():
        emb = net.thinker.model.embed_tokens(torch.tensor([30, 31, 32, 33, 34, 35]))
        cache = net.new_cache(16)
        first = net.logits(net.forward_rows([emb], [cache])[0][-1])
        cache.truncate(3)
        net.forward_rows([net.thinker.model.embed_tokens(torch.tensor([40, 41]))], [cache])  # a wrong branch
        cache.truncate(3)
        again = net.logits(net.forward_rows([emb[3:]], [cache])[0][-1])
    assert cache.length == 6
    assert torch.allclose(first, again, atol=1e-6)


def test_cache_overflow_and_bad_truncation_are_errors(pair):
    _, net = pair
    cache = net.new_cache(4)
    with pytest.raises(ValueError, match="KV cache full"):
        net.forward_rows([torch.zeros(5, 64)], [cache])
    assert cache.length == 0  # a refused pass leaves the row untouched
    with pytest.raises(ValueError, match="cannot truncate"):
        cache.truncate(1)


def _decode_with_draft(net, prompt, draft, opts):
    row = Row(net.new_cache(prompt.shape[0] + opts.max_new_tokens + len(draft)), prompt, opts, draft=list(draft))
    passes = 0
    while not row.done:
        step(net, [row], (999,))
        passes += 1
    return row, passes


def test_a_draft_gives_greedy_output_in_fewer_passes(pair):
    _, net = pair
    opts = DecodingOptions(max_new_tokens=12, repeat_limit=0)
    g = torch.Generator().manual_seed(3)
    prompt = torch.randn(9, 64, generator=g)
    with torch.no_grad():
        plain = greedy(net, [prompt], opts, (999,))[0]
        right, right_passes = _decode_with_draft(net, prompt, plain[:8], opts)
        wrong = plain[:3] + [(plain[3] + 1) % 100] + plain[4:8]
        fixed, fixed_passes = _decode_with_draft(net, prompt, wrong, opts)
        none, none_passes = _decode_with_draft(net, prompt, [], opts)
    assert right.out == fixed.out == none.out == plain
    assert (right.accepted, fixed.accepted) == (8, 3)
    assert right_passes == none_passes - 8 and fixed_passes == none_passes - 3


def test_rows_join_and_leave_between_steps(pair):
    """A row added while another is mid-decoding, and rows finishing early, change nobody's tokens."""
    _, net = pair
    g = torch.Generator().manual_seed(4)
    prompts = [torch.randn(n, 64, generator=g) for n in (6, 11, 4)]
    limits = [10, 3, 7]
    with torch.no_grad():
        alone = [greedy(net, [p], DecodingOptions(max_new_tokens=n, repeat_limit=0), (999,))[0]
                 for p, n in zip(prompts, limits)]
        rows = [Row(net.new_cache(p.shape[0] + n), p, DecodingOptions(max_new_tokens=n, repeat_limit=0))
                for p, n in zip(prompts, limits)]
        step(net, rows[:2], (999,))
        while not all(r.done for r in rows):
            step(net, rows, (999,))
    assert [r.out for r in rows] == alone


def test_loop_length_detects_repeated_ngrams():
    assert loop_length([1, 2] + [7] * 20, 20, 10) == 1
    assert loop_length([5] + [1, 2, 3] * 20, 20, 10) == 3
    assert loop_length([1, 2, 3] * 19, 20, 10) == 0
    assert loop_length([7] * 30, 0, 10) == 0


def test_greedy_stops_a_decoding_loop(pair):
    """A model that always predicts the same token (all logits equal: argmax 0) stops after the guard."""
    _, net = pair
    head = net.thinker.lm_head
    saved = head.weight.data.clone()
    try:
        head.weight.data.zero_()
        with torch.no_grad():
            rows = [torch.ones(5, 64)]
            out = greedy(net, rows, DecodingOptions(max_new_tokens=100, repeat_limit=5), (999,))[0]
            unguarded = greedy(net, rows, DecodingOptions(max_new_tokens=30, repeat_limit=0), (999,))[0]
    finally:
        head.weight.data.copy_(saved)
    assert out == [0]
    assert unguarded == [0] * 30


def test_decoding_options_are_validated():
    with pytest.raises(ValueError, match="max_new_tokens"):
        DecodingOptions(max_new_tokens=0)
    with pytest.raises(ValueError, match="repeat_limit"):
        DecodingOptions(repeat_limit=1)
