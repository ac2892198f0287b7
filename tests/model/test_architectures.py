import pytest
import torch
from unmask.model.architectures import create_model, list_architectures
from unmask.model.config import default_config


@pytest.mark.parametrize("name", list_architectures())
def test_each_architecture_gives_one_logit_per_face(name):
    model = create_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 128, 128))
    assert out.shape == (2,)
    assert default_config(name).input_size in (224, 260, 380)


def test_unknown_architecture_fails_in_one_place():
    with pytest.raises(ValueError, match="unknown architecture 'nope'; known: "):
        create_model("nope")


def test_registry_has_the_designed_models():
    assert {"efficientnet_b4", "efficientnet_b4_vit", "lite0"} <= set(list_architectures())


@pytest.mark.parametrize("name", list_architectures())
@pytest.mark.parametrize("cbam", [False, True])
def test_each_architecture_has_a_grad_cam_layer(name, cbam):
    from unmask.model.explain import gradcam

    torch.manual_seed(0)
    model = create_model(name, cbam=cbam).eval()
    maps = gradcam(model, torch.randn(1, 3, 128, 128).numpy())
    assert maps.shape == (1, 128, 128) and 0.0 <= maps.min() and maps.max() <= 1.0
