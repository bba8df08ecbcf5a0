import numpy as np

from locksmith.policy.language import EMBEDDING_DIM, MAX_TOKENS, InstructionEncoder


def test_real_encoder_tokens_and_cache():
    enc = InstructionEncoder()
    a = "put the red cube on the blue pad"
    b = "put the blue cube on the red pad"
    tokens, mask = enc.encode([a, b, a])
    assert tokens.shape[0] == 3 and tokens.shape[2] == EMBEDDING_DIM and tokens.shape[1] <= MAX_TOKENS
    assert not mask[:, 0].any()  # the pooled sentence vector is always there
    np.testing.assert_allclose(np.linalg.norm(tokens[:, 0], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(tokens[0], tokens[2])
    # Swapping the colours barely moves the pooled vector but clearly moves the word tokens.
    pooled_cos = float(tokens[0, 0] @ tokens[1, 0])
    words = ~mask[0]
    token_gap = np.linalg.norm(tokens[0, 1:][words[1:]] - tokens[1, 1:][words[1:]]) / np.linalg.norm(tokens[0, 1:][words[1:]])
    assert pooled_cos > 0.9
    assert token_gap > 0.2
    cached = dict(enc.cache)
    again = InstructionEncoder(cached).encode([b])[0]
    np.testing.assert_array_equal(again[0], tokens[1][: again.shape[1]])


def test_padding_is_to_the_longest_instruction():
    enc = InstructionEncoder({"a": np.ones((3, EMBEDDING_DIM), np.float32), "b": np.ones((5, EMBEDDING_DIM), np.float32)})
    tokens, mask = enc.encode(["a", "b"])
    assert tokens.shape == (2, 5, EMBEDDING_DIM)
    assert mask.tolist() == [[False] * 3 + [True] * 2, [False] * 5]
    assert not tokens[0, 3:].any()
