"""EmbBERT's shapes, parameter count, causality of the conv branch and padding invariance."""

import pytest

torch = pytest.importorskip("torch", reason="torch (the [train] extra) is not installed")

from hil.model.embbert import EmbBERT, EmbBERTConfig  # noqa: E402


def make(num_labels: int = 3) -> EmbBERT:
    torch.manual_seed(0)
    return EmbBERT(EmbBERTConfig(num_labels=num_labels)).eval()


def test_logits_shape_and_param_count() -> None:
    model = make(num_labels=5)
    ids = torch.randint(5, 8192, (2, 17))
    ids[:, 0] = 2
    assert model(ids).shape == (2, 5)
    # Nano Embedder 139,264 + 4 layers x 37,888 (norm, q, conv, proj, 4 lambda vectors).
    assert model.num_params(with_head=False) == 357_248  # the reference: paper, issue #18
    legacy = EmbBERT(EmbBERTConfig(num_labels=5, att_output=False, segments=0))
    assert legacy.num_params(with_head=False) == 139_264 + 4 * 37_888


def test_conv_branch_is_causal() -> None:
    layer = make().layers[0]
    x = torch.randn(1, 40, 128)
    changed = x.clone()
    changed[0, 25] += 1.0
    before, after = layer.convolution(x), layer.convolution(changed)
    assert torch.equal(before[0, :25], after[0, :25])
    assert not torch.allclose(before[0, 25:], after[0, 25:])


def test_padding_does_not_change_cls_logits() -> None:
    model = make()
    ids = torch.randint(5, 8192, (1, 12))
    ids[0, 0] = 2
    padded = torch.cat([ids, torch.zeros(1, 20, dtype=ids.dtype)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(padded), rtol=1e-5, atol=1e-5)
