"""Images: labelled image data, image classifiers (Vision Transformers over patches), and what
they attend to and why they decide.

``labkit.load_data`` reads image data into :class:`ImageData`; ``labkit.load_model(...,
task="image-classification")`` or ``labkit.from_config(ViTConfig(...))`` makes the model;
``labkit.demo.images()`` and ``labkit.demo.vit()`` are the offline defaults.
"""

from labkit.vision._read import load_images
from labkit.vision.data import ImageData, image_block
from labkit.vision.pixels import as_images, pixel_batch, pixel_values
from labkit.vision.predict import evaluate, logits, predict

__all__ = [
    "ImageData",
    "as_images",
    "evaluate",
    "image_block",
    "load_images",
    "logits",
    "pixel_batch",
    "pixel_values",
    "predict",
]
