"""Images: labelled image data, image classifiers (Vision Transformers over patches), and what
they attend to and why they decide.

``labkit.load_data`` reads image data into :class:`ImageData`; ``labkit.load_model(...,
task="image-classification")`` or ``labkit.from_config(ViTConfig(...))`` makes the model.
"""

from labkit.vision.pixels import as_images, pixel_values

__all__ = ["as_images", "pixel_values"]
